"""The ``labspace`` CLI: pure parts with typer's CliRunner, the rest against a real stack."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import typer
from typer.testing import CliRunner

from labspace.cli.client import error_for, parse_sse
from labspace.cli.main import app
from labspace.cli.templates import host_limit_warnings
from labspace.config import Settings
from labspace.errors import (
    Conflict,
    InvalidInput,
    LabspaceError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RuntimeFailure,
)
from labspace.templates import TemplateSpec
from labspace.templates.model import LimitSpec
from labspace.testing import Stack, free_port, log_in

runner = CliRunner()


# typer ships its own copy of click, so groups are told apart by what they can do.
def _is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")


def _sub(group: Any, name: str) -> Any:
    command = group.get_command(group.context_class(group), name)
    assert command is not None, name
    return command


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name in group.list_commands(group.context_class(group)):
        command = _sub(group, name)
        yield (*prefix, name)
        if _is_group(command):
            yield from _commands(command, (*prefix, name))


ALL_COMMANDS = list(_commands(typer.main.get_group(app)))


def _offline_env(tmp_path: Path) -> dict[str, str]:
    """An environment in which any attempt to reach a hub fails loudly (closed port)."""
    return {
        "LABSPACE_CONFIG": str(tmp_path / "none.toml"),
        "LABSPACE_DATA_DIR": str(tmp_path / "data"),
        "LABSPACE_URL": f"http://127.0.0.1:{free_port()}",
        "LABSPACE_TOKEN": "not-a-token",
    }


# -- pure parts ------------------------------------------------------------------------------


def test_every_group_is_registered() -> None:
    top = {path[0] for path in ALL_COMMANDS}
    assert {"init", "hub", "proxy", "serve", "user", "workspace", "template", "image",
            "config"} <= top
    assert ("workspace", "start") in ALL_COMMANDS
    assert ("user", "token") in ALL_COMMANDS


@pytest.mark.parametrize("path", [(), *ALL_COMMANDS], ids=lambda p: " ".join(p) or "labspace")
def test_help(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    command: Any = typer.main.get_group(app)
    for name in path:
        command = _sub(command, name)
    summary = (command.help or command.short_help or "").strip()
    assert summary, f"{' '.join(path)} has no help text"
    words = summary.split()[:3]
    flat = " ".join(result.output.replace("│", " ").split())
    assert " ".join(words) in flat


def test_json_option_on_machine_readable_commands() -> None:
    for path in [("user", "add"), ("user", "list"), ("user", "delete"), ("user", "sync"),
                 ("workspace", "list"),
                 ("workspace", "create"), ("workspace", "start"), ("workspace", "stop"),
                 ("template", "list"), ("template", "show"), ("template", "add"),
                 ("config", "show")]:
        result = runner.invoke(app, [*path, "--help"])
        assert "--json" in result.output, path


def test_config_reference_lists_every_setting() -> None:
    result = runner.invoke(app, ["config", "reference"])
    assert result.exit_code == 0, result.output
    for name in Settings.model_fields:
        assert f"`{name}`" in result.output
        assert f"LABSPACE_{name.upper()}" in result.output


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    env = {
        "LABSPACE_CONFIG": str(tmp_path / "none.toml"),
        "LABSPACE_DATA_DIR": str(tmp_path / "data"),
        "LABSPACE_SECRET_KEY": "very-secret-signing-key",
        "LABSPACE_DATABASE_URL": "postgresql+asyncpg://lab:db-pass-123@db.example/lab",
        "LABSPACE_HUB_PORT": "9123",
        "LABSPACE_LDAP_BIND_PASSWORD": "ldap-search-account-pw",
        "LABSPACE_OIDC_ISSUER": "https://sso.example.org/realms/lab",
        "LABSPACE_OIDC_CLIENT_ID": "labspace",
        "LABSPACE_OIDC_CLIENT_SECRET": "oidc-client-secret-xyz",
        "LABSPACE_METRICS_TOKEN": "prometheus-scrape-token-0123456789abcdef",
    }
    for args in (["config", "show"], ["config", "show", "--json"]):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
        for secret in ("very-secret-signing-key", "db-pass-123", "ldap-search-account-pw",
                       "oidc-client-secret-xyz", "prometheus-scrape-token"):
            assert secret not in result.output
        assert "9123" in result.output
    data = json.loads(runner.invoke(app, ["config", "show", "--json"], env=env).output)
    assert data["settings"]["database_url"] == "postgresql+asyncpg://lab:***@db.example/lab"
    assert data["derived"]["hub_address"] == "http://127.0.0.1:9123"


def test_config_show_bad_setting_is_invalid_input(tmp_path: Path) -> None:
    env = {"LABSPACE_CONFIG": str(tmp_path / "none.toml"), "LABSPACE_HUB_PORT": "99999"}
    result = runner.invoke(app, ["config", "show"], env=env)
    assert isinstance(result.exception, InvalidInput)
    assert "hub_port" in result.exception.message


BAD_TEMPLATES = {
    "broken.toml": ('name = "x"\nimage = [unclosed', "not valid TOML"),
    "broken.json": ('{"name": ', "not valid JSON"),
    "missing.toml": ('name = "science"\nimage = "img"\n', "display_name: Field required"),
    "badname.json": (json.dumps({"name": "Bad Name", "display_name": "X", "image": "i",
                                 "app": {"command": ["run"]}}), "name: String should match"),
    "template.yaml": ("name: x\n", "ends in .toml or .json"),
}


@pytest.mark.parametrize("file_name", sorted(BAD_TEMPLATES))
def test_template_add_bad_file_fails_locally(tmp_path: Path, file_name: str) -> None:
    text, expected = BAD_TEMPLATES[file_name]
    path = tmp_path / file_name
    path.write_text(text)
    result = runner.invoke(app, ["template", "add", str(path)], env=_offline_env(tmp_path))
    # An InvalidInput (exit code 2) raised before any request: a request would have given
    # the "hub is not running" RuntimeFailure instead.
    assert isinstance(result.exception, InvalidInput), result.exception
    assert result.exception.exit_code == 2
    assert expected in result.exception.message
    assert str(path) in result.exception.message


def test_template_add_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["template", "add", str(tmp_path / "nope.toml")],
                           env=_offline_env(tmp_path))
    assert isinstance(result.exception, InvalidInput)
    assert "no such file" in result.exception.message


def _template_file(tmp_path: Path, limits: str) -> Path:
    path = tmp_path / "big.toml"
    path.write_text('name = "big"\ndisplay_name = "Big"\nimage = "img"\n'
                    f'[app]\ncommand = ["run"]\n[limits]\n{limits}\n')
    return path


def test_template_limits_that_take_the_whole_host_warn() -> None:
    base = TemplateSpec.model_validate({"name": "t", "display_name": "T", "image": "i",
                                        "app": {"command": ["run"]}})
    gib = 1024**3

    def warnings(cpus: float | None, memory: str | None) -> list[str]:
        spec = base.model_copy(update={"limits": LimitSpec(cpus=cpus, memory=memory)})
        return host_limit_warnings(spec, cores=8, memory=16 * gib)

    assert warnings(2, "4g") == []
    assert warnings(7.5, "12g") == []  # 75 % of the memory is still fine
    assert warnings(8, "4g") == [
        "template t lets one workspace use 8 CPUs, and this host has 8 cores: one workspace "
        "can take them all"]
    assert warnings(2, "13g") == [
        "template t lets one workspace use 13.0 GiB of memory, more than 75% of this host's "
        "16.0 GiB"]
    unlimited = warnings(None, None)
    assert len(unlimited) == 2
    assert "sets no CPU limit: one workspace can use all 8 cores" in unlimited[0]
    assert "sets no memory limit" in unlimited[1] and "16.0 GiB" in unlimited[1]


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (f"cpus = {psutil.cpu_count()}", ["this host has", "no memory limit"]),
        (f'cpus = 0.5\nmemory = "{psutil.virtual_memory().total // 1024**2}m"',
         ["of memory, more than 75%"]),
        ('cpus = 0.5\nmemory = "64m"', []),
    ],
    ids=["all-cores", "all-memory", "fine"],
)
def test_template_add_warns_on_stderr_and_still_sends(
    tmp_path: Path, limits: str, expected: list[str]
) -> None:
    path = _template_file(tmp_path, limits)
    env = _offline_env(tmp_path)
    result = runner.invoke(app, ["template", "add", str(path), "--json"], env=env)
    # Warnings do not stop it: the request was made (and failed, as no hub runs here).
    assert isinstance(result.exception, RuntimeFailure), result.exception
    assert "hub is not running" in result.exception.message
    lines = result.stderr.splitlines()
    assert len(lines) == len(expected), result.stderr
    for line, words in zip(lines, expected, strict=True):
        assert line.startswith("warning: template big ") and words in line, line
    assert result.stdout == ""


def test_template_add_bad_file_end_to_end(tmp_path: Path) -> None:
    """Through the real entry point: one `error:` line on stderr and exit code 2."""
    path = tmp_path / "missing.toml"
    path.write_text(BAD_TEMPLATES["missing.toml"][0])
    env = {**os.environ, **_offline_env(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "labspace.cli.main", "template", "add",
                           str(path)], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "display_name: Field required" in lines[0]


def test_usage_error_exits_2() -> None:
    result = runner.invoke(app, ["workspace", "create", "ws"])  # --template missing
    assert result.exit_code == 2


def test_parse_sse() -> None:
    lines = [
        ": keepalive", "",
        "id: 3", "event: progress",
        'data: {"id": 3, "at": "2024-01-01T00:00:00", "state": "pending", "message": "q"}', "",
        "event: other", "data: {}", "",
        "id: 4", "event: progress", 'data: {"id": 4, "state": "running", "message": "ok"}',
    ]
    events = list(parse_sse(iter(lines)))
    assert [e["id"] for e in events] == [3, 4]
    assert events[1]["state"] == "running"


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, InvalidInput), (422, InvalidInput), (401, NotAuthenticated),
     (403, PermissionDenied), (404, NotFound), (409, Conflict), (502, RuntimeFailure),
     (500, RuntimeFailure)],
)
def test_error_mapping(status: int, cls: type[LabspaceError]) -> None:
    error = error_for(httpx.Response(status, json={"error": "the hub's words"}))
    assert type(error) is cls
    assert error.message == "the hub's words"
    plain = error_for(httpx.Response(status, text="<html>oops</html>"))
    assert type(plain) is cls and plain.message


def test_hub_not_running_message(tmp_path: Path) -> None:
    env = _offline_env(tmp_path)
    result = runner.invoke(app, ["user", "list"], env=env)
    assert isinstance(result.exception, RuntimeFailure)
    assert result.exception.exit_code == 6
    assert result.exception.message == (
        f"the labspace hub is not running at {env['LABSPACE_URL']}: start it with "
        "`labspace serve` (or systemctl start labspace-hub)"
    )


def test_no_token_is_clear(tmp_path: Path) -> None:
    env = _offline_env(tmp_path)
    env["LABSPACE_TOKEN"] = ""
    result = runner.invoke(app, ["template", "list"], env=env)
    assert isinstance(result.exception, NotAuthenticated)
    message = result.exception.message
    assert "admin-token" in message and "LABSPACE_TOKEN" in message


def test_image_build_rejects_unknown_image() -> None:
    result = runner.invoke(app, ["image", "build", "nonesuch"])
    assert isinstance(result.exception, InvalidInput)
    assert "jupyterlab" in result.exception.message
    bad_base = runner.invoke(app, ["image", "build", "--base", "magic"])
    assert bad_base.exit_code == 2


# -- against a running labspace ----------------------------------------------------------------


def _unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _json(done: subprocess.CompletedProcess[str]) -> object:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), done.stderr
    return lines[-1]


@pytest.mark.docker
def test_user_add_list_disable_enable(stack: Stack) -> None:
    name = _unique("cli")
    created = _json(stack.cli("user", "add", name, "--json"))
    assert isinstance(created, dict)
    assert created["name"] == name and created["admin"] is False
    assert isinstance(created["password"], str) and len(created["password"]) >= 8

    listed = _json(stack.cli("user", "list", "--json"))
    assert isinstance(listed, list)
    assert {u["name"]: u["disabled"] for u in listed}[name] is False

    disabled = _json(stack.cli("user", "disable", name, "--json"))
    assert isinstance(disabled, dict) and disabled["disabled"] is True
    listed = _json(stack.cli("user", "list", "--json"))
    assert isinstance(listed, list)
    assert {u["name"]: u["disabled"] for u in listed}[name] is True

    enabled = _json(stack.cli("user", "enable", name, "--json"))
    assert isinstance(enabled, dict) and enabled["disabled"] is False

    human = stack.cli("user", "list")
    assert name in human.stdout

    again = stack.cli("user", "add", name, check=False)
    assert again.returncode == 5
    assert "exists already" in _error_line(again)


@pytest.mark.docker
def test_user_delete_needs_the_name_as_confirmation(stack: Stack) -> None:
    name = _unique("del")
    _json(stack.cli("user", "add", name, "--json"))
    unconfirmed = stack.cli("user", "delete", name, check=False)  # no terminal to ask on
    assert unconfirmed.returncode != 0 and f"--confirm {name}" in _error_line(unconfirmed)
    wrong = stack.cli("user", "delete", name, "--confirm", "someone-else", check=False)
    assert wrong.returncode != 0
    assert name in {u["name"] for u in _json(stack.cli("user", "list", "--json"))}  # type: ignore[index]
    deleted = _json(stack.cli("user", "delete", name, "--confirm", name, "--json"))
    assert isinstance(deleted, dict) and deleted["name"] == name
    assert name not in {u["name"] for u in _json(stack.cli("user", "list", "--json"))}  # type: ignore[index]


@pytest.mark.docker
def test_user_add_human_prints_password_and_token_works(stack: Stack) -> None:
    name = _unique("pw")
    out = stack.cli("user", "add", name, "--admin").stdout
    assert "administrator" in out and "one-time password:" in out
    token = stack.cli("user", "token", name).stdout.strip()
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.hub_port}") as client:
        me = client.get("/hub/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["name"] == name


@pytest.mark.docker
def test_user_add_password_stdin(stack: Stack) -> None:
    name = _unique("stdin")
    done = subprocess.run(
        [sys.executable, "-m", "labspace.cli.main", "user", "add", name, "--password-stdin",
         "--json"],
        env=stack.env, input="a-good-password\n", capture_output=True, text=True, timeout=60,
        check=False,
    )
    created = _json(done)
    assert isinstance(created, dict) and created["password"] is None
    with httpx.Client(base_url=stack.url) as client:
        login = log_in(client, name, "a-good-password")
    assert login.status_code == 303


@pytest.mark.docker
def test_users_in_bulk_and_the_list_filters(stack: Stack) -> None:
    prefix = _unique("blk")
    names = [f"{prefix}-{i}" for i in range(3)]
    for name in names:
        stack.cli("user", "add", name, "--json")
    disabled = _json(stack.cli("user", "disable", *names, "--json"))
    assert isinstance(disabled, list) and [r["ok"] for r in disabled] == [True] * 3
    listed = stack.cli("user", "list", "--search", prefix, "--state", "disabled")
    assert "3 of 3" in listed.stdout
    partly = stack.cli("user", "enable", *names, "no-such-user", check=False)
    assert partly.returncode == 1 and "no-such-user" in partly.stdout
    page = stack.cli("user", "list", "--search", prefix, "--state", "enabled", "--limit", "2")
    assert "2 of 3" in page.stdout and names[2] not in page.stdout


@pytest.mark.docker
def test_a_weak_password_is_refused_before_it_is_sent(stack: Stack) -> None:
    name = _unique("weak")
    done = subprocess.run(
        [sys.executable, "-m", "labspace.cli.main", "user", "add", name, "--password-stdin"],
        env=stack.env, input=f"{name}-123456\n", capture_output=True, text=True, timeout=60,
        check=False)
    assert done.returncode == 2 and "user name" in done.stderr
    assert name not in {u["name"] for u in _json(stack.cli("user", "list", "--json"))}  # type: ignore[index]


@pytest.mark.docker
def test_user_password_reset(stack: Stack) -> None:
    name = _unique("reset")
    stack.cli("user", "add", name)
    reset = _json(stack.cli("user", "password", name, "--json"))
    assert isinstance(reset, dict) and isinstance(reset["password"], str)
    with httpx.Client(base_url=stack.url) as client:
        login = log_in(client, name, reset["password"])
    assert login.status_code == 303
    missing = stack.cli("user", "password", "no-such-user", check=False)
    assert missing.returncode == 4 and "no user" in _error_line(missing)


@pytest.mark.docker
@pytest.mark.parametrize("bad", ["Bad_Name", "9lives", "root"])
def test_bad_user_name_creates_nothing(stack: Stack, bad: str) -> None:
    done = stack.cli("user", "add", bad, check=False)
    assert done.returncode == 2
    line = _error_line(done)
    assert bad in line and ("invalid user name" in line or "reserved" in line)
    listed = _json(stack.cli("user", "list", "--json"))
    assert isinstance(listed, list)
    assert bad not in {u["name"] for u in listed}


@pytest.mark.docker
def test_workspace_lifecycle(stack: Stack) -> None:
    name = _unique("ws")
    done = stack.cli("workspace", "create", name, "--template", "jupyterlab")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert any("pending" in line for line in lines), done.stdout
    assert any("starting" in line for line in lines), done.stdout
    assert f"admin/{name} is running at {stack.url}/user/admin/{name}/" in lines[-1]

    records = _json(stack.cli("workspace", "list", "--json"))
    assert isinstance(records, list)
    mine = {r["name"]: r for r in records}[name]
    assert mine["state"] == "running" and mine["owner"] == "admin"
    assert mine["url"] == f"/user/admin/{name}/"
    everyone = _json(stack.cli("workspace", "list", "--all", "--json"))
    assert isinstance(everyone, list) and name in {r["name"] for r in everyone}
    assert name in stack.cli("workspace", "list").stdout

    logs = stack.cli("workspace", "logs", name, "--tail", "50")
    assert logs.returncode == 0

    stopped = _json(stack.cli("workspace", "stop", f"admin/{name}", "--json"))
    assert isinstance(stopped, dict) and stopped["state"] == "stopped"

    # Start again: the progress shows only this start's steps, ending in running.
    started = stack.cli("workspace", "start", name)
    out = started.stdout.strip().splitlines()
    assert "running at" in out[-1], started.stdout
    assert not any("stopped" in line for line in out[:-1]), started.stdout
    again = _json(stack.cli("workspace", "start", name, "--json"))
    assert isinstance(again, dict) and again["state"] == "running"

    refused = stack.cli("workspace", "delete", name, check=False)  # no terminal to ask on
    assert refused.returncode == 2
    assert "--yes" in _error_line(refused)
    assert _json(stack.cli("workspace", "list", "--json")) == _json(
        stack.cli("workspace", "list", "--json"))  # still there, unchanged

    deleted = stack.cli("workspace", "delete", name, "--yes")
    assert f"deleted admin/{name}" in deleted.stdout
    records = _json(stack.cli("workspace", "list", "--json"))
    assert isinstance(records, list) and name not in {r["name"] for r in records}
    missing = stack.cli("workspace", "stop", name, check=False)
    assert missing.returncode == 4
    _error_line(missing)


@pytest.mark.docker
def test_workspace_for_another_user_no_start(stack: Stack) -> None:
    owner = _unique("own")
    stack.cli("user", "add", owner)
    name = _unique("nostart")
    created = _json(stack.cli("workspace", "create", name, "-t", "jupyterlab",
                              "--user", owner, "--no-start", "--json"))
    assert isinstance(created, dict)
    assert created["owner"] == owner and created["state"] == "stopped"
    theirs = _json(stack.cli("workspace", "list", "--user", owner, "--json"))
    assert isinstance(theirs, list) and [r["name"] for r in theirs] == [name]
    stack.cli("workspace", "delete", f"{owner}/{name}", "--yes")


@pytest.mark.docker
def test_workspace_unknown_template(stack: Stack) -> None:
    done = stack.cli("workspace", "create", _unique("nt"), "-t", "nonesuch", check=False)
    assert done.returncode == 4
    assert "nonesuch" in _error_line(done)


@pytest.mark.docker
def test_templates(stack: Stack, tmp_path: Path) -> None:
    specs = _json(stack.cli("template", "list", "--json"))
    assert isinstance(specs, list) and "jupyterlab" in {s["name"] for s in specs}
    assert "jupyterlab" in stack.cli("template", "list").stdout
    spec = _json(stack.cli("template", "show", "jupyterlab", "--json"))
    assert isinstance(spec, dict) and spec["name"] == "jupyterlab" and "app" in spec
    human = stack.cli("template", "show", "jupyterlab").stdout
    assert "JupyterLab" in human and spec["image"] in human

    name = _unique("tpl")
    path = tmp_path / "science.toml"
    path.write_text(
        f'name = "{name}"\ndisplay_name = "Science"\nimage = "labspace/jupyterlab:latest"\n'
        '[app]\ncommand = ["jupyter", "lab"]\n[limits]\ncpus = 1.5\nmemory = "1g"\n'
    )
    added = _json(stack.cli("template", "add", str(path), "--json"))
    assert isinstance(added, dict) and added["name"] == name
    assert added["limits"]["cpus"] == 1.5
    again = stack.cli("template", "add", str(path), check=False)
    assert again.returncode == 5
    assert "--replace" in _error_line(again)
    replaced = stack.cli("template", "add", str(path), "--replace")
    assert f"replaced template {name}" in replaced.stdout

    missing = stack.cli("template", "show", "nonesuch", check=False)
    assert missing.returncode == 4
    assert "nonesuch" in _error_line(missing)


@pytest.mark.docker
def test_hub_not_running(stack: Stack) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    done = stack.cli("workspace", "list", "--url", closed, check=False)
    assert done.returncode == 6
    assert done.stdout == ""
    assert done.stderr.strip() == (
        f"error: the labspace hub is not running at {closed}: start it with `labspace serve` "
        "(or systemctl start labspace-hub)"
    )


@pytest.mark.docker
def test_bad_token(stack: Stack) -> None:
    done = subprocess.run([sys.executable, "-m", "labspace.cli.main", "user", "list"],
                          env={**stack.env, "LABSPACE_TOKEN": "wrong"}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 3
    _error_line(done)


@pytest.mark.docker
def test_ordinary_user_cannot_list_users(stack: Stack) -> None:
    name = _unique("plain")
    stack.cli("user", "add", name)
    token = stack.cli("user", "token", name).stdout.strip()
    env = {**stack.env, "LABSPACE_TOKEN": token}
    done = subprocess.run([sys.executable, "-m", "labspace.cli.main", "user", "list"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3
    _error_line(done)
    mine = subprocess.run([sys.executable, "-m", "labspace.cli.main", "workspace", "list",
                           "--json"], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert json.loads(mine.stdout) == []
