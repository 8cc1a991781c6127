"""The audit log as a request dependency: ``audit: AuditDep`` in a handler, then
``await audit("user.create", actor=caller.name, target=name)``; the client's address (the
real one: web/forwarded.py) is filled in. Recording never fails the request
(labspace.audit.AuditLog.record)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from labspace.audit import AuditLog
from labspace.web.deps import HubDep


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


@dataclass(frozen=True)
class Recorder:
    log: AuditLog
    address: str

    async def __call__(self, action: str, *, actor: str, target: str = "", ok: bool = True,
                       **detail: Any) -> None:
        await self.log.record(action, actor=actor, target=target, address=self.address,
                              ok=ok, **detail)


def recorder(request: Request, hub: HubDep) -> Recorder:
    return Recorder(hub.audit, client_address(request))


AuditDep = Annotated[Recorder, Depends(recorder)]
