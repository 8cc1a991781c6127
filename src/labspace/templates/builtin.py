"""Templates labspace ships with."""

from __future__ import annotations

from labspace.templates.model import AppSpec, LimitSpec, TemplateSpec

JUPYTERLAB_COMMAND = [
    "jupyter-lab",
    "--ip=0.0.0.0",
    "--port={port}",
    "--no-browser",
    "--ServerApp.base_url={base_url}",
    "--ServerApp.root_dir={home}",
    # The proxy authenticates people; the app only has to trust the proxy's secret.
    "--ServerApp.allow_remote_access=True",
    "--ServerApp.trust_xheaders=True",
    # No calls to PyPI from every workspace at start; admins install extensions in images.
    "--LabApp.extension_manager=readonly",
    # Workspaces of an offline lab must not ask the internet for news or updates.
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
]


def jupyterlab(image: str) -> TemplateSpec:
    return TemplateSpec(
        name="jupyterlab",
        display_name="JupyterLab",
        description="JupyterLab with Python 3, a terminal and sudo.",
        image=image,
        app=AppSpec(command=JUPYTERLAB_COMMAND, port=8888, health_path="/api/status"),
        limits=LimitSpec(cpus=2.0, memory="4g", pids=1024),
        env={"JUPYTER_TOKEN": "{secret}"},
        sudo=True,
    )


def builtin_templates(image: str) -> list[TemplateSpec]:
    return [jupyterlab(image)]
