"""Sharing a port of a real workspace, end to end: a program alice runs in her workspace is
found by itself, shared at each level through the real proxy (HTTP and a WebSocket), and
lowering the level in the API closes the connections it no longer admits. Then the attack:
bob opens alice's shared page in Chromium, and her script there gets nothing of his."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import pytest
from playwright.async_api import BrowserContext

from labspace.testing import Stack
from tests.conftest import APPS_DOMAIN, Person, ensure_running, make_user, user_names
from tests.web.test_origin_attacks import (
    ATTACK_JS,
    assert_attack_got_nothing,
    attack_log,
    context,
    log_in,
)

pytestmark = [pytest.mark.docker]
__all__ = ["context"]  # the Chromium fixture, shared with the origin attacks

PORT = 8050
APP = Path(__file__).with_name("share_app.py")


@dataclass
class Demo:
    stack: Stack
    alice: Person
    bob: Person

    @property
    def host(self) -> str:
        return f"{PORT}-demo--alice.{APPS_DOMAIN}:{self.stack.public_port}"

    def get(self, who: Person | None, path: str = "/headers", **headers: str) -> httpx.Response:
        auth = {"Authorization": f"Bearer {who.token}"} if who else {}
        with httpx.Client(base_url=self.stack.url, timeout=30) as client:
            return client.get(path, headers={"Host": self.host, **auth, **headers})

    def share(self, level: str, port: int = PORT) -> httpx.Response:
        with self.alice.api() as api:
            return api.put(f"/hub/api/workspaces/alice/demo/ports/{port}", json={"level": level})


def _container(stack: Stack) -> str:
    return subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=org.labspace.instance={stack.instance}",
         "--filter", "label=org.labspace.owner=alice",
         "--filter", "label=org.labspace.workspace=demo"],
        capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def demo(apps_stack: Stack) -> Iterator[Demo]:
    alice, bob = make_user(apps_stack, "alice"), make_user(apps_stack, "bob")
    with apps_stack.client() as admin:  # a template that allows public shares
        spec = admin.get("/hub/api/templates/jupyterlab").json()
        spec.update(name="sharable", port_sharing="public")
        made = admin.post("/hub/api/templates", json=spec, params={"replace": "true"})
        assert made.status_code in (200, 201), made.text
    ensure_running(alice, "demo", template="sharable")
    home = apps_stack.data_dir / "homes" / "alice"
    shutil.copy(APP, home / APP.name)
    uid = home.stat().st_uid
    os.chown(home / APP.name, uid, uid)
    # What alice types in her terminal: start her dashboard in the background.
    subprocess.run(["docker", "exec", "-d", "-u", str(uid), _container(apps_stack), "python3",
                    f"/home/alice/{APP.name}"], check=True, timeout=30)
    running = Demo(apps_stack, alice, bob)
    deadline = time.monotonic() + 30
    while running.get(alice).status_code != 200 and time.monotonic() < deadline:
        running.share("private")
        time.sleep(0.3)
    yield running
    running.share("private")


def test_the_ports_a_workspace_listens_on_are_found(demo: Demo) -> None:
    with demo.alice.api() as api:
        found = api.get("/hub/api/workspaces/alice/demo/ports").json()
    assert found["detected"] and found["max_level"] == "public", found
    ports = {p["port"]: p for p in found["ports"]}
    assert ports[PORT]["listening"] and not ports[PORT]["loopback_only"]
    assert ports[PORT]["url"] == f"http://{demo.host}/" and ports[PORT]["note"] == ""
    assert ports[8051]["loopback_only"] and "0.0.0.0" in ports[8051]["note"]
    assert "own app" in ports[8888]["note"] and ports[8888]["url"] is None
    assert "labspace ssh" in ports[22]["note"]
    # The CLI shows the same.
    listed = demo.stack.cli("port", "list", "alice/demo", "--url", demo.stack.url,
                            "--json")
    assert {p["port"] for p in json.loads(listed.stdout)["ports"]} >= {22, 8051, PORT, 8888}


@pytest.mark.parametrize(("level", "bob_gets", "anonymous_gets"), [
    ("private", 403, 401), ("authenticated", 200, 401), ("public", 200, 200)])
def test_each_level_is_reached_by_exactly_the_right_people(
        demo: Demo, level: str, bob_gets: int, anonymous_gets: int) -> None:
    assert demo.share(level).status_code == 200
    assert demo.get(demo.alice).status_code == 200
    assert demo.get(demo.bob).status_code == bob_gets
    assert demo.get(None).status_code == anonymous_gets
    seen = demo.get(demo.alice).json()
    # The program never sees who visits by their credentials, nor the workspace's secret.
    assert "Authorization" not in seen and "labspace" not in json.dumps(seen).lower()


def test_the_cli_shares_and_the_template_caps(demo: Demo) -> None:
    shared = demo.stack.cli("port", "share", "alice/demo", str(PORT), "--authenticated",
                            "--url", demo.stack.url, check=False)
    assert shared.returncode == 0, shared.stderr
    assert f"http://{demo.host}/" in shared.stdout
    with httpx.Client(base_url=demo.stack.url, timeout=30,
                      headers={"Authorization": f"Bearer {demo.alice.token}"}) as api:
        refused = api.put("/hub/api/workspaces/alice/demo/ports/8888",
                          json={"level": "public"})
    assert refused.status_code == 400 and "own app" in refused.text


async def _echo(demo: Demo, who: Person | None) -> aiohttp.ClientWebSocketResponse:
    session = aiohttp.ClientSession()
    auth = {"Authorization": f"Bearer {who.token}"} if who else {}
    ws = await session.ws_connect(f"{demo.stack.url}/echo", headers={"Host": demo.host, **auth})
    ws._labspace_session = session  # type: ignore[attr-defined]  # closed with the socket
    await ws.send_str("hello")
    assert (await ws.receive_str(timeout=10)) == "hello"
    return ws


async def _closed_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> bool:
    try:
        message = await ws.receive(timeout=seconds)
    except TimeoutError:
        return False
    return message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.CLOSING)


@pytest.mark.asyncio(loop_scope="session")
async def test_lowering_the_level_cuts_open_websockets_it_no_longer_admits(demo: Demo) -> None:
    assert demo.share("public").status_code == 200
    anonymous, bob, alice = (await _echo(demo, None), await _echo(demo, demo.bob),
                             await _echo(demo, demo.alice))
    try:
        started = time.monotonic()
        assert (await asyncio.to_thread(demo.share, "authenticated")).status_code == 200
        assert await _closed_within(anonymous, 2.0)
        assert time.monotonic() - started < 2.0
        await bob.send_str("still here")
        assert (await bob.receive_str(timeout=10)) == "still here"
        assert (await asyncio.to_thread(demo.share, "private")).status_code == 200
        assert await _closed_within(bob, 2.0)
        await alice.send_str("mine")  # the owner's own stays open
        assert (await alice.receive_str(timeout=10)) == "mine"
    finally:
        for ws in (anonymous, bob, alice):
            await ws.close()
            await ws._labspace_session.close()  # type: ignore[attr-defined]


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.browser
async def test_a_shared_page_opened_by_another_user_reaches_nothing_of_his(
        demo: Demo, context: BrowserContext) -> None:
    stack = demo.stack
    port = stack.public_port
    hub = f"http://lab.localhost:{port}"
    ensure_running(demo.bob, "victim")
    path = "/user/bob/victim/api/events/subscribe"
    sockets = [f"ws://lab.localhost:{port}{path}", f"ws://victim--bob.{APPS_DOMAIN}:{port}{path}"]
    page_file = stack.data_dir / "homes" / "alice" / "share_page.html"
    page_file.write_text("<h1>alice's demo</h1><script>" + ATTACK_JS % {
        "hub": json.dumps(hub), "sw": json.dumps("/sw.js"),
        "sockets": json.dumps(sockets)} + "</script>")
    assert demo.share("authenticated").status_code == 200
    before = user_names(stack)

    page = await log_in(context, hub, demo.bob)
    # bob works in his own workspace first: his browser holds its host's cookie.
    await page.goto(f"{hub}{'/user/bob/victim/api/status'}")
    await page.wait_for_url(re.compile(re.escape(f"http://victim--bob.{APPS_DOMAIN}")))
    log = attack_log(page)
    await page.goto(f"http://{demo.host}/")  # through the hub's ticket, to alice's port
    await page.wait_for_url(f"http://{demo.host}/")
    assert await page.inner_text("h1") == "alice's demo"
    await assert_attack_got_nothing(page, log, f"http://{demo.host}")
    assert user_names(stack) == before
    cookies = {(c["name"], c["domain"]): c for c in await context.cookies()}
    shared_cookie = cookies[("__Host-labspace-app", demo.host.split(":")[0])]
    assert shared_cookie["httpOnly"] and shared_cookie["secure"]
    # Made private, the same browser is turned away at its next request.
    assert demo.share("private").status_code == 200
    response = await page.goto(f"http://{demo.host}/")
    assert response is not None and response.status == 403
    page_file.unlink()


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.browser
async def test_the_owner_shares_from_the_workspace_page(demo: Demo,
                                                        context: BrowserContext) -> None:
    hub = f"http://lab.localhost:{demo.stack.public_port}"
    assert demo.share("private").status_code == 200
    page = await log_in(context, hub, demo.alice)
    await page.goto(f"{hub}/hub/workspaces/alice/demo")
    row = page.locator(f"#ports tr[data-port='{PORT}']")
    assert f"http://{demo.host}/" in await row.inner_text()
    assert "0.0.0.0" in await page.locator("#ports tr[data-port='8051']").inner_text()
    await row.locator("select").select_option("public")
    await row.locator("button").click()
    await page.wait_for_url(re.compile(r"/hub/workspaces/alice/demo#ports$"))
    assert (await page.locator(f"#ports tr[data-port='{PORT}'] td.level").inner_text()
            ) == "public"
    assert demo.get(None).status_code == 200  # anyone, at once
    await page.close()
