"""Crash the hub: running workspaces are adopted and their open WebSockets keep working,
half-started ones end running or failed, removed containers are noticed, nothing is orphaned."""

from __future__ import annotations

import subprocess
import time

import aiohttp
import pytest

from labspace.testing import Stack
from tests.conftest import Person, ensure_running, wait_state
from tests.jupyter import open_kernel, run_code
from tests.workspaces.test_lifecycle import container_name

pytestmark = pytest.mark.docker


def orphans(stack: Stack, people: dict[str, Person]) -> set[str]:
    """Containers of this instance that no workspace record owns."""
    with people["admin"].api() as api:
        records = api.get("/hub/api/workspaces", params={"all": True}).json()
    owned = {f"{ws['owner']}/{ws['name']}" for ws in records}
    labelled = subprocess.run(
        ["docker", "ps", "-a", "--format",
         '{{.Label "org.labspace.owner"}}/{{.Label "org.labspace.workspace"}}', "--filter",
         f"label=org.labspace.instance={stack.instance}"],
        capture_output=True, text=True, check=True).stdout.split()
    return set(labelled) - owned


async def test_hub_crash_keeps_sessions_and_resumes_starts(
    stack: Stack, people: dict[str, Person]
) -> None:
    alice = people["alice"]
    ensure_running(alice, "steady")
    headers = {"Authorization": f"Bearer {alice.token}"}
    async with aiohttp.ClientSession() as session:
        ws = await open_kernel(session, f"{stack.url}/user/alice/steady/", headers)
        try:
            assert await run_code(ws, "x = 20; x + 1") == "21"
            with alice.api() as api:
                api.post("/hub/api/workspaces", json={"name": "halfway",
                                                      "template": "jupyterlab"})
                time.sleep(0.3)  # the start is under way
            stack.kill_hub()  # SIGKILL: no chance to clean up

            # While the hub is down, the open kernel session and new requests keep working.
            assert await run_code(ws, "x * 2") == "40"
            async with session.get(f"{stack.url}/user/alice/steady/api/status",
                                   headers=headers) as response:
                assert response.status == 200
            async with session.get(f"{stack.url}/hub/api/me", headers=headers) as response:
                assert response.status == 503

            stack.start_hub()
            assert await run_code(ws, "x + 2") == "22"
        finally:
            await ws.close()
    with alice.api() as api:
        assert api.get("/hub/api/workspaces/alice/steady").json()["state"] == "running"
        final = wait_state(api, "alice", "halfway", {"running", "failed"}, timeout=120)
        assert final["state"] in ("running", "failed")
        assert final["state"] == "running", final["message"]
        api.delete("/hub/api/workspaces/alice/halfway")
    assert orphans(stack, people) == set()


def test_orphaned_container_is_removed(stack: Stack, people: dict[str, Person]) -> None:
    name = f"labspace-{stack.instance}-ghost"
    subprocess.run(
        ["docker", "create", "--name", name, "--label", f"org.labspace.instance={stack.instance}",
         "--label", "org.labspace.workspace-id=999999", "labspace/base:bookworm", "true"],
        check=True, capture_output=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = subprocess.run(["docker", "inspect", name], capture_output=True, check=False)
        if found.returncode != 0:
            break
        time.sleep(0.5)
    else:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        raise AssertionError("the orphaned container was not removed")


def test_stopping_labspace_leaves_workspaces_running(stack: Stack,
                                                     people: dict[str, Person]) -> None:
    alice = people["alice"]
    ensure_running(alice, "steady")
    stack.kill_hub(sig=15)  # a clean stop (SIGTERM)
    running = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", container_name(alice, "steady")],
        capture_output=True, text=True, check=True).stdout.strip()
    assert running == "true"
    stack.start_hub()
    with alice.api() as api:
        assert api.get("/hub/api/workspaces/alice/steady").json()["state"] == "running"
        assert api.get("/user/alice/steady/api/status").status_code == 200


def test_proxy_crash_loses_nothing(stack: Stack, people: dict[str, Person]) -> None:
    alice = people["alice"]
    ensure_running(alice, "steady")
    with alice.api() as api:
        put = api.put("/user/alice/steady/api/contents/proxy-crash.txt",
                      json={"type": "file", "format": "text", "content": "still here"})
        assert put.status_code in (200, 201)
    stack.kill_proxy()
    stack.start_proxy()  # routes and sessions come back from the database
    with alice.api() as api:
        got = api.get("/user/alice/steady/api/contents/proxy-crash.txt")
        assert got.status_code == 200 and got.json()["content"] == "still here"
        assert api.get("/hub/api/workspaces/alice/steady").json()["state"] == "running"
    browser = alice.browser()
    assert browser.get("/user/alice/steady/api/status").status_code == 200
