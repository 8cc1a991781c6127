"""Shared-port benchmark: a program's port straight vs shared through the proxy on its own host.

    .venv/bin/python bench/shared_port.py [--seconds 10] [--connections 16] [--rounds 2]
                                          [--level authenticated|public]

A tiny aiohttp app (JSON and a WebSocket echo, no labspace secret: a program a user runs)
and the proxy (the real one, run_proxy, with an in-memory route source that shares the
app's port at ``--level``) run as separate processes on loopback. Direct and shared runs of
the same bounded load loop alternate (bench/proxy.py's load generator: wrk when installed,
else an aiohttp client in its own process), then WebSocket round trips, direct and shared.
The shared requests carry ``Host: <port>-lab--bench.apps.localhost`` and, at
authenticated, an API token, as a script would.
Target (issue 8): shared >= 0.8x direct requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from proxy import (  # noqa: E402 - bench/proxy.py, next to this script
    TOKEN,
    _stop,
    client_load,
    fmt,
    free_port,
    wait_listening,
    wrk,
    ws_round_trips,
)

PATH = "/api/status"
WS_PATH = "/ws"
DOMAIN = "apps.localhost"


def run_app(port: int) -> None:
    import uvloop
    from aiohttp import web

    body = json.dumps({"status": "ok", "rows": 42}).encode()

    async def status(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(msg.data)
        return ws

    app = web.Application()
    app.router.add_get(PATH, status)
    app.router.add_get(WS_PATH, echo)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                loop=uvloop.new_event_loop())


def run_proxy_process(port: int, app_port: int, level: str) -> None:
    sys.path.insert(0, str(HERE.parents[1] / "src"))
    from labspace.config import load_settings
    from labspace.identity.credentials import digest
    from labspace.proxy.process import run_proxy
    from labspace.proxy.source import Principal, Route

    class SharingSource:
        async def route(self, owner: str, workspace: str) -> Route | None:
            if (owner, workspace) != ("bench", "lab"):
                return None
            return Route("bench", "lab", "running", "http://127.0.0.1:8888",
                         secret_value="token not-for-shared-ports")

        async def principal(self, token_digest: str) -> Principal | None:
            return Principal("visitor", False) if token_digest == digest(TOKEN) else None

        async def share_level(self, owner: str, workspace: str, shared: int) -> str:
            return level if (owner, workspace, shared) == ("bench", "lab", app_port) else (
                "private")

    settings = load_settings(public_host="127.0.0.1", public_port=port, hub_port=free_port(),
                             apps_domain=DOMAIN, public_url=f"http://localhost:{port}",
                             data_dir=Path(tempfile.mkdtemp(prefix="labspace-bench-")))
    run_proxy(settings, SharingSource())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ws-messages", type=int, default=2000)
    parser.add_argument("--level", choices=("authenticated", "public"), default="authenticated")
    parser.add_argument("--no-wrk", action="store_true", help="use the aiohttp load loop")
    args = parser.parse_args()
    args.seconds, args.rounds = min(args.seconds, 600), min(args.rounds, 10)
    args.ws_messages = min(args.ws_messages, 100_000)
    load = client_load if args.no_wrk or not _has_wrk() else wrk
    app_port, proxy_port = free_port(), free_port()
    host = f"{app_port}-lab--bench.{DOMAIN}"
    shared_headers = {"Host": host, **({"Authorization": f"Bearer {TOKEN}"}
                                       if args.level == "authenticated" else {})}
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1] / "src")}
    with contextlib.ExitStack() as stack:
        app = subprocess.Popen([sys.executable, str(HERE), "_app", str(app_port)], env=env)
        stack.callback(_stop, app)
        proxy = subprocess.Popen([sys.executable, str(HERE), "_proxy", str(proxy_port),
                                  str(app_port), args.level], env=env)
        stack.callback(_stop, proxy)
        wait_listening(app_port, app)
        wait_listening(proxy_port, proxy)
        direct_url = f"http://127.0.0.1:{app_port}{PATH}"
        shared_url = f"http://127.0.0.1:{proxy_port}{PATH}"
        print(f"shared port at level {args.level}, {args.connections} connections, "
              f"{args.seconds} s per run, {args.rounds} rounds, load: {load.__name__}")
        direct, shared = [], []
        for round_ in range(1, args.rounds + 1):
            d = load(direct_url, {}, args.seconds, args.connections)
            s = load(shared_url, shared_headers, args.seconds, args.connections)
            direct.append(d)
            shared.append(s)
            print(f"round {round_}: direct {fmt(d)}\n         shared {fmt(s)}")
        ratio = statistics.median(s.rps for s in shared) / statistics.median(
            d.rps for d in direct)
        added = statistics.median(s.p50_ms for s in shared) - statistics.median(
            d.p50_ms for d in direct)
        ws_direct = asyncio.run(ws_round_trips(
            f"http://127.0.0.1:{app_port}{WS_PATH}", {}, args.ws_messages))
        ws_shared = asyncio.run(ws_round_trips(
            f"http://127.0.0.1:{proxy_port}{WS_PATH}", shared_headers, args.ws_messages))
        wd, ws = statistics.median(ws_direct), statistics.median(ws_shared)
        print(f"requests/s shared/direct: {ratio:.2f} (target >= 0.8); p50 added "
              f"{added:.3f} ms")
        print(f"WebSocket round trip p50: direct {wd:.3f} ms, shared {ws:.3f} ms "
              f"(+{ws - wd:.3f} ms)")
        print("target:", "met" if ratio >= 0.8 else "NOT met")
    return 0


def _has_wrk() -> bool:
    return subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True).returncode == 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_app":
        run_app(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_proxy":
        run_proxy_process(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(main())
