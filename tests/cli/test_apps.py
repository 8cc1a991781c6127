"""`labspace app`: the pure parts with typer's CliRunner, the rest against a running labspace
(apps with no spares, so no container is started)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labspace.cli.apps import _quantile, _seconds_text, parse_seconds
from labspace.cli.main import app
from labspace.errors import InvalidInput, RuntimeFailure
from labspace.testing import Stack
from tests.cli.test_cli import _error_line, _json, _offline_env

runner = CliRunner()


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("90", 90), ("20m", 1200), ("4h", 14400), ("1d", 86400), ("1h 30m", 5400),
])
def test_durations(text: str, seconds: int) -> None:
    assert parse_seconds(text, "--max-age") == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "-3m", "1.5h"])
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(InvalidInput, match="--idle-timeout: not a duration"):
        parse_seconds(text, "--idle-timeout")


def test_seconds_text() -> None:
    assert [_seconds_text(s) for s in (0, 45, 600, 5430, 86400)] == [
        "0s", "45s", "10m", "1h 30m 30s", "1d"]


def test_latency_quantiles_from_the_histogram() -> None:
    assert _quantile({"buckets": [], "sum": 0, "count": 0}, 0.5) == "-"
    histogram = {"buckets": [{"le": 0.05, "count": 0}, {"le": 0.1, "count": 90},
                             {"le": 1.0, "count": 99}, {"le": "+Inf", "count": 100}],
                 "sum": 12.0, "count": 100}
    assert _quantile(histogram, 0.5) == "≤ 0.1s"
    assert _quantile(histogram, 0.99) == "≤ 1s"
    assert _quantile(histogram, 1.0) == "> 1s"


@pytest.mark.parametrize(("args", "message"), [
    (["add"], "labspace app add NAME --template"),
    (["add", "demo"], "labspace app add NAME --template"),
    (["add", "--example", "nope"], "--example: no example 'nope' (use notebook or dashboard)"),
    (["add", "demo", "--template", "t", "--idle-timeout", "5s"], "--idle-timeout: at least 10s"),
    (["add", "demo", "--template", "t", "--max-age", "soon"], "--max-age: not a duration"),
    (["add", "demo", "--template", "t", "--spares", "501"], "--spares:"),
    (["add", "Demo", "--template", "t"], "NAME: use lowercase letters"),
    (["add", "demo", "--template", "t", "--path", "../etc"], "--path: a path under the app"),
])
def test_bad_input_fails_before_any_hub_is_asked(
        tmp_path: Path, args: list[str], message: str) -> None:
    # The hub's address is a closed port: reaching it would be another error (exit 6).
    result = runner.invoke(app, ["app", *args], env=_offline_env(tmp_path))
    assert isinstance(result.exception, InvalidInput), result.output
    assert result.exception.exit_code == 2 and message in result.exception.message


def test_hub_not_running(tmp_path: Path) -> None:
    result = runner.invoke(app, ["app", "list"], env=_offline_env(tmp_path))
    assert isinstance(result.exception, RuntimeFailure) and result.exception.exit_code == 6
    assert "hub is not running" in result.exception.message


def test_json_on_every_app_command_that_answers() -> None:
    for command in ("add", "list", "show", "drain", "refresh"):
        assert "--json" in runner.invoke(app, ["app", command, "--help"]).output, command


@pytest.mark.docker
def test_an_app_from_adding_to_deleting(stack: Stack) -> None:
    name = f"app-{secrets.token_hex(3)}"
    added = _json(stack.cli("app", "add", name, "--template", "jupyterlab", "--spares", "0",
                            "--idle-timeout", "90s", "--max-age", "2h", "--max-ready-age", "1d",
                            "--max-claimed", "7", "--users-only", "--shareable",
                            "--path", "lab", "--display-name", "A demo", "--json"))
    assert isinstance(added, dict) and added["url"] == f"{stack.url}/apps/{name}"
    assert added["definition"] == {
        "name": name, "display_name": "A demo", "template": "jupyterlab", "path": "lab",
        "ready_path": None, "access": "users", "shareable": True,
        "pool": {"spares": 0, "max_claimed": 7, "idle_timeout": 90, "max_age": 7200,
                 "max_ready_age": 86400, "claims_per_browser": 1}}
    assert added["pool"]["claimed"] == 0 and not added["pool"]["draining"]

    again = stack.cli("app", "add", name, "--template", "jupyterlab", "--spares", "0",
                      check=False)
    assert again.returncode == 5, again.stderr  # Conflict
    missing = stack.cli("app", "add", f"{name}-x", "--template", "no-such-template",
                        "--spares", "0", check=False)
    assert missing.returncode == 4 and "no-such-template" in _error_line(missing)

    listed = _json(stack.cli("app", "list", "--json"))
    assert name in {a["name"] for a in listed}  # type: ignore[attr-defined]
    table = stack.cli("app", "list").stdout
    assert name in table and "claimed" in table
    shown = stack.cli("app", "show", name).stdout
    assert f"/apps/{name}" in shown and "1m 30s unused" in shown and "p50 -" in shown

    drained = _json(stack.cli("app", "drain", name, "--json"))
    assert isinstance(drained, dict) and drained["pool"]["draining"]
    assert "DRAINING" in stack.cli("app", "show", name).stdout
    refreshed = _json(stack.cli("app", "refresh", name, "--json"))
    assert isinstance(refreshed, dict) and not refreshed["pool"]["draining"]
    assert refreshed["pool"]["generation"] > drained["pool"]["generation"]
    assert "generation" in stack.cli("app", "refresh", name).stdout

    unconfirmed = stack.cli("app", "delete", name, check=False)  # no terminal to ask on
    assert unconfirmed.returncode == 2 and "--yes" in _error_line(unconfirmed)
    assert "its claims ended" in stack.cli("app", "delete", name, "--yes").stdout
    gone = stack.cli("app", "show", name, check=False)
    assert gone.returncode == 4, gone.stderr
    assert stack.cli("app", "delete", name, "--yes", check=False).returncode == 4


@pytest.mark.docker
def test_an_example_app_prints_its_link(stack: Stack) -> None:
    name = f"nb-{secrets.token_hex(3)}"
    done = stack.cli("app", "add", "--example", "notebook", name, "--spares", "0")
    assert f"the link to give out: {stack.url}/apps/{name}" in " ".join(done.stdout.split())
    shown = _json(stack.cli("app", "show", name, "--json"))
    assert isinstance(shown, dict)
    assert shown["definition"]["template"] == "notebook-app"
    assert shown["definition"]["path"] == "lab/tree/welcome.ipynb"
    assert shown["definition"]["display_name"] == "JupyterLab: welcome notebook"
    stack.cli("app", "delete", name, "--yes")
