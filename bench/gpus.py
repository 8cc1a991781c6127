"""What the GPU allocator (labspace.gpus.allocator) costs at 1,000 workspaces and 64 GPUs.

    .venv/bin/python bench/gpus.py [--workspaces 1000] [--gpus 64] [--rounds 5]

Placement decisions per second, on one event loop as the hub runs them, in three shapes:

1. whole: every workspace asks for one whole GPU; 64 are placed at once and the other 936
   wait in line; then the holders give theirs back one at a time, and each release serves
   the line (the waiting workspace's future gets its GPU) until all 1,000 have run;
2. shared: every workspace asks for a shared GPU (share limit 16: 1,024 places), all placed
   on the least-shared GPU at once, then all released;
3. churn: 1,000 workspaces hold a mix (1, 2 or 4 whole GPUs, or a shared one) and start and
   stop at random: each step releases one and takes for another (10,000 steps).

The best of ``--rounds`` is printed (the least disturbed by the machine's other work).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

from labspace.gpus import GpuAllocator, GpuInfo, GpuRequest, Holder


def inventory(count: int) -> list[GpuInfo]:
    return [GpuInfo(index=i, uuid=f"GPU-{i:04d}", name="bench", minor=i,
                    memory_total_bytes=80 * 1024**3, memory_used_bytes=0, mig=False)
            for i in range(count)]


async def whole(workspaces: int, gpus: int) -> tuple[int, float]:
    allocator = GpuAllocator(inventory(gpus))
    order: asyncio.Queue[int] = asyncio.Queue()

    async def workspace(n: int) -> None:
        await allocator.take(Holder(n, f"u/{n}"), GpuRequest(whole=1))
        order.put_nowait(n)

    began = time.perf_counter()
    tasks = [asyncio.create_task(workspace(n)) for n in range(workspaces)]
    for _ in range(workspaces):  # each that got a GPU gives it back: the line moves on
        allocator.release(await order.get())
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    assert not allocator.holding() and not allocator.waiting
    return workspaces, elapsed


async def shared(workspaces: int, gpus: int) -> tuple[int, float]:
    allocator = GpuAllocator(inventory(gpus), share_limit=16)
    began = time.perf_counter()
    for n in range(workspaces):
        if allocator.try_take(Holder(n, f"u/{n}"), GpuRequest(shared=True)) is None:
            raise AssertionError("no shared place left")
    for n in range(workspaces):
        allocator.release(n)
    return workspaces, time.perf_counter() - began


async def churn(workspaces: int, gpus: int, steps: int = 10_000) -> tuple[int, float]:
    rng = random.Random(11)
    allocator = GpuAllocator(inventory(gpus), share_limit=16)
    kinds = [GpuRequest(whole=1), GpuRequest(whole=2), GpuRequest(whole=4),
             GpuRequest(shared=True)]
    wanted = {n: rng.choice(kinds) for n in range(workspaces)}
    stopped: list[int] = []  # those that do not hold a GPU now
    decisions = 0

    def take(n: int) -> None:
        nonlocal decisions
        decisions += 1
        if allocator.try_take(Holder(n, f"u/{n}"), wanted[n]) is None:
            stopped.append(n)  # it waits; here it simply tries again later

    began = time.perf_counter()
    for n in range(workspaces):
        take(n)
    for _ in range(steps):
        held = list(allocator.holding())
        gone = rng.choice(held)
        allocator.release(gone)  # a stop...
        decisions += 1
        take(stopped.pop(rng.randrange(len(stopped))))  # ...and a start of another
        stopped.append(gone)
    return decisions, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspaces", type=int, default=1000)
    parser.add_argument("--gpus", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"GPU allocator: {args.workspaces} workspaces, {args.gpus} GPUs, best of "
          f"{args.rounds}")
    for name, scenario in (("whole (line of 936)", whole), ("shared (limit 16)", shared),
                           ("churn (mixed)", churn)):
        best = None
        for _ in range(args.rounds):
            decisions, seconds = asyncio.run(scenario(args.workspaces, args.gpus))
            rate = decisions / seconds
            best = rate if best is None else max(best, rate)
        print(f"  {name:<22} {decisions:>6} decisions  {best:>10,.0f} decisions/s  "
              f"({1e6 / (best or 1):.1f} µs each)")


if __name__ == "__main__":
    main()
