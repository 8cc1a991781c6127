"""Workspace templates: what image a workspace runs, its main app, limits and rights."""

from labspace.templates.model import AppSpec, LimitSpec, MountSpec, TemplateSpec
from labspace.templates.builtin import builtin_templates

__all__ = ["AppSpec", "LimitSpec", "MountSpec", "TemplateSpec", "builtin_templates"]
