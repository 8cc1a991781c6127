"""The size of what a node pulls, from the registry's manifest: references, manifests and
lists, and a token registry's challenge. The registry answers here come from httpx's
MockTransport, playing a Docker Hub-like token registry this machine cannot reach; the real
registry of the swarm test bed is asked in tests/runtime/test_transfer.py."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from labspace.runtime.registry import (
    image_bytes,
    manifest_bytes,
    parse_pinned,
    platform_digest,
)

DIGEST = "sha256:" + "a" * 64
AMD64 = "sha256:" + "b" * 64
MANIFEST = {"config": {"size": 1000}, "layers": [{"size": 300_000}, {"size": 12_000}]}
INDEX = {"manifests": [
    {"digest": "sha256:" + "c" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
    {"digest": AMD64, "platform": {"os": "linux", "architecture": "amd64"}}]}


def test_only_a_pinned_reference_with_a_registry_is_looked_up() -> None:
    assert parse_pinned(f"reg.lab:5000/labspace/jl:1@{DIGEST}") == (
        "reg.lab:5000", "labspace/jl", DIGEST)
    assert parse_pinned(f"reg.lab/a/b/c@{DIGEST}") == ("reg.lab", "a/b/c", DIGEST)
    assert parse_pinned("reg.lab:5000/labspace/jl:1") is None  # no digest
    assert parse_pinned(f"labspace/jl@{DIGEST}") is None  # Docker Hub, no host
    assert manifest_bytes(MANIFEST) == 313_000
    assert platform_digest(INDEX, "amd64") == AMD64
    assert platform_digest(INDEX, "s390x") is None


async def test_a_token_registry_is_asked_for_a_pull_token_then_a_list_then_a_manifest(
        tmp_path: Path) -> None:
    seen: list[str] = []

    def registry(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.host == "auth.lab":
            assert request.url.params["scope"] == "repository:team/jl:pull"
            assert request.url.params["service"] == "reg.lab"
            return httpx.Response(200, json={"token": "t0k"})
        if request.headers.get("authorization") != "Bearer t0k":
            return httpx.Response(401, headers={"www-authenticate": (
                'Bearer realm="https://auth.lab/token",service="reg.lab",'
                'scope="repository:team/jl:pull"')})
        assert "manifest.list.v2+json" in request.headers["accept"]
        body = INDEX if request.url.path.endswith(DIGEST) else MANIFEST
        return httpx.Response(200, content=json.dumps(body))

    size = await image_bytes(f"reg.lab/team/jl:2@{DIGEST}", certs_dir=tmp_path,
                             transport=httpx.MockTransport(registry))
    assert size == 313_000
    assert seen == [f"/v2/team/jl/manifests/{DIGEST}", "/token",
                    f"/v2/team/jl/manifests/{DIGEST}", f"/v2/team/jl/manifests/{AMD64}"]


async def test_a_registry_that_cannot_tell_gives_no_size_and_no_error(tmp_path: Path) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="down")

    assert await image_bytes(f"reg.lab/x@{DIGEST}", certs_dir=tmp_path,
                             transport=httpx.MockTransport(broken)) is None

    def basic_only(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={"www-authenticate": 'Basic realm="x"'})

    assert await image_bytes(f"reg.lab/x@{DIGEST}", certs_dir=tmp_path,
                             transport=httpx.MockTransport(basic_only)) is None
