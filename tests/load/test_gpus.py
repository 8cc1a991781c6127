"""GPU figures on the load page through labspace.gpus, on a recorded NVML answer (FakeNvml
replays it; this machine has no GPU): each GPU's utilization and memory under the hub's
own server, who holds it for admins, and a member's own holdings only."""

from __future__ import annotations

import json
from pathlib import Path

from labspace.gpus import GpuService, NvmlSource
from labspace.gpus.model import GpuRequest
from labspace.load import LoadCollector
from labspace.load.gpus import this_host
from labspace.testing import FakeRuntime
from labspace.testing.nvml import FakeNvml

RECORDING = Path(__file__).parents[1] / "gpus" / "recordings" / "2gpus-mig-off.json"


async def test_each_gpu_shows_under_the_hubs_server(tmp_path: Path) -> None:
    nvml = FakeNvml(json.loads(RECORDING.read_text())["devices"])
    gpus = GpuService(NvmlSource(nvml))
    await gpus.open()
    await gpus.take(7, "ada/train", GpuRequest(whole=1))
    collector = LoadCollector(FakeRuntime(), instance="x", homes=tmp_path, local_engine=True,
                              interval=1.0, gpus=this_host(gpus.readings))
    nvml.set_use(0, utilization=87, used_bytes=3 << 30)
    snapshot = await collector.sample()
    everyone = snapshot.view(None)["servers"][0]["gpus"]
    assert [g["index"] for g in everyone] == [0, 1]
    first = everyone[0]
    assert first["utilization_percent"] == 87.0 and first["memory_used_bytes"] == 3 << 30
    assert first["memory_total_bytes"] > first["memory_used_bytes"]
    assert first["holders"] == ["ada/train"] and not everyone[1]["held"]
    assert snapshot.view("bob")["servers"][0]["gpus"][0]["holders"] == []  # not bob's
    assert snapshot.view("bob")["servers"][0]["gpus"][0]["held"] is True

    nvml.set_use(0, utilization=12, used_bytes=1 << 30)  # the next tick reads afresh
    again = (await collector.sample()).view(None)["servers"][0]["gpus"][0]
    assert again["utilization_percent"] == 12.0
