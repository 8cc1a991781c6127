"""The hub's side of port sharing: what a workspace listens on, and changing a port's level.

Detection reads the kernel's socket tables inside the running workspace (listening.py), as
the workspace's own user, so nobody types a port number in. Setting a level checks the port
(not the workspace's own app, not its SSH server), the template's cap and that the port can
have a host at all. Every change is sent to the proxy, so a wider level works at once and a
narrower one closes the connections it no longer admits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from labspace.errors import InvalidInput, LabspaceError, NotFound, PermissionDenied
from labspace.origins import Origins
from labspace.runtime import Runtime
from labspace.sharing.levels import ShareLevel, level_of, wider
from labspace.sharing.listening import PROC_FILES, Listener, parse_listeners
from labspace.sharing.store import ShareChange, ShareStore
from labspace.ssh.files import SSH_PORT
from labspace.templates.store import TemplateStore
from labspace.workspaces.states import State
from labspace.workspaces.store import WorkspaceRecord

log = logging.getLogger(__name__)

DETECT_TIMEOUT = 5.0
Notify = Callable[[Iterable[ShareChange]], Awaitable[None]]


@dataclass(frozen=True)
class PortInfo:
    port: int
    level: ShareLevel
    listening: bool  # detected now (False: shared earlier, nothing listens at the moment)
    loopback_only: bool  # bound to 127.0.0.1: the proxy cannot reach it
    url: str | None  # the port's own address; None where it cannot be shared by link
    note: str = ""  # why it cannot be shared, or what to do first


@dataclass(frozen=True)
class PortList:
    ports: list[PortInfo]
    max_level: ShareLevel  # the template's cap
    detected: bool
    detail: str = ""  # why detection did not run


class PortSharing:
    def __init__(self, store: ShareStore, runtime: Runtime, templates: TemplateStore,
                 origins: Origins, notify: Notify) -> None:
        self.store = store
        self.runtime = runtime
        self.templates = templates
        self.origins = origins
        self.notify = notify

    async def ports(self, record: WorkspaceRecord) -> PortList:
        """Listening ports (detected) and shared ones, with their levels."""
        cap, app_port = await self._template_facts(record)
        levels = await self.store.levels(record.id)
        listeners, detail = await self._detect(record)
        by_port = {listener.port: listener for listener in listeners}
        ports = [self._info(record, port, levels.get(port, ShareLevel.PRIVATE),
                            by_port.get(port), app_port)
                 for port in sorted(set(by_port) | set(levels))]
        return PortList(ports, cap, not detail, detail)

    async def share(self, record: WorkspaceRecord, port: int,
                    level: ShareLevel) -> PortInfo:
        """Set the port's level; a lowered one takes effect on open connections too."""
        if not 1 <= port <= 65535:
            raise InvalidInput("a port is a number from 1 to 65535")
        cap, app_port = await self._template_facts(record)
        refusal = self._why_not(record, port, app_port)
        if refusal and level is not ShareLevel.PRIVATE:
            raise InvalidInput(refusal)
        if wider(level, cap):
            raise PermissionDenied(
                f"the template {record.template!r} allows sharing at most at the level "
                f"{cap.value!r}; an administrator sets it (port_sharing)")
        before = await self.store.set(record.id, port, level)
        if before is not level:  # wider: works at once; narrower: cuts what it refuses
            await self.notify([ShareChange(record.owner, record.name, port, level)])
        log.info("%s/%s port %d: shared %s (was %s)", record.owner, record.name, port,
                 level.value, before.value)
        return self._info(record, port, level, None, app_port)

    async def apply_cap(self, template: str, cap: str) -> list[ShareChange]:
        """A template's cap changed: lower the shares above it, at once."""
        changes = await self.store.apply_cap(template, level_of(cap))
        if changes:
            await self.notify(changes)
        return changes

    async def _template_facts(self, record: WorkspaceRecord) -> tuple[ShareLevel, int | None]:
        """The template's cap and app port; a deleted template allows nothing wider than
        private (its workspaces keep running, unshared)."""
        try:
            spec = await self.templates.get(record.template)
        except NotFound:
            return ShareLevel.PRIVATE, None
        return level_of(spec.port_sharing), spec.app.port

    async def _detect(self, record: WorkspaceRecord) -> tuple[list[Listener], str]:
        if record.state != State.RUNNING or not record.container_id:
            return [], "the workspace is not running"
        try:
            result = await asyncio.wait_for(self.runtime.exec(
                record.container_id, ["cat", *PROC_FILES], user=str(record.uid)),
                DETECT_TIMEOUT)
        except (LabspaceError, TimeoutError) as error:
            message = getattr(error, "message", "") or "it did not answer in time"
            return [], f"could not list the ports the workspace listens on: {message}"
        # /proc/net/tcp6 is missing where IPv6 is off: cat fails, the IPv4 table still counts
        return parse_listeners(result.output), ""

    def _info(self, record: WorkspaceRecord, port: int, level: ShareLevel,
              listener: Listener | None, app_port: int | None) -> PortInfo:
        refusal = self._why_not(record, port, app_port)
        loopback = bool(listener and listener.loopback_only)
        url = None if refusal else (
            self.origins.share_origin(record.owner, record.name, port) + "/")
        note = refusal or ("listens on 127.0.0.1 only, where nothing outside the workspace "
                           "reaches it: start it on 0.0.0.0 (e.g. --host 0.0.0.0)"
                           if loopback else "")
        return PortInfo(port, level, listener is not None, loopback, url, note)

    def _why_not(self, record: WorkspaceRecord, port: int, app_port: int | None) -> str:
        """Why this port cannot be shared by link ('' when it can)."""
        if port == app_port:
            return "the workspace's own app: open the workspace instead"
        if port == SSH_PORT:
            return "the workspace's SSH server: use labspace ssh"
        if not self.origins.apps_domain:
            return ("sharing by link needs apps_domain (a host per shared port); "
                    "use labspace port-forward")
        try:
            self.origins.share_host(record.owner, record.name, port)
        except ValueError:
            return ("the workspace's and owner's names together are too long for a host name "
                    "of its own; use labspace port-forward, or a shorter workspace name")
        return ""

