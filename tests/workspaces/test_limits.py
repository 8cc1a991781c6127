"""A template's limits reach the container's cgroup."""

from __future__ import annotations

import pytest

from tests.conftest import Person, wait_state
from tests.workspaces.test_lifecycle import in_container

pytestmark = pytest.mark.docker

# cgroup v1 file, cgroup v2 file
CGROUP_FILES = {
    "cpu": ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu.max"),
    "memory": ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"),
    "pids": ("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"),
}


def read_limit(person: Person, workspace: str, kind: str) -> str:
    for path in CGROUP_FILES[kind]:
        result = in_container(person, workspace, "cat", path)
        if result.returncode == 0:
            return result.stdout.strip()
    raise AssertionError(f"no cgroup file for {kind}")


def test_limits_are_applied(people: dict[str, Person]) -> None:
    admin = people["admin"]
    with admin.api() as api:
        spec = api.get("/hub/api/templates/jupyterlab").json()
        spec.update(name="small", display_name="Small",
                    limits={"cpus": 0.5, "memory": "384m", "pids": 200})
        assert api.post("/hub/api/templates", json=spec,
                        params={"replace": True}).status_code == 201
        api.post("/hub/api/workspaces", json={"name": "small", "template": "small"})
        wait_state(api, "admin", "small", {"running"})
        cpu = read_limit(admin, "small", "cpu")
        assert cpu.split()[0] == "50000"  # 0.5 of the default 100000 us period
        assert read_limit(admin, "small", "memory") == str(384 * 1024 * 1024)
        assert read_limit(admin, "small", "pids") == "200"
        api.delete("/hub/api/workspaces/admin/small")
