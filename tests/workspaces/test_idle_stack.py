"""Idle stops end to end (issue 10): the real proxy, hub and JupyterLab containers.

Two workspaces of a template that stops them after a minute without use. One is left open in
an idle tab, as a browser does: JupyterLab's background polls (``Sec-Fetch-Mode: cors``)
every few seconds; it stops after its minute, with the reason in its message and in the
audit log. The other runs code on its kernel over an open WebSocket every few seconds; it
keeps running. The stack checks every 2 s (tests/conftest.py); a minute is the least an
administrator may set, so the test waits for it.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from labspace.testing import Stack
from tests.conftest import Person, make_user, wait_state
from tests.jupyter import open_kernel, run_code

TEMPLATE = "idle-minute"
POLICY_S = 60.0
EVERY_S = 4.0  # an idle tab's poll, and the busy workspace's kernel call


def _idle_template(stack: Stack) -> None:
    with stack.client() as admin:
        spec = next(t for t in admin.get("/hub/api/templates").json()
                    if t["name"] == "jupyterlab")
        made = admin.post("/hub/api/templates", params={"replace": "true"},
                          json={**spec, "name": TEMPLATE, "idle_stop_after": "1m"})
        assert made.status_code == 201, made.text


def _start(person: Person, name: str) -> None:
    with person.api() as api:
        if api.get(f"/hub/api/workspaces/{person.name}/{name}").status_code == 404:
            made = api.post("/hub/api/workspaces", json={"name": name, "template": TEMPLATE})
            assert made.status_code == 201, made.text
        else:
            api.post(f"/hub/api/workspaces/{person.name}/{name}/start")


async def _state(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as response:
        return str((await response.json())["state"])


async def _watch(stack: Stack, person: Person) -> tuple[float, str]:
    """Poll 'quiet' as an idle tab does and use 'busy' over its kernel's WebSocket, until
    'quiet' stops (bounded); returns when that was seen (time.monotonic) and 'busy''s state
    then."""
    token = {"Authorization": f"Bearer {person.token}"}
    base = f"{stack.url}/user/{person.name}"
    api = f"{stack.url}/hub/api/workspaces/{person.name}"
    async with aiohttp.ClientSession(headers=token) as session:
        kernel = await open_kernel(session, f"{base}/busy/", token)
        try:
            began = time.monotonic()
            while time.monotonic() - began < POLICY_S + 45:
                assert await run_code(kernel, "1 + 1", timeout=30) == "2"
                async with session.get(f"{base}/quiet/api/kernels",
                                       headers={"Sec-Fetch-Mode": "cors"}) as poll:
                    await poll.read()  # 200 while it runs, then the 'not running' page
                if await _state(session, f"{api}/quiet") == "stopped":
                    return time.monotonic(), await _state(session, f"{api}/busy")
                await asyncio.sleep(EVERY_S)
        finally:
            await kernel.close()
    raise AssertionError("the idle workspace was not stopped within its minute and 45 s")


def test_an_idle_workspace_stops_after_its_policy_an_active_one_does_not(
        stack: Stack) -> None:
    _idle_template(stack)
    person = make_user(stack, "idler")
    asked = time.monotonic()  # no start, so no idle minute, can begin before this
    for name in ("quiet", "busy"):
        _start(person, name)
    with person.api() as api:
        for name in ("quiet", "busy"):
            wait_state(api, person.name, name, {"running"})
    try:
        stopped, busy = asyncio.run(_watch(stack, person))
        assert stopped - asked >= POLICY_S - 1, stopped - asked  # not before its minute
        assert busy == "running"
        with person.api() as api:
            quiet = api.get(f"/hub/api/workspaces/{person.name}/quiet").json()
            assert quiet["message"].startswith("stopped: idle 1m"), quiet["message"]
            assert "no SSH session" in quiet["message"]
            busy_now = api.get(f"/hub/api/workspaces/{person.name}/busy").json()
            assert busy_now["state"] == "running" and busy_now["idle_stop_at"] is not None
        with stack.client() as admin:
            culled = admin.get("/hub/api/audit", params={"action": "workspace.culled",
                                                         "user": person.name}).json()
        assert [entry["target"] for entry in culled] == [f"{person.name}/quiet"]
        assert culled[0]["detail"]["policy"] == "after 1m without use"
    finally:
        with person.api() as api:
            for name in ("quiet", "busy"):
                api.delete(f"/hub/api/workspaces/{person.name}/{name}")
