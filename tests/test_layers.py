"""The architecture's import rules, checked on the source (like kopf's .importlinter):

- only labspace.runtime talks to Docker (aiodocker), and it knows nothing of users or HTTP;
- the proxy stays lean and independent of the hub: no ORM, no web framework, no hub modules;
- the state layer knows nothing of the web, the CLI or the workspace manager.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "labspace"


def imports_of(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((SRC / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(SRC))] = names
    return found


def offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{module} imports {name}"
        for module, names in imports_of(package).items()
        for name in sorted(names)
        if any(name == bad or name.startswith(bad + ".") for bad in forbidden)
    ]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("runtime", ("labspace.identity", "labspace.web", "labspace.workspaces",
                     "labspace.proxy", "labspace.state", "fastapi", "sqlalchemy")),
        ("proxy", ("sqlalchemy", "fastapi", "labspace.web", "labspace.workspaces",
                   "labspace.state", "labspace.hub", "labspace.runtime", "aiodocker",
                   "labspace.identity.tokens", "labspace.identity.users",
                   # the share levels' rules only (stdlib), not the hub's side of sharing
                   "labspace.sharing.service", "labspace.sharing.store")),
        ("sharing", ("labspace.web", "labspace.cli", "labspace.proxy", "fastapi")),
        ("state", ("labspace.web", "labspace.cli", "labspace.workspaces", "labspace.proxy")),
        ("identity", ("labspace.web", "labspace.cli", "labspace.workspaces", "labspace.proxy",
                      "labspace.runtime")),
        ("templates", ("labspace.web", "labspace.cli", "labspace.workspaces",
                       "labspace.runtime")),
        ("workspaces", ("labspace.web", "labspace.cli", "fastapi", "aiodocker")),
        # GPUs: NVML and files on the host, handed to the manager; nothing of its callers
        ("gpus", ("labspace.web", "labspace.cli", "labspace.workspaces", "labspace.state",
                  "labspace.identity", "labspace.hub", "fastapi", "sqlalchemy", "aiodocker")),
        # who may use what: pure rules over the settings, no storage, no web
        ("policy", ("labspace.web", "labspace.cli", "labspace.workspaces", "labspace.state",
                    "labspace.runtime", "sqlalchemy", "fastapi")),
        ("workshops", ("labspace.web", "labspace.cli", "labspace.proxy", "labspace.runtime",
                       "fastapi")),
        # the load page's sampling: the engine only through the runtime, no HTTP, no users
        ("load", ("labspace.web", "labspace.cli", "labspace.proxy", "labspace.identity",
                  "labspace.state", "labspace.workspaces", "fastapi", "aiodocker")),
        # the client side of remote access runs on a laptop: nothing of the server
        ("remote", ("labspace.web", "labspace.workspaces", "labspace.state", "labspace.runtime",
                    "labspace.proxy", "labspace.identity", "labspace.hub", "labspace.config",
                    "sqlalchemy", "fastapi", "aiodocker")),
    ],
)
def test_layer_rules(package: str, forbidden: tuple[str, ...]) -> None:
    assert offending(package, forbidden) == []


def test_only_the_runtime_talks_to_docker() -> None:
    talkers = [
        f"{package}/{module}"
        for package in [p.name for p in SRC.iterdir() if p.is_dir() and p.name != "runtime"]
        for module, names in imports_of(package).items()
        if any(name == "aiodocker" or name.startswith(("aiodocker.", "docker")) for name in names)
    ]
    assert talkers == []


def test_only_the_runtime_talks_to_docker_not_even_through_its_command_line() -> None:
    """Images are built through the runtime's client too (runtime/images.py); only the test
    helpers in labspace.testing clean up with the docker command."""
    runners = [
        str(path.relative_to(SRC))
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).parts[0] not in ("runtime", "testing")
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.List) and node.elts
        and isinstance(node.elts[0], ast.Constant) and node.elts[0].value == "docker"
    ]
    assert runners == []


def test_the_laptop_commands_load_nothing_of_the_server() -> None:
    """`labspace tunnel`, `port-forward`, `login`, `ssh`, `config-ssh` and `key` with only
    the client's dependencies in use."""
    import subprocess
    import sys

    code = ("import sys, labspace.cli.main, labspace.cli.remote, labspace.cli.ssh, "
            "labspace.cli.keys, labspace.remote.login, labspace.remote.sshconfig; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'sqlalchemy', 'fastapi', 'aiodocker', 'asyncpg', 'uvicorn', 'alembic'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
