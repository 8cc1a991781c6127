"""Request bodies on the hub: no anonymous bytes, and a cap on every route.

FastAPI reads and parses a form or JSON body before it runs any dependency, the ones that
authenticate the caller included: without this, anybody could make the hub hold whatever they
send (four 300 MB POSTs took it from 98 MB to 1.8 GB). This pure-ASGI middleware decides from
the request head, before the app reads a byte:

- a write (any method but GET, HEAD, OPTIONS) that carries no plausible credential, a session
  cookie or ``Authorization: Bearer|token lsp_...``, gets 401; the login form, a workshop's
  login link (web/join.py) and the two calls of `labspace login`'s device flow are the only
  writes anybody may send (small caps);
- a body over its route's cap gets 413: at once when Content-Length says so, or, for a chunked
  body, as soon as the bytes counted pass the cap.

After such an answer the connection is closed, so the rest is never read; except on the
proxy's connections, where the hub reads on and drops what remains (at most MAX_HUB_BODY, the
proxy's own cap): a connection closed with unread data is reset, and the reset can overtake
the answer, which the proxy would then report as the hub being down.

Plausible is not valid: the routes still check the credential; this only keeps the bytes of
strangers out of memory. The proxy refuses any body over MAX_HUB_BODY before it reaches here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.datastructures import Headers
from starlette.requests import Request, cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from labspace.hubedge import MAX_HUB_BODY, KiB, MiB
from labspace.identity.credentials import plausible_token
from labspace.web.deps import SAFE_METHODS
from labspace.web.forwarded import VIA_PROXY
from labspace.workshops.service import JOIN_PATH

LOGIN_PATH = "/hub/login"
# `labspace login`'s device flow (web/clilogin.py): the CLI has no credential yet.
CLI_LOGIN_PATHS = ("/hub/api/cli-logins", "/hub/api/cli-logins/token")
DEFAULT_BODY = 1 * MiB
# (method, path) -> the largest body the route accepts; others get DEFAULT_BODY.
ROUTE_BODY: dict[tuple[str, str], int] = {
    ("POST", LOGIN_PATH): 16 * KiB,  # two names, a password, a nonce
    ("POST", "/hub/api/templates"): MAX_HUB_BODY,  # template JSON: env, mounts, description
    **{("POST", path): 1 * KiB for path in CLI_LOGIN_PATHS},  # a computer's name, a code
    ("POST", JOIN_PATH): 1 * KiB,  # a workshop login link's token
}
ANONYMOUS_WRITES = frozenset({("POST", LOGIN_PATH), ("POST", JOIN_PATH),
                              *(("POST", p) for p in CLI_LOGIN_PATHS)})

# How the app answers an error: (request, status, message) -> a response (JSON for the API).
Answer = Callable[[Request, int, str], Response]


def body_limit(method: str, path: str) -> int:
    return ROUTE_BODY.get((method, path.rstrip("/") or "/"), DEFAULT_BODY)


class BodyLimits:
    """Pure ASGI: refuse anonymous writes and oversized bodies before the app reads them."""

    def __init__(self, app: ASGIApp, *, session_cookies: Iterable[str], answer: Answer) -> None:
        self.app = app
        self.session_cookies = tuple(session_cookies)
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        headers = Headers(scope=scope)
        if (method not in SAFE_METHODS and (method, path) not in ANONYMOUS_WRITES
                and not self._has_credential(headers)):
            await self._refuse(scope, send, 401, "log in first", close=_has_body(headers))
            return
        limit = body_limit(method, path)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._refuse(scope, send, 413, _too_large(limit), close=True)
            return
        await self._capped(scope, receive, send, limit)

    def _has_credential(self, headers: Headers) -> bool:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() in ("bearer", "token") and plausible_token(value.strip()):
            return True
        if "cookie" not in headers:
            return False
        cookies = cookie_parser(headers["cookie"])
        return any(plausible_token(cookies.get(name, "")) for name in self.session_cookies)

    async def _capped(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Run the app, counting the body it reads; past ``limit``, answer 413 ourselves and
        tell the app the client left, then drop whatever it still sends."""
        received = 0
        refused = started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await self._refuse(scope, send, 413, _too_large(limit), close=True)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The app failed on the body we cut short; the client already has its answer.

    async def _refuse(self, scope: Scope, send: Send, status: int, message: str, *,
                      close: bool) -> None:
        response = self.answer(Request(scope), status, message)
        if close and not scope.get(VIA_PROXY):
            response.headers["Connection"] = "close"
        await response(scope, _nothing, send)


def _has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def _too_large(limit: int) -> str:
    size = f"{limit // MiB} MiB" if limit >= MiB else f"{limit // KiB} KiB"
    return f"the request body is too large (at most {size} here)"
