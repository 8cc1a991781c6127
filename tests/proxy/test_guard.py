"""The connection guard, attacked the way a slowloris client would: raw sockets on loopback.

Each test starts its own proxy (as conftest's make_proxy does) with limits small enough to
watch them act, and checks that every connection it opened is uncounted again at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from labspace.config import load_settings
from labspace.proxy.app import create_app, start_proxy
from labspace.proxy.guard import (
    REFUSAL_TEXT,
    GuardedRequestHandler,
    GuardedServer,
    GuardLimits,
    address_key,
    check_aiohttp,
)
from labspace.proxy.source import Principal, Route

from .conftest import SECRET, Recorder, StaticRouteSource, hub_app, serve, upstream_app

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]

AUTHENTICATED = (b"GET /user/alice/lab/json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Authorization: Bearer alice-token\r\n\r\n")
ANONYMOUS = b"GET /user/alice/lab/json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
ALICE = {"Authorization": "Bearer alice-token"}


@dataclass
class Guarded:
    runner: web.AppRunner
    port: int
    upstream: Recorder

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def server(self) -> GuardedServer:
        assert isinstance(self.runner.server, GuardedServer)
        return self.runner.server

    def counts(self) -> dict[str, int]:
        return self.server.guard.counts()

    async def connect(self) -> Conn:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def settled(self, counts: dict[str, int] | None = None) -> None:
        """Wait (bounded) until the unauthenticated counts are ``counts`` (default: none)."""
        want = counts or {}
        for _ in range(100):
            if self.counts() == want:
                return
            await asyncio.sleep(0.05)
        assert self.counts() == want


GuardFactory = Callable[..., Awaitable[Guarded]]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def guarded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GuardFactory]:
    """Starts proxies with the given create_app limits in front of one upstream and hub."""
    upstream = Recorder()
    up_runner, up_port = await serve(upstream_app(upstream))
    hub_runner, hub_port = await serve(hub_app(Recorder()))
    lab = Route("alice", "lab", state="running", target=f"http://127.0.0.1:{up_port}",
                secret_value=SECRET)
    source = StaticRouteSource(routes={("alice", "lab"): lab},
                               principals={"alice-token": Principal("alice", False)})
    data_dir: Path = tmp_path_factory.mktemp("guard")
    settings = load_settings(data_dir=data_dir, hub_host="127.0.0.1", hub_port=hub_port)
    runners: list[web.AppRunner] = []

    async def start(**limits: Any) -> Guarded:
        runner = await start_proxy(create_app(settings, source, **limits), "127.0.0.1", 0)
        runners.append(runner)
        return Guarded(runner, runner.addresses[0][1], upstream)

    yield start
    for runner in runners:
        await runner.cleanup()
    await up_runner.cleanup()
    await hub_runner.cleanup()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One Content-Length-framed response: (status, body)."""
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode("latin-1")
    lines = head.split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        assert name.lower() != "transfer-encoding", head
        if name.lower() == "content-length":
            length = int(value)
    return int(lines[0].split()[1]), await asyncio.wait_for(reader.readexactly(length), 5)


async def until_closed(reader: asyncio.StreamReader, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it hangs up, and how long that took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        data = await asyncio.wait_for(reader.read(), limit)
    except ConnectionResetError:
        data = b""
    except TimeoutError:
        pytest.fail(f"the connection was still open after {limit} s")
    return data, loop.time() - start


@contextlib.asynccontextmanager
async def trickling(writer: asyncio.StreamWriter, data: bytes,
                    every: float = 0.05) -> AsyncIterator[None]:
    """Sends ``data`` a byte at a time, then one more byte forever, until the block ends."""

    async def drip() -> None:
        with contextlib.suppress(ConnectionError):
            for byte in data:
                writer.write(bytes([byte]))
                await asyncio.sleep(every)
            while True:
                writer.write(b"a")
                await asyncio.sleep(every)

    task = asyncio.create_task(drip())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()


# ------------------------------------------------------------------ head and idle timeouts


async def test_a_head_trickled_byte_by_byte_is_cut_at_the_header_timeout(guarded: GuardFactory):
    proxy = await guarded(header_timeout=0.5)
    reader, writer = await proxy.connect()
    async with trickling(writer, b"GET /user/alice/lab/json HTTP/1.1\r\nHost: x\r\nX-Pad: "):
        data, took = await until_closed(reader, 5)
    assert data == b""  # hung up on, no answer
    assert 0.4 <= took < 3, took
    await proxy.settled()


async def test_a_connection_that_sends_nothing_is_cut(guarded: GuardFactory):
    proxy = await guarded(header_timeout=0.5)
    reader, writer = await proxy.connect()
    await proxy.settled({"127.0.0.1": 1})
    data, took = await until_closed(reader, 5)
    writer.close()
    assert data == b"" and 0.3 <= took < 3, took
    await proxy.settled()


async def test_each_head_on_a_kept_alive_connection_has_its_own_timer(guarded: GuardFactory):
    proxy = await guarded(header_timeout=0.5, keepalive_timeout=10)
    reader, writer = await proxy.connect()
    writer.write(AUTHENTICATED)
    assert (await read_response(reader))[0] == 200
    await asyncio.sleep(1.0)  # idle for twice the header timeout: only keep-alive applies
    writer.write(AUTHENTICATED)
    assert (await read_response(reader))[0] == 200
    await asyncio.sleep(1.0)
    async with trickling(writer, AUTHENTICATED[:-4]):  # the timer starts at the first byte
        data, took = await until_closed(reader, 5)
    assert data == b"" and 0.4 <= took < 3, took
    await proxy.settled()


async def test_a_head_right_after_a_request_still_gets_the_whole_timeout(guarded: GuardFactory):
    # The timer armed at connect is still pending when the second head starts: it must move
    # to that head's deadline, not cut it at the first one's.
    proxy = await guarded(header_timeout=0.6, keepalive_timeout=10)
    reader, writer = await proxy.connect()
    writer.write(AUTHENTICATED)
    assert (await read_response(reader))[0] == 200
    await asyncio.sleep(0.3)
    async with trickling(writer, AUTHENTICATED[:-4]):
        data, took = await until_closed(reader, 5)
    assert data == b"" and 0.5 <= took < 3, took
    await proxy.settled()


async def test_an_idle_kept_alive_connection_closes_after_the_keepalive_timeout(
        guarded: GuardFactory):
    proxy = await guarded(header_timeout=5, keepalive_timeout=0.5)
    reader, writer = await proxy.connect()
    writer.write(AUTHENTICATED)
    assert (await read_response(reader))[0] == 200
    data, took = await until_closed(reader, 5)
    writer.close()
    assert data == b"" and 0.3 <= took < 3, took


# ------------------------------------------------------------------ what must not be cut


async def test_websockets_and_slow_bodies_outlive_the_header_timeout(guarded: GuardFactory):
    proxy = await guarded(header_timeout=0.3)
    async with aiohttp.ClientSession() as client:
        async with client.ws_connect(f"{proxy.url}/user/alice/lab/ws", headers=ALICE) as ws:
            await asyncio.sleep(1.0)  # silent for three header timeouts
            for i in range(4):
                await ws.send_str(f"ping {i}")
                assert (await ws.receive(timeout=5)).data == f"ping {i}"
                await asyncio.sleep(0.25)
            assert not ws.closed

        proxy.upstream.release_stream.clear()
        async with client.get(f"{proxy.url}/user/alice/lab/stream", headers=ALICE) as resp:
            assert await asyncio.wait_for(resp.content.readany(), 5) == b"first\n"
            await asyncio.sleep(1.0)
            proxy.upstream.release_stream.set()
            assert await asyncio.wait_for(resp.content.read(), 5) == b"second\n"

        async def slow_body() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"x" * 1000
                await asyncio.sleep(0.25)

        async with client.put(f"{proxy.url}/user/alice/lab/upload", headers=ALICE,
                              data=slow_body()) as resp:
            assert resp.status == 200
            assert (await resp.json())["size"] == 5000
    await proxy.settled()


# ------------------------------------------------------------------ per-address cap


async def test_unauthenticated_connections_are_capped_per_address(guarded: GuardFactory):
    proxy = await guarded(header_timeout=10, max_unauthenticated=4)
    opened: list[Conn] = []
    try:
        # A user whose connection carried a valid token is not counted.
        user = await proxy.connect()
        opened.append(user)
        user[1].write(AUTHENTICATED)
        assert (await read_response(user[0]))[0] == 200
        await proxy.settled()

        for _ in range(4):  # the attacker fills the cap, saying nothing
            opened.append(await proxy.connect())
        await proxy.settled({"127.0.0.1": 4})
        reader, writer = await proxy.connect()
        data, _ = await until_closed(reader, 5)
        writer.close()
        assert data.startswith(b"HTTP/1.1 503 ") and data.endswith(REFUSAL_TEXT), data
        assert proxy.counts() == {"127.0.0.1": 4}

        # The user's kept-alive connection still gets through.
        user[1].write(AUTHENTICATED)
        assert (await read_response(user[0]))[0] == 200

        # A request without a valid credential does not free a slot; one with it does.
        opened[1][1].write(ANONYMOUS)
        assert (await read_response(opened[1][0]))[0] == 401
        opened[2][1].write(AUTHENTICATED)
        assert (await read_response(opened[2][0]))[0] == 200
        await proxy.settled({"127.0.0.1": 3})
        reader, writer = await proxy.connect()  # admitted again
        opened.append((reader, writer))
        writer.write(ANONYMOUS)
        assert (await read_response(reader))[0] == 401
    finally:
        for _, writer in opened:
            writer.close()
    await proxy.settled()


async def test_counts_return_to_zero_however_connections_end(guarded: GuardFactory):
    proxy = await guarded(header_timeout=0.5, max_unauthenticated=3)
    conns = [await proxy.connect() for _ in range(3)]
    await proxy.settled({"127.0.0.1": 3})
    refused = await proxy.connect()
    assert (await until_closed(refused[0], 5))[0].startswith(b"HTTP/1.1 503 ")
    conns[0][1].write(AUTHENTICATED)  # authenticated, then closed by the client
    assert (await read_response(conns[0][0]))[0] == 200
    conns[0][1].close()
    conns[1][1].write(AUTHENTICATED[:20])  # closed by the client mid-head
    await asyncio.sleep(0.05)
    conns[1][1].close()
    # conns[2] says nothing and is cut by the server.
    assert (await until_closed(conns[2][0], 5))[0] == b""
    for _, writer in [*conns, refused]:
        writer.close()
    await proxy.settled()
    for _ in range(100):
        if not proxy.server.connections:
            break
        await asyncio.sleep(0.05)
    assert proxy.server.connections == []


# ------------------------------------------------------------------ plumbing


async def test_the_guard_is_what_serves_the_proxy(guarded: GuardFactory):
    """Fails loudly if a future aiohttp stops building, configuring or calling our classes."""
    check_aiohttp()
    proxy = await guarded(keepalive_timeout=7)
    reader, writer = await proxy.connect()
    await proxy.settled({"127.0.0.1": 1})
    [handler] = proxy.server.connections
    assert isinstance(handler, GuardedRequestHandler)
    assert handler.keepalive_timeout == 7  # the app's handler_args reached the handler
    writer.write(AUTHENTICATED)
    assert (await read_response(reader))[0] == 200  # request_handler ran: counted out
    await proxy.settled()
    writer.close()


def test_addresses_are_counted_per_host_or_ipv6_64():
    assert address_key(("192.0.2.7", 5555)) == "192.0.2.7"
    assert address_key(("::ffff:192.0.2.7", 5555, 0, 0)) == "192.0.2.7"
    assert address_key(("2001:db8:1:2:aaaa::1", 5555, 0, 0)) == "2001:db8:1:2::/64"
    assert address_key(("2001:db8:1:2:bbbb::9", 5555, 0, 0)) == "2001:db8:1:2::/64"
    assert address_key(("fe80::1%eth0", 5555, 0, 2)) == "fe80::/64"
    assert address_key("") is None  # a Unix socket
    assert address_key(None) is None


def test_limits_are_validated():
    with pytest.raises(ValueError):
        GuardLimits(header_timeout=0)
    with pytest.raises(ValueError):
        GuardLimits(max_unauthenticated=0)
