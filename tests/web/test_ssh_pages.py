"""The SSH keys page as a browser uses it, attacked as a browser can be: a form without or
with a forged CSRF token, a post from another origin, another user's key id. Real stack: the
proxy, the hub, cookies. (The CLI login page's twin is in test_clilogin.py, on a hub of its
own: the stack's pending logins from loopback are shared with other tests.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import Person
from tests.web.test_pages import browse, csrf_of

pytestmark = pytest.mark.docker


def _key(tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
                   check=True, capture_output=True)
    return Path(f"{path}.pub").read_text()


def _fingerprints(person: Person) -> dict[str, int]:
    with person.api() as api:
        return {k["fingerprint"]: k["id"] for k in api.get("/hub/api/keys").json()}


def test_keys_page_adds_and_removes_only_with_its_own_form(
        people: dict[str, Person], tmp_path: Path) -> None:
    alice, bob = people["alice"], people["bob"]
    before = _fingerprints(alice)
    with browse(alice) as browser:
        csrf = csrf_of(browser, "/hub/keys")
        forged = browser.post("/hub/keys", data={"public_key": _key(tmp_path, "f"),
                                                 "_csrf": "forged"})
        assert forged.status_code == 403
        missing = browser.post("/hub/keys", data={"public_key": _key(tmp_path, "m")})
        assert missing.status_code == 403
        elsewhere = browser.post("/hub/keys", data={"public_key": _key(tmp_path, "o"),
                                                    "_csrf": csrf},
                                 headers={"Origin": "http://evil.localhost"})
        assert elsewhere.status_code == 403
        assert _fingerprints(alice) == before  # nothing was added
        added = browser.post("/hub/keys", data={"public_key": _key(tmp_path, "laptop"),
                                                "_csrf": csrf})
        assert added.status_code == 303
        page = browser.get(added.headers["location"])
        assert "laptop" in page.text and "works in your running workspaces" in page.text
        bad = browser.post("/hub/keys", data={"public_key": "ssh-dss AAAA", "_csrf": csrf})
        assert bad.status_code == 400 and "DSA keys are not accepted" in bad.text
    new = next(iter(set(_fingerprints(alice)) - set(before)))
    key_id = _fingerprints(alice)[new]
    with browse(bob) as browser:
        stolen = browser.post(f"/hub/keys/{key_id}/delete",
                              data={"_csrf": csrf_of(browser, "/hub/keys")})
        assert stolen.status_code == 404
        assert new not in browser.get("/hub/keys").text  # nor does bob see it
    assert new in _fingerprints(alice)
    with browse(alice) as browser:
        gone = browser.post(f"/hub/keys/{key_id}/delete",
                            data={"_csrf": csrf_of(browser, "/hub/keys")})
        assert gone.status_code == 303
    assert new not in _fingerprints(alice)
