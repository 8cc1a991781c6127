"""GpuService.readings(): the read-only view the load page and the metrics read."""

from __future__ import annotations

from pathlib import Path

from labspace.gpus import GpuRequest, GpuService, Held, NvmlSource
from labspace.testing.nvml import FakeNvml

RECORDINGS = Path(__file__).parent / "recordings"


async def test_readings_say_who_holds_each_gpu_and_its_use_now() -> None:
    nvml = FakeNvml.load(RECORDINGS / "8gpus-mig-on.json")
    service = GpuService(NvmlSource(nvml))
    uuids = [str(d["uuid"]) for d in nvml.devices or []]
    await service.open([Held(7, "bob/old", (uuids[0],), False)])  # from before a restart
    grant = await service.take(8, "ada/lab", GpuRequest(whole=2))
    assert grant is not None and grant.uuids == (uuids[1], uuids[2])
    await service.take(9, "cy/x", GpuRequest(shared=True))
    await service.take(10, "di/y", GpuRequest(shared=True))
    readings = await service.readings()
    assert [r.gpu.index for r in readings] == list(range(8))
    assert [h.label for h in readings[0].holders] == ["bob/old"] and not readings[0].shared
    assert [h.label for h in readings[1].holders] == ["ada/lab"]
    assert [[h.label for h in r.holders] for r in readings[3:5]] == [["cy/x"], ["di/y"]]
    assert readings[3].shared and readings[4].shared
    # GPUs in MIG mode are shown, not handed out
    assert [r.available for r in readings] == [True] * 6 + [False] * 2
    nvml.set_use(1, utilization=97, used_bytes=60 * 1024**3)  # ada's job runs
    busy = (await service.readings())[1]
    assert (busy.gpu.utilization_percent, busy.gpu.memory_used_bytes) == (97, 60 * 1024**3)
    service.release(8)
    assert (await service.readings())[1].holders == ()


async def test_no_gpus_no_readings() -> None:
    service = GpuService(NvmlSource(FakeNvml.absent()))
    await service.open()
    assert await service.readings() == [] and service.inventory == []
