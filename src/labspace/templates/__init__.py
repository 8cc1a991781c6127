"""Workspace templates: what image a workspace runs, its main app, limits and rights."""

from labspace.templates.builtin import builtin_templates
from labspace.templates.model import AppSpec, LimitSpec, MountSpec, TemplateSpec

__all__ = ["AppSpec", "LimitSpec", "MountSpec", "TemplateSpec", "builtin_templates"]
