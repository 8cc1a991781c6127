"""FakeNvml: a fake of the ``pynvml`` binding that replays recorded NVML answers, so
discovery (labspace.gpus.nvml.NvmlSource) runs its real code on a machine without a GPU.

A recording is JSON: ``{"devices": [{"name", "uuid", "minor", "memory": {"total", "used",
"free"}, "utilization": {"gpu", "memory"} | "NotSupported", "mig_mode": [current, pending]
| "NotSupported"}]}``; "NotSupported" makes the call raise NVML's own NVMLError_NotSupported,
as the driver does (utilization of a GPU in MIG mode, MIG mode of a GPU without MIG).
``FakeNvml.absent()`` is a host without the driver: nvmlInit raises LibraryNotFound.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml

NOT_SUPPORTED = "NotSupported"


class FakeNvml:
    """Has the parts of the pynvml module that labspace calls, answering from a recording."""

    NVMLError = pynvml.NVMLError
    NVMLError_NotSupported = pynvml.NVMLError_NotSupported
    NVML_DEVICE_MIG_ENABLE = pynvml.NVML_DEVICE_MIG_ENABLE

    def __init__(self, devices: list[dict[str, Any]] | None) -> None:
        self.devices = devices  # None: no driver on this host
        self.initialized = 0  # nvmlInit calls that were not shut down

    @classmethod
    def load(cls, path: Path) -> FakeNvml:
        return cls(json.loads(path.read_text())["devices"])

    @classmethod
    def absent(cls) -> FakeNvml:
        return cls(None)

    def set_use(self, index: int, *, utilization: int, used_bytes: int) -> None:
        """The GPU gets busy (a test's stand-in for a CUDA job)."""
        device = self.devices[index] if self.devices else {}
        device["utilization"] = {"gpu": utilization, "memory": 0}
        device["memory"]["used"] = used_bytes

    # -- the pynvml functions, under its camelCase names ------------------------------

    def nvmlInit(self) -> None:
        if self.devices is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        self.initialized -= 1

    def _ready(self) -> list[dict[str, Any]]:
        if not self.initialized or self.devices is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        return self.devices

    def nvmlDeviceGetCount(self) -> int:
        return len(self._ready())

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict[str, Any]:
        devices = self._ready()
        if not 0 <= index < len(devices):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return devices[index]

    def nvmlDeviceGetName(self, handle: dict[str, Any]) -> str:
        return str(handle["name"])

    def nvmlDeviceGetUUID(self, handle: dict[str, Any]) -> str:
        return str(handle["uuid"])

    def nvmlDeviceGetMinorNumber(self, handle: dict[str, Any]) -> int:
        return int(handle["minor"])

    def nvmlDeviceGetMemoryInfo(self, handle: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(**handle["memory"])

    def nvmlDeviceGetUtilizationRates(self, handle: dict[str, Any]
                                      ) -> SimpleNamespace:
        return SimpleNamespace(**_supported(handle["utilization"]))

    def nvmlDeviceGetMigMode(self, handle: dict[str, Any]) -> list[int]:
        return list(_supported(handle["mig_mode"]))


def _supported(answer: Any) -> Any:
    if answer == NOT_SUPPORTED:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
    return answer
