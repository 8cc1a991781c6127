"""Confirmation by name for what destroys data (an account, a workshop, homes)."""

from __future__ import annotations

import sys

import typer

from labspace.errors import InvalidInput


def confirm_by_name(name: str, confirm: str, what: str, *, flag: str = "--confirm") -> None:
    """Go on when ``confirm`` is ``name``; else ask on the terminal for the name (``what``
    says what goes), or refuse where there is no terminal to ask on (scripts, CI)."""
    if confirm == name:
        return
    if confirm or not sys.stdin.isatty():
        raise InvalidInput(f"{flag} {confirm!r} is not {name!r}" if confirm else
                           f"this needs {flag} {name} (no terminal to ask on)")
    typed = typer.prompt(f"This deletes {what}. Type {name} to confirm")
    if typed.strip() != name:
        raise InvalidInput("not confirmed: nothing was deleted")
