"""The credential sheet of a 60-seat workshop: PDF (rendered to PNG once, QR codes decoded with
zbar, text read back with pdftotext), HTML (parsed) and CSV (read back)."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from labspace.workshops.sheet import (
    CARDS_PER_PAGE,
    Card,
    qr_svg,
    render_csv,
    render_html,
    render_pdf,
)

SEATS = 60
EXPIRES = datetime(2026, 12, 1, tzinfo=UTC)
SITE = "https://lab.example.org"
SYLLABLES = ["ba", "fo", "ke", "mi", "tu", "za", "ro", "ne", "wi", "du", "ga", "pe"]


def _password(seat: int) -> str:
    # Distinct per seat, in the generator's style (syllable pairs, dashes).
    digits = [(seat // 12**k) % 12 for k in range(6)]
    words = [SYLLABLES[digits[2 * i]] + SYLLABLES[digits[2 * i + 1]] for i in range(3)]
    return "-".join(words)


def _card(seat: int, *, workshop: str = "genomics-101", **changes: object) -> Card:
    token = hashlib.sha256(f"seat-{seat}".encode()).hexdigest()[:43]
    values: dict[str, object] = {
        "workshop": workshop,
        "seat": seat,
        "user": f"{workshop}-{seat:02d}",
        "password": _password(seat),
        "login_url": f"{SITE}/hub/workshop-login/{token}",
        "expires_at": EXPIRES,
        "site": SITE,
    }
    values.update(changes)
    return Card(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cards() -> list[Card]:
    return [_card(seat) for seat in range(1, SEATS + 1)]


def _need(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (scripts/ensure-test-deps.sh installs them)")


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


# -- PDF ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pdf_path(cards: list[Card], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sheet") / "sheet.pdf"
    path.write_bytes(render_pdf(cards, title="Genomics 101 <credentials>"))
    return path


@pytest.fixture(scope="module")
def first_page_png(pdf_path: Path) -> Path:
    """The first page at 150 dpi, rendered once for every check that looks at pixels."""
    _need("pdftoppm")
    prefix = pdf_path.with_name("page")
    _run("pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", "-singlefile", str(pdf_path),
         str(prefix))
    return prefix.with_suffix(".png")


def _zbar(png: Path) -> list[str]:
    # --nodbus: zbarimg otherwise tries the system bus (absent in containers) and complains.
    found = subprocess.run(
        ["zbarimg", "-q", "--raw", "--nodbus", str(png)], capture_output=True, text=True,
        check=False,
    )
    return found.stdout.splitlines()


def test_pdf_is_a4_with_eight_cards_a_page(pdf_path: Path) -> None:
    _need("pdfinfo")
    info = _run("pdfinfo", str(pdf_path))
    pages = int(re.search(r"^Pages:\s+(\d+)$", info, re.M).group(1))  # type: ignore[union-attr]
    assert pages == -(-SEATS // CARDS_PER_PAGE) == 8
    assert "595.28 x 841.89 pts (A4)" in info
    assert re.search(r"^Title:\s+Genomics 101 <credentials>$", info, re.M)


def test_pdf_first_page_qr_codes_scan_to_their_cards_links(
    cards: list[Card], first_page_png: Path
) -> None:
    """Each card's QR code, cut out as an attendee's phone would see it, decodes to exactly
    that card's login link (so a code cannot sit on the wrong card either)."""
    _need("zbarimg")
    page = Image.open(first_page_png)
    width, height = page.size
    # Cards fill a 2 x 4 grid inside 8 mm margins; an even 2 x 4 split of the whole page
    # keeps each card's QR code (mid-card) whole in its own cell.
    decoded = []
    for index in range(CARDS_PER_PAGE):
        column, row = index % 2, index // 2
        box = (column * width // 2, row * height // 4, (column + 1) * width // 2,
               (row + 1) * height // 4)
        crop = first_page_png.with_name(f"card-{index}.png")
        page.crop(box).save(crop)
        decoded.append(_zbar(crop))
    assert decoded == [[card.login_url] for card in cards[:CARDS_PER_PAGE]]


def test_pdf_first_page_text(cards: list[Card], pdf_path: Path) -> None:
    _need("pdftotext")
    text = _run("pdftotext", "-f", "1", "-l", "1", "-layout", str(pdf_path), "-")
    for card in cards[:CARDS_PER_PAGE]:
        assert card.user in text
        assert card.password in text
        assert f"Seat {card.seat}" in text
    assert cards[CARDS_PER_PAGE].user not in text  # the ninth card is on page 2
    assert "genomics-101" in text
    assert SITE in text
    assert "2026-12-01 00:00 UTC" in text
    assert "page 1 of 8" in text


def test_pdf_survives_text_outside_its_fonts_and_an_empty_sheet() -> None:
    _need("pdfinfo", "pdftotext")
    odd = _card(1, workshop="Café Ω <b>", password="x" * 80)
    pdf = render_pdf([odd], title="Ω")
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode()
    assert "Café ? <b>" in text  # Latin-1 kept, the rest replaced, nothing dropped silently
    empty = subprocess.run(["pdfinfo", "-"], input=render_pdf([], title="none"),
                           capture_output=True, check=True).stdout.decode()
    assert re.search(r"^Pages:\s+1$", empty, re.M)


# -- HTML -----------------------------------------------------------------------------------


class _Sheet(HTMLParser):
    """Collects the cards: their texts by class, and whether each holds an <svg>."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict[str, str]] = []
        self.svgs = 0
        self.external: list[str] = []
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        self.external += [v or "" for k, v in attrs if k in ("src", "href")]
        if "card" in classes:
            self.cards.append({"svg": ""})
        elif tag == "svg" and self.cards:
            self.cards[-1]["svg"] = "yes"
        for name in ("workshop", "seat", "site", "user", "password", "expires"):
            if name in classes:
                self._field = name

    def handle_endtag(self, tag: str) -> None:
        if tag in ("span", "dd", "p"):
            self._field = None

    def handle_data(self, data: str) -> None:
        if self._field == "workshop" and "workshop" in self.cards[-1]:
            return  # the seat's <span> sits inside the workshop's <p>
        if self._field and self.cards:
            self.cards[-1][self._field] = self.cards[-1].get(self._field, "") + data


def test_html_has_a_card_with_an_svg_per_seat(cards: list[Card]) -> None:
    page = render_html(cards, title="Genomics 101")
    sheet = _Sheet()
    sheet.feed(page)
    assert len(sheet.cards) == SEATS
    assert all(card["svg"] for card in sheet.cards)
    assert [(c["user"], c["password"], c["seat"]) for c in sheet.cards] == [
        (c.user, c.password, f"Seat {c.seat}") for c in cards
    ]
    assert sheet.cards[0]["expires"] == "2026-12-01 00:00 UTC"
    assert sheet.external == []  # self-contained: nothing to fetch
    assert "@page { size: A4" in page and "break-inside: avoid" in page
    assert page.count('class="page"') == 8


def test_html_escapes_every_value() -> None:
    hostile = _card(
        3,
        workshop="<script>alert(1)</script>",
        user='x"><img src=x onerror=alert(2)>',
        password="a&b<c>",
        site="https://lab.example.org/?a=<b>",
    )
    page = render_html([hostile], title="</title><script>alert(3)</script>")
    assert "<script>" not in page and "<img" not in page
    sheet = _Sheet()
    sheet.feed(page)
    assert sheet.external == []
    (card,) = sheet.cards
    assert card["workshop"] == hostile.workshop
    assert card["user"] == hostile.user
    assert card["password"] == hostile.password
    assert card["site"] == hostile.site


def _svg_matrix(svg: str) -> list[list[bool]]:
    """The modules an SVG from qr_svg paints dark, read back from its path."""
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    namespace = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{namespace}svg"
    side = int(root.attrib["viewBox"].split()[2])
    path = root.find(f"{namespace}path")
    assert path is not None
    dark = [[False] * side for _ in range(side)]
    x = y = 0
    for command, a, b in re.findall(r"([Mmh])(-?\d+)(?: (-?\d+)(?:\.5)?)?", path.attrib["d"]):
        if command == "M":
            x, y = int(a), int(b)
        elif command == "m":
            x += int(a)
        else:
            for column in range(x, x + int(a)):
                dark[y][column] = True
            x += int(a)
    return dark


def test_inline_svg_qr_decodes(tmp_path: Path) -> None:
    _need("zbarimg")
    url = _card(42).login_url
    dark = _svg_matrix(qr_svg(url))
    scale = 6
    image = Image.new("L", (len(dark) * scale, len(dark) * scale), 255)
    draw = ImageDraw.Draw(image)
    for y, row in enumerate(dark):
        for x, on in enumerate(row):
            if on:
                draw.rectangle((x * scale, y * scale, (x + 1) * scale - 1, (y + 1) * scale - 1), 0)
    image.save(tmp_path / "svg.png")
    assert _zbar(tmp_path / "svg.png") == [url]


# -- CSV ------------------------------------------------------------------------------------


def test_csv_round_trips_every_seat(cards: list[Card]) -> None:
    rows = list(csv.reader(io.StringIO(render_csv(cards), newline="")))
    assert rows[0] == ["seat", "user", "password", "login_url", "expires_at"]
    assert rows[1:] == [
        [str(c.seat), c.user, c.password, c.login_url, "2026-12-01T00:00:00Z"] for c in cards
    ]
    assert datetime.fromisoformat(rows[1][4]) == EXPIRES


def test_csv_quotes_and_defuses_formulas() -> None:
    starts = ["=1+1", "+41 22", "-2", "@SUM(A1)", "\tx", "\rx"]
    odd = [_card(i + 1, password=p) for i, p in enumerate(starts)]
    quoted = _card(9, user='a,"b"\nc')
    rows = list(csv.reader(io.StringIO(render_csv([*odd, quoted]), newline="")))[1:]
    assert [row[2] for row in rows[:-1]] == ["'" + p for p in starts]
    assert rows[-1][1] == 'a,"b"\nc'
    assert rows[-1][2] == quoted.password  # an ordinary password is left alone


def test_expiry_is_written_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    aware = _card(1, expires_at=datetime(2026, 12, 1, 1, 30, tzinfo=paris))
    naive = _card(2, expires_at=datetime(2026, 12, 1, 0, 30))  # as SQLite hands it back
    rows = list(csv.reader(io.StringIO(render_csv([aware, naive]))))[1:]
    assert [row[4] for row in rows] == ["2026-12-01T00:30:00Z", "2026-12-01T00:30:00Z"]
    assert "2026-12-01 00:30 UTC" in render_html([aware], title="t")
