"""The Swarm runtime against the single-host one, on a test swarm of three nodes on this machine.

    .venv/bin/python bench/swarm.py [--runs 6] [--burst 30] [--requests 300] [--keep-swarm]

1. cold start: create + start + the app answering over HTTP from this host (the proxy's data
   path: a bridge address for Docker, an overlay address through the gateway for Swarm), the
   two runtimes alternating, median and ratio;
2. burst: ``--burst`` workspaces started at once on the swarm: failures, time to the last
   answering, how many landed on each node;
3. the data path's cost: keep-alive HTTP requests from this host to an app on another node
   (overlay through the gateway) vs to a container on this host's bridge, median latency.

The app is busybox httpd in the swarm test image, so the figures are the runtime's and the
network's, not an app's start-up. Everything made carries this run's label and is removed at
the end (the swarm too, unless --keep-swarm). Bounded: each start waits at most 120 s.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import sys
import time
import uuid
from typing import Any

import httpx

from labspace.images.build import build_image
from labspace.runtime.base import ContainerSpec, Limits
from labspace.runtime.docker import DockerRuntime
from labspace.runtime.swarm import SwarmRuntime
from labspace.testing.stack import remove_network
from labspace.testing.swarm import (
    PREFIX,
    TASK_DOCKERFILE,
    TASK_IMAGE,
    ensure_image,
    push_image,
    setup_swarm,
    teardown_swarm,
)
from labspace.testing.swarmprobe import remove_edge

RUN = uuid.uuid4().hex[:6]
LABELS = {"org.labspace.bench-run": RUN}
HTTPD = ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && "
         "exec busybox httpd -f -p 8888 -h /www"]
EDGE = f"{PREFIX}-bench-{RUN}"


def spec(name: str, image: str, network: str | None = None) -> ContainerSpec:
    return ContainerSpec(name=f"{PREFIX}-b{RUN}-{name}", image=image, command=HTTPD,
                         labels=dict(LABELS), network=network, ports=[8888],
                         limits=Limits(cpus=0.1, memory_bytes=32 * 1024**2, pids=32))


async def answering(runtime: Any, handle: str, client: httpx.AsyncClient) -> Any:
    """Start ``handle`` and wait until its app answers this host; the runtime's info."""
    info = await runtime.start(handle)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if info.running and info.endpoints:
            try:
                if (await client.get(info.endpoints[8888] + "/")).status_code == 200:
                    return info
            except httpx.TransportError:
                pass
        elif info.status == "exited":
            raise RuntimeError(f"{info.name} exited: {info.error}")
        await asyncio.sleep(0.05)
        info = await runtime.inspect(handle) or info
    raise TimeoutError(f"{handle} did not answer in 120 s")


async def cold(runtime: Any, name: str, image: str, client: httpx.AsyncClient,
               network: str | None = None) -> float:
    began = time.monotonic()
    created = await runtime.create(spec(name, image, network))
    await answering(runtime, created.id, client)
    elapsed = time.monotonic() - began
    await runtime.remove(created.id)
    return elapsed


async def latency(client: httpx.AsyncClient, url: str, count: int) -> float:
    await client.get(url)  # the connection is open before timing
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        (await client.get(url)).raise_for_status()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1000


async def bench(args: argparse.Namespace, image_ref: str, guard_ref: str,
                workers: set[str]) -> None:
    swarm = SwarmRuntime(gateway_image=TASK_IMAGE, guard_image=guard_ref)
    docker = DockerRuntime()
    network = f"{PREFIX}-bench-{RUN}-bridge"
    try:
        await swarm.ensure_network(EDGE, host_ports=[])
        await docker.ensure_network(network)
        async with httpx.AsyncClient(timeout=10) as client:
            times: dict[str, list[float]] = {"docker": [], "swarm": []}
            for i in range(args.runs):
                times["docker"].append(await cold(docker, f"d{i}", TASK_IMAGE, client, network))
                times["swarm"].append(await cold(swarm, f"s{i}", image_ref, client))
                print(f"  run {i + 1}: docker {times['docker'][-1]:.2f} s, "
                      f"swarm {times['swarm'][-1]:.2f} s", flush=True)
            d, s = statistics.median(times["docker"]), statistics.median(times["swarm"])
            print(f"cold start to answering, median of {args.runs}: docker {d:.2f} s, "
                  f"swarm {s:.2f} s, ratio {s / d:.2f}")

            began = time.monotonic()
            created = await asyncio.gather(*(swarm.create(spec(f"burst{i}", image_ref))
                                             for i in range(args.burst)))
            results = await asyncio.gather(*(answering(swarm, c.id, client) for c in created),
                                           return_exceptions=True)
            wall = time.monotonic() - began
            failed = [r for r in results if isinstance(r, BaseException)]
            spread = collections.Counter(r.node for r in results
                                         if not isinstance(r, BaseException))
            print(f"burst of {args.burst}: {len(failed)} failed, last answering after "
                  f"{wall:.1f} s, per node {dict(sorted(spread.items()))}")
            for failure in failed[:3]:
                print(f"  failure: {failure}")

            local = await docker.create(spec("local", TASK_IMAGE, network))
            here = await answering(docker, local.id, client)
            remote = next(r for r in results
                          if not isinstance(r, BaseException) and r.node in workers)
            here_ms = await latency(client, here.endpoints[8888] + "/", args.requests)
            there_ms = await latency(client, remote.endpoints[8888] + "/", args.requests)
            print(f"keep-alive GET, median of {args.requests}: this host's bridge "
                  f"{here_ms:.3f} ms, another node through the gateway ({remote.node}) "
                  f"{there_ms:.3f} ms, +{there_ms - here_ms:.3f} ms")
    finally:
        for runtime in (swarm, docker):
            for info in await runtime.list(LABELS):
                await runtime.remove(info.id)
            await runtime.close()
        remove_edge(EDGE)
        remove_network(network)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=6, help="cold starts per runtime")
    parser.add_argument("--burst", type=int, default=30, help="workspaces started at once")
    parser.add_argument("--requests", type=int, default=300, help="requests per latency figure")
    parser.add_argument("--keep-swarm", action="store_true", help="leave the test swarm up")
    args = parser.parse_args()
    cluster = setup_swarm(workers=2)
    try:
        ensure_image(TASK_IMAGE, TASK_DOCKERFILE)
        image_ref = push_image(cluster, TASK_IMAGE)
        guard_ref = push_image(cluster, build_image("node-guard", base="debootstrap",
                                                    progress=lambda line: None))
        asyncio.run(bench(args, image_ref, guard_ref, {w.hostname for w in cluster.workers}))
    finally:
        if not args.keep_swarm:
            teardown_swarm(cluster)
    return 0


if __name__ == "__main__":
    sys.exit(main())
