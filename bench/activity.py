"""What recording activity (issue 10's idle stops) costs the proxy.

    .venv/bin/python bench/activity.py [--seconds 5] [--rounds 3] [--connections 16]

1. In-process, the tracker's own cost per call (labspace.proxy.activity): a request that
   counts (a navigation: one dict store), one that does not (a page's background poll), the
   key built per request, and a WebSocket frame's stamp.
2. The proxy's request rate and CPU per request with tracking and without
   (LABSPACE_PROXY_ACTIVITY=0), two proxy processes in front of the same tiny aiohttp app
   (bench/proxy.py's --app tiny set-up), alternating runs; the load generator sends no
   Sec-Fetch-Mode, so every request is stored (the most it can cost). Then WebSocket round
   trips through each (every frame stamped by the tracked one).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import sys
import time
import timeit
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve()


def _proxy_bench() -> ModuleType:
    """bench/proxy.py as a module (its processes and load generator)."""
    spec = importlib.util.spec_from_file_location("bench_proxy", HERE.parent / "proxy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def per_call_ns(number: int) -> None:
    sys.path.insert(0, str(HERE.parents[1] / "src"))
    from aiohttp.test_utils import make_mocked_request

    from labspace.proxy.activity import ActivityTracker, workspace_key

    tracker = ActivityTracker()
    key = workspace_key("alice", "analysis")
    stamps, stamped = tracker.frames(key)
    navigate = make_mocked_request("GET", "/user/alice/analysis/lab",
                                   headers={"Sec-Fetch-Mode": "navigate"})
    curl = make_mocked_request("GET", "/user/alice/analysis/api/status")
    poll = make_mocked_request("GET", "/user/alice/analysis/api/kernels",
                               headers={"Sec-Fetch-Mode": "cors"})
    post = make_mocked_request("POST", "/user/alice/analysis/api/contents")
    names = {"tracker": tracker, "key": key, "stamps": stamps, "stamped": stamped,
             "navigate": navigate, "curl": curl, "poll": poll, "post": post,
             "workspace_key": workspace_key, "clock": time.time}
    cases = {
        "request: navigation (stored)": "tracker.request(key, navigate)",
        "request: no Sec-Fetch-Mode (stored)": "tracker.request(key, curl)",
        "request: background poll (not stored)": "tracker.request(key, poll)",
        "request: POST (stored)": "tracker.request(key, post)",
        "key per request (workspace_key)": "workspace_key('alice', 'analysis')",
        "WebSocket frame stamp (in the pump)": "stamps[stamped] = clock()",
    }
    print(f"tracker cost per call (best of 5 x {number}):")
    for name, statement in cases.items():
        best = min(timeit.repeat(statement, number=number, repeat=5, globals=names))
        print(f"  {name:40s} {best / number * 1e9:6.0f} ns")


def rates(seconds: int, rounds: int, connections: int, ws_messages: int) -> None:
    import psutil
    import uvloop

    bench = _proxy_bench()
    with contextlib.ExitStack() as stack:
        target = bench.tiny_target(stack, "", {"LABSPACE_PROXY_ACTIVITY": "0"})
        headers = target.proxy_headers
        runs = {"tracked": (target.proxy_url, target.proxy_pid),
                "untracked": (target.baseline_url, target.baseline_pid)}
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        for url, _ in runs.values():
            bench.client_load(url, headers, 2, connections)  # warm-up
        for r in range(rounds):
            for name, (url, pid) in runs.items():
                process = psutil.Process(pid)
                before = sum(process.cpu_times()[:2])
                result = bench.client_load(url, headers, seconds, connections)
                used = sum(process.cpu_times()[:2]) - before
                cpu_us = used / max(1.0, result.rps * seconds) * 1e6
                results[name].append((result.rps, cpu_us))
                print(f"  round {r + 1} {name:9s}: {result.rps:7.0f} req/s  p50 "
                      f"{result.p50_ms:6.3f} ms  proxy CPU {cpu_us:4.0f} us/request")
        for name, values in results.items():
            print(f"{name:9s}: {statistics.median(v[0] for v in values):7.0f} req/s, proxy CPU "
                  f"{statistics.median(v[1] for v in values):4.0f} us/request "
                  f"(medians of {rounds})")
        for name, url in (("tracked", target.ws_proxied), ("untracked", target.baseline_ws)):
            times = uvloop.run(bench.ws_round_trips(url, headers, ws_messages))
            print(f"WS round trip {name:9s}: p50 {bench._pct(times, 50):.3f} ms  p99 "
                  f"{bench._pct(times, 99):.3f} ms ({len(times)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--ws-messages", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    per_call_ns(max(1000, min(args.calls, 10_000_000)))
    rates(min(args.seconds, 120), max(1, min(args.rounds, 20)), args.connections,
          max(100, min(args.ws_messages, 100_000)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
