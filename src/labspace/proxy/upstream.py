"""The fast path to upstreams: keep-alive HTTP/1.1 connections on raw asyncio protocols.

Requests without a body (GET, DELETE, OPTIONS... but not HEAD) go here: the request head is
written in one ``write``, the answer is parsed with httptools, and a small answer of known
length goes back to the client as one ``web.Response``; bigger ones stream with flow control
both ways. Everything else (bodies, HEAD, WebSocket upgrades) keeps using aiohttp's client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

import httptools
from aiohttp import web

log = logging.getLogger(__name__)

# Body bytes buffered from the upstream before its socket stops being read.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
MAX_IDLE_PER_TARGET = 256


class UpstreamFailed(Exception):
    """The connection failed; ``answered`` says whether any of the response was seen."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection to an upstream, carrying one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._reset()
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    def _reset(self) -> None:
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.status = 0
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.leftover = False
        self._interim = False
        self.answered = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.read_paused = False
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    # ---------------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.answered = True
        if self.complete:
            self._stray()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.complete:  # garbage after a complete response
                self._stray()
                return
            self._fail(UpstreamFailed(f"bad response from upstream: {exc}", answered=True))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and not self.complete and self._until_eof():
            self.complete = True  # the body ran to the end of the connection
            self._wake()
        elif not self.complete:
            self._fail(UpstreamFailed(str(exc) if exc else "upstream closed the connection",
                                      answered=self.answered))
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("upstream closed the connection"))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _stray(self) -> None:
        # Bytes after a complete response are no answer to anything (RFC 9112 9.3.2: a
        # client must not guess): never parse them as the next one; drop the connection.
        self.leftover = True
        self.keep_alive = False
        self.close()

    # ---------------------------------------------------------------- httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            self._stray()

    def on_status(self, status: bytes) -> None:
        if self.leftover:
            return
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.leftover:
            return
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.leftover:
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim answer (100 Continue, 103 Early Hints): wait for the real one.
            self._interim = True
            self.reason = b""
            self.headers = []
            return
        self.status = status
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.leftover:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.leftover:
            return
        if self._interim:
            self._interim = False
            return
        self.keep_alive = self._parser.should_keep_alive()  # reset once this returns
        self.complete = True
        self._wake()

    # ---------------------------------------------------------------- for the forwarder

    def _until_eof(self) -> bool:
        for name, _ in self.headers:
            lower = name.lower()
            if lower == b"content-length" or lower == b"transfer-encoding":
                return False
        return True

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def wait(self, timeout: float) -> None:
        """Wait for the next event (head, body bytes, end, failure), at most ``timeout``."""
        if self.error is not None:
            raise self.error
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, _time_out, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def head(self, timeout: float) -> None:
        while not self.headers_done:
            await self.wait(timeout)

    def take(self) -> bytes:
        """All the body bytes buffered so far (b"" when none)."""
        chunks = self.chunks
        if not chunks:
            return b""
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.read_paused and self.transport is not None and not self.closed:
            self.read_paused = False
            self.transport.resume_reading()
        return data

    async def drain(self) -> None:
        if self._write_paused and not self.closed:
            self._drain_waiter = self.loop.create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None

    def send(self, data: bytes) -> None:
        self._reset()
        assert self.transport is not None
        self.transport.write(data)

    @property
    def reusable(self) -> bool:
        return (self.complete and not self.closed and self.error is None
                and self.keep_alive and not self.leftover and not self.chunks)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("upstream read timed out"))


class UpstreamPool:
    """Idle keep-alive connections per (host, port), most recently used first."""

    def __init__(self, *, connect_timeout: float, keepalive: float = 30.0) -> None:
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self._idle: dict[tuple[str, int], deque[UpstreamProtocol]] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    async def acquire(self, host: str, port: int) -> tuple[UpstreamProtocol, bool]:
        """A connection and whether it was reused from the pool."""
        idle = self._idle.get((host, port))
        if idle:
            now = time.monotonic()
            while idle:
                conn = idle.pop()
                if not conn.closed and now - conn.idle_since < self.keepalive:
                    return conn, True
                conn.close()
        return await self.connect(host, port), False

    async def connect(self, host: str, port: int) -> UpstreamProtocol:
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: UpstreamProtocol(loop), host, port),
            self.connect_timeout,
        )
        if self._sweeper is None:
            self._sweeper = loop.call_later(self.keepalive, self._sweep)
        return protocol

    def release(self, conn: UpstreamProtocol, host: str, port: int) -> None:
        if not conn.reusable:
            conn.close()
            return
        idle = self._idle.get((host, port))
        if idle is None:
            idle = self._idle[(host, port)] = deque()
        if len(idle) >= MAX_IDLE_PER_TARGET:
            idle.popleft().close()
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def _sweep(self) -> None:
        """Close connections idle longer than the keep-alive time; runs every ``keepalive``."""
        self._sweeper = None
        cutoff = time.monotonic() - self.keepalive
        for key in list(self._idle):
            idle = self._idle[key]
            while idle and (idle[0].closed or idle[0].idle_since < cutoff):
                idle.popleft().close()
            if not idle:
                del self._idle[key]
        if self._idle:
            with contextlib.suppress(RuntimeError):
                self._sweeper = asyncio.get_running_loop().call_later(self.keepalive,
                                                                      self._sweep)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


def close_client(request: web.BaseRequest) -> None:
    if request.transport is not None:
        request.transport.close()
