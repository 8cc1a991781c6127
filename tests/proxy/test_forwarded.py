"""What the proxy tells upstreams about the client (X-Forwarded-*), and the proof of
forwarding that only the hub gets."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from labspace.config import load_settings
from labspace.hubedge import PROXY_HEADER, proxy_proof

from .conftest import ProxyFactory, Recorder, Stack, StaticRouteSource, hub_app, serve

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Everything a client might claim about itself, and a guess at the proxy's proof.
FORGED = {"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https",
          "X-Forwarded-Host": "evil.example", "Forwarded": "for=10.1.2.3",
          "X-Real-IP": "10.1.2.3", PROXY_HEADER: "forged"}
TOKEN = {"Authorization": "Bearer alice-token"}


def assert_what_the_proxy_saw(seen: dict[str, str], proxy_url: str) -> None:
    assert seen["X-Forwarded-For"] == "127.0.0.1"
    assert seen["X-Forwarded-Proto"] == "http"
    assert seen["X-Forwarded-Host"] == proxy_url.removeprefix("http://")
    assert "Forwarded" not in seen and "X-Real-IP" not in seen


async def test_the_hub_gets_what_the_proxy_saw_and_its_proof(proxied: Stack, client,
                                                             proxy_data_dir: Path):
    proof = proxy_proof(load_settings(data_dir=proxy_data_dir).signing_key)
    for method, data in (("GET", None), ("POST", b"{}")):  # the fast path, the streamed one
        async with client.request(method, f"{proxied.url}/hub/api/me", headers=FORGED,
                                  data=data) as resp:
            assert resp.status == 200
        seen = proxied.hub.last["headers"]
        assert_what_the_proxy_saw(seen, proxied.url)
        assert seen[PROXY_HEADER] == proof


async def test_workspaces_get_what_the_proxy_saw_and_never_the_proof(proxied: Stack, client):
    for method, data in (("GET", None), ("POST", b"{}")):
        async with client.request(method, f"{proxied.url}/user/alice/lab/json",
                                  headers={**FORGED, **TOKEN}, data=data) as resp:
            assert resp.status == 200
        seen = proxied.upstream.last["headers"]
        assert_what_the_proxy_saw(seen, proxied.url)
        assert PROXY_HEADER not in seen


async def test_only_trusted_proxies_in_front_are_believed(make_proxy: ProxyFactory, client):
    hub = Recorder()
    runner, port = await serve(hub_app(hub))
    claims = {"X-Forwarded-For": "10.9.9.9, 198.51.100.7", "X-Forwarded-Proto": "https"}
    try:
        trusting = await make_proxy(StaticRouteSource(), port, trusted_proxies=["127.0.0.0/8"])
        async with client.get(f"{trusting}/hub/api/", headers=claims) as resp:
            assert resp.status == 200
        # The last address is the one the trusted proxy added; the rest its client claimed.
        assert hub.last["headers"]["X-Forwarded-For"] == "198.51.100.7"
        assert hub.last["headers"]["X-Forwarded-Proto"] == "https"
        async with client.get(f"{trusting}/hub/api/",
                              headers={"X-Forwarded-For": "not-an-address"}) as resp:
            assert resp.status == 200
        assert hub.last["headers"]["X-Forwarded-For"] == "127.0.0.1"
        assert hub.last["headers"]["X-Forwarded-Proto"] == "http"

        behind_tls = await make_proxy(StaticRouteSource(), port, trusted_proxies=["192.0.2.1"],
                                      public_url="https://lab.example.org")
        async with client.get(f"{behind_tls}/hub/api/", headers=claims) as resp:
            assert resp.status == 200
        assert hub.last["headers"]["X-Forwarded-For"] == "127.0.0.1"  # not a trusted peer
        assert hub.last["headers"]["X-Forwarded-Proto"] == "https"  # the public URL's
    finally:
        await runner.cleanup()


async def test_trusted_proxies_must_be_addresses() -> None:
    with pytest.raises(pydantic.ValidationError, match="not an address or network"):
        load_settings(trusted_proxies=["nginx.local"])
