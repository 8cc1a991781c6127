"""The allocator alone: whole GPUs never twice, shared ones least-shared first, a line of
waiters served as GPUs come back, and what a restarted hub holds again."""

from __future__ import annotations

import asyncio
import random

import pytest

from labspace.errors import StartFailed
from labspace.gpus import GpuAllocator, GpuInfo, GpuRequest, Grant, Holder


def gpus(count: int, mig: tuple[int, ...] = ()) -> list[GpuInfo]:
    return [GpuInfo(index=i, uuid=f"GPU-{i}", name="test", minor=i,
                    memory_total_bytes=1, memory_used_bytes=0, mig=i in mig)
            for i in range(count)]


def who(n: int) -> Holder:
    return Holder(n, f"ada/ws{n}")


WHOLE, SHARED = GpuRequest(whole=1), GpuRequest(shared=True)


def test_whole_gpus_never_twice_and_lowest_index_first() -> None:
    allocator = GpuAllocator(gpus(4))
    assert allocator.try_take(who(1), GpuRequest(whole=2)) == Grant(("GPU-0", "GPU-1"))
    assert allocator.try_take(who(2), WHOLE) == Grant(("GPU-2",))
    assert allocator.try_take(who(3), GpuRequest(whole=2)) is None  # one left
    assert allocator.try_take(who(4), WHOLE) == Grant(("GPU-3",))
    assert allocator.try_take(who(5), SHARED) is None  # all held whole: none to share
    allocator.release(1)
    assert allocator.try_take(who(3), GpuRequest(whole=2)) == Grant(("GPU-0", "GPU-1"))


def test_shared_takes_the_least_shared_and_never_a_whole_one() -> None:
    allocator = GpuAllocator(gpus(3), share_limit=2)
    allocator.try_take(who(1), WHOLE)  # GPU-0 whole
    picks = [allocator.try_take(who(n), SHARED) for n in range(2, 6)]
    assert [g.uuids[0] for g in picks if g] == ["GPU-1", "GPU-2", "GPU-1", "GPU-2"]
    assert all(g and g.shared for g in picks)
    assert allocator.try_take(who(9), SHARED) is None  # each shared by 2, the limit
    assert allocator.try_take(who(10), WHOLE) is None  # a shared GPU is not handed out whole
    holders, shared = allocator.holders_of("GPU-1")
    assert shared and {h.workspace_id for h in holders} == {2, 4}
    for n in (2, 4):
        allocator.release(n)
    assert allocator.try_take(who(10), WHOLE) == Grant(("GPU-1",))


def test_mig_gpus_are_not_handed_out_and_impossible_requests_fail_at_once() -> None:
    allocator = GpuAllocator(gpus(2, mig=(0,)))
    assert allocator.gpus == ["GPU-1"]
    with pytest.raises(StartFailed, match="asks for 2 GPUs, and this server has 1 GPU "):
        allocator.try_take(who(1), GpuRequest(whole=2))
    with pytest.raises(StartFailed, match="has no GPUs"):
        GpuAllocator([]).try_take(who(1), SHARED)


async def test_fifty_starts_on_four_gpus_never_share_one_and_all_get_their_turn() -> None:
    allocator = GpuAllocator(gpus(4))
    holding: dict[str, int] = {}
    waited: list[int] = []
    ran: list[int] = []

    async def workspace(n: int) -> None:
        async def on_wait() -> None:
            waited.append(n)

        grant = await allocator.take(who(n), WHOLE, on_wait)
        (uuid,) = grant.uuids
        assert uuid not in holding, f"{uuid} given to {n} while {holding.get(uuid)} has it"
        holding[uuid] = n
        await asyncio.sleep(random.uniform(0, 0.01))  # it runs a while
        del holding[uuid]
        ran.append(n)
        allocator.release(n)

    await asyncio.wait_for(asyncio.gather(*(workspace(n) for n in range(50))), 10)
    assert sorted(ran) == list(range(50))
    assert len(waited) == 46  # four started at once, the rest waited for a GPU
    assert allocator.holding() == {} and allocator.waiting == 0


async def test_a_cancelled_wait_leaves_the_line_and_keeps_nothing() -> None:
    allocator = GpuAllocator(gpus(1))
    allocator.try_take(who(1), WHOLE)
    waiting = asyncio.create_task(allocator.take(who(2), WHOLE))
    await asyncio.sleep(0)
    assert allocator.waiting == 1
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert allocator.waiting == 0
    allocator.release(1)
    assert allocator.holding() == {}


async def test_a_grant_that_arrives_as_the_wait_is_cancelled_is_given_back() -> None:
    allocator = GpuAllocator(gpus(1))
    allocator.try_take(who(1), WHOLE)
    waiting = asyncio.create_task(allocator.take(who(2), WHOLE))
    await asyncio.sleep(0)
    allocator.release(1)  # serves workspace 2's future...
    waiting.cancel()  # ...which is cancelled before it runs again
    await asyncio.gather(waiting, return_exceptions=True)
    assert allocator.holding() == {}
    assert allocator.try_take(who(3), WHOLE) == Grant(("GPU-0",))


def test_restore_holds_again_and_never_twice() -> None:
    allocator = GpuAllocator(gpus(4))
    allocator.restore(who(1), Grant(("GPU-2",)))
    allocator.restore(who(2), Grant(("GPU-3",), shared=True))
    allocator.restore(who(3), Grant(("GPU-3",), shared=True))
    allocator.restore(who(4), Grant(("GPU-2",)))  # a second claim on a whole one: ignored
    allocator.restore(who(5), Grant(("GPU-gone",)))  # removed from the host since
    assert set(allocator.holding()) == {1, 2, 3}
    assert allocator.try_take(who(6), GpuRequest(whole=2)) == Grant(("GPU-0", "GPU-1"))
    assert allocator.try_take(who(7), WHOLE) is None
    # a resumed start of a restored holder keeps what it had
    assert allocator.try_take(who(1), WHOLE) == Grant(("GPU-2",))


def test_keep_only_releases_the_rest() -> None:
    allocator = GpuAllocator(gpus(4))
    for n in range(4):
        allocator.try_take(who(n), WHOLE)
    assert sorted(allocator.keep_only([0, 2])) == [1, 3]
    assert set(allocator.holding()) == {0, 2}
