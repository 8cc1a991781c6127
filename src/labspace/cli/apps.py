"""``labspace app``: instant apps, a link that hands each visitor a fresh container of a
template from a pool of spares (the hub's /hub/api/apps): add, list, show, drain, refresh and
delete them."""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labspace.apps.examples import EXAMPLES
from labspace.apps.model import USERS, AppDefinition
from labspace.cli.client import JsonOption, UrlOption, connect, print_json
from labspace.cli.confirm import confirm_by_name
from labspace.errors import InvalidInput
from labspace.templates.idle import duration_text, parse_duration

app = typer.Typer(no_args_is_help=True, help="Instant apps: a link that gives each visitor a "
                  "fresh container, from a pool kept ready. Add, list, show, drain, refresh "
                  "and delete them.")
console = Console()

_SECONDS = re.compile(r"(\d{1,7})\s*s?")
DURATION_HELP = "e.g. 30s, 20m, 4h, 1d, 1h 30m"
# Where a definition's field comes from on the command line, for the errors.
_OPTIONS = {"name": "NAME", "template": "--template", "path": "--path",
            "display_name": "--display-name", "pool.spares": "--spares",
            "pool.max_claimed": "--max-claimed", "pool.idle_timeout": "--idle-timeout",
            "pool.max_age": "--max-age", "pool.max_ready_age": "--max-ready-age"}
_DURATIONS = ("pool.idle_timeout", "pool.max_age", "pool.max_ready_age")


def parse_seconds(text: str, option: str) -> int:
    """'30s', '90', '20m', '4h', '1d', '1h 30m' -> seconds; InvalidInput naming ``option``."""
    plain = _SECONDS.fullmatch(text.strip().lower())
    if plain:
        return int(plain.group(1))
    try:
        return parse_duration(text)
    except ValueError:
        raise InvalidInput(f"{option}: not a duration: {text!r} (use {DURATION_HELP})"
                           ) from None


def _seconds_text(seconds: int) -> str:
    """600 -> '10m', 45 -> '45s', 5430 -> '1h 30m 30s'."""
    minutes = duration_text(seconds) if seconds >= 60 else ""
    rest = seconds % 60
    return " ".join(part for part in (minutes, f"{rest}s" if rest else "") if part) or "0s"


def _definition(data: dict[str, Any]) -> AppDefinition:
    """Validate here, for one clear line naming the option rather than the hub's 422."""
    try:
        return AppDefinition.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        bound = (first.get("ctx") or {}).get("ge", (first.get("ctx") or {}).get("le"))
        if first["type"] == "string_pattern_mismatch":
            message = ("use lowercase letters, digits and dashes, starting with a letter "
                       "(at most 30)")
        elif where in _DURATIONS and isinstance(bound, int):
            message = f"{'at least' if first['type'] == 'greater_than_equal' else 'at most'} "\
                f"{_seconds_text(bound)}"
        raise InvalidInput(f"{_OPTIONS.get(where, where)}: {message}") from None


def _quantile(histogram: dict[str, Any], q: float) -> str:
    """The bucket bound under which a share ``q`` of the claims was served ('≤ 0.25s')."""
    count = histogram.get("count") or 0
    if not count:
        return "-"
    buckets = histogram.get("buckets") or []
    for bucket in buckets:
        if bucket["count"] >= q * count:
            if bucket["le"] == "+Inf":
                last = buckets[-2]["le"] if len(buckets) > 1 else 0
                return f"> {last:g}s"
            return f"≤ {bucket['le']:g}s"
    return "-"


def _counts(pool: dict[str, Any]) -> str:
    return (f"{pool['ready']} ready, {pool['starting']} starting, {pool['claimed']} claimed, "
            f"{pool['queued']} queued")


@app.command("add")
def add(
    name: Annotated[str | None, typer.Argument(
        help="Short name: the link is /apps/NAME (with --example: default the example's).",
        metavar="NAME", show_default=False)] = None,
    template: Annotated[str | None, typer.Option(
        help="The template each visitor gets a container of (e.g. notebook-app).")] = None,
    example: Annotated[str | None, typer.Option(
        help=f"Start from a shipped example: {' or '.join(EXAMPLES)}; the other options "
        "change it.", metavar="|".join(EXAMPLES))] = None,
    path: Annotated[str | None, typer.Option(
        help="Where to open it, e.g. lab/tree/welcome.ipynb (default: the app's root).")] = None,
    display_name: Annotated[str | None, typer.Option(
        help="Shown on the waiting page (default: NAME).")] = None,
    spares: Annotated[int | None, typer.Option(
        help="Containers kept ready to hand out (default 2).")] = None,
    max_claimed: Annotated[int | None, typer.Option(
        help="The most claimed at once; past it, visitors are told the app is at capacity "
        "(default 100).")] = None,
    idle_timeout: Annotated[str | None, typer.Option(
        help=f"A claim ends after this long unused ({DURATION_HELP}; default 20m).")] = None,
    max_age: Annotated[str | None, typer.Option(
        help="A claim ends after this long, used or not (default 4h).")] = None,
    max_ready_age: Annotated[str | None, typer.Option(
        help="A spare older than this is replaced with a fresh one (default 1h).")] = None,
    users_only: Annotated[bool, typer.Option(
        "--users-only", help="Only logged-in users may claim (default: anyone with the "
        "link, no account needed).")] = False,
    shareable: Annotated[bool, typer.Option(
        "--shareable", help="A claim's link works in other browsers too (demos); default: "
        "only in the browser that claimed it.")] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add an instant app and print the link to give out.

    Each visit of the link claims a fresh container of the template."""
    if example is not None:
        if example not in EXAMPLES:
            raise InvalidInput(f"--example: no example {example!r} (use "
                               f"{' or '.join(EXAMPLES)})")
        data = EXAMPLES[example].model_dump()
        data["name"] = name or data["name"]
    elif name is None or template is None:
        raise InvalidInput("name the app and its template: labspace app add NAME --template "
                           "TEMPLATE (or start from labspace app add --example notebook)")
    else:
        data = {"name": name}
    for key, value in (("template", template), ("path", path),
                       ("display_name", display_name)):
        if value is not None:
            data[key] = value
    if users_only:
        data["access"] = USERS
    if shareable:
        data["shareable"] = True
    pool: dict[str, Any] = dict(data.get("pool") or {})
    for key, count in (("spares", spares), ("max_claimed", max_claimed)):
        if count is not None:
            pool[key] = count
    for key, text in (("idle_timeout", idle_timeout), ("max_age", max_age),
                      ("max_ready_age", max_ready_age)):
        if text is not None:
            pool[key] = parse_seconds(text, "--" + key.replace("_", "-"))
    data["pool"] = pool
    definition = _definition(data)
    with connect(url) as client:
        added = client.post("/apps", definition.model_dump(mode="json"))
    if as_json:
        print_json(added)
        return
    spec = added["definition"]
    console.print(f"added app [bold]{escape(added['name'])}[/] (template "
                  f"{escape(spec['template'])}, {spec['pool']['spares']} spares kept ready, "
                  f"{'logged-in users' if spec['access'] == USERS else 'anyone'} may claim)",
                  highlight=False)
    console.print(f"the link to give out: [bold]{escape(added['url'])}[/]", highlight=False,
                  soft_wrap=True)
    console.print(f"watch the pool fill: labspace app show {added['name']}", highlight=False)


@app.command("list")
def list_(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """The instant apps, their pools and links."""
    with connect(url) as client:
        apps = client.get("/apps")
    if as_json:
        print_json(apps)
        return
    if not apps:
        console.print("no instant apps yet: labspace app add --example notebook",
                      highlight=False)
        return
    # Links are copied, not read: where the table would fold them, they follow it whole.
    wide = console.width >= 80 + max(len(a["url"]) for a in apps)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("app", no_wrap=True)
    table.add_column("template", no_wrap=True)
    table.add_column("ready/starting/\nclaimed/queued", justify="center", no_wrap=True)
    for header in ("culled", "claims", "draining"):
        table.add_column(header, justify="right", min_width=len(header))
    if wide:
        table.add_column("link", no_wrap=True)
    for a in apps:
        pool = a["pool"]
        table.add_row(escape(a["name"]), escape(a["definition"]["template"]),
                      "/".join(str(pool[key]) for key in ("ready", "starting", "claimed",
                                                          "queued")),
                      str(pool["culled"]), str(pool["claims"]),
                      "yes" if pool["draining"] else "no", *([escape(a["url"])] if wide else []))
    console.print(table)
    if not wide:
        for a in apps:
            console.print(f"{escape(a['name'])}: {escape(a['url'])}", highlight=False,
                          soft_wrap=True)

@app.command("show")
def show(name: Annotated[str, typer.Argument(help="The app's name.")],
         url: UrlOption = None, as_json: JsonOption = False) -> None:
    """An app's definition and its pool: spares, claims, the queue and claim latency."""
    with connect(url) as client:
        shown = client.get(f"/apps/{name}")
    if as_json:
        print_json(shown)
        return
    spec, pool = shown["definition"], shown["pool"]
    settings, latency = spec["pool"], pool["claim_latency_seconds"]
    rows = [
        ("link", shown["url"]),
        ("display name", spec["display_name"] or "-"),
        ("template", spec["template"]),
        ("opens at", "/" + spec["path"]),
        ("ready when", "/" + spec["ready_path"] if spec.get("ready_path") is not None
         else "the template's health path answers"),
        ("who may claim", "logged-in users" if spec["access"] == USERS else
         "anyone with the link"),
        ("claim links", "work in any browser (shareable)" if spec["shareable"] else
         "only in the browser that claimed"),
        ("spares", f"{settings['spares']} kept ready, replaced after "
         f"{_seconds_text(settings['max_ready_age'])}"),
        ("claims end", f"after {_seconds_text(settings['idle_timeout'])} unused or "
         f"{_seconds_text(settings['max_age'])} in all; at most {settings['max_claimed']} "
         f"at once, {settings['claims_per_browser']} per browser"),
        ("pool", _counts(pool) + (" (DRAINING: no new claims)" if pool["draining"] else "")),
        ("claims", f"{pool['claims']} in all, {pool['culled']} culled"),
        ("claim latency", f"p50 {_quantile(latency, 0.5)}, p99 {_quantile(latency, 0.99)} "
         f"({latency.get('count', 0)} since the hub started)"),
        ("generation", str(pool["generation"])),
        ("added", f"{shown['created_at']} by {shown['created_by']}"),
    ]
    table = Table(show_header=False, box=None, title=escape(shown["name"]),
                  title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, escape(value))
    console.print(table)


@app.command("drain")
def drain(name: Annotated[str, typer.Argument(help="The app's name.")],
          url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Stop handing out containers; claims run on until they end.

    The spares and the queue go; a refresh opens the app again."""
    with connect(url) as client:
        drained = client.post(f"/apps/{name}/drain")
    if as_json:
        print_json(drained)
        return
    console.print(f"[bold]{escape(name)}[/] is draining: no new claims, "
                  f"{drained['pool']['claimed']} claims run on until they end "
                  f"(open it again: labspace app refresh {escape(name)})", highlight=False)


@app.command("refresh")
def refresh(name: Annotated[str, typer.Argument(help="The app's name.")],
            url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Replace the spares with fresh ones and end a drain.

    For after an image or template change; claims keep the containers they have."""
    with connect(url) as client:
        refreshed = client.post(f"/apps/{name}/refresh")
    if as_json:
        print_json(refreshed)
        return
    console.print(f"[bold]{escape(name)}[/]: fresh spares on the way (generation "
                  f"{refreshed['pool']['generation']}); claims keep their containers",
                  highlight=False)


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The app's name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation "
                                      "(scripts).")] = False,
    url: UrlOption = None,
) -> None:
    """Delete an app: its link stops working and its claims end.

    Every container of the app is removed."""
    with connect(url) as client:
        shown = client.get(f"/apps/{name}")  # a clear "not found" before asking
        if not yes:
            if not sys.stdin.isatty():
                raise InvalidInput(f"refusing to delete app {name} without confirmation: "
                                   "pass --yes (no terminal to ask on)")
            claimed = shown["pool"]["claimed"]
            confirm_by_name(name, "", f"app {name}: its link stops working and its "
                            f"{claimed} claim{'' if claimed == 1 else 's'} end (what "
                            "visitors did in them is lost)")
        with console.status(f"deleting {name}…"):
            client.delete(f"/apps/{name}")
    console.print(f"deleted app [bold]{escape(name)}[/]: its claims ended", highlight=False)
