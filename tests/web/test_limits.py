"""Request bodies on a real hub: anonymous writes are refused before a byte is read, and every
body is capped, both straight at the hub's port and through the proxy, without the hub's
memory growing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psutil
import pytest

from labspace.testing import Stack, log_in

pytestmark = pytest.mark.docker

MiB = 1024 * 1024
BIG = 50 * MiB
CHUNK = b"x" * (64 * 1024)


def chunked(total: int) -> Iterator[bytes]:
    """A body without Content-Length (httpx sends an iterator chunked)."""
    for _ in range(total // len(CHUNK)):
        yield CHUNK


@contextmanager
def peak_growth(pid: int) -> Iterator[list[int]]:
    """Sample the process' RSS while the block runs; yields [peak growth in bytes]."""
    process = psutil.Process(pid)
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    grown = [0]
    try:
        yield grown
    finally:
        done.set()
        sampler.join()
        grown[0] = peak[0] - before


def post(url: str, path: str, body: bytes | Iterator[bytes], **headers: str) -> httpx.Response:
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post(path, content=body, headers={
            "Content-Type": "application/json", **headers})
    assert time.monotonic() - started < 10, "a refused body must be refused quickly"
    return response


@pytest.fixture(scope="module")
def hub_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.hub_port}"


def test_anonymous_writes_are_refused_before_their_body_is_read(stack: Stack,
                                                                hub_url: str) -> None:
    assert stack.hub_process is not None
    post(hub_url, "/hub/api/workspaces", b"{}")  # warm up: the first answer imports things
    with peak_growth(stack.hub_process.pid) as grown:
        for body in (b"x" * BIG, chunked(BIG)):
            refused = post(hub_url, "/hub/api/workspaces", body)
            assert refused.status_code == 401
            assert refused.json() == {"error": "log in first"}
        forged = post(hub_url, "/hub/api/users", b"{}", Authorization="Bearer not-a-token",
                      Cookie="labspace-session=nonsense")
        assert forged.status_code == 401  # implausible credentials are no credentials
        # Through the proxy the Content-Length alone is too much: the hub never sees it.
        through = post(stack.url, "/hub/api/workspaces", b"x" * BIG)
        assert through.status_code == 413
        assert "too large" in through.json()["error"]
    assert grown[0] < 8 * MiB, f"the hub grew by {grown[0] / MiB:.1f} MiB"


@pytest.mark.parametrize("via", ["hub", "proxy"])
def test_authenticated_bodies_are_capped_per_route(stack: Stack, hub_url: str,
                                                   via: str) -> None:
    assert stack.hub_process is not None
    url = hub_url if via == "hub" else stack.url
    admin = {"Authorization": f"Bearer {stack.admin_token}"}
    post(url, "/hub/api/workspaces", b"{}", **admin)  # warm up
    with peak_growth(stack.hub_process.pid) as grown:
        for path, body in [
            ("/hub/api/workspaces", b"x" * BIG),
            ("/hub/api/workspaces", chunked(BIG)),
            ("/hub/api/workspaces", chunked(3 * MiB // 2)),  # over 1 MiB, under the proxy's cap
            ("/hub/api/templates", chunked(BIG)),
        ]:
            refused = post(url, path, body, **admin)
            assert refused.status_code == 413, (path, refused.text)
            assert "too large" in refused.json()["error"]
    assert grown[0] < 8 * MiB, f"the hub grew by {grown[0] / MiB:.1f} MiB"
    # A body within its cap still works, chunked or not.
    for body in (b'{"name": 1}', iter([b'{"name":', b" 1}"])):
        answered = post(url, "/hub/api/workspaces", body, **admin)
        assert answered.status_code == 422, answered.text


def test_the_login_form_is_capped_small_and_still_works(stack: Stack, hub_url: str) -> None:
    for url in (hub_url, stack.url):
        refused = post(url, "/hub/login", b"username=a&password=" + b"x" * (20 * 1024),
                       **{"Content-Type": "application/x-www-form-urlencoded",
                          "Accept": "text/html"})
        assert refused.status_code == 413
        assert "too large" in refused.text
    with httpx.Client(base_url=stack.url, headers={"Accept": "text/html"}) as client:
        assert log_in(client, "nobody-limits", "wrong").status_code == 401  # read and checked
