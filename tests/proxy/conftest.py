"""Fixtures for the proxy tests: a real upstream app, a fake hub, and the proxy on loopback."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from labspace.config import load_settings
from labspace.identity.credentials import digest
from labspace.proxy.app import create_app, start_proxy
from labspace.proxy.source import ClaimRoute, Principal, Route

SECRET = "token upstream-secret-1234"


@dataclass
class StaticRouteSource:
    """An in-memory RouteSource: fixed routes and tokens, counting how often it is asked."""

    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    principals: dict[str, Principal] = field(default_factory=dict)
    shares: dict[tuple[str, str, int], str] = field(default_factory=dict)
    claims: dict[tuple[str, str], ClaimRoute] = field(default_factory=dict)
    route_calls: int = 0
    principal_calls: int = 0

    async def route(self, owner: str, workspace: str) -> Route | None:
        self.route_calls += 1
        return self.routes.get((owner, workspace))

    async def principal(self, token_digest: str) -> Principal | None:
        """``principals`` maps tokens; the proxy asks by digest, as of the database."""
        self.principal_calls += 1
        by_digest = {digest(token): who for token, who in self.principals.items()}
        return by_digest.get(token_digest)

    async def share_level(self, owner: str, workspace: str, port: int) -> str:
        return self.shares.get((owner, workspace, port), "private")

    async def claim_route(self, app: str, slot: str) -> ClaimRoute | None:
        return self.claims.get((app, slot))


@dataclass
class Recorder:
    """What the upstream saw, and switches the tests use to steer it."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    release_stream: asyncio.Event = field(default_factory=asyncio.Event)
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)
    slow_cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    ws_close_codes: list[int | None] = field(default_factory=list)

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]


def _record(recorder: Recorder, request: web.Request) -> dict[str, Any]:
    seen = {
        "method": request.method,
        "raw_path": request.raw_path,
        "headers": dict(request.headers),
        "cookies": dict(request.cookies),
    }
    recorder.requests.append(seen)
    return seen


def upstream_app(recorder: Recorder) -> web.Application:
    """A stand-in for a workspace app; it refuses anyone without the proxy's secret."""

    @web.middleware
    async def require_secret(request: web.Request, handler: Any) -> web.StreamResponse:
        _record(recorder, request)
        if request.headers.get("Authorization") != SECRET:
            return web.json_response({"error": "no secret"}, status=403)
        response: web.StreamResponse = await handler(request)
        return response

    async def json_(request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True, "raw_path": request.raw_path},
                                 headers={"Set-Cookie": "app=1; Path=/"})

    async def gzipped(request: web.Request) -> web.StreamResponse:
        body = gzip.compress(b"hello compressed world" * 100)
        return web.Response(body=body, headers={"Content-Encoding": "gzip",
                                                "Content-Type": "text/plain"})

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first\n")
        await asyncio.wait_for(recorder.release_stream.wait(), 10)
        await response.write(b"second\n")
        await response.write_eof()
        return response

    async def download(request: web.Request) -> web.StreamResponse:
        size = int(request.query.get("mb", "5")) * 1024 * 1024
        response = web.StreamResponse(headers={"Content-Length": str(size)})
        await response.prepare(request)
        chunk = b"x" * 65536
        for _ in range(size // len(chunk)):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def upload(request: web.Request) -> web.StreamResponse:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
        return web.json_response({"size": size, "sha256": digest.hexdigest()})

    async def slow(request: web.Request) -> web.StreamResponse:
        recorder.slow_started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            recorder.slow_cancelled.set()
            raise
        return web.Response(text="too late")

    async def ws(request: web.Request) -> web.StreamResponse:
        sock = web.WebSocketResponse(max_msg_size=0, protocols=("v1.test.labspace",))
        await sock.prepare(request)
        async for msg in sock:
            if msg.type is aiohttp.WSMsgType.TEXT:
                if msg.data == "close-me":
                    await sock.close(code=4002, message=b"bye")
                    break
                await sock.send_str(msg.data)
            elif msg.type is aiohttp.WSMsgType.BINARY:
                await sock.send_bytes(msg.data)
        recorder.ws_close_codes.append(sock.close_code)
        return sock

    async def closing(request: web.Request) -> web.StreamResponse:
        response = web.json_response({"closing": True})
        response.force_close()  # answers with Connection: close, then hangs up
        return response

    async def nocontent(request: web.Request) -> web.StreamResponse:
        return web.Response(status=204, headers={"X-Empty": "1"})

    async def hop(request: web.Request) -> web.StreamResponse:
        return web.Response(text="hop", headers={"Connection": "keep-alive, X-Hop",
                                                 "X-Hop": "1", "Keep-Alive": "timeout=5",
                                                 "X-Kept": "2"})

    async def sneaky(request: web.Request) -> web.StreamResponse:
        """What a hostile app would answer: a site-wide service worker scope, and cookies
        meant to reach the hub or shadow labspace's own."""
        response = web.Response(text="sneaky", headers={"Service-Worker-Allowed": "/"})
        for cookie in ("labspace-session=planted; Path=/hub/",
                       "__Host-labspace-app=planted; Path=/; Secure",
                       "wide=1; Domain=localhost; Path=/", "wide2=1; path=/; domain=.example.org",
                       "kept=1; Path=/user/; HttpOnly"):
            response.headers.add("Set-Cookie", cookie)
        return response

    handlers = {"json": json_, "gzip": gzipped, "sneaky": sneaky, "stream": stream,
                "download": download,
                "upload": upload, "slow": slow, "ws": ws, "closing": closing,
                "nocontent": nocontent, "hop": hop}

    async def dispatch(request: web.Request) -> web.StreamResponse:
        name = request.path.rstrip("/").rsplit("/", 1)[-1]
        handler = handlers.get(name, json_)
        return await handler(request)

    app = web.Application(middlewares=[require_secret],
                          handler_args={"handler_cancellation": True})
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


def hub_app(recorder: Recorder) -> web.Application:
    async def anything(request: web.Request) -> web.StreamResponse:
        _record(recorder, request)
        return web.json_response({"hub": True, "raw_path": request.raw_path})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


def free_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stack:
    source: StaticRouteSource
    upstream: Recorder
    hub: Recorder
    upstream_url: str
    url: str  # the proxy's base URL


ProxyFactory = Callable[..., Awaitable[str]]


@pytest.fixture(scope="module")
def proxy_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data directory the module's proxies share (and so their signing key)."""
    return tmp_path_factory.mktemp("proxy")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def make_proxy(proxy_data_dir: Path) -> AsyncIterator[ProxyFactory]:
    runners: list[web.AppRunner] = []
    data_dir = proxy_data_dir

    async def make(source: StaticRouteSource, hub_port: int, *, fast_path: bool | None = None,
                   **overrides: Any) -> str:
        settings = load_settings(data_dir=data_dir, hub_host="127.0.0.1", hub_port=hub_port,
                                 **overrides)
        app = create_app(settings, source, fast_path=fast_path)
        runner = await start_proxy(app, "127.0.0.1", 0)
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield make
    for runner in runners:
        await runner.cleanup()


async def _proxied(make_proxy: ProxyFactory, **overrides: Any) -> AsyncIterator[Stack]:
    upstream, hub = Recorder(), Recorder()
    up_runner, up_port = await serve(upstream_app(upstream))
    hub_runner, hub_port = await serve(hub_app(hub))
    target = f"http://127.0.0.1:{up_port}"
    running = {"state": "running", "target": target, "secret_value": SECRET}
    source = StaticRouteSource(
        routes={
            ("alice", "lab"): Route("alice", "lab", **running),
            ("alice", "bare"): Route("alice", "bare", strip_prefix=True, **running),
            ("alice", "off"): Route("alice", "off", "stopped", None),
            ("alice", "boot"): Route("alice", "boot", "starting", None),
            ("alice", "gone"): Route("alice", "gone", "running", f"http://127.0.0.1:{free_port()}",
                                     secret_value=SECRET),
            ("bob", "lab"): Route("bob", "lab", **running),
        },
        principals={
            "alice-session": Principal("alice", False),
            "alice-token": Principal("alice", False),
            "bob-session": Principal("bob", False),
            "root-token": Principal("root", True),
        },
    )
    url = await make_proxy(source, hub_port, **overrides)
    yield Stack(source, upstream, hub, target, url)
    await up_runner.cleanup()
    await hub_runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def proxied(make_proxy: ProxyFactory) -> AsyncIterator[Stack]:
    """Path mode: workspaces under /user/ on the proxy's own address."""
    async for stack in _proxied(make_proxy):
        yield stack


APPS_DOMAIN = "apps.localhost"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def apps_proxied(make_proxy: ProxyFactory) -> AsyncIterator[Stack]:
    """With apps_domain: each workspace on its own host (Host headers under apps.localhost)."""
    async for stack in _proxied(make_proxy, apps_domain=APPS_DOMAIN,
                                public_url="http://localhost:8000"):
        yield stack


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                     auto_decompress=False) as session:
        yield session
