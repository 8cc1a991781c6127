"""An app's pool container: the template's image and command, run as an anonymous,
unprivileged account with nothing of anybody's: no home, no shared folders, no SSH, no sudo.

It serves under ``/apps/<app>/<slot>/`` (``{base_url}``), decided when it is created, before
anyone claims it, so a claim only has to hand out a container that is already answering.
"""

from __future__ import annotations

import secrets
from typing import Any

from labspace.runtime import ContainerSpec, Limits
from labspace.runtime.base import (
    LABEL_APP,
    LABEL_INSTANCE,
    LABEL_PREFIX,
    LABEL_SLOT,
    LABEL_TEMPLATE,
)
from labspace.templates import TemplateSpec
from labspace.workspaces.spec import fill_placeholders

LABEL_GENERATION = LABEL_PREFIX + "app-generation"
APP_USER = "app"
APP_HOME = "/home/app"


def new_slot() -> str:
    """"c" and 16 hex digits (64 random bits); the proxy knows the shape (is_claim_slot)."""
    return "c" + secrets.token_hex(8)


def base_url(app: str, slot: str) -> str:
    return f"/apps/{app}/{slot}/"


def container_name(instance: str, app: str, slot: str) -> str:
    return f"labspace-{instance}-app-{app}-{slot}"


def build_app_container(*, instance: str, network: str, app: str, slot: str, secret: str,
                        generation: int, template: TemplateSpec, uid: int) -> ContainerSpec:
    prefix = template.app.base_url == "prefix"
    values = {
        "user": APP_USER, "uid": str(uid), "gid": str(uid), "home": APP_HOME,
        "workspace": app, "base_url": base_url(app, slot) if prefix else "/",
        "port": str(template.app.port), "secret": secret,
    }
    env = {key: fill_placeholders(value, values) for key, value in template.env.items()}
    env.update(LABSPACE_USER=APP_USER, LABSPACE_UID=str(uid), LABSPACE_GID=str(uid),
               LABSPACE_HOME=APP_HOME, LABSPACE_SUDO="0", LABSPACE_SSH="0",
               LABSPACE_WORKSPACE=app, LABSPACE_BASE_URL=values["base_url"])
    return ContainerSpec(
        name=container_name(instance, app, slot),
        image=template.image,
        command=[fill_placeholders(part, values) for part in template.app.command],
        env=env,
        labels={LABEL_INSTANCE: instance, LABEL_APP: app, LABEL_SLOT: slot,
                LABEL_GENERATION: str(generation), LABEL_TEMPLATE: template.name},
        mounts=[],
        limits=Limits(cpus=template.limits.cpus, memory_bytes=template.limits.memory_bytes,
                      pids=template.limits.pids),
        sudo=False,  # whatever the template says: nobody is accountable for an anonymous root
        network=network,
        hostname=app,
        ports=[template.app.port],
        node_labels=dict(template.node_labels),
    )


def ready_url(target: str, app: str, slot: str, template: TemplateSpec,
              ready_path: str | None) -> str:
    prefix = base_url(app, slot) if template.app.base_url == "prefix" else "/"
    return target + prefix + (ready_path if ready_path is not None
                              else template.app.health_path.lstrip("/"))


def secret_header(template: TemplateSpec, secret: str) -> tuple[str, str]:
    return template.app.secret_header, fill_placeholders(template.app.secret_value,
                                                         {"secret": secret})


def proxy_spec(template: TemplateSpec) -> dict[str, Any]:
    """What the proxy needs of the template, recorded with the container (as instances
    record theirs): later template edits change nothing for containers already made."""
    return {"template": template.name, "app": template.app.model_dump()}
