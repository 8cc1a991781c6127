"""`labspace workshop` against a running labspace: from creation to clean-up."""

from __future__ import annotations

import csv
import secrets
from pathlib import Path

import pytest

from labspace.testing import Stack
from tests.cli.test_cli import _error_line, _json


@pytest.mark.docker
def test_a_workshop_from_creation_to_clean_up(stack: Stack, tmp_path: Path) -> None:
    name = f"ws-{secrets.token_hex(3)}"
    created = _json(stack.cli("workshop", "create", name, "--users", "3", "--expires", "2d",
                              "--out", str(tmp_path), "--json"))
    assert isinstance(created, dict) and created["seats"] == 3 and not created["expired"]
    sheets = sorted(tmp_path.iterdir())
    assert [p.suffix for p in sheets] == [".csv", ".html", ".pdf"]
    assert {p.stat().st_mode & 0o777 for p in sheets} == {0o600}  # passwords inside
    rows = list(csv.DictReader(sheets[0].open()))
    assert [row["user"] for row in rows] == [f"{name}-01", f"{name}-02", f"{name}-03"]
    assert sheets[2].read_bytes().startswith(b"%PDF")
    assert name in {w["name"] for w in _json(stack.cli("workshop", "list", "--json"))}  # type: ignore[index]
    reset = _json(stack.cli("workshop", "reset", name, f"{name}-02", "--json"))
    assert isinstance(reset, dict) and reset["password"] != rows[1]["password"]
    extended = _json(stack.cli("workshop", "extend", name, "--expires", "5d", "--json"))
    assert isinstance(extended, dict) and extended["expires_at"] > created["expires_at"]
    unconfirmed = stack.cli("workshop", "delete", name, check=False)  # no terminal to ask on
    assert unconfirmed.returncode != 0 and f"--confirm {name}" in _error_line(unconfirmed)
    stack.cli("workshop", "delete", name, "--confirm", name)
    left = _json(stack.cli("user", "list", "--workshop", name, "--json"))
    assert left == []
    assert name not in {w["name"] for w in _json(stack.cli("workshop", "list", "--json"))}  # type: ignore[index]
