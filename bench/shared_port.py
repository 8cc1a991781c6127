"""Shared-port benchmark: a program's port straight, shared through the proxy on its own host,
and (the baseline of the proxy's own cost) as a workspace's main app through the proxy.

    .venv/bin/python bench/shared_port.py [--app workspace|tiny] [--seconds 10]
                                          [--connections 16] [--rounds 2]
                                          [--level authenticated|public]

--app workspace (default), as bench/proxy.py's default: a real labspace with apps_domain
(labspace.testing.Stack, Docker) and one workspace running a Tornado program (the one the
tests share, tests/sharing/share_app.py) on port 8050, loaded straight at the container's
address and as a shared port through the proxy.
--app tiny: a tiny aiohttp app (JSON and a WebSocket echo, no labspace secret: a program a
user runs) and the proxy (the real one, run_proxy, with an in-memory route source that shares the
app's port at ``--level``) run as separate processes on loopback. Direct and shared runs of
the same bounded load loop alternate with runs through the workspace route
(``/user/bench/lab/...`` to the same program; bench/proxy.py's load generator: wrk when
installed, else an aiohttp client in its own process), then WebSocket round trips, direct
and shared.
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
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from proxy import (  # noqa: E402 - bench/proxy.py, next to this script
    TOKEN,
    Result,
    _stop,
    bench_workspace,
    client_load,
    fmt,
    free_port,
    wait_listening,
    workspace_container,
    wrk,
    ws_echo,
    ws_round_trips,
)

PATH = "/api/status"
SHARE_APP = HERE.parents[1] / "tests" / "sharing" / "share_app.py"  # a program in a workspace
SHARED = 8050  # its port
WS_PATH = "/ws"
DOMAIN = "apps.localhost"


def run_app(port: int) -> None:
    import uvloop
    from aiohttp import web

    body = json.dumps({"status": "ok", "rows": 42}).encode()

    async def status(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get(WS_PATH, ws_echo)
    app.router.add_get("/{tail:.*}", status)  # PATH, and the workspace route's prefixed one
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
            return Route("bench", "lab", "running", f"http://127.0.0.1:{app_port}",
                         secret_value="token not-for-shared-ports")

        async def principal(self, token_digest: str) -> Principal | None:
            return Principal("bench", False) if token_digest == digest(TOKEN) else None

        async def share_level(self, owner: str, workspace: str, shared: int) -> str:
            return level if (owner, workspace, shared) == ("bench", "lab", app_port) else (
                "private")

    settings = load_settings(public_host="127.0.0.1", public_port=port, hub_port=free_port(),
                             apps_domain=DOMAIN, public_url=f"http://localhost:{port}",
                             data_dir=Path(tempfile.mkdtemp(prefix="labspace-bench-")))
    run_proxy(settings, SharingSource())


@dataclass
class Targets:
    """The same program reached straight, as a shared port, and (tiny only) as a workspace's
    main app through the proxy."""

    direct: str
    shared: str
    shared_headers: dict[str, str]
    ws_direct: str
    ws_shared: str
    workspace: str = ""
    workspace_headers: dict[str, str] = field(default_factory=dict)


def tiny_targets(stack: contextlib.ExitStack, level: str) -> Targets:
    app_port, proxy_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1] / "src")}
    app = subprocess.Popen([sys.executable, str(HERE), "_app", str(app_port)], env=env)
    stack.callback(_stop, app)
    proxy = subprocess.Popen([sys.executable, str(HERE), "_proxy", str(proxy_port),
                              str(app_port), level], env=env)
    stack.callback(_stop, proxy)
    wait_listening(app_port, app)
    wait_listening(proxy_port, proxy)
    token = {"Authorization": f"Bearer {TOKEN}"}
    shared = {"Host": f"{app_port}-lab--bench.{DOMAIN}",
              **(token if level == "authenticated" else {})}
    proxied = f"http://127.0.0.1:{proxy_port}"
    return Targets(f"http://127.0.0.1:{app_port}{PATH}", proxied + PATH, shared,
                   f"http://127.0.0.1:{app_port}{WS_PATH}", proxied + WS_PATH,
                   f"{proxied}/user/bench/lab{PATH}", token)


def workspace_targets(stack: contextlib.ExitStack, level: str) -> Targets:
    """A real labspace with apps_domain, one workspace (admin/bench) and the program of
    tests/sharing/share_app.py running in it on port 8050 (Tornado, as a user would)."""
    import httpx

    port = free_port()
    labspace = bench_workspace(
        stack, public_port=port,
        extra_env={"LABSPACE_PUBLIC_URL": f"http://lab.localhost:{port}",
                   "LABSPACE_APPS_DOMAIN": "apps.lab.localhost"})
    with labspace.client() as api:
        home = labspace.data_dir / "homes" / "admin"
        shutil.copy(SHARE_APP, home / SHARE_APP.name)
        os.chown(home / SHARE_APP.name, home.stat().st_uid, home.stat().st_uid)
        container = workspace_container(labspace.instance, "bench")
        subprocess.run(["docker", "exec", "-d", "-u", str(home.stat().st_uid), container,
                        "python3", f"/home/admin/{SHARE_APP.name}"], check=True, timeout=60)
        api.put(f"/hub/api/workspaces/admin/bench/ports/{SHARED}",
                json={"level": level}).raise_for_status()
    info = json.loads(subprocess.run(["docker", "inspect", container], capture_output=True,
                                     text=True, check=True, timeout=60).stdout)[0]
    address = next(net["IPAddress"] for net in info["NetworkSettings"]["Networks"].values()
                   if net.get("IPAddress"))
    shared = {"Host": f"{SHARED}-bench--admin.apps.lab.localhost:{port}",
              **({"Authorization": f"Bearer {labspace.admin_token}"}
                 if level == "authenticated" else {})}
    targets = Targets(f"http://{address}:{SHARED}/headers", f"{labspace.url}/headers", shared,
                      f"http://{address}:{SHARED}/echo", f"{labspace.url}/echo")
    _wait(lambda: httpx.get(targets.shared, headers=shared, timeout=5).status_code == 200, 60,
          "the program to answer through the proxy")
    return targets


def _wait(ready: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", choices=("workspace", "tiny"), default="workspace")
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
    with contextlib.ExitStack() as stack:
        build = workspace_targets if args.app == "workspace" else tiny_targets
        target = build(stack, args.level)
        print(f"{args.app}: shared port at level {args.level}, {args.connections} connections,"
              f" {args.seconds} s per run, {args.rounds} rounds, load: {load.__name__}")
        runs: dict[str, list[Result]] = {"direct": [], "shared": [], "workspace": []}
        for round_ in range(1, args.rounds + 1):
            runs["direct"].append(load(target.direct, {}, args.seconds, args.connections))
            runs["shared"].append(load(target.shared, target.shared_headers, args.seconds,
                                       args.connections))
            if target.workspace:
                runs["workspace"].append(load(target.workspace, target.workspace_headers,
                                              args.seconds, args.connections))
            for name, results in runs.items():
                if results:
                    print(f"round {round_} {name:9} {fmt(results[-1])}")
        rps = {name: statistics.median(r.rps for r in results)
               for name, results in runs.items() if results}
        added = statistics.median(r.p50_ms for r in runs["shared"]) - statistics.median(
            r.p50_ms for r in runs["direct"])
        ws_direct = asyncio.run(ws_round_trips(target.ws_direct, {}, args.ws_messages))
        ws_shared = asyncio.run(ws_round_trips(target.ws_shared, target.shared_headers,
                                               args.ws_messages))
        wd, ws = statistics.median(ws_direct), statistics.median(ws_shared)
        ratio = rps["shared"] / rps["direct"]
        print(f"requests/s shared/direct: {ratio:.2f} (target >= 0.8); p50 added "
              f"{added:.3f} ms")
        if "workspace" in rps:
            print(f"requests/s workspace route/direct (the proxy's own path, same run): "
                  f"{rps['workspace'] / rps['direct']:.2f}")
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
