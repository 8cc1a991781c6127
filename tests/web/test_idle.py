"""Idle stops as the API, the pages and the audit log show them (issue 10), in-process on the
FakeRuntime; the proxy's record of use is scripted (labspace.testing.activity), the culler's
clock moved forward. Real containers and the real proxy: tests/workspaces/test_idle_stack.py.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

import httpx

from labspace.testing import FakeRuntime
from labspace.testing.activity import ScriptedActivity
from labspace.workspaces.activity import workspace_key
from tests.web.conftest import browser_as, hub_of
from tests.web.test_api_states import settle

Api = tuple[httpx.AsyncClient, FakeRuntime]
HOUR = 3600.0


async def _idle_template(client: httpx.AsyncClient, **idle: object) -> httpx.Response:
    spec = (await client.get("/hub/api/templates")).json()
    base = next(t for t in spec if t["name"] == "jupyterlab")
    return await client.post("/hub/api/templates", json={**base, "name": "idle", **idle})


async def test_templates_take_an_idle_policy_of_a_minute_or_more(admin_api: Api) -> None:
    client, _ = admin_api
    for bad in ("30s", "0m", "soon", "31d"):
        refused = await _idle_template(client, idle_stop_after=bad)
        assert refused.status_code in (400, 422), (bad, refused.text)
        assert "idle_stop_after" in refused.text
    made = await _idle_template(client, idle_stop_after="90m", idle_cpu_below=5)
    assert made.status_code == 201, made.text
    assert made.json()["idle_stop_after"] == "1h 30m"  # one way of writing it


async def test_a_workspace_shows_its_policy_and_when_it_stops(admin_api: Api) -> None:
    client, _ = admin_api
    assert (await _idle_template(client, idle_stop_after="1h")).status_code == 201
    made = await client.post("/hub/api/workspaces", json={"name": "lab", "template": "idle"})
    assert made.json()["idle_policy"]["stop_after"] == "1h"
    body = await settle(client, "lab")
    assert body["state"] == "running"
    assert body["idle_policy"] == {"stop_after": "1h", "stop_after_seconds": 3600,
                                   "cpu_below": None, "description": "after 1h without use"}
    assert body["idle_stop_at"] is None  # no proxy answers in-process: nothing is known
    hub = hub_of(client)
    activity = ScriptedActivity()
    hub.idle.activity = activity
    used = time.time() + 60  # the proxy saw it used a minute from now (after its start)
    activity.set(activity={workspace_key("ada", "lab"): used})
    body = (await client.get("/hub/api/workspaces/ada/lab")).json()
    stop_at = datetime.fromisoformat(str(body["idle_stop_at"])).timestamp()
    assert abs(stop_at - (used + HOUR)) < 1
    listed = (await client.get("/hub/api/workspaces")).json()
    assert listed[0]["idle_stop_at"] == body["idle_stop_at"]
    activity.set(tunnels={workspace_key("ada", "lab"): 1})  # an SSH session: no end in sight
    assert (await client.get("/hub/api/workspaces/ada/lab")).json()["idle_stop_at"] is None
    plain = await client.post("/hub/api/workspaces", json={"name": "plain",
                                                           "template": "jupyterlab"})
    assert plain.json()["idle_policy"] is None and plain.json()["idle_stop_at"] is None


async def test_the_workspace_page_says_how_long_is_left(admin_api: Api) -> None:
    client, _ = admin_api
    await _idle_template(client, idle_stop_after="8h", idle_cpu_below=5)
    await client.post("/hub/api/workspaces", json={"name": "lab", "template": "idle"})
    await settle(client, "lab")
    hub = hub_of(client)
    activity = ScriptedActivity()
    hub.idle.activity = activity
    # Used 48 minutes ago by the proxy's record, but it started just now: that counts.
    activity.set(activity={workspace_key("ada", "lab"): time.time() - 48 * 60})
    browser = await browser_as(client, "ada")
    async with browser:
        page = (await browser.get("/hub/workspaces/ada/lab")).text
        assert "Stops after 8h without use, unless its CPU use is above 5%" in page
        assert re.search(r"<b>(7h 59m|8h 0m)</b> left, at \d{4}-\d\d-\d\d \d\d:\d\d UTC", page)
        assert "stopping keeps your files" in page
        activity.set(tunnels={workspace_key("ada", "lab"): 2})
        page = (await browser.get("/hub/workspaces/ada/lab")).text
        assert "kept running while your SSH session or tunnel is open" in page


async def test_a_culled_workspace_is_in_the_audit_log_and_its_message(admin_api: Api) -> None:
    client, _ = admin_api
    await _idle_template(client, idle_stop_after="1h")
    await client.post("/hub/api/workspaces", json={"name": "lab", "template": "idle"})
    await settle(client, "lab")
    hub = hub_of(client)
    hub.idle.activity = ScriptedActivity()
    hub.idle.clock = lambda: time.time() + 3 * HOUR
    assert await hub.idle.check() == ["ada/lab"]
    body = (await client.get("/hub/api/workspaces/ada/lab")).json()
    assert body["state"] == "stopped" and body["message"].startswith("stopped: idle 3h 0m")
    (entry,) = (await client.get("/hub/api/audit",
                                 params={"action": "workspace.culled"})).json()
    assert entry["target"] == "ada/lab" and entry["detail"]["reason"].startswith("idle 3h")
    page = (await client.get("/hub/admin/audit", params={"action": "workspace.culled"},
                             headers={"Accept": "text/html"})).text
    assert "workspace.culled" in page and "ada/lab" in page
