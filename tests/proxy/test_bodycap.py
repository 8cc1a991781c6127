"""Bodies bound for the hub are capped at the proxy (workspace uploads are not: see
test_proxy.py's 50 MB upload)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web

from labspace.hubedge import MAX_HUB_BODY

from .conftest import ProxyFactory, StaticRouteSource, serve

pytestmark = pytest.mark.asyncio(loop_scope="session")

BROWSER = {"Accept": "text/html"}
CHUNK = b"x" * 65536


async def chunked(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // len(CHUNK)):
        yield CHUNK


class ReadingHub:
    """A stand-in hub that reads every body to its end and remembers how much came."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        size = 0
        try:
            async for chunk in request.content.iter_any():
                size += len(chunk)
        finally:
            self.sizes.append(size)
        return web.json_response({"size": size})

    async def next_size(self, seen: int) -> int:
        for _ in range(200):
            if len(self.sizes) > seen:
                return self.sizes[seen]
            await asyncio.sleep(0.01)
        raise AssertionError("the hub never finished the request")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def capped(make_proxy: ProxyFactory) -> AsyncIterator[tuple[str, ReadingHub]]:
    hub = ReadingHub()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hub.handle)
    runner, port = await serve(app)
    yield await make_proxy(StaticRouteSource(), port), hub
    await runner.cleanup()


async def test_a_declared_body_over_the_cap_never_reaches_the_hub(capped, client):
    url, hub = capped
    seen = len(hub.sizes)
    async with client.post(f"{url}/hub/api/templates",
                           data=b"x" * (MAX_HUB_BODY + 1)) as resp:
        assert resp.status == 413
        assert "too large" in (await resp.json())["error"]
    async with client.post(f"{url}/hub/login", data=b"x" * (MAX_HUB_BODY + 1),
                           headers=BROWSER) as resp:
        assert resp.status == 413
        assert resp.content_type == "text/html" and "too large" in await resp.text()
    assert len(hub.sizes) == seen


async def test_a_chunked_body_is_cut_off_at_the_cap(capped, client):
    url, hub = capped
    seen = len(hub.sizes)
    async with client.post(f"{url}/hub/api/templates", data=chunked(20 * MAX_HUB_BODY)) as resp:
        assert resp.status == 413
        assert "too large" in (await resp.json())["error"]
    assert await hub.next_size(seen) <= MAX_HUB_BODY
    async with client.post(f"{url}/hub/api/templates", data=chunked(MAX_HUB_BODY)) as resp:
        assert resp.status == 200
        assert (await resp.json())["size"] == MAX_HUB_BODY  # up to the cap, all of it
