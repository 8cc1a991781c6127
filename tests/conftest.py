"""Shared fixtures: a real Docker engine, the built workspace image, a running labspace.

Tests that need containers use the session-wide ``stack`` (proxy + hub processes on
loopback with a unique instance label); everything it creates is removed at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from labspace.state.db import Database
from labspace.testing import Stack, free_port, log_in

JUPYTER_IMAGE = "labspace/jupyterlab:latest"

# No test may find (or leave) a `labspace login` of the person running the suite.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="labspace-test-config-")


def _docker_ok() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="session")
def docker_engine() -> None:
    if not _docker_ok():
        pytest.fail("no Docker engine answers: run scripts/ensure-docker.sh (scripts/test.sh does)")


@pytest.fixture(scope="session")
def jupyter_image(docker_engine: None) -> str:
    found = subprocess.run(["docker", "image", "inspect", JUPYTER_IMAGE], capture_output=True,
                           check=False)
    if found.returncode != 0:
        pytest.fail(f"image {JUPYTER_IMAGE} is missing: run `labspace image build`")
    return JUPYTER_IMAGE


@pytest.fixture(scope="session")
def stack(jupyter_image: str) -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="labspace-test-"))
    # Idle stops checked every 2 s: only templates with an idle policy are affected
    # (tests/workspaces/test_idle_stack.py makes one).
    running = Stack(root, extra_env={"LABSPACE_RECONCILE_INTERVAL": "2",
                                     "LABSPACE_IDLE_CHECK_INTERVAL": "2"})
    try:
        running.start()
        yield running
    finally:
        running.close()


APPS_DOMAIN = "apps.lab.localhost"


@pytest.fixture(scope="session")
def apps_stack(jupyter_image: str) -> Iterator[Stack]:
    """A labspace with apps_domain: each workspace on its own host. The hub is at
    lab.localhost and the workspaces under apps.lab.localhost, so hub and workspaces are
    same-site, as lab.example.org and *.apps.lab.example.org are in production (Chromium
    resolves every name under localhost to loopback)."""
    root = Path(tempfile.mkdtemp(prefix="labspace-apps-test-"))
    port = free_port()
    running = Stack(root, public_port=port, extra_env={
        "LABSPACE_RECONCILE_INTERVAL": "2",
        "LABSPACE_PUBLIC_URL": f"http://lab.localhost:{port}",
        "LABSPACE_APPS_DOMAIN": APPS_DOMAIN,
    })
    try:
        running.start()
        yield running
    finally:
        running.close()


@dataclass
class Person:
    """A user of the test stack with an API token and a logged-in browser-like client."""

    name: str
    password: str
    token: str
    stack: Stack

    def api(self) -> httpx.Client:
        return self.stack.client(self.token)

    def browser(self) -> httpx.Client:
        """A client holding a session cookie, as a browser would after logging in."""
        client = httpx.Client(base_url=self.stack.url, timeout=60.0,
                              headers={"Accept": "text/html"})
        response = log_in(client, self.name, self.password)
        assert response.status_code == 303, response.text
        return client


_PASSWORDS: dict[str, str] = {}


def password_of(name: str) -> str:
    """The test password of ``name``: random (the password policy refuses one that contains
    the name, or a common one), the same for the whole session."""
    return _PASSWORDS.setdefault(name, "pw-" + secrets.token_urlsafe(12))


@pytest.fixture(scope="session")
def people(stack: Stack) -> dict[str, Person]:
    """Two ordinary users, alice and bob, plus the admin."""
    made: dict[str, Person] = {}
    with stack.client() as admin:
        for name in ("alice", "bob"):
            password = password_of(name)
            response = admin.post("/hub/api/users", json={"name": name, "password": password})
            assert response.status_code == 201, response.text
            token = admin.post(f"/hub/api/users/{name}/tokens", json={"note": "tests"}).json()
            made[name] = Person(name, password, token["token"], stack)
    made["admin"] = Person("admin", stack.admin_password, stack.admin_token, stack)
    return made


def wait_state(client: httpx.Client, owner: str, name: str, states: set[str],
               timeout: float = 120.0) -> dict[str, object]:
    """Poll a workspace until it reaches one of ``states`` (bounded)."""
    import time

    deadline = time.monotonic() + timeout
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/hub/api/workspaces/{owner}/{name}").json()
        if body.get("state") in states:
            return body
        time.sleep(0.2)
    raise AssertionError(f"{owner}/{name} did not reach {states}: {body}")


def ensure_running(person: Person, name: str, template: str = "jupyterlab") -> None:
    """The person's workspace ``name`` exists and is running (created and started if not), so
    a test does not depend on another test having made it."""
    with person.api() as api:
        if api.get(f"/hub/api/workspaces/{person.name}/{name}").status_code == 404:
            created = api.post("/hub/api/workspaces", json={"name": name, "template": template})
            assert created.status_code == 201, created.text
        else:
            api.post(f"/hub/api/workspaces/{person.name}/{name}/start")
        wait_state(api, person.name, name, {"running"})


def make_user(stack: Stack, name: str) -> Person:
    """The user ``name`` on ``stack`` (made if missing), with a fresh API token."""
    password = password_of(name)
    with stack.client() as admin:
        if name not in user_names(stack):
            made = admin.post("/hub/api/users", json={"name": name, "password": password})
            assert made.status_code == 201, made.text
        token = admin.post(f"/hub/api/users/{name}/tokens", json={"note": "t"}).json()["token"]
    return Person(name, password, token, stack)


def user_names(stack: Stack) -> set[str]:
    with stack.client() as admin:
        return {user["name"] for user in admin.get("/hub/api/users").json()}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On failure, attach the labspace processes' logs (like DockerSpawner's container logs)."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "stack" in getattr(item, "funcargs", {}):
        report.sections.append(("labspace logs", item.funcargs["stack"].logs()))


@pytest.fixture(scope="session")
def stack_url(stack: Stack) -> str:
    return stack.url


def postgres_url() -> str:
    """The test PostgreSQL's URL; outside CI a missing one skips, in CI it fails."""
    url = os.environ.get("LABSPACE_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("LABSPACE_TEST_POSTGRES_URL is not set (scripts/test.sh sets it)")
        pytest.skip("set LABSPACE_TEST_POSTGRES_URL to test PostgreSQL (scripts/test.sh does)")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'labspace.db'}")
        await database.migrate()
        yield database
        await database.close()
        return
    url = postgres_url()
    # A private schema per test keeps runs independent on one database.
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = Database(url)
    async with admin.engine.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    await admin.close()
    database = Database(url,
                        connect_args={"server_settings": {"search_path": schema}})
    await database.migrate()
    yield database
    await database.close()
    admin = Database(url)
    async with admin.engine.begin() as connection:
        await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await admin.close()


# -- a multi-node Docker swarm on this machine (tests/runtime/test_swarm_cluster.py) -----------

from labspace.testing.swarm import (  # noqa: E402
    TASK_DOCKERFILE,
    TASK_IMAGE,
    SwarmCluster,
    ensure_image,
    push_image,
    setup_swarm,
    teardown_swarm,
)


@pytest.fixture(scope="session")
def swarm_cluster(docker_engine: None) -> Iterator[SwarmCluster]:
    """The host engine as manager plus two dockerd-in-container workers (lsnode1 labelled
    bigmem=true, lsnode2), the shared directory and the local registry; built once (the node
    image is cached), torn down at the end of the session with the host left a plain engine."""
    cluster = setup_swarm(workers=2, labels={"lsnode1": {"bigmem": "true"}})
    try:
        yield cluster
    finally:
        teardown_swarm(cluster)


@pytest.fixture(scope="session")
def swarm_task_ref(swarm_cluster: SwarmCluster) -> str:
    """A small task image (the base + busybox), pushed into the cluster's registry."""
    ensure_image(TASK_IMAGE, TASK_DOCKERFILE)
    return push_image(swarm_cluster, TASK_IMAGE)


@pytest.fixture(scope="session")
def swarm_guard_ref(swarm_cluster: SwarmCluster) -> str:
    """labspace's node-guard image (images/files/Dockerfile.node-guard, built from the
    debootstrapped base), pushed into the cluster's registry."""
    from labspace.images.build import build_image
    from labspace.testing.swarm import stderr_progress

    tag = build_image("node-guard", base="debootstrap", progress=stderr_progress)
    return push_image(swarm_cluster, tag)
