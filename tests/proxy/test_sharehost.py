"""Shared ports on their own hosts, attacked in-process: each level admits exactly the right
people, the shared app never sees a visitor's credentials or the proxy's secret, a cookie of
another host does not open it, host names that are not exactly a share's go nowhere, and a
lowered level closes what it no longer admits. A real app behind it: a small aiohttp server
on loopback standing in for a program in the workspace. Real containers:
tests/sharing/test_shared_ports.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from labspace.config import load_settings
from labspace.identity.credentials import digest
from labspace.identity.hostauth import SECURE_APP_COOKIE, HostSigner
from labspace.proxy.app import PROXY_KEY, Proxy, create_app, start_proxy
from labspace.proxy.source import Principal, Route
from tests.proxy.conftest import StaticRouteSource, free_port, serve

pytestmark = pytest.mark.asyncio(loop_scope="session")

DOMAIN = "apps.localhost"
HUB = "http://localhost:8000"


@dataclass
class Shared:
    url: str  # the proxy's address
    port: int  # the shared app's port (on the workspace's address, 127.0.0.1 here)
    source: StaticRouteSource
    proxy: Proxy
    seen: list[dict[str, Any]]
    signer: HostSigner

    @property
    def host(self) -> str:
        return f"{self.port}-lab--alice.{DOMAIN}"

    def cookie_for(self, host: str, session: str) -> dict[str, str]:
        value = self.signer.cookie(host, digest(session))
        return {"Cookie": f"{SECURE_APP_COOKIE}={value}"}

    def level(self, level: str) -> None:
        self.source.shares[("alice", "lab", self.port)] = level
        self.proxy.source.forget_share("alice", "lab", self.port)


def shared_app(seen: list[dict[str, Any]]) -> web.Application:
    """A program listening in the workspace: no labspace secret, records what it gets."""

    async def anything(request: web.Request) -> web.StreamResponse:
        seen.append({"path": request.raw_path, "headers": dict(request.headers)})
        if request.path == "/echo":
            sock = web.WebSocketResponse()
            await sock.prepare(request)
            async for message in sock:
                if message.type is aiohttp.WSMsgType.TEXT:
                    await sock.send_str(message.data)
            return sock
        return web.json_response({"shared": True, "path": request.raw_path})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    seen: list[dict[str, Any]] = []
    app_runner, port = await serve(shared_app(seen))
    source = StaticRouteSource(
        routes={("alice", "lab"): Route("alice", "lab", "running", "http://127.0.0.1:9",
                                        secret_value="token proxy-secret"),
                ("alice", "off"): Route("alice", "off", "stopped", None)},
        principals={"alice-token": Principal("alice", False),
                    "bob-token": Principal("bob", False),
                    "root-token": Principal("root", True),
                    "bob-session": Principal("bob", False)})
    data_dir: Path = tmp_path_factory.mktemp("sharehost")
    settings = load_settings(data_dir=data_dir, hub_host="127.0.0.1", hub_port=free_port(),
                             apps_domain=DOMAIN, public_url=HUB)
    app = create_app(settings, source)
    runner = await start_proxy(app, "127.0.0.1", 0)
    yield Shared(f"http://127.0.0.1:{runner.addresses[0][1]}", port, source, app[PROXY_KEY],
                 seen, HostSigner(settings.signing_key()))
    await runner.cleanup()
    await app_runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


async def _status(client: aiohttp.ClientSession, shared: Shared, headers: dict[str, str],
                  path: str = "/data?x=1") -> int:
    async with client.get(shared.url + path, headers={"Host": shared.host, **headers},
                          allow_redirects=False) as response:
        return response.status


TOKEN = {"alice": {"Authorization": "Bearer alice-token"},
         "bob": {"Authorization": "Bearer bob-token"},
         "root": {"Authorization": "Bearer root-token"},
         "anonymous": {}}


@pytest.mark.parametrize(("level", "expected"), [
    ("private", {"alice": 200, "bob": 403, "root": 403, "anonymous": 401}),
    ("authenticated", {"alice": 200, "bob": 200, "root": 200, "anonymous": 401}),
    ("public", {"alice": 200, "bob": 200, "root": 200, "anonymous": 200}),
])
async def test_each_level_admits_exactly_the_right_people(
        shared: Shared, client: aiohttp.ClientSession, level: str,
        expected: dict[str, int]) -> None:
    shared.level(level)
    got = {who: await _status(client, shared, headers) for who, headers in TOKEN.items()}
    assert got == expected
    # A browser's host cookie counts as its session does.
    bob_cookie = shared.cookie_for(shared.host, "bob-session")
    assert await _status(client, shared, bob_cookie) == expected["bob"]


async def test_a_browser_without_a_cookie_is_sent_to_the_hub_for_a_ticket(
        shared: Shared, client: aiohttp.ClientSession) -> None:
    shared.level("authenticated")
    async with client.get(f"{shared.url}/dash/?q=1", headers={
            "Host": shared.host, "Accept": "text/html"}, allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == (
            f"{HUB}/hub/shared/alice/lab/{shared.port}?next=%2Fdash%2F%3Fq%3D1")


async def test_the_shared_app_never_sees_credentials_or_the_proxys_secret(
        shared: Shared, client: aiohttp.ClientSession) -> None:
    shared.level("authenticated")
    cookie = shared.cookie_for(shared.host, "bob-session")["Cookie"]
    headers = {"Host": shared.host, "Authorization": "Bearer bob-token",
               "Cookie": f"{cookie}; labspace-session=bob-session; theme=dark"}
    async with client.get(f"{shared.url}/look", headers=headers) as response:
        assert response.status == 200
    got = shared.seen[-1]["headers"]
    assert "Authorization" not in got
    assert got.get("Cookie") == "theme=dark"
    assert "proxy-secret" not in str(got)


async def test_another_hosts_cookie_does_not_open_a_shared_port(
        shared: Shared, client: aiohttp.ClientSession) -> None:
    shared.level("authenticated")
    for host in (f"lab--alice.{DOMAIN}", f"{shared.port + 1}-lab--alice.{DOMAIN}", "localhost"):
        assert await _status(client, shared, shared.cookie_for(host, "bob-session")) == 401


@pytest.mark.parametrize("label", [
    "0{port}-lab--alice", "0-lab--alice", "65536-lab--alice", "{port}-lab--alice--x",
    "{port}--lab--alice", "{port}-lab---alice", "{port}-9lab--alice", "{port}-lab",
])
async def test_host_names_that_are_not_exactly_a_shares_go_nowhere(
        shared: Shared, client: aiohttp.ClientSession, label: str) -> None:
    shared.level("public")
    host = f"{label.format(port=shared.port)}.{DOMAIN}"
    seen = len(shared.seen)
    async with client.get(f"{shared.url}/data", headers={"Host": host}) as response:
        assert response.status == 404
    assert len(shared.seen) == seen


async def test_a_workspace_that_does_not_run_or_does_not_exist(
        shared: Shared, client: aiohttp.ClientSession) -> None:
    shared.source.shares[("alice", "off", shared.port)] = "public"
    async with client.get(f"{shared.url}/", headers={
            "Host": f"{shared.port}-off--alice.{DOMAIN}"}) as response:
        assert response.status == 503
    # Nobody learns whether a workspace they may not see exists: the same 403 as private.
    for name in ("nothere", "lab"):
        shared.level("private")
        async with client.get(f"{shared.url}/", headers={
                **TOKEN["bob"], "Host": f"{shared.port}-{name}--alice.{DOMAIN}"}) as response:
            assert response.status == 403


async def test_nothing_listening_on_the_port_is_a_clear_502(
        shared: Shared, client: aiohttp.ClientSession) -> None:
    port = free_port()
    shared.source.shares[("alice", "lab", port)] = "public"
    async with client.get(f"{shared.url}/", headers={
            "Host": f"{port}-lab--alice.{DOMAIN}", "Accept": "text/html"}) as response:
        assert response.status == 502
        assert f"Nothing answers on port {port}" in await response.text()


async def test_a_cookie_websocket_from_another_origin_is_refused(
        shared: Shared, client: aiohttp.ClientSession) -> None:
    shared.level("authenticated")
    cookie = shared.cookie_for(shared.host, "bob-session")
    for origin in ("http://evil.localhost:8000", f"http://lab--bob.{DOMAIN}:8000", "null"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(f"{shared.url}/echo", headers={
                "Host": shared.host, "Origin": origin, **cookie})
        assert refused.value.status == 403
    async with client.ws_connect(f"{shared.url}/echo", headers={
            "Host": shared.host, "Origin": f"http://{shared.host}", **cookie}) as ws:
        await ws.send_str("hi")
        assert (await ws.receive_str(timeout=5)) == "hi"


async def test_a_page_elsewhere_gets_a_public_port_as_anyone_not_as_its_visitor(
        shared: Shared, client: aiohttp.ClientSession) -> None:
    shared.level("public")
    cookie = shared.cookie_for(shared.host, "bob-session")
    ws = await client.ws_connect(f"{shared.url}/echo", headers={
        "Host": shared.host, "Origin": "http://evil.localhost:8000", **cookie})
    try:
        shared.level("authenticated")
        assert shared.proxy.share_changed("alice", "lab", shared.port, "authenticated") == 1
        closed = await ws.receive(timeout=5)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    finally:
        await ws.close()


async def _open(client: aiohttp.ClientSession, shared: Shared,
                headers: dict[str, str]) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect(f"{shared.url}/echo", headers={"Host": shared.host, **headers})
    await ws.send_str("ping")
    assert (await ws.receive_str(timeout=5)) == "ping"
    return ws


async def test_lowering_a_level_closes_the_connections_it_no_longer_admits(
        shared: Shared, client: aiohttp.ClientSession) -> None:
    shared.level("public")
    anonymous = await _open(client, shared, {})
    bob = await _open(client, shared, TOKEN["bob"])
    alice = await _open(client, shared, TOKEN["alice"])
    try:
        shared.source.shares[("alice", "lab", shared.port)] = "authenticated"
        assert shared.proxy.share_changed("alice", "lab", shared.port, "authenticated") == 1
        closed = await anonymous.receive(timeout=5)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await bob.send_str("still")
        assert (await bob.receive_str(timeout=5)) == "still"

        shared.source.shares.pop(("alice", "lab", shared.port))
        assert shared.proxy.share_changed("alice", "lab", shared.port, "private") == 1
        closed = await bob.receive(timeout=5)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await alice.send_str("mine")  # the owner's own connection stays
        assert (await alice.receive_str(timeout=5)) == "mine"
        assert await _status(client, shared, TOKEN["bob"]) == 403
    finally:
        for ws in (anonymous, bob, alice):
            await ws.close()


async def test_a_kept_alive_connection_is_checked_again_at_its_next_request(
        shared: Shared) -> None:
    shared.level("public")
    host, port = shared.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = (f"GET /data HTTP/1.1\r\nHost: {shared.host}\r\n\r\n").encode()
    try:
        writer.write(request)
        assert b" 200 " in await _response(reader)
        shared.level("private")
        writer.write(request)
        assert b" 401 " in await _response(reader)
    finally:
        writer.close()


async def _response(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    await asyncio.wait_for(reader.readexactly(length), 5)
    return head


async def test_a_ticket_for_a_shared_port_logs_anyone_in_and_stays_on_its_host(
        shared: Shared, client: aiohttp.ClientSession) -> None:
    for target, expected in (("/dash?x=1", "/dash?x=1"), ("//evil.example/", "/"),
                             ("/\\evil.example", "/"), ("https://evil.example/", "/")):
        ticket = shared.signer.ticket(shared.host, digest("bob-session"))
        async with client.get(f"{shared.url}/_labspace/auth", params={
                "ticket": ticket, "next": target}, headers={"Host": shared.host},
                allow_redirects=False) as response:
            assert response.status == 302, target
            assert response.headers["Location"] == expected
            assert SECURE_APP_COOKIE in response.headers["Set-Cookie"]
    # A ticket for another host is worth nothing here.
    ticket = shared.signer.ticket(f"lab--alice.{DOMAIN}", digest("bob-session"))
    async with client.get(f"{shared.url}/_labspace/auth", params={"ticket": ticket},
                          headers={"Host": shared.host}, allow_redirects=False) as response:
        assert response.status == 403
