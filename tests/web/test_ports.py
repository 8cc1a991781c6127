"""Sharing ports in the API, in-process on the FakeRuntime: who may set a level, which ports
and levels are refused and why, and the template's cap (lowering it lowers the shares made).
Real containers and the proxy: tests/sharing/test_shared_ports.py."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from labspace.testing import FakeRuntime
from tests.web.conftest import client_as, hub_of

Api = tuple[httpx.AsyncClient, FakeRuntime]
PORTS = "/hub/api/workspaces/ada/demo/ports"


async def _workspace(client: httpx.AsyncClient) -> None:
    made = await client.post("/hub/api/workspaces", json={"name": "demo", "template": "jupyterlab"})
    assert made.status_code == 201, made.text


async def _cap(client: httpx.AsyncClient, level: str) -> None:
    """As an administrator would: the jupyterlab template with another port_sharing."""
    hub = hub_of(client)
    spec = await hub.templates.get("jupyterlab")
    await hub.save_template(spec.model_copy(update={"port_sharing": level}), replace=True)


async def test_the_owner_shares_and_unshares_a_port(apps_api: Api) -> None:
    client, _ = apps_api
    await _workspace(client)
    shared = await client.put(f"{PORTS}/8050", json={"level": "authenticated"})
    assert shared.status_code == 200, shared.text
    assert shared.json()["url"] == "http://8050-demo--ada.apps.lab.localhost:8000/"
    listed = (await client.get(PORTS)).json()
    assert [(p["port"], p["level"], p["listening"]) for p in listed["ports"]] == [
        (8050, "authenticated", False)]
    assert listed["max_level"] == "authenticated" and not listed["detected"]
    assert "not running" in listed["detail"]
    assert (await client.delete(f"{PORTS}/8050")).status_code == 204
    assert (await client.get(PORTS)).json()["ports"] == []


async def test_two_people_sharing_one_port_at_once_both_succeed(apps_api: Api) -> None:
    client, _ = apps_api
    await _workspace(client)
    answers = await asyncio.gather(*(client.put(f"{PORTS}/{9000 + i % 2}",
                                                json={"level": "authenticated"})
                                     for i in range(6)))
    assert [a.status_code for a in answers] == [200] * 6
    assert [p["port"] for p in (await client.get(PORTS)).json()["ports"]] == [9000, 9001]


@pytest.mark.parametrize(("port", "body", "status", "says"), [
    (0, {"level": "public"}, 422, ""),
    (65536, {"level": "public"}, 422, ""),
    ("8050x", {"level": "public"}, 422, ""),
    (8050, {"level": "world"}, 422, ""),
    (8050, {"level": "public", "extra": 1}, 422, ""),
    (8888, {"level": "authenticated"}, 400, "own app"),
    (22, {"level": "authenticated"}, 400, "labspace ssh"),
    (8050, {"level": "public"}, 403, "at most at the level 'authenticated'"),
])
async def test_bad_ports_and_levels_are_refused_with_a_reason(
        apps_api: Api, port: object, body: dict[str, object], status: int, says: str) -> None:
    client, _ = apps_api
    await _workspace(client)
    refused = await client.put(f"{PORTS}/{port}", json=body)
    assert refused.status_code == status, refused.text
    assert says in refused.text
    assert (await client.get(PORTS)).json()["ports"] == []  # nothing half-recorded


async def test_another_user_can_neither_see_nor_share_the_ports(apps_api: Api) -> None:
    client, _ = apps_api
    await _workspace(client)
    await client.put(f"{PORTS}/8050", json={"level": "authenticated"})
    async with await client_as(client, "eve") as eve:
        assert (await eve.get(PORTS)).status_code == 404
        assert (await eve.put(f"{PORTS}/8050", json={"level": "private"})).status_code == 404
        assert (await eve.delete(f"{PORTS}/8050")).status_code == 404
    assert (await client.get(PORTS)).json()["ports"][0]["level"] == "authenticated"


async def test_without_apps_domain_ports_are_only_forwarded(api: Api) -> None:
    client, _ = api
    await _workspace(client)
    refused = await client.put(f"{PORTS}/8050", json={"level": "authenticated"})
    assert refused.status_code == 400 and "apps_domain" in refused.text
    # Making a port private needs no host, and is never refused.
    assert (await client.put(f"{PORTS}/8050", json={"level": "private"})).status_code == 200


async def test_lowering_the_templates_cap_lowers_the_shares_made_under_it(apps_api: Api) -> None:
    client, _ = apps_api
    await _workspace(client)
    await _cap(client, "public")
    assert (await client.put(f"{PORTS}/8050", json={"level": "public"})).status_code == 200
    assert (await client.put(f"{PORTS}/9000", json={"level": "authenticated"})).status_code == 200
    await _cap(client, "authenticated")
    levels = {p["port"]: p["level"] for p in (await client.get(PORTS)).json()["ports"]}
    assert levels == {8050: "authenticated", 9000: "authenticated"}
    await _cap(client, "private")
    assert (await client.get(PORTS)).json()["ports"] == []
    refused = await client.put(f"{PORTS}/8050", json={"level": "authenticated"})
    assert refused.status_code == 403 and "'private'" in refused.text


async def test_long_names_get_no_host_and_say_why(apps_api: Api) -> None:
    client, _ = apps_api
    owner, name = "o" * 30, "w" * 30  # "8050-www...--ooo..." would be 67 characters
    async with await client_as(client, owner) as them:
        made = await them.post("/hub/api/workspaces", json={"name": name,
                                                            "template": "jupyterlab"})
        assert made.status_code == 201, made.text
        refused = await them.put(f"/hub/api/workspaces/{owner}/{name}/ports/8050",
                                 json={"level": "authenticated"})
    assert refused.status_code == 400 and "too long" in refused.text


async def test_the_hub_hands_a_ticket_for_a_shared_port_only_to_whom_it_admits(
        apps_api: Api) -> None:
    client, _ = apps_api
    await _workspace(client)
    opening = "/hub/shared/ada/demo/8050"
    async with await client_as(client, "eve") as eve:
        for path in (opening, "/hub/shared/ada/nothere/8050"):  # private, or no such thing
            refused = await eve.get(path, params={"next": "/x"})
            assert refused.status_code == 403 and "ticket" not in refused.headers.get(
                "location", "")
        assert (await client.put(f"{PORTS}/8050", json={"level": "authenticated"})
                ).status_code == 200
        for target, kept in (("/dash?x=1", "/dash?x=1"), ("//evil.example/", "/"),
                             ("https://evil.example/", "/"), ("/" + "a" * 3000, "/")):
            sent = await eve.get(opening, params={"next": target})
            assert sent.status_code == 303
            location = httpx.URL(sent.headers["location"])
            assert location.host == "8050-demo--ada.apps.lab.localhost"
            assert location.path == "/_labspace/auth" and location.params["ticket"]
            assert location.params["next"] == kept
    async with httpx.AsyncClient(transport=client._transport, base_url="http://hub") as nobody:
        sent = await nobody.get(opening, params={"next": "/x"})
        assert sent.status_code == 303 and sent.headers["location"].startswith("/hub/login")
