"""A workshop's printable credential sheet: one card per attendee (HTML and A4 PDF) and a CSV.

Each card carries the workshop's name, the seat, labspace's address, the login name, the
password and the expiry, and a QR code of the seat's one-click login link. Every value on a
card is treated as data: escaped in the HTML, made Latin-1-safe in the PDF (its core fonts
are Latin-1 only), and guarded against formula injection in the CSV (spreadsheets run cells
that start with ``=``).
"""

from __future__ import annotations

import csv
import functools
import html
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import segno
from fpdf import FPDF


@dataclass(frozen=True)
class Card:
    workshop: str  # workshop name, e.g. "genomics-101"
    seat: int  # 1..N
    user: str  # login name, e.g. "genomics-101-07"
    password: str  # readable, e.g. "bafo-kemi-tuza"
    login_url: str  # one-click login link
    expires_at: datetime  # timezone-aware UTC
    site: str  # labspace's address, e.g. https://lab.example.org


CSV_HEADER = ("seat", "user", "password", "login_url", "expires_at")

# Error correction M (15%) survives a crease or a smudge on a printed card while keeping a
# ~90-character login link at version 6 (41 modules), large enough to scan from paper.
_QR_ERROR = "m"
_QR_MASK = 0  # fixed: see _qr
_QR_BORDER = 4  # the quiet zone the QR standard asks for, in modules

# A4 in millimetres, 2 columns x 4 rows of cards: big enough for a 36 mm QR code and a
# 13 pt password, small enough that a 60-seat workshop prints on 8 sheets.
_PAGE_W, _PAGE_H = 210.0, 297.0
_COLS, _ROWS = 2, 4
CARDS_PER_PAGE = _COLS * _ROWS
_MARGIN = 8.0  # most printers cannot print the outer 5 mm
_CARD_W = (_PAGE_W - 2 * _MARGIN) / _COLS
_CARD_H = (_PAGE_H - 2 * _MARGIN) / _ROWS
_PAD = 5.0
_QR_SIZE = 36.0  # symbol and quiet zone, mm

# The QR code signs in without the password: say so where the attendee reads it.
_NOTE = "Sign in at the address above, or scan the code. Keep this card to yourself."

# Spreadsheet programs treat a cell starting with one of these as a formula (OWASP's list).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _utc(moment: datetime) -> datetime:
    # A naive datetime is taken as UTC, as the state layer stores it (SQLite drops zones).
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _expiry_text(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def _pages(cards: Sequence[Card]) -> Iterator[Sequence[Card]]:
    for start in range(0, len(cards), CARDS_PER_PAGE):
        yield cards[start : start + CARDS_PER_PAGE]


@functools.lru_cache(maxsize=2048)
def _qr(data: str) -> segno.QRCode:
    """The QR code of ``data``; cached because the HTML and the PDF of a sheet share them.

    boost_error=False: a fixed level keeps the symbol (and the card layout) predictable.
    mask: a fixed data mask. Choosing the best of the 8 (segno's default) scores each one in
    pure Python, 5x the cost of the whole code: 5 s for a 400-seat sheet instead of 1 s.
    Every mask is valid and decodes; the choice only avoids patterns that might confuse a
    weak scanner, and the tests decode the printed codes with zbar.
    """
    return segno.make(data, error=_QR_ERROR, boost_error=False, micro=False, mask=_QR_MASK)


@functools.lru_cache(maxsize=2048)
def _qr_runs(data: str) -> tuple[tuple[int, int, int], ...]:
    """The dark modules as horizontal runs (row, first column, length), quiet zone excluded.

    Both the SVG and the PDF draw these: one rectangle per run instead of per module.
    """
    runs: list[tuple[int, int, int]] = []
    for y, row in enumerate(_qr(data).matrix):
        x, width = 0, len(row)
        while x < width:
            if row[x]:
                start = x
                while x < width and row[x]:
                    x += 1
                runs.append((y, start, x - start))
            x += 1
    return tuple(runs)


def _qr_modules(data: str) -> int:
    """The symbol's side in modules, quiet zone included."""
    return len(_qr(data).matrix) + 2 * _QR_BORDER


# -- CSV ------------------------------------------------------------------------------------


def _csv_cell(value: str) -> str:
    """Defuse a cell a spreadsheet would run as a formula: a leading ``'`` makes it text."""
    if value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def render_csv(cards: Sequence[Card]) -> str:
    """The sheet as CSV (RFC 4180 quoting, ``\\r\\n`` rows), expiry in ISO 8601 UTC."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for card in cards:
        expires = _utc(card.expires_at).strftime("%Y-%m-%dT%H:%M:%SZ")
        row = (str(card.seat), card.user, card.password, card.login_url, expires)
        writer.writerow([_csv_cell(value) for value in row])
    return out.getvalue()


# -- HTML -----------------------------------------------------------------------------------


def qr_svg(data: str) -> str:
    """The QR code of ``data`` as an inline ``<svg>`` element (no XML declaration).

    Drawn from segno's matrix like the PDF's (segno's own SVG writer took 3x longer). It has
    a viewBox and no fixed size, so CSS sizes it; the quiet zone is painted white so the
    code scans on tinted paper too, and crispEdges keeps module edges sharp when scaled.
    """
    side = _qr_modules(data)
    # One stroke 1 module wide per run, along the module row's middle line; moves within a
    # row are relative: a third of the size of a rectangle per run.
    parts: list[str] = []
    last_row, end = -1, 0
    for row, col, length in _qr_runs(data):
        if row != last_row:
            parts.append(f"M{col + _QR_BORDER} {row + _QR_BORDER}.5h{length}")
        else:
            parts.append(f"m{col - end} 0h{length}")
        last_row, end = row, col + length
    path = "".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" class="qr" '
        'role="img" aria-label="QR code of the login link" shape-rendering="crispEdges">'
        f'<rect width="{side}" height="{side}" fill="#fff"/><path stroke="#000" d="{path}"/></svg>'
    )


_CSS = f"""
@page {{ size: A4; margin: {_MARGIN:g}mm; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; font-family: "Helvetica Neue", Helvetica, Arial, sans-serif; color: #000; }}
.page {{ display: grid; grid-template-columns: repeat({_COLS}, {_CARD_W:g}mm);
  grid-auto-rows: {_CARD_H:g}mm; break-after: page; page-break-after: always; }}
.page:last-child {{ break-after: auto; page-break-after: auto; }}
.card {{ border: 0.3mm dashed #999; padding: {_PAD:g}mm; display: grid; gap: 0 4mm;
  grid-template-columns: 1fr {_QR_SIZE:g}mm; grid-template-rows: auto auto 1fr auto;
  break-inside: avoid; page-break-inside: avoid; overflow: hidden; }}
.workshop {{ grid-column: 1 / 3; font-weight: bold; font-size: 13pt; margin: 0;
  display: flex; justify-content: space-between; }}
.site {{ grid-column: 1 / 3; font-size: 9pt; color: #444; margin: 0 0 2mm;
  overflow-wrap: anywhere; }}
dl {{ margin: 0; }}
dt {{ font-size: 7pt; color: #555; text-transform: uppercase; margin-top: 2mm; }}
dd {{ margin: 0; font-size: 10pt; overflow-wrap: anywhere; }}
.mono {{ font-family: "DejaVu Sans Mono", Menlo, Consolas, "Courier New", monospace;
  font-weight: bold; font-size: 12pt; font-variant-numeric: slashed-zero; }}
.note {{ grid-column: 1 / 3; align-self: end; font-size: 7pt; color: #555; margin: 0; }}
.qr-box {{ text-align: center; font-size: 7pt; color: #555; }}
.qr {{ width: {_QR_SIZE:g}mm; height: {_QR_SIZE:g}mm; display: block; }}
@media screen {{ body {{ margin: 10mm; }} .page {{ margin-bottom: 10mm; }} }}
"""


def _html_card(card: Card) -> str:
    esc = html.escape
    return (
        '<article class="card">'
        f'<p class="workshop"><span>{esc(card.workshop)}</span>'
        f'<span class="seat">Seat {card.seat:d}</span></p>'
        f'<p class="site">{esc(card.site)}</p>'
        "<dl>"
        f'<dt>User</dt><dd class="mono user">{esc(card.user)}</dd>'
        f'<dt>Password</dt><dd class="mono password">{esc(card.password)}</dd>'
        f'<dt>Expires</dt><dd class="expires">{esc(_expiry_text(card.expires_at))}</dd>'
        "</dl>"
        f'<div class="qr-box">{qr_svg(card.login_url)}Scan to sign in</div>'
        f'<p class="note">{_NOTE}</p>'
        "</article>"
    )


def render_html(cards: Sequence[Card], *, title: str) -> str:
    """A self-contained printable page (no external assets), 8 cards per A4 sheet."""
    pages = "\n".join(
        '<section class="page">' + "".join(_html_card(card) for card in page) + "</section>"
        for page in _pages(cards)
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head>\n"
        f"<body>\n{pages}\n</body></html>\n"
    )


# -- PDF ------------------------------------------------------------------------------------


def _latin1(text: str) -> str:
    # The PDF's core fonts (Helvetica, Courier) cover Latin-1 only; anything else becomes "?"
    # rather than failing the whole sheet. Real names are ASCII (the workshop service checks).
    return text.encode("latin-1", "replace").decode("latin-1")


def _fit(pdf: FPDF, text: str, width: float, size: float, *, minimum: float) -> str:
    """Shrink the current font until ``text`` fits ``width``, then cut it with "..."."""
    # Short texts fit without measuring (fpdf2's slow path): no Helvetica glyph is wider
    # than 1.015 em, and every Courier glyph is 0.6 em.
    widest = 0.6 if pdf.font_family == "courier" else 1.015
    if len(text) * size * widest / pdf.k <= width:
        return text
    while size > minimum and pdf.get_string_width(text) > width:
        size -= 0.5
        pdf.set_font_size(size)
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "...") > width:
        text = text[:-1]
    return text + "..."


def _put(
    pdf: FPDF,
    x: float,
    baseline: float,
    text: str,
    *,
    width: float,
    font: tuple[str, str, float] = ("Helvetica", "", 10.0),
    gray: int = 0,
    align: str = "L",
    minimum: float = 6.0,
) -> None:
    """One line of text fitted into ``width``; FPDF.text, as FPDF.cell costs 5x as much."""
    family, style, size = font
    pdf.set_font(family, style, size)
    pdf.set_text_color(gray)
    line = _fit(pdf, _latin1(text), width, size, minimum=minimum)
    if align == "R":
        x += width - pdf.get_string_width(line)
    elif align == "C":
        x += (width - pdf.get_string_width(line)) / 2
    pdf.text(x, baseline, line)


@functools.lru_cache(maxsize=2048)
def _qr_path(data: str) -> str:
    """The QR code's dark runs as one PDF path, in modules from the top-left dark corner."""
    return " ".join(f"{col} {row} {length} 1 re" for row, col, length in _qr_runs(data))


def _pdf_qr(pdf: FPDF, data: str, x: float, y: float) -> None:
    """Draw the QR code as vector rectangles in one filled path: crisp at any resolution.

    The operators go straight into the page's content stream: through FPDF.rect (one call,
    enum coercions and a content line per module run, ~370 per code) a 400-seat sheet took
    8 s, this way 0.2 s. The path is in module units (small integers) and a `cm` transform
    scales it and flips PDF's upward y axis; one path also means no anti-aliasing seams
    between runs. q/Q keeps the transform and the fill colour out of fpdf2's tracked state.
    """
    unit = _QR_SIZE / _qr_modules(data) * pdf.k  # PDF points per module
    left = x * pdf.k + _QR_BORDER * unit
    top = (pdf.h - y) * pdf.k - _QR_BORDER * unit
    pdf._out(f"q 0 g {unit:.4f} 0 0 {-unit:.4f} {left:.2f} {top:.2f} cm {_qr_path(data)} f Q")


def _pdf_cut_frame(pdf: FPDF, x: float, y: float) -> None:
    # Cut lines: a dashed frame round every card (shared edges just overlap).
    pdf.set_draw_color(150)
    pdf.set_line_width(0.2)
    pdf.set_dash_pattern(dash=1.5, gap=1.5)
    pdf.rect(x, y, _CARD_W, _CARD_H)
    pdf.set_dash_pattern()


def _pdf_card(pdf: FPDF, card: Card, x: float, y: float) -> None:
    _pdf_cut_frame(pdf, x, y)
    inner_w = _CARD_W - 2 * _PAD
    text_w = inner_w - _QR_SIZE - 3
    left, top = x + _PAD, y + _PAD
    seat_w = 22.0
    bold = ("Helvetica", "B", 13.0)
    _put(pdf, left, top + 4.5, card.workshop, width=inner_w - seat_w - 2, font=bold)
    _put(
        pdf,
        left + inner_w - seat_w,
        top + 4.5,
        f"Seat {card.seat:d}",
        width=seat_w,
        font=bold,
        align="R",
    )
    _put(pdf, left, top + 10, card.site, width=inner_w, font=("Helvetica", "", 9.0), gray=68)

    # Courier for the credentials: every glyph its own shape, so "l", "1" and "I" stay apart.
    fields = (
        ("USER", card.user, ("Courier", "B", 12.0)),
        ("PASSWORD", card.password, ("Courier", "B", 13.0)),
        ("EXPIRES", _expiry_text(card.expires_at), ("Helvetica", "", 10.0)),
    )
    label_y = top + 17
    for label, value, font in fields:
        _put(pdf, left, label_y, label, width=text_w, font=("Helvetica", "", 7.0), gray=85)
        _put(pdf, left, label_y + 5, value, width=text_w, font=font, minimum=5.0)
        label_y += 12

    qr_x, qr_y = x + _CARD_W - _PAD - _QR_SIZE, top + 12
    _pdf_qr(pdf, card.login_url, qr_x, qr_y)
    _put(
        pdf,
        qr_x,
        qr_y + _QR_SIZE + 2.5,
        "Scan to sign in",
        width=_QR_SIZE,
        font=("Helvetica", "", 7.0),
        gray=85,
        align="C",
    )
    _put(
        pdf,
        left,
        y + _CARD_H - _PAD - 1,
        _NOTE,
        width=inner_w,
        font=("Helvetica", "", 7.0),
        gray=85,
    )


def _pdf_header(pdf: FPDF, title: str, page: int, pages: int) -> None:
    # In the top margin, small: which sheet of which workshop a loose page belongs to.
    _put(
        pdf,
        _MARGIN,
        5.5,
        f"{title}  -  page {page} of {pages}",
        width=_PAGE_W - 2 * _MARGIN,
        font=("Helvetica", "", 7.0),
        gray=120,
    )


def render_pdf(cards: Sequence[Card], *, title: str) -> bytes:
    """The sheet as an A4 PDF, 8 cards per page with dashed cut lines."""
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.set_margins(0, 0, 0)
    pdf.set_title(_latin1(title))
    pdf.set_creator("labspace")
    pages = list(_pages(cards)) or [()]  # a PDF needs a page: an empty sheet prints blank
    for number, page in enumerate(pages, start=1):
        pdf.add_page()
        _pdf_header(pdf, title, number, len(pages))
        for index, card in enumerate(page):
            column, row = index % _COLS, index // _COLS
            _pdf_card(pdf, card, _MARGIN + column * _CARD_W, _MARGIN + row * _CARD_H)
    return bytes(pdf.output())
