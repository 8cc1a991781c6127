"""On a machine with an NVIDIA GPU and Docker: labspace's runtime hands a workspace its GPU.

    .venv/bin/python bench/gpu_check.py [--image mini] [--seconds 20]

Runs three checks through labspace's own code (NvmlSource for discovery, GpuService for
the choice and the container's devices, driver files and environment, DockerRuntime to
create and start, with its dropped capabilities and no-new-privileges):

1. a workspace given one whole GPU runs CUDA (cuInit, a device; PyTorch matrix products
   where /opt/torch/.venv/bin/python3 exists) as uid 1000 with every capability cleared;
2. a workspace given none sees no GPU (no /dev/nvidia*, cuInit fails);
3. two workspaces sharing one GPU run CUDA at the same time.

Where NVML finds no GPU it says so and exits 0 (CI, this project's own machines). The image
needs nothing of its own: by default a minimal root filesystem imported as ``mini`` (see
shared/GPU.md), with the host's /usr and /opt mounted read-only for python3 and PyTorch.
Not run in the session that wrote it (no GPU machine was lent): run it where one is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

from labspace.gpus import GpuRequest, GpuService, Grant, Holder, NvmlSource
from labspace.runtime import ContainerSpec, Mount
from labspace.runtime.docker import DockerRuntime

LABEL = {"org.labspace.test": "gpu-check"}
CUDA = r"""
import ctypes, glob, os, sys
caps = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff"))
print("uid", os.getuid(), "CapEff", caps, "nodes", sorted(glob.glob("/dev/nvidia*")))
try:
    cuda = ctypes.CDLL("libcuda.so.1")
except OSError as error:
    print("no CUDA driver library:", error); sys.exit(3)
count = ctypes.c_int(0)
rc = cuda.cuInit(0)
if rc == 0:
    cuda.cuDeviceGetCount(ctypes.byref(count))
print("cuInit", rc, "devices", count.value)
sys.exit(0 if rc == 0 and count.value > 0 else 3)
"""
TORCH = r"""
import time, torch
a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
began, n = time.time(), 0
while time.time() - began < SECONDS:
    (a @ a).sum().item(); n += 1
print("torch", torch.cuda.get_device_name(0), n, "matmuls")
"""
TORCH_PYTHON = "/opt/torch/.venv/bin/python3"
# uid 1000 from the container's root, as labspace's entrypoint does: the change of uid
# clears the effective and permitted capabilities (no keep-caps), and no-new-privileges
# (set by DockerRuntime) keeps them from coming back. CapEff printed inside must be 0.
AS_USER = ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "--inh-caps=-all"]


async def run(runtime: DockerRuntime, spec: ContainerSpec, timeout: float) -> tuple[int, str]:
    info = await runtime.create(spec)
    try:
        await runtime.start(info.id)
        deadline = time.monotonic() + timeout
        while (found := await runtime.inspect(info.id)) is not None and found.running:
            if time.monotonic() > deadline:
                return 124, await runtime.logs(info.id, tail=40)
            await asyncio.sleep(0.5)
        code = found.exit_code if found is not None and found.exit_code is not None else -1
        return code, await runtime.logs(info.id, tail=40)
    finally:
        await runtime.remove(info.id)


def spec_for(image: str, script: str, seconds: float) -> ContainerSpec:
    torch = Path(TORCH_PYTHON).exists()
    program = f"python3 -c '{CUDA}'" + (
        f" && {TORCH_PYTHON} -c '{TORCH.replace('SECONDS', str(seconds))}'"
        if torch and script == "torch" else "")
    return ContainerSpec(
        name=f"labspace-gpu-check-{uuid.uuid4().hex[:8]}", image=image,
        command=[*AS_USER, "sh", "-c", program], labels=dict(LABEL),
        mounts=[Mount("/usr", "/usr", True)] + (
            [Mount("/opt", "/opt", True)] if Path("/opt").is_dir() else []))


async def main(image: str, seconds: float) -> int:
    gpus = GpuService(NvmlSource(), cdi_dirs=[Path("/etc/cdi"), Path("/var/run/cdi")])
    await gpus.open()
    if not gpus.inventory:
        print("no NVIDIA GPU here (NVML found none): nothing to check")
        return 0
    print("GPUs:", [(g.index, g.name, g.uuid, "MIG" if g.mig else "") for g in gpus.inventory])
    print("driver files from", gpus.files.origin, len(gpus.files.mounts), "mounts; nodes",
          gpus.files.control_nodes)
    runtime = DockerRuntime()
    failed = 0
    try:
        whole = GpuRequest(whole=1)
        grant = await gpus.allocator.take(Holder(1, "check/whole"), whole)
        code, logs = await run(runtime, gpus.container(spec_for(image, "torch", seconds),
                                                       whole, grant), 120 + seconds)
        gpus.release(1)
        print(f"[1] one whole GPU, uid 1000, no capabilities: exit {code}\n{logs}")
        failed += code != 0

        code, logs = await run(runtime, gpus.container(spec_for(image, "cuda", seconds),
                                                       GpuRequest(), None), 60)
        print(f"[2] no GPU asked: exit {code} (3 expected: no GPU seen)\n{logs}")
        failed += code != 3

        # Both on the first GPU that is handed out (which one the allocator picks is
        # tests/gpus' business; here: that two containers can use one GPU at once).
        shared = GpuRequest(shared=True)
        grants = [Grant((gpus.allocator.gpus[0],), shared=True)] * 2
        print("[3] both sharing", grants[0].uuids[0])
        results = await asyncio.gather(*(
            run(runtime, gpus.container(spec_for(image, "torch", seconds), shared, g),
                120 + seconds) for g in grants))
        for n, (code, logs) in enumerate(results):
            print(f"[3] sharing workspace {n}: exit {code}\n{logs}")
            failed += code != 0
    finally:
        await runtime.close()
    print("all checks passed" if not failed else f"{failed} check(s) FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=os.environ.get("GPU_CHECK_IMAGE", "mini"))
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="how long each PyTorch workload runs")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.image, args.seconds)))
