"""Templates kept in the database."""

from __future__ import annotations

import builtins
import hashlib
import json
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import select

from labspace.errors import Conflict, InvalidInput, NotFound
from labspace.state.db import Database
from labspace.state.models import Template
from labspace.templates.model import TemplateSpec


def parse_template(data: object) -> TemplateSpec:
    """Validate untrusted template data, turning pydantic's errors into one clear message."""
    try:
        return TemplateSpec.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'template'}: {e['msg']}"
            for e in error.errors()
        )
        raise InvalidInput(f"invalid template: {problems}") from error


def _digest(spec: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


@dataclass
class TemplateStore:
    db: Database

    async def list(self) -> builtins.list[TemplateSpec]:
        async with self.db.session() as session:
            rows = await session.scalars(select(Template).order_by(Template.name))
            return [TemplateSpec.model_validate(row.spec) for row in rows]

    async def get(self, name: str) -> TemplateSpec:
        async with self.db.session() as session:
            row = await session.scalar(select(Template).where(Template.name == name))
        if row is None:
            raise NotFound(f"no template {name!r}")
        return TemplateSpec.model_validate(row.spec)

    async def add(self, spec: TemplateSpec, *, replace: bool = False) -> TemplateSpec:
        async with self.db.session() as session:
            row = await session.scalar(select(Template).where(Template.name == spec.name))
            if row is not None and not replace:
                raise Conflict(f"template {spec.name!r} exists already (use replace)")
            if row is None:
                session.add(Template(name=spec.name, spec=spec.model_dump(mode="json")))
            else:
                row.spec = spec.model_dump(mode="json")
        return spec

    async def seed(self, specs: builtins.list[TemplateSpec]) -> None:
        """Add built-in templates that are missing and refresh those no admin has edited
        (so a new release's improvements reach existing installs); edits are never
        overwritten."""
        for spec in specs:
            data = spec.model_dump(mode="json")
            async with self.db.session() as session:
                row = await session.scalar(select(Template).where(Template.name == spec.name))
                if row is None:
                    session.add(Template(name=spec.name, spec=data, builtin_digest=_digest(data)))
                elif row.builtin_digest is not None and row.builtin_digest == _digest(row.spec):
                    row.spec, row.builtin_digest = data, _digest(data)
