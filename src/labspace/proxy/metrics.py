"""The proxy's Prometheus metrics: requests by kind and status class, WebSockets, upstream
errors. The hub serves them with its own at /hub/metrics; the proxy answers only on its
control socket (control.py), never on the public port.

Every request passes here, so the hot path does the least it can: after the answer, one
classification (the Host header's kind from a small cache, else the path's prefix, in the
order of Proxy.handle) and one ``+= 1`` into a list of plain integers; the metric families
are built from those integers when Prometheus asks. That is cheaper than even a pre-bound
``prometheus_client`` counter child, whose ``inc`` takes a lock (the proxy is one thread:
nothing else writes them). bench/metrics.py measures the cost; docs/performance.md quotes
it. Open WebSockets are the proxy's own set of them, counted when scraped; only an opening
adds to a counter (SocketSet).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from labspace.origins import Origins
from labspace.proxy.claims import PREFIX as CLAIM_PREFIX
from labspace.proxy.connections import CLIENT_WEBSOCKET
from labspace.proxy.tunnel import PREFIX as TUNNEL_PREFIX

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What a request was for: the branches of Proxy.handle (kind_of follows their order).
KINDS = ("hub", "workspace", "share", "claim", "tunnel", "other")
# The proxy could not ask these upstreams (the hub; a workspace's app; a shared port; an
# instant app's container): the errors pages.hub_down/upstream_down and their kin answer.
UPSTREAMS = ("hub", "workspace", "share", "claim")
_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
# Proxy.handle's path prefixes by their first character after the slash (they differ): one
# lookup and one startswith per request instead of a chain of four, a third of the time.
_PATH_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    prefixes[0][1]: (prefixes, kind) for prefixes, kind in [
        (("/user/",), "workspace"), ((TUNNEL_PREFIX,), "tunnel"), ((CLAIM_PREFIX,), "claim"),
        (("/hub/", "/hub?"), "hub")]}


class SocketSet(set[web.WebSocketResponse]):
    """Proxy.websockets: the client WebSockets open now, counting every one ever added
    (forward_websocket and tunnel.carry add and discard them already)."""

    opened = 0

    def add(self, element: web.WebSocketResponse) -> None:
        self.opened += 1
        super().add(element)


class ProxyMetrics(Collector):
    def __init__(self, origins: Origins) -> None:
        self.origins = origins
        self.websockets = SocketSet()
        # kind -> [0, 1xx, 2xx, 3xx, 4xx, 5xx]: indexed by status // 100 (0 unused).
        self._requests = {kind: [0] * 6 for kind in KINDS}
        self._upstream_errors = dict.fromkeys(UPSTREAMS, 0)
        # By Host header: a few hosts carry nearly every request, and looking one up costs a
        # tenth of working it out; bounded, so made-up Host headers only churn it.
        self._host_kind = functools.lru_cache(maxsize=4096)(self._classify_host)
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)

    # ------------------------------------------------------------------ the hot path

    def counted(self, handle: Handler) -> Handler:
        """``handle`` counting each answer by kind and status class. A handler that raises
        counts as aiohttp answers it (an HTTPException its status, anything else 500); a
        client that left (cancelled) before its answer is not counted."""
        requests, kind_of = self._requests, self.kind_of

        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                response = await handle(request)
            except web.HTTPException as exc:
                requests[kind_of(request)][_class_index(exc.status)] += 1
                raise
            except asyncio.CancelledError:
                # The client left. Its WebSocket had its answer (101) long ago: it counts,
                # else closing the tab would hide every WebSocket from the figures.
                if CLIENT_WEBSOCKET in request:
                    requests[kind_of(request)][1] += 1
                raise
            except Exception:
                requests[kind_of(request)][5] += 1
                raise
            requests[kind_of(request)][_class_index(response.status)] += 1
            return response

        return handler

    def kind_of(self, request: web.BaseRequest) -> str:
        """The kind of a request, by the same tests and order as Proxy.handle."""
        if self.origins.apps_domain and (kind := self._host_kind(request.host)):
            return kind
        path = request.raw_path
        found = _PATH_KINDS.get(path[1:2])
        if found is not None and (path.startswith(found[0]) or path == "/hub"):
            return found[1]  # ("/hub" itself: only the hub's entry starts with "h")
        return "other"

    def _classify_host(self, host: str) -> str:
        """The kind of an app host ("" for any other host, the hub's own among them)."""
        origins = self.origins
        if not origins.is_app_host(host):
            return ""
        if origins.claim_of(host) is not None:
            return "claim"
        return "share" if host[:1].isdigit() else "workspace"  # origins.share_of's test

    def upstream_error(self, upstream: str) -> None:
        """The proxy could not ask ``upstream`` (one of UPSTREAMS) and answered an error."""
        self._upstream_errors[upstream] += 1

    # ------------------------------------------------------------------ scrapes

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "labspace_proxy_requests", "Requests the proxy answered, by kind (hub, "
            "workspace, share, claim, tunnel, other) and status class", labels=["kind", "code"])
        for kind, counts in self._requests.items():
            for index, code in enumerate(_CLASSES, start=1):
                requests.add_metric([kind, code], counts[index])
        yield requests
        yield GaugeMetricFamily("labspace_proxy_websockets_open", "WebSockets (and tunnels) "
                                "open through the proxy now", value=len(self.websockets))
        yield CounterMetricFamily("labspace_proxy_websockets", "WebSockets (and tunnels) "
                                  "opened through the proxy", value=self.websockets.opened)
        errors = CounterMetricFamily(
            "labspace_proxy_upstream_errors", "Requests the proxy could not forward because "
            "the upstream did not answer (refused, reset, timed out)", labels=["upstream"])
        for upstream, count in self._upstream_errors.items():
            errors.add_metric([upstream], count)
        yield errors

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _class_index(status: int) -> int:
    return status // 100 if 100 <= status < 600 else 5
