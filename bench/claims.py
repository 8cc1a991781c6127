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
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "src"))

from labspace.testing.stack import Stack  # noqa: E402

RUN_LIMIT = 600.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def click(url: str, app: str) -> tuple[float, float, int]:
    """(seconds to the claim: labspace's part, ending with the redirect to the claim's own
    address; seconds to the first byte of the app's page; that page's status)."""
    async with httpx.AsyncClient(base_url=url, timeout=120,
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
    args = parser.parse_args()
    stack = Stack(Path(tempfile.mkdtemp(prefix="labspace-bench-claims-")),
                  extra_env={"LABSPACE_APP_STARTS_AT_ONCE": "4"})
    stack.start()
    try:
        with stack.client() as admin:
            for n in [max(1, min(n, 100)) for n in args.concurrency]:
                app = f"bench{uuid.uuid4().hex[:5]}"
                admin.post("/hub/api/apps", json={"name": app, "template": "jupyterlab",
                                                  "path": "lab", "pool": {"spares": n}}
                           ).raise_for_status()
                print(f"{n} spares ready in {wait_ready(admin, app, n):.1f} s", flush=True)
                report(f"{n} at once, pool of {n}", asyncio.run(burst(stack.url, app, n)))
                admin.delete(f"/hub/api/apps/{app}").raise_for_status()
            for n in [max(1, min(n, 20)) for n in args.empty]:
                app = f"cold{uuid.uuid4().hex[:5]}"
                admin.post("/hub/api/apps", json={"name": app, "template": "jupyterlab",
                                                  "path": "lab", "pool": {"spares": 0}}
                           ).raise_for_status()
                report(f"{n} at once, empty pool (cold)", asyncio.run(burst(stack.url, app, n)))
                admin.delete(f"/hub/api/apps/{app}").raise_for_status()
    finally:
        stack.close()


if __name__ == "__main__":
    main()
