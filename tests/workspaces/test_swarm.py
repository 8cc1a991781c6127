"""Workspaces on a real three-node swarm through the whole of labspace (proxy + hub processes,
runtime = "swarm"): a workspace on each worker answers through the one public address, HTTP
and a kernel over WebSocket; the home is the same file tree from every node, owned by the
user; the hub restarts while they run and adopts them, the open WebSockets unharmed; a node
dies: its workspace is marked failed naming it, starts again on another node with its home,
and the node's return runs nothing twice."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest

from labspace.testing.stack import Stack
from labspace.testing.swarm import SwarmCluster, docker, push_image
from labspace.testing.swarmprobe import remove_edge
from tests.conftest import wait_state
from tests.jupyter import open_kernel, run_code

pytestmark = [pytest.mark.swarm, pytest.mark.docker]

USER, PASSWORD = "carol", "swarm-lantern-73"


@pytest.fixture(scope="module")
def swarm_stack(swarm_cluster: SwarmCluster, swarm_guard_ref: str,
                jupyter_image: str) -> Iterator[Stack]:
    image = push_image(swarm_cluster, jupyter_image)
    for node in swarm_cluster.workers:
        docker("node", "update", "--label-add", f"lsname={node.hostname}",
               "--label-add", "lsworker=true", node.node_id)
    root = Path(tempfile.mkdtemp(prefix="labspace-swarm-"))
    homes = swarm_cluster.shared_dir / f"homes-{root.name}"  # the lab's NFS, on every node
    stack = Stack(root, extra_env={
        "LABSPACE_RUNTIME": "swarm", "LABSPACE_DEFAULT_IMAGE_TAG": image,
        "LABSPACE_SWARM_GUARD_IMAGE": swarm_guard_ref, "LABSPACE_HOMES_DIR": str(homes),
        "LABSPACE_RECONCILE_INTERVAL": "2"})
    try:
        stack.start()
        with stack.client() as admin:
            made = admin.post("/hub/api/users", json={"name": USER, "password": PASSWORD})
            assert made.status_code == 201, made.text
            builtin = admin.get("/hub/api/templates/jupyterlab").json()
            for node in swarm_cluster.workers:
                template = dict(builtin, name=f"on-{node.hostname}",
                                node_labels={"lsname": node.hostname})
                added = admin.post("/hub/api/templates", json=template)
                assert added.status_code == 201, added.text
            # Any worker, never the manager: the host's own engine cannot be killed in a test.
            added = admin.post("/hub/api/templates", json=dict(
                builtin, name="on-a-worker", node_labels={"lsworker": "true"},
                limits=dict(builtin["limits"], cpus=0.5)))  # fits beside the others
            assert added.status_code == 201, added.text
        yield stack
    finally:
        stack.close()
        services = docker("service", "ls", "-q", "--filter",
                          f"label=org.labspace.instance={stack.instance}").stdout.split()
        if services:
            docker("service", "rm", *services, check=False)
        remove_edge(f"labspace-{stack.instance}")
        for node in swarm_cluster.workers:
            docker("node", "update", "--label-rm", "lsname", "--label-rm", "lsworker",
                   node.node_id, check=False)
        shutil.rmtree(homes, ignore_errors=True)


def user_token(stack: Stack) -> str:
    with stack.client() as admin:
        return str(admin.post(f"/hub/api/users/{USER}/tokens", json={"note": "t"}).json()["token"])


async def test_a_workspace_on_each_node_through_the_proxy_and_a_hub_restart(
        swarm_stack: Stack, swarm_cluster: SwarmCluster) -> None:
    token = user_token(swarm_stack)
    with swarm_stack.client() as admin:
        uid = next(u["uid"] for u in admin.get("/hub/api/users").json() if u["name"] == USER)
    headers = {"Authorization": f"Bearer {token}"}
    nodes = [n.hostname for n in swarm_cluster.workers]
    with httpx.Client(base_url=swarm_stack.url, headers=headers, timeout=60) as api:
        for node in nodes:
            created = api.post("/hub/api/workspaces",
                               json={"name": f"w-{node}", "template": f"on-{node}"})
            assert created.status_code == 201, created.text
        placed = {node: wait_state(api, USER, f"w-{node}", {"running", "failed"}, timeout=300)
                  for node in nodes}
        for node, body in placed.items():
            assert body["state"] == "running", json.dumps(body)
            assert body["node"] == node  # the UI and API say where it runs
            status = api.get(f"/user/{USER}/w-{node}/api/status")  # HTTP through the proxy
            assert status.status_code == 200, status.text

    async with aiohttp.ClientSession() as session:
        sockets = {node: await open_kernel(session, f"{swarm_stack.url}/user/{USER}/w-{node}/",
                                           headers) for node in nodes}
        try:
            first, second = nodes
            assert await run_code(sockets[first], "1+1") == "2"
            # The home is one file tree on every node, the user's own.
            wrote = "import os, socket; p = os.path.expanduser('~/where'); " \
                    "open(p, 'w').write(socket.gethostname()); " \
                    "(os.getuid(), os.stat(os.path.expanduser('~')).st_uid)"
            assert await run_code(sockets[first], wrote) == f"({uid}, {uid})"
            read = "open(__import__('os').path.expanduser('~/where')).read()"
            written_on = await run_code(sockets[second], read)
            assert written_on.strip("'") != await run_code(
                sockets[second], "__import__('socket').gethostname()")  # another container

            # The hub dies and comes back: both adopted, the kernels' sockets still open.
            swarm_stack.kill_hub()
            swarm_stack.start_hub()
            for node in nodes:
                assert await run_code(sockets[node], "2+3") == "5"
        finally:
            for ws in sockets.values():
                await ws.close()
    with httpx.Client(base_url=swarm_stack.url, headers=headers, timeout=60) as api:
        for node in nodes:
            body = wait_state(api, USER, f"w-{node}", {"running"})
            assert body["node"] == node
        # One service each, one task each: nothing started twice by the restart.
        services = docker("service", "ls", "-q", "--filter",
                          f"label=org.labspace.instance={swarm_stack.instance}").stdout.split()
        assert len(services) == len(nodes)
        for service in services:
            running = docker("service", "ps", "-q", "--filter", "desired-state=running",
                             service).stdout.split()
            assert len(running) == 1
        # Deleting them removes their services, and gives the workers' CPUs back.
        for node in nodes:
            assert api.delete(f"/hub/api/workspaces/{USER}/w-{node}").status_code == 204
    assert docker("service", "ls", "-q", "--filter",
                  f"label=org.labspace.instance={swarm_stack.instance}").stdout.split() == []


async def test_a_dead_node_fails_its_workspace_which_starts_again_elsewhere(
        swarm_stack: Stack, swarm_cluster: SwarmCluster) -> None:
    headers = {"Authorization": f"Bearer {user_token(swarm_stack)}"}
    base = f"{swarm_stack.url}/user/{USER}/survivor/"
    with httpx.Client(base_url=swarm_stack.url, headers=headers, timeout=60) as api:
        created = api.post("/hub/api/workspaces", json={"name": "survivor",
                                                        "template": "on-a-worker"})
        assert created.status_code == 201, created.text
        first = wait_state(api, USER, "survivor", {"running", "failed"}, timeout=300)
        assert first["state"] == "running", json.dumps(first)
    dead = str(first["node"])
    async with aiohttp.ClientSession() as session:
        ws = await open_kernel(session, base, headers)
        try:
            assert await run_code(ws, "open(__import__('os').path.expanduser('~/kept'), "
                                      "'w').write('written before the node died')") == "28"
        finally:
            await ws.close()
    service = docker("service", "ls", "-q", "--filter",
                     f"label=org.labspace.instance={swarm_stack.instance}",
                     "--filter", "label=org.labspace.workspace=survivor").stdout.split()
    assert len(service) == 1
    swarm_cluster.kill_node(dead)
    killed_at = time.monotonic()
    try:
        with httpx.Client(base_url=swarm_stack.url, headers=headers, timeout=60) as api:
            # The manager declares the node down after its heartbeat grace (3 x 5 s), then
            # one reconcile interval (2 s here) marks the workspace.
            marked = wait_state(api, USER, "survivor", {"failed", "stopped"}, timeout=60)
            took = time.monotonic() - killed_at
            assert marked["state"] == "failed", json.dumps(marked)
            assert f"node {dead} is down" in str(marked["message"])
            assert took < 15 + 3 * 5, took  # heartbeat grace + a reconcile interval, slack

            started = api.post(f"/hub/api/workspaces/{USER}/survivor/start")
            assert started.status_code == 200, started.text
            again = wait_state(api, USER, "survivor", {"running", "failed"}, timeout=300)
            assert again["state"] == "running", json.dumps(again)
            assert again["node"] not in ("", dead)
        async with aiohttp.ClientSession() as session:
            ws = await open_kernel(session, base, headers)
            try:  # the home came along: it is the lab's NFS, not the dead node's disk
                assert await run_code(ws, "open(__import__('os').path.expanduser("
                                          "'~/kept')).read()") == "'written before the node died'"
            finally:
                await ws.close()
    finally:
        swarm_cluster.revive_node(dead)
    # The node is back: the swarm tells it the old task is shut down; it starts nothing.
    time.sleep(3)  # a heartbeat and a reconcile interval after its return
    running = docker("service", "ps", "-q", "--filter", "desired-state=running",
                     service[0]).stdout.split()
    assert len(running) == 1
    assert swarm_cluster.on_node(dead, "ps", "-q", "--filter",
                                 f"label=com.docker.swarm.service.id={service[0]}").stdout == ""
    with httpx.Client(base_url=swarm_stack.url, headers=headers, timeout=60) as api:
        body = api.get(f"/hub/api/workspaces/{USER}/survivor").json()
        assert body["state"] == "running" and body["node"] == again["node"]
        assert api.get(f"/user/{USER}/survivor/api/status").status_code == 200
