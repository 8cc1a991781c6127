"""Quotas as the pages show them: one "in use / limit" cell per point (the admins' quota
page and each user's workspaces page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from labspace.policy.quotas import size_text
from labspace.workspaces.quotas import QuotaUse

NO_LIMIT = "\u2013"  # an en dash: no limit on this point


@dataclass(frozen=True)
class Cell:
    text: str
    limited: bool  # the quota has a limit on this point
    full: bool  # nothing more fits on this point


@dataclass(frozen=True)
class QuotaRow:
    scope: str
    name: str
    cpus: Cell
    memory: Cell
    gpus: Cell
    running: Cell
    updated_by: str
    updated_at: datetime


def _cell(used: float, limit: float | None, show: str, show_limit: str) -> Cell:
    return Cell(f"{show} / {NO_LIMIT if limit is None else show_limit}", limit is not None,
                limit is not None and used >= limit)


def use_rows(uses: list[QuotaUse]) -> list[QuotaRow]:
    rows = []
    for use in uses:
        limits, now = use.quota.limits, use.in_use
        rows.append(QuotaRow(
            scope=use.quota.scope, name=use.quota.name,
            cpus=_cell(now.cpus, limits.cpus, f"{now.cpus:g}", f"{limits.cpus or 0:g}"),
            memory=_cell(now.memory_bytes, limits.memory_bytes, size_text(now.memory_bytes),
                         size_text(limits.memory_bytes or 0)),
            gpus=_cell(now.gpus, limits.gpus, str(now.gpus), str(limits.gpus)),
            running=_cell(now.running, limits.running, str(now.running), str(limits.running)),
            updated_by=use.updated_by, updated_at=use.updated_at))
    return rows
