"""Turn (user, workspace, template) into a ContainerSpec: the one place that decides how a
workspace container looks."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labspace.runtime import ContainerSpec, Limits, Mount
from labspace.runtime.base import (
    LABEL_INSTANCE,
    LABEL_OWNER,
    LABEL_TEMPLATE,
    LABEL_WORKSPACE,
    LABEL_WORKSPACE_ID,
)
from labspace.ssh.files import HOST_TARGET, KEYS_TARGET
from labspace.templates import TemplateSpec


@dataclass(frozen=True)
class SshDirs:
    """Where the workspace's sshd finds its owner's keys and its own host key (host paths)."""

    keys: Path
    host: Path


@dataclass(frozen=True)
class WorkspaceIdentity:
    """The facts about one workspace that its container is built from."""

    id: int
    owner: str
    uid: int
    name: str
    secret: str
    gid: int | None = None  # the owner's primary gid; None: the uid
    # The owner's groups that have a gid: supplementary groups inside the workspace.
    groups: tuple[tuple[str, int], ...] = ()

    @property
    def primary_gid(self) -> int:
        return self.uid if self.gid is None else self.gid


# What a kept container was made with (its mounts, its groups): when the owner's groups
# change, the next start makes a new container (workspaces/manager.py).
LABEL_MOUNTS = "org.labspace.mounts"
_GROUP_LABEL = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def group_label(name: str, gid: int) -> str:
    """The group's name inside the workspace: the directory's where it is a valid Linux
    group name, else labspace-<gid> (the entrypoint takes the name as given)."""
    return name if _GROUP_LABEL.fullmatch(name) else f"labspace-{gid}"


def mounts_digest(mounts: list[Mount], groups: str) -> str:
    text = "\n".join(f"{m.source}:{m.target}:{int(m.read_only)}" for m in mounts)
    return hashlib.sha256(f"{text}\n{groups}".encode()).hexdigest()[:16]


def base_url(owner: str, workspace: str) -> str:
    return f"/user/{owner}/{workspace}/"


def container_name(instance: str, ws: WorkspaceIdentity) -> str:
    """Unique per workspace (its id), readable (owner and name): "alice-lab"/"thesis" and
    "alice"/"lab-thesis" must not share a name, or one user could block another's start."""
    return f"labspace-{instance}-{ws.id}-{ws.owner}-{ws.name}"


def fill_placeholders(text: str, values: dict[str, str]) -> str:
    # str.format_map would choke on other braces (JSON in an env value); replace known keys only.
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def placeholder_values(ws: WorkspaceIdentity, template: TemplateSpec) -> dict[str, str]:
    return {
        "user": ws.owner,
        "uid": str(ws.uid),
        "gid": str(ws.primary_gid),
        "home": f"/home/{ws.owner}",
        "workspace": ws.name,
        "base_url": base_url(ws.owner, ws.name) if template.app.base_url == "prefix" else "/",
        "port": str(template.app.port),
        "secret": ws.secret,
    }


def build_container_spec(
    *,
    instance: str,
    network: str,
    home: Path,
    ws: WorkspaceIdentity,
    template: TemplateSpec,
    ssh: SshDirs | None = None,
    shared: tuple[Mount, ...] = (),
) -> ContainerSpec:
    """``shared``: the lab's and the owner's groups' folders (workspaces/sharedfolders.py)."""
    values = placeholder_values(ws, template)
    env = {key: fill_placeholders(value, values) for key, value in template.env.items()}
    env.update(
        LABSPACE_USER=ws.owner,
        LABSPACE_UID=str(ws.uid),
        LABSPACE_GID=str(ws.primary_gid),
        LABSPACE_HOME=values["home"],
        LABSPACE_SUDO="1" if template.sudo else "0",
        LABSPACE_WORKSPACE=ws.name,
        LABSPACE_BASE_URL=values["base_url"],
    )
    if ws.groups:
        env["LABSPACE_GROUPS"] = ",".join(f"{group_label(name, gid)}:{gid}"
                                          for name, gid in ws.groups)
    mounts = [Mount(source=str(home), target=values["home"])]
    if ssh is not None:  # read-only: nothing inside the workspace changes who may log in
        mounts += [Mount(str(ssh.keys), KEYS_TARGET, read_only=True),
                   Mount(str(ssh.host), HOST_TARGET, read_only=True)]
    mounts += shared
    mounts += [Mount(m.source, m.target, m.read_only) for m in template.mounts]
    return ContainerSpec(
        name=container_name(instance, ws),
        image=template.image,
        command=[fill_placeholders(part, values) for part in template.app.command],
        env=env,
        labels={
            LABEL_MOUNTS: mounts_digest(mounts, env.get("LABSPACE_GROUPS", "")),
            LABEL_INSTANCE: instance,
            LABEL_OWNER: ws.owner,
            LABEL_WORKSPACE: ws.name,
            LABEL_WORKSPACE_ID: str(ws.id),
            LABEL_TEMPLATE: template.name,
        },
        mounts=mounts,
        limits=Limits(
            cpus=template.limits.cpus,
            memory_bytes=template.limits.memory_bytes,
            pids=template.limits.pids,
        ),
        sudo=template.sudo,
        network=network,
        hostname=ws.name,
        ports=[template.app.port],
        node_labels=dict(template.node_labels),
    )


def health_url(target: str, ws: WorkspaceIdentity, template: TemplateSpec) -> str:
    prefix = base_url(ws.owner, ws.name).rstrip("/") if template.app.base_url == "prefix" else ""
    return target + prefix + "/" + template.app.health_path.lstrip("/")


def secret_header(ws: WorkspaceIdentity, template: TemplateSpec) -> tuple[str, str]:
    return template.app.secret_header, fill_placeholders(template.app.secret_value,
                                                         {"secret": ws.secret})


def instance_spec(template: TemplateSpec, image_id: str) -> dict[str, Any]:
    """What a start is made of, recorded on its instance: later template edits change nothing
    for it (the proxy reads the app's secret header and base-URL rule from here)."""
    return {
        "template": template.name,
        "image": template.image,
        "image_id": image_id,
        "app": template.app.model_dump(),
        "limits": template.limits.model_dump(),
        "mounts": [mount.model_dump() for mount in template.mounts],
        "sudo": template.sudo,
        "node_labels": dict(template.node_labels),
    }
