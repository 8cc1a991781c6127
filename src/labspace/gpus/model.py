"""The shapes GPUs are described in: what NVML reports of one, what a workspace asks for,
what it was given, and the read-only view others (the load page, metrics) read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInfo:
    """One NVIDIA GPU as NVML reports it at one moment."""

    index: int
    uuid: str  # "GPU-5c1f...": what an instance records (indexes change with the hardware)
    name: str
    minor: int  # its device node is /dev/nvidia<minor>
    memory_total_bytes: int
    memory_used_bytes: int
    mig: bool  # MIG mode on: the GPU is split into instances labspace does not hand out
    utilization_percent: int | None = None  # None where NVML cannot say (MIG on)

    @property
    def device_node(self) -> str:
        return f"/dev/nvidia{self.minor}"


@dataclass(frozen=True)
class GpuRequest:
    """What a start asks for: ``whole`` GPUs of its own, or a time-sliced ``shared`` one."""

    whole: int = 0
    shared: bool = False

    def __post_init__(self) -> None:
        if self.whole < 0 or (self.whole and self.shared):
            raise ValueError("ask for whole GPUs or a shared GPU, not both")

    @property
    def wanted(self) -> bool:
        return self.whole > 0 or self.shared


@dataclass(frozen=True)
class Grant:
    """The GPUs one workspace holds (UUIDs, in index order) and whether it shares them."""

    uuids: tuple[str, ...]
    shared: bool = False


@dataclass(frozen=True)
class Holder:
    workspace_id: int
    label: str  # "owner/workspace", for people reading the view


@dataclass(frozen=True)
class GpuReading:
    """One GPU now: NVML's figures and who holds it (several holders only when shared)."""

    gpu: GpuInfo
    holders: tuple[Holder, ...] = ()
    shared: bool = False  # handed out as a shared GPU (time-sliced by its holders)
    available: bool = True  # False: labspace does not hand it out (MIG on, or gone)
