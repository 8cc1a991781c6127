"""The public proxy's application: routing, the authentication gate, and process start-up.

    /                          302 to /hub/
    /hub/...                   forwarded unchanged to the hub (503 page when it is down)
    /user/<owner>/<ws>/...     authenticated here, then forwarded to the workspace's app;
                               with apps_domain, browsers go through the hub to the host below
    /_labspace/proxy/health    200 JSON
    <ws>--<owner>.<apps_domain>/user/<owner>/<ws>/...   a workspace on its own host (origin);
                               /_labspace/auth there turns the hub's ticket into a host cookie
    <port>-<ws>--<owner>.<apps_domain>/...   a port the owner shared (sharehost.py)
    <slot>.<apps_domain>/apps/<app>/<slot>/...   an instant app's claim (claimhost.py)

Who may open a workspace, and from which page, is decided in gate.py; see docs/architecture.md
("Origins") for why workspaces need an origin of their own.

Routing works on the raw path, so percent-encoded bytes reach the upstream exactly as sent.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from labspace.config import Settings
from labspace.hubedge import PROXY_HEADER, proxy_proof
from labspace.identity.credentials import MAX_TOKEN_LENGTH
from labspace.identity.hostauth import HostSigner, app_cookie_name
from labspace.origins import AUTH_PATH, Origins, split_host
from labspace.proxy import claimhost, claims, gate, pages, sharehost, tunnel
from labspace.proxy.activity import ActivityTracker, FrameStamp, workspace_key
from labspace.proxy.adminopens import AdminOpens, AuditSink
from labspace.proxy.apphost import AppHosts
from labspace.proxy.bodycap import CappedBody, too_large, too_large_for_hub
from labspace.proxy.cache import CachedRouteSource
from labspace.proxy.connections import OpenConnections
from labspace.proxy.forward import (
    UpstreamUnavailable,
    can_go_fast,
    client_session,
    fast_target,
    forward_fast,
    forward_http,
)
from labspace.proxy.forwarded import Forwarding
from labspace.proxy.guard import (
    GUARD_KEY,
    HEADER_TIMEOUT,
    KEEPALIVE_TIMEOUT,
    MAX_UNAUTHENTICATED,
    GuardedAppRunner,
    GuardLimits,
    mark_authenticated,
    still_counted,
)
from labspace.proxy.headers import InvalidHeader, secret_field, upstream_head, upstream_headers
from labspace.proxy.metrics import ProxyMetrics
from labspace.proxy.source import Route, RouteSource
from labspace.proxy.upstream import UpstreamPool
from labspace.proxy.websocket import forward_websocket
from labspace.sharing.levels import admits, level_of

log = logging.getLogger(__name__)

HEALTH_PATH = "/_labspace/proxy/health"
CONNECT_TIMEOUT = 5.0
# Time allowed between two reads from an upstream: generous, for long computations.
SOCK_READ_TIMEOUT = 3600.0
SHUTDOWN_TIMEOUT = 15.0
# aiohttp server options, carried by the app so every runner uses them: cancel handlers whose
# client left; no access log in the hot path; room for the big cookies apps set; close idle
# keep-alive connections after a minute, not aiohttp's hour (create_app may override it).
HANDLER_ARGS: dict[str, Any] = {
    "handler_cancellation": True,
    "access_log": None,
    "max_field_size": 64 * 1024,
    "max_line_size": 64 * 1024,
    "keepalive_timeout": KEEPALIVE_TIMEOUT,
}

PROXY_KEY: web.AppKey[Proxy] = web.AppKey("labspace_proxy")


class Proxy:
    """The request handler and its shared state (one client session, the route cache)."""

    def __init__(self, settings: Settings, source: RouteSource,
                 sock_read_timeout: float = SOCK_READ_TIMEOUT, fast_path: bool = True,
                 track_activity: bool = True) -> None:
        self.hub = settings.hub_address
        self.fast_path = fast_path
        # When each workspace was last used (activity.py); None: not tracked (benchmarks),
        # and the control socket then tells the hub it knows nothing, so nothing is stopped.
        self.activity = ActivityTracker() if track_activity else None
        # Who the client is (forwarded.py), and the proof of forwarding only the hub gets.
        self.forwarding = Forwarding.from_settings(settings)
        self.hub_proof = (PROXY_HEADER, proxy_proof(settings.signing_key))
        self._hub_proof_bytes = (PROXY_HEADER.encode(), self.hub_proof[1].encode())
        self.source = source if isinstance(source, CachedRouteSource) else CachedRouteSource(
            source)
        self.sock_read_timeout = sock_read_timeout
        self._session: aiohttp.ClientSession | None = None
        self.pool = UpstreamPool(connect_timeout=CONNECT_TIMEOUT)
        self.origins = Origins(settings.url, settings.apps_domain)
        self.metrics = ProxyMetrics(self.origins)  # counts only if create_app wraps handle
        self.websockets: set[web.WebSocketResponse] = self.metrics.websockets
        self.session_cookie = settings.session_cookie
        self.hosts = AppHosts(self.origins, HostSigner(settings.signing_key()),
                              app_cookie_name(settings.secure_cookies), settings.secure_cookies)
        self.connections = OpenConnections()
        inner = self.source.source
        self.admin_opens = AdminOpens(inner if isinstance(inner, AuditSink) else None)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the proxy's client session is not open (app not started)")
        return self._session

    async def client_session(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: one pooled client session for the process' life."""
        self._session = client_session(CONNECT_TIMEOUT, self.sock_read_timeout)
        try:
            yield
        finally:
            self.pool.close()
            await self._session.close()
            self._session = None

    async def close_websockets(self, app: web.Application) -> None:
        """on_shutdown: tell every open WebSocket we are going away."""
        for ws in list(self.websockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"labspace proxy restarting")

    # ------------------------------------------------------------------ dispatch

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path
        if self.origins.apps_domain and self.origins.is_app_host(request.host):
            return await self.app_host(request, path)
        if path.startswith("/user/"):
            return await self.workspace(request, path)
        if path.startswith(tunnel.PREFIX):
            return await self.tunnel(request, path)
        if path.startswith(claims.PREFIX):
            return await claims.serve_claim(self, request, path)
        if path.startswith("/hub/") or path == "/hub" or path.startswith("/hub?"):
            return await self.to_hub(request, path)
        if path == "/" or path.startswith("/?"):
            return pages.to_hub()
        if request.path == HEALTH_PATH:
            return pages.health()
        return pages.not_found(request)

    def revoke(self, digests: list[str], users: list[str]) -> int:
        """Forget these credentials and users, and close the connections they let through."""
        self.source.forget_principals(digests, users)
        return self.connections.revoke(digests, users)

    def share_changed(self, owner: str, workspace: str, port: int, level: str) -> int:
        """A share's level changed: re-read it, and close what it no longer admits."""
        self.source.forget_share(owner, workspace, port)
        new_level = level_of(level)
        return self.connections.lower_share(
            (owner, workspace, port),
            lambda caller: admits(new_level, caller.user if caller else None, owner))

    async def to_hub(self, request: web.Request, path: str) -> web.StreamResponse:
        """Forward to the hub with the proof that the proxy did (only the hub gets it) and
        no body bigger than the hub takes (bodycap.py): refused by Content-Length before
        connecting, or cut off once a chunked body passes the cap."""
        websocket = gate.is_websocket(request)
        if too_large_for_hub(request):
            return too_large(request)
        if still_counted(request):
            await self._uncount_if_logged_in(request)
        body: CappedBody | None = None
        try:
            if self.fast_path and not websocket and can_go_fast(request):
                target = fast_target(self.hub)
                if target is not None:
                    head = upstream_head(request, path, target[2], workspace=False,
                                         secret=self._hub_proof_bytes,
                                         forwarding=self.forwarding)
                    return await forward_fast(request, self.pool, target, head,
                                              self.sock_read_timeout)
            headers = upstream_headers(request, workspace=False, websocket=websocket,
                                       secret=self._hub_proof_bytes, forwarding=self.forwarding)
            if websocket:
                return await forward_websocket(request, self.session, self.hub, path, headers,
                                               self.websockets)
            if request.body_exists and request.content_length is None:
                body = CappedBody(request.content)
            return await forward_http(request, self.session, self.hub, path, headers,
                                      request_body=body)
        except UpstreamUnavailable as exc:
            if body is not None and body.exceeded:
                return too_large(request)
            log.warning("hub unavailable for %s: %s", request.path, exc)
            self.metrics.upstream_error("hub")
            return pages.hub_down(request)

    async def _uncount_if_logged_in(self, request: web.Request) -> None:
        """A browser on the hub's pages with a valid session is no anonymous connection: it
        leaves its address' cap (a classroom behind one NAT must not fill it). Once per
        connection, from the credential cache."""
        if "Authorization" in request.headers or self.session_cookie in request.headers.get(
                "Cookie", ""):
            with contextlib.suppress(Exception):  # only bookkeeping: the hub decides access
                await self.caller(request, self._session_digests(request))

    # ------------------------------------------------------------------ workspaces

    async def workspace(self, request: web.Request, path: str) -> web.StreamResponse:
        """/user/<owner>/<ws>/... on the hub's own host."""
        parsed = gate.split_user_path(path)
        if parsed is None:
            return pages.not_found(request)
        owner, name, tail = parsed
        websocket = gate.is_websocket(request)
        try:
            caller = await self.caller(request, self._session_digests(request))
        except Exception:
            log.exception("route source failed looking up a credential")
            return pages.source_down(request)
        if self.origins.apps_domain and (caller is None or caller.via_cookie):
            # A browser: the hub sends it on to the workspace's own host with a ticket.
            if request.method in ("GET", "HEAD") and not websocket:
                return await self.to_hub(request, path)
            return pages.cross_origin(request, "workspaces are served on their own host")
        if caller is None:
            if not websocket and pages.wants_html(request) and request.method in ("GET", "HEAD"):
                return pages.login_redirect(path)
            return pages.unauthenticated()
        if caller.via_cookie:
            # Path mode: the workspace's pages run on the hub's origin, so only its owner's
            # own browser session may load them (an admin's would hand the owner the hub).
            if caller.user != owner:
                return pages.owner_only(request, caller.is_admin)
            refused = self.cross_origin_refusal(request, websocket)
            if refused is not None:
                return refused
            if gate.is_service_worker_script(request):
                return pages.no_service_worker(request)
        elif not caller.may_open(owner):
            return pages.forbidden(request)
        return await self._route_and_forward(request, caller, owner, name, path, tail, websocket)

    async def tunnel(self, request: web.Request, path: str) -> web.StreamResponse:
        """/tunnel/<owner>/<ws>/<port>: a TCP stream into the caller's own workspace
        (tunnel.py says who may open one)."""
        parsed = tunnel.parse_path(path)
        if parsed is None:
            return pages.not_found(request)
        owner, name, port = parsed
        if not gate.is_websocket(request):
            return pages.error(request, 400, "Not a WebSocket",
                               "a tunnel is opened by `labspace tunnel`, over a WebSocket")
        try:  # the Authorization header only: a cookie never opens a tunnel
            caller = await self.caller(request, [])
        except Exception:
            log.exception("route source failed looking up a credential")
            return pages.source_down(request)
        if caller is None or caller.via_cookie:
            return pages.unauthenticated()
        if caller.user != owner:
            return pages.error(request, 403, "Not your workspace",
                               "only a workspace's owner opens a tunnel into it")
        route = await self.running_route(request, owner, name)
        if isinstance(route, web.Response):
            return route
        host = tunnel.target_host(route.target or "")
        if not host:
            return pages.not_running(request, owner, name, route.state)
        self.connections.add(request, caller)
        in_use = (self.activity.tunnel(workspace_key(owner, name)) if self.activity
                  else contextlib.nullcontext())
        try:
            with in_use:  # an open tunnel (an SSH session) keeps its workspace in use
                return await tunnel.carry(request, host, port, self.websockets)
        finally:
            self.connections.discard(request)

    async def app_host(self, request: web.Request, path: str) -> web.StreamResponse:
        """Everything on a workspace's own host (apps_domain)."""
        request[pages.HUB_ORIGIN] = self.origins.hub_origin
        if (slot := self.origins.claim_of(request.host)) is not None:
            return await claimhost.serve(self, request, slot)
        shared = self.origins.share_of(request.host)
        if shared is not None:
            return await sharehost.serve(self, request, *shared)
        found = self.origins.workspace_of(request.host)
        if found is None:
            return pages.not_found(request)
        owner, name = found
        host = split_host(request.host)
        if request.path == AUTH_PATH:
            return await self.hosts.redeem(request, host, owner, self.source)
        prefix = f"/user/{owner}/{name}"
        if path == "/" or path.startswith("/?"):
            return pages.see_other(prefix + "/")
        parsed = gate.split_user_path(path)
        if parsed is None or parsed[:2] != (owner, name):
            return pages.not_found(request)  # a workspace host serves its workspace only
        tail = parsed[2]
        websocket = gate.is_websocket(request)
        try:
            caller = await self.caller(request, self.hosts.session_digests(request, host))
        except Exception:
            log.exception("route source failed looking up a credential")
            return pages.source_down(request)
        if caller is None:
            if not websocket and pages.wants_html(request) and request.method in ("GET", "HEAD"):
                # Back to the hub's address, which logs in if need be and sends a ticket.
                return pages.see_other(self.origins.hub_origin + path)
            return pages.unauthenticated()
        if not caller.may_open(owner):
            return pages.forbidden(request)
        if caller.via_cookie:
            refused = self.cross_origin_refusal(request, websocket)
            if refused is not None:
                return refused
        return await self._route_and_forward(request, caller, owner, name, path, tail, websocket)

    def cross_origin_refusal(self, request: web.Request, websocket: bool) -> web.Response | None:
        if gate.needs_same_origin(request, websocket) and not gate.same_origin(
                request, self.origins):
            log.info("refused a cross-origin %s %s from %r", request.method, request.path,
                     request.headers.get("Origin"))
            return pages.cross_origin(request, "the request did not come from this "
                                      "workspace's own pages")
        return None

    async def running_route(self, request: web.Request, owner: str,
                             name: str) -> Route | web.Response:
        """The workspace's route when it is running with a target, else the page saying
        why not (no such workspace, not running, the source down)."""
        try:
            route = await self.source.route(owner, name)
        except Exception:
            log.exception("route source failed looking up %s/%s", owner, name)
            return pages.source_down(request)
        if route is None:
            return pages.no_such_workspace(request, name)
        if route.state != "running" or not route.target:
            return pages.not_running(request, owner, name, route.state)
        return route

    async def _route_and_forward(self, request: web.Request, caller: gate.Caller, owner: str,
                                 name: str, path: str, tail: str,
                                 websocket: bool) -> web.StreamResponse:
        for attempt in (1, 2):
            route = await self.running_route(request, owner, name)
            if isinstance(route, web.Response):
                return route
            if caller.user != owner and attempt == 1:  # only an admin gets this far
                self.admin_opens.note(caller.user, f"{owner}/{name}",
                                      self.forwarding.client(request)[0])
            self.connections.add(request, caller)  # until it ends, revocation can end it
            try:
                return await self.forward(request, route, path, tail, websocket,
                                          activity=workspace_key(owner, name))
            except UpstreamUnavailable as exc:
                if exc.connect_failed and attempt == 1:
                    # The workspace may have moved or stopped: ask the source again, once.
                    self.source.forget_route(owner, name)
                    continue
                log.info("workspace %s/%s not answering: %s", owner, name, exc)
                self.metrics.upstream_error("workspace")
                return pages.upstream_down(request)
            finally:
                self.connections.discard(request)
        return pages.upstream_down(request)  # not reached

    async def forward(self, request: web.Request, route: Route, path: str, tail: str,
                      websocket: bool, activity: str | None = None) -> web.StreamResponse:
        """Forward to ``route``; ``activity``: the key (activity.py) this request and its
        WebSocket frames count for."""
        assert route.target is not None
        frames: FrameStamp | None = None
        if activity is not None and self.activity is not None:
            if websocket:
                frames = self.activity.frames(activity)
            else:
                self.activity.request(activity, request)
        try:
            secret = secret_field(route.secret_header, route.secret_value) if (
                route.secret_value) else None
        except InvalidHeader as exc:
            # Refused on every path: a CR/LF would write headers of the template's choosing.
            log.error("workspace %s/%s not forwarded: its template's secret header is "
                      "invalid (%s)", route.owner, route.workspace, exc)
            return pages.error(request, 502, "The workspace is misconfigured",
                               "this workspace's template has an invalid secret header; "
                               "an administrator must fix the template.")
        if route.strip_prefix:
            path = tail if tail.startswith("/") else "/" + tail
        if self.fast_path and not websocket and can_go_fast(request):
            target = fast_target(route.target)
            if target is not None:
                head = upstream_head(request, path, target[2], workspace=True, secret=secret,
                                     forwarding=self.forwarding)
                return await forward_fast(request, self.pool, target, head,
                                          self.sock_read_timeout, workspace=True)
        headers = upstream_headers(request, workspace=True, secret=secret, websocket=websocket,
                                   forwarding=self.forwarding)
        if websocket:
            return await forward_websocket(request, self.session, route.target, path, headers,
                                           self.websockets, frames)
        return await forward_http(request, self.session, route.target, path, headers,
                                  workspace=True)

    def _session_digests(self, request: web.BaseRequest) -> list[str]:
        return [gate.token_digest(value)
                for value in gate.cookie_values(request, self.session_cookie)
                if len(value) <= MAX_TOKEN_LENGTH]

    async def caller(self, request: web.BaseRequest,
                     cookie_digests: list[str]) -> gate.Caller | None:
        """Who sent the request: an API token in the Authorization header, else a cookie."""
        token_digest = gate.bearer_digest(request)
        if token_digest is not None:
            principal = await self.source.principal(token_digest)
            if principal is not None:
                mark_authenticated(request)
                return gate.Caller(principal.user, principal.is_admin, token_digest, False)
        for cookie_digest in cookie_digests:
            principal = await self.source.principal(cookie_digest)
            if principal is not None:
                mark_authenticated(request)
                return gate.Caller(principal.user, principal.is_admin, cookie_digest, True)
        return None


def create_app(settings: Settings, source: RouteSource, *,
               sock_read_timeout: float = SOCK_READ_TIMEOUT,
               header_timeout: float = HEADER_TIMEOUT,
               keepalive_timeout: float = KEEPALIVE_TIMEOUT,
               max_unauthenticated: int = MAX_UNAUTHENTICATED,
               fast_path: bool | None = None,
               track_activity: bool | None = None,
               metrics: bool | None = None) -> web.Application:
    """The proxy as an aiohttp application; serve it with start_proxy, which adds the
    connection guard (guard.py) with these limits; another AppRunner serves it without.

    ``fast_path`` None: LABSPACE_PROXY_FAST_PATH=0 turns the raw fast path off (benchmarks);
    ``track_activity`` None: LABSPACE_PROXY_ACTIVITY=0 records no activity (benchmarks: no
    workspace is then ever stopped for being idle); ``metrics`` None: LABSPACE_PROXY_METRICS=0
    counts no requests (bench/metrics.py compares)."""
    if fast_path is None:
        fast_path = os.environ.get("LABSPACE_PROXY_FAST_PATH", "1") != "0"
    if track_activity is None:
        track_activity = os.environ.get("LABSPACE_PROXY_ACTIVITY", "1") != "0"
    metrics = os.environ.get("LABSPACE_PROXY_METRICS", "1") != "0" if metrics is None else metrics
    proxy = Proxy(settings, source, sock_read_timeout, fast_path, track_activity)
    app = web.Application(handler_args={**HANDLER_ARGS, "keepalive_timeout": keepalive_timeout})
    app[PROXY_KEY] = proxy
    app[GUARD_KEY] = GuardLimits(header_timeout, max_unauthenticated)
    app.cleanup_ctx.append(proxy.client_session)
    app.on_shutdown.append(proxy.close_websockets)
    app.router.add_route("*", "/{tail:.*}", proxy.metrics.counted(proxy.handle) if metrics
                         else proxy.handle)
    return app


async def start_proxy(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on host:port behind the connection guard, with the limits create_app put
    on it; returns the runner (``runner.addresses`` has the port)."""
    runner = GuardedAppRunner(app, limits=app.get(GUARD_KEY, GuardLimits()),
                              shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    return runner
