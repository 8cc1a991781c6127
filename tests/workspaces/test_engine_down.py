"""The hub starts and answers while the container engine does not, and says so clearly."""

from __future__ import annotations

import tempfile
from pathlib import Path

from labspace.testing import Stack
from tests.conftest import wait_state


def test_hub_runs_without_an_engine_and_reports_it() -> None:
    root = Path(tempfile.mkdtemp(prefix="labspace-noengine-"))
    stack = Stack(root, extra_env={"LABSPACE_DOCKER_URL": f"unix://{root}/no-engine.sock"})
    try:
        stack.start()
        with stack.client() as api:
            assert api.get("/hub/api/me").status_code == 200
            api.post("/hub/api/workspaces", json={"name": "w", "template": "jupyterlab"})
            failed = wait_state(api, "admin", "w", {"failed", "running"}, timeout=30)
        assert failed["state"] == "failed"
        assert "Cannot connect to Docker Engine" in str(failed["message"])
    finally:
        stack.close()
