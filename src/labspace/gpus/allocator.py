"""Who holds which GPU: whole GPUs to one workspace each, shared GPUs time-sliced by several.

All state lives in this object and changes only in synchronous methods (no ``await`` inside
a decision), so concurrent starts on one event loop can never both win the same GPU; no lock
is needed. A start that finds nothing free waits in line (a future per waiter); every release
serves the line in arrival order, giving each waiter that now fits its GPUs. A waiter that
still does not fit stays, and one behind it that fits is served (a request for one GPU does
not wait behind a request for four).

Rules:
- a GPU is either free, held whole by one workspace, or shared by 1..``share_limit``;
- whole requests take the free GPUs of lowest index; a shared request takes the GPU with the
  fewest sharers among those not held whole (a free GPU counts as zero sharers);
- GPUs in MIG mode are never handed out (a /dev/nvidiaN of a MIG GPU runs no CUDA);
- a request that can never fit here (more GPUs than the host has) fails at once instead of
  waiting forever.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from labspace.errors import StartFailed
from labspace.gpus.model import GpuInfo, GpuRequest, Grant, Holder

WAITING_FOR_A_GPU = "waiting for a GPU"


@dataclass
class _Waiter:
    holder: Holder
    request: GpuRequest
    future: asyncio.Future[Grant]


class GpuAllocator:
    def __init__(self, gpus: Sequence[GpuInfo], share_limit: int = 8) -> None:
        if share_limit < 1:
            raise ValueError("share_limit must be at least 1")
        self.share_limit = share_limit
        self._order = [gpu.uuid for gpu in sorted(gpus, key=lambda g: g.index) if not gpu.mig]
        self._whole: dict[str, Holder] = {}
        self._shared: dict[str, dict[int, Holder]] = {}
        self._grants: dict[int, Grant] = {}
        self._holders: dict[int, Holder] = {}
        self._waiting: deque[_Waiter] = deque()

    # -- reading -------------------------------------------------------------------------

    @property
    def gpus(self) -> list[str]:
        """The UUIDs handed out here, in index order."""
        return list(self._order)

    def held_by(self, workspace_id: int) -> Grant | None:
        return self._grants.get(workspace_id)

    def holders_of(self, uuid: str) -> tuple[tuple[Holder, ...], bool]:
        """Who holds this GPU, and whether they share it."""
        if uuid in self._whole:
            return (self._whole[uuid],), False
        sharers = self._shared.get(uuid)
        return (tuple(sharers.values()), True) if sharers else ((), False)

    def holding(self) -> dict[int, Grant]:
        return dict(self._grants)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    # -- deciding ------------------------------------------------------------------------

    def try_take(self, holder: Holder, request: GpuRequest) -> Grant | None:
        """The GPUs for this request now, or None when they are not free. A workspace that
        holds a grant of the same kind already (a start resumed after a restart) keeps it."""
        self._check_possible(request)
        current = self._grants.get(holder.workspace_id)
        if current is not None:
            if _fits(current, request):
                return current
            self.release(holder.workspace_id)
        grant = self._place(request)
        if grant is not None:
            self._hold(holder, grant)
        return grant

    async def take(self, holder: Holder, request: GpuRequest,
                   on_wait: Callable[[], Awaitable[None]] | None = None) -> Grant:
        """The GPUs for this request, waiting in line until they are free (``on_wait`` is
        awaited once when the wait begins: the workspace says "waiting for a GPU"). A
        cancelled wait leaves the line, and gives back a grant that arrived meanwhile."""
        grant = self.try_take(holder, request)
        if grant is not None:
            return grant
        waiter = _Waiter(holder, request, asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        try:
            if on_wait is not None:
                await on_wait()
            return await waiter.future
        except BaseException:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            elif waiter.future.done() and not waiter.future.cancelled():
                self.release(holder.workspace_id)
            raise

    def release(self, workspace_id: int) -> Grant | None:
        """Give back what the workspace holds (nothing: no error), then serve the line."""
        grant = self._grants.pop(workspace_id, None)
        self._holders.pop(workspace_id, None)
        if grant is None:
            return None
        for uuid in grant.uuids:
            if grant.shared:
                sharers = self._shared.get(uuid, {})
                sharers.pop(workspace_id, None)
                if not sharers:
                    self._shared.pop(uuid, None)
            elif uuid in self._whole and self._whole[uuid].workspace_id == workspace_id:
                del self._whole[uuid]
        self._serve()
        return grant

    def restore(self, holder: Holder, grant: Grant) -> None:
        """Hold what a previous hub process handed out (from the open instances' devices),
        so a restart never hands a GPU out twice. GPUs this host no longer has are skipped;
        a GPU already held whole is not given to a second holder."""
        uuids = tuple(u for u in grant.uuids if u in self._order and u not in self._whole
                      and (grant.shared or not self._shared.get(u)))
        if uuids:
            self._hold(holder, Grant(uuids, grant.shared))

    def keep_only(self, workspace_ids: Iterable[int]) -> list[int]:
        """Release every holder not among ``workspace_ids`` (reconcile: the workspaces that
        are starting, running or stopping); returns those released."""
        keep = set(workspace_ids)
        gone = [wid for wid in self._grants if wid not in keep]
        for wid in gone:
            self.release(wid)
        return gone

    # -- internals -----------------------------------------------------------------------

    def _check_possible(self, request: GpuRequest) -> None:
        if not request.wanted:
            raise ValueError("a request for no GPU needs no allocator")
        have = len(self._order)
        if request.whole > have or (request.shared and not have):
            asked = f"{request.whole} GPUs" if request.whole > 1 else "a GPU"
            raise StartFailed(f"it asks for {asked}, and this server has "
                              f"{have or 'no'} GPU{'' if have == 1 else 's'} to hand out")

    def _place(self, request: GpuRequest) -> Grant | None:
        if request.shared:
            best, fewest = None, self.share_limit
            for uuid in self._order:
                if uuid in self._whole:
                    continue
                count = len(self._shared.get(uuid, ()))
                if count < fewest:
                    best, fewest = uuid, count
                    if count == 0:
                        break
            return Grant((best,), shared=True) if best is not None else None
        free = [u for u in self._order if u not in self._whole and u not in self._shared]
        return Grant(tuple(free[:request.whole])) if len(free) >= request.whole else None

    def _hold(self, holder: Holder, grant: Grant) -> None:
        for uuid in grant.uuids:
            if grant.shared:
                self._shared.setdefault(uuid, {})[holder.workspace_id] = holder
            else:
                self._whole[uuid] = holder
        self._grants[holder.workspace_id] = grant
        self._holders[holder.workspace_id] = holder

    def _serve(self) -> None:
        if not self._waiting:
            return
        # What is left to give, so that a long line is not tried waiter by waiter once
        # nothing fits any more (a release frees one GPU; the line may be a thousand long).
        free, sharable = self._room()
        for waiter in list(self._waiting):
            if not free and not sharable:
                break
            if waiter.future.done():  # cancelled, leaving the line in its own task
                continue
            grant = self._grants.get(waiter.holder.workspace_id)
            if grant is None:
                request = waiter.request
                if request.whole > free or (request.shared and not sharable):
                    continue
                grant = self._place(request)
                if grant is None:
                    continue
                self._hold(waiter.holder, grant)
                free, sharable = self._room()
            self._waiting.remove(waiter)
            waiter.future.set_result(grant)

    def _room(self) -> tuple[int, bool]:
        """Free GPUs, and whether a shared request would find a place."""
        free = sum(1 for u in self._order if u not in self._whole and u not in self._shared)
        sharable = free > 0 or any(len(sharers) < self.share_limit
                                   for sharers in self._shared.values())
        return free, sharable


def _fits(grant: Grant, request: GpuRequest) -> bool:
    return (grant.shared == request.shared
            and (request.shared or len(grant.uuids) == request.whole))
