"""The live load page: ``/hub/load``, ``/hub/api/load`` (one snapshot) and
``/hub/api/load/events`` (server-sent events).

The numbers come from the hub's one sampling loop (labspace.load), never from a
``docker stats`` per page. Ordinary users see the servers' totals and their own
workspaces; admins every workspace with its owner. A stream checks its caller's session
again every AUTH_RECHECK seconds and ends after MAX_STREAM seconds at the latest (the
browser's EventSource reconnects by itself, through the login check), so an expired or
revoked session does not keep one open.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from labspace.errors import PermissionDenied
from labspace.hub import Hub
from labspace.identity.tokens import resolve_token
from labspace.load import Watcher
from labspace.origins import Origins
from labspace.web.deps import Caller, CallerDep, HubDep
from labspace.web.pages import render_page

router = APIRouter(prefix="/hub")

HEARTBEAT = 15.0  # seconds: a comment line keeps proxies and the browser from giving up
AUTH_RECHECK = 30.0  # seconds between checks that the stream's session is still valid
MAX_STREAM = 3600.0  # seconds a stream lasts at most; the page reconnects on its own
RETRY_MS = 3000  # how long the browser waits before it reconnects


def viewer(caller: Caller) -> str | None:
    """Whose workspaces the caller sees: None (everybody's) for an admin."""
    return None if caller.is_admin else caller.name


def check_same_origin(request: Request, caller: Caller) -> None:
    """A page of another origin (a workspace's, another port of this host) must not read a
    user's load with their cookie: browsers say where a request comes from."""
    if not caller.via_cookie:
        return
    origins: Origins = request.app.state.origins
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    if (origin is not None and origin.lower() != origins.own_origin(
            request.headers.get("host", ""))) or site not in (None, "same-origin", "none"):
        raise PermissionDenied("refused: the load is shown only on labspace's own pages")


async def still_valid(hub: Hub, caller: Caller) -> Caller | None:
    """The caller as its credential resolves now; None if it expired or was revoked."""
    async with hub.db.session() as session:
        resolved = await resolve_token(session, caller.credential)
    if resolved is None:
        return None
    return Caller(resolved.user, caller.via_cookie, caller.credential, resolved.token.kind)


def end_event(reason: str) -> bytes:
    return b"event: end\ndata: " + json.dumps({"reason": reason}).encode() + b"\n\n"


async def follow_load(hub: Hub, caller: Caller, watcher: Watcher) -> AsyncIterator[bytes]:
    """A full snapshot at once, then each new one; heartbeats between. Releases the
    watcher however the stream ends (the client left, the session ended, time is up)."""
    try:
        began = checked = time.monotonic()
        first = await hub.load.frame()
        last = first.number
        yield b"retry: %d\n" % RETRY_MS + first.event(viewer(caller))
        while True:
            frame = await watcher.next(HEARTBEAT)
            if watcher.closed:  # the hub closes, or this stream fell behind for minutes
                return
            now = time.monotonic()
            if now - checked >= AUTH_RECHECK:
                checked = now
                current = await still_valid(hub, caller)
                if current is None:
                    yield end_event("your session ended: log in again")
                    return
                caller = current  # an admin who became a member sees less from now on
            if now - began >= MAX_STREAM:
                return  # the browser reconnects, and logs in again if it must
            if frame is None:
                yield b": keepalive\n\n"
            elif frame.number > last:
                last = frame.number
                yield frame.event(viewer(caller))
    finally:
        hub.load.unwatch(watcher)


@router.get("/api/load/events", summary="The servers' load as server-sent events",
            response_class=StreamingResponse)
async def load_events(request: Request, caller: CallerDep, hub: HubDep) -> StreamingResponse:
    check_same_origin(request, caller)
    watcher = hub.load.watch(caller.name)  # refused (429) past the per-user cap
    return StreamingResponse(
        follow_load(hub, caller, watcher), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/api/load", summary="The servers' load, one snapshot")
async def load_now(request: Request, caller: CallerDep, hub: HubDep) -> Response:
    check_same_origin(request, caller)
    frame = await hub.load.frame()
    return Response(frame.json(viewer(caller)), media_type="application/json",
                    headers={"Cache-Control": "no-store"})


@router.get("/load", include_in_schema=False)
async def load_page(request: Request, caller: CallerDep, hub: HubDep) -> Response:
    return render_page(request, "load.html", caller, interval=hub.settings.load_interval,
                       sees_all=caller.is_admin)
