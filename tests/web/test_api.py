"""Bad input to the REST API: a clear 4xx error, and nothing half-created."""

from __future__ import annotations

import re

import httpx
import pytest

from labspace.testing import Stack
from tests.conftest import Person


def workspace_names(api: httpx.Client) -> set[str]:
    return {ws["name"] for ws in api.get("/hub/api/workspaces").json()}


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"name": "Bad Name", "template": "jupyterlab"}, 422, "name"),
        ({"name": "x" * 31, "template": "jupyterlab"}, 422, "name"),
        ({"name": "-dash", "template": "jupyterlab"}, 422, "name"),
        ({"name": "fine", "template": "no-such-template"}, 404, "no template"),
        ({"name": "fine", "template": "jupyterlab", "surprise": 1}, 422, "surprise"),
        ({"template": "jupyterlab"}, 422, "name"),
    ],
)
def test_bad_workspace_requests(people: dict[str, Person], body: dict[str, object],
                                status: int, fragment: str) -> None:
    with people["alice"].api() as api:
        before = workspace_names(api)
        response = api.post("/hub/api/workspaces", json=body)
        assert response.status_code == status, response.text
        assert fragment in response.json()["error"]
        assert workspace_names(api) == before


def test_malformed_json_and_duplicates(people: dict[str, Person]) -> None:
    with people["bob"].api() as api:
        broken = api.post("/hub/api/workspaces", content=b"{not json",
                          headers={"Content-Type": "application/json"})
        assert broken.status_code == 422 and "error" in broken.json()
        first = api.post("/hub/api/workspaces",
                         json={"name": "dup", "template": "jupyterlab", "start": False})
        assert first.status_code == 201
        again = api.post("/hub/api/workspaces",
                         json={"name": "dup", "template": "jupyterlab", "start": False})
        assert again.status_code == 409 and "exists already" in again.json()["error"]
        assert api.delete("/hub/api/workspaces/bob/dup").status_code == 204
        assert api.get("/hub/api/workspaces/bob/nope").status_code == 404


def test_bad_users_and_templates(people: dict[str, Person]) -> None:
    with people["admin"].api() as api:
        users = {u["name"] for u in api.get("/hub/api/users").json()}
        for body in ({"name": "UPPER"}, {"name": "root"}, {"name": "ok-name", "password": "1"}):
            response = api.post("/hub/api/users", json=body)
            assert 400 <= response.status_code < 500, response.text
            assert response.json()["error"]
        named = api.post("/hub/api/users", json={"name": "Bad_Name"}).json()["error"]
        assert "invalid user name" in named and "lowercase letters" in named
        assert {u["name"] for u in api.get("/hub/api/users").json()} == users
        assert api.post("/hub/api/users", json={"name": "alice"}).status_code == 409
        templates = api.get("/hub/api/templates").json()
        bad = api.post("/hub/api/templates", json={"name": "t1", "image": ""})
        assert bad.status_code == 400 and "display_name" in bad.json()["error"]
        assert api.get("/hub/api/templates").json() == templates
        assert api.post("/hub/api/users/admin/disable").status_code == 403


def test_authentication_errors(stack: Stack) -> None:
    assert httpx.get(f"{stack.url}/hub/api/me").status_code == 401
    bad = httpx.get(f"{stack.url}/hub/api/me", headers={"Authorization": "Bearer lsp_nope"})
    assert bad.status_code == 401 and bad.json()["error"]


def test_openapi_document(stack: Stack) -> None:
    document = httpx.get(f"{stack.url}/hub/api/openapi.json").json()
    assert "/hub/api/workspaces" in document["paths"]
    assert "/hub/api/workspaces/{owner}/{name}/events" in document["paths"]


def test_api_docs_load_nothing_from_another_host(stack: Stack) -> None:
    """An offline lab reaches no CDN: the Swagger UI page and its assets come from the hub."""
    with httpx.Client(base_url=stack.url) as client:
        page = client.get("/hub/api/docs")
        assert page.status_code == 200 and "SwaggerUIBundle" in page.text
        assert not re.search(r"(https?:)?//", page.text), "the page names another host"
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert len(assets) == 3  # the script, the style sheet and the icon
        assert "url: '/hub/api/openapi.json'" in page.text
        for url in [*assets, "/hub/api/openapi.json"]:
            assert url.startswith("/hub/api/"), url
            answer = client.get(url)
            assert answer.status_code == 200, url
            assert answer.content, url


def test_disabling_a_user_stops_their_workspaces_and_logs_them_out(
    stack: Stack, people: dict[str, Person]
) -> None:
    with stack.client() as admin:
        admin.post("/hub/api/users", json={"name": "leaver", "password": "exit-interview-42"})
        token = admin.post("/hub/api/users/leaver/tokens", json={}).json()["token"]
        with stack.client(token) as leaver:
            created = leaver.post("/hub/api/workspaces",
                                  json={"name": "w", "template": "jupyterlab", "start": False})
            assert created.status_code == 201
            assert admin.post("/hub/api/users/leaver/disable").json()["disabled"] is True
            assert leaver.get("/hub/api/me").status_code == 401
        assert admin.get("/hub/api/workspaces/leaver/w").json()["state"] == "stopped"


def test_tokens_are_listed_without_values_and_revocable(stack: Stack,
                                                        people: dict[str, Person]) -> None:
    bob = people["bob"]
    with stack.client() as admin:
        # A note of its own: other tests give bob "laptop" tokens too.
        spare = admin.post("/hub/api/users/bob/tokens",
                           json={"note": "spare-laptop"}).json()["token"]
    with bob.api() as api:
        listed = api.get("/hub/api/tokens").json()
        assert spare not in str(listed) and bob.token not in str(listed)
        laptop = next(t for t in listed if t["note"] == "spare-laptop")
        assert laptop["kind"] == "api" and laptop["current"] is False
        assert any(t["current"] for t in listed)
        assert api.delete(f"/hub/api/tokens/{laptop['id']}").status_code == 204
        assert api.delete(f"/hub/api/tokens/{laptop['id']}").status_code == 404
    with stack.client(spare) as revoked:
        assert revoked.get("/hub/api/me").status_code == 401
    with stack.client() as admin:  # nobody revokes someone else's token by id
        theirs = next(t for t in admin.get("/hub/api/tokens").json() if t["current"])
    with people["alice"].api() as api:
        assert api.delete(f"/hub/api/tokens/{theirs['id']}").status_code == 404
    with stack.client() as admin:
        assert admin.get("/hub/api/me").status_code == 200
    with stack.client() as admin:
        throwaway = admin.post("/hub/api/users/bob/tokens", json={}).json()["token"]
    with stack.client(throwaway) as api:
        assert api.delete("/hub/api/tokens/current").status_code == 204
        assert api.get("/hub/api/me").status_code == 401


@pytest.mark.parametrize("token_id", ["99999999999999999999999", "2147483648", "0"])
def test_token_ids_out_of_range_are_422(people: dict[str, Person], token_id: str) -> None:
    """Ids are 32-bit on PostgreSQL and 64-bit on SQLite: a larger one must never reach a
    query (it used to answer 500)."""
    with people["alice"].api() as api:
        response = api.delete(f"/hub/api/tokens/{token_id}")
        assert response.status_code == 422, response.text
        assert "token_id" in response.json()["error"]
        assert api.get("/hub/api/me").status_code == 200


def test_event_cursor_out_of_range_is_422(people: dict[str, Person]) -> None:
    """A huge ?after= used to fail inside the stream, after the 200 was sent (a traceback in
    the hub's log and a cut-off answer)."""
    with people["alice"].api() as api:
        created = api.post("/hub/api/workspaces",
                           json={"name": "cursor", "template": "jupyterlab", "start": False})
        assert created.status_code == 201, created.text
        try:
            events = "/hub/api/workspaces/alice/cursor/events"
            huge = api.get(events, params={"after": 2**70, "follow": "false"})
            assert huge.status_code == 422, huge.text
            assert "after" in huge.json()["error"]
            assert api.get(events, params={"after": 2**31 - 1, "follow": "false"}).text == ""
        finally:
            api.delete("/hub/api/workspaces/alice/cursor")
