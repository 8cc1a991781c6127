"""The public proxy, end to end on loopback: a real upstream, a fake hub, real sockets."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from collections.abc import AsyncIterator

import aiohttp
import psutil
import pytest
from yarl import URL

from labspace.identity.credentials import digest
from labspace.proxy.cache import CachedRouteSource
from labspace.proxy.source import Principal, Route

from .conftest import SECRET, ProxyFactory, Stack, StaticRouteSource, free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

ALICE = {"Cookie": "theme=dark; labspace-session=alice-session; _xsrf=abc"}
BOB = {"Cookie": "labspace-session=bob-session"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def from_own_page(proxied: Stack, headers: dict[str, str]) -> dict[str, str]:
    """What a browser adds to a cookie-authenticated change from the site's own pages."""
    return {**headers, "Origin": proxied.url}
MiB = 1024 * 1024


# ------------------------------------------------------------------ access


async def test_owner_gets_the_app_and_the_app_gets_the_secret(proxied: Stack, client):
    async with client.get(f"{proxied.url}/user/alice/lab/api/json?x=1", headers=ALICE) as resp:
        assert resp.status == 200
        assert (await resp.json())["raw_path"] == "/user/alice/lab/api/json?x=1"
        assert resp.headers["Set-Cookie"] == "app=1; Path=/"
    seen = proxied.upstream.last
    assert seen["headers"]["Authorization"] == SECRET
    assert seen["cookies"] == {"theme": "dark", "_xsrf": "abc"}  # session cookie removed
    assert "labspace-session" not in seen["headers"]["Cookie"]
    assert seen["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert seen["headers"]["X-Forwarded-Proto"] == "http"
    assert seen["headers"]["Host"] == proxied.url.removeprefix("http://")


async def test_bearer_and_token_headers_are_accepted_and_never_forwarded(proxied: Stack, client):
    for auth in ("Bearer alice-token", "token alice-token"):
        async with client.get(f"{proxied.url}/user/alice/lab/json",
                              headers={"Authorization": auth}) as resp:
            assert resp.status == 200
        assert proxied.upstream.last["headers"]["Authorization"] == SECRET
        assert "alice-token" not in str(proxied.upstream.last["headers"])


async def test_admin_may_open_any_workspace(proxied: Stack, client):
    async with client.get(f"{proxied.url}/user/bob/lab/json",
                          headers={"Authorization": "Bearer root-token"}) as resp:
        assert resp.status == 200


async def test_other_user_gets_the_same_403_for_existing_and_unknown(proxied: Stack, client):
    answers = []
    for path in ("/user/alice/lab/json", "/user/alice/nosuch/json"):
        for accept in ({}, BROWSER):
            async with client.get(proxied.url + path, headers={**BOB, **accept}) as resp:
                answers.append((path, accept == BROWSER, resp.status, await resp.read(),
                                resp.headers["Content-Type"]))
    assert {a[2] for a in answers} == {403}
    assert answers[0][2:] == answers[2][2:]  # API: existing == unknown
    assert answers[1][2:] == answers[3][2:]  # browser: existing == unknown
    assert answers[1][4].startswith("text/html")


async def test_anonymous_browser_is_sent_to_login(proxied: Stack, client):
    async with client.get(f"{proxied.url}/user/alice/lab/tree?a=1", headers=BROWSER,
                          allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "/hub/login?next=/user/alice/lab/tree%3Fa%3D1"


async def test_anonymous_api_and_bad_token_get_401_json(proxied: Stack, client):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "labspace-session=x"}):
        async with client.get(f"{proxied.url}/user/alice/lab/json", headers=headers) as resp:
            assert resp.status == 401
            assert (await resp.json())["status"] == 401


async def test_upstream_refuses_requests_without_the_secret(proxied: Stack, client):
    async with client.get(f"{proxied.upstream_url}/user/alice/lab/json", headers=ALICE) as resp:
        assert resp.status == 403


async def test_strip_prefix_and_encoded_paths_pass_unchanged(proxied: Stack, client):
    url = URL(f"{proxied.url}/user/alice/bare/api/contents/a%2Fb%20c?q=%2F", encoded=True)
    async with client.get(url, headers=ALICE) as resp:
        assert resp.status == 200
    assert proxied.upstream.last["raw_path"] == "/api/contents/a%2Fb%20c?q=%2F"
    async with client.get(f"{proxied.url}/user/alice/lab/a%2Fb", headers=ALICE) as resp:
        assert resp.status == 200
    assert proxied.upstream.last["raw_path"] == "/user/alice/lab/a%2Fb"


async def test_routes_are_cached(proxied: Stack, client):
    before = proxied.source.route_calls
    for _ in range(5):
        async with client.get(f"{proxied.url}/user/bob/lab/json", headers=BOB) as resp:
            assert resp.status == 200
    assert proxied.source.route_calls - before <= 1


# ------------------------------------------------------------------ pages


async def test_stopped_workspace_gets_a_page_linking_to_the_hub(proxied: Stack, client):
    async with client.get(f"{proxied.url}/user/alice/off/", headers={**ALICE, **BROWSER}) as resp:
        assert resp.status == 503
        text = await resp.text()
        assert "stopped" in text
        assert 'href="/hub/workspaces/alice/off"' in text
        assert "http-equiv" not in text
    async with client.get(f"{proxied.url}/user/alice/boot/", headers={**ALICE, **BROWSER}) as resp:
        assert resp.status == 503
        assert 'http-equiv="refresh"' in await resp.text()
    async with client.get(f"{proxied.url}/user/alice/off/api", headers=ALICE) as resp:
        assert resp.status == 503
        assert (await resp.json())["state"] == "stopped"


async def test_unknown_workspace_of_the_owner_is_404(proxied: Stack, client):
    async with client.get(f"{proxied.url}/user/alice/nosuch/", headers=ALICE) as resp:
        assert resp.status == 404
    async with client.get(f"{proxied.url}/user/alice/nosuch/",
                          headers={**ALICE, **BROWSER}) as resp:
        assert resp.status == 404
        assert 'href="/hub/?name=nosuch"' in await resp.text()  # offers to create it


async def test_upstream_down_is_502_after_asking_the_source_again(proxied: Stack, client):
    before = proxied.source.route_calls
    async with client.get(f"{proxied.url}/user/alice/gone/", headers={**ALICE, **BROWSER}) as resp:
        assert resp.status == 502
        assert "not answering" in await resp.text()
    assert proxied.source.route_calls - before == 2


async def test_root_redirects_to_hub_and_health_answers(proxied: Stack, client):
    async with client.get(proxied.url + "/", allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "/hub/"
    async with client.get(proxied.url + "/_labspace/proxy/health") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ok"


async def test_hub_requests_pass_unchanged(proxied: Stack, client):
    headers = {"Cookie": "labspace-session=alice-session", "Authorization": "Bearer t"}
    url = URL(f"{proxied.url}/hub/api/x%2Fy?z=1", encoded=True)
    async with client.post(url, headers=headers, data=b"hi") as resp:
        assert resp.status == 200
        assert (await resp.json())["hub"] is True
    seen = proxied.hub.last
    assert seen["raw_path"] == "/hub/api/x%2Fy?z=1"
    assert seen["cookies"] == {"labspace-session": "alice-session"}
    assert seen["headers"]["Authorization"] == "Bearer t"


async def test_hub_down_gives_a_restarting_page(make_proxy: ProxyFactory, client):
    url = await make_proxy(StaticRouteSource(), free_port())
    async with client.get(url + "/hub/home", headers=BROWSER) as resp:
        assert resp.status == 503
        assert "labspace is restarting" in await resp.text()
    async with client.get(url + "/hub/api/users", headers=BROWSER) as resp:
        assert resp.status == 503
        assert "restarting" in (await resp.json())["message"]


# ------------------------------------------------------------------ streaming


async def test_responses_stream_incrementally(proxied: Stack, client):
    proxied.upstream.release_stream.clear()
    async with client.get(f"{proxied.url}/user/alice/lab/stream", headers=ALICE) as resp:
        assert resp.status == 200
        first = await asyncio.wait_for(resp.content.readany(), 5)
        assert first == b"first\n"  # arrived while the upstream still holds the rest
        proxied.upstream.release_stream.set()
        assert await asyncio.wait_for(resp.content.read(), 5) == b"second\n"


async def test_compressed_bodies_pass_through_untouched(proxied: Stack, client):
    async with client.get(f"{proxied.url}/user/alice/lab/gzip", headers=ALICE) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await resp.read()) == b"hello compressed world" * 100


async def test_large_download(proxied: Stack, client):
    async with client.get(f"{proxied.url}/user/alice/lab/download?mb=20", headers=ALICE) as resp:
        size = 0
        async for chunk in resp.content.iter_any():
            size += len(chunk)
    assert size == 20 * MiB


async def test_50mb_upload_streams_without_buffering(proxied: Stack, client):
    digest = hashlib.sha256()
    chunk = bytes(range(256)) * 256  # 64 KiB

    async def body() -> AsyncIterator[bytes]:
        for _ in range(50 * 16):
            digest.update(chunk)
            yield chunk

    process = psutil.Process()
    rss_before = process.memory_info().rss
    async with client.put(f"{proxied.url}/user/alice/lab/upload",
                          headers=from_own_page(proxied, ALICE),
                          data=body()) as resp:
        assert resp.status == 200
        answer = await resp.json()
    grown = process.memory_info().rss - rss_before
    assert answer == {"size": 50 * MiB, "sha256": digest.hexdigest()}
    assert grown < 25 * MiB, f"RSS grew by {grown / MiB:.1f} MiB during a 50 MiB upload"


async def test_client_disconnect_cancels_the_upstream_request(proxied: Stack):
    proxied.upstream.slow_started.clear()
    proxied.upstream.slow_cancelled.clear()
    async with aiohttp.ClientSession() as session:
        task = asyncio.ensure_future(session.get(f"{proxied.url}/user/alice/lab/slow",
                                                 headers=ALICE))
        await asyncio.wait_for(proxied.upstream.slow_started.wait(), 5)
        task.cancel()
    await asyncio.wait_for(proxied.upstream.slow_cancelled.wait(), 5)


async def test_keep_alive_connections_survive_an_upstream_hanging_up(proxied: Stack, client):
    for name in ("json", "closing", "json", "closing", "closing", "json"):
        async with client.get(f"{proxied.url}/user/alice/lab/{name}", headers=ALICE) as resp:
            assert resp.status == 200
            assert "Connection" not in resp.headers or name == "closing"
            await resp.read()
    await asyncio.sleep(0.1)  # the upstream's hang-up lands while the connection is idle
    async with client.get(f"{proxied.url}/user/alice/lab/json", headers=ALICE) as resp:
        assert resp.status == 200


async def test_many_concurrent_requests(proxied: Stack, client):
    async def one(i: int) -> str:
        async with client.get(f"{proxied.url}/user/alice/lab/json?i={i}", headers=ALICE) as resp:
            return str((await resp.json())["raw_path"])

    paths = await asyncio.gather(*(one(i) for i in range(200)))
    assert paths == [f"/user/alice/lab/json?i={i}" for i in range(200)]


async def test_head_no_content_and_hop_by_hop_headers(proxied: Stack, client):
    async with client.head(f"{proxied.url}/user/alice/lab/json", headers=ALICE) as resp:
        assert resp.status == 200
        assert int(resp.headers["Content-Length"]) > 0
        assert await resp.read() == b""
    async with client.delete(f"{proxied.url}/user/alice/lab/nocontent",
                             headers=from_own_page(proxied, ALICE)) as resp:
        assert resp.status == 204
        assert resp.headers["X-Empty"] == "1"
    async with client.get(f"{proxied.url}/user/alice/lab/json", headers=ALICE) as resp:
        assert resp.status == 200  # the connection after a 204 is still in step
    async with client.get(f"{proxied.url}/user/alice/lab/hop", headers=ALICE) as resp:
        assert await resp.text() == "hop"
        assert resp.headers["X-Kept"] == "2"
        assert "X-Hop" not in resp.headers and "Keep-Alive" not in resp.headers


async def test_request_hop_by_hop_and_forwarded_headers(proxied: Stack, client):
    headers = {**ALICE, "Connection": "keep-alive, X-Drop-Me", "X-Drop-Me": "1", "TE": "x",
               "X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https",
               "X-Other": "kept"}
    async with client.get(f"{proxied.url}/user/alice/lab/json", headers=headers) as resp:
        assert resp.status == 200
    seen = proxied.upstream.last["headers"]
    assert seen["X-Forwarded-For"] == "127.0.0.1"  # what the client claimed is replaced
    assert seen["X-Forwarded-Proto"] == "http"
    assert seen["X-Forwarded-Host"] == proxied.url.removeprefix("http://")
    assert seen["X-Other"] == "kept"
    assert "X-Drop-Me" not in seen and "TE" not in seen


# ------------------------------------------------------------------ WebSocket


async def test_websocket_round_trip_big_messages_and_close_codes(proxied: Stack, client):
    async with client.ws_connect(f"{proxied.url}/user/alice/lab/ws",
                                 headers=from_own_page(proxied, ALICE),
                                 protocols=("v1.test.labspace",), max_msg_size=0) as ws:
        assert ws.protocol == "v1.test.labspace"
        await ws.send_str("hello")
        assert (await ws.receive(timeout=5)).data == "hello"
        big = bytes(range(256)) * (10 * MiB // 256)
        await ws.send_bytes(big)
        msg = await ws.receive(timeout=20)
        assert msg.type is aiohttp.WSMsgType.BINARY and msg.data == big
        await ws.close(code=4001)
    seen = proxied.upstream.last["headers"]
    assert seen["Authorization"] == SECRET
    assert "labspace-session" not in seen.get("Cookie", "")
    for _ in range(50):
        if proxied.upstream.ws_close_codes:
            break
        await asyncio.sleep(0.05)
    assert proxied.upstream.ws_close_codes[-1] == 4001


async def test_websocket_close_from_the_app_reaches_the_client(proxied: Stack, client):
    async with client.ws_connect(f"{proxied.url}/user/alice/lab/ws",
                                 headers={"Authorization": "Bearer alice-token"}) as ws:
        await ws.send_str("close-me")
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert msg.data == 4002


async def test_websocket_needs_the_right_user(proxied: Stack, client):
    for headers, status in (({}, 401), (BOB, 403), ({**BOB, **BROWSER}, 403)):
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await client.ws_connect(f"{proxied.url}/user/alice/lab/ws", headers=headers)
        assert caught.value.status == status


# ------------------------------------------------------------------ cache


async def test_cache_expires_and_coalesces():
    now = [0.0]
    source = StaticRouteSource(routes={("a", "w"): Route("a", "w", "running", "http://x")},
                               principals={"t": Principal("a", False)})
    cached = CachedRouteSource(source, clock=lambda: now[0])
    results = await asyncio.gather(*(cached.route("a", "w") for _ in range(10)))
    assert all(r is not None for r in results) and source.route_calls == 1
    now[0] = 1.9
    await cached.route("a", "w")
    assert source.route_calls == 1
    now[0] = 2.1
    await cached.route("a", "w")
    assert source.route_calls == 2
    assert await cached.route("a", "nope") is None  # negative: 1 s
    now[0] = 2.9
    await cached.route("a", "nope")
    assert source.route_calls == 3
    now[0] = 3.2
    await cached.route("a", "nope")
    assert source.route_calls == 4
    cached.forget_route("a", "w")
    await cached.route("a", "w")
    assert source.route_calls == 5
    assert await cached.principal(digest("t")) == Principal("a", False)
    now[0] = 12.0
    await cached.principal(digest("t"))
    assert source.principal_calls == 1


async def test_a_starting_route_is_not_cached():
    """The moment a workspace is running, the proxy forwards to it (no stale 'starting')."""
    source = StaticRouteSource(routes={("a", "w"): Route("a", "w", "starting", None)})
    cached = CachedRouteSource(source, clock=lambda: 0.0)
    assert (await cached.route("a", "w")).state == "starting"  # type: ignore[union-attr]
    source.routes[("a", "w")] = Route("a", "w", "running", "http://x")
    assert (await cached.route("a", "w")).state == "running"  # type: ignore[union-attr]
    await cached.route("a", "w")
    assert source.route_calls == 2  # running: cached from then on


async def test_upstream_protocol_skips_interim_answers_and_knows_bodyless_ones():
    from labspace.proxy.upstream import UpstreamProtocol

    conn = UpstreamProtocol(asyncio.get_running_loop())
    conn.data_received(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                       b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nok")
    assert (conn.status, conn.headers) == (200, [(b"Content-Length", b"2"), (b"X-A", b"1")])
    assert conn.complete and conn.keep_alive and conn.take() == b"ok"
    conn._reset()
    conn.data_received(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 20\r\n\r\n")
    assert conn.status == 304 and conn.complete and conn.keep_alive
    conn._reset()
    conn.data_received(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert conn.complete and not conn.keep_alive
