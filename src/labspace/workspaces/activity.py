"""The hub's side of the proxy's activity record: when each workspace was last used.

The proxy sees every request, WebSocket frame and tunnel (labspace.proxy.activity says what
counts) and answers ``GET /activity`` on its control socket. A proxy that does not answer
(stopped, restarting, or run with LABSPACE_PROXY_ACTIVITY=0) gives an empty snapshot marked
unavailable: the culler then stops nothing, rather than take "no news" for "idle forever".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from labspace.hubedge import CONTROL_SOCKET_TLS
from labspace.proxy.activity import workspace_key

log = logging.getLogger(__name__)

TIMEOUT = 2.0

__all__ = ["ActivitySnapshot", "ActivitySource", "ProxyActivity", "workspace_key"]


@dataclass(frozen=True)
class ActivitySnapshot:
    """Times are the hub's wall clock (seconds since the epoch)."""

    available: bool = False  # False: the proxy did not answer; nothing is known
    now: float = 0.0
    since: float = 0.0  # when the proxy began recording: nothing is known before
    activity: Mapping[str, float] = field(default_factory=dict)  # key -> last use
    tunnels: Mapping[str, int] = field(default_factory=dict)  # key -> open tunnels

    def last_use(self, key: str) -> float:
        """When ``key`` was last used, as far as the proxy knows: a key it has not seen was
        not used since it began recording (a restarted proxy knows nothing older)."""
        return self.activity.get(key, self.since)

    def tunnels_open(self, key: str) -> int:
        return self.tunnels.get(key, 0)


class ActivitySource(Protocol):
    """Where the culler learns about use: the proxy, or a test's scripted source."""

    async def fetch(self) -> ActivitySnapshot: ...


class ProxyActivity:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self._failing = False  # warn once when the proxy stops answering, not every call

    async def fetch(self) -> ActivitySnapshot:
        if not self.socket_path.exists():
            return ActivitySnapshot()
        transport = httpx.AsyncHTTPTransport(uds=str(self.socket_path),
                                              verify=CONTROL_SOCKET_TLS)
        try:
            async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
                response = await client.get("http://proxy/activity")
                response.raise_for_status()
                body = response.json()
            snapshot = _parse(body, time.time())
        except (httpx.HTTPError, ValueError, TypeError, KeyError, AttributeError) as error:
            (log.debug if self._failing else log.warning)(
                "could not read the proxy's activity (%s): no idle stops until it answers",
                error)
            self._failing = True
            return ActivitySnapshot()
        if self._failing:
            log.info("the proxy's activity is readable again")
            self._failing = False
        return snapshot


def _parse(body: object, received: float) -> ActivitySnapshot:
    """The proxy's answer, its times moved onto this clock (they share a host; this only
    absorbs a clock stepped between the two readings)."""
    if not isinstance(body, dict):
        raise TypeError("expected an object")
    shift = received - _number(body["now"])
    activity, tunnels = body.get("activity") or {}, body.get("tunnels") or {}
    if not isinstance(activity, dict) or not isinstance(tunnels, dict):
        raise TypeError("activity and tunnels must be objects")
    return ActivitySnapshot(
        available=True, now=received, since=_number(body["since"]) + shift,
        activity={str(key): _number(at) + shift for key, at in activity.items()},
        tunnels={str(key): int(_number(n)) for key, n in tunnels.items() if _number(n) > 0})


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    return float(value)
