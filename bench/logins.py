"""Login benchmark: logins per second for local, workshop (password and one-click link) and
LDAP accounts through the real proxy and hub, while a probe measures how the hub answers
everybody else.

    .venv/bin/python bench/logins.py [--attendees 400] [--others 100] [--concurrency 16]
                                     [--spread 60]

Starts a real labspace (labspace.testing.Stack) with local accounts and a workshop of
--attendees seats, then a second one with auth = "ldap" against a slapd (Debian's) with
--others directory accounts, when slapd is installed. Each login is what a browser does:
GET the login form (its nonce cookie), POST the name and password, get the session cookie.
A probe in its own process (so the load generator's event loop does not add to its figures)
GETs /hub/api/ every 50 ms during each run; its p99 is the "other requests" figure. The
hub's and the proxy's CPU time per login is measured too: it says how many logins a second
the server sustains when the browsers are elsewhere, as they are in a real workshop (on this
2-core machine the load generator takes a core of its own).
As fast as the server goes (--concurrency at once), then the workshop again arriving evenly
over --spread seconds, as a class does. Target (issue 9): 400 attendees within 60 s, i.e.
>= 7 logins/s, with the probe's p99 < 100 ms. Passwords are argon2id with OWASP's minimum
parameters (19 MiB, 2 passes, 1 lane: identity/passwords.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "src"))

from labspace.testing.stack import Stack  # noqa: E402

# Each login is a new browser (its own cookies and connections), but building an SSL context
# per httpx client costs the load generator ~40 ms of CPU: they share one.
TLS = ssl.create_default_context()
NONCE = re.compile(r'name="_login" value="([^"]+)"')
PROBE_EVERY = 0.05
RUN_LIMIT = 300.0  # seconds: no run goes on longer, whatever happens


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def password_login(url: str, name: str, password: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60, verify=TLS) as browser:
        form = await browser.get("/hub/login", headers={"Accept": "text/html"})
        nonce = NONCE.search(form.text)
        assert nonce, form.text[:200]
        done = await browser.post("/hub/login", headers={"Origin": url}, data={
            "username": name, "password": password, "_login": nonce.group(1), "next": "/hub/"})
        if done.status_code != 303 or "labspace-session" not in done.headers.get(
                "set-cookie", ""):
            raise RuntimeError(f"{name}: login failed ({done.status_code}) {done.text[:200]}")


async def link_login(url: str, token: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60, verify=TLS) as browser:
        await browser.get("/hub/join")  # the page the link opens
        done = await browser.post("/hub/join", data={"token": token}, headers={"Origin": url})
        if done.status_code != 303:
            raise RuntimeError(f"link login failed ({done.status_code}) {done.text[:200]}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def probe_forever(url: str) -> None:
    """The probe process: one GET /hub/api/ every PROBE_EVERY s, each duration (ms) on a line,
    until killed or RUN_LIMIT is up."""
    ends = time.monotonic() + RUN_LIMIT
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < ends:
            began = time.perf_counter()
            client.get("/hub/api/").raise_for_status()
            print(f"{1000 * (time.perf_counter() - began):.2f}", flush=True)
            time.sleep(PROBE_EVERY)


async def run(label: str, stack: Stack, logins: list[Callable[[], Awaitable[None]]],
              concurrency: int, spread: float | None = None) -> dict[str, float]:
    """All ``logins``, ``concurrency`` at once (as fast as the server goes), or with
    ``spread`` seconds: arriving evenly over that time, however many are under way (a class
    arriving); the probe runs meanwhile."""
    queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
    for login in logins:
        queue.put_nowait(login)
    durations: list[float] = []

    async def timed(login: Callable[[], Awaitable[None]]) -> None:
        began = time.perf_counter()
        await login()
        durations.append(time.perf_counter() - began)

    async def worker() -> None:
        while not queue.empty():
            await timed(queue.get_nowait())

    async def arrivals(seconds: float) -> None:
        start, arrived = time.perf_counter(), []
        for n, login in enumerate(logins):
            await asyncio.sleep(max(0.0, start + n * seconds / len(logins) - time.perf_counter()))
            arrived.append(asyncio.create_task(timed(login)))
        await asyncio.gather(*arrived)

    servers = [p.pid for p in (stack.hub_process, stack.proxy_process) if p is not None]
    prober = subprocess.Popen([sys.executable, str(HERE), "--probe", stack.url],
                              stdout=subprocess.PIPE, text=True)
    try:
        cpu_before = sum(cpu_seconds(pid) for pid in servers)
        began = time.perf_counter()
        load = (arrivals(spread) if spread else
                asyncio.gather(*(worker() for _ in range(concurrency))))
        await asyncio.wait_for(load, RUN_LIMIT)
        elapsed = time.perf_counter() - began
        server_cpu = sum(cpu_seconds(pid) for pid in servers) - cpu_before
    finally:
        prober.terminate()
        out, _ = prober.communicate(timeout=10)
    probes = [float(line) for line in out.split()]
    figures = {"logins": len(durations), "seconds": elapsed, "per_second": len(durations) / elapsed,
               "login_p50_ms": 1000 * statistics.median(durations),
               "login_p99_ms": 1000 * pct(durations, 0.99),
               "probe_p50_ms": statistics.median(probes), "probe_p99_ms": pct(probes, 0.99),
               "server_cpu_ms": 1000 * server_cpu / max(1, len(durations))}
    print(f"{label:<26} {figures['logins']:>4} logins in {elapsed:6.1f} s = "
          f"{figures['per_second']:5.1f}/s; login p50 {figures['login_p50_ms']:5.0f} ms, "
          f"p99 {figures['login_p99_ms']:5.0f} ms; other requests p50 "
          f"{figures['probe_p50_ms']:4.1f} ms, p99 {figures['probe_p99_ms']:5.1f} ms; "
          f"hub + proxy CPU {figures['server_cpu_ms']:4.0f} ms a login "
          f"(one core: {1000 / figures['server_cpu_ms']:4.0f}/s)", flush=True)
    return figures


async def local_and_workshop(stack: Stack, args: argparse.Namespace) -> None:
    with stack.client() as api:
        began = time.perf_counter()
        api.post("/hub/api/workshops", json={"name": "bench", "seats": args.attendees,
                                             "expires": "1d"}).raise_for_status()
        print(f"workshop of {args.attendees} accounts created in "
              f"{time.perf_counter() - began:.1f} s", flush=True)
        cards = api.get("/hub/api/workshops/bench/cards").json()
        local = []
        for n in range(args.others):
            name, password = f"member-{n:03d}", secrets.token_urlsafe(12)
            api.post("/hub/api/users", json={"name": name, "password": password}
                     ).raise_for_status()
            local.append((name, password))
    await run("local accounts", stack, [
        (lambda n=name, p=password: password_login(stack.url, n, p)) for name, password in local],
        args.concurrency)
    await run(f"workshop ({args.attendees}), password", stack, [
        (lambda c=card: password_login(stack.url, c["user"], c["password"])) for card in cards],
        args.concurrency)
    await run(f"workshop ({args.attendees}), link", stack, [
        (lambda c=card: link_login(stack.url, c["login_url"].split("#", 1)[1]))
        for card in cards], args.concurrency)
    if args.spread:  # the target's own shape: the whole class within the minute
        await run(f"  arriving over {args.spread:.0f} s, password", stack, [
            (lambda c=card: password_login(stack.url, c["user"], c["password"]))
            for card in cards], args.concurrency, spread=args.spread)
        await run(f"  arriving over {args.spread:.0f} s, link", stack, [
            (lambda c=card: link_login(stack.url, c["login_url"].split("#", 1)[1]))
            for card in cards], args.concurrency, spread=args.spread)


async def directory(args: argparse.Namespace) -> None:
    from labspace.testing.slapd import Slapd

    slapd = Slapd(Path(tempfile.mkdtemp(prefix="labspace-bench-slapd-"))).start()
    try:
        people = [(f"person-{n:03d}", secrets.token_urlsafe(12)) for n in range(args.others)]
        for n, (name, password) in enumerate(people):
            slapd.add_user(name, password, 20000 + n, 6000)
        slapd.add_group("lab", 6000, [name for name, _ in people])
        stack = Stack(Path(tempfile.mkdtemp(prefix="labspace-bench-")), extra_env={
            "LABSPACE_AUTH": "ldap", "LABSPACE_LDAP_URL": slapd.url,
            "LABSPACE_LDAP_PRESET": "freeipa", "LABSPACE_LDAP_BASE_DN": slapd.base,
            "LABSPACE_LDAP_BIND_DN": slapd.manager,
            "LABSPACE_LDAP_BIND_PASSWORD": slapd.manager_password})
        stack.start()
        try:
            await run("LDAP accounts (first)", stack, [
                (lambda n=name, p=password: password_login(stack.url, n, p))
                for name, password in people], args.concurrency)
            await run("LDAP accounts (again)", stack, [
                (lambda n=name, p=password: password_login(stack.url, n, p))
                for name, password in people], args.concurrency)
        finally:
            stack.close()
    finally:
        slapd.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attendees", type=int, default=400, help="workshop seats (<= 1000)")
    parser.add_argument("--others", type=int, default=100,
                        help="local and LDAP accounts (each)")
    parser.add_argument("--concurrency", type=int, default=16, help="logins at once")
    parser.add_argument("--spread", type=float, default=60.0,
                        help="then the workshop again, arriving evenly over this many seconds "
                             "(0: skip)")
    parser.add_argument("--probe", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
            probe_forever(args.probe)
        return
    args.attendees = max(1, min(args.attendees, 1000))
    args.others = max(1, min(args.others, 1000))
    stack = Stack(Path(tempfile.mkdtemp(prefix="labspace-bench-")))
    stack.start()
    try:
        asyncio.run(local_and_workshop(stack, args))
    finally:
        stack.close()
    if shutil.which("slapd") or Path("/usr/sbin/slapd").exists():
        asyncio.run(directory(args))
    else:
        print("LDAP: skipped (no slapd; apt-get install slapd)")


if __name__ == "__main__":
    main()
