"""Device nodes on the real engine: a container is given exactly the nodes of its spec (a
GPU's /dev/nvidiaN in production; here a character device made for the test with the numbers
of /dev/null, so nothing real is handed in), and one given none has none of them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from labspace.errors import InvalidInput
from labspace.runtime.base import ContainerSpec
from labspace.runtime.docker import DockerRuntime
from labspace.runtime.swarmspec import service_spec

pytestmark = pytest.mark.docker

SpecFactory = Callable[..., ContainerSpec]
SLEEP = ["sleep", "300"]


@pytest.fixture
def device_nodes() -> Iterator[list[str]]:
    """Two character devices under /dev (1, 3: what /dev/null is), removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    paths = [f"/dev/labspace-test-{uuid.uuid4().hex[:8]}-{n}" for n in range(2)]
    for path in paths:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.chmod(path, 0o666)  # as the NVIDIA driver makes its nodes (mknod obeys umask)
    yield paths
    for path in paths:
        Path(path).unlink(missing_ok=True)


def host_devices(container_id: str) -> list[dict[str, str]]:
    done = subprocess.run(["docker", "inspect", "-f", "{{json .HostConfig.Devices}}",
                           container_id], capture_output=True, text=True, check=True)
    return json.loads(done.stdout) or []


async def test_a_container_gets_exactly_its_devices(
    docker_runtime: DockerRuntime, base_image: str, make_spec: SpecFactory,
    device_nodes: list[str],
) -> None:
    given, other = device_nodes
    spec = make_spec(base_image, command=SLEEP, devices=[given])
    info = await docker_runtime.create(spec)
    assert (await docker_runtime.start(info.id)).running
    assert host_devices(info.id) == [{"PathOnHost": given, "PathInContainer": given,
                                      "CgroupPermissions": "rwm"}]
    # usable inside by an unprivileged process, with every capability dropped but the base
    script = f"test -c {given} && echo hello > {given} && ! test -e {other} && echo ok"
    result = await docker_runtime.exec(info.id, ["bash", "-c", script], user="65534")
    assert (result.exit_code, result.output.strip()) == (0, "ok"), result.output

    bare = make_spec(base_image, command=SLEEP)
    info = await docker_runtime.create(bare)
    assert (await docker_runtime.start(info.id)).running
    assert host_devices(info.id) == []
    result = await docker_runtime.exec(info.id, ["bash", "-c", f"test -e {given}"])
    assert result.exit_code == 1


async def test_generic_resources_are_refused_by_a_single_engine(
    docker_runtime: DockerRuntime, base_image: str, make_spec: SpecFactory,
) -> None:
    spec = make_spec(base_image, command=SLEEP, generic_resources={"GPU": 1})
    with pytest.raises(InvalidInput, match="that is for Swarm"):
        await docker_runtime.create(spec)
    assert await docker_runtime.inspect(spec.name) is None


def test_a_service_reserves_gpus_as_generic_resources_and_takes_no_devices() -> None:
    spec = ContainerSpec(name="ws", image="img", generic_resources={"GPU": 2})
    body = service_spec(spec, caps=[], log_options={})
    assert body["TaskTemplate"]["Resources"]["Reservations"]["GenericResources"] == [
        {"DiscreteResourceSpec": {"Kind": "GPU", "Value": 2}}]
    with pytest.raises(InvalidInput, match="cannot be handed device nodes"):
        service_spec(replace(spec, devices=["/dev/nvidia0"]), caps=[], log_options={})
