"""The load page with 100 running workspaces: the hub's CPU per update and the bytes each
client receives per minute.

    .venv/bin/python bench/loadpage.py [--workspaces 100] [--clients 1 10] [--seconds 60]

A real labspace (labspace.testing.Stack: proxy and hub processes, load_interval 2 s). The
"workspaces" are tiny containers of the test image running `sleep`, labelled as the
instance's workspaces of owners bench000.. (the collector finds workspaces by their labels;
the hub's reconcile, which would remove containers it has no record of, runs once at start,
before they exist, and then only hourly). Then, through the proxy:

1. the hub's CPU with nobody watching (the feed is idle: the baseline);
2. for each client count, that many admins' pages (every workspace, with owners) on
   /hub/api/load/events for --seconds: the hub's CPU above the baseline per update, and
   the bytes per client per minute;
3. one member's page (their one workspace and the servers' totals): bytes per minute.

Everything it started is removed at the end (the Stack removes the instance's containers).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

from labspace.runtime.base import LABEL_INSTANCE, LABEL_OWNER, LABEL_WORKSPACE
from labspace.testing import Stack

IMAGE = "labspace/jupyterlab:latest"
INTERVAL = 2.0


def start_tiny(stack: Stack, number: int) -> str:
    return subprocess.run(
        ["docker", "run", "-d", "--rm", "--entrypoint", "sleep", "--network", "none",
         "--memory", "32m", "--label", f"{LABEL_INSTANCE}={stack.instance}",
         "--label", f"{LABEL_OWNER}=bench{number:03d}", "--label", f"{LABEL_WORKSPACE}=w",
         IMAGE, "3600"], capture_output=True, text=True, check=True).stdout.strip()


def account(admin: httpx.Client, name: str, *, is_admin: bool) -> str:
    """An API token of a new account ``name``."""
    admin.post("/hub/api/users", json={"name": name, "password": "bench-" + os.urandom(9).hex(),
                                       "admin": is_admin}).raise_for_status()
    made = admin.post(f"/hub/api/users/{name}/tokens", json={"note": "bench"})
    made.raise_for_status()
    return str(made.json()["token"])


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def follow(url: str, token: str, seconds: float) -> tuple[int, int]:
    """Bytes and events one page receives in ``seconds``."""
    received = events = 0
    async with httpx.AsyncClient(base_url=url, timeout=30.0, headers={
            "Authorization": f"Bearer {token}"}) as client, client.stream(
            "GET", "/hub/api/load/events") as response:
        response.raise_for_status()
        deadline = time.monotonic() + seconds
        stream = response.aiter_raw()
        while (left := deadline - time.monotonic()) > 0:
            try:
                chunk = await asyncio.wait_for(anext(stream), left)
            except (TimeoutError, StopAsyncIteration):
                break
            received += len(chunk)
            events += chunk.count(b"event: load")
    return received, events


def measure(stack: Stack, tokens: list[str], seconds: float, idle_rate: float) -> None:
    assert stack.hub_process is not None
    pid = stack.hub_process.pid
    before = cpu_seconds(pid)

    async def everyone() -> list[tuple[int, int]]:
        return await asyncio.gather(*(follow(stack.url, t, seconds) for t in tokens))

    began = time.monotonic()
    results = asyncio.run(everyone())
    spent = cpu_seconds(pid) - before - idle_rate * (time.monotonic() - began)
    updates = max(events for _, events in results)
    per_minute = sum(size for size, _ in results) / len(results) * 60 / seconds
    print(f"  {len(tokens):>3} page(s): {updates} updates in {seconds:.0f} s; hub CPU "
          f"{1000 * spent / max(1, updates):.1f} ms per update (above idle); "
          f"{per_minute / 1024:.1f} KiB per client per minute", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspaces", type=int, default=100)
    parser.add_argument("--clients", type=int, nargs="*", default=[1, 10])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    count = max(1, min(args.workspaces, 300))
    seconds = max(10.0, min(args.seconds, 300.0))
    stack = Stack(Path(tempfile.mkdtemp(prefix="labspace-bench-load-")), extra_env={
        "LABSPACE_RECONCILE_INTERVAL": "3600", "LABSPACE_LOAD_INTERVAL": str(INTERVAL)})
    stack.start()
    try:
        began = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: start_tiny(stack, n), range(count)))
        print(f"{count} tiny workspaces running ({time.monotonic() - began:.0f} s to start); "
              f"load_interval {INTERVAL:g} s; {psutil.cpu_count()} CPUs", flush=True)
        with stack.client() as admin:
            # One account per page: the hub takes at most 5 streams of one account.
            member = account(admin, "bench000", is_admin=False)
            admins = [account(admin, f"benchadmin{n}", is_admin=True)
                      for n in range(max(1, min(max(args.clients), 50)))]
        assert stack.hub_process is not None
        time.sleep(5)
        idle_before = cpu_seconds(stack.hub_process.pid)
        time.sleep(20)
        idle_rate = (cpu_seconds(stack.hub_process.pid) - idle_before) / 20
        print(f"  nobody watching: hub CPU {1000 * idle_rate:.1f} ms per second", flush=True)
        for clients in args.clients:
            print(f"admins' pages (all {count} workspaces):", flush=True)
            measure(stack, admins[:max(1, min(clients, 50))], seconds, idle_rate)
        print("a member's page (one workspace of theirs):", flush=True)
        measure(stack, [member], seconds, idle_rate)
    finally:
        stack.close()


if __name__ == "__main__":
    main()
