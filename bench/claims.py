"""Instant-app claim latency: a click on /apps/<app> to the first byte of the app's page,
through the real proxy and hub, with real JupyterLab containers. Two figures per click: the
claim (labspace's part: from the link to the redirect to the claim's own address, cookie
check included) and the first byte of the app's page (JupyterLab rendering it, on the same
two cores, is the rest).

    .venv/bin/python bench/claims.py [--concurrency 1 10 50] [--empty 1 10]

For each --concurrency figure N: an app with N spares (waited for until all are ready), then N
new browsers click at once; each click is what a browser does on its first visit: GET
/apps/<app> (the browser-id cookie is set and checked: one redirect), GET again (the claim:
a redirect to the claim's own address, with its cookie), GET the app's page. Then, for
comparison with a cold start, --empty figures with a pool of no spares: each click waits
on the queue's page (its long poll) until a container is started for it.
Target (issue 10): p99 <= 100 ms with the pool large enough. Every run is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "src"))

from labspace.testing.stack import Stack  # noqa: E402

RUN_LIMIT = 600.0
# Each click is a new browser, but an httpx client builds an SSL context (~40 ms of CPU, on
# the same two cores as the hub) even for http URLs: they share one.
TLS = ssl.create_default_context()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def click(url: str, app: str) -> tuple[float, float, int]:
    """(seconds to the claim: labspace's part, ending with the redirect to the claim's own
    address; seconds to the first byte of the app's page; that page's status)."""
    async with httpx.AsyncClient(base_url=url, timeout=120, verify=TLS,
                                 headers={"Accept": "text/html"}) as browser:
        began = time.perf_counter()
        first = await browser.get(f"/apps/{app}")
        answer = await browser.get(first.headers["location"])
        while answer.status_code == 200 and 'id="app-wait"' in answer.text:
            ticket = answer.text.split('data-ticket="', 1)[1].split('"', 1)[0]
            poll = await browser.get(f"/hub/apps/{app}/queue/{ticket}")
            if poll.json().get("state") == "ready":
                answer = httpx.Response(303, headers={"location": poll.json()["url"]})
        assert answer.status_code == 303, answer.text[:200]
        claimed = time.perf_counter() - began
        async with browser.stream("GET", answer.headers["location"]) as page:
            async for chunk in page.aiter_raw():
                if page.status_code != 200:
                    print(page.status_code, answer.headers["location"], chunk[:400], flush=True)
                break  # the first byte
            elapsed = time.perf_counter() - began
        return claimed, elapsed, page.status_code


def wait_ready(admin: httpx.Client, app: str, want: int) -> float:
    began = time.perf_counter()
    while admin.get(f"/hub/api/apps/{app}").json()["pool"]["ready"] < want:
        if time.perf_counter() - began > RUN_LIMIT:
            raise TimeoutError(f"{want} spares not ready within {RUN_LIMIT:.0f} s")
        time.sleep(0.5)
    return time.perf_counter() - began


async def burst(url: str, app: str, n: int) -> list[tuple[float, float, int]]:
    return list(await asyncio.wait_for(asyncio.gather(*(click(url, app) for _ in range(n))),
                                       RUN_LIMIT))


async def rush(url: str, app: str, n: int, over: float) -> list[tuple[float, float, int]]:
    """``n`` clicks arriving evenly over ``over`` seconds; each figure counts from the
    rush's start, so the largest is when the last student has a working app."""
    began = time.perf_counter()

    async def one(i: int) -> tuple[float, float, int]:
        await asyncio.sleep(i * over / n)
        offset = time.perf_counter() - began
        claimed, page, status = await click(url, app)
        return offset + claimed, offset + page, status

    return list(await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), RUN_LIMIT))


def class_rush(stack: Stack, admin: httpx.Client, n: int, spares: int, over: float) -> None:
    """Issue 10's class rush: ``n`` students within ``over`` seconds, ``spares`` ready."""
    app = f"rush{uuid.uuid4().hex[:5]}"
    admin.post("/hub/api/apps", json={"name": app, "template": "jupyterlab", "path": "lab",
                                      "pool": {"spares": spares, "max_claimed": n}}
               ).raise_for_status()
    took = wait_ready(admin, app, spares)
    print(f"replenish: {spares} spares from none to ready in {took:.1f} s "
          f"({60 * spares / took:.0f} a minute)", flush=True)
    settle()
    clicks = asyncio.run(rush(stack.url, app, n, over))
    served = sum(1 for c in clicks if c[2] == 200)
    print(f"class rush: {n} students over {over:.0f} s, {spares} spares ready: {served} served, "
          f"{n - served} errors; the last has a working app {max(c[1] for c in clicks):.1f} s "
          f"after the first click", flush=True)
    show_failures(stack, clicks)
    admin.delete(f"/hub/api/apps/{app}").raise_for_status()


def spares_cost(count: int) -> None:
    """What ``count`` idle spares cost this machine: its CPU while they wait, and the memory
    their containers hold (the docker cgroups' own figure)."""
    cpu = psutil.cpu_percent(interval=5.0)
    memory = sum(int(path.read_text()) for path in
                 Path("/sys/fs/cgroup/memory/docker").glob("*/memory.usage_in_bytes"))
    print(f"    {count} idle spares: the machine's CPU {cpu:.0f}% (of {psutil.cpu_count()} "
          f"cores), containers' memory {memory / 2**20:.0f} MiB "
          f"({memory / 2**20 / count:.0f} MiB a spare)", flush=True)


def settle(limit: float = 60.0) -> None:
    """Until the machine is quiet (spares that just answered go on loading for a while):
    in a class, the spares are started well before the students click."""
    began = time.perf_counter()
    while psutil.cpu_percent(interval=1.0) > 15 and time.perf_counter() - began < limit:
        pass


def server_cpu(stack: Stack) -> float:
    """CPU seconds the hub and the proxy have used so far."""
    total = 0.0
    for process in (stack.hub_process, stack.proxy_process):
        if process is not None:
            times = psutil.Process(process.pid).cpu_times()
            total += times.user + times.system
    return total


def measured_burst(stack: Stack, app: str, n: int) -> list[tuple[float, float, int]]:
    """The burst, and the CPU it cost: the hub and proxy, and this load generator's own
    simulated browsers (on the same two cores: they slow the claims they measure)."""
    cpu, own = server_cpu(stack), time.process_time()
    clicks = asyncio.run(burst(stack.url, app, n))
    print(f"    hub + proxy CPU: {1000 * (server_cpu(stack) - cpu) / n:.1f} ms a click; "
          f"the simulated browsers': {1000 * (time.process_time() - own) / n:.1f} ms a click",
          flush=True)
    return clicks


def warm_up(admin: httpx.Client, url: str) -> None:
    """One claim first, on an app of its own: a hub that just started answers its first
    requests slowly (lazy imports, templates compiled), and a lab's hub is long warm."""
    app = f"warm{uuid.uuid4().hex[:5]}"
    admin.post("/hub/api/apps", json={"name": app, "template": "jupyterlab", "path": "lab",
                                      "pool": {"spares": 1}}).raise_for_status()
    wait_ready(admin, app, 1)
    asyncio.run(burst(url, app, 1))
    admin.delete(f"/hub/api/apps/{app}").raise_for_status()


def show_failures(stack: Stack, clicks: list[tuple[float, float, int]]) -> None:
    """What the hub and proxy said about a click that did not get its page."""
    if all(c[2] == 200 for c in clicks):
        return
    for log in sorted(stack.root.glob("*.log")):
        lines = [line for line in log.read_text(errors="replace").splitlines()
                 if "WARNING" in line or "ERROR" in line or "claim" in line.lower()]
        print(f"--- {log.name}", *lines[-30:], sep="\n", flush=True)


def report(label: str, clicks: list[tuple[float, float, int]]) -> None:
    claim = [1000 * c[0] for c in clicks]
    page = [1000 * c[1] for c in clicks]
    bad = [c[2] for c in clicks if c[2] != 200]
    print(f"{label:<30} claim p50 {statistics.median(claim):6.1f} p99 {pct(claim, 0.99):6.1f} "
          f"ms; app's first byte p50 {statistics.median(page):6.1f} p99 {pct(page, 0.99):6.1f} "
          f"ms{f'; not 200: {bad}' if bad else ''}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 10, 50])
    parser.add_argument("--empty", type=int, nargs="*", default=[1, 10])
    parser.add_argument("--rush", type=int, default=60, help="students in the class rush "
                        "(0: none)")
    parser.add_argument("--rush-spares", type=int, default=20)
    parser.add_argument("--rush-over", type=float, default=5.0, help="seconds")
    args = parser.parse_args()
    stack = Stack(Path(tempfile.mkdtemp(prefix="labspace-bench-claims-")),
                  extra_env={"LABSPACE_APP_STARTS_AT_ONCE": "4"})
    stack.start()
    try:
        with stack.client() as admin:
            warm_up(admin, stack.url)
            for n in [max(1, min(n, 100)) for n in args.concurrency]:
                app = f"bench{uuid.uuid4().hex[:5]}"
                admin.post("/hub/api/apps", json={"name": app, "template": "jupyterlab",
                                                  "path": "lab", "pool": {"spares": n}}
                           ).raise_for_status()
                print(f"{n} spares ready in {wait_ready(admin, app, n):.1f} s", flush=True)
                settle()
                if n == max(args.concurrency):
                    spares_cost(n)
                clicks = measured_burst(stack, app, n)
                report(f"{n} at once, pool of {n}", clicks)
                show_failures(stack, clicks)
                admin.delete(f"/hub/api/apps/{app}").raise_for_status()
            for n in [max(1, min(n, 20)) for n in args.empty]:
                app = f"cold{uuid.uuid4().hex[:5]}"
                admin.post("/hub/api/apps", json={"name": app, "template": "jupyterlab",
                                                  "path": "lab", "pool": {"spares": 0}}
                           ).raise_for_status()
                settle()
                clicks = measured_burst(stack, app, n)
                report(f"{n} at once, empty pool (cold)", clicks)
                show_failures(stack, clicks)
                admin.delete(f"/hub/api/apps/{app}").raise_for_status()
            if args.rush > 0:
                class_rush(stack, admin, min(args.rush, 400), min(args.rush_spares, 100),
                           max(0.0, min(args.rush_over, 60.0)))
    finally:
        stack.close()


if __name__ == "__main__":
    main()
