"""The server-rendered pages, through the proxy of a real running labspace."""

from __future__ import annotations

import re
import uuid
from contextlib import closing

import httpx
import pytest
from markupsafe import escape

from labspace.storage.mounts import homes_mount_problem
from labspace.testing import Stack, log_in
from tests.conftest import Person, wait_state

pytestmark = pytest.mark.docker

HTML = {"Accept": "text/html"}
CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')


def csrf_of(client: httpx.Client, path: str = "/hub/") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF_RE.search(page.text)
    assert found, "the page has no CSRF field"
    return found.group(1)


def browse(person: Person) -> closing[httpx.Client]:
    """A logged-in browser-like client, closed at the end of the with block."""
    return closing(person.browser())


def names_of(person: Person) -> set[str]:
    with person.api() as api:
        return {w["name"] for w in api.get("/hub/api/workspaces").json()}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# -- login -------------------------------------------------------------------------------------


def test_login_page_renders(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url, headers=HTML) as client:
        page = client.get("/hub/login?next=/hub/token")
    assert page.status_code == 200
    assert 'name="username"' in page.text and 'type="password"' in page.text
    assert 'value="/hub/token"' in page.text
    assert '/hub/static/labspace.css' in page.text


def test_wrong_password_is_401_with_a_message(stack: Stack, people: dict[str, Person]) -> None:
    with httpx.Client(base_url=stack.url, headers=HTML) as client:
        page = log_in(client, "alice", "not-it-at-all")
    assert page.status_code == 401
    assert "wrong user name or password" in page.text
    assert 'value="alice"' in page.text  # the name is kept


def test_password_guessing_is_throttled(stack: Stack, people: dict[str, Person]) -> None:
    with stack.client() as admin:
        admin.post("/hub/api/users", json={"name": "guessed", "password": "the-real-one"})
    with httpx.Client(base_url=stack.url, headers=HTML) as client:
        codes = [log_in(client, "guessed", f"guess-{i}").status_code for i in range(6)]
        assert codes == [401] * 5 + [429]
        blocked = log_in(client, "guessed", "the-real-one")
        assert blocked.status_code == 429  # even the right password waits out the block
        assert "too many failed logins" in blocked.text
        assert int(blocked.headers["retry-after"]) > 0
        other = log_in(client, "alice", people["alice"].password)
        assert other.status_code == 303  # other accounts are unaffected


def test_login_form_needs_its_own_nonce(stack: Stack, people: dict[str, Person]) -> None:
    """Login CSRF: a form posted from elsewhere (no nonce, or not matching the cookie) fails."""
    with httpx.Client(base_url=stack.url, headers=HTML) as client:
        bare = client.post("/hub/login", data={"username": "alice",
                                               "password": people["alice"].password})
        assert bare.status_code == 403 and "labspace-session" not in bare.cookies
        assert "did not come from this site" in bare.text
        client.get("/hub/login")
        forged = client.post("/hub/login", data={"username": "alice",
                                                 "password": people["alice"].password,
                                                 "_login": "guessed-nonce"})
        assert forged.status_code == 403 and "labspace-session" not in forged.cookies
        assert log_in(client, "alice", people["alice"].password).status_code == 303


def test_anonymous_home_redirects_to_login(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url, headers=HTML) as client:
        page = client.get("/hub/")
    assert page.status_code in (302, 303)
    assert page.headers["location"] == "/hub/login?next=/hub/"


def test_static_assets_are_served(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url) as client:
        assert client.get("/hub/static/labspace.css").status_code == 200
        assert "EventSource" in client.get("/hub/static/progress.js").text


def test_logged_in_home_lists_templates_and_the_form(people: dict[str, Person]) -> None:
    with browse(people["alice"]) as alice:
        page = alice.get("/hub/")
    assert page.status_code == 200
    assert "My workspaces" in page.text and "alice" in page.text
    assert '<option value="jupyterlab"' in page.text and "JupyterLab" in page.text
    assert 'maxlength="30"' in page.text and 'pattern="(?!.*--)[a-z]' in page.text
    assert 'action="/hub/logout"' in page.text


# -- CSRF and input validation -------------------------------------------------------------------


def test_post_without_or_with_a_wrong_csrf_is_403_and_creates_nothing(
    people: dict[str, Person],
) -> None:
    name = unique("csrf")
    with browse(people["alice"]) as alice, browse(people["bob"]) as bob:
        missing = alice.post("/hub/workspaces", data={"name": name, "template": "jupyterlab"})
        wrong = alice.post("/hub/workspaces", data={"name": name, "template": "jupyterlab",
                                                    "_csrf": "forged"})
        # A valid token, but bound to another person's session.
        foreign = alice.post("/hub/workspaces", data={"name": name, "template": "jupyterlab",
                                                      "_csrf": csrf_of(bob)})
    for response in (missing, wrong, foreign):
        assert response.status_code == 403, response.text
        assert "reload the page" in response.text
    assert name not in names_of(people["alice"])


@pytest.mark.parametrize(
    ("name", "template", "status", "message"),
    [
        ("Bad_Name", "jupyterlab", 400, "invalid workspace name"),
        ("-dash", "jupyterlab", 400, "invalid workspace name"),
        ("a" * 31, "jupyterlab", 400, "invalid workspace name"),
        ("fine", "no-such-template", 400, "there is no template"),
    ],
)
def test_bad_input_rerenders_the_form_with_the_message(
    people: dict[str, Person], name: str, template: str, status: int, message: str
) -> None:
    before = names_of(people["alice"])
    with browse(people["alice"]) as alice:
        page = alice.post("/hub/workspaces",
                          data={"name": name, "template": template, "_csrf": csrf_of(alice)})
    assert page.status_code == status
    assert message in page.text
    assert 'role="alert"' in page.text
    assert f'value="{name}"' in page.text  # what was typed is kept
    assert 'action="/hub/workspaces"' in page.text
    assert names_of(people["alice"]) == before


# -- the lifecycle through the forms (one start) ---------------------------------------------------


@pytest.fixture(scope="module")
def alice_ws(people: dict[str, Person]) -> str:
    """alice creates and starts a workspace through the form, as a browser would."""
    name = unique("web")
    with browse(people["alice"]) as alice:
        created = alice.post("/hub/workspaces",
                             data={"name": name, "template": "jupyterlab",
                                   "_csrf": csrf_of(alice)})
        assert created.status_code == 303, created.text
        assert created.headers["location"] == f"/hub/workspaces/alice/{name}?launch=1"
        progress = alice.get(created.headers["location"])
        assert progress.status_code == 200
        assert f"/hub/api/workspaces/alice/{name}/events" in progress.text
        assert 'data-launch="true"' in progress.text
    with people["alice"].api() as api:
        wait_state(api, "alice", name, {"running"})
    return name


def test_created_workspace_is_listed_and_running(people: dict[str, Person], alice_ws: str) -> None:
    with browse(people["alice"]) as alice:
        home = alice.get("/hub/")
        page = alice.get(f"/hub/workspaces/alice/{alice_ws}")
    assert alice_ws in home.text
    assert f'href="/user/alice/{alice_ws}/"' in home.text  # Open
    assert "badge state-running" in home.text
    assert page.status_code == 200
    assert "badge state-running" in page.text
    assert f"/hub/workspaces/alice/{alice_ws}/stop" in page.text


def test_duplicate_name_is_409_and_keeps_the_input(
    people: dict[str, Person], alice_ws: str
) -> None:
    with browse(people["alice"]) as alice:
        page = alice.post("/hub/workspaces",
                          data={"name": alice_ws, "template": "jupyterlab",
                                "_csrf": csrf_of(alice)})
    assert page.status_code == 409
    assert "exists already" in page.text


def test_events_stream_works_with_the_session_cookie(
    people: dict[str, Person], alice_ws: str
) -> None:
    with browse(people["alice"]) as alice:
        stream = alice.get(f"/hub/api/workspaces/alice/{alice_ws}/events?follow=false")
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert '"state": "running"' in stream.text


def test_other_users_cannot_see_or_touch_a_workspace(
    people: dict[str, Person], alice_ws: str
) -> None:
    with browse(people["bob"]) as bob:
        token = csrf_of(bob)
        assert bob.get(f"/hub/workspaces/alice/{alice_ws}").status_code == 404
        assert bob.get("/hub/workspaces/alice/no-such-one").status_code == 404
        for action in ("stop", "delete", "start"):
            response = bob.post(f"/hub/workspaces/alice/{alice_ws}/{action}",
                                data={"_csrf": token})
            assert response.status_code == 404, (action, response.text)
        assert alice_ws not in bob.get("/hub/").text
    with people["alice"].api() as api:
        assert api.get(f"/hub/api/workspaces/alice/{alice_ws}").json()["state"] == "running"


def test_admin_page_shows_usage_and_may_view_any_workspace(
    people: dict[str, Person], alice_ws: str
) -> None:
    with browse(people["admin"]) as admin:
        page = admin.get("/hub/admin")
        other = admin.get(f"/hub/workspaces/alice/{alice_ws}")
    assert page.status_code == 200
    assert alice_ws in page.text
    assert re.search(r"\d+\.\d %", page.text), "no CPU figure for the running workspace"
    assert "GiB" in page.text or "MiB" in page.text
    assert other.status_code == 200


def test_stop_and_delete_through_the_forms(people: dict[str, Person], alice_ws: str) -> None:
    with browse(people["alice"]) as alice:
        token = csrf_of(alice)
        stopped = alice.post(f"/hub/workspaces/alice/{alice_ws}/stop",
                             data={"_csrf": token, "next": "/hub/"})
        assert stopped.status_code == 303 and stopped.headers["location"] == "/hub/"
        page = alice.get(f"/hub/workspaces/alice/{alice_ws}")
        assert "badge state-stopped" in page.text
        assert f"/hub/workspaces/alice/{alice_ws}/start" in page.text  # a Start button
        # An open redirect is refused: back to the hub instead.
        deleted = alice.post(f"/hub/workspaces/alice/{alice_ws}/delete",
                             data={"_csrf": token, "next": "https://evil.example/"})
        assert deleted.status_code == 303 and deleted.headers["location"] == "/hub/"
        assert alice.get(f"/hub/workspaces/alice/{alice_ws}").status_code == 404
    assert alice_ws not in names_of(people["alice"])


def test_a_failed_start_shows_the_log_lines_and_a_start_button(
    stack: Stack, people: dict[str, Person]
) -> None:
    with stack.client() as admin_api:
        spec = admin_api.get("/hub/api/templates/jupyterlab").json()
        spec.update(name="broken", display_name="Broken",
                    app={**spec["app"], "command": ["sh", "-c", "echo boom-marker; exit 3"]})
        response = admin_api.post("/hub/api/templates?replace=true", json=spec)
        assert response.status_code == 201, response.text
    name = unique("broken")
    with browse(people["bob"]) as bob:
        created = bob.post("/hub/workspaces",
                           data={"name": name, "template": "broken", "_csrf": csrf_of(bob)})
        assert created.status_code == 303
        with people["bob"].api() as api:
            wait_state(api, "bob", name, {"failed"}, timeout=60)
        page = bob.get(f"/hub/workspaces/bob/{name}")
        assert "badge state-failed" in page.text
        assert "boom-marker" in page.text
        assert '<pre class="message failed"' in page.text
        assert f"/hub/workspaces/bob/{name}/start" in page.text
        bob.post(f"/hub/workspaces/bob/{name}/delete", data={"_csrf": csrf_of(bob)})


# -- administration and tokens -------------------------------------------------------------------


def test_admin_page_is_403_for_users_and_lists_users_for_admins(
    people: dict[str, Person],
) -> None:
    with browse(people["alice"]) as alice:
        denied = alice.get("/hub/admin")
        assert alice.get("/hub/admin/templates/jupyterlab").status_code == 403
    assert denied.status_code == 403
    assert "administrators only" in denied.text
    with browse(people["admin"]) as admin:
        page = admin.get("/hub/admin")
        template = admin.get("/hub/admin/templates/jupyterlab")
        # The admin page shows the first 20 by name; the users page finds anyone.
        found = {name: admin.get("/hub/admin/users", params={"q": name}).text
                 for name in ("alice", "bob", "admin")}
    assert page.status_code == 200 and 'href="/hub/admin/users"' in page.text
    for name, listed in found.items():
        assert f'<td class="strong">{name}</td>' in listed
    assert "labspace/jupyterlab" in page.text
    assert 'href="/hub/admin/templates/jupyterlab"' in page.text
    assert template.status_code == 200 and "&#34;display_name&#34;" in template.text


def test_admin_page_warns_when_homes_allow_setuid(stack: Stack, people: dict[str, Person]) -> None:
    """The test stack's homes live wherever its temporary directory does: the page must say
    what the hub's own check says about that filesystem (nosuid,nodev or not)."""
    problem = homes_mount_problem(stack.data_dir / "homes")
    with browse(people["admin"]) as admin:
        page = admin.get("/hub/admin")
    assert page.status_code == 200
    assert ('id="homes-warning"' in page.text) == (problem is not None)
    if problem:
        assert str(escape(problem)) in page.text
        assert "nosuid,nodev" in page.text


def test_admin_adds_a_user_whose_one_time_password_works(
    stack: Stack, people: dict[str, Person],
) -> None:
    name = unique("carol")
    with browse(people["admin"]) as admin:
        token = csrf_of(admin, "/hub/admin")
        assert admin.post("/hub/admin/users", data={"name": name}).status_code == 403
        page = admin.post("/hub/admin/users", data={"name": name, "_csrf": token})
        assert page.status_code == 200, page.text
        found = re.search(r'<pre class="secret" id="new-password">([^<]+)</pre>', page.text)
        assert found, page.text
        password = found.group(1)
        assert admin.get("/hub/admin").text.count(password) == 0  # shown once
        again = admin.post("/hub/admin/users", data={"name": name, "_csrf": token})
        assert again.status_code == 409 and "exists already" in again.text
        bad = admin.post("/hub/admin/users", data={"name": "Nope!", "_csrf": token})
        assert bad.status_code == 400 and "invalid user name" in bad.text

    with httpx.Client(base_url=stack.url, headers=HTML) as browser:
        login = log_in(browser, name, password)
        assert login.status_code == 303, login.text
        assert browser.get("/hub/").status_code == 200

        with browse(people["admin"]) as admin:
            token = csrf_of(admin, "/hub/admin")
            disabled = admin.post(f"/hub/admin/users/{name}/disable", data={"_csrf": token})
            assert disabled.status_code == 303
            listed = admin.get("/hub/admin/users", params={"q": name}).text
            assert "state-failed\">disabled" in listed
        # Disabling ends the session.
        assert browser.get("/hub/").status_code in (302, 303)
        with browse(people["admin"]) as admin:
            token = csrf_of(admin, "/hub/admin")
            assert admin.post(f"/hub/admin/users/{name}/enable",
                              data={"_csrf": token}).status_code == 303
        assert log_in(browser, name, password).status_code == 303


def test_token_page_issues_a_working_api_token(stack: Stack, people: dict[str, Person]) -> None:
    with browse(people["bob"]) as bob:
        assert bob.get("/hub/token").status_code == 200
        page = bob.post("/hub/token", data={"note": "laptop", "_csrf": csrf_of(bob, "/hub/token")})
    assert page.status_code == 200
    found = re.search(r'<pre class="secret" id="token">([^<]+)</pre>', page.text)
    assert found, page.text
    with stack.client(found.group(1)) as api:
        assert api.get("/hub/api/me").json()["name"] == "bob"


def test_error_pages_are_html_with_a_way_back(people: dict[str, Person]) -> None:
    with browse(people["alice"]) as alice:
        page = alice.get("/hub/no-such-page")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert 'href="/hub/"' in page.text
