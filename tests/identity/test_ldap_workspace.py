"""A directory user end to end, on a real labspace (hub, proxy, Docker) logging in against a
real slapd: the login form takes the directory's password, and the workspace and the home
directory carry the directory's uidNumber and gidNumber (not a uid labspace chose, and not
the uid as the gid)."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from labspace.testing import Stack, log_in
from labspace.testing.slapd import Slapd
from tests.conftest import Person, ensure_running

pytestmark = pytest.mark.docker

UID, GID = 54321, 6000


@pytest.fixture(scope="module")
def ldap_stack(jupyter_image: str) -> Iterator[tuple[Stack, Slapd]]:
    slapd = Slapd(Path(tempfile.mkdtemp(prefix="labspace-slapd-"))).start()
    slapd.add_user("alice", "alice-directory-pw", UID, GID)
    slapd.add_group("phd", 6001, ["alice"])
    stack = Stack(Path(tempfile.mkdtemp(prefix="labspace-ldap-test-")), extra_env={
        "LABSPACE_AUTH": "ldap", "LABSPACE_LDAP_URL": slapd.url,
        "LABSPACE_LDAP_PRESET": "freeipa", "LABSPACE_LDAP_BASE_DN": slapd.base,
        "LABSPACE_LDAP_BIND_DN": slapd.manager,
        "LABSPACE_LDAP_BIND_PASSWORD": slapd.manager_password,
        "LABSPACE_LDAP_START_TLS": "true", "LABSPACE_LDAP_CA_FILE": str(slapd.ca_file),
        "LABSPACE_LDAP_ALLOWED_GROUPS": json.dumps(["phd"])})
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
