"""``labspace tunnel`` and ``port-forward``: their arguments (the tunnels themselves are
tested through the real proxy in tests/proxy/test_tunnel.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from labspace.cli.main import app
from labspace.cli.remote import parse_mapping
from labspace.errors import InvalidInput

runner = CliRunner()


def test_port_mappings_read_as_local_to_remote() -> None:
    assert parse_mapping("8080:8888") == (8080, 8888)
    assert parse_mapping("5432") == (5432, 5432)
    assert parse_mapping("0:22") == (0, 22)  # any free local port
    for bad in ("x:22", "22:", "70000:22", "22:0", "1:2:3"):
        with pytest.raises(InvalidInput):
            parse_mapping(bad)


def test_a_bad_mapping_is_refused_before_anything_is_opened() -> None:
    result = runner.invoke(app, ["port-forward", "lab", "8080:http"],
                           env={"LABSPACE_URL": "http://127.0.0.1:9", "LABSPACE_TOKEN": "t"})
    # main() prints the error's message; here the raised error shows it is the mapping's
    assert isinstance(result.exception, InvalidInput)
    assert "not a port mapping: '8080:http'" in result.exception.message


def test_both_commands_explain_themselves() -> None:
    for command in ("tunnel", "port-forward"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "LABSPACE_URL" in result.output


@pytest.mark.parametrize(("args", "parsed"), [
    (["ada/lab", "--url", "https://x.org/"], ("ada", "lab", "https://x.org", 22)),
    (["ada/lab", "--url", "https://x.org", "--port", "8888"], ("ada", "lab", "https://x.org",
                                                               8888)),
    (["ada/lab", "--url", "https://x.org", "-p", "5432"], ("ada", "lab", "https://x.org", 5432)),
    (["lab", "--url", "https://x.org"], None),  # no owner: the full CLI asks the hub
    (["ada/lab"], None),  # no URL
    (["ada/lab", "--url"], None),
    (["ada/lab", "--url", "u", "--port", "0"], None),
    (["ada/lab", "--url", "u", "--port", "99999"], None),
    (["ada/lab", "--url", "u", "--help", "x"], None),
    (["--help"], None),
    (["a/b/c", "--url", "u"], None),
])
def test_the_fast_start_takes_only_the_form_config_ssh_writes(
        args: list[str], parsed: tuple[str, str, str, int] | None) -> None:
    from labspace.remote.quick import parse

    assert parse(args) == parsed


def test_the_fast_start_loads_no_cli_framework() -> None:
    """ssh waits for this start on every connection: no typer, rich, httpx or settings."""
    import subprocess
    import sys

    code = ("import sys, labspace.cli.entry, labspace.remote.quick; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'typer', 'rich', 'httpx', 'pydantic', 'pydantic_settings', 'click'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("words", "split"), [
    (["-L", "8080:localhost:8888", "-v", "ls", "-la"],
     (["-L", "8080:localhost:8888", "-v"], ["ls", "-la"])),
    (["-o", "LogLevel=ERROR", "hostname"], (["-o", "LogLevel=ERROR"], ["hostname"])),
    (["echo", "-n", "x"], ([], ["echo", "-n", "x"])),  # options of the command stay its own
    (["-o"], (["-o"], [])),
    ([], ([], [])),
])
def test_labspace_ssh_tells_ssh_options_from_the_command(
        words: list[str], split: tuple[list[str], list[str]]) -> None:
    from labspace.cli.ssh import split_ssh_words

    assert split_ssh_words(words) == split
