"""A workspace's shared port, on its own host: ``<port>-<workspace>--<owner>.<apps_domain>``.

Every request is checked against the port's share level (labspace.sharing.levels), read
through the route cache, so a lowered level applies within the cache's TTL even if the hub's
message is lost; the hub's message (control.py) makes it immediate and closes the open
connections the new level no longer admits.

* public: anyone. A credential is still looked up when one comes, so that lowering the level
  later closes exactly the connections the new level refuses; a cookie sent by a page of
  another origin counts for nothing (that page gets the port as anyone would);
* authenticated: anyone logged in, through this host's own cookie (the hub's ticket, as for a
  workspace host: /hub/shared/... hands it out) or an API token;
* private: the owner alone.

The request goes to that port of the workspace's own address, and nowhere else: the address
comes from the workspace's route, the port from the host name. The app gets no proxy secret
(it is not the workspace's main app) and never sees the visitor's credentials.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import quote

from aiohttp import web

from labspace.origins import AUTH_PATH, split_host
from labspace.proxy import gate, pages
from labspace.proxy.activity import workspace_key
from labspace.proxy.forward import UpstreamUnavailable
from labspace.proxy.gate import Caller
from labspace.proxy.tunnel import target_host
from labspace.sharing.levels import ShareLevel, admits, level_of

if TYPE_CHECKING:
    from labspace.proxy.app import Proxy

log = logging.getLogger(__name__)

# Where the hub logs a browser in for a shared port and sends it back with a ticket.
HUB_OPEN_PATH = "/hub/shared/{owner}/{workspace}/{port}"


def open_path(owner: str, workspace: str, port: int) -> str:
    return HUB_OPEN_PATH.format(owner=quote(owner), workspace=quote(workspace), port=port)


async def serve(proxy: Proxy, request: web.Request, owner: str, name: str,
                port: int) -> web.StreamResponse:
    host = split_host(request.host)
    if request.path == AUTH_PATH:
        return await proxy.hosts.redeem(request, host, None, proxy.source)
    websocket = gate.is_websocket(request)
    try:
        level = level_of(await proxy.source.share_level(owner, name, port))
        # Even at public, who it is matters: lowering the level later closes only what the
        # new level no longer admits.
        caller = await proxy.caller(request, proxy.hosts.session_digests(request, host))
    except Exception:
        log.exception("route source failed looking up %s/%s port %d", owner, name, port)
        return pages.source_down(request)
    if caller is not None and caller.via_cookie:
        refused = proxy.cross_origin_refusal(request, websocket)
        if refused is not None:
            if level is not ShareLevel.PUBLIC:
                return refused
            caller = None  # a page of another site gets a public port as anyone does
    if not admits(level, caller.user if caller else None, owner):
        return _refused(proxy, request, caller, owner, name, port, websocket)
    route = await proxy.running_route(request, owner, name)
    if isinstance(route, web.Response):
        return route
    address = target_host(route.target or "")
    if not address:
        return pages.not_running(request, owner, name, route.state)
    address = f"[{address}]" if ":" in address else address
    shared = replace(route, target=f"http://{address}:{port}", secret_value="",
                     strip_prefix=False)
    proxy.connections.add(request, caller, share=(owner, name, port))
    try:
        # A visitor of a shared port uses the workspace too: it keeps it from an idle stop.
        return await proxy.forward(request, shared, request.raw_path, "", websocket,
                                   activity=workspace_key(owner, name))
    except UpstreamUnavailable as exc:
        log.info("shared port %s/%s:%d not answering: %s", owner, name, port, exc)
        proxy.metrics.upstream_error("share")
        return pages.error(request, 502, f"Nothing answers on port {port}",
                           f"the workspace {name} has no program listening on port {port} "
                           "on all addresses (one bound to 127.0.0.1 only cannot be reached).")
    finally:
        proxy.connections.discard(request)


def _refused(proxy: Proxy, request: web.Request, caller: Caller | None, owner: str,
             name: str, port: int, websocket: bool) -> web.StreamResponse:
    if caller is None:
        if not websocket and pages.wants_html(request) and request.method in ("GET", "HEAD"):
            # The hub logs the browser in (if need be) and sends it back with a ticket.
            target = proxy.origins.hub_origin + open_path(owner, name, port)
            return pages.see_other(f"{target}?next={quote(request.raw_path, safe='')}")
        return pages.unauthenticated()
    # The same answer whether the workspace exists or not: nobody learns what others run.
    return pages.error(request, 403, "Not shared with you",
                       "the owner of this port has not shared it with you.")
