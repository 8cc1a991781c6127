"""The README's first command, for real: install into a temporary prefix, log in with the
printed one-time password, run it again (quick, nothing changed), then stop what it started."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from labspace.testing import LocalBrowser, free_port, log_in, remove_instance

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.docker


def stop_everything(data: Path, instance: str) -> None:
    for pid_file in (data / "run").glob("*.pid"):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
    remove_instance(instance, f"labspace-{instance}")


def test_install_runs_labspace_and_is_idempotent(tmp_path: Path, jupyter_image: str) -> None:
    port, instance = free_port(), "i" + secrets.token_hex(4)
    data = tmp_path / "data"
    env = {
        **os.environ,
        "LABSPACE_PREFIX": str(tmp_path / "prefix"),
        "LABSPACE_PORT": str(port),
        "LABSPACE_CONFIG": str(tmp_path / "etc" / "labspace.toml"),
        "LABSPACE_DATA": str(data),
        "LABSPACE_NO_SYSTEMD": "1",
        "LABSPACE_INSTANCE": instance,
        "LABSPACE_DOCKER_NETWORK": f"labspace-{instance}",
        "LABSPACE_HUB_PORT": str(free_port()),
    }
    try:
        first = subprocess.run(["bash", str(ROOT / "install.sh")], env=env, text=True,
                               capture_output=True, timeout=900, stdin=subprocess.DEVNULL)
        assert first.returncode == 0, first.stdout + first.stderr
        assert f":{port}/" in first.stdout
        password = re.search(r"one-time password:\s+(\S+)", first.stdout)
        assert password, first.stdout
        # A local install gives each workspace its own host under apps.localhost at once,
        # and says how to serve the lab.
        config = (tmp_path / "etc" / "labspace.toml").read_text()
        assert f'public_url = "http://localhost:{port}"' in config
        assert 'apps_domain = "apps.localhost"' in config
        assert "their own hosts under apps.localhost" in first.stdout
        assert 'apps_domain = "apps.lab.example.org"' in first.stdout
        with LocalBrowser(f"http://localhost:{port}") as client:
            login = log_in(client, "admin", password.group(1))
            assert login.status_code == 303
            assert "__Host-labspace-session" in client.kept  # Secure, host-only
            assert client.get("/hub/api/me").json()["name"] == "admin"

        began = time.monotonic()
        again = subprocess.run(["bash", str(ROOT / "install.sh")], env=env, text=True,
                               capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
        took = time.monotonic() - began
        assert again.returncode == 0, again.stdout + again.stderr
        assert "installing labspace" not in again.stderr  # nothing reinstalled
        assert "exists already" in again.stdout and "one-time password" not in again.stdout
        assert took < 30, f"a re-run took {took:.1f} s"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/hub/login").status_code == 200
    finally:
        stop_everything(data, instance)
