"""The docs say what the code does: the configuration reference in docs/admin.md is the one
generated from the settings, and the install command is the one that works."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from labspace.config import reference_markdown

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_admin_guide_has_the_current_configuration_reference() -> None:
    text = (DOCS / "admin.md").read_text()
    documented = text.split("<!-- reference:start -->\n", 1)[1].split("<!-- reference:end -->")[0]
    assert documented.strip() == reference_markdown().strip(), (
        "regenerate with: labspace config reference"
    )


def first_command(markdown: str) -> str:
    block = re.search(r"```sh\n(.*?)```", markdown, re.DOTALL)
    assert block, "no sh code block"
    return block.group(1).strip().splitlines()[0]


@pytest.mark.parametrize("document", [ROOT / "README.md", DOCS / "admin.md"])
def test_the_install_command_runs_as_root_without_sudo(document: Path) -> None:
    """A minimal Debian server, logged in as root, has no sudo: the command is ./install.sh,
    and sudo is mentioned only as the way in for another user."""
    assert first_command(document.read_text()) == "./install.sh"
    assert "as root" in document.read_text()


def test_install_sh_says_how_to_run_it() -> None:
    usage = (ROOT / "install.sh").read_text().split("set -euo pipefail")[0]
    assert "#     ./install.sh\n" in usage
    assert "#     sudo" not in usage


def test_install_sh_refuses_a_non_root_user_and_says_to_run_it_as_root() -> None:
    as_nobody = [] if os.geteuid() != 0 else ["setpriv", "--reuid=65534", "--regid=65534",
                                              "--clear-groups"]
    refused = subprocess.run([*as_nobody, "bash", str(ROOT / "install.sh")], text=True,
                             capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
                             env={"PATH": os.environ["PATH"]})
    assert refused.returncode == 1
    message = refused.stderr.strip()
    assert message.startswith("install.sh: run me as root (as another user"), message
