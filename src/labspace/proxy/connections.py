"""The connections the proxy holds open for each credential, so a revocation ends them.

Disabling a user, logging out or revoking a token must cut that principal off at once, not
when a cache entry expires, and open WebSockets (a terminal, a kernel) must close too. The
hub tells the proxy (control.py); the proxy forgets the cached credentials and closes every
forwarded request and WebSocket that the revoked credential or user let through.

Connections to a shared port are registered with the port too: when its owner lowers the
share level, those whose visitor the new level no longer admits are closed the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from aiohttp import web

from labspace.proxy.gate import Caller

log = logging.getLogger(__name__)

# Where forward_websocket leaves the client's WebSocket on its request.
CLIENT_WEBSOCKET: web.RequestKey[web.WebSocketResponse] = web.RequestKey(
    "labspace_client_websocket", web.WebSocketResponse)
REVOKED_CLOSE_CODE = 1008  # policy violation: the credential is no longer valid
ShareKey = tuple[str, str, int]  # (owner, workspace, port)


class OpenConnections:
    """Requests being forwarded, by the caller that was let through."""

    def __init__(self) -> None:
        # By id(): aiohttp requests are mutable mappings, so not hashable.
        self._open: dict[int, tuple[web.BaseRequest, Caller | None, ShareKey | None]] = {}

    def __len__(self) -> int:
        return len(self._open)

    def add(self, request: web.BaseRequest, caller: Caller | None,
            share: ShareKey | None = None) -> None:
        """Register a forwarded request: ``caller`` None for a visitor of a public share."""
        self._open[id(request)] = (request, caller, share)

    def discard(self, request: web.BaseRequest) -> None:
        self._open.pop(id(request), None)

    def revoke(self, digests: Iterable[str] = (), users: Iterable[str] = ()) -> int:
        """Close every connection of these credentials or users; returns how many."""
        digest_set, user_set = set(digests), set(users)
        doomed = [request for request, caller, _ in self._open.values()
                  if caller is not None and (caller.digest in digest_set
                                             or caller.user in user_set)]
        if doomed:
            log.info("closed %d connection(s) of revoked credentials", len(doomed))
        return self._close_all(doomed)

    def lower_share(self, share: ShareKey, admitted: Callable[[Caller | None], bool]) -> int:
        """Close the connections to ``share`` whose caller is no longer ``admitted``."""
        doomed = [request for request, caller, key in self._open.values()
                  if key == share and not admitted(caller)]
        if doomed:
            log.info("closed %d connection(s) to %s/%s port %d (share lowered)",
                     len(doomed), *share)
        return self._close_all(doomed)

    def _close_all(self, doomed: list[web.BaseRequest]) -> int:
        for request in doomed:
            self._open.pop(id(request), None)
            _close(request)
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
