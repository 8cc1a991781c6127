"""The two example apps in real containers of the workspace image, as an app's pool runs them.

Each container is made the way a pool makes one (apps/spec.py, after workspaces/spec.py): the
template's image and command with ``{base_url}`` = ``/apps/<app>/<slot>/``, the anonymous
account (``app``, the default app_uid, an empty /home/app made by the entrypoint, no home
mount, no sudo), then reached at its own address with the template's secret header, as the
proxy sends it. Every container is removed, and the tests check that none is left.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest

from labspace.apps.examples import EXAMPLES
from labspace.apps.model import AppDefinition
from labspace.runtime import ContainerSpec, Limits
from labspace.runtime.docker import DockerRuntime
from labspace.templates import TemplateSpec, builtin_templates

pytestmark = pytest.mark.docker

APP_UID = 60000  # the default app_uid
READY_WITHIN = 60.0
RUN_LABEL = "org.labspace.test-apps-examples"
RUN_ID = uuid.uuid4().hex[:8]


@dataclass
class Running:
    """One started example: where it answers and what proves the proxy's identity."""

    app: AppDefinition
    template: TemplateSpec
    container_id: str
    target: str  # http://<address>:<port>
    base_url: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        value = self.template.app.secret_value.replace("{secret}", self.secret)
        return {self.template.app.secret_header: value}

    def url(self, path: str) -> str:
        return self.target + self.base_url + path.lstrip("/")


@pytest.fixture
async def engine() -> AsyncIterator[tuple[DockerRuntime, str]]:
    """The engine and a network of the kind workspaces run on; whatever a test leaves is
    removed, and a test that leaves anything fails."""
    runtime = DockerRuntime()
    network = f"labspace-test-apps-{RUN_ID}"
    await runtime.ensure_network(network)
    try:
        yield runtime, network
    finally:
        left = await runtime.list({RUN_LABEL: RUN_ID})
        for info in left:
            await runtime.remove(info.id)
        await (await runtime.docker.networks.get(network)).delete()
        await runtime.close()
        assert not left, f"containers left behind: {[info.name for info in left]}"


def app_container(app: AppDefinition, template: TemplateSpec, *, slot: str, secret: str,
                  network: str) -> tuple[ContainerSpec, str]:
    base_url = f"/apps/{app.name}/{slot}/" if template.app.base_url == "prefix" else "/"
    values = {"user": "app", "uid": str(APP_UID), "gid": str(APP_UID), "home": "/home/app",
              "workspace": app.name, "base_url": base_url, "port": str(template.app.port),
              "secret": secret}

    def fill(text: str) -> str:
        for key, value in values.items():
            text = text.replace("{" + key + "}", value)
        return text

    env = {key: fill(value) for key, value in template.env.items()}
    env.update(LABSPACE_USER="app", LABSPACE_UID=str(APP_UID), LABSPACE_GID=str(APP_UID),
               LABSPACE_HOME="/home/app", LABSPACE_SUDO="0", LABSPACE_SSH="0",
               LABSPACE_BASE_URL=base_url)
    spec = ContainerSpec(
        name=f"lstest-app-{app.name}-{slot}", image=template.image,
        command=[fill(part) for part in template.app.command], env=env,
        labels={RUN_LABEL: RUN_ID}, mounts=[],
        limits=Limits(cpus=template.limits.cpus, memory_bytes=template.limits.memory_bytes,
                      pids=template.limits.pids),
        sudo=False, network=network, hostname=app.name, ports=[template.app.port])
    return spec, base_url


async def start(runtime: DockerRuntime, network: str, image: str, name: str) -> Running:
    app = EXAMPLES[name]
    (template,) = [spec for spec in builtin_templates(image) if spec.name == app.template]
    slot = "c" + uuid.uuid4().hex[:16]
    secret = uuid.uuid4().hex
    spec, base_url = app_container(app, template, slot=slot, secret=secret, network=network)
    created = await runtime.create(spec)
    started = await runtime.start(created.id)
    return Running(app, template, created.id, started.endpoints[template.app.port], base_url,
                   secret)


async def wait_ready(runtime: DockerRuntime, client: httpx.AsyncClient, app: Running) -> float:
    """Poll the app's ready path as a pool does (bounded); return when the request that
    first got 200 was sent (time.time())."""
    path = app.app.ready_path if app.app.ready_path is not None else app.template.app.health_path
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        sent = time.time()
        try:
            answer = await client.get(app.url(path), headers=app.headers, timeout=5)
            if answer.status_code == 200:
                return sent
        except httpx.TransportError:
            pass
        info = await runtime.inspect(app.container_id)
        if info is None or not info.running:
            raise AssertionError(f"{app.app.name} stopped: {await runtime.logs(app.container_id)}")
        await asyncio.sleep(0.2)
    raise AssertionError(f"{app.app.name} not ready within {READY_WITHIN:.0f} s: "
                         f"{await runtime.logs(app.container_id)}")


async def sh(runtime: DockerRuntime, app: Running, script: str, user: str = "app") -> str:
    done = await runtime.exec(app.container_id, ["sh", "-c", script], user=user)
    assert done.exit_code == 0, done.output
    return done.output


async def removed(runtime: DockerRuntime, app: Running) -> None:
    await runtime.remove(app.container_id)
    assert await runtime.inspect(app.container_id) is None


async def test_the_notebook_app_opens_a_welcome_notebook_of_the_visitors_own(
    engine: tuple[DockerRuntime, str], jupyter_image: str,
) -> None:
    runtime, network = engine
    app = await start(runtime, network, jupyter_image, "notebook")
    try:
        async with httpx.AsyncClient() as client:
            await wait_ready(runtime, client, app)
            page = await client.get(app.url(app.app.path), headers=app.headers)
            assert page.status_code == 200, page.text
            assert "jupyter-config-data" in page.text
            assert app.base_url in page.text  # JupyterLab serves under the claim's base URL

            contents = app.url("api/contents/welcome.ipynb")
            model = (await client.get(contents, headers=app.headers)).json()
            assert model["type"] == "notebook" and model["writable"]
            # Without the proxy's secret (and the cookie JupyterLab set), nothing.
            async with httpx.AsyncClient() as stranger:
                assert (await stranger.get(contents)).status_code == 403

            # Saved back through JupyterLab's own API: the visitor's copy is writable.
            notebook = model["content"]
            notebook["cells"].append({"cell_type": "markdown", "id": "visitor", "metadata": {},
                                      "source": "saved by the visitor"})
            saved = await client.put(contents, headers=app.headers,
                                     json={"type": "notebook", "content": notebook})
            assert saved.status_code == 200, saved.text

        listing = await sh(runtime, app, "id -un; id -u; cd /home/app; stat -c '%U %a' . "
                                         "welcome.ipynb; test -w welcome.ipynb && echo "
                                         "writable; sudo -n true 2>&1 || echo no-sudo")
        assert listing.split("\n")[:5] == ["app", str(APP_UID), "app 700", "app 644",
                                           "writable"]
        assert "no-sudo" in listing
        assert "saved by the visitor" in await sh(runtime, app, "cat /home/app/welcome.ipynb")
    finally:
        await removed(runtime, app)


async def test_the_dashboard_is_executed_before_anyone_asks(
    engine: tuple[DockerRuntime, str], jupyter_image: str,
) -> None:
    runtime, network = engine
    app = await start(runtime, network, jupyter_image, "dashboard")
    try:
        async with httpx.AsyncClient() as client:
            first_ready = await wait_ready(runtime, client, app)
            clicked = time.time()
            page = await client.get(app.url(app.app.path), headers=app.headers)
            refused = [await client.get(app.url(app.app.path)),
                       await client.get(app.url(app.app.path),
                                        headers={"Authorization": "token nope"})]
            other = await client.get(app.url("dashboard.ipynb"), headers=app.headers)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert [answer.status_code for answer in refused] == [403, 403]
        assert other.status_code == 404

        # What only running the notebook produces: the count of primes below 10 000, drawn.
        found = re.search(r'<p [^>]*data-computed-at="([^"]+)"[^>]*>', page.text)
        assert found and 'data-primes="1229"' in found.group(0), page.text[-3000:]
        assert "<svg" in page.text and 'id="primes-table"' in page.text
        # Outputs only: no code, and no script fetched from the internet.
        assert "bytearray" not in page.text and "cdnjs" not in page.text

        # Executed before the first request was answered, and before the click.
        computed = datetime.fromisoformat(found.group(1)).timestamp()
        written = float(await sh(runtime, app, "python3 -c 'import os; print(os.stat("
                                 "\"/home/app/.labspace-dashboard/index.html\").st_mtime)'"))
        assert computed <= written <= first_ready < clicked
        # Opening it ran no kernel, and none is left from the run.
        processes = await sh(runtime, app, "ps -eo args", user="root")
        assert "labspace-dashboard" in processes and "ipykernel" not in processes
        # The notebook ran in the visitor's home, from a copy it could write to.
        owned = await sh(runtime, app, "stat -c '%U' /home/app/dashboard/dashboard.ipynb")
        assert owned.strip() == "app"
    finally:
        await removed(runtime, app)
