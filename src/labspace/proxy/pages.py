"""The proxy's own small answers: error pages for browsers, JSON for everything else."""

from __future__ import annotations

import json
from html import escape
from urllib.parse import quote

from aiohttp import web

# The hub's stylesheet gives these pages the hub's look; the inline rules keep them readable
# while the hub (which serves that stylesheet) is down.
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">{head}
<title>{title} · labspace</title>
<style>body{{font-family:system-ui,sans-serif;margin:0;color:#1d2330}}
header.top{{padding:.8rem 1.5rem;background:#172036}}header.top a{{color:#fff;
text-decoration:none;font-weight:700}}main{{max-width:40rem;margin:3rem auto;padding:0 1rem}}
h1{{font-size:1.4rem}}a.button.primary{{display:inline-block;padding:.5rem 1rem;background:#2563eb;
color:#fff;border-radius:.3rem;text-decoration:none}}</style>
<link rel="stylesheet" href="{hub}/hub/static/labspace.css">
</head><body>
<header class="top"><a class="brand" href="{hub}/hub/">
<span class="logo" aria-hidden="true">◆</span> labspace</a></header>
<main><section class="card narrow"><h1>{title}</h1>{body}</section></main></body></html>
"""

_NO_STORE = {"Cache-Control": "no-store"}
# On a workspace's own host, links to the hub need its origin: the proxy sets it here.
HUB_ORIGIN: web.RequestKey[str] = web.RequestKey("labspace_hub_origin", str)


def _hub(request: web.BaseRequest | None) -> str:
    return request.get(HUB_ORIGIN, "") if request is not None else ""


def wants_html(request: web.BaseRequest) -> bool:
    """True for a browser navigating (Accept mentions text/html), False for API clients."""
    return "text/html" in request.headers.get("Accept", "")


def html_page(
    status: int, title: str, body_html: str, *, refresh: int | None = None, hub: str = ""
) -> web.Response:
    head = f'\n<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    text = _PAGE.format(head=head, title=escape(title), body=body_html, hub=escape(hub))
    return web.Response(
        status=status, text=text, content_type="text/html", charset="utf-8", headers=_NO_STORE
    )


def json_error(status: int, message: str, **extra: str) -> web.Response:
    body = json.dumps({"status": status, "message": message, **extra})
    return web.Response(
        status=status, text=body, content_type="application/json", headers=_NO_STORE
    )


def error(request: web.BaseRequest, status: int, title: str, message: str) -> web.Response:
    """An HTML page for browsers, JSON for the rest."""
    if wants_html(request):
        return html_page(status, title, f"<p>{escape(message)}</p>", hub=_hub(request))
    return json_error(status, message)


def health() -> web.Response:
    return web.Response(text='{"status": "ok"}', content_type="application/json")


def see_other(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, **_NO_STORE})


def to_hub() -> web.Response:
    return see_other("/hub/")


def login_redirect(path_qs: str) -> web.Response:
    return see_other("/hub/login?next=" + quote(path_qs, safe="/"))


def unauthenticated() -> web.Response:
    return json_error(401, "authentication required: log in or send 'Authorization: Bearer "
                      "<token>'")


def forbidden(request: web.BaseRequest) -> web.Response:
    # The same answer whether or not the workspace exists: it reveals nothing.
    return error(request, 403, "Not allowed", "You are not allowed to open this workspace.")


def not_found(request: web.BaseRequest) -> web.Response:
    return error(request, 404, "Not found", "There is no such page or workspace.")


def no_such_workspace(request: web.BaseRequest, workspace: str) -> web.Response:
    """Shown only to the owner (or an admin): offers to create the workspace."""
    if not wants_html(request):
        return json_error(404, f"there is no workspace {workspace!r}")
    create = _hub(request) + "/hub/?name=" + quote(workspace)
    body = (f"<p>There is no workspace <b>{escape(workspace)}</b> yet.</p>"
            f'<p><a class="button primary" href="{escape(create)}">Create it</a></p>')
    return html_page(404, "No such workspace", body, hub=_hub(request))


def claim_ended(request: web.BaseRequest, app: str) -> web.Response:
    """An instant app's session that ended (idle, too old) or never was."""
    if not wants_html(request):
        return json_error(404, "this session has ended")
    link = _hub(request) + "/apps/" + quote(app)  # on a claim host: the hub's link
    body = ("<p>This session has ended: sessions end when they are left idle or grow old, "
            "and each gets a fresh container.</p>"
            f'<p><a class="button primary" href="{escape(link)}">Start a new one</a></p>')
    return html_page(404, "Session ended", body, hub=_hub(request))


def claim_elsewhere(request: web.BaseRequest, app: str) -> web.Response:
    """A claim's address opened without its cookie: a copied link, another browser."""
    if not wants_html(request):
        return json_error(403, "this session belongs to another browser")
    link = _hub(request) + "/apps/" + quote(app)  # on a claim host: the hub's link
    body = ("<p>This session belongs to the browser that started it; a copied link does "
            "not open it elsewhere.</p>"
            f'<p><a class="button primary" href="{escape(link)}">Start your own</a></p>')
    return html_page(403, "Another browser's session", body, hub=_hub(request))


def claim_link_refused(request: web.BaseRequest, app: str | None) -> web.Response:
    """A claim host's ticket that is forged, expired, used already or for an older token."""
    if not wants_html(request):
        return json_error(403, "this link expired or was used already; open the app's link "
                          "again")
    link = _hub(request) + ("/apps/" + quote(app) if app else "/hub/")
    body = ("<p>This link to the app expired or was used already.</p>"
            f'<p><a class="button primary" href="{escape(link)}">Open the app again</a></p>')
    return html_page(403, "Link expired", body, hub=_hub(request))


def hub_down(request: web.BaseRequest) -> web.Response:
    message = "labspace is restarting, retry in a few seconds"
    if request.path.startswith("/hub/api/") or not wants_html(request):
        return json_error(503, message)
    return html_page(503, "labspace is restarting", f"<p>{message}.</p>", refresh=5)


def source_down(request: web.BaseRequest) -> web.Response:
    return error(request, 503, "Temporarily unavailable",
                 "labspace cannot look up this workspace right now; retry in a few seconds.")


def not_running(request: web.BaseRequest, owner: str, workspace: str, state: str) -> web.Response:
    hub_url = f"{_hub(request)}/hub/workspaces/{quote(owner)}/{quote(workspace)}"
    waiting = state in ("starting", "pending")
    if not wants_html(request):
        return json_error(503, f"workspace {owner}/{workspace} is {state}", state=state,
                          url=hub_url)
    if waiting:
        body = (f"<p>The workspace <b>{escape(workspace)}</b> is {escape(state)}. This page "
                "reloads by itself until it is ready.</p>"
                f'<p><a href="{escape(hub_url)}">Workspace page</a></p>')
    else:
        body = (f"<p>The workspace <b>{escape(workspace)}</b> is {escape(state)}.</p>"
                f'<p><a class="button primary" href="{escape(hub_url)}">Start it from its '
                "page</a></p>")
    return html_page(503, f"Workspace {state}", body, refresh=3 if waiting else None,
                     hub=_hub(request))


def upstream_down(request: web.BaseRequest) -> web.Response:
    return error(request, 502, "The workspace is not answering",
                 "the workspace is not answering; it may be starting, stopping or busy. "
                 "Retry in a few seconds.")


def owner_only(request: web.BaseRequest, is_admin: bool) -> web.Response:
    """Path mode: a browser session other than the owner's may not load a workspace."""
    message = ("Workspaces are served on labspace's own address here, so only their owner "
               "may open them in a browser: the pages of a workspace are whatever its owner "
               "put there, and on this address they could act as you in labspace.")
    if not wants_html(request):
        return json_error(403, message + " Scripts may use an API token.")
    advice = ("<p>To open other people's workspaces safely, set <code>apps_domain</code> in "
              "labspace's configuration: each workspace then gets an address of its own "
              "(see the administrator's guide, docs/admin.md).</p>"
              if is_admin else
              "<p>Ask the owner, or an administrator, to share what you need.</p>")
    return html_page(403, "Only the owner may open this workspace",
                     f"<p>{escape(message)}</p>{advice}")


def cross_origin(request: web.BaseRequest, reason: str) -> web.Response:
    return error(request, 403, "Request refused", f"Refused: {reason}.")


def no_service_worker(request: web.BaseRequest) -> web.Response:
    return error(request, 403, "Not allowed",
                 "workspaces may not register service workers on labspace's own address")


def ticket_refused(request: web.BaseRequest) -> web.Response:
    hub = _hub(request)
    if not wants_html(request):
        return json_error(403, "this link expired or was used already; open the workspace "
                          "again from labspace")
    body = ("<p>This link to the workspace expired or was used already.</p>"
            f'<p><a class="button primary" href="{escape(hub)}/hub/">Open it again from '
            "labspace</a></p>")
    return html_page(403, "Link expired", body, hub=hub)
