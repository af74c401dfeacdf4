"""Labels for new copies as a page and a PDF (``central.services.labels`` chooses the
copies and draws them): the copies added since a day, or those a list of ids or
barcodes names; barcode or spine labels; which label sheet; how many places of a used
sheet to skip. The page shows what the PDF will hold, and what it cannot (unknown
codes, copies with no accession barcode), before the download.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bookcorner.central.dashboard.deps import Dash, Librarian
from bookcorner.central.dashboard.site import PREFIX, Site
from bookcorner.central.services import labels
from bookcorner.central.services.reviews import record
from bookcorner.i18n import _

PAGES = ("/labels", "/labels.pdf")
FORMS = ()
#: the longest list of codes the page takes (an address holds some 8 KB)
MAX_CODES_TEXT = 6000


def sheet_label(key: str) -> str:
    return _(labels.SHEETS[key].name)


def kind_label(kind: str) -> str:
    return {"barcode": _("Barcode labels (accession number)"), "spine": _("Spine labels (call number)")}.get(kind, kind)


#: what the labels' template calls
GLOBALS = {"sheet_label": sheet_label, "kind_label": kind_label, "sheets": list(labels.SHEETS),
           "label_kinds": labels.KINDS}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _asked(request: Request, site: Site) -> tuple[dict[str, Any], str | None]:
    """What the form asks for, and what is wrong with it (None: nothing)."""
    q = request.query_params
    kind, sheet, skip = q.get("kind", "barcode"), q.get("sheet", "a4-3x8"), q.get("skip", "0").strip() or "0"
    choose, codes = q.get("choose", "since"), q.get("codes", "")[:MAX_CODES_TEXT]
    since = site.day(request, "since", site.today() - timedelta(days=7))
    problem = None
    if kind not in labels.KINDS or sheet not in labels.SHEETS or choose not in ("since", "codes"):
        problem = _("Choose the kind of label, the sheet and which copies.")
    elif not skip.isdigit() or int(skip) >= labels.SHEETS[sheet].per_page:
        problem = _("Skip from 0 to {most} places of the first sheet.").format(most=labels.SHEETS[sheet].per_page - 1)
    elif since is None:
        problem = _("Choose a valid date.")
    return {"kind": kind, "sheet": sheet if sheet in labels.SHEETS else "a4-3x8", "skip": skip, "choose": choose,
            "codes": codes, "since": since or site.today()}, problem


async def _chosen(site: Site, values: dict[str, Any]) -> labels.Chosen:
    if values["choose"] == "codes":
        return await site.run(labels.listed, site.store, labels.codes_in(values["codes"]))
    return await site.run(labels.added_since, site.store, values["since"], site.zone)


@router.get("/labels")
async def page(request: Request, who: Librarian, site: Dash) -> Response:
    values, problem = _asked(request, site)
    if problem:
        return site.page(request, "labels.html", 422, who=who, error=problem, values=values, chosen=None)
    chosen = await _chosen(site, values) if request.query_params.get("choose") else None
    return site.page(request, "labels.html", who=who, values=values, chosen=chosen, query=request.url.query,
                     too_many=chosen is not None and len(chosen.copies) > labels.MAX_LABELS)


@router.get("/labels.pdf")
async def pdf(request: Request, who: Librarian, site: Dash) -> Response:
    values, problem = _asked(request, site)
    if problem:
        return site.refused(request, 422, error=problem)
    chosen = await _chosen(site, values)
    if not chosen.copies or len(chosen.copies) > labels.MAX_LABELS:
        return site.refused(request, 422, error=_("No copy to label: choose copies with an accession barcode "
                                                  "(at most {most}).").format(most=labels.MAX_LABELS))
    body = await site.run(labels.render, chosen.copies, values["kind"], labels.SHEETS[values["sheet"]],
                          int(values["skip"]))
    name = f"bookcorner-{values['kind']}-labels-{site.today().isoformat()}.pdf"
    await site.run(record, site.store, who.name, "labels.download", name,
                   {"kind": values["kind"], "sheet": values["sheet"], "copies": len(chosen.copies)})
    return site.download(body, name, "application/pdf")
