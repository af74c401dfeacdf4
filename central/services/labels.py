"""Labels for new copies, as a PDF for a standard A4 label sheet: accession barcode labels
(the copy's barcode in Code 128, the number under it, the title) and spine labels (the
call number: CLC class over book mark).

Code 128, because every scanner a corner uses reads it as it comes from the box, it
carries any accession number the catalogue holds (letters, digits, dashes: Codabar only
digits and a few signs), digits at twice the density (subset C: a 14-digit library
barcode fits a 38 mm label) and a check character against misreads (Codabar has none).
The label carries the copy's ``barcode``, which is what a kiosk looks a scan up by; a
copy without one (an ISBN-only book: its ISBN is on its cover already) is left out and
named. reportlab draws the barcodes and the PDF (its own, maintained Code 128; no image
library). Chinese needs a font with its glyphs: a CJK TrueType font the computer has is
embedded (WenQuanYi Zen Hei, Droid Sans Fallback), so the PDF prints the same on any
computer; without one, reportlab's built-in STSong-Light (a CID font the PDF viewer
supplies: Adobe Reader's Asian font pack, poppler-data).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, tzinfo
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.services.reviews import day_bounds
from bookcorner.circulation.codes import isbn13_of, normalise
from bookcorner.i18n import N_, _

log = logging.getLogger(__name__)

MM = 72 / 25.4


@dataclass(frozen=True)
class Sheet:
    """A label sheet: ``columns`` × ``rows`` labels of ``width`` × ``height`` mm, the first
    ``left``/``top`` mm from the page's edges, one ``across``/``down`` mm from the next."""

    key: str
    name: str
    columns: int
    rows: int
    width: float
    height: float
    left: float
    top: float
    across: float
    down: float

    @property
    def per_page(self) -> int:
        return self.columns * self.rows


#: the sheets offered (A4, 210 × 297 mm); another is one more line
SHEETS = {sheet.key: sheet for sheet in (
    Sheet("a4-3x8", N_("A4, 24 labels of 70 × 37 mm (3 × 8, e.g. Avery 3474)"), 3, 8, 70, 37, 0, 0.5, 70, 37),
    Sheet("a4-3x7", N_("A4, 21 labels of 63.5 × 38.1 mm (3 × 7, e.g. Avery L7160)"), 3, 7, 63.5, 38.1, 7.2, 15.15,
          66.0, 38.1),
    Sheet("a4-5x13", N_("A4, 65 labels of 38.1 × 21.2 mm (5 × 13, e.g. Avery L7651)"), 5, 13, 38.1, 21.2, 4.65,
          10.7, 40.6, 21.2),
)}
KINDS = ("barcode", "spine")
#: copies one PDF may hold (a term's new books fit many times over)
MAX_LABELS = 2000
_FONTS = (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"), Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
          Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"))


@dataclass(frozen=True)
class Copy:
    item_id: str
    barcode: str
    title: str
    call_number: str


@dataclass
class Chosen:
    copies: list[Copy]
    #: ids or barcodes asked for that the catalogue does not hold
    unknown: list[str]
    #: copies without an accession barcode of their own (no barcode label)
    unlabelled: list[Copy]


def _copy(data: str) -> Copy:
    item = db.json_object(data)
    barcode = normalise(str(item.get("barcode") or ""))
    return Copy(str(item.get("item_id") or ""), "" if isbn13_of(barcode) else barcode,
                str(item.get("title") or ""), str(item.get("call_number") or ""))


def _split(chosen: list[Copy], unknown: list[str]) -> Chosen:
    chosen.sort(key=lambda c: (c.barcode == "", c.barcode, c.item_id))
    return Chosen([c for c in chosen if c.barcode], unknown, [c for c in chosen if not c.barcode])


def added_since(store: db.Store, since: date, zone: tzinfo) -> Chosen:
    """The copies the server first stored on or after ``since`` (withdrawn ones left out)."""
    c = db.catalogue.c
    with store.reading() as conn:
        rows = conn.execute(select(c.data).where(c.removed.is_(False), c.added_at >= day_bounds(since, zone)[0])
                            .limit(MAX_LABELS + 1)).scalars().all()
    return _split([_copy(d) for d in rows if db.json_object(d).get("status") != "withdrawn"], [])


def listed(store: db.Store, codes: Iterable[str]) -> Chosen:
    """The copies named by id or accession barcode (as a scanner reads them: case and
    Codabar letters aside), in one pass over the catalogue (the barcode is inside each record)."""
    wanted = list(dict.fromkeys(normalise(code) for code in codes if normalise(code)))[:MAX_LABELS + 1]
    wanted_set, named = set(wanted), set[str]()
    found: dict[str, Copy] = {}
    c = db.catalogue.c
    with store.reading() as conn:
        for data in conn.execute(select(c.data).where(c.removed.is_(False))).scalars():
            copy = _copy(data)
            hits = {copy.item_id.upper(), copy.barcode} & wanted_set
            if hits:
                found[copy.item_id] = copy
                named |= hits
    return _split(list(found.values()), [w for w in wanted if w not in named])


def codes_in(text: str) -> list[str]:
    return [code for code in re.split(r"[\s,;，；、]+", text) if code]


# --- drawing ------------------------------------------------------------------------------------


@cache
def cjk_font() -> str:
    """The name of a font with Chinese glyphs, registered with reportlab (see the module's words)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    for path in _FONTS:
        if path.exists():
            try:
                pdfmetrics.registerFont(TTFont("bookcorner-cjk", str(path), subfontIndex=0))
                return "bookcorner-cjk"
            except Exception:  # noqa: BLE001  (a damaged or unusable font file: try the next)
                log.warning("the font %s cannot be embedded; trying the next", path)
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"


def fitted(text: str, font: str, size: float, width: float) -> str:
    """The text cut to fit the width at this font and size, with an ellipsis where it was cut (labels, certificates)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


def _barcode_label(canvas: Any, copy: Copy, x: float, y: float, w: float, h: float, font: str) -> None:
    from reportlab.graphics.barcode.code128 import Code128

    margin = 2 * MM
    module = 0.33 * MM
    bar = Code128(copy.barcode, barWidth=module, barHeight=h * 0.45, quiet=True, humanReadable=False)
    if bar.width > w - margin:  # narrower bars on a small label (scanners read down to 0.127 mm)
        module *= (w - margin) / bar.width
        bar = Code128(copy.barcode, barWidth=module, barHeight=h * 0.45, quiet=True, humanReadable=False)
    bar.drawOn(canvas, x + (w - bar.width) / 2, y + h * 0.38)
    size = min(9.0, h * 0.13)
    canvas.setFont("Helvetica", size)
    canvas.drawCentredString(x + w / 2, y + h * 0.38 - size * 1.1, copy.barcode)
    canvas.setFont(font, size * 0.9)
    canvas.drawCentredString(x + w / 2, y + h * 0.07, fitted(copy.title, font, size * 0.9, w - margin))


def spine_lines(call_number: str) -> list[str]:
    """A call number as a spine shows it: the CLC class over the book mark ("I565.8/1")."""
    parts = [p.strip() for p in re.split(r"[/\s]+", call_number) if p.strip()]
    return parts[:4] or [""]


def _spine_label(canvas: Any, copy: Copy, x: float, y: float, w: float, h: float, font: str) -> None:
    """The call number large, line by line; the title small under it (which book it is)."""
    lines = spine_lines(copy.call_number)
    small = min(h * 0.12, 7.0)
    size = min((h - 2 * small) / (len(lines) + 0.6), 16.0)
    top = y + h - (h - small * 1.4 - len(lines) * size * 1.1) / 2
    canvas.setFont(font, size)
    for n, line in enumerate(lines):
        canvas.drawCentredString(x + w / 2, top - (n + 1) * size * 1.05, fitted(line, font, size, w - 2 * MM))
    canvas.setFont(font, small)
    canvas.drawCentredString(x + w / 2, y + small * 0.8, fitted(copy.title, font, small, w - 2 * MM))


def render(copies: list[Copy], kind: str, sheet: Sheet, skip: int = 0) -> bytes:
    """The labels as a PDF: one per copy, in order, the first ``skip`` places of the first
    sheet left empty (a sheet used before)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, pageCompression=1)
    canvas.setTitle(_("bookcorner labels"))
    font = cjk_font()
    draw = _barcode_label if kind == "barcode" else _spine_label
    page_height = A4[1]
    for place, copy in enumerate(copies, start=skip % sheet.per_page):
        if place and place % sheet.per_page == 0:
            canvas.showPage()
        column, row = place % sheet.per_page % sheet.columns, place % sheet.per_page // sheet.columns
        x = (sheet.left + column * sheet.across) * MM
        y = page_height - (sheet.top + row * sheet.down + sheet.height) * MM
        draw(canvas, copy, x, y, sheet.width * MM, sheet.height * MM, font)
    canvas.showPage()
    canvas.save()
    return out.getvalue()
