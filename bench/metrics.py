"""What the proxy's metrics cost per request (proxy/metrics.py).

    .venv/bin/python bench/metrics.py [--calls 200000] [--seconds 5] [--rounds 3]
                                      [--connections 8]

1. In-process: a handler wrapped by ProxyMetrics.counted against the bare one, for a
   workspace path, a hub path and a workspace host under apps_domain: ns added per request,
   next to the same classification counted the usual way (a pre-bound prometheus_client
   counter child's ``inc``).
2. End to end: two proxies (bench/proxy.py's tiny upstream and StaticRouteSource, separate
   processes), one with metrics on and one with LABSPACE_PROXY_METRICS=0, loaded in turn by
   the same client: requests/s and the proxy process' CPU per request, on minus off.
The second is noisy on a busy machine (each round is printed); the first is the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry, Counter

from labspace.origins import Origins
from labspace.proxy.metrics import KINDS, Handler, ProxyMetrics

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
import proxy as proxy_bench  # noqa: E402 - bench/proxy.py, its processes and load loop

ANSWER = web.Response(text="ok")
CODES = ("", "1xx", "2xx", "3xx", "4xx", "5xx")


async def _answer(request: web.Request) -> web.StreamResponse:
    """A handler that does nothing but what Proxy.handle does first: read the path and (with
    apps_domain) the Host header; aiohttp caches both, so counting them again costs little."""
    if request.raw_path and request.host:
        return ANSWER
    raise AssertionError("no path or no host")


async def _time(handler: Handler, requests: list[web.Request], calls: int) -> float:
    """Seconds per call, best of 9 runs (the least disturbed by the rest of the machine)."""
    best = float("inf")
    for _ in range(9):
        began = time.perf_counter()
        for index in range(calls):
            await handler(requests[index % len(requests)])
        best = min(best, (time.perf_counter() - began) / calls)
    return best


async def in_process(calls: int) -> None:
    origins = Origins("http://lab.localhost:8000", "apps.localhost")
    cases = [("workspace path", "lab.localhost:8000", "/user/alice/lab/api/status"),
             ("hub path", "lab.localhost:8000", "/hub/api/"),
             ("workspace host", "lab--alice.apps.localhost:8000", "/user/alice/lab/")]
    print(f"in-process, {calls} calls each, best of 9 (ns per request):")
    print(f"  {'request':16} {'bare':>6} {'counted':>8} {'added':>6} {'child.inc':>10} "
          f"{'added':>6}")
    for name, host, path in cases:
        requests = [make_mocked_request("GET", path, headers={"Host": host})]
        metrics = ProxyMetrics(origins)
        counted = metrics.counted(_answer)
        # The usual way, for comparison: the same classification, then a pre-bound
        # prometheus_client counter child (its inc takes a lock).
        family = Counter("bench_requests", "", ["kind", "code"], registry=CollectorRegistry())
        children = {(kind, code): family.labels(kind, code) for kind in KINDS
                    for code in ("1xx", "2xx", "3xx", "4xx", "5xx")}

        async def with_child(request: web.Request, metrics: ProxyMetrics = metrics,
                             children: dict[tuple[str, str], Any] = children
                             ) -> web.StreamResponse:
            response = await _answer(request)
            children[metrics.kind_of(request), CODES[response.status // 100]].inc()
            return response

        bare = await _time(_answer, requests, calls)
        ours = await _time(counted, requests, calls)
        usual = await _time(with_child, requests, calls)
        print(f"  {name:16} {bare * 1e9:6.0f} {ours * 1e9:8.0f} {(ours - bare) * 1e9:+6.0f} "
              f"{usual * 1e9:10.0f} {(usual - bare) * 1e9:+6.0f}")


def end_to_end(seconds: int, rounds: int, connections: int) -> None:
    with contextlib.ExitStack() as stack:
        target = proxy_bench.tiny_target(stack, "", {"LABSPACE_PROXY_METRICS": "0"})
        headers = target.proxy_headers
        runs = {"on": (target.proxy_url, psutil.Process(target.proxy_pid)),
                "off": (target.baseline_url, psutil.Process(target.baseline_pid))}
        for url, _ in runs.values():  # warm-up: connections, caches
            proxy_bench.client_load(url, headers, 1, connections)
        found: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
        print(f"end to end, {rounds} rounds of {seconds} s each, {connections} connections:")
        for round_ in range(rounds):
            for name in ("off", "on") if round_ % 2 else ("on", "off"):
                url, process = runs[name]
                cpu = sum(process.cpu_times()[:2])
                result = proxy_bench.client_load(url, headers, seconds, connections)
                used = sum(process.cpu_times()[:2]) - cpu
                per_request = used / (result.rps * seconds)
                found[name].append((result.rps, per_request))
                print(f"  metrics {name:3}  {result.rps:8.0f} req/s  proxy CPU "
                      f"{per_request * 1e6:6.1f} us/request  p50 {result.p50_ms:.3f} ms")
        on = statistics.median(cpu for _, cpu in found["on"])
        off = statistics.median(cpu for _, cpu in found["off"])
        print(f"  median proxy CPU per request: on {on * 1e6:.1f} us, off {off * 1e6:.1f} us, "
              f"difference {(on - off) * 1e9:+.0f} ns")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--in-process-only", action="store_true")
    args = parser.parse_args()
    asyncio.run(in_process(args.calls))
    if not args.in_process_only:
        end_to_end(args.seconds, args.rounds, args.connections)


if __name__ == "__main__":
    main()
