"""The connections the proxy holds open for each credential, so a revocation ends them.

Disabling a user, logging out or revoking a token must cut that principal off at once, not
when a cache entry expires, and open WebSockets (a terminal, a kernel) must close too. The
hub tells the proxy (control.py); the proxy forgets the cached credentials and closes every
forwarded request and WebSocket that the revoked credential or user let through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiohttp import web

from labspace.proxy.gate import Caller

log = logging.getLogger(__name__)

# Where forward_websocket leaves the client's WebSocket on its request.
CLIENT_WEBSOCKET: web.RequestKey[web.WebSocketResponse] = web.RequestKey(
    "labspace_client_websocket", web.WebSocketResponse)
REVOKED_CLOSE_CODE = 1008  # policy violation: the credential is no longer valid


class OpenConnections:
    """Requests being forwarded, by the caller that was let through."""

    def __init__(self) -> None:
        # By id(): aiohttp requests are mutable mappings, so not hashable.
        self._open: dict[int, tuple[web.BaseRequest, Caller]] = {}

    def __len__(self) -> int:
        return len(self._open)

    def add(self, request: web.BaseRequest, caller: Caller) -> None:
        self._open[id(request)] = (request, caller)

    def discard(self, request: web.BaseRequest) -> None:
        self._open.pop(id(request), None)

    def revoke(self, digests: Iterable[str] = (), users: Iterable[str] = ()) -> int:
        """Close every connection of these credentials or users; returns how many."""
        digest_set, user_set = set(digests), set(users)
        doomed = [request for request, caller in self._open.values()
                  if caller.digest in digest_set or caller.user in user_set]
        for request in doomed:
            self._open.pop(id(request), None)
            _close(request)
        if doomed:
            log.info("closed %d connection(s) of revoked credentials", len(doomed))
        return len(doomed)


def _close(request: web.BaseRequest) -> None:
    websocket = request.get(CLIENT_WEBSOCKET)
    if websocket is not None and not websocket.closed:
        task = asyncio.ensure_future(
            websocket.close(code=REVOKED_CLOSE_CODE, message=b"session ended"))
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        # A client that never answers the close frame must not keep the socket: cut it soon.
        asyncio.get_running_loop().call_later(1.0, _abort, request)
        return
    _abort(request)


def _abort(request: web.BaseRequest) -> None:
    transport = request.transport
    if transport is not None and not transport.is_closing():
        with contextlib.suppress(Exception):
            transport.close()
