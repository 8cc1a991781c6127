"""``/hub/api/nodes``: the servers workspaces run on, and draining one (admins only)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel

from labspace.runtime import NodeInfo
from labspace.web.deps import AdminDep, HubDep
from labspace.workspaces.states import State

router = APIRouter(prefix="/hub/api")


class NodePublic(BaseModel):
    id: str
    hostname: str
    role: str
    state: str
    availability: str
    cpus: float
    memory_bytes: int
    reserved_cpus: float
    reserved_memory_bytes: int
    labels: dict[str, str]
    workspaces: list[str]  # owner/name of the workspaces running there

    @classmethod
    def of(cls, node: NodeInfo, workspaces: list[str]) -> NodePublic:
        return cls(id=node.id, hostname=node.hostname, role=node.role, state=node.state,
                   availability=node.availability, cpus=node.cpus,
                   memory_bytes=node.memory_bytes, reserved_cpus=node.reserved_cpus,
                   reserved_memory_bytes=node.reserved_memory_bytes, labels=node.labels,
                   workspaces=workspaces)


async def _running_by_node(hub: HubDep) -> dict[str, list[str]]:
    placed: dict[str, list[str]] = {}
    for record in await hub.store.list():
        if record.state in (State.RUNNING, State.STARTING):
            placed.setdefault(record.node, []).append(f"{record.owner}/{record.name}")
    return placed


@router.get("/nodes", response_model=list[NodePublic], summary="Servers and what runs there")
async def list_nodes(_: AdminDep, hub: HubDep) -> list[NodePublic]:
    placed = await _running_by_node(hub)
    nodes = await hub.runtime.nodes()
    # A single engine records no node for its workspaces: they run on the one there is.
    unplaced = placed.pop("", []) if len(nodes) == 1 else []
    return [NodePublic.of(node, placed.get(node.hostname, []) + unplaced) for node in nodes]


NodeName = Annotated[str, Path(max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


@router.post("/nodes/{node}/{availability}", response_model=NodePublic,
             summary="Drain, pause or reactivate a server")
async def set_availability(node: NodeName, availability: Literal["drain", "pause", "active"],
                           _: AdminDep, hub: HubDep) -> NodePublic:
    """``drain``: no new workspaces there; those running stay until their owners stop them
    (the answer lists them, to be moved by a stop and a start). ``active`` undoes it."""
    changed = await hub.runtime.set_availability(node, availability)
    placed = await _running_by_node(hub)
    return NodePublic.of(changed, placed.get(changed.hostname, []))
