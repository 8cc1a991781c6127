"""How many bytes a node must fetch to run an image: the sizes in its registry manifest.

A swarm node pulls an image when a task lands there, and Swarm reports no progress of that
pull, only the task's "preparing" state; the most labspace can show meanwhile is what the
pull amounts to ("the node pulls 312.4 MB of image if it lacks it"). The size comes from the
registry's manifest (Docker Registry HTTP API v2 / OCI distribution), by digest: layers plus
config. Best effort: any failure (no answer, auth it cannot do) is None, never an error, since
the start goes on without it. TLS is verified, with the CA Docker itself trusts for that
registry (/etc/docker/certs.d/<host:port>/ca.crt) where there is one.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import httpx

from labspace.runtime.transfer import registry_auth, registry_host, split_ref

CERTS_DIR = Path("/etc/docker/certs.d")
TIMEOUT_S = 3.0
MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def parse_pinned(ref: str) -> tuple[str, str, str] | None:
    """"reg.lab:5000/labspace/jl:1@sha256:ab" -> ("reg.lab:5000", "labspace/jl",
    "sha256:ab"); None for a reference without a registry host or a digest."""
    name, at, digest = ref.partition("@")
    host = registry_host(name)
    if not at or host is None:
        return None
    repo, _ = split_ref(name)
    return host, repo[len(host) + 1:], digest


def manifest_bytes(manifest: dict[str, Any]) -> int:
    layers = manifest.get("layers") or []
    return int((manifest.get("config") or {}).get("size", 0)) + sum(
        int(layer.get("size", 0)) for layer in layers)


def platform_digest(index: dict[str, Any], arch: str | None = None) -> str | None:
    """The linux/<arch> entry of a manifest list (this host's architecture)."""
    arch = arch or _ARCH.get(platform.machine(), platform.machine())
    for entry in index.get("manifests") or []:
        wanted = entry.get("platform") or {}
        if wanted.get("os") == "linux" and wanted.get("architecture") == arch:
            return str(entry.get("digest"))
    return None


async def image_bytes(ref: str, certs_dir: Path = CERTS_DIR,
                      transport: httpx.AsyncBaseTransport | None = None) -> int | None:
    """What pulling the pinned ``ref`` fetches, in bytes (compressed), or None.
    ``transport``: for tests that play a registry this machine cannot reach."""
    parsed = parse_pinned(ref)
    if parsed is None:
        return None
    host, path, digest = parsed
    ca = certs_dir / host / "ca.crt"
    try:
        async with httpx.AsyncClient(verify=str(ca) if ca.exists() else True,
                                     timeout=TIMEOUT_S, transport=transport) as client:
            token: dict[str, str] = {}  # one pull token serves both requests
            manifest = await _manifest(client, host, path, digest, ref, token)
            if manifest.get("manifests"):  # a list: the entry for this architecture
                entry = platform_digest(manifest)
                if entry is None:
                    return None
                manifest = await _manifest(client, host, path, entry, ref, token)
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    return manifest_bytes(manifest) or None


async def _manifest(client: httpx.AsyncClient, host: str, path: str, digest: str,
                    ref: str, token: dict[str, str]) -> dict[str, Any]:
    url = f"https://{host}/v2/{path}/manifests/{digest}"

    def headers() -> dict[str, str]:
        bearer = {"Authorization": f"Bearer {token['value']}"} if token else {}
        return {"Accept": MANIFEST_TYPES, **bearer}

    answer = await client.get(url, headers=headers())
    if answer.status_code == 401 and not token:  # a token registry: get a pull token
        challenge = answer.headers.get("www-authenticate", "")
        token["value"] = await _token(client, challenge, path, ref)
        answer = await client.get(url, headers=headers())
    answer.raise_for_status()
    return dict(answer.json())


async def _token(client: httpx.AsyncClient, challenge: str, path: str, ref: str) -> str:
    scheme, _, params = challenge.partition(" ")
    if scheme.lower() != "bearer":
        raise ValueError(f"unsupported registry auth {scheme!r}")
    fields = dict(part.split("=", 1) for part in params.split(",") if "=" in part)
    fields = {key.strip(): value.strip().strip('"') for key, value in fields.items()}
    query = {"scope": f"repository:{path}:pull"}
    if "service" in fields:
        query["service"] = fields["service"]
    creds = registry_auth(ref)
    auth = (creds["username"], creds["password"]) if creds else None
    answer = await client.get(fields["realm"], params=query, auth=auth)
    answer.raise_for_status()
    body = answer.json()
    return str(body.get("token") or body["access_token"])
