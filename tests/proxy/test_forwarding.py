"""HTTP/1.1 forwarding correctness, against both forwarding paths.

The upstream is a raw asyncio server that writes exactly the bytes a test wants (a 204 with
stray bytes after it, a body that ends at EOF, interim answers...), and raw-socket clients
send what aiohttp's client never would (pipelined requests, a half-closed connection).
Everything runs on loopback and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
import pytest_asyncio

from labspace.proxy.source import Principal, Route

from .conftest import ProxyFactory, StaticRouteSource, free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOKEN = {"Authorization": "Bearer alice-token"}
SECRET = "token raw-secret"
TIMEOUT = 5.0


@dataclass
class RawRequest:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    connection: int  # which upstream connection (0, 1, ...)
    index: int  # which request on that connection (0, 1, ...)


# Answers one request: writes what it wants and returns whether to keep the connection.
Script = Callable[[RawRequest, asyncio.StreamWriter], Awaitable[bool]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    return method, target, headers, body


@dataclass
class RawUpstream:
    """An upstream that answers with whatever ``script`` writes, recording every request."""

    script: Script
    requests: list[RawRequest] = field(default_factory=list)
    connections: int = 0
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        try:
            for index in range(100):
                try:
                    method, target, headers, body = await asyncio.wait_for(
                        _read_request(reader), TIMEOUT)
                except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
                    return
                request = RawRequest(method, target, headers, body, number, index)
                self.requests.append(request)
                if not await self.script(request, writer):
                    return
                await writer.drain()
        finally:
            writer.close()

    def seen(self, target_end: str) -> list[RawRequest]:
        return [r for r in self.requests if r.target.endswith(target_end)]


@dataclass
class Raw:
    upstream: RawUpstream
    url: str  # the workspace's base URL through the proxy
    proxy: str  # the proxy's own base URL
    source: StaticRouteSource


async def ok(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    return True


@pytest_asyncio.fixture(loop_scope="session", params=["fast", "library"])
async def raw(request: pytest.FixtureRequest, make_proxy: ProxyFactory) -> AsyncIterator[Raw]:
    """A raw upstream behind a proxy that forwards on the path named by the parameter."""
    upstream = RawUpstream(ok)
    upstream.server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    target = f"http://127.0.0.1:{upstream.port}"
    source = StaticRouteSource(
        routes={
            ("alice", "raw"): Route("alice", "raw", "running", target, secret_value=SECRET),
            ("alice", "crlf"): Route("alice", "crlf", "running", target,
                                     secret_value="token x\r\nX-Injected: 1"),
            ("alice", "badname"): Route("alice", "badname", "running", target,
                                        secret_header="X Bad", secret_value="token x"),
        },
        principals={"alice-token": Principal("alice", False)},
    )
    proxy = await make_proxy(source, free_port(), fast_path=request.param == "fast")
    yield Raw(upstream, f"{proxy}/user/alice/raw", proxy, source)
    upstream.server.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(upstream.server.wait_closed(), TIMEOUT)


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        yield session


async def exchange(port: int, data: bytes, *, half_close: bool = False) -> bytes:
    """Send raw bytes to the proxy and read until it closes (or TIMEOUT passes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        if half_close:
            writer.write_eof()
        received = b""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TIMEOUT):
                while chunk := await reader.read(65536):
                    received += chunk
        return received
    finally:
        writer.close()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


# ------------------------------------------------------------------ retries


async def drop_second(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    """Answer the first request on each connection; read the second and hang up unanswered
    (what an upstream whose keep-alive timer fired as the request came in looks like)."""
    if request.index == 0:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True
    return False


async def pool_a_connection_that_drops_its_next_request(raw: Raw, client) -> None:
    raw.upstream.script = drop_second
    async with client.get(f"{raw.url}/first", headers=TOKEN) as resp:
        assert resp.status == 200


async def test_a_post_is_never_sent_twice(raw: Raw, client):
    await pool_a_connection_that_drops_its_next_request(raw, client)
    async with client.post(f"{raw.url}/once", headers=TOKEN) as resp:
        assert resp.status == 502
    assert len(raw.upstream.seen("/once")) == 1


async def test_an_idempotent_request_is_retried_once_on_a_fresh_connection(raw: Raw, client):
    await pool_a_connection_that_drops_its_next_request(raw, client)
    async with client.get(f"{raw.url}/again", headers=TOKEN) as resp:
        assert resp.status == 200
        assert await resp.read() == b"ok"
    again = raw.upstream.seen("/again")
    assert [(r.connection, r.index) for r in again] == [(0, 1), (1, 0)]


# ------------------------------------------------------------------ framing


async def test_bytes_after_a_complete_response_close_the_upstream_connection(raw: Raw, client):
    stray = b"HTTP/1.1 200 OK\r\nX-Stray: 1\r\nContent-Length: 5\r\n\r\nstray"

    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        if request.target.endswith("/empty"):
            writer.write(b"HTTP/1.1 204 No Content\r\nX-Empty: 1\r\n\r\n" + stray)
        elif request.target.endswith("/short"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + stray)
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
        return True

    raw.upstream.script = script
    for path, status, body in (("/empty", 204, b""), ("/short", 200, b"ok")):
        async with client.delete(f"{raw.url}{path}", headers=TOKEN) as resp:
            assert (resp.status, resp.reason) == (status, "No Content" if status == 204 else "OK")
            assert "X-Stray" not in resp.headers
            assert await resp.read() == body
        async with client.get(f"{raw.url}/next", headers=TOKEN) as resp:
            assert resp.status == 200
            assert await resp.read() == b"next"  # never the stray answer
    assert [r.index for r in raw.upstream.seen("/next")] == [0, 0]  # on a new connection


async def test_chunked_both_ways(raw: Raw, client):
    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        body = request.body or b"none"
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(body), 3):
            piece = body[i:i + 3]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        writer.write(b"0\r\n\r\n")
        return True

    async def upload() -> AsyncIterator[bytes]:
        for part in (b"hello ", b"chunked ", b"world"):
            yield part

    raw.upstream.script = script
    async with client.get(f"{raw.url}/get", headers=TOKEN) as resp:
        assert await resp.read() == b"none"
    async with client.post(f"{raw.url}/post", headers=TOKEN, data=upload()) as resp:
        assert resp.status == 200
        assert await resp.read() == b"hello chunked world"
    async with client.get(f"{raw.url}/get", headers=TOKEN) as resp:
        assert await resp.read() == b"none"  # the connection is still in step


@pytest.mark.parametrize("interim", [b"100 Continue", b"103 Early Hints\r\nLink: </a.css>"])
async def test_interim_answers_are_skipped(raw: Raw, client, interim: bytes):
    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 " + interim + b"\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nX-Final: 1\r\nContent-Length: 5\r\n\r\nfinal")
        return True

    raw.upstream.script = script
    for method in ("GET", "POST"):
        async with client.request(method, f"{raw.url}/x", headers=TOKEN, data=b"1") as resp:
            assert (resp.status, resp.headers["X-Final"]) == (200, "1")
            assert await resp.read() == b"final"


async def test_head_answers_have_no_body(raw: Raw, client):
    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        if request.method == "HEAD":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nget")
        return True

    raw.upstream.script = script
    for _ in range(2):
        async with client.head(f"{raw.url}/h", headers=TOKEN) as resp:
            assert (resp.status, resp.headers["Content-Length"]) == (200, "10")
            assert await resp.read() == b""
        async with client.get(f"{raw.url}/g", headers=TOKEN) as resp:
            assert await resp.read() == b"get"
    assert [r.method for r in raw.upstream.requests] == ["HEAD", "GET"] * 2
    assert raw.upstream.connections <= 2  # both kept in step (the fast path pools apart)


async def test_connection_close_and_bodies_until_eof(raw: Raw, client):
    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        if request.target.endswith("/eof"):
            writer.write(b"HTTP/1.1 200 OK\r\nX-Eof: 1\r\n\r\n" + b"e" * 100_000)
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\n"
                         b"close")
        return False

    raw.upstream.script = script
    for _ in range(2):
        async with client.get(f"{raw.url}/close", headers=TOKEN) as resp:
            assert "Connection" not in resp.headers  # hop-by-hop: the client stays connected
            assert await resp.read() == b"close"
        async with client.get(f"{raw.url}/eof", headers=TOKEN) as resp:
            assert resp.headers["X-Eof"] == "1"
            assert await resp.read() == b"e" * 100_000
    assert raw.upstream.connections == 4


# ------------------------------------------------------------------ clients


async def test_pipelined_requests_are_answered_in_order(raw: Raw):
    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        name = request.target.rsplit("/", 1)[1].encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(name), name))
        return True

    raw.upstream.script = script
    prefix = raw.url.split(":", 2)[2].split("/", 1)[1]
    heads = b"".join(
        b"GET /%s/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token\r\n%s\r\n"
        % (prefix.encode(), name, b"Connection: close\r\n" if name == b"three" else b"")
        for name in (b"one", b"two", b"three"))
    received = await exchange(port_of(raw.proxy), heads)
    assert received.count(b"HTTP/1.1 200 OK") == 3
    assert received.index(b"\r\n\r\none") < received.index(b"\r\n\r\ntwo") < received.index(
        b"\r\n\r\nthree")


def alice_head(raw: Raw, path: bytes, extra: bytes = b"") -> bytes:
    prefix = raw.url.split(":", 2)[2].split("/", 1)[1].encode()
    return (b"%s /%s/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token\r\n%s\r\n"
            % (b"POST" if extra else b"GET", prefix, path, extra))


async def test_a_half_closed_client_is_treated_as_gone(raw: Raw, client):
    """A client's EOF while its request is pending aborts the request, on both paths, as
    nginx does by default (proxy_ignore_client_abort off): a proxy cannot tell a half-close
    (RFC 9112 section 9.6) from a client that went away, and going on with the upstream's
    work for a client that left costs more than the rare half-closing client gains.
    tests/proxy/test_proxy.py checks that the upstream request is cancelled."""
    started = time.monotonic()
    received = await exchange(port_of(raw.proxy), alice_head(raw, b"half"), half_close=True)
    assert time.monotonic() - started < TIMEOUT / 2  # closed at once, not held open
    assert not received or received.startswith(b"HTTP/1.1 ")  # nothing half-written
    async with client.get(f"{raw.url}/after", headers=TOKEN) as resp:  # and serves the next
        assert resp.status == 200


async def test_a_client_half_closed_in_the_middle_of_a_body_is_dropped(raw: Raw):
    head = alice_head(raw, b"upload", b"Content-Length: 10\r\n")
    started = time.monotonic()
    received = await exchange(port_of(raw.proxy), head + b"abc", half_close=True)
    assert time.monotonic() - started < TIMEOUT / 2  # closed, not held open
    assert not received.startswith(b"HTTP/1.1 200")
    assert all(r.body != b"abc" for r in raw.upstream.requests)


# ------------------------------------------------------------------ secrets


@pytest.mark.parametrize("workspace", ["crlf", "badname"])
async def test_an_invalid_secret_header_is_never_sent(raw: Raw, client, workspace: str,
                                                        caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.ERROR, logger="labspace.proxy")
    for method, data in (("GET", None), ("POST", b"body")):
        async with client.request(method, f"{raw.proxy}/user/alice/{workspace}/x",
                                  headers=TOKEN, data=data) as resp:
            assert resp.status == 502
    assert raw.upstream.requests == []
    assert "secret header" in caplog.text

