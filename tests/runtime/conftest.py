"""Fixtures for tests on the real Docker engine.

Every container a test creates carries a per-session label; the ``docker_runtime``
finalizer removes all of them (and the session's network), whether the tests passed or not.
Missing images make the tests FAIL with instructions, never skip silently.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiodocker.exceptions import DockerError

from labspace.runtime.base import ContainerSpec
from labspace.runtime.docker import DockerRuntime

BASE_IMAGE = os.environ.get("LABSPACE_TEST_BASE_IMAGE", "labspace/base:bookworm")
JUPYTER_IMAGE = os.environ.get("LABSPACE_TEST_JUPYTER_IMAGE", "labspace/jupyterlab:latest")

SESSION_ID = uuid.uuid4().hex[:8]
TEST_LABEL = "org.labspace.test-session"
SESSION_LABELS = {TEST_LABEL: SESSION_ID}
_counter = itertools.count()


@pytest.fixture(scope="session")
async def docker_runtime() -> AsyncIterator[DockerRuntime]:
    runtime = DockerRuntime()
    try:
        await runtime.docker.version()
    except DockerError as exc:
        await runtime.close()
        pytest.fail(f"no Docker engine reachable ({exc}); start dockerd", pytrace=False)
    try:
        yield runtime
    finally:
        for info in await runtime.list(SESSION_LABELS):
            await runtime.remove(info.id)
        await _remove_network(runtime, session_network_name())
        await runtime.close()


async def _remove_network(runtime: DockerRuntime, name: str) -> None:
    try:
        network = await runtime.docker.networks.get(name)
        await network.delete()
    except DockerError as exc:
        if exc.status != 404:
            raise


def session_network_name() -> str:
    return f"labspace-test-{SESSION_ID}"


@pytest.fixture(scope="session")
async def test_network(docker_runtime: DockerRuntime) -> str:
    """A bridge network made by ensure_network, removed by docker_runtime's finalizer."""
    name = session_network_name()
    await docker_runtime.ensure_network(name)
    return name


async def _require_image(runtime: DockerRuntime, image: str) -> str:
    try:
        await runtime.docker.images.inspect(image)
    except DockerError as exc:
        if exc.status == 404:
            pytest.fail(
                f"test image {image} is missing: build it first (python -m "
                "labspace.images.build); these tests need it and do not skip",
                pytrace=False,
            )
        raise
    return image


@pytest.fixture(scope="session")
async def base_image(docker_runtime: DockerRuntime) -> str:
    """labspace/base:bookworm (bash, coreutils; no python)."""
    return await _require_image(docker_runtime, BASE_IMAGE)


@pytest.fixture(scope="session")
async def jupyter_image(docker_runtime: DockerRuntime) -> str:
    """labspace/jupyterlab:latest (python3, sudo, the labspace entrypoint)."""
    return await _require_image(docker_runtime, JUPYTER_IMAGE)


@pytest.fixture
def make_spec() -> Callable[..., ContainerSpec]:
    """Build a ContainerSpec with a unique name and the session label."""

    def make(image: str, **fields: Any) -> ContainerSpec:
        labels = {**SESSION_LABELS, **fields.pop("labels", {})}
        name = fields.pop("name", None) or f"lstest-{SESSION_ID}-{next(_counter)}"
        return ContainerSpec(name=name, image=image, labels=labels, **fields)

    return make
