"""The proxy's guard on client connections: a request-head timeout and a per-address cap.

aiohttp's server has no timeout of its own for a request head. The installed 3.14 closes a
connection whose head is incomplete only when its keep-alive timer runs out (3630 s after
connecting or after the last response, by default), so a client that trickles a head, or
connects and says nothing, holds a socket and a file descriptor for an hour (slowloris). Here:

- each request head must be complete within ``header_timeout``: counted from connecting for
  the first request, from the head's first byte for the next ones on a kept-alive connection;
  else the connection is closed without an answer (as nginx does);
- an idle kept-alive connection closes after aiohttp's ``keepalive_timeout``, which create_app
  sets from KEEPALIVE_TIMEOUT;
- while a request is being handled no head timer runs at all, so WebSockets and long uploads
  and downloads in either direction are never cut by this module;
- each client address may hold ``max_unauthenticated`` connections that have not yet carried a
  request with a valid credential (``mark_authenticated``); past that, a new connection gets a
  bare 503 and is closed. An authenticated connection no longer counts, so a busy user (or a
  classroom behind one NAT) is not locked out by its own keep-alive connections.

Everything here depends on aiohttp internals in three places only, marked "aiohttp internals"
below and checked by ``check_aiohttp`` at start-up and by tests/proxy/test_guard.py.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import logging
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
from aiohttp import web, web_protocol, web_server

log = logging.getLogger(__name__)

# A whole request head within 10 s: generous for a person on a bad link, short for an attacker.
HEADER_TIMEOUT = 10.0
# Idle keep-alive (aiohttp's own default is 3630 s): a minute keeps a connection between a
# person's clicks and frees an idle socket soon after; nginx's default is 75 s.
KEEPALIVE_TIMEOUT = 60.0
# Unauthenticated connections per address: a browser opens ~6 per host, and a classroom behind one
# NAT loading the hub's login page at once must fit.
MAX_UNAUTHENTICATED = 256

REFUSAL_TEXT = b"too many unauthenticated connections from your address\n"
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"Content-Length: " + str(len(REFUSAL_TEXT)).encode() + b"\r\n"
           b"Retry-After: 10\r\n"
           b"Connection: close\r\n"
           b"\r\n" + REFUSAL_TEXT)


@dataclass(frozen=True)
class GuardLimits:
    """The guard's limits; create_app keeps them on the app for start_proxy."""

    header_timeout: float = HEADER_TIMEOUT
    """Seconds allowed for one request head (from connecting, or from its first byte)."""
    max_unauthenticated: int = MAX_UNAUTHENTICATED
    """Open connections per client address that have not carried a valid credential yet."""

    def __post_init__(self) -> None:
        if not self.header_timeout > 0:
            raise ValueError(f"header_timeout must be > 0, not {self.header_timeout!r}")
        if self.max_unauthenticated < 1:
            raise ValueError(f"max_unauthenticated must be >= 1, not {self.max_unauthenticated!r}")


GUARD_KEY: web.AppKey[GuardLimits] = web.AppKey("labspace_guard_limits", GuardLimits)


def address_key(peername: Any) -> str | None:
    """Whom to count a connection against: its IPv4 address, or its IPv6 /64 (one host, or one
    home, gets a whole /64 and could otherwise use a fresh address per connection); None (not
    counted) for a Unix socket."""
    if not isinstance(peername, tuple) or not peername or not isinstance(peername[0], str):
        return None
    host: str = peername[0]
    if ":" not in host:
        return host
    try:
        ip = ipaddress.IPv6Address(host.partition("%")[0])
    except ValueError:
        return host
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


class ConnectionGuard:
    """The unauthenticated connections open per client address, for one server."""

    def __init__(self, limits: GuardLimits) -> None:
        self.limits = limits
        self._unauthenticated: dict[str, int] = {}  # only addresses with at least one
        self._warned: set[str] = set()  # addresses refused and logged, until their count is 0

    def counts(self) -> dict[str, int]:
        """A copy of the counts (tests and diagnostics)."""
        return dict(self._unauthenticated)

    def admit(self, address: str) -> bool:
        """Count one more unauthenticated connection from ``address``, unless it is at the cap."""
        count = self._unauthenticated.get(address, 0)
        if count >= self.limits.max_unauthenticated:
            if address not in self._warned:
                self._warned.add(address)
                log.warning("refusing connections from %s: %d unauthenticated ones open",
                            address, count)
            return False
        self._unauthenticated[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self._unauthenticated.get(address, 0) - 1
        if count > 0:
            self._unauthenticated[address] = count
        else:
            self._unauthenticated.pop(address, None)
            self._warned.discard(address)


class GuardedRequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection protocol with the head timer and the unauthenticated count."""

    __slots__ = ("_counted_as", "_guard", "_handling", "_head_deadline", "_head_timer",
                 "_timer_loop")

    def __init__(self, manager: web_server.Server, *, guard: ConnectionGuard,
                 loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._guard = guard
        self._timer_loop = loop
        # When the head being awaited must be complete; 0.0 while none is (idle or handling).
        self._head_deadline = 0.0
        # One timer at a time, re-armed lazily (as aiohttp's keep-alive timer is): a request
        # only moves the deadline, so a busy keep-alive connection costs no timer per request.
        self._head_timer: asyncio.TimerHandle | None = None
        self._handling = False  # a request is in the application's handler
        self._counted_as: str | None = None  # the address this connection is counted against

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        address = address_key(transport.get_extra_info("peername"))
        if address is not None:
            if not self._guard.admit(address):
                cast(asyncio.Transport, transport).write(REFUSAL)
                self.force_close()  # the transport flushes the 503, then closes
                return
            self._counted_as = address
        self._await_head()

    def data_received(self, data: bytes) -> None:
        # Called for every read, request bodies and WebSocket frames included: while a request
        # is handled this is one attribute check; while a head arrives, two.
        if not self._handling and not self._head_deadline and data:
            self._await_head()  # the first byte of a head on a kept-alive connection
        _stock_data_received(self, data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self.authenticated()  # no longer open, so no longer counted
        super().connection_lost(exc)

    def authenticated(self) -> None:
        """This connection carried a valid credential: stop counting it (idempotent)."""
        address = self._counted_as
        if address is not None:
            self._counted_as = None
            self._guard.release(address)

    def request_started(self) -> None:
        self._head_deadline = 0.0  # the head is complete; a pending timer lapses when it fires
        self._handling = True

    def request_finished(self) -> None:
        self._handling = False

    def _await_head(self) -> None:
        deadline = self._timer_loop.time() + self._guard.limits.header_timeout
        self._head_deadline = deadline
        if self._head_timer is None:
            self._head_timer = self._timer_loop.call_at(deadline, self._check_head)

    def _check_head(self) -> None:
        self._head_timer = None
        deadline = self._head_deadline
        if not deadline:
            return  # no head awaited: the next one arms a new timer
        if self._timer_loop.time() < deadline:
            # Armed for an earlier head; a later one is awaited now.
            self._head_timer = self._timer_loop.call_at(deadline, self._check_head)
            return
        log.debug("closing a connection from %s: no complete request head in %.0f s",
                  self.peername, self._guard.limits.header_timeout)
        self.force_close()  # the deadline stays set, so data_received arms nothing more


_stock_data_received = web_protocol.RequestHandler.data_received  # a plain call in the hot path


class GuardedServer(web_server.Server):
    """aiohttp's Server (the protocol factory) making GuardedRequestHandlers, and telling each
    when the application's handler starts and ends a request."""

    def __init__(self, handler: Any, *, guard: ConnectionGuard, request_factory: Any,
                 handler_cancellation: bool, loop: asyncio.AbstractEventLoop,
                 handler_kwargs: dict[str, Any]) -> None:
        super().__init__(self._guarded_handle, request_factory=request_factory,
                         handler_cancellation=handler_cancellation, loop=loop, **handler_kwargs)
        self.guard = guard
        self._app_handler = handler
        self._handler_loop = loop
        self._handler_kwargs = handler_kwargs

    def __call__(self) -> web_protocol.RequestHandler:
        return GuardedRequestHandler(self, guard=self.guard, loop=self._handler_loop,
                                     **self._handler_kwargs)

    async def _guarded_handle(self, request: web.BaseRequest) -> web.StreamResponse:
        # The head is complete from here on; the body, a WebSocket or a long response follows.
        protocol = cast(GuardedRequestHandler, request.protocol)
        protocol.request_started()
        try:
            response: web.StreamResponse = await self._app_handler(request)
            return response
        finally:
            protocol.request_finished()


class GuardedAppRunner(web.AppRunner):
    """An AppRunner whose server is a GuardedServer."""

    __slots__ = ("_limits",)

    def __init__(self, app: web.Application, *, limits: GuardLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits

    async def setup(self) -> None:
        check_aiohttp()
        await super().setup()
        if not isinstance(self.server, GuardedServer):  # _make_server was not called
            raise RuntimeError(f"aiohttp {aiohttp.__version__}: AppRunner._make_server is gone; "
                               "labspace.proxy.guard needs updating")

    async def _make_server(self) -> web_server.Server:
        # aiohttp internals (1/3): BaseRunner._make_server is where a runner builds its Server;
        # the stock one runs the app's start-up and gathers the handler arguments for us.
        stock = await super()._make_server()
        return GuardedServer(
            stock.request_handler, guard=ConnectionGuard(self._limits),
            request_factory=stock.request_factory,
            handler_cancellation=stock.handler_cancellation,
            loop=asyncio.get_running_loop(), handler_kwargs=_handler_kwargs(stock),
        )


def _handler_kwargs(server: web_server.Server) -> dict[str, Any]:
    # aiohttp internals (2/3): Server keeps the RequestHandler arguments it was given (debug,
    # the access log class, the app's handler_args such as keepalive_timeout) in ``_kwargs``.
    kwargs = getattr(server, "_kwargs", None)
    if not isinstance(kwargs, dict):
        raise RuntimeError(f"aiohttp {aiohttp.__version__}: Server._kwargs is gone; "
                           "labspace.proxy.guard needs updating")
    return dict(kwargs)


def check_aiohttp() -> None:
    """Fail loudly at start-up if aiohttp changed what this module relies on.

    aiohttp internals (3/3): the event loop calls ``Server.__call__`` for a connection's
    protocol, built as ``RequestHandler(manager, loop=..., **kwargs)``; it takes the handler
    to call once per request from ``manager.request_handler``.
    """
    wanted = {"manager", "loop", "keepalive_timeout"}
    params = set(inspect.signature(web_protocol.RequestHandler.__init__).parameters)
    if not wanted <= params or "__call__" not in vars(web_server.Server):
        raise RuntimeError(f"aiohttp {aiohttp.__version__}: RequestHandler or Server changed; "
                           "labspace.proxy.guard needs updating")


def mark_authenticated(request: web.BaseRequest) -> None:
    """The request carried a valid credential: its connection no longer counts against its
    address' cap (idempotent; a no-op on a server without the guard)."""
    protocol = request.protocol
    if isinstance(protocol, GuardedRequestHandler):
        protocol.authenticated()



def still_counted(request: web.BaseRequest) -> bool:
    """Whether the request's connection still counts as unauthenticated."""
    protocol = request.protocol
    return isinstance(protocol, GuardedRequestHandler) and protocol._counted_as is not None
