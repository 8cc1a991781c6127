"""Container runtime backends. Only this package talks to a container engine.

The runtime knows nothing of users, templates or HTTP: it creates and drives containers
described by a ContainerSpec and reports them as ContainerInfo.
"""

from labspace.runtime.base import (
    ContainerInfo,
    ContainerSpec,
    ContainerStats,
    ExecResult,
    Limits,
    Mount,
    NodeInfo,
    Runtime,
)

__all__ = [
    "ContainerInfo",
    "ContainerSpec",
    "ContainerStats",
    "ExecResult",
    "Limits",
    "Mount",
    "NodeInfo",
    "Runtime",
]
