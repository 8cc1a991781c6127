"""NVIDIA GPUs for workspaces: discovered through NVML, handed out whole or shared, and
handed into containers as exactly their device nodes plus the driver's files.

- ``nvml``: GpuSource, the one-method discovery seam, and NvmlSource over pynvml;
- ``allocator``: GpuAllocator, who holds which GPU, and the line of starts waiting for one;
- ``driver`` and ``container``: what a container is given (device nodes, read-only driver
  files from the toolkit's CDI spec or the host, NVIDIA_/CUDA_VISIBLE_DEVICES);
- ``service``: GpuService, the hub's entry point; ``GpuService.readings()`` is the
  read-only view of every GPU with its utilization, memory and holders.
"""

from labspace.gpus.allocator import WAITING_FOR_A_GPU, GpuAllocator
from labspace.gpus.model import GpuInfo, GpuReading, GpuRequest, Grant, Holder
from labspace.gpus.nvml import GpuSource, NoGpus, NvmlSource
from labspace.gpus.service import GpuService, Held

__all__ = [
    "WAITING_FOR_A_GPU",
    "GpuAllocator",
    "GpuInfo",
    "GpuReading",
    "GpuRequest",
    "GpuService",
    "GpuSource",
    "Grant",
    "Held",
    "Holder",
    "NoGpus",
    "NvmlSource",
]
