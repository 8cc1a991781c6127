#!/usr/bin/env python3
"""Workspace benchmarks on a real labspace (proxy + hub processes, real Docker engine).

    cold    request -> running and the app answering through the proxy, N sequential starts
    burst   N workspaces requested at once: failures and time until the last is ready
    memory  hub + proxy resident memory with N running workspaces

Usage: .venv/bin/python bench/workspaces.py cold --runs 10
       .venv/bin/python bench/workspaces.py burst --count 20 --count 30
       .venv/bin/python bench/workspaces.py memory --count 20
Every loop is bounded in count and time; only loopback and the test's own containers are
contacted; everything created is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from labspace.testing import Stack

TEMPLATE = "jupyterlab"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def start_and_wait(client: httpx.AsyncClient, name: str, deadline: float) -> float:
    """Seconds from the create request until the app answers through the proxy.

    Like the web page, it follows the progress stream instead of polling, so the benchmark
    does not steal the CPU the starting workspaces need."""
    began = time.perf_counter()
    response = await client.post("/hub/api/workspaces", json={"name": name, "template": TEMPLATE})
    response.raise_for_status()
    final = ""
    async with client.stream("GET", f"/hub/api/workspaces/admin/{name}/events",
                             timeout=max(1.0, deadline - time.perf_counter())) as events:
        async for line in events.aiter_lines():
            if line.startswith("data:"):
                final = json.loads(line[5:])["state"]
                if final in ("running", "failed"):
                    break
    if final != "running":
        reply = await client.get(f"/hub/api/workspaces/admin/{name}")
        raise RuntimeError(f"{name} ended {final}: {reply.text[:300]}")
    while time.perf_counter() < deadline:
        if (await client.get(f"/user/admin/{name}/api/status")).status_code == 200:
            return time.perf_counter() - began
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{name} not answering through the proxy in time")


async def delete_all(client: httpx.AsyncClient, names: list[str]) -> None:
    await asyncio.gather(*(client.delete(f"/hub/api/workspaces/admin/{n}") for n in names))


def client_for(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.url, timeout=120,
                             headers={"Authorization": f"Bearer {stack.admin_token}"},
                             limits=httpx.Limits(max_connections=64))


async def cold(stack: Stack, runs: int) -> None:
    times: list[float] = []
    async with client_for(stack) as client:
        for i in range(runs):
            name = f"cold{i}"
            times.append(await start_and_wait(client, name, time.perf_counter() + 120))
            await delete_all(client, [name])
    print(f"cold start ({runs} runs, template {TEMPLATE}): "
          f"median {statistics.median(times):.2f} s, p90 {percentile(times, 0.9):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s")


async def burst(stack: Stack, count: int) -> None:
    async with client_for(stack) as client:
        names = [f"burst{count}-{i}" for i in range(count)]
        began = time.perf_counter()
        results = await asyncio.gather(
            *(start_and_wait(client, n, began + 300) for n in names), return_exceptions=True)
        wall = time.perf_counter() - began
        ok = [r for r in results if isinstance(r, float)]
        failed = [r for r in results if not isinstance(r, float)]
        print(f"burst of {count}: {len(failed)} failed, last ready after {wall:.1f} s, "
              f"median ready {statistics.median(ok) if ok else float('nan'):.1f} s")
        for error in failed[:3]:
            print(f"  failure: {error}")
        await delete_all(client, names)


def rss_mib(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


async def memory(stack: Stack, count: int) -> None:
    assert stack.hub_process and stack.proxy_process
    hub, proxy = psutil.Process(stack.hub_process.pid), psutil.Process(stack.proxy_process.pid)
    print(f"idle: hub {rss_mib(hub):.0f} MiB, proxy {rss_mib(proxy):.0f} MiB")
    async with client_for(stack) as client:
        names = [f"mem{i}" for i in range(count)]
        began = time.perf_counter()
        await asyncio.gather(*(start_and_wait(client, n, began + 300) for n in names))
        # Some traffic through the proxy to every workspace, as people would make.
        for _ in range(5):
            await asyncio.gather(*(client.get(f"/user/admin/{n}/api/status") for n in names))
        await client.get("/hub/api/usage")
        total = rss_mib(hub) + rss_mib(proxy)
        print(f"with {count} running workspaces: hub {rss_mib(hub):.0f} MiB + proxy "
              f"{rss_mib(proxy):.0f} MiB = {total:.0f} MiB")
        await delete_all(client, names)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["cold", "burst", "memory"])
    parser.add_argument("--runs", type=int, default=10, help="cold: number of starts")
    parser.add_argument("--count", type=int, action="append",
                        help="burst/memory: workspaces at once (repeatable)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="labspace-bench-"))
    stack = Stack(root, extra_env={"LABSPACE_LOG_LEVEL": "warning"})
    try:
        stack.start()
        if args.what == "cold":
            await cold(stack, args.runs)
        elif args.what == "burst":
            for count in args.count or [20]:
                await burst(stack, count)
        else:
            for count in args.count or [20]:
                await memory(stack, count)
    finally:
        stack.close()


if __name__ == "__main__":
    asyncio.run(main())
