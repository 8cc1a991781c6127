"""When each workspace (and instant-app claim) was last used, as the proxy sees it.

The hub stops a personal workspace that nobody used for its idle policy's time
(labspace.workspaces.culler), and ends an instant-app claim after its idle timeout; both ask
the proxy, which sees every request, WebSocket frame and tunnel. The proxy keeps, per route
key, the wall-clock time of the last activity and the number of open tunnels, in two dicts:
no allocation on the hot path beyond the float it stores.

Keys: ``workspace:<owner>/<name>`` (workspace_key) for ``/user/<owner>/<name>/...``, the
workspace's own host, its shared ports' hosts and its tunnels; ``claim:<slot>`` (claim_key)
for an instant-app claim.

What counts (issue 10: an open idle tab must not keep a workspace running, an open
WebSocket with traffic must):

* an HTTP request with a method other than GET, HEAD or OPTIONS (a save, a kernel start);
* a GET, HEAD or OPTIONS that is a top-level navigation: ``Sec-Fetch-Mode: navigate``, or no
  ``Sec-Fetch-Mode`` at all (curl, scripts, older browsers). A page's own background fetches
  (``cors``, ``same-origin``, ``no-cors``: JupyterLab polling ``/api/kernels`` and
  ``/api/contents`` every few seconds from a forgotten tab) do not count;
* a WebSocket data frame (text or binary) either way; pings, pongs and close frames do not,
  nor does the upgrade request itself;
* an open tunnel (``labspace tunnel``: SSH, port forwarding), for as long as it is open; it
  counts as activity again when it closes.

For the instant-app claims (proxy/claims.py), one or two calls::

    key = claim_key(slot)
    # a plain request: count it (by the rules above) before forwarding it
    tracker.request(key, request)
    # a WebSocket: pass the frame stamp to forward_websocket, which stamps each data frame
    await forward_websocket(request, session, base, path, headers, sockets,
                            activity=tracker.frames(key))
    # or, going through Proxy.forward, which does both:
    await proxy.forward(request, route, path, tail, websocket, activity=key)
    tracker.touch(key)      # anything else that counts as use, now
    tracker.last(key)       # wall time of the last use, None if never seen
    tracker.forget(key)     # the claim ended: drop its entry

The hub reads it all on the control socket, ``GET /activity`` (control.py):
``{"now": <wall time>, "since": <when tracking began>, "activity": {key: last wall time},
"tunnels": {key: open count}}``. ``since`` lets it tell "idle since the proxy started" from
"idle forever": a key the proxy has not seen was not used since ``since``, and nothing is
known before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from multidict import istr

if TYPE_CHECKING:
    from aiohttp.web import BaseRequest

WORKSPACE = "workspace:"
CLAIM = "claim:"
# Entries older than this are dropped when the hub reads them: a deleted workspace or an
# ended claim must not stay in memory for the proxy's life.
FORGET_AFTER_S = 31 * 24 * 3600.0
_SEC_FETCH_MODE = istr("Sec-Fetch-Mode")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# What forward_websocket stamps per data frame: the tracker's dict, and the key to set.
FrameStamp = tuple[dict[str, float], str]


def workspace_key(owner: str, name: str) -> str:
    return f"{WORKSPACE}{owner}/{name}"


def claim_key(slot: str) -> str:
    return f"{CLAIM}{slot}"


def counts(request: BaseRequest) -> bool:
    """Whether this HTTP request is someone using the app (see the module's rules)."""
    if request.method not in _SAFE_METHODS:
        return True
    mode = request.headers.get(_SEC_FETCH_MODE)
    return mode is None or mode == "navigate"


class ActivityTracker:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.since = clock()  # nothing is known about before this
        self._last: dict[str, float] = {}
        self._tunnels: dict[str, int] = {}

    def touch(self, key: str) -> None:
        """``key`` is in use now."""
        self._last[key] = self._clock()

    def request(self, key: str, request: BaseRequest) -> None:
        """Count an HTTP request to ``key``'s app if it is use, not a background poll."""
        if counts(request):
            self._last[key] = self._clock()

    def frames(self, key: str) -> FrameStamp:
        """What forward_websocket needs to stamp ``key`` at each data frame."""
        return self._last, key

    @contextmanager
    def tunnel(self, key: str) -> Iterator[None]:
        """An open tunnel keeps ``key`` in use until it closes."""
        self._tunnels[key] = self._tunnels.get(key, 0) + 1
        self.touch(key)
        try:
            yield
        finally:
            left = self._tunnels.get(key, 1) - 1
            if left > 0:
                self._tunnels[key] = left
            else:
                self._tunnels.pop(key, None)
            self.touch(key)

    def last(self, key: str) -> float | None:
        return self._last.get(key)

    def open_tunnels(self, key: str) -> int:
        return self._tunnels.get(key, 0)

    def forget(self, key: str) -> None:
        self._last.pop(key, None)

    def snapshot(self) -> dict[str, Any]:
        """Everything, for the hub (GET /activity); drops entries too old to matter."""
        now = self._clock()
        stale = [key for key, at in self._last.items() if now - at > FORGET_AFTER_S]
        for key in stale:
            del self._last[key]
        return {"now": now, "since": self.since, "activity": dict(self._last),
                "tunnels": dict(self._tunnels)}
