"""Pulls and pushes with their bytes: the engine's per-layer events summed into one line, and
a real round trip through the swarm test bed's registry (Debian's docker-registry): an image
with a layer of its own is pushed by labspace, removed here, and pulled back by a start."""

from __future__ import annotations

import base64
import json
import re
import uuid
from pathlib import Path

import pytest

from labspace.errors import InvalidInput, RuntimeFailure
from labspace.images.build import push_image, registry_ref
from labspace.runtime.docker import DockerRuntime
from labspace.runtime.registry import image_bytes
from labspace.runtime.swarm import SwarmRuntime
from labspace.runtime.transfer import LayerProgress, human_bytes, registry_auth, split_ref
from labspace.testing.swarm import (
    TASK_DOCKERFILE,
    TASK_IMAGE,
    SwarmCluster,
    docker,
    ensure_image,
)

BYTES = re.compile(r"^pulling \S+: [\d.]+ [kMG]?B of [\d.]+ [kMG]?B$")


def test_layer_events_sum_to_bytes_of_the_whole_image() -> None:
    seen = LayerProgress()
    seen.update({"status": "Pulling from lab/x", "id": "latest"})
    seen.update({"status": "Downloading", "id": "a", "progressDetail": {"current": 500_000,
                                                                         "total": 2_000_000}})
    seen.update({"status": "Downloading", "id": "b", "progressDetail": {"current": 0,
                                                                         "total": 1_000_000}})
    assert seen.line("pulling", "reg/x") == "pulling reg/x: 500.0 kB of 3.0 MB"
    assert seen.update({"status": "Download complete", "id": "a"})  # worth a report now
    seen.update({"status": "Extracting", "id": "a", "progressDetail": {"current": 1,
                                                                        "total": 9_000_000}})
    assert (seen.done, seen.total) == (2_000_000, 3_000_000)  # extraction is not download
    with pytest.raises(RuntimeFailure, match="denied: requested access"):
        seen.update({"error": "denied", "errorDetail": {"message": "denied: requested access"}})
    assert LayerProgress().line("pushing", "r/y") == "pushing r/y"


def test_references_split_and_move_to_a_registry() -> None:
    assert split_ref("reg.lab:5000/labspace/jl:v2") == ("reg.lab:5000/labspace/jl", "v2")
    assert split_ref("reg.lab:5000/labspace/jl") == ("reg.lab:5000/labspace/jl", "latest")
    assert registry_ref("labspace/jupyterlab:latest", "reg.lab:5000") == \
        "reg.lab:5000/labspace/jupyterlab:latest"
    assert registry_ref("old.lab:5000/labspace/jl:1", "https://new.lab/") == \
        "new.lab/labspace/jl:1"
    for bad in ("", "reg.lab/path", "two words"):
        with pytest.raises(InvalidInput):
            registry_ref("labspace/jl", bad)
    assert human_bytes(999) == "999 B" and human_bytes(1_234_567_890) == "1.2 GB"


def test_credentials_come_from_docker_login(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {"reg.lab:5000": {
        "auth": base64.b64encode(b"ada:s3cret:with-colon").decode()}}}))
    assert registry_auth("reg.lab:5000/labspace/jl", config) == {
        "username": "ada", "password": "s3cret:with-colon", "serveraddress": "reg.lab:5000"}
    assert registry_auth("other.lab/x", config) is None
    assert registry_auth("labspace/jl", config) is None  # Docker Hub: not from this file
    assert registry_auth("reg.lab:5000/x", tmp_path / "missing.json") is None


@pytest.fixture
def pushed(swarm_cluster: SwarmCluster) -> tuple[str, str]:
    """A local image with a 3 MB layer no other image has, pushed by labspace; the local
    copies are removed, so pulling it back moves real bytes. Returns (pushed ref, local)."""
    ensure_image(TASK_IMAGE, TASK_DOCKERFILE)
    run = uuid.uuid4().hex[:8]
    local = f"labspace/transfer-test:{run}"
    ensure_image(local, f"FROM {TASK_IMAGE}\n# {run}\n"
                        "RUN head -c 3000000 /dev/urandom > /blob\n")
    lines: list[str] = []
    ref = push_image(local, swarm_cluster.registry, progress=lines.append)
    assert ref == f"{swarm_cluster.registry}/{local}"
    assert lines[-1].startswith(f"pushed {ref} (") and "sent)" in lines[-1]
    docker("rmi", local, ref)
    return ref, local


async def test_a_start_pulls_a_missing_image_showing_bytes(
        pushed: tuple[str, str], docker_runtime: DockerRuntime) -> None:
    ref, _ = pushed
    said: list[str] = []

    async def progress(line: str) -> None:
        said.append(line)

    try:
        assert await docker_runtime.ensure_image(ref, progress) == ref
        assert said[-1].startswith(f"pulled {ref} (") and "MB" in said[-1]
        assert any(BYTES.match(line) for line in said), said
        said.clear()
        assert await docker_runtime.ensure_image(ref, progress) == ref
        assert said == []  # present: nothing pulled
        missing = ref.rsplit(":", 1)[0] + ":no-such-tag"
        with pytest.raises(RuntimeFailure, match=f"cannot pull {re.escape(missing)}.*"
                           r"labspace image build"):
            await docker_runtime.ensure_image(missing, progress)
    finally:
        docker("rmi", ref, check=False)


async def test_a_swarm_pins_the_registry_digest_or_says_what_nodes_cannot_pull(
        pushed: tuple[str, str]) -> None:
    ref, local = pushed
    runtime = SwarmRuntime()

    async def progress(line: str) -> None:
        pass

    try:
        pinned = await runtime.ensure_image(ref, progress)
        assert re.fullmatch(re.escape(ref) + r"@sha256:[0-9a-f]{64}", pinned)
        # What a node's pull amounts to, from the registry's manifest (TLS with the CA the
        # engine trusts): the base's layers and the 3 MB of this image's own.
        size = await image_bytes(pinned)
        assert size is not None and size > 3_000_000
        assert await runtime.ensure_image(pinned, progress) == pinned
        with pytest.raises(RuntimeFailure, match=r"nodes cannot pull .*--push REGISTRY"):
            await runtime.ensure_image(local, progress)  # only ever built here
    finally:
        await runtime.close()
