"""What a container is given for its GPUs: exactly their device nodes, the driver's control
nodes and read-only user-space files, and the variables CUDA images read.

A workspace that asked for no GPU is given none of it, and ``NVIDIA_VISIBLE_DEVICES=void``:
on a host whose Docker runs the NVIDIA runtime by default, a CUDA image's own
``NVIDIA_VISIBLE_DEVICES=all`` would otherwise hand it every GPU.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

from labspace.gpus.driver import LIB_DIR, DriverFiles
from labspace.gpus.model import GpuInfo, Grant
from labspace.runtime import ContainerSpec

# Which GPUs a container was made with: a kept container whose GPUs are no longer the ones
# granted (another was free this time) is made again (workspaces/manager.py).
LABEL_GPUS = "org.labspace.gpus"
NO_GPU = "void"  # the toolkit's word for "none"
# Swarm nodes advertise GPUs as this generic resource (dockerd's node-generic-resources,
# "GPU=<uuid>"); the swarm then sets DOCKER_RESOURCE_GPU, the variable the NVIDIA toolkit's
# swarm-resource setting names by default.
SWARM_GPU_RESOURCE = "GPU"


def with_gpus(spec: ContainerSpec, grant: Grant | None, gpus: Sequence[GpuInfo],
              files: DriverFiles) -> ContainerSpec:
    """``spec`` with the granted GPUs handed in; ``gpus``: this host's, to find their nodes."""
    if grant is None:
        return replace(spec, env={**spec.env, "NVIDIA_VISIBLE_DEVICES": NO_GPU},
                       labels={**spec.labels, LABEL_GPUS: ""})
    by_uuid = {gpu.uuid: gpu for gpu in gpus}
    chosen = [by_uuid[uuid] for uuid in grant.uuids]  # KeyError: a grant of another host
    visible = ",".join(grant.uuids)
    env = {**spec.env, "NVIDIA_VISIBLE_DEVICES": visible,
           # UUIDs, not indexes: inside the container CUDA numbers only the GPUs it can open
           "CUDA_VISIBLE_DEVICES": visible,
           "LD_LIBRARY_PATH": _prepend(LIB_DIR, spec.env.get("LD_LIBRARY_PATH", ""))}
    devices = [gpu.device_node for gpu in chosen] + list(files.control_nodes)
    return replace(spec, env=env, devices=list(dict.fromkeys(spec.devices + devices)),
                   mounts=spec.mounts + list(files.mounts),
                   labels={**spec.labels, LABEL_GPUS: ("shared:" if grant.shared else "")
                           + f"{visible}@{_digest(files)}"})


def with_cluster_gpus(spec: ContainerSpec, count: int) -> ContainerSpec:
    """On Swarm the scheduler picks the node and its GPUs: the service reserves ``count``
    of the nodes' advertised GPU resources, and the node's NVIDIA runtime hands in
    those it was given (see docs/admin.md, "GPUs on Swarm")."""
    return replace(spec, generic_resources={**spec.generic_resources,
                                            SWARM_GPU_RESOURCE: count},
                   labels={**spec.labels, LABEL_GPUS: f"cluster:{count}"})


def _digest(files: DriverFiles) -> str:
    """Of the driver's files: after a driver upgrade a kept container, whose mounts name the
    old libraries, is made again."""
    text = "\n".join([*files.control_nodes, *(f"{m.source}:{m.target}" for m in files.mounts)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _prepend(directory: str, path: str) -> str:
    parts = [p for p in path.split(":") if p and p != directory]
    return ":".join([directory, *parts])
