"""An in-memory Runtime for tests of the lifecycle logic (manager, reconcile, API states).

Each "container" that runs gets a tiny HTTP server on loopback that answers every path with
200, so the manager's health check, the endpoints it records and the proxy's forwarding work
for real, in milliseconds. Failures the real engine cannot produce on demand are switches,
named for what they inject:

- ``start_delay``: every start takes this long (a slow image, a busy engine);
- ``crash_after_start``: the app exits with code 1 right after starting, leaving log lines;
- ``never_healthy``: the container runs but its app never answers;
- ``engine_down``: every call fails as a stopped Docker daemon does;
- ``placement_delay``: a started container waits this long for a node with room, as a
  swarm task does ("created", with a "waiting for capacity" message), then runs.

The Docker tests stay for what only the engine can show (limits, mounts, isolation).
"""

from __future__ import annotations

import asyncio
import builtins
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from aiohttp import web

from labspace.errors import Conflict, InvalidInput, NotFound, RuntimeFailure
from labspace.runtime.base import (
    ContainerInfo,
    ContainerSpec,
    ContainerStats,
    ExecResult,
    NodeInfo,
)

ENGINE_DOWN = "cannot reach the container engine: it is not running (fake)"
WAITING = "waiting for capacity: needs 2 CPUs, largest free 1 CPUs (fake)"
DEAF_PORT = 9  # "discard": nothing listens on loopback there, so connections are refused


@dataclass
class _Container:
    info: ContainerInfo
    spec: ContainerSpec
    logs: list[str] = field(default_factory=list)
    server: web.AppRunner | None = None
    placed_at: float | None = None  # while waiting for a node: when one has room


class FakeRuntime:
    """Implements labspace.runtime.Runtime in memory; see the module docstring."""

    def __init__(self, *, start_delay: float = 0.0, crash_after_start: bool = False,
                 never_healthy: bool = False, engine_down: bool = False,
                 placement_delay: float = 0.0) -> None:
        self.start_delay = start_delay
        self.crash_after_start = crash_after_start
        self.never_healthy = never_healthy
        self.engine_down = engine_down
        self.placement_delay = placement_delay
        self.containers: dict[str, _Container] = {}
        self.calls: list[str] = []  # the operations asked for, in order
        self._ids = itertools.count(1)

    def _engine(self, operation: str) -> None:
        self.calls.append(operation)
        if self.engine_down:
            raise RuntimeFailure(ENGINE_DOWN)

    def _get(self, container_id: str) -> _Container:
        for container in self.containers.values():
            if container_id in (container.info.id, container.info.name):
                return container
        raise NotFound(f"no container {container_id}")

    # -- the Runtime protocol ------------------------------------------------------------

    async def ensure_image(self, image: str,
                           progress: Callable[[str], Awaitable[None]]) -> str:
        if self.engine_down:  # not in ``calls``: images are always there
            raise RuntimeFailure(ENGINE_DOWN)
        return image

    async def create(self, spec: ContainerSpec) -> ContainerInfo:
        self._engine("create")
        if any(c.info.name == spec.name for c in self.containers.values()):
            raise Conflict(f"a container named {spec.name} exists already")
        container_id = f"fake{next(self._ids):08d}"
        info = ContainerInfo(id=container_id, name=spec.name, status="created",
                             labels=dict(spec.labels), image_id=f"sha256:fake-{spec.image}",
                             state={"engine": "fake"})
        self.containers[container_id] = _Container(info, spec)
        return info

    async def start(self, container_id: str) -> ContainerInfo:
        self._engine("start")
        container = self._get(container_id)
        if container.info.running:
            return container.info
        if self.start_delay:
            await asyncio.sleep(self.start_delay)
        if self.placement_delay and container.placed_at is None:
            container.placed_at = asyncio.get_running_loop().time() + self.placement_delay
            container.info = replace(container.info, status="created", error=WAITING)
            return container.info
        container.placed_at = None
        if self.crash_after_start:
            container.logs += ["starting the app", "Traceback: the app crashed (fake)"]
            container.info = replace(container.info, status="exited", exit_code=1,
                                     started_at="now")
            return container.info
        if self.never_healthy:
            port = DEAF_PORT  # the container runs, but nothing answers there
            container.logs.append("loading a very large model (never listens)")
        else:
            container.server, port = await _serve_ok()
            container.logs.append("the app is listening")
        # Like a cluster, a container that waited for a node names the one it got.
        node = "fake" if self.placement_delay else ""
        container.info = replace(
            container.info, status="running", exit_code=None, ip_address="127.0.0.1",
            started_at="now", node=node, error=None,
            endpoints={p: f"http://127.0.0.1:{port}" for p in container.spec.ports})
        return container.info

    async def stop(self, container_id: str, timeout: float = 10.0) -> None:
        self._engine("stop")
        container = self._get(container_id)
        container.placed_at = None  # no longer waiting for a node
        await _stop_server(container)
        if container.info.running:
            container.info = replace(container.info, status="exited", exit_code=0,
                                     ip_address=None, endpoints={})

    async def remove(self, container_id: str) -> None:
        self._engine("remove")
        try:
            container = self._get(container_id)
        except NotFound:
            return  # removal is idempotent
        await _stop_server(container)
        del self.containers[container.info.id]

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        self._engine("inspect")
        try:
            container = self._get(container_id)
        except NotFound:
            return None
        placed_at = container.placed_at
        if placed_at is not None and asyncio.get_running_loop().time() >= placed_at:
            return await self.start(container_id)  # room appeared: it runs now
        return container.info

    async def list(self, labels: dict[str, str]) -> builtins.list[ContainerInfo]:
        self._engine("list")
        return [c.info for c in self.containers.values()
                if all(c.info.labels.get(k) == v for k, v in labels.items())]

    async def logs(self, container_id: str, tail: int = 50) -> str:
        self._engine("logs")
        return "\n".join(self._get(container_id).logs[-tail:])

    async def stats(self, container_id: str) -> ContainerStats:
        self._engine("stats")
        container = self._get(container_id)
        return ContainerStats(cpu_percent=0.0, memory_bytes=1024 * 1024,
                              memory_limit_bytes=container.spec.limits.memory_bytes)

    async def exec(self, container_id: str, command: builtins.list[str],
                   user: str | None = None) -> ExecResult:
        self._engine("exec")
        self._get(container_id)
        return ExecResult(exit_code=127, output="exec is not simulated by the fake runtime")

    async def ensure_network(self, name: str,
                             host_ports: builtins.list[int] | None = None) -> None:
        self._engine("ensure_network")

    async def nodes(self) -> builtins.list[NodeInfo]:
        self._engine("nodes")
        running = [c.spec.limits for c in self.containers.values() if c.info.running]
        return [NodeInfo(id="fake", hostname="fake", role="engine", state="ready",
                         availability="active", cpus=8.0, memory_bytes=16 * 1024**3,
                         labels={}, reserved_cpus=sum(limit.cpus or 0 for limit in running),
                         reserved_memory_bytes=sum(limit.memory_bytes or 0 for limit in running))]

    async def set_availability(self, node: str, availability: str) -> NodeInfo:
        raise InvalidInput("the fake runtime has a single node")

    async def close(self) -> None:
        """Stops the fake apps; the containers stay, as a real engine's do."""
        for container in self.containers.values():
            await _stop_server(container)

    # -- what a test does to the engine behind labspace's back --------------------------

    async def kill(self, container_id: str) -> None:
        """The container dies (an OOM kill, a crash): exited, its app gone."""
        container = self._get(container_id)
        await _stop_server(container)
        container.info = replace(container.info, status="exited", exit_code=137,
                                 ip_address=None, endpoints={})


async def _serve_ok() -> tuple[web.AppRunner, int]:
    async def answer(_: web.Request) -> web.Response:
        return web.json_response({"fake": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def _stop_server(container: _Container) -> None:
    if container.server is not None:
        server, container.server = container.server, None
        await server.cleanup()
