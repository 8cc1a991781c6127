"""Login benchmark: logins per second for local, workshop (password and one-click link) and
LDAP accounts through the real proxy and hub, while a probe measures how the hub answers
everybody else.

    .venv/bin/python bench/logins.py [--attendees 400] [--others 100] [--concurrency 16]

Starts a real labspace (labspace.testing.Stack) with local accounts and a workshop of
--attendees seats, then a second one with auth = "ldap" against a slapd (Debian's) with
--others directory accounts, when slapd is installed. Each login is what a browser does:
GET the login form (its nonce cookie), POST the name and password, get the session cookie.
A probe GETs /hub/api/ every 50 ms during each run; its p99 is the "other requests" figure.
Target (issue 9): 400 attendees within 60 s, i.e. >= 7 logins/s, with the probe's p99
< 100 ms. The password hash is argon2id with argon2-cffi's defaults (RFC 9106).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "src"))

from labspace.testing.stack import Stack  # noqa: E402

NONCE = re.compile(r'name="_login" value="([^"]+)"')
PROBE_EVERY = 0.05
RUN_LIMIT = 300.0  # seconds: no run goes on longer, whatever happens


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def password_login(url: str, name: str, password: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as browser:
        form = await browser.get("/hub/login", headers={"Accept": "text/html"})
        nonce = NONCE.search(form.text)
        assert nonce, form.text[:200]
        done = await browser.post("/hub/login", headers={"Origin": url}, data={
            "username": name, "password": password, "_login": nonce.group(1), "next": "/hub/"})
        if done.status_code != 303 or "labspace-session" not in done.headers.get(
                "set-cookie", ""):
            raise RuntimeError(f"{name}: login failed ({done.status_code}) {done.text[:200]}")


async def link_login(url: str, token: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as browser:
        await browser.get("/hub/join")  # the page the link opens
        done = await browser.post("/hub/join", data={"token": token}, headers={"Origin": url})
        if done.status_code != 303:
            raise RuntimeError(f"link login failed ({done.status_code}) {done.text[:200]}")


async def run(label: str, url: str, logins: list[Callable[[], Awaitable[None]]],
              concurrency: int) -> dict[str, float]:
    """All ``logins`` with ``concurrency`` at once; the probe runs meanwhile."""
    queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
    for login in logins:
        queue.put_nowait(login)
    durations: list[float] = []
    probes: list[float] = []
    stop = asyncio.Event()

    async def worker() -> None:
        while not queue.empty():
            login = queue.get_nowait()
            began = time.perf_counter()
            await login()
            durations.append(time.perf_counter() - began)

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            while not stop.is_set():
                began = time.perf_counter()
                (await client.get("/hub/api/")).raise_for_status()
                probes.append(time.perf_counter() - began)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), PROBE_EVERY)

    prober = asyncio.create_task(probe())
    began = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), RUN_LIMIT)
    elapsed = time.perf_counter() - began
    stop.set()
    await prober
    figures = {"logins": len(durations), "seconds": elapsed, "per_second": len(durations) / elapsed,
               "login_p50_ms": 1000 * statistics.median(durations),
               "login_p99_ms": 1000 * pct(durations, 0.99),
               "probe_p50_ms": 1000 * statistics.median(probes),
               "probe_p99_ms": 1000 * pct(probes, 0.99)}
    print(f"{label:<26} {figures['logins']:>4} logins in {elapsed:6.1f} s = "
          f"{figures['per_second']:5.1f}/s; login p50 {figures['login_p50_ms']:5.0f} ms, "
          f"p99 {figures['login_p99_ms']:5.0f} ms; other requests p50 "
          f"{figures['probe_p50_ms']:4.1f} ms, p99 {figures['probe_p99_ms']:5.1f} ms",
          flush=True)
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
    await run("local accounts", stack.url, [
        (lambda n=name, p=password: password_login(stack.url, n, p)) for name, password in local],
        args.concurrency)
    await run(f"workshop ({args.attendees}), password", stack.url, [
        (lambda c=card: password_login(stack.url, c["user"], c["password"])) for card in cards],
        args.concurrency)
    await run(f"workshop ({args.attendees}), link", stack.url, [
        (lambda c=card: link_login(stack.url, c["login_url"].split("#", 1)[1]))
        for card in cards], args.concurrency)


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
            await run("LDAP accounts (first)", stack.url, [
                (lambda n=name, p=password: password_login(stack.url, n, p))
                for name, password in people], args.concurrency)
            await run("LDAP accounts (again)", stack.url, [
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
    args = parser.parse_args()
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
