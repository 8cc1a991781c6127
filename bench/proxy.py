"""Proxy benchmark: direct vs proxied requests/s, latency and WebSocket round trips.

    .venv/bin/python bench/proxy.py [--app jupyter|tiny] [--seconds 10] [--connections 16]
                                    [--rounds 2]

--app jupyter (default): starts a real labspace (labspace.testing.Stack, Docker) with one
JupyterLab workspace and loads its JSON endpoint /user/admin/bench/api directly (container IP,
the workspace secret) and through the proxy (admin token); WebSocket round trips go through
a Jupyter terminal (a key typed, its echo from the pty).
--app tiny: a tiny aiohttp JSON/WebSocket-echo upstream and the proxy (run_proxy, with a
StaticRouteSource) as separate processes on loopback.
Both alternate direct and proxied runs of a bounded load generator (wrk when installed, else
an aiohttp client loop in another process).
Targets: proxied >= 0.8x direct requests/s, <= 1 ms added p50; WebSocket overhead p50 <= 0.5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECRET = "token bench-secret"
TOKEN = "bench-token"
PATH = "/user/bench/lab/api/status"
WS_PATH = "/user/bench/lab/api/ws"
HERE = Path(__file__).resolve()


# ------------------------------------------------------------------ child processes


async def ws_echo(request: Any) -> Any:
    """A WebSocket that sends every text message back (the tiny apps' echo)."""
    from aiohttp import web

    ws = web.WebSocketResponse(max_msg_size=0)
    await ws.prepare(request)
    async for msg in ws:
        await ws.send_str(msg.data)
    return ws


def run_upstream(port: int) -> None:
    import uvloop
    from aiohttp import web

    body = json.dumps({"status": "ok", "kernels": 1, "connections": 0}).encode()

    async def status(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != SECRET:
            return web.Response(status=403)
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get(PATH, status)
    app.router.add_get(WS_PATH, ws_echo)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                loop=uvloop.new_event_loop())


def run_proxy_process(port: int, upstream_port: int, hub_port: int, src: str) -> None:
    sys.path.insert(0, src)
    from labspace.config import load_settings
    from labspace.identity.credentials import digest
    from labspace.proxy.process import run_proxy
    from labspace.proxy.source import Principal, Route

    class StaticRouteSource:
        async def route(self, owner: str, workspace: str) -> Route | None:
            if (owner, workspace) != ("bench", "lab"):
                return None
            return Route("bench", "lab", "running", f"http://127.0.0.1:{upstream_port}",
                         secret_value=SECRET)

        async def principal(self, token_digest: str) -> Principal | None:
            # Proxies before 0.2 asked with the token itself (--baseline-src runs them too).
            known = token_digest in (digest(TOKEN), TOKEN)
            return Principal("bench", False) if known else None

    settings = load_settings(public_host="127.0.0.1", public_port=port, hub_port=hub_port,
                             data_dir=Path(tempfile.mkdtemp(prefix="labspace-bench-")))
    run_proxy(settings, StaticRouteSource())


# ------------------------------------------------------------------ load generation


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, headers: dict[str, str], seconds: int, connections: int) -> Result:
    command = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency",
               "--timeout", "5s"]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True,
                         timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out or "Socket errors" in out:
        print("   wrk reported errors:\n" + out, file=sys.stderr)
    return Result(rps, p50, p99)


def run_client_load(url: str, headers_json: str, seconds: float, connections: int) -> None:
    """Fallback load generator (own process): prints JSON {count, latencies_ms sample}."""
    import aiohttp
    import uvloop

    headers = json.loads(headers_json)

    async def main() -> None:
        latencies: list[float] = []
        deadline = time.monotonic() + seconds
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def worker() -> None:
                while time.monotonic() < deadline and len(latencies) < 5_000_000:
                    start = time.perf_counter()
                    async with session.get(url) as resp:
                        await resp.read()
                        if resp.status != 200:
                            raise RuntimeError(f"status {resp.status}")
                    latencies.append((time.perf_counter() - start) * 1000)

            await asyncio.gather(*(worker() for _ in range(connections)))
        print(json.dumps({"count": len(latencies), "seconds": seconds,
                          "latencies": sorted(latencies)[:: max(1, len(latencies) // 20000)]}))

    uvloop.run(main())


def client_load(url: str, headers: dict[str, str], seconds: int, connections: int) -> Result:
    out = subprocess.run(
        [sys.executable, str(HERE), "_load", url, json.dumps(headers), str(seconds),
         str(connections)], capture_output=True, text=True, check=True, timeout=seconds + 30,
    ).stdout
    data = json.loads(out)
    lat = data["latencies"]
    return Result(data["count"] / data["seconds"], _pct(lat, 50), _pct(lat, 99))


def _pct(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * pct / 100))]


# ------------------------------------------------------------------ WebSocket round trips


async def ws_round_trips(url: str, headers: dict[str, str], count: int) -> list[float]:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
        payload = '{"msg_type": "execute_request", "content": {"code": "1+1"}}'
        for _ in range(min(200, count)):  # warm-up
            await ws.send_str(payload)
            await ws.receive(timeout=5)
        times = []
        for _ in range(count):
            start = time.perf_counter()
            await ws.send_str(payload)
            await ws.receive(timeout=5)
            times.append((time.perf_counter() - start) * 1000)
    return sorted(times)


async def terminal_round_trips(url: str, headers: dict[str, str], count: int) -> list[float]:
    """Round trips through a Jupyter terminal: type a key, wait for the pty's echo.

    Alternates 'a' and backspace so the command line never grows.
    """
    import aiohttp

    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
        await ws.send_str(json.dumps(["set_size", 24, 80, 600, 800]))

        async def one(key: str) -> None:
            await ws.send_str(json.dumps(["stdin", key]))
            while True:
                msg = await ws.receive(timeout=5)
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"terminal websocket: {msg.type}")
                if json.loads(msg.data)[0] == "stdout":
                    return

        await asyncio.sleep(1.0)  # let the shell print its prompt
        while True:  # drain the prompt
            try:
                await ws.receive(timeout=0.3)
            except TimeoutError:
                break
        keys = ("a", "\x7f")
        for i in range(min(200, count)):  # warm-up
            await one(keys[i % 2])
        times = []
        for i in range(count):
            start = time.perf_counter()
            await one(keys[i % 2])
            times.append((time.perf_counter() - start) * 1000)
    return sorted(times)


# ------------------------------------------------------------------ orchestration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server process exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port} after {timeout} s")


def fmt(result: Result) -> str:
    return f"{result.rps:9.0f} req/s  p50 {result.p50_ms:6.3f} ms  p99 {result.p99_ms:6.3f} ms"


@dataclass
class Target:
    """Where the load goes: the app directly and through the proxy, plus the WebSocket URLs."""

    direct_url: str
    direct_headers: dict[str, str]
    proxy_url: str
    proxy_headers: dict[str, str]
    ws_direct: str
    ws_proxied: str
    ws_kind: str  # "echo" (tiny aiohttp echo) or "terminal" (a Jupyter terminal's pty)
    proxy_pid: int
    baseline_url: str = ""  # the same through a second proxy run from --baseline-src
    baseline_ws: str = ""
    baseline_pid: int = 0


def tiny_target(stack: contextlib.ExitStack, baseline_src: str,
                baseline_env: dict[str, str] | None = None) -> Target:
    """The tiny aiohttp upstream and the proxy (StaticRouteSource), as separate processes;
    the baseline proxy runs from ``baseline_src`` (default: this tree) with ``baseline_env``."""
    up_port, proxy_port, hub_port = free_port(), free_port(), free_port()
    src = str(HERE.parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    upstream = subprocess.Popen([sys.executable, str(HERE), "_upstream", str(up_port)], env=env)
    stack.callback(_stop, upstream)
    proxy = subprocess.Popen([sys.executable, str(HERE), "_proxy", str(proxy_port),
                              str(up_port), str(hub_port), src], env=env)
    stack.callback(_stop, proxy)
    wait_listening(up_port, upstream)
    wait_listening(proxy_port, proxy)
    target = Target(
        f"http://127.0.0.1:{up_port}{PATH}", {"Authorization": SECRET},
        f"http://127.0.0.1:{proxy_port}{PATH}", {"Authorization": f"Bearer {TOKEN}"},
        f"http://127.0.0.1:{up_port}{WS_PATH}", f"http://127.0.0.1:{proxy_port}{WS_PATH}",
        "echo", proxy.pid,
    )
    if baseline_src or baseline_env:
        port = free_port()
        baseline_src = baseline_src or src
        baseline = subprocess.Popen(
            [sys.executable, str(HERE), "_proxy", str(port), str(up_port), str(hub_port),
             baseline_src],
            env={**os.environ, **(baseline_env or {}), "PYTHONPATH": baseline_src})
        stack.callback(_stop, baseline)
        wait_listening(port, baseline)
        target.baseline_url = f"http://127.0.0.1:{port}{PATH}"
        target.baseline_ws = f"http://127.0.0.1:{port}{WS_PATH}"
        target.baseline_pid = baseline.pid
    return target


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def _docker_inspect(name: str) -> dict[str, Any]:
    out = subprocess.run(["docker", "inspect", name], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    info: dict[str, Any] = json.loads(out)[0]
    return info


def workspace_container(instance: str, workspace: str) -> str:
    """The id of a labspace instance's workspace container, found by its labels (its name
    carries the workspace's database id too)."""
    return subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=org.labspace.instance={instance}",
         "--filter", f"label=org.labspace.workspace={workspace}"],
        capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def bench_workspace(stack: contextlib.ExitStack, **stack_args: Any) -> Any:
    """A real labspace (labspace.testing.Stack, closed with ``stack``) with one running
    JupyterLab workspace, 'admin/bench'."""
    sys.path.insert(0, str(HERE.parents[1] / "src"))
    from labspace.testing.stack import Stack

    labspace = Stack(Path(tempfile.mkdtemp(prefix="labspace-bench-")), **stack_args)
    stack.callback(labspace.close)
    labspace.start()
    print(f"labspace {labspace.instance} at {labspace.url}; starting workspace admin/bench")
    with labspace.client() as api:
        api.post("/hub/api/workspaces",
                 json={"name": "bench", "template": "jupyterlab"}).raise_for_status()
        deadline = time.monotonic() + 180
        state = ""
        while time.monotonic() < deadline:
            state = api.get("/hub/api/workspaces/admin/bench").json().get("state", "")
            if state == "running":
                break
            if state in ("failed", "error"):
                raise RuntimeError(f"workspace state {state}:\n{labspace.logs()}")
            time.sleep(0.5)
        else:
            raise RuntimeError(f"workspace not running after 180 s (state {state!r})")
    return labspace


def jupyter_target(stack: contextlib.ExitStack, jupyter_path: str, baseline_src: str) -> Target:
    """A real labspace (labspace.testing.Stack) with one JupyterLab workspace, 'admin/bench'."""
    import httpx

    labspace = bench_workspace(stack)
    info = _docker_inspect(workspace_container(labspace.instance, "bench"))
    ips = [net["IPAddress"] for net in info["NetworkSettings"]["Networks"].values()
           if net.get("IPAddress")]
    env = dict(item.split("=", 1) for item in info["Config"]["Env"])
    secret = env["JUPYTER_TOKEN"]
    base = "/user/admin/bench"
    direct_base = f"http://{ips[0]}:8888"
    direct_h = {"Authorization": f"token {secret}"}
    proxy_h = {"Authorization": f"Bearer {labspace.admin_token}"}
    # Wait until the app answers through the proxy (the hub may mark it running first).
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(labspace.url + base + jupyter_path, headers=proxy_h,
                         timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{base + jupyter_path} does not answer 200 through the proxy")
        time.sleep(0.5)
    # A terminal for the WebSocket round trips (its pty echoes what we type).
    terminal = httpx.post(f"{direct_base}{base}/api/terminals", headers=direct_h, timeout=30)
    terminal.raise_for_status()
    term = terminal.json()["name"]
    ws_path = f"{base}/terminals/websocket/{term}"
    assert labspace.proxy_process is not None
    target = Target(
        direct_base + base + jupyter_path, direct_h,
        labspace.url + base + jupyter_path, proxy_h,
        direct_base + ws_path, labspace.url + ws_path, "terminal", labspace.proxy_process.pid,
    )
    if baseline_src:
        # A second proxy process, from other sources, on the same database and workspace.
        port = free_port()
        log = open(labspace.root / "baseline-proxy.log", "ab")  # noqa: SIM115
        stack.callback(log.close)
        baseline = subprocess.Popen(
            [sys.executable, "-m", "labspace.cli.main", "proxy"],
            env={**labspace.env, "LABSPACE_PUBLIC_PORT": str(port), "PYTHONPATH": baseline_src},
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        stack.callback(_stop, baseline)
        wait_listening(port, baseline, 30)
        target.baseline_url = f"http://127.0.0.1:{port}{base}{jupyter_path}"
        target.baseline_ws = f"http://127.0.0.1:{port}{ws_path}"
        target.baseline_pid = baseline.pid
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", choices=("jupyter", "tiny"), default="jupyter",
                        help="jupyter: a real labspace and JupyterLab workspace (Docker); "
                        "tiny: a tiny aiohttp upstream and the proxy process alone")
    parser.add_argument("--jupyter-path", default="/api",
                        help="the JSON endpoint of JupyterLab to load (below /user/admin/bench)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ws-messages", type=int, default=2000)
    parser.add_argument("--no-wrk", action="store_true", help="use the aiohttp load loop")
    parser.add_argument("--baseline-src", default="",
                        help="also run a proxy from this source tree (e.g. a git worktree's "
                        "src/ of an older commit) and alternate it with the others")
    parser.add_argument("--baseline-library-path", action="store_true",
                        help="(--app tiny) the baseline proxy forwards everything through "
                        "aiohttp's client (LABSPACE_PROXY_FAST_PATH=0)")
    args = parser.parse_args()
    if args.baseline_library_path and args.app != "tiny":
        parser.error("--baseline-library-path needs --app tiny")
    args.ws_messages = min(args.ws_messages, 100_000)
    args.seconds = min(args.seconds, 600)
    args.rounds = max(1, min(args.rounds, 20))

    import psutil
    import uvloop

    with contextlib.ExitStack() as stack:
        if args.app == "tiny":
            env = {"LABSPACE_PROXY_FAST_PATH": "0"} if args.baseline_library_path else None
            target = tiny_target(stack, args.baseline_src, env)
        else:
            target = jupyter_target(stack, args.jupyter_path, args.baseline_src)
        baseline_url = target.baseline_url
        use_wrk = shutil.which("wrk") is not None and not args.no_wrk
        load = wrk if use_wrk else client_load
        direct_url, direct_h = target.direct_url, target.direct_headers
        proxy_url, proxy_h = target.proxy_url, target.proxy_headers
        print(f"app {args.app}: direct {direct_url}\n           proxied {proxy_url}")
        print(f"load generator: {'wrk' if use_wrk else 'aiohttp loop'}, {args.connections} "
              f"connections, {args.seconds} s per run, {args.rounds} rounds, "
              f"{os.cpu_count()} CPUs")
        load(direct_url, direct_h, 2, args.connections)  # warm-up (caches, pools)
        load(proxy_url, proxy_h, 2, args.connections)
        if baseline_url:
            load(baseline_url, proxy_h, 2, args.connections)
        direct: list[Result] = []
        proxied: list[Result] = []
        baseline: list[Result] = []
        proxy_cpu: list[float] = []
        baseline_cpu: list[float] = []

        def measured(url: str, pid: int, cpu: list[float]) -> Result:
            """A proxied run, noting the proxy process' CPU time per request (user+sys)."""
            process = psutil.Process(pid)
            before = sum(process.cpu_times()[:2])
            result = load(url, proxy_h, args.seconds, args.connections)
            used = sum(process.cpu_times()[:2]) - before
            cpu.append(used / max(1.0, result.rps * args.seconds) * 1e6)
            return result

        for r in range(args.rounds):
            direct.append(load(direct_url, direct_h, args.seconds, args.connections))
            print(f"  round {r + 1} direct  : {fmt(direct[-1])}")
            proxied.append(measured(proxy_url, target.proxy_pid, proxy_cpu))
            print(f"  round {r + 1} proxied : {fmt(proxied[-1])}  proxy CPU "
                  f"{proxy_cpu[-1]:.0f} us/request")
            if baseline_url:
                baseline.append(measured(baseline_url, target.baseline_pid, baseline_cpu))
                print(f"  round {r + 1} baseline: {fmt(baseline[-1])}  proxy CPU "
                      f"{baseline_cpu[-1]:.0f} us/request")

        def med(results: list[Result]) -> Result:
            return Result(*(statistics.median(getattr(x, f) for x in results)
                            for f in ("rps", "p50_ms", "p99_ms")))

        d, p = med(direct), med(proxied)
        ratio = p.rps / d.rps
        added = p.p50_ms - d.p50_ms
        print(f"HTTP direct : {fmt(d)}  (median of {args.rounds})")
        print(f"HTTP proxied: {fmt(p)}")
        print(f"HTTP ratio proxied/direct {ratio:.2f}x (target >= 0.8), added p50 "
              f"{added:.3f} ms (target <= 1 ms); proxy CPU "
              f"{statistics.median(proxy_cpu):.0f} us/request")
        if baseline:
            b = med(baseline)
            print(f"HTTP baseline proxy: {fmt(b)}  ratio {b.rps / d.rps:.2f}x, added p50 "
                  f"{b.p50_ms - d.p50_ms:.3f} ms; proxy CPU "
                  f"{statistics.median(baseline_cpu):.0f} us/request")

        # Unloaded latency (1 connection): the cost of the extra hop without queueing.
        short = max(2, args.seconds // 2)
        d1 = load(direct_url, direct_h, short, 1)
        p1 = load(proxy_url, proxy_h, short, 1)
        print(f"1 connection direct : {fmt(d1)}")
        print(f"1 connection proxied: {fmt(p1)}  (added p50 {p1.p50_ms - d1.p50_ms:.3f} ms)")
        if baseline_url:
            b1 = load(baseline_url, proxy_h, short, 1)
            print(f"1 connection baseline: {fmt(b1)}  (added p50 "
                  f"{b1.p50_ms - d1.p50_ms:.3f} ms)")

        round_trips = ws_round_trips if target.ws_kind == "echo" else terminal_round_trips
        ws_direct: list[float] = []
        ws_proxied: list[float] = []
        ws_baseline: list[float] = []
        for _ in range(args.rounds):
            ws_direct += uvloop.run(round_trips(target.ws_direct, direct_h, args.ws_messages))
            ws_proxied += uvloop.run(round_trips(target.ws_proxied, proxy_h, args.ws_messages))
            if target.baseline_ws:
                ws_baseline += uvloop.run(round_trips(target.baseline_ws, proxy_h,
                                                      args.ws_messages))
        ws_direct.sort()
        ws_proxied.sort()
        wd50, wd99 = _pct(ws_direct, 50), _pct(ws_direct, 99)
        wp50, wp99 = _pct(ws_proxied, 50), _pct(ws_proxied, 99)
        print(f"WS ({target.ws_kind}) direct : p50 {wd50:.3f} ms  p99 {wd99:.3f} ms "
              f"({len(ws_direct)} round trips)")
        print(f"WS ({target.ws_kind}) proxied: p50 {wp50:.3f} ms  p99 {wp99:.3f} ms")
        print(f"WS added p50 {wp50 - wd50:.3f} ms (target <= 0.5 ms)")
        if ws_baseline:
            ws_baseline.sort()
            print(f"WS ({target.ws_kind}) baseline: p50 {_pct(ws_baseline, 50):.3f} ms  p99 "
                  f"{_pct(ws_baseline, 99):.3f} ms  (added p50 "
                  f"{_pct(ws_baseline, 50) - wd50:.3f} ms)")
        rss = psutil.Process(target.proxy_pid).memory_info().rss
        print(f"proxy RSS {rss / 1024 / 1024:.1f} MiB")
        if target.baseline_pid:
            rss = psutil.Process(target.baseline_pid).memory_info().rss
            print(f"baseline proxy RSS {rss / 1024 / 1024:.1f} MiB")
        ok = ratio >= 0.8 and added <= 1.0 and wp50 - wd50 <= 0.5
        print("targets:", "met" if ok else "NOT met")
        return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_upstream":
        run_upstream(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_proxy":
        run_proxy_process(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif len(sys.argv) > 1 and sys.argv[1] == "_load":
        run_client_load(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(main())
