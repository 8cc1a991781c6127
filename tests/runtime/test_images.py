"""Images through the runtime's engine client: labels, builds from files, failed builds, and
the local base built from a debootstrap tarball (what `docker import` used to make)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from labspace.errors import RuntimeFailure
from labspace.images.build import LOCAL_BASE, build_rootfs_image, cache_dir
from labspace.runtime.docker import DockerRuntime
from labspace.runtime.images import DockerImages


@pytest.fixture
async def tags(docker_runtime: DockerRuntime) -> AsyncIterator[list[str]]:
    """Image tags a test builds; all removed afterwards."""
    made: list[str] = []
    yield made
    for tag in made:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)


def run_in(image: str, command: str) -> str:
    done = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "bash", "-c",
                           command], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


async def test_a_build_from_files_streams_its_output_and_carries_its_labels(
    docker_runtime: DockerRuntime, base_image: str, tags: list[str]
) -> None:
    images = DockerImages(docker_runtime)
    tag = f"labspace/test-build:{uuid.uuid4().hex[:8]}"
    tags.append(tag)
    dockerfile = b"ARG BASE\nFROM ${BASE}\nCOPY note.txt /note.txt\nRUN echo made-here\n"
    lines: list[str] = []
    await images.build({"Dockerfile": dockerfile, "note.txt": b"hello\n"}, tag=tag,
                       dockerfile="Dockerfile", buildargs={"BASE": base_image},
                       labels={"org.labspace.test": "yes"}, progress=lines.append)
    assert any("made-here" in line for line in lines), lines
    assert (await images.labels(tag) or {}).get("org.labspace.test") == "yes"
    assert run_in(tag, "cat /note.txt") == "hello\n"
    assert await images.labels("labspace/no-such-image:never") is None


async def test_a_failed_build_says_why_with_its_last_lines(
    docker_runtime: DockerRuntime, base_image: str, tags: list[str]
) -> None:
    tag = f"labspace/test-build:{uuid.uuid4().hex[:8]}"
    tags.append(tag)
    dockerfile = f"FROM {base_image}\nRUN echo about-to-fail && false\n".encode()
    with pytest.raises(RuntimeFailure) as failure:
        await DockerImages(docker_runtime).build({"Dockerfile": dockerfile}, tag=tag,
                                                 dockerfile="Dockerfile", progress=print)
    assert "about-to-fail" in str(failure.value.detail)
    assert f"building {tag} failed" in str(failure.value)


async def test_the_local_base_keeps_owners_and_modes_of_its_root_filesystem(
    docker_runtime: DockerRuntime, base_image: str, tags: list[str]
) -> None:
    """Built FROM scratch with ADD, the debootstrap'ed tree is the one the engine's import
    made: the same owners, modes and setuid bits."""
    tarball = cache_dir() / "bookworm-minbase.tar"
    if not tarball.is_file() or base_image != LOCAL_BASE:
        pytest.skip("needs the cached debootstrap tarball the local base was imported from")
    tag = f"labspace/test-base:{uuid.uuid4().hex[:8]}"
    tags.append(tag)
    await build_rootfs_image(DockerImages(docker_runtime), Path(tarball), tag, print)
    probe = ("stat -c '%n %u:%g %a' /usr/bin/su /usr/bin/passwd /etc/shadow /tmp /var/mail"
             " /root; echo $LANG")
    assert run_in(tag, probe) == run_in(base_image, probe)
    assert "4755" in run_in(tag, "stat -c %a /usr/bin/su")
