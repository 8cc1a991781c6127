"""The proxy's control socket: how the hub tells it that credentials were revoked.

A Unix socket in the data directory (no access for group or others, so only labspace's own
account can use it), never the public port. ``POST /revoke`` with
``{"digests": [...], "users": [...]}`` makes the proxy forget those credentials and close every
connection they let through; it answers with how many it closed. ``POST /shares`` with
``{"shares": [{"owner", "workspace", "port", "level"}, ...]}`` names ports whose share level
changed: the proxy forgets their cached level (a wider one works at once) and closes the
connections the new level no longer admits. The hub's side: labspace.identity.revocation.
``GET /activity`` answers when each workspace was last used (proxy/activity.py, snapshot);
503 when the proxy records none. The hub's side: labspace.workspaces.activity.
``GET /metrics`` answers the proxy's metrics in Prometheus' text format (proxy/metrics.py);
the hub appends them to its own at /hub/metrics (labspace.metrics).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
Revoke = Callable[[list[str], list[str]], int]
# (owner, workspace, port, its new level) -> how many connections it closed
ShareChanged = Callable[[str, str, int, str], int]
Activity = Callable[[], dict[str, Any]]  # ActivityTracker.snapshot
Metrics = Callable[[], bytes]  # ProxyMetrics.exposition
# The classic text format (web/metrics.py serves the hub's the same way)
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def control_app(revoke: Revoke, share_changed: ShareChanged,
                activity: Activity | None = None,
                metrics: Metrics | None = None) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            digests = [str(d) for d in body.get("digests", [])]
            users = [str(u) for u in body.get("users", [])]
        except (ValueError, AttributeError, TypeError):
            return web.json_response({"error": "expected {digests: [...], users: [...]}"},
                                     status=400)
        return web.json_response({"closed": revoke(digests, users)})

    async def shares(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            changes = [(str(s["owner"]), str(s["workspace"]), int(s["port"]), str(s["level"]))
                       for s in body["shares"]]
        except (ValueError, AttributeError, TypeError, KeyError):
            return web.json_response(
                {"error": "expected {shares: [{owner, workspace, port, level}]}"}, status=400)
        return web.json_response({"closed": sum(share_changed(*change) for change in changes)})

    async def last_used(request: web.Request) -> web.Response:
        if activity is None:
            return web.json_response({"error": "this proxy records no activity"}, status=503)
        return web.json_response(activity())

    async def exposition(request: web.Request) -> web.Response:
        if metrics is None:
            return web.json_response({"error": "this proxy keeps no metrics"}, status=503)
        return web.Response(body=metrics(), headers={"Content-Type": METRICS_TYPE})

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/revoke", handle)
    app.router.add_post("/shares", shares)
    app.router.add_get("/activity", last_used)
    app.router.add_get("/metrics", exposition)
    return app


async def start_control(revoke: Revoke, share_changed: ShareChanged, path: Path,
                        activity: Activity | None = None,
                        metrics: Metrics | None = None) -> web.AppRunner:
    """Serve the control app on the Unix socket ``path`` (replacing a stale one)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # noqa: ASYNC240 - one unlink of a local socket at start-up
    runner = web.AppRunner(control_app(revoke, share_changed, activity, metrics),
                           access_log=None)
    await runner.setup()
    old_umask = os.umask(0o077)  # created owner-only, with no window of wider access
    try:
        await web.UnixSite(runner, str(path)).start()
    finally:
        os.umask(old_umask)
    log.info("control socket at %s", path)
    return runner
