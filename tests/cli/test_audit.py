"""``labspace audit`` against a running labspace: the table, JSON lines and the filters."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest

from labspace.testing import Stack


@pytest.mark.docker
def test_audit_prints_failed_logins(stack: Stack) -> None:
    name = f"nobody-{secrets.token_hex(3)}"
    with httpx.Client(base_url=stack.url) as browser:
        form = browser.get("/hub/login").text
        nonce = form.split('name="_login" value="', 1)[1].split('"', 1)[0]
        refused = browser.post("/hub/login", headers={"Origin": stack.url}, data={
            "username": name, "password": "not-the-password", "_login": nonce})
        assert refused.status_code == 401
    done = stack.cli("audit", "--since", "1h", "--action", "login.failed", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    mine = [row for row in rows if row["target"] == name]
    assert len(mine) == 1 and mine[0]["ok"] is False and mine[0]["address"]
    assert all(row["action"] == "login.failed" for row in rows)
    table = stack.cli("audit", "--since", "1h", "--action", "login")
    assert table.returncode == 0 and name in table.stdout and "login.failed" in table.stdout
    bad = stack.cli("audit", "--since", "someday", check=False)
    assert bad.returncode != 0 and "since" in bad.stderr
