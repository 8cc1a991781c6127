"""The builtin templates: the workspace one, and the two that only instant apps run."""

from __future__ import annotations

from labspace.templates import builtin_templates
from labspace.templates.model import TemplateSpec


def test_the_builtin_templates_and_who_may_start_them() -> None:
    specs = {spec.name: spec for spec in builtin_templates("img")}
    assert list(specs) == ["jupyterlab", "notebook-app", "dashboard-app"]
    assert specs["jupyterlab"].workspaces and specs["jupyterlab"].sudo
    for name in ("notebook-app", "dashboard-app"):
        spec = specs[name]
        assert not spec.workspaces and not spec.sudo and spec.image == "img"
        assert spec.app.base_url == "prefix" and "{secret}" in "".join(spec.env.values())
    assert "--base-url={base_url}" in specs["dashboard-app"].app.command
    assert "--ServerApp.base_url={base_url}" in specs["notebook-app"].app.command


def test_a_template_stored_before_the_field_is_offered_for_workspaces() -> None:
    stored = builtin_templates("img")[0].model_dump(mode="json")
    del stored["workspaces"]
    assert TemplateSpec.model_validate(stored).workspaces
