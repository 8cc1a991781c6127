"""The workspace lifecycle: create, start, stop, delete, each workspace in order, many at once.

Every workspace has its own lock, so its start, stop and delete never interleave, while
different workspaces never wait for each other. Engine calls that create or start containers
share a bounded number of slots (``max_parallel_starts``): a burst queues, it is never refused.
A start that is under way can be stopped: the stop cancels the start task, then stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import aiohttp

from labspace.config import Settings
from labspace.errors import (
    Conflict,
    InvalidInput,
    LabspaceError,
    QuotaExceeded,
    RuntimeFailure,
    StartFailed,
)
from labspace.gpus import WAITING_FOR_A_GPU, GpuRequest, GpuService, Grant
from labspace.gpus.container import LABEL_GPUS
from labspace.policy.model import ProfileSpec, with_profile
from labspace.runtime import ContainerInfo, Mount, Runtime
from labspace.runtime.base import LABEL_INSTANCE, LABEL_WORKSPACE_ID
from labspace.ssh import SshKeyStore
from labspace.storage import ensure_home
from labspace.templates import TemplateSpec
from labspace.templates.store import TemplateStore
from labspace.workspaces.metrics import StartMetrics
from labspace.workspaces.quotas import QuotaBook
from labspace.workspaces.sharedfolders import shared_mounts
from labspace.workspaces.spec import (
    LABEL_MOUNTS,
    SshDirs,
    build_container_spec,
    health_url,
    instance_spec,
    secret_header,
)
from labspace.workspaces.states import State
from labspace.workspaces.store import WorkspaceRecord, WorkspaceStore

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 30


def _on(node: str) -> str:
    return f" on {node}" if node else ""


class WorkspaceManager:
    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        templates: TemplateStore,
        store: WorkspaceStore,
        ssh: SshKeyStore | None = None,
        quotas: QuotaBook | None = None,
        metrics: StartMetrics | None = None,
        gpus: GpuService | None = None,
    ) -> None:
        self.settings = settings
        self.gpus = gpus  # None: no GPU is handed out, nor asked about (tests, no NVML)
        self.metrics = metrics  # None: starts are not measured (tests of the manager alone)
        # Checked at each start, before anything is made (workspaces/quotas.py).
        self.quotas = quotas or QuotaBook(store.db, templates, settings.profiles)
        self.ssh = ssh  # None: workspaces get no SSH files (tests of the manager alone)
        self.runtime = runtime
        self.templates = templates
        self.store = store
        self._locks: dict[int, asyncio.Lock] = {}
        # Starts under way, by workspace id. Stops and deletes run in the caller's task under
        # the workspace's lock; only starts run in the background (they are long).
        self._starts: dict[int, asyncio.Task[None]] = {}
        self._engine_slots = asyncio.Semaphore(settings.max_parallel_starts)
        self._http: aiohttp.ClientSession | None = None
        self._network_ready: asyncio.Lock = asyncio.Lock()
        self._network_done = False
        self._closing = False

    # -- public operations -------------------------------------------------------------

    async def create(self, owner: str, name: str, template: str, profile: str = ""
                     ) -> WorkspaceRecord:
        if not (await self.templates.get(template)).workspaces:  # NotFound: nothing written
            raise InvalidInput(f"template {template!r} is for instant apps only, not for "
                               "workspaces")
        self._profile(profile)  # InvalidInput before anything is written
        return await self.store.create(owner, name, template, profile)

    async def start(self, owner: str, name: str) -> WorkspaceRecord:
        """Queue a start and return at once; follow progress with the event stream."""
        record = await self.store.get(owner, name)
        if record.id in self._starts or record.state == State.RUNNING:
            return record  # already on its way, or there
        try:
            async with self.quotas.reserve(record):  # QuotaExceeded: nothing is made
                if record.id in self._starts:  # a start asked meanwhile (it waited for it)
                    return await self.store.get(owner, name)
                record = await self.store.transition(record.id, State.PENDING, "queued")
        except QuotaExceeded:
            if self.metrics is not None:
                self.metrics.refused()  # a start failure by quota, though none began
            raise
        self._launch_start(record.id)
        return record

    async def stop(self, owner: str, name: str, why: str = "stopped") -> WorkspaceRecord:
        """Stop (cancelling a start under way) and wait until the container has stopped;
        ``why`` becomes its message (an idle stop says so on the workspace's page)."""
        record = await self.store.get(owner, name)
        await self._cancel_start(record.id)
        async with self._lock(record.id):
            record = await self.store.get(owner, name)
            if record.state == State.STOPPED:
                return record
            return await self._stop_locked(record, why)

    async def delete(self, owner: str, name: str) -> None:
        """Stop and remove the container and the record; the user's home is kept."""
        record = await self.store.get(owner, name)
        await self._cancel_start(record.id)
        async with self._lock(record.id):
            record = await self.store.get(owner, name)
            if record.container_id:
                await self.runtime.remove(record.container_id)
            for container in await self._containers_of(record.id):
                await self.runtime.remove(container.id)
            await self.store.delete(record.id)
            self._release_gpus(record.id)
        if self.ssh is not None:
            await self.ssh.files.remove_host_key(record.id)
        self._locks.pop(record.id, None)

    async def wait_settled(self, workspace_id: int) -> None:
        """Wait for the start under way on a workspace, if any (tests, benchmarks)."""
        task = self._starts.get(workspace_id)
        if task is not None:
            await asyncio.shield(task)

    def busy(self, workspace_id: int) -> bool:
        return workspace_id in self._starts or self._lock(workspace_id).locked()

    def resume_start(self, record: WorkspaceRecord) -> None:
        """Finish a start that a previous hub process left half done (used by reconcile)."""
        if not self.busy(record.id):
            self._launch_start(record.id)

    async def close(self) -> None:
        """Leave every workspace as it is: stopping labspace never stops workspaces.

        Starts under way are cancelled without touching their state; the next hub process
        resumes them (see reconcile)."""
        self._closing = True
        tasks = list(self._starts.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    # -- internals -----------------------------------------------------------------------

    def _lock(self, workspace_id: int) -> asyncio.Lock:
        return self._locks.setdefault(workspace_id, asyncio.Lock())

    def _launch_start(self, workspace_id: int) -> None:
        task = asyncio.create_task(self._start(workspace_id), name=f"start-{workspace_id}")
        self._starts[workspace_id] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._starts.get(workspace_id) is done:
                del self._starts[workspace_id]

        task.add_done_callback(forget)

    async def _cancel_start(self, workspace_id: int) -> None:
        task = self._starts.get(workspace_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _containers_of(self, workspace_id: int) -> list[ContainerInfo]:
        return await self.runtime.list(
            {LABEL_INSTANCE: self.settings.instance, LABEL_WORKSPACE_ID: str(workspace_id)}
        )

    async def _start(self, workspace_id: int) -> None:
        # From the queueing (this task starts at once): a burst's wait for a slot is part of
        # the start its owner sees. A cancelled start (stopped, hub closing) is not measured.
        began = time.monotonic()
        async with self._lock(workspace_id):
            record = await self.store.get_by_id(workspace_id)
            if record is None or record.state not in (State.PENDING, State.STARTING):
                return
            try:
                await self._start_locked(record)
                if self.metrics is not None:
                    self.metrics.succeeded(time.monotonic() - began)
            except asyncio.CancelledError:
                if not self._closing:
                    await self._mark_interrupted(record)
                raise
            except LabspaceError as error:
                await self._fail(record, error, began)
            except Exception as error:
                log.exception("start of workspace %s/%s failed", record.owner, record.name)
                await self._fail(record, RuntimeFailure(f"unexpected error: {error}"), began)

    def _profile(self, name: str) -> ProfileSpec | None:
        if not name:
            return None
        try:
            return self.settings.profiles[name]
        except KeyError:
            raise InvalidInput(f"there is no resource profile {name!r} (an administrator may "
                               "have removed it: create the workspace again)") from None

    async def _start_locked(self, record: WorkspaceRecord) -> None:
        template = with_profile(await self.templates.get(record.template),
                                self._profile(record.profile))
        # Before an engine slot: a start waiting for a GPU holds up no other start.
        gpu_request, grant = await self._take_gpus(record, template)
        async with self._engine_slots:
            record = await self.store.transition(record.id, State.STARTING, "preparing home")
            home = await ensure_home(self.settings.homes, record.owner, record.uid,
                                        record.identity.primary_gid)
            ssh = await self._prepare_ssh(record)
            shared = await shared_mounts(self.settings, record.identity)
            await self._ensure_network()
            container = await self._ensure_container(record, template, home, ssh, shared,
                                                     gpu_request, grant)
            # Every start is recorded (a kept container started again is a new start too).
            await self.store.begin_instance(
                record.id, instance_spec(template, container.image_id), handle=container.id,
                node=container.node, runtime_state=container.state,
                devices=list(grant.uuids) if grant else [])
            recorded = (container.node, container.state)
            if not container.running:
                container = await self.runtime.start(container.id)
        if container.status == "created":  # the engine has yet to place it (or pull its image)
            container = await self._wait_placed(record, container)
        if (container.node, container.state) != recorded:  # a cluster placed it only now
            await self.store.place_instance(record.id, node=container.node,
                                            runtime_state=container.state)
        await self.store.note(record, f"container started{_on(container.node)}")
        if not container.running:
            raise StartFailed(f"the container exited (code {container.exit_code}) before its "
                              "app answered", logs=await self._logs(container.id),
                              reason="exited")
        # Where the backend says the app's port is reachable: never built here, so another
        # backend (a swarm node, a service address) fits without the manager knowing it.
        target = container.endpoints.get(template.app.port)
        if not target:
            raise StartFailed(f"the container's port {template.app.port} is not reachable "
                              "(no network address)", logs=await self._logs(container.id))
        await self._wait_healthy(record, template, target, container.id)
        await self.store.transition(record.id, State.RUNNING, "ready", target=target,
                                    container_id=container.id)

    async def _wait_placed(self, record: WorkspaceRecord, container: ContainerInfo
                           ) -> ContainerInfo:
        """Wait while the engine finds a node with room or pulls the image, showing why; a
        stop cancels the wait. Only a cluster backend ever reports "created" after start."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.placement_timeout
        said, pause = "", 0.1  # soon after a placement that is quick, then every 0.5 s
        while container.status == "created":
            why = container.error or "waiting to be placed on a node"
            if why != said:  # the workspace's message, so a list or a page shows it too
                await self.store.transition(record.id, State.STARTING, why)
                said = why
            if loop.time() > deadline:
                raise StartFailed(f"not placed within {self.settings.placement_timeout:.0f} s: "
                                  f"{why}", reason="placement")
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 0.5)
            found = await self.runtime.inspect(container.id)
            if found is None:
                raise StartFailed("the workspace's container vanished while it waited")
            container = found
        return container

    async def _prepare_ssh(self, record: WorkspaceRecord) -> SshDirs | None:
        """The workspace's host key (made once) and its owner's current keys, for its sshd."""
        if self.ssh is None:
            return None
        try:
            await self.ssh.files.ensure_host_key(record.id, record.uid)
            await self.ssh.sync(record.owner)
        except OSError as error:  # the workspace still starts, without SSH
            log.warning("no SSH for %s/%s: cannot write its files under %s: %s", record.owner,
                        record.name, self.ssh.files.root, error)
            return None
        return SshDirs(keys=self.ssh.files.keys_dir(record.owner),
                       host=self.ssh.files.host_dir(record.id))

    async def _ensure_container(
        self, record: WorkspaceRecord, template: TemplateSpec, home: Path,
        ssh: SshDirs | None = None, shared: tuple[Mount, ...] = (),
        gpu_request: GpuRequest = GpuRequest(), grant: Grant | None = None,
    ) -> ContainerInfo:
        spec = build_container_spec(
            instance=self.settings.instance, network=self.settings.docker_network,
            home=home, ssh=ssh, shared=shared,
            ws=record.identity, template=template,
        )
        if self.gpus is not None:
            spec = self.gpus.container(spec, gpu_request, grant)
        if record.container_id:
            existing = await self.runtime.inspect(record.container_id)
            if existing is not None and existing.labels.get(LABEL_MOUNTS) in (
                    None, spec.labels[LABEL_MOUNTS]) and existing.labels.get(
                    LABEL_GPUS, "") == spec.labels.get(LABEL_GPUS, ""):
                return existing
            if existing is not None:  # the owner's groups changed: their folders and ids too
                # (a container from before this label has none: kept as it is); or it was
                # made with other GPUs than this start's
                await self.store.note(record, "its shared folders, groups or GPUs changed: a "
                                              "new container (the home is kept)")
                await self.runtime.remove(existing.id)

        async def progress(line: str) -> None:  # the pull's bytes, as the workspace's message
            await self.store.transition(record.id, State.STARTING, line)

        try:
            spec = replace(spec, image=await self.runtime.ensure_image(spec.image, progress))
        except RuntimeFailure as error:  # the engine answered (ensure_network did) but has
            # no such image and cannot pull it: the template's image is at fault
            raise StartFailed(error.message, detail=error.detail, reason="image") from error
        try:
            container = await self.runtime.create(spec)
        except Conflict:
            # A previous hub died between creating the container and recording it: adopt it.
            ours = await self._containers_of(record.id)
            if not ours:
                raise
            container = ours[0]
        await self.store.transition(record.id, State.STARTING, "container created",
                                    container_id=container.id)
        return container

    async def _ensure_network(self) -> None:
        if self._network_done:
            return
        async with self._network_ready:
            if not self._network_done:
                host_ports = [self.settings.public_port] if self.settings.isolate_host else None
                await self.runtime.ensure_network(self.settings.docker_network, host_ports)
                self._network_done = True

    async def _wait_healthy(
        self, record: WorkspaceRecord, template: TemplateSpec, target: str, container_id: str
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.start_timeout
        url = health_url(target, record.identity, template)
        name, value = secret_header(record.identity, template)
        http = self._client()
        delay, next_inspect = 0.05, loop.time() + 1.0
        await self.store.note(record, "waiting for the app to answer")
        while True:
            try:
                async with http.get(url, headers={name: value},
                                    timeout=aiohttp.ClientTimeout(total=5)) as response:
                    if response.status == 200:
                        await self.store.note(record, "app answering")
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            now = loop.time()
            if now > deadline:
                raise StartFailed(
                    f"the app did not answer within {self.settings.start_timeout:.0f} s",
                    logs=await self._logs(container_id), reason="timeout",
                )
            if now >= next_inspect:
                next_inspect = now + 1.0
                info = await self.runtime.inspect(container_id)
                if info is None or not info.running:
                    code = info.exit_code if info else None
                    why = (info.error if info is not None and code is None and info.error
                           else f"the container exited (code {code}) before its app answered")
                    raise StartFailed(why, logs=await self._logs(container_id),
                                      reason="exited")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(auto_decompress=False)
        return self._http

    async def _logs(self, container_id: str) -> str:
        try:
            return await self.runtime.logs(container_id, tail=LOG_TAIL_LINES)
        except LabspaceError:
            return ""

    async def _fail(self, record: WorkspaceRecord, error: LabspaceError, began: float) -> None:
        if self.metrics is not None:
            self.metrics.failed(time.monotonic() - began, error)
        logs = getattr(error, "logs", "") or ""
        message = error.message + (f"\n--- last log lines ---\n{logs}" if logs else "")
        current = await self.store.get_by_id(record.id)
        if current is not None and current.container_id:
            await self._best_effort(self.runtime.stop, current.container_id, 2.0)
        await self.store.transition(record.id, State.FAILED, message, force=True, target=None)
        self._release_gpus(record.id)

    async def _mark_interrupted(self, record: WorkspaceRecord) -> None:
        await asyncio.shield(self.store.transition(
            record.id, State.STOPPING, "start cancelled by a stop request", force=True))

    async def _stop_locked(self, record: WorkspaceRecord, why: str = "stopped"
                           ) -> WorkspaceRecord:
        if record.state != State.STOPPING:
            record = await self.store.transition(record.id, State.STOPPING, "stopping",
                                                 force=record.state == State.FAILED)
        for container in await self._containers_of(record.id):
            if container.running:
                await self.runtime.stop(container.id, self.settings.stop_timeout)
        stopped = await self.store.transition(record.id, State.STOPPED, why, target=None)
        self._release_gpus(record.id)
        return stopped

    async def _take_gpus(self, record: WorkspaceRecord, template: TemplateSpec
                         ) -> tuple[GpuRequest, Grant | None]:
        """The GPUs its limits ask for, waiting (and saying so) while none is free."""
        request = GpuRequest(whole=template.limits.gpus or 0,
                             shared=bool(template.limits.shared_gpu))
        if self.gpus is None or not request.wanted:
            return request, None

        async def waiting() -> None:  # its message, so the page and the list show it
            await self.store.transition(record.id, record.state, WAITING_FOR_A_GPU,
                                        force=True)

        return request, await self.gpus.take(record.id, f"{record.owner}/{record.name}",
                                             request, waiting)

    def _release_gpus(self, workspace_id: int) -> None:
        if self.gpus is not None:
            self.gpus.release(workspace_id)

    async def _best_effort(self, call: Callable[..., Awaitable[object]], *args: object) -> None:
        try:
            await call(*args)
        except LabspaceError as error:
            log.warning("ignored while cleaning up: %s", error)
