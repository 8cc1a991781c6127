"""Workshops through the API and the join link, on the in-process hub (FakeRuntime): accounts,
cards, the sheet, one-click login, reset, expiry and extension, deletion, who may do what."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from labspace.errors import NotAuthenticated
from labspace.hub import Hub
from labspace.identity.authenticator import login
from labspace.state.models import Workshop
from labspace.testing import FakeRuntime
from tests.web.conftest import client_as, hub_of

ORIGIN = {"Origin": "http://hub"}


def token_of(url: str) -> str:
    assert "/hub/join#" in url, url
    return url.split("#", 1)[1]


async def join(api: httpx.AsyncClient, token: str, **headers: str) -> httpx.Response:
    """A browser on the join page posting the link's token (no API token: a new visitor)."""
    async with httpx.AsyncClient(transport=api._transport, base_url="http://hub") as browser:
        return await browser.post("/hub/join", data={"token": token},
                                  headers={**ORIGIN, **headers})


async def disabled(hub: Hub, cards: list[dict[str, str]]) -> list[bool]:
    return [(await hub.users.get(card["user"])).disabled for card in cards]


async def make(api: httpx.AsyncClient, name: str = "genomics", seats: int = 3,
               **extra: object) -> dict[str, object]:
    created = await api.post("/hub/api/workshops", json={"name": name, "seats": seats,
                                                          "expires": "2d", **extra})
    assert created.status_code == 201, created.text
    body: dict[str, object] = created.json()
    return body


async def test_a_workshop_makes_its_accounts_and_cards(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, _ = admin_api
    body = await make(api, seats=60, template="jupyterlab")
    assert body["seats"] == 60 and body["instructors"] == ["ada"]
    cards = (await api.get("/hub/api/workshops/genomics/cards")).json()
    assert [card["user"] for card in cards] == [f"genomics-{n:02d}" for n in range(1, 61)]
    assert len({card["password"] for card in cards}) == 60
    assert len({token_of(card["login_url"]) for card in cards}) == 60
    hub = hub_of(api)
    uids = sorted([(await hub.users.get(card["user"])).uid for card in cards])
    assert uids == list(range(uids[0], uids[0] + 60))  # fresh, consecutive, none reused
    user = await login(hub.authenticator, hub.users, cards[6]["user"], cards[6]["password"])
    assert user.name == "genomics-07" and user.source == "workshop"
    with pytest.raises(NotAuthenticated):
        await login(hub.authenticator, hub.users, "genomics-07", cards[7]["password"])
    listed = (await api.get("/hub/api/workshops/genomics/sheet.csv"))
    assert listed.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(listed.text)))
    assert [(row["user"], row["password"]) for row in rows] == [
        (card["user"], card["password"]) for card in cards]


@pytest.mark.skipif(not (shutil.which("pdftoppm") and shutil.which("zbarimg")),
                    reason="needs poppler-utils and zbar-tools (scripts/ensure-test-deps.sh)")
async def test_the_printed_card_logs_its_attendee_in(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime], tmp_path: Path) -> None:
    """Scan the QR code of the first card of the PDF, follow it: logged in as that
    attendee and sent to the workshop's workspace, which is starting."""
    api, _ = admin_api
    await make(api, seats=60, template="jupyterlab")
    pdf = await api.get("/hub/api/workshops/genomics/sheet.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    (tmp_path / "sheet.pdf").write_bytes(pdf.content)
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1",
                    str(tmp_path / "sheet.pdf"), str(tmp_path / "page")], check=True)
    (png,) = tmp_path.glob("page*.png")
    scanned = subprocess.run(["zbarimg", "-q", "--raw", str(png)], capture_output=True,
                             text=True, check=True).stdout.split()
    cards = (await api.get("/hub/api/workshops/genomics/cards")).json()
    first = cards[0]["login_url"]
    assert first in scanned
    joined = await join(api, token_of(first))
    assert joined.status_code == 303, joined.text
    assert joined.headers["location"] == "/hub/workspaces/genomics-01/jupyterlab?launch=1"
    assert "labspace-session" in joined.headers.get("set-cookie", "")
    record = await hub_of(api).store.get("genomics-01", "jupyterlab")
    assert record.state in ("pending", "starting", "running")


async def test_the_join_link_refuses_forgeries(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, _ = admin_api
    await make(api)
    token = token_of((await api.get("/hub/api/workshops/genomics/cards")).json()[0]["login_url"])
    assert (await join(api, "x" * 32)).status_code == 403  # a guess
    assert (await join(api, "")).status_code == 403
    # Posted from another site: a link's login must not be forced on a visitor's browser.
    other = await join(api, token, Origin="http://evil.example")
    assert other.status_code == 403 and "set-cookie" not in other.headers
    page = await api.get("/hub/join")
    assert page.headers["referrer-policy"] == "same-origin"
    assert 'name="token" value=""' in page.text  # the token is never rendered by the server
    # Anybody may post here without a credential, so the body is bounded before it is read.
    async with httpx.AsyncClient(transport=api._transport, base_url="http://hub") as stranger:
        huge = await stranger.post("/hub/join", content=b"token=" + b"a" * 4096,
                                   headers={**ORIGIN, "Content-Type":
                                            "application/x-www-form-urlencoded"})
        assert huge.status_code == 413
    assert (await join(api, "a" * 101)).status_code == 422  # no token is that long


async def test_reset_ends_the_old_credentials(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, _ = admin_api
    await make(api)
    hub = hub_of(api)
    old = (await api.get("/hub/api/workshops/genomics/cards")).json()[1]
    assert (await join(api, token_of(old["login_url"]))).status_code == 303
    new = await api.post("/hub/api/workshops/genomics/attendees/genomics-02/reset")
    assert new.status_code == 200, new.text
    fresh = new.json()
    assert fresh["password"] != old["password"]
    assert (await join(api, token_of(old["login_url"]))).status_code == 403
    with pytest.raises(NotAuthenticated):
        await login(hub.authenticator, hub.users, "genomics-02", old["password"])
    assert (await login(hub.authenticator, hub.users, "genomics-02", fresh["password"]))
    assert (await join(api, token_of(fresh["login_url"]))).status_code == 303
    missing = await api.post("/hub/api/workshops/genomics/attendees/ada/reset")
    assert missing.status_code == 404  # only the workshop's own attendees


async def test_expiry_disables_and_stops_and_extension_enables(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, _ = admin_api
    await make(api, template="jupyterlab")
    hub = hub_of(api)
    cards = (await api.get("/hub/api/workshops/genomics/cards")).json()
    assert (await join(api, token_of(cards[0]["login_url"]))).status_code == 303
    await hub.manager.wait_settled((await hub.store.get("genomics-01", "jupyterlab")).id)
    assert (await hub.store.get("genomics-01", "jupyterlab")).state == "running"
    async with hub.db.session() as session:
        await session.execute(update(Workshop).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert await hub.expire_workshops() == ["genomics"]
    assert await disabled(hub, cards) == [True] * len(cards)
    assert (await hub.store.get("genomics-01", "jupyterlab")).state == "stopped"
    assert (await join(api, token_of(cards[0]["login_url"]))).status_code == 403
    assert (await api.get("/hub/api/workshops/genomics")).json()["expired"] is True
    assert await hub.expire_workshops() == []  # once
    extended = await api.post("/hub/api/workshops/genomics/extend", json={"expires": "1d"})
    assert extended.status_code == 200 and extended.json()["expired"] is False
    assert await disabled(hub, cards) == [False] * len(cards)
    assert (await join(api, token_of(cards[0]["login_url"]))).status_code == 303
    past = await api.post("/hub/api/workshops/genomics/extend", json={"expires": "2020-01-01"})
    assert past.status_code == 400 and "past" in past.text


async def test_deleting_a_workshop_removes_its_accounts(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, runtime = admin_api
    await make(api, template="jupyterlab")
    hub = hub_of(api)
    cards = (await api.get("/hub/api/workshops/genomics/cards")).json()
    assert (await join(api, token_of(cards[0]["login_url"]))).status_code == 303
    await hub.manager.wait_settled((await hub.store.get("genomics-01", "jupyterlab")).id)
    home = hub.settings.homes / "genomics-01"
    assert home.is_dir()
    wrong = await api.delete("/hub/api/workshops/genomics",
                             params={"delete_homes": "true", "confirm": "genomic"})
    assert wrong.status_code == 400
    assert (await hub.users.get("genomics-01")).name == "genomics-01"  # nothing deleted
    gone = await api.delete("/hub/api/workshops/genomics",
                            params={"delete_homes": "true", "confirm": "genomics"})
    assert gone.status_code == 204, gone.text
    assert not home.exists()
    assert [u.name for u in await hub.users.list()] == ["ada"]
    assert not runtime.containers  # the attendees' containers went with them
    assert (await api.get("/hub/api/workshops/genomics")).status_code == 404
    assert (await join(api, token_of(cards[0]["login_url"]))).status_code == 403


async def test_who_may_run_workshops(api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    member, _ = api
    hub = hub_of(member)
    refused = await member.post("/hub/api/workshops",
                                json={"name": "w", "seats": 1, "expires": "1d"})
    assert refused.status_code == 403
    assert (await member.get("/hub/api/workshops")).status_code == 403
    teacher = await client_as(member, "teacher")
    await hub.users.update("teacher", role="instructor")
    other = await client_as(member, "other")
    await hub.users.update("other", role="instructor")
    boss = await client_as(member, "boss", admin=True)
    async with teacher, other, boss:
        await make(teacher, "class-a", seats=2)
        assert (await other.get("/hub/api/workshops")).json() == []
        assert (await other.get("/hub/api/workshops/class-a/cards")).status_code == 403
        for kind in ("html", "pdf", "csv"):  # the sheets carry the same passwords
            sheet = await other.get(f"/hub/api/workshops/class-a/sheet.{kind}")
            assert sheet.status_code == 403, kind
        assert (await other.delete("/hub/api/workshops/class-a")).status_code == 403
        assert (await teacher.post("/hub/api/workshops/class-a/instructors",
                                   json={"name": "other"})).status_code == 403  # admins only
        added = await boss.post("/hub/api/workshops/class-a/instructors", json={"name": "other"})
        assert added.status_code == 200 and added.json()["instructors"] == ["teacher", "other"]
        assert len((await other.get("/hub/api/workshops/class-a/cards")).json()) == 2
        # An attendee is a member: no workshops of their own, one template only.
        attendee = await hub.users.get("class-a-01")
        assert not hub.is_instructor(attendee)


async def test_bad_workshops_are_refused_whole(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    api, _ = admin_api
    hub = hub_of(api)
    await hub.users.create("clash-02")
    for body, status in [
        ({"name": "clash", "seats": 3, "expires": "1d"}, 409),  # clash-02 exists
        ({"name": "x", "seats": 0, "expires": "1d"}, 422),
        ({"name": "x", "seats": 1001, "expires": "1d"}, 422),
        ({"name": "Bad Name", "seats": 1, "expires": "1d"}, 400),
        ({"name": "x", "seats": 1, "expires": "yesterday"}, 400),
        ({"name": "x", "seats": 1, "expires": "2020-01-01"}, 400),
        ({"name": "x", "seats": 1, "expires": "9999-12-31"}, 400),
        ({"name": "x", "seats": 1, "expires": "1d", "template": "nope"}, 404),
        ({"name": "a" * 28, "seats": 1, "expires": "1d"}, 400),  # a...a-01 passes 30
    ]:
        answer = await api.post("/hub/api/workshops", json=body)
        assert answer.status_code == status, (body, answer.text)
    assert [u.name for u in await hub.users.list()] == ["ada", "clash-02"]  # none half-made
    assert (await api.get("/hub/api/workshops")).json() == []


async def test_a_workshop_can_open_an_instant_app(
        admin_api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    """`--app A`: the login link opens the app's link, where the pool hands each attendee a
    running container (tests/apps); both a template and an app, or an unknown app, are
    refused before any account is made."""
    api, _ = admin_api
    added = await api.post("/hub/api/apps", json={"name": "intro", "template": "notebook-app",
                                                   "path": "lab/tree/welcome.ipynb"})
    assert added.status_code == 201, added.text
    body = await make(api, seats=2, app="intro")
    assert body["app"] == "intro" and body["template"] is None
    cards = (await api.get("/hub/api/workshops/genomics/cards")).json()
    joined = await join(api, token_of(cards[0]["login_url"]))
    assert joined.status_code == 303 and joined.headers["location"] == "/apps/intro"
    both = await api.post("/hub/api/workshops", json={
        "name": "both", "seats": 2, "expires": "2d", "template": "jupyterlab", "app": "intro"})
    unknown = await api.post("/hub/api/workshops", json={
        "name": "ghost", "seats": 2, "expires": "2d", "app": "nope"})
    assert (both.status_code, unknown.status_code) == (400, 404)
    assert "not both" in both.json()["error"] and "nope" in unknown.json()["error"]
    users = {u["name"] for u in (await api.get("/hub/api/users?limit=500")).json()}
    assert not any(name.startswith(("both-", "ghost-")) for name in users)
