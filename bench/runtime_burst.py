"""Burst of workspace starts: N containers created+started concurrently vs one after another.

    .venv/bin/python bench/runtime_burst.py [--count 20] [--image labspace/base:bookworm]

Both runs use DockerRuntime in the same process against the same engine; every container
is labelled with this run's id and removed at the end, also on failure or Ctrl-C. Bounded:
each phase has a timeout (--timeout, default 300 s).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid

from labspace.runtime.base import ContainerSpec
from labspace.runtime.docker import DockerRuntime

LABEL = "org.labspace.bench-run"


async def create_and_start(runtime: DockerRuntime, spec: ContainerSpec) -> float:
    began = time.monotonic()
    info = await runtime.create(spec)
    started = await runtime.start(info.id)
    if not started.running:
        raise RuntimeError(f"{spec.name} is {started.status}")
    return time.monotonic() - began


async def cleanup(runtime: DockerRuntime, run_id: str) -> None:
    infos = await runtime.list({LABEL: run_id})
    await asyncio.gather(*(runtime.remove(info.id) for info in infos))


def describe(label: str, wall: float, each: list[float]) -> str:
    return (
        f"{label:<12} wall {wall:6.2f} s   per container: median {statistics.median(each):.2f} s"
        f", max {max(each):.2f} s"
    )


async def main(count: int, image: str, timeout: float) -> int:
    run_id = uuid.uuid4().hex[:8]
    runtime = DockerRuntime()

    def spec(phase: str, index: int) -> ContainerSpec:
        return ContainerSpec(
            name=f"lsbench-{run_id}-{phase}-{index}",
            image=image,
            command=["sleep", "300"],
            labels={LABEL: run_id},
        )

    try:
        await runtime.create(spec("warmup", 0))  # first use: image layers, API version probe
        await cleanup(runtime, run_id)

        began = time.monotonic()
        sequential = []
        async with asyncio.timeout(timeout):
            for index in range(count):
                sequential.append(await create_and_start(runtime, spec("seq", index)))
        seq_wall = time.monotonic() - began
        await cleanup(runtime, run_id)

        began = time.monotonic()
        async with asyncio.timeout(timeout):
            concurrent = await asyncio.gather(
                *(create_and_start(runtime, spec("par", index)) for index in range(count))
            )
        par_wall = time.monotonic() - began

        print(f"{count} containers of {image} running `sleep 300`, create+start:")
        print(describe("sequential", seq_wall, sequential))
        print(describe("concurrent", par_wall, list(concurrent)))
        print(f"speed-up {seq_wall / par_wall:.1f}x")
        return 0
    finally:
        await cleanup(runtime, run_id)
        await runtime.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--image", default="labspace/base:bookworm")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.count, args.image, args.timeout)))
