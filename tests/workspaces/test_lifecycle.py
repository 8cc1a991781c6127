"""A real workspace end to end: start with progress, reach it through the proxy over HTTP and
WebSocket, stop, start, delete; the home persists and is shared."""

from __future__ import annotations

import stat
import subprocess

import aiohttp
import pytest

from tests.conftest import Person, ensure_running, wait_state
from tests.jupyter import open_kernel, run_code

pytestmark = pytest.mark.docker


def container_name(person: Person, workspace: str) -> str:
    """The workspace's container, found by its labels (what reconcile trusts too)."""
    found = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}",
         "--filter", f"label=org.labspace.instance={person.stack.instance}",
         "--filter", f"label=org.labspace.owner={person.name}",
         "--filter", f"label=org.labspace.workspace={workspace}"],
        capture_output=True, text=True, check=True).stdout.split()
    assert len(found) <= 1, found
    return found[0] if found else f"no-container-for-{person.name}-{workspace}"


def in_container(person: Person, workspace: str, *command: str, user: str | None = None
                 ) -> subprocess.CompletedProcess[str]:
    args = ["docker", "exec"] + (["-u", user] if user else [])
    return subprocess.run([*args, container_name(person, workspace), *command],
                          capture_output=True, text=True, check=False, timeout=60)


def test_start_streams_progress_and_serves_jupyterlab(people: dict[str, Person]) -> None:
    alice = people["alice"]
    with alice.api() as api:
        created = api.post("/hub/api/workspaces",
                           json={"name": "analysis", "template": "jupyterlab"})
        assert created.status_code == 201, created.text
        assert created.json()["state"] == "pending"
        with api.stream("GET", "/hub/api/workspaces/alice/analysis/events") as events:
            lines = [line for line in events.iter_lines() if line.startswith("data:")]
        messages = [line for line in lines]
        assert any('"container created"' in m for m in messages), messages
        assert any('"app answering"' in m for m in messages), messages
        assert '"state": "running"' in messages[-1]
        status = api.get("/user/alice/analysis/api/status")
        assert status.status_code == 200, status.text
        lab = alice.browser().get("/user/alice/analysis/lab")
        assert lab.status_code == 200 and "JupyterLab" in lab.text


async def test_kernel_over_websocket_through_proxy(people: dict[str, Person]) -> None:
    alice = people["alice"]
    ensure_running(alice, "analysis")
    base = f"{alice.stack.url}/user/alice/analysis/"
    headers = {"Authorization": f"Bearer {alice.token}"}
    async with aiohttp.ClientSession() as session:
        ws = await open_kernel(session, base, headers)
        try:
            assert await run_code(ws, "1+1") == "2"
        finally:
            await ws.close()


def test_app_runs_as_the_user_with_a_private_home(people: dict[str, Person]) -> None:
    alice = people["alice"]
    ensure_running(alice, "analysis")
    processes = in_container(alice, "analysis", "ps", "-o", "user=,uid=,args=", "-C", "python3")
    assert "jupyter" in processes.stdout
    uid = alice.api().get("/hub/api/me").json()["uid"]
    for line in processes.stdout.splitlines():
        if "jupyter-lab" in line:
            assert line.split()[1] == str(uid)
    home = alice.stack.data_dir / "homes" / "alice"
    info = home.stat()
    assert (info.st_uid, info.st_gid) == (uid, uid)
    assert stat.S_IMODE(info.st_mode) == 0o700
    whoami = in_container(alice, "analysis", "id", "-un", user=str(uid))
    assert whoami.stdout.strip() == "alice"


def test_home_survives_stop_start_and_delete_and_is_shared(people: dict[str, Person]) -> None:
    alice = people["alice"]
    ensure_running(alice, "analysis")
    with alice.api() as api:
        put = api.put("/user/alice/analysis/api/contents/notes.txt",
                      json={"type": "file", "format": "text", "content": "keep me"})
        assert put.status_code in (200, 201), put.text
        assert api.post("/hub/api/workspaces/alice/analysis/stop").json()["state"] == "stopped"
        assert in_container(alice, "analysis", "true").returncode != 0  # really stopped
        assert api.post("/hub/api/workspaces/alice/analysis/start").status_code == 200
        wait_state(api, "alice", "analysis", {"running"})
        got = api.get("/user/alice/analysis/api/contents/notes.txt")
        assert got.json()["content"] == "keep me"

        # A second workspace of the same user sees the same home.
        api.post("/hub/api/workspaces", json={"name": "second", "template": "jupyterlab"})
        wait_state(api, "alice", "second", {"running"})
        assert api.get("/user/alice/second/api/contents/notes.txt").json()["content"] == "keep me"

        # Deleting a workspace keeps the home.
        assert api.delete("/hub/api/workspaces/alice/second").status_code == 204
        assert api.get("/hub/api/workspaces/alice/second").status_code == 404
        assert (alice.stack.data_dir / "homes" / "alice" / "notes.txt").read_text() == "keep me"
        assert in_container(alice, "second", "true").returncode != 0  # container gone


def test_sudo_only_where_the_template_grants_it(people: dict[str, Person]) -> None:
    alice, admin = people["alice"], people["admin"]
    with admin.api() as api:
        spec = api.get("/hub/api/templates/jupyterlab").json()
        assert spec["sudo"] is True
        spec.update(name="nosudo", display_name="JupyterLab without sudo", sudo=False)
        added = api.post("/hub/api/templates", json=spec, params={"replace": True})
        assert added.status_code == 201, added.text
    ensure_running(alice, "analysis")
    with alice.api() as api:
        granted = in_container(alice, "analysis", "sudo", "-n", "id", "-u", user="alice")
        assert granted.returncode == 0 and granted.stdout.strip() == "0", granted.stderr
        api.post("/hub/api/workspaces", json={"name": "plain", "template": "nosudo"})
        wait_state(api, "alice", "plain", {"running"})
        refused = in_container(alice, "plain", "sudo", "-n", "id", "-u", user="alice")
        assert refused.returncode != 0
        status = in_container(alice, "plain", "grep", "NoNewPrivs", "/proc/1/status")
        assert status.stdout.split()[-1] == "1"
        api.delete("/hub/api/workspaces/alice/plain")
