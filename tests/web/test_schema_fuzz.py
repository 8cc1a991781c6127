"""Fuzz the REST API from its own OpenAPI document: no request may get a 5xx.

Schemathesis turns every operation of /hub/api/openapi.json into valid and invalid requests
(huge numbers, odd strings, wrong types), sent through the proxy to the session's real hub.
A 5xx means input reached code that did not expect it; the answer must be a 4xx in the
API's ``{"error": ...}`` shape instead.

Bounded and reproducible: a few derandomized examples per operation and mode, no example
database, no shrinking (every failure is collected and reported at once, with a curl command).

The stack is shared with the other tests, so the fuzz acts as users of its own, never touches
alice, bob or admin, never starts containers, and deletes the workspaces it created.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode

from labspace.testing import Stack
from tests.conftest import Person

pytestmark = pytest.mark.docker

EXAMPLES = 15  # per operation, caller and mode: about 1,100 requests, 20-30 s on 2 cores
# The session's people: other tests rely on their passwords, tokens and workspaces.
PROTECTED = frozenset({"alice", "bob", "admin"})
# Revoking the token a request is made with is legitimate: those operations get a fresh one.
REVOKES_TOKENS = frozenset({"DELETE /hub/api/tokens/current",
                            "DELETE /hub/api/tokens/{token_id}"})
# Streams that never end by themselves (the load page's feed): their status and first event
# are read, then the stream is closed, as a browser leaving the page does.
ENDLESS = frozenset({"GET /hub/api/load/events"})


@dataclass
class Fuzzers:
    """The fuzz's own accounts: an admin, an ordinary user (owner of a stopped workspace),
    one whose tokens may be revoked and a victim for disable, password and token requests."""

    stack: Stack
    # One connection for every request, as a client would (the proxy limits how many idle
    # connections an address may hold before they carry credentials).
    session: requests.Session = field(default_factory=requests.Session)
    tokens: dict[str, str] = field(default_factory=dict)
    admin: str = "fuzz-admin"
    user: str = "fuzz-user"
    revoker: str = "fuzz-revoker"
    victim: str = "fuzz-victim"
    workspace: str = "fuzz-ws"

    def token(self, name: str) -> str:
        response = self.session.post(
            f"{self.stack.url}/hub/api/users/{name}/tokens", json={"note": "fuzz"},
            headers={"Authorization": f"Bearer {self.stack.admin_token}"}, timeout=30)
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    def auth(self, name: str, label: str) -> dict[str, str]:
        if label in REVOKES_TOKENS:
            return {"Authorization": f"Bearer {self.token(self.revoker)}"}
        if name not in self.tokens:
            self.tokens[name] = self.token(name)
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@pytest.fixture(scope="module")
def fuzzers(stack: Stack, people: dict[str, Person]) -> Iterator[Fuzzers]:
    made = Fuzzers(stack)
    with stack.client() as api:
        before = {(w["owner"], w["name"]) for w in
                  api.get("/hub/api/workspaces", params={"all": "true"}).json()}
        for name in (made.admin, made.user, made.revoker, made.victim):
            created = api.post("/hub/api/users", json={"name": name,
                                                       "admin": name == made.admin})
            assert created.status_code == 201, created.text
        created = api.post("/hub/api/workspaces", json={
            "name": made.workspace, "template": "jupyterlab", "owner": made.user,
            "start": False})
        assert created.status_code == 201, created.text
    yield made
    made.session.close()
    # Workspaces the fuzz created (none was started): delete them, whoever owns them.
    with stack.client() as api:
        after = api.get("/hub/api/workspaces", params={"all": "true"}).json()
        for workspace in after:
            if (workspace["owner"], workspace["name"]) not in before:
                gone = api.delete(f"/hub/api/workspaces/{workspace['owner']}/{workspace['name']}")
                assert gone.status_code == 204, gone.text


def prepare(case: Case, fuzzers: Fuzzers, known: bool) -> bool:
    """Aim the case at the fuzz's own objects when ``known`` (existing ones reach the
    handlers' deeper paths); False when it must not be sent."""
    path = case.path_parameters if case.path_parameters is not None else {}
    operation = case.operation
    if known and operation.path.startswith("/hub/api/users/{name}"):
        path["name"] = fuzzers.victim
    # Starting takes seconds and is the lifecycle tests' job; deleting would leave the other
    # operations nothing to work on. Both still get every generated (unknown) name.
    if known and operation.path.startswith("/hub/api/workspaces/{owner}/{name}") and not (
            operation.path.endswith("/start") or operation.method.upper() == "DELETE"):
        path.update(owner=fuzzers.user, name=fuzzers.workspace)
    if PROTECTED & {value for value in path.values() if isinstance(value, str)}:
        return False
    if operation.label == "POST /hub/api/workspaces" and isinstance(case.body, dict):
        case.body["start"] = False  # never a container: see above
        if known:
            case.body["template"] = "jupyterlab"  # an existing template: records get made
        if str(case.body.get("owner")) in PROTECTED:
            return False
    return True


def _is_error_body(body: str) -> bool:
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and isinstance(parsed.get("error"), str)


def server_errors(fuzzers: Fuzzers, caller: str, mode: GenerationMode, operation: Any
                  ) -> list[str]:
    """Send the operation's generated cases as ``caller``; describe each bad answer."""
    found: list[str] = []
    label = operation.label

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), known=st.booleans())
    def run(case: Case, known: bool) -> None:
        if not prepare(case, fuzzers, known):
            return
        headers = fuzzers.auth(caller, label)
        try:
            if label in ENDLESS:
                kwargs = case.as_transport_kwargs(base_url=fuzzers.stack.url, headers=headers)
                with fuzzers.session.request(**kwargs, timeout=30, stream=True) as stream:
                    status = stream.status_code
                    body = next(stream.iter_content(4096), b"").decode(errors="replace")
            else:
                response = case.call(base_url=fuzzers.stack.url, session=fuzzers.session,
                                     headers=headers, timeout=30)
                status, body = response.status_code, response.content.decode(errors="replace")
        except requests.RequestException as error:  # e.g. a stream that broke off
            status, body = 0, str(error)
        if status == 0:
            problem = "no complete answer"
        elif status >= 500:
            problem = "a server error"
        elif status == 422 and not _is_error_body(body):
            problem = 'a 422 without the {"error": ...} body'
        else:
            return
        found.append(f"{label} as {caller} ({mode.value}) got {problem}: {status} {body[:300]}"
                     f"\n    {case.as_curl_command(base_url=fuzzers.stack.url)}")

    run()
    return found


def modes(operation: Any) -> list[GenerationMode]:
    """Valid requests, and invalid ones where some input can be invalid (any text is a valid
    plain string parameter: Hypothesis would search for an invalid one in vain)."""
    def constrained(schema: dict[str, Any]) -> bool:
        return schema.get("type") != "string" or bool(set(schema) - {"type", "title"})

    if operation.body or any(constrained(parameter.definition.get("schema", {}))
                             for parameter in operation.iter_parameters()):
        return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE]


def test_no_request_gets_a_server_error(
    stack: Stack, people: dict[str, Person], fuzzers: Fuzzers
) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.url}/hub/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20, [op.label for op in operations]
    hub_log = stack.root / "hub.log"
    seen = hub_log.stat().st_size
    started = time.monotonic()
    failures: list[str] = []
    for operation in operations:
        for caller in (fuzzers.admin, fuzzers.user):
            for mode in modes(operation):
                failures += server_errors(fuzzers, caller, mode, operation)
    assert not failures, "\n".join(failures)
    # An error inside a streamed answer (events) cannot change its status any more: the hub
    # logs it instead.
    with hub_log.open("rb") as log:
        log.seek(seen)
        written = log.read().decode(errors="replace")
    assert "Traceback" not in written, written[max(0, written.index("Traceback") - 2000):]
    assert time.monotonic() - started < 100, "the fuzz must stay well under 2 minutes"
    # Nothing it did locked the session's people out.
    for name, person in people.items():
        with person.api() as api:
            me = api.get("/hub/api/me").json()
        assert me["name"] == name and not me["disabled"], me
