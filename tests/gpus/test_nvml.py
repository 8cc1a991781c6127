"""Discovery through NVML's real code path, answered by recorded NVML answers (FakeNvml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labspace.gpus import NoGpus, NvmlSource
from labspace.testing.nvml import FakeNvml

RECORDINGS = Path(__file__).parent / "recordings"


def recorded(name: str) -> FakeNvml:
    return FakeNvml.load(RECORDINGS / f"{name}.json")


@pytest.mark.parametrize(("name", "count", "mig"), [
    ("2gpus-mig-off", 2, []), ("2gpus-mig-on", 2, [0]),
    ("8gpus-mig-off", 8, []), ("8gpus-mig-on", 8, [6, 7])])
def test_every_gpu_with_its_figures(name: str, count: int, mig: list[int]) -> None:
    nvml = recorded(name)
    gpus = NvmlSource(nvml).read()
    assert [g.index for g in gpus] == list(range(count))
    assert [g.index for g in gpus if g.mig] == mig
    for gpu, answer in zip(gpus, nvml.devices or [], strict=True):
        assert gpu.uuid == answer["uuid"] and gpu.uuid.startswith("GPU-")
        assert gpu.name == answer["name"]
        assert gpu.memory_total_bytes == answer["memory"]["total"]
        assert gpu.memory_used_bytes == answer["memory"]["used"]
        assert gpu.device_node == f"/dev/nvidia{answer['minor']}"
        # MIG on: NVML has no whole-GPU utilization, and says so; not an error
        assert (gpu.utilization_percent is None) == gpu.mig
    assert len({g.uuid for g in gpus}) == count


def test_a_gpu_without_mig_support_is_simply_not_in_mig_mode() -> None:
    gpus = NvmlSource(recorded("2gpus-mig-off")).read()  # an L4: MIG "Not Supported"
    assert [g.mig for g in gpus] == [False, False]
    assert all(g.utilization_percent is not None for g in gpus)


def test_no_driver_is_no_gpus_not_an_error() -> None:
    source = NvmlSource(FakeNvml.absent())
    assert source.read() == [] and source.read() == []
    assert NoGpus().read() == []


def test_nvml_started_once_and_read_afresh() -> None:
    nvml = recorded("2gpus-mig-off")
    source = NvmlSource(nvml)
    assert source.read()[1].utilization_percent != 99
    nvml.set_use(1, utilization=99, used_bytes=5 * 1024**3)
    again = source.read()[1]
    assert (again.utilization_percent, again.memory_used_bytes) == (99, 5 * 1024**3)
    assert nvml.initialized == 1
    source.close()
    assert nvml.initialized == 0


def test_the_real_binding_on_this_machine_answers_without_failing() -> None:
    """No NVIDIA driver here (CI): an empty list; with one, its GPUs."""
    assert isinstance(NvmlSource().read(), list)
