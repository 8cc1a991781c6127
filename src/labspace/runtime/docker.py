"""The Docker runtime: drives the engine's HTTP API with aiodocker.

Why aiodocker and not docker-py in a thread: every call here is a coroutine on the event
loop, so creating, starting or inspecting *different* containers proceeds concurrently (the
engine handles the requests in parallel). DockerSpawner wraps the blocking docker-py client
in a one-thread executor, which serialises every engine call of the whole hub behind one
another; a class of 30 people pressing "start" at 9:00 then queues for minutes. Here the
only bound on concurrency is the one the caller chooses (settings.max_parallel_starts).

Security defaults of every container (see ``_host_config``):

* every capability dropped, then only those a workspace's entrypoint needs added back;
  sudo-enabled workspaces get the few more that sudo and apt/dpkg need;
* ``no-new-privileges`` unless sudo is enabled (setuid binaries would not work otherwise);
* memory swap equal to the memory limit (no swap beyond it), CPU and PID limits;
* no host ports published: the proxy reaches containers on the bridge network by IP;
* the Docker socket (or any directory containing it) may never be mounted.

aiodocker's DockerError is translated to labspace.errors here and nowhere else.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import math
import os
import posixpath
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

from labspace.errors import Conflict, InvalidInput, NotFound, RuntimeFailure
from labspace.runtime import transfer
from labspace.runtime.base import (
    LABEL_PREFIX,
    ContainerInfo,
    ContainerSpec,
    ContainerStats,
    ExecResult,
    Mount,
    NodeInfo,
)
from labspace.runtime.hostfirewall import isolate_host
from labspace.runtime.usage import CgroupUsage, Usage, stats_once

# Output a workspace keeps in the engine's logs, at most (per container).
CONTAINER_LOG_ROTATION = {"max-size": "10m", "max-file": "3"}
# Capabilities every workspace keeps: the entrypoint (root) sets up the user, chowns its
# home and drops to it; the app may bind a port below 1024.
BASE_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL", "NET_BIND_SERVICE"]
# Added when the user may sudo (each checked in labspace/jupyterlab with sudo and dpkg):
# AUDIT_WRITE: sudo logs every use to the audit subsystem and prints "unable to send audit
#   message" on each call without it;
# FSETID: dpkg installs setgid binaries owned by other groups (crontab, wall, chage); without
#   it the kernel silently strips the setgid bit and those tools break.
# Not SETFCAP: postinst scripts that `setcap` a capability outside this bounding set (ping:
#   cap_net_raw) would leave a binary that cannot be executed at all (EPERM); without
#   SETFCAP they fall back to setuid root, which works (and ping uses ICMP datagram sockets).
SUDO_CAPS = ["AUDIT_WRITE", "FSETID"]

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
NETWORK_LABEL = LABEL_PREFIX + "network"

_EXITED = re.compile(r"Exited \((-?\d+)\)")


def _fail(exc: DockerError, what: str) -> RuntimeFailure:
    return RuntimeFailure(f"{what}: {exc.message}", detail=repr(exc))


async def engine_json(docker: aiodocker.Docker, path: str, failure: str,
                      method: str = "GET", **kwargs: Any) -> Any:
    """One engine API call's JSON; a DockerError becomes RuntimeFailure("<failure>: ...")."""
    try:
        return await docker._query_json(path, method=method, **kwargs)
    except DockerError as exc:
        raise _fail(exc, failure) from exc


def _not_found(exc: DockerError, what: str) -> NotFound:
    return NotFound(f"{what}: {exc.message}", detail=repr(exc))


def _is_within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def check_mount(mount: Mount, sockets: tuple[str, ...] = DOCKER_SOCKETS) -> None:
    """Refuse mounts that would hand the Docker socket (root on the host) to a workspace."""
    if not posixpath.isabs(mount.source) or not posixpath.isabs(mount.target):
        raise InvalidInput(f"mount paths must be absolute: {mount.source} -> {mount.target}")
    candidates = {posixpath.normpath(mount.source), os.path.realpath(mount.source)}
    forbidden = set(sockets) | {os.path.realpath(s) for s in sockets}
    for source in candidates:
        for sock in forbidden:
            if _is_within(sock, source):
                raise InvalidInput(f"mounting {mount.source} would expose the Docker socket {sock}")


async def ensure_bridge(client: aiodocker.Docker, name: str,
                        labels: dict[str, str]) -> dict[str, Any]:
    """The bridge network ``name`` (inspected), created with inter-container traffic off
    unless it exists; a concurrent creation is no error."""
    try:
        return dict(await (await client.networks.get(name)).show())
    except DockerError as exc:
        if exc.status != 404:
            raise _fail(exc, f"cannot inspect network {name}") from exc
    try:
        await client.networks.create({
            "Name": name, "Driver": "bridge", "CheckDuplicate": True,
            "Options": {"com.docker.network.bridge.enable_icc": "false"}, "Labels": labels})
    except DockerError as exc:
        if exc.status != 409:  # 409: created concurrently, fine
            raise _fail(exc, f"cannot create network {name}") from exc
    try:
        return dict(await (await client.networks.get(name)).show())
    except DockerError as exc:
        raise _fail(exc, f"cannot inspect network {name}") from exc


def bridge_device(network: dict[str, Any]) -> str:
    """The host's interface of a bridge network (br-<id> unless named by an option)."""
    options = network.get("Options") or {}
    return str(options.get("com.docker.network.bridge.name") or "br-" + network["Id"][:12])


def _status_exit_code(summary_status: str) -> int | None:
    match = _EXITED.match(summary_status or "")
    return int(match.group(1)) if match else None


def _ip(networks: dict[str, Any] | None, preferred: str | None) -> str | None:
    if not networks:
        return None
    net = networks.get(preferred) if preferred else None
    if net is None:
        net = next(iter(networks.values()))
    return (net or {}).get("IPAddress") or None


def _endpoints(ip: str | None, ports: Iterable[int]) -> dict[int, str]:
    """On one Docker host the proxy reaches a container's port on its bridge address."""
    return {port: f"http://{ip}:{port}" for port in ports} if ip else {}


def _exposed(config: dict[str, Any]) -> list[int]:
    ports = []
    for key in (config.get("ExposedPorts") or {}):
        number, _, protocol = key.partition("/")
        if number.isdigit() and protocol in ("", "tcp"):
            ports.append(int(number))
    return ports


def _state(network_mode: str | None) -> dict[str, str]:
    """The runtime state kept on the instance: the network the container joined."""
    return {"engine": "docker", "network": network_mode} if network_mode else {"engine": "docker"}


def _info_from_inspect(data: dict[str, Any]) -> ContainerInfo:
    state = data.get("State") or {}
    status = state.get("Status", "unknown")
    mode = (data.get("HostConfig") or {}).get("NetworkMode")
    ip = _ip((data.get("NetworkSettings") or {}).get("Networks"), mode)
    running_ip = ip if status == "running" else None
    return ContainerInfo(
        id=data["Id"],
        name=data.get("Name", "").lstrip("/"),
        status=status,
        labels=(data.get("Config") or {}).get("Labels") or {},
        ip_address=running_ip,
        exit_code=state.get("ExitCode") if status in ("exited", "dead") else None,
        started_at=state.get("StartedAt") if status != "created" else None,
        error=state.get("Error") or None,
        endpoints=_endpoints(running_ip, _exposed(data.get("Config") or {})),
        image_id=data.get("Image") or "",
        state=_state(mode),
    )


def _info_from_summary(data: dict[str, Any]) -> ContainerInfo:
    """From GET /containers/json (no StartedAt there: started_at stays None)."""
    status = data.get("State", "unknown")
    mode = (data.get("HostConfig") or {}).get("NetworkMode")
    ip = _ip((data.get("NetworkSettings") or {}).get("Networks"), mode)
    names = data.get("Names") or [""]
    running_ip = ip if status == "running" else None
    ports = {p["PrivatePort"] for p in data.get("Ports") or []
             if p.get("Type", "tcp") == "tcp" and isinstance(p.get("PrivatePort"), int)}
    return ContainerInfo(
        id=data["Id"],
        name=names[0].lstrip("/"),
        status=status,
        labels=data.get("Labels") or {},
        ip_address=running_ip,
        exit_code=_status_exit_code(data.get("Status", "")) if status == "exited" else None,
        endpoints=_endpoints(running_ip, sorted(ports)),
        image_id=data.get("ImageID") or "",
        state=_state(mode),
    )


def cpu_percent(stats: dict[str, Any]) -> float:
    """CPU use over the sampling interval, in percent of one CPU (like ``docker stats``)."""
    cpu = stats.get("cpu_stats") or {}
    pre = stats.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    if cpu_delta <= 0 or system_delta <= 0:
        return 0.0
    # cgroup v2 reports no percpu_usage; online_cpus is there on both.
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [])
    return cpu_delta / system_delta * (online or 1) * 100.0


def memory_usage(stats: dict[str, Any]) -> int:
    """Memory in use minus reclaimable page cache, as ``docker stats`` computes it."""
    mem = stats.get("memory_stats") or {}
    usage = int(mem.get("usage", 0))
    detail = mem.get("stats") or {}
    # cgroup v1: total_inactive_file; v2: inactive_file; very old engines: cache.
    for key in ("total_inactive_file", "inactive_file", "cache"):
        if key in detail:
            return max(0, usage - int(detail[key]))
    return usage


class DockerRuntime:
    """Runtime backed by a Docker engine; one aiodocker client, created on first use."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self._client: aiodocker.Docker | None = None
        sockets = list(DOCKER_SOCKETS)
        if url and url.startswith("unix://"):
            sockets.append(url[len("unix://") :])
        self._sockets = tuple(sockets)
        # Docker does not keep network names unique: two creations at once make two networks
        # of one name, and every later start fails as "ambiguous". The workspace manager and
        # the app pools both ensure the network, so this runtime does it one at a time.
        self._networks = asyncio.Lock()
        self._usage: CgroupUsage | None = None

    @property
    def docker(self) -> aiodocker.Docker:
        if self._client is None:
            self._client = aiodocker.Docker(url=self.url)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    # --- containers -------------------------------------------------------------------

    def _host_config(self, spec: ContainerSpec) -> dict[str, Any]:
        limits = spec.limits
        host: dict[str, Any] = {
            "Mounts": [
                {"Type": "bind", "Source": m.source, "Target": m.target, "ReadOnly": m.read_only}
                for m in spec.mounts
            ],
            "RestartPolicy": {"Name": "no"},
            "Init": False,
            "CapDrop": ["ALL"],
            "CapAdd": BASE_CAPS + (SUDO_CAPS if spec.sudo else []),
            "SecurityOpt": [] if spec.sudo else ["no-new-privileges:true"],
            "PublishAllPorts": False,
            # A chatty workspace must not fill the host's disk with its output.
            "LogConfig": {"Type": "json-file", "Config": CONTAINER_LOG_ROTATION},
        }
        if spec.network:
            host["NetworkMode"] = spec.network
        if limits.cpus is not None:
            host["NanoCpus"] = int(limits.cpus * 1e9)
        if limits.memory_bytes is not None:
            host["Memory"] = limits.memory_bytes
            host["MemorySwap"] = limits.memory_bytes
        if limits.pids is not None:
            host["PidsLimit"] = limits.pids
        if spec.generic_resources:  # a single engine schedules nothing: it cannot honour it
            raise InvalidInput("this engine has no generic resources to reserve "
                               f"({', '.join(spec.generic_resources)}): that is for Swarm")
        if spec.devices:  # exactly these nodes, at the same path (a GPU's, see labspace.gpus)
            host["Devices"] = [{"PathOnHost": path, "PathInContainer": path,
                                "CgroupPermissions": "rwm"} for path in spec.devices]
        return host

    def container_config(self, spec: ContainerSpec) -> dict[str, Any]:
        """The body of POST /containers/create for ``spec`` (validates the mounts)."""
        for mount in spec.mounts:
            check_mount(mount, self._sockets)
        config: dict[str, Any] = {
            "Image": spec.image,
            "Env": [f"{key}={value}" for key, value in spec.env.items()],
            "Labels": dict(spec.labels),
            "HostConfig": self._host_config(spec),
            "ExposedPorts": {f"{port}/tcp": {} for port in spec.ports},
        }
        if spec.command is not None:
            config["Cmd"] = list(spec.command)
        if spec.hostname:
            config["Hostname"] = spec.hostname
        return config

    async def ensure_image(self, image: str,
                           progress: Callable[[str], Awaitable[None]]) -> str:
        try:
            await self.docker.images.inspect(image)
            return image
        except DockerError as exc:
            if exc.status != 404:
                raise _fail(exc, f"cannot inspect image {image}") from exc
        try:
            await transfer.pull(self.docker, image, progress)
        except RuntimeFailure as exc:
            raise RuntimeFailure(f"{exc.message}. Build it here (labspace image build) or "
                                 "name an image in a registry this server reaches",
                                 detail=exc.detail) from exc
        return image

    async def create(self, spec: ContainerSpec) -> ContainerInfo:
        config = self.container_config(spec)
        try:
            container = await self.docker.containers.create(config, name=spec.name)
        except DockerError as exc:
            if exc.status == 409:
                raise Conflict(
                    f"a container named {spec.name} exists already", detail=repr(exc)
                ) from exc
            if exc.status == 404:
                # The missing thing is the image (or network): an installation problem.
                raise _fail(exc, f"cannot create {spec.name}") from exc
            raise _fail(exc, f"cannot create {spec.name}") from exc
        info = await self.inspect(container.id)
        if info is None:  # removed between create and inspect
            raise NotFound(f"container {spec.name} vanished right after creation")
        return info

    async def start(self, container_id: str) -> ContainerInfo:
        try:
            await self.docker.containers.container(container_id).start()
        except DockerError as exc:
            if exc.status == 404:
                raise _not_found(exc, f"cannot start {container_id}") from exc
            if exc.status != 304:  # 304: already running
                raise _fail(exc, f"cannot start {container_id}") from exc
        info = await self.inspect(container_id)
        if info is None:
            raise NotFound(f"container {container_id} vanished right after start")
        return info

    async def stop(self, container_id: str, timeout: float = 10.0) -> None:
        try:
            await self.docker.containers.container(container_id).stop(t=max(0, math.ceil(timeout)))
        except DockerError as exc:
            if exc.status not in (304, 404):
                raise _fail(exc, f"cannot stop {container_id}") from exc

    async def remove(self, container_id: str) -> None:
        try:
            await self.docker.containers.container(container_id).delete(force=True, v=True)
        except DockerError as exc:
            if exc.status == 404:
                return
            if exc.status == 409 and "in progress" in exc.message:
                return
            raise _fail(exc, f"cannot remove {container_id}") from exc

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        try:
            data = await self.docker.containers.container(container_id).show()
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise _fail(exc, f"cannot inspect {container_id}") from exc
        return _info_from_inspect(data)

    async def list(self, labels: dict[str, str]) -> list[ContainerInfo]:
        filters = json.dumps({"label": [f"{key}={value}" for key, value in labels.items()]})
        try:
            data = await self.docker._query_json(
                "containers/json", method="GET", params={"all": "1", "filters": filters}
            )
        except DockerError as exc:
            raise _fail(exc, "cannot list containers") from exc
        return [_info_from_summary(item) for item in data]

    async def logs(self, container_id: str, tail: int = 50) -> str:
        try:
            lines = await self.docker.containers.container(container_id).log(
                stdout=True, stderr=True, tail=str(max(0, tail))
            )
        except DockerError as exc:
            if exc.status == 404:
                raise _not_found(exc, f"no logs for {container_id}") from exc
            raise _fail(exc, f"cannot read logs of {container_id}") from exc
        return "".join(lines)

    async def stats(self, container_id: str) -> ContainerStats:
        container = self.docker.containers.container(container_id)
        try:
            samples, data = await asyncio.gather(container.stats(stream=False), container.show())
        except DockerError as exc:
            if exc.status == 404:
                raise _not_found(exc, f"no stats for {container_id}") from exc
            raise _fail(exc, f"cannot read stats of {container_id}") from exc
        sample = samples[0] if samples else {}
        configured = (data.get("HostConfig") or {}).get("Memory") or 0
        limit = (sample.get("memory_stats") or {}).get("limit")
        return ContainerStats(
            cpu_percent=cpu_percent(sample),
            memory_bytes=memory_usage(sample),
            # Without a configured limit the engine reports the host's memory.
            memory_limit_bytes=int(limit or configured) if configured else None,
        )

    async def usage(self, container_ids: Sequence[str]) -> dict[str, Usage]:
        """Counters for the load page (runtime/usage.py): the cgroup files where this
        engine runs on this host, its one-shot stats where not."""
        if self._usage is None:
            self._usage = CgroupUsage(lambda cid: stats_once(self.docker, cid))
        return await self._usage.usage(container_ids)

    async def exec(
        self, container_id: str, command: builtins.list[str], user: str | None = None
    ) -> ExecResult:
        container = self.docker.containers.container(container_id)
        try:
            execution = await container.exec(command, stdout=True, stderr=True, user=user or "")
            chunks: list[bytes] = []
            async with execution.start(detach=False) as stream:
                while (message := await stream.read_out()) is not None:
                    chunks.append(message.data)
            exit_code = (await execution.inspect()).get("ExitCode")
            for _ in range(50):  # the engine records the exit code a moment after EOF
                if exit_code is not None:
                    break
                await asyncio.sleep(0.02)
                exit_code = (await execution.inspect()).get("ExitCode")
        except DockerError as exc:
            if exc.status == 404:
                raise _not_found(exc, f"cannot exec in {container_id}") from exc
            raise _fail(exc, f"cannot exec in {container_id}") from exc
        output = b"".join(chunks).decode("utf-8", errors="replace")
        return ExecResult(exit_code=-1 if exit_code is None else int(exit_code), output=output)

    # --- networks ---------------------------------------------------------------------

    async def nodes(self) -> builtins.list[NodeInfo]:
        """This engine's host, with what the workspaces running here reserve (their limits)."""
        try:
            info = await self.docker.system.info()
            running = await self.docker.containers.list(
                filters={"label": [LABEL_PREFIX + "instance"], "status": ["running"]})
        except DockerError as exc:
            raise _fail(exc, "cannot reach the engine") from exc
        cpus = memory = 0
        for container in running:
            host = (await container.show()).get("HostConfig") or {}
            cpus += host.get("NanoCpus") or 0
            memory += host.get("Memory") or 0
        return [NodeInfo(id=info.get("ID", ""), hostname=info.get("Name", ""), role="engine",
                         state="ready", availability="active",
                         cpus=float(info.get("NCPU", 0)), memory_bytes=info.get("MemTotal", 0),
                         labels={}, reserved_cpus=cpus / 1e9, reserved_memory_bytes=memory)]

    async def set_availability(self, node: str, availability: str) -> NodeInfo:
        raise InvalidInput("this labspace runs workspaces on one engine (runtime = \"docker\"):"
                           " there is no other node to move them to")

    async def ensure_network(
        self, name: str, host_ports: builtins.list[int] | None = None
    ) -> None:
        """Create the workspaces' bridge network unless it exists; containers on it cannot
        reach one another (inter-container communication disabled). With ``host_ports``,
        they cannot reach the host either, except on those ports (see hostfirewall)."""
        async with self._networks:
            existing = await ensure_bridge(self.docker, name, {NETWORK_LABEL: name})
        options = existing.get("Options") or {}
        if options.get("com.docker.network.bridge.enable_icc") != "false":
            # Refuse rather than silently let workspaces reach one another.
            raise RuntimeFailure(
                f"network {name} exists but allows inter-container traffic; remove it "
                "or choose another docker_network"
            )
        if host_ports is not None:
            await isolate_host(bridge_device(existing), host_ports)


@asynccontextmanager
async def docker_runtime(url: str | None = None) -> AsyncIterator[DockerRuntime]:
    """A DockerRuntime closed on exit."""
    runtime = DockerRuntime(url)
    try:
        yield runtime
    finally:
        await runtime.close()
