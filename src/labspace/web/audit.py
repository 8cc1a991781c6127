"""The audit log for admins: ``GET /hub/api/audit`` (JSON, newest first),
``GET /hub/api/audit.jsonl`` (JSON lines, streamed) and the page ``/hub/admin/audit``.

Read-only on purpose: entries are written only by the hub's own code (labspace.audit), so
no request, forged or not, can add, change or remove one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from labspace.audit import AuditEntry, AuditQuery, BadMoment, parse_moment
from labspace.audit.log import MAX_LIMIT
from labspace.errors import InvalidInput, LabspaceError
from labspace.state.models import MAX_ID
from labspace.web.deps import AdminDep, HubDep
from labspace.web.pages import render_page

router = APIRouter()
PAGE_SIZE = 100
JSONL = "application/x-ndjson"


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    address: str
    ok: bool
    detail: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryPublic:
        return cls(**entry.as_dict() | {"at": entry.at})


class Filters(BaseModel):
    """The filters as given (strings), kept for the page's form and its "older" link."""

    since: str = ""
    until: str = ""
    user: str = ""
    action: str = ""

    def query(self, before: int | None = None, after: int | None = None) -> AuditQuery:
        """Raise InvalidInput (400) for a since/until that is no moment."""
        return AuditQuery(since=_moment("since", self.since), until=_moment("until", self.until),
                          user=self.user.strip() or None,
                          action=self.action.strip() or None, before_id=before, after_id=after)


def _moment(field: str, text: str) -> datetime | None:
    if not text.strip():
        return None
    try:
        return parse_moment(text)
    except BadMoment as error:
        raise InvalidInput(f"{field}: {error}") from None


def filters(
    since: Annotated[str, Query(max_length=64, description="From: an ISO date/time, or "
                                "30m, 2h, 7d, 4w back from now.")] = "",
    until: Annotated[str, Query(max_length=64, description="Before: same forms.")] = "",
    user: Annotated[str, Query(max_length=100, description="Who acted, or whose account "
                               "or workspace it concerned.")] = "",
    action: Annotated[str, Query(max_length=40, pattern=r"^[a-z0-9_.]*$",
                                 description="An action or its prefix: login matches "
                                 "login.ok and login.failed.")] = "",
) -> Filters:
    return Filters(since=since, until=until, user=user, action=action)


FiltersDep = Annotated[Filters, Depends(filters)]
Before = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only entries older than "
                                     "this id (the next page).")]
After = Annotated[int | None, Query(ge=0, le=MAX_ID, description="Only entries newer than "
                                    "this id.")]


@router.get("/hub/api/audit", response_model=list[AuditEntryPublic], tags=["audit"],
            summary="The audit log (admins), newest first")
async def audit_entries(
    _: AdminDep, hub: HubDep, given: FiltersDep, before: Before = None, after: After = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = PAGE_SIZE,
    format: Annotated[str, Query(pattern="^(json|jsonl)$")] = "json",
) -> Any:
    query = given.query(before, after)
    if format == "jsonl":
        return _lines(hub.audit.export_lines(query, limit))
    return [AuditEntryPublic.of(entry) for entry in await hub.audit.query(query, limit=limit)]


@router.get("/hub/api/audit.jsonl", tags=["audit"], response_class=StreamingResponse,
            summary="The audit log as JSON lines (admins), newest first")
async def audit_export(
    _: AdminDep, hub: HubDep, given: FiltersDep, before: Before = None, after: After = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> StreamingResponse:
    """Every matching entry (or the newest ``limit``), one JSON object a line."""
    return _lines(hub.audit.export_lines(given.query(before, after), limit))


def _lines(lines: Any) -> StreamingResponse:
    name = f"labspace-audit-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.jsonl"
    return StreamingResponse(lines, media_type=JSONL, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@router.get("/hub/admin/audit", include_in_schema=False)
async def audit_page(request: Request, caller: AdminDep, hub: HubDep, given: FiltersDep,
                     before: Before = None) -> Response:
    form = given.model_dump()
    try:
        query = given.query(before)
    except LabspaceError as error:
        return render_page(request, "audit.html", caller, error.http_status, entries=[],
                           form=form, error=error.message, older=None, export=None)
    entries = await hub.audit.query(query, limit=PAGE_SIZE + 1)  # one more: is there a page?
    older = None
    if len(entries) > PAGE_SIZE:
        entries = entries[:PAGE_SIZE]
        older = "/hub/admin/audit?" + _encode(form, before=entries[-1].id)
    return render_page(request, "audit.html", caller, entries=entries, form=form, error=None,
                       older=older, export="/hub/api/audit.jsonl?" + _encode(form),
                       newest="/hub/admin/audit?" + _encode(form) if before else None)


def _encode(form: dict[str, str], **more: int) -> str:
    return urlencode({key: value for key, value in (form | more).items() if value})
