"""GPU discovery through NVML (``pynvml`` from nvidia-ml-py), never nvidia-smi's text.

NVML is loaded on the first read, not at import: a hub on a machine without the NVIDIA
driver imports this module, asks once, and gets an empty list (no GPUs), not an error.
"""

from __future__ import annotations

import logging
import threading
from types import ModuleType
from typing import Any, Protocol

from labspace.gpus.model import GpuInfo

log = logging.getLogger(__name__)


class GpuSource(Protocol):
    """Where the GPUs of this host come from. ``read`` may block (NVML calls the driver):
    call it in a thread from async code."""

    def read(self) -> list[GpuInfo]: ...


class NoGpus:
    """The source of a hub told not to look for GPUs (``gpu_discovery = false``)."""

    def read(self) -> list[GpuInfo]:
        return []


class NvmlSource:
    """The host's NVIDIA GPUs through NVML. ``nvml`` is the binding (the ``pynvml`` module
    by default; tests pass labspace.testing.nvml.FakeNvml with recorded answers)."""

    def __init__(self, nvml: Any = None) -> None:
        self._nvml: Any = nvml
        self._ready = False
        self._absent = False  # NVML failed to start: no driver, no GPUs; not asked again
        self._lock = threading.Lock()  # reads may come from several threads at once

    def read(self) -> list[GpuInfo]:
        with self._lock:
            nvml = self._start()
            if nvml is None:
                return []
            try:
                count = int(nvml.nvmlDeviceGetCount())
            except nvml.NVMLError as error:
                log.warning("NVML could not count the GPUs: %s", error)
                return []
            found = []
            for index in range(count):
                try:
                    found.append(_device(nvml, index))
                except nvml.NVMLError as error:  # a GPU fallen off the bus: the others stay
                    log.warning("NVML could not read GPU %d: %s", index, error)
            return found

    def _start(self) -> Any:
        if self._ready:
            return self._nvml
        if self._absent:
            return None
        if self._nvml is None:
            self._nvml = _binding()
        try:
            self._nvml.nvmlInit()
        except self._nvml.NVMLError as error:
            log.info("no NVIDIA GPUs: NVML did not start (%s)", error)
            self._absent = True
            return None
        self._ready = True
        return self._nvml

    def close(self) -> None:
        with self._lock:
            if self._ready:
                self._ready = False
                self._nvml.nvmlShutdown()


def _binding() -> ModuleType:
    import pynvml  # only here: importing it loads nothing, but keeps the hub's import lean

    return pynvml


def _device(nvml: Any, index: int) -> GpuInfo:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
        mig = current == nvml.NVML_DEVICE_MIG_ENABLE
    except nvml.NVMLError_NotSupported:  # a GPU without MIG (anything before A100)
        mig = False
    try:
        utilization: int | None = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except nvml.NVMLError_NotSupported:  # MIG on: NVML reports per instance only
        utilization = None
    return GpuInfo(index=index, uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
                   name=_text(nvml.nvmlDeviceGetName(handle)),
                   minor=int(nvml.nvmlDeviceGetMinorNumber(handle)),
                   memory_total_bytes=int(memory.total), memory_used_bytes=int(memory.used),
                   mig=mig, utilization_percent=utilization)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value  # older bindings: bytes
