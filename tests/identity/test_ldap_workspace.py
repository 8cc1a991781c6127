"""A directory user end to end, on a real labspace (hub, proxy, Docker) logging in against a
real slapd: the login form takes the directory's password, and the workspace and the home
directory carry the directory's uidNumber and gidNumber (not a uid labspace chose, and not
the uid as the gid); the directory's groups are the workspace's supplementary groups, with
a folder each under /groups (members only), and the lab's /shared."""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from labspace.testing import Stack, log_in
from labspace.testing.slapd import Slapd
from tests.conftest import Person, ensure_running, wait_state

pytestmark = pytest.mark.docker

UID, GID = 54321, 6000


@pytest.fixture(scope="module")
def ldap_stack(jupyter_image: str) -> Iterator[tuple[Stack, Slapd]]:
    slapd = Slapd(Path(tempfile.mkdtemp(prefix="labspace-slapd-"))).start()
    slapd.add_user("alice", "alice-directory-pw", UID, GID)
    slapd.add_group("phd", 6001, ["alice"])
    slapd.add_group("gpu", 6003, ["alice"])
    slapd.add_group("physics", 6004, [])  # alice is not a member: no folder for her
    root = Path(tempfile.mkdtemp(prefix="labspace-ldap-test-"))
    stack = Stack(root, extra_env={
        "LABSPACE_SHARED_DIR": str(root / "nas" / "shared"),
        "LABSPACE_GROUP_FOLDERS_DIR": str(root / "nas" / "groups"),
        "LABSPACE_GROUP_FOLDERS_READ_ONLY": json.dumps(["gpu"]),
        "LABSPACE_LDAP_SYNC_INTERVAL": "1",
        "LABSPACE_AUTH": "ldap", "LABSPACE_LDAP_URL": slapd.url,
        "LABSPACE_LDAP_PRESET": "freeipa", "LABSPACE_LDAP_BASE_DN": slapd.base,
        "LABSPACE_LDAP_BIND_DN": slapd.manager,
        "LABSPACE_LDAP_BIND_PASSWORD": slapd.manager_password,
        "LABSPACE_LDAP_START_TLS": "true", "LABSPACE_LDAP_CA_FILE": str(slapd.ca_file),
        "LABSPACE_LDAP_ALLOWED_GROUPS": json.dumps(["phd", "gpu"])})
    try:
        stack.start()
        yield stack, slapd
    finally:
        stack.close()
        slapd.close()


def test_a_directory_user_works_with_the_directorys_uid_and_gid(
        ldap_stack: tuple[Stack, Slapd]) -> None:
    stack, _ = ldap_stack
    with httpx.Client(base_url=stack.url, timeout=60, headers={"Accept": "text/html"}) as web:
        refused = log_in(web, "alice", "not-her-password")
        assert refused.status_code == 401 and "wrong user name or password" in refused.text
        assert log_in(web, "alice", "alice-directory-pw").status_code == 303
    with stack.client() as admin:
        user = next(u for u in admin.get("/hub/api/users").json() if u["name"] == "alice")
        assert user["uid"] == UID
        token = admin.post("/hub/api/users/alice/tokens", json={"note": "t"}).json()["token"]
    alice = Person("alice", "alice-directory-pw", token, stack)
    ensure_running(alice, "thesis")
    container = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=org.labspace.instance={stack.instance}",
         "--filter", "label=org.labspace.owner=alice"],
        capture_output=True, text=True, check=True).stdout.strip()
    ids = subprocess.run(["docker", "exec", "-u", str(UID), container, "sh", "-c",
                          "id -u; id -g; stat -c '%u %g' $HOME; touch $HOME/made-here; "
                          "stat -c '%u %g' $HOME/made-here"],
                         capture_output=True, text=True, check=True, timeout=60).stdout.split()
    assert ids == [str(UID), str(GID), str(UID), str(GID), str(UID), str(GID)]
    home = stack.data_dir / "homes" / "alice"
    assert (home.stat().st_uid, home.stat().st_gid) == (UID, GID)


def _in_workspace(stack: Stack, script: str) -> list[str]:
    container = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=org.labspace.instance={stack.instance}",
         "--filter", "label=org.labspace.owner=alice",
         "--filter", "label=org.labspace.workspace=groups"],
        capture_output=True, text=True, check=True).stdout.strip()
    done = subprocess.run(["docker", "exec", "-u", str(UID), container, "sh", "-c", script],
                          capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.splitlines()


def _alice(stack: Stack) -> Person:
    with httpx.Client(base_url=stack.url, timeout=60, headers={"Accept": "text/html"}) as web:
        assert log_in(web, "alice", "alice-directory-pw").status_code == 303  # groups synced
    with stack.client() as admin:
        token = admin.post("/hub/api/users/alice/tokens", json={"note": "t"}).json()["token"]
    return Person("alice", "alice-directory-pw", token, stack)


def test_the_directorys_groups_and_their_folders_are_in_the_workspace(
        ldap_stack: tuple[Stack, Slapd]) -> None:
    stack, slapd = ldap_stack
    alice = _alice(stack)
    ensure_running(alice, "groups")
    seen = _in_workspace(stack, (
        "id -G; ls /groups | tr '\\n' ' '; echo; stat -c '%U %g %a' /groups/phd; "
        "touch /groups/phd/results && stat -c %g /groups/phd/results; "
        "touch /groups/gpu/x 2>/dev/null || echo gpu-read-only; "
        "touch /shared/from-alice && echo shared-writable"))
    assert set(seen[0].split()) == {str(GID), "6001", "6003"}
    assert seen[1].split() == ["gpu", "phd"]  # not physics: she is no member
    assert seen[2:] == ["root 6001 2770", "6001", "gpu-read-only", "shared-writable"]
    folder = stack.root / "nas" / "groups" / "phd"
    assert (folder.stat().st_uid, folder.stat().st_gid, folder.stat().st_mode & 0o7777) == (
        0, 6001, 0o2770)

    # She leaves phd in the directory: at her next login and start, the folder and the gid
    # are gone from her workspace (a new container; her home and its files are kept).
    slapd.set_member("phd", "alice", False)
    _alice(stack)
    with alice.api() as api:
        assert api.post("/hub/api/workspaces/alice/groups/stop").status_code in (200, 202)
        wait_state(api, "alice", "groups", {"stopped"})
    ensure_running(alice, "groups")
    seen = _in_workspace(stack, "id -G; ls /groups; ls ~/shared/")
    assert "6001" not in seen[0].split() and "phd" not in seen[1:]
    assert "from-alice" in seen


def test_leaving_the_allowed_groups_offboards_within_the_sync_interval(
        ldap_stack: tuple[Stack, Slapd]) -> None:
    """Her session and tokens end and her workspaces stop by the hub's own periodic check,
    with no admin involved; her home is kept."""
    stack, slapd = ldap_stack
    alice = _alice(stack)
    ensure_running(alice, "groups")
    web = httpx.Client(base_url=stack.url, timeout=60, headers={"Accept": "text/html"})
    assert log_in(web, "alice", "alice-directory-pw").status_code == 303
    assert web.get("/hub/").status_code == 200
    _in_workspace(stack, "touch ~/kept-after-offboarding")
    for group in ("phd", "gpu"):
        with contextlib.suppress(Exception):  # the previous test took her out of phd
            slapd.set_member(group, "alice", False)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (alice_of(stack) or {}).get("disabled"):
        time.sleep(0.2)
    assert (alice_of(stack) or {}).get("disabled"), "not offboarded within 15 s"
    assert web.get("/hub/", follow_redirects=False).status_code == 303  # to the login page
    with alice.api() as api:
        assert api.get("/hub/api/workspaces").status_code == 401
    with stack.client() as admin:
        wait_state(admin, "alice", "groups", {"stopped"})
    assert (stack.data_dir / "homes" / "alice" / "kept-after-offboarding").exists()


def alice_of(stack: Stack) -> dict[str, object] | None:
    with stack.client() as admin:
        answer = admin.get("/hub/api/users/alice")
    return answer.json() if answer.status_code == 200 else None
