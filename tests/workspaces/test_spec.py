"""How a workspace's container looks: names that no two workspaces share."""

from __future__ import annotations

from pathlib import Path

from labspace.templates import builtin_templates
from labspace.workspaces.spec import (
    LABEL_MOUNTS,
    WorkspaceIdentity,
    build_container_spec,
    group_label,
)


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


def test_groups_go_in_by_a_valid_name_and_change_the_containers_mounts_label() -> None:
    template = builtin_templates("img")[0]
    plain = WorkspaceIdentity(id=1, owner="alice", uid=54321, name="w", secret="s")
    grouped = WorkspaceIdentity(id=1, owner="alice", uid=54321, name="w", secret="s",
                                groups=(("phd", 6001), ("Domain Users", 6002)))
    first = build_container_spec(instance="lab", network="n", home=Path("/h"), ws=plain,
                                 template=template)
    second = build_container_spec(instance="lab", network="n", home=Path("/h"), ws=grouped,
                                  template=template)
    assert "LABSPACE_GROUPS" not in first.env
    assert second.env["LABSPACE_GROUPS"] == "phd:6001,labspace-6002:6002"
    assert first.labels[LABEL_MOUNTS] != second.labels[LABEL_MOUNTS]
    assert group_label("a" * 33, 7000) == "labspace-7000"
