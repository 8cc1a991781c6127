"""Quotas: the most a user, or a group's members together, may hold at once.

Pure arithmetic over what workspaces take; where quotas are stored and how the use is read
lives in labspace.workspaces.quotas.

What one workspace takes (``demand``) is what its limits say: CPUs, memory, whole GPUs plus
one for a shared GPU, and one running workspace. A workspace with no CPU or memory limit may
use the whole host, so it counts as the host's cores or memory (``Capacity``): a quota of 8
CPUs cannot hold a workspace that may take 64.

Every quota that applies to the owner must hold: their own (scope "user") and that of each
of their groups (scope "group", whose use is that of all its current members together).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from labspace.errors import QuotaExceeded
from labspace.templates.model import LimitSpec

Scope = Literal["user", "group"]
SCOPES: tuple[Scope, ...] = ("user", "group")


@dataclass(frozen=True)
class Resources:
    """What one workspace takes, or what several take together."""

    cpus: float = 0.0
    memory_bytes: int = 0
    gpus: int = 0
    running: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpus + other.cpus, self.memory_bytes + other.memory_bytes,
                         self.gpus + other.gpus, self.running + other.running)


NOTHING = Resources()


@dataclass(frozen=True)
class Capacity:
    """What a workspace without a CPU or memory limit counts as: the host's whole."""

    cpus: float
    memory_bytes: int


@dataclass(frozen=True)
class QuotaLimits:
    """The most at once; None: no limit on that point."""

    cpus: float | None = None
    memory_bytes: int | None = None
    gpus: int | None = None
    running: int | None = None


@dataclass(frozen=True)
class Quota:
    scope: Scope
    name: str
    limits: QuotaLimits

    @property
    def key(self) -> tuple[Scope, str]:
        return self.scope, self.name


def demand(limits: LimitSpec, capacity: Capacity) -> Resources:
    """What one running workspace with these limits takes from a quota."""
    return Resources(
        cpus=limits.cpus if limits.cpus is not None else capacity.cpus,
        memory_bytes=limits.memory_bytes if limits.memory_bytes is not None
        else capacity.memory_bytes,
        gpus=(limits.gpus or 0) + (1 if limits.shared_gpu else 0),
        running=1,
    )


def applicable(quotas: Iterable[Quota], user: str, groups: Iterable[str]) -> list[Quota]:
    """The quotas that bind ``user``: their own first, then their groups' by name."""
    mine = set(groups)
    found = [quota for quota in quotas if (quota.scope == "user" and quota.name == user)
             or (quota.scope == "group" and quota.name in mine)]
    return sorted(found, key=lambda quota: (quota.scope != "user", quota.name))


def size_text(value: float) -> str:
    """Bytes as people read them: 512 MiB, 1.5 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _cpus(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} CPU" + ("" if text == "1" else "s")


def _gpus(value: int) -> str:
    return f"{value} GPU" + ("" if value == 1 else "s")


def check(quota: Quota, in_use: Resources, ask: Resources) -> None:
    """Refuse (QuotaExceeded) when ``ask`` on top of ``in_use`` passes ``quota``; the
    message names the quota, what is in use and what the workspace asks for. A point the
    workspace asks nothing of never refuses it (a quota lowered below its use blocks only
    what would add to it)."""
    who = f"{quota.scope} {quota.name}"
    them = "its members use" if quota.scope == "group" else "uses"
    limits = quota.limits
    # With nothing running, stopping helps nothing: the quota is too small for this one.
    then = ": stop one first" if in_use.running else ": ask an administrator"
    if limits.running is not None and in_use.running + ask.running > limits.running:
        runs = "its members run" if quota.scope == "group" else "runs"
        raise QuotaExceeded(f"{who} may run at most {limits.running} workspace(s) at once and "
                            f"{runs} {in_use.running}{then}", quota=quota.key,
                            resource="running")
    # A little slack for float sums (0.1 + 0.2): quotas are about whole cores in practice.
    if ask.cpus and limits.cpus is not None and in_use.cpus + ask.cpus > limits.cpus + 1e-9:
        raise QuotaExceeded(f"{who} may use at most {_cpus(limits.cpus)} at once and {them} "
                            f"{_cpus(in_use.cpus)}; this workspace asks for "
                            f"{_cpus(ask.cpus)}{then}", quota=quota.key,
                            resource="cpus")
    if (ask.memory_bytes and limits.memory_bytes is not None
            and in_use.memory_bytes + ask.memory_bytes > limits.memory_bytes):
        raise QuotaExceeded(f"{who} may use at most {size_text(limits.memory_bytes)} of memory "
                            f"at once and {them} {size_text(in_use.memory_bytes)}; this "
                            f"workspace asks for {size_text(ask.memory_bytes)}{then}",
                            quota=quota.key, resource="memory")
    if ask.gpus and limits.gpus is not None and in_use.gpus + ask.gpus > limits.gpus:
        raise QuotaExceeded(f"{who} may use at most {_gpus(limits.gpus)} at once and {them} "
                            f"{_gpus(in_use.gpus)}; this workspace asks for "
                            f"{_gpus(ask.gpus)}{then}", quota=quota.key,
                            resource="gpus")


def check_all(quotas: Iterable[tuple[Quota, Resources]], ask: Resources) -> None:
    """Check each (quota, its use without this workspace), in order: the first it would
    pass is the one named."""
    for quota, in_use in quotas:
        check(quota, in_use, ask)
