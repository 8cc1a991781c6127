"""How a workspace's container looks: names that no two workspaces share."""

from __future__ import annotations

from pathlib import Path

from labspace.templates import builtin_templates
from labspace.workspaces.spec import WorkspaceIdentity, build_container_spec


def spec_name(ws_id: int, owner: str, name: str) -> str:
    ws = WorkspaceIdentity(id=ws_id, owner=owner, uid=1000 + ws_id, name=name, secret="s")
    spec = build_container_spec(instance="lab", network="n", home=Path("/h"), ws=ws,
                                template=builtin_templates("img")[0])
    return spec.name


def test_two_users_can_never_share_a_container_name() -> None:
    """Names were labspace-<instance>-<owner>-<ws>: "alice-lab"/"thesis" and "alice"/
    "lab-thesis" collided, so one user could block another's workspace."""
    first = spec_name(1, "alice-lab", "thesis")
    second = spec_name(2, "alice", "lab-thesis")
    assert first != second
    assert first.startswith("labspace-lab-1-") and "alice-lab" in first and "thesis" in first
