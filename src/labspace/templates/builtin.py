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


# Where the workspace image keeps the instant apps' examples (images/files/Dockerfile.jupyterlab).
EXAMPLES_DIR = "/opt/labspace/examples"


def notebook_app(image: str) -> TemplateSpec:
    """JupyterLab for instant apps: the examples are copied into the empty home first (so the
    notebooks are the visitor's own, writable), and there is no sudo."""
    copy_examples = f'cp -Rn {EXAMPLES_DIR}/notebook/. "$HOME"/ && exec "$@"'
    return TemplateSpec(
        name="notebook-app",
        display_name="JupyterLab (instant app)",
        description="JupyterLab opened on the image's example notebooks, for instant apps.",
        image=image,
        app=AppSpec(command=["sh", "-c", copy_examples, "notebook-app", *JUPYTERLAB_COMMAND],
                    port=8888, health_path="/api/status"),
        limits=LimitSpec(cpus=1.0, memory="1g", pids=256),
        env={"JUPYTER_TOKEN": "{secret}"},
        port_sharing="private",
        workspaces=False,
    )


def dashboard_app(image: str) -> TemplateSpec:
    """A page of a notebook's outputs, executed when the container starts (a spare, before
    anyone asks for it): labspace-dashboard listens only once the page exists, so the health
    path answers 200 only then, and opening it runs no kernel."""
    return TemplateSpec(
        name="dashboard-app",
        display_name="Notebook dashboard (instant app)",
        description="The outputs of a notebook run when the container starts, as one page.",
        image=image,
        app=AppSpec(command=["labspace-dashboard", f"{EXAMPLES_DIR}/dashboard/dashboard.ipynb",
                             "--port={port}", "--base-url={base_url}"],
                    port=8888, health_path="/"),
        limits=LimitSpec(cpus=1.0, memory="512m", pids=256),
        env={"LABSPACE_DASHBOARD_TOKEN": "{secret}"},
        port_sharing="private",
        workspaces=False,
    )


def builtin_templates(image: str) -> list[TemplateSpec]:
    return [jupyterlab(image), notebook_app(image), dashboard_app(image)]
