"""The example apps (labspace.apps.examples): valid, and consistent with the builtin
templates and the workspace image they run."""

from __future__ import annotations

import json
import re

from labspace.apps.examples import EXAMPLES
from labspace.apps.model import AppDefinition
from labspace.images import build
from labspace.templates import builtin_templates
from labspace.templates.builtin import EXAMPLES_DIR

TEMPLATES = {spec.name: spec for spec in builtin_templates("labspace/jupyterlab:latest")}
DOCKERFILE = (build.FILES_DIR / "Dockerfile.jupyterlab").read_text()


def test_two_valid_examples_each_on_a_builtin_app_template() -> None:
    assert set(EXAMPLES) == {"notebook", "dashboard"}
    for key, app in EXAMPLES.items():
        assert app.name == key
        assert AppDefinition.model_validate(app.model_dump(mode="json")) == app
        template = TEMPLATES[app.template]
        # Offered for instant apps only, and never with sudo (an anonymous visitor's root).
        assert not template.workspaces and not template.sudo
        assert template.port_sharing == "private"
        assert app.access == "anyone" and not app.shareable


def test_workspace_templates_stay_offered() -> None:
    assert TEMPLATES["jupyterlab"].workspaces
    assert builtin_templates("img")[0].name == "jupyterlab"


def test_the_notebook_example_opens_the_notebook_its_template_copies_home() -> None:
    app = EXAMPLES["notebook"]
    assert app.path == "lab/tree/welcome.ipynb"
    script = TEMPLATES[app.template].app.command[2]
    assert f"{EXAMPLES_DIR}/notebook/." in script and '"$HOME"' in script
    assert f"COPY welcome.ipynb {EXAMPLES_DIR}/notebook/welcome.ipynb" in DOCKERFILE


def test_the_dashboard_example_runs_a_notebook_the_image_has() -> None:
    command = TEMPLATES[EXAMPLES["dashboard"].template].app.command
    assert command[0] == "labspace-dashboard"
    assert command[1] == f"{EXAMPLES_DIR}/dashboard/dashboard.ipynb"
    assert f"COPY dashboard.ipynb {command[1]}" in DOCKERFILE
    assert "COPY labspace-dashboard /usr/local/bin/labspace-dashboard" in DOCKERFILE


def test_the_example_files_are_part_of_the_image_hash() -> None:
    sources = {path.name for path in build._sources("jupyterlab")}
    assert {"welcome.ipynb", "dashboard.ipynb", "labspace-dashboard"} <= sources


def test_the_notebooks_ship_without_outputs() -> None:
    """What the dashboard shows can only come from running it (the container tests look for
    a number the notebook computes)."""
    for name in ("welcome.ipynb", "dashboard.ipynb"):
        notebook = json.loads((build.FILES_DIR / name).read_text())
        assert notebook["nbformat"] == 4 and notebook["metadata"]["kernelspec"]["name"] == "python3"
        code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
        assert code and all(cell["outputs"] == [] and cell["execution_count"] is None
                            for cell in code)
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cell["id"]) for cell in notebook["cells"])
    assert "1229" not in (build.FILES_DIR / "dashboard.ipynb").read_text()
