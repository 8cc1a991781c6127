"""The public proxy's application: routing, the authentication gate, and process start-up.

    /                          302 to /hub/
    /hub/...                   forwarded unchanged to the hub (503 page when it is down)
    /user/<owner>/<ws>/...     authenticated here, then forwarded to the workspace's app
    /_labspace/proxy/health    200 JSON

Routing works on the raw path, so percent-encoded bytes reach the upstream exactly as sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web

from labspace.config import Settings
from labspace.proxy import pages
from labspace.proxy.cache import CachedRouteSource
from labspace.proxy.forward import (
    SESSION_COOKIE,
    UpstreamUnavailable,
    can_go_fast,
    fast_target,
    forward_fast,
    forward_http,
    upstream_head,
    upstream_headers,
)
from labspace.proxy.source import Principal, Route, RouteSource
from labspace.proxy.upstream import UpstreamPool
from labspace.proxy.websocket import forward_websocket

log = logging.getLogger(__name__)

HEALTH_PATH = "/_labspace/proxy/health"
CONNECT_TIMEOUT = 5.0
# Time allowed between two reads from an upstream: generous, for long computations.
SOCK_READ_TIMEOUT = 3600.0
SHUTDOWN_TIMEOUT = 15.0
# aiohttp server options, carried by the app so every runner uses them: cancel handlers whose
# client left; no access log in the hot path; room for the big cookies apps set.
HANDLER_ARGS: dict[str, Any] = {
    "handler_cancellation": True,
    "access_log": None,
    "max_field_size": 64 * 1024,
    "max_line_size": 64 * 1024,
}

PROXY_KEY: web.AppKey[Proxy] = web.AppKey("labspace_proxy")


class Proxy:
    """The request handler and its shared state (one client session, the route cache)."""

    def __init__(self, settings: Settings, source: RouteSource,
                 sock_read_timeout: float = SOCK_READ_TIMEOUT) -> None:
        self.hub = settings.hub_address
        self.source = source if isinstance(source, CachedRouteSource) else CachedRouteSource(
            source)
        self.sock_read_timeout = sock_read_timeout
        self._session: aiohttp.ClientSession | None = None
        self.pool = UpstreamPool(connect_timeout=CONNECT_TIMEOUT)
        self.websockets: set[web.WebSocketResponse] = set()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the proxy's client session is not open (app not started)")
        return self._session

    async def client_session(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: one pooled client session for the process' life."""
        connector = aiohttp.TCPConnector(
            limit=10_000, limit_per_host=0, keepalive_timeout=30.0, ttl_dns_cache=60,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None, connect=None, sock_connect=CONNECT_TIMEOUT,
                sock_read=self.sock_read_timeout,
            ),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # never mix one user's cookies into another's
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            max_line_size=64 * 1024, max_field_size=64 * 1024,
            trust_env=False,
        )
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
        if path.startswith("/user/"):
            return await self.workspace(request, path)
        if path.startswith("/hub/") or path == "/hub" or path.startswith("/hub?"):
            return await self.to_hub(request, path)
        if path == "/" or path.startswith("/?"):
            return pages.to_hub()
        if request.path == HEALTH_PATH:
            return pages.health()
        return pages.not_found(request)

    async def to_hub(self, request: web.Request, path: str) -> web.StreamResponse:
        websocket = _is_websocket(request)
        try:
            if not websocket and can_go_fast(request):
                target = fast_target(self.hub)
                if target is not None:
                    head = upstream_head(request, path, target[2], workspace=False)
                    return await forward_fast(request, self.pool, target, head,
                                              self.sock_read_timeout)
            headers = upstream_headers(request, workspace=False, websocket=websocket)
            if websocket:
                return await forward_websocket(request, self.session, self.hub, path, headers,
                                               self.websockets)
            return await forward_http(request, self.session, self.hub, path, headers)
        except UpstreamUnavailable as exc:
            log.warning("hub unavailable for %s: %s", request.path, exc)
            return pages.hub_down(request)

    # ------------------------------------------------------------------ workspaces

    async def workspace(self, request: web.Request, path: str) -> web.StreamResponse:
        parsed = _split_user_path(path)
        if parsed is None:
            return pages.not_found(request)
        owner, name, tail = parsed
        websocket = _is_websocket(request)
        try:
            principal = await self._principal(request)
        except Exception:
            log.exception("route source failed looking up a credential")
            return pages.source_down(request)
        if principal is None:
            if not websocket and pages.wants_html(request) and request.method in ("GET", "HEAD"):
                return pages.login_redirect(path)
            return pages.unauthenticated()
        if principal.user != owner and not principal.is_admin:
            return pages.forbidden(request)
        for attempt in (1, 2):
            try:
                route = await self.source.route(owner, name)
            except Exception:
                log.exception("route source failed looking up %s/%s", owner, name)
                return pages.source_down(request)
            if route is None:
                return pages.no_such_workspace(request, name)
            if route.state != "running" or not route.target:
                return pages.not_running(request, owner, name, route.state)
            try:
                return await self._forward(request, route, path, tail, websocket)
            except UpstreamUnavailable as exc:
                if exc.connect_failed and attempt == 1:
                    # The workspace may have moved or stopped: ask the source again, once.
                    self.source.forget_route(owner, name)
                    continue
                log.info("workspace %s/%s not answering: %s", owner, name, exc)
                return pages.upstream_down(request)
        return pages.upstream_down(request)  # not reached

    async def _forward(self, request: web.Request, route: Route, path: str, tail: str,
                       websocket: bool) -> web.StreamResponse:
        assert route.target is not None
        if route.strip_prefix:
            path = tail if tail.startswith("/") else "/" + tail
        if not websocket and can_go_fast(request):
            target = fast_target(route.target)
            if target is not None:
                head = upstream_head(request, path, target[2], workspace=True,
                                     secret=_secret_bytes(route))
                return await forward_fast(request, self.pool, target, head,
                                          self.sock_read_timeout)
        secret = (route.secret_header, route.secret_value) if route.secret_value else None
        headers = upstream_headers(request, workspace=True, secret=secret, websocket=websocket)
        if websocket:
            return await forward_websocket(request, self.session, route.target, path, headers,
                                           self.websockets)
        return await forward_http(request, self.session, route.target, path, headers)

    async def _principal(self, request: web.Request) -> Principal | None:
        """Who sent the request: a Bearer/token Authorization header, else the session cookie."""
        auth = request.headers.get("Authorization")
        if auth:
            scheme, _, value = auth.partition(" ")
            value = value.strip()
            if value and scheme.lower() in ("bearer", "token"):
                principal = await self.source.principal(value)
                if principal is not None:
                    return principal
        if SESSION_COOKIE in request.headers.get("Cookie", ""):
            cookie = request.cookies.get(SESSION_COOKIE)
            if cookie:
                return await self.source.principal(cookie)
        return None


_secrets: dict[tuple[str, str], tuple[bytes, bytes]] = {}


def _secret_bytes(route: Route) -> tuple[bytes, bytes] | None:
    if not route.secret_value:
        return None
    key = (route.secret_header, route.secret_value)
    secret = _secrets.get(key)
    if secret is None:
        if len(_secrets) > 10_000:
            _secrets.clear()
        secret = _secrets[key] = (key[0].encode(), key[1].encode())
    return secret


def _is_websocket(request: web.BaseRequest) -> bool:
    return (request.method == "GET"
            and request.headers.get("Upgrade", "").lower() == "websocket")


def _split_user_path(path: str) -> tuple[str, str, str] | None:
    """'/user/<owner>/<ws><tail>' -> (owner, ws, tail); tail is '', '/...' or '?...'."""
    rest = path[len("/user/"):]
    owner, slash, rest = rest.partition("/")
    if not slash or not owner:
        return None
    end = len(rest)
    for stop in ("/", "?"):
        index = rest.find(stop)
        if index != -1 and index < end:
            end = index
    name, tail = rest[:end], rest[end:]
    if not name:
        return None
    if "%" in owner or "%" in name:
        owner, name = unquote(owner), unquote(name)
    return owner, name, tail


def create_app(settings: Settings, source: RouteSource, *,
               sock_read_timeout: float = SOCK_READ_TIMEOUT) -> web.Application:
    """The proxy as an aiohttp application (serve it with start_proxy or any AppRunner)."""
    proxy = Proxy(settings, source, sock_read_timeout)
    app = web.Application(handler_args=HANDLER_ARGS)
    app[PROXY_KEY] = proxy
    app.cleanup_ctx.append(proxy.client_session)
    app.on_shutdown.append(proxy.close_websockets)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    return app


async def start_proxy(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on host:port; returns the runner (``runner.addresses`` has the port)."""
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    return runner


def _raise_open_files_limit() -> None:
    """Every client and upstream connection is a file descriptor: use the hard limit."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _serve(settings: Settings, source: RouteSource) -> None:
    runner = await start_proxy(create_app(settings, source), settings.public_host,
                               settings.public_port)
    log.info("proxy listening on %s:%s, hub at %s", settings.public_host,
             settings.public_port, settings.hub_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("proxy shutting down")
    finally:
        await runner.cleanup()


def run_proxy(settings: Settings, source: RouteSource) -> None:
    """Run the proxy until SIGTERM/SIGINT, on uvloop; then shut down gracefully."""
    import uvloop

    _raise_open_files_limit()
    uvloop.run(_serve(settings, source))
