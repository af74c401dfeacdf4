"""The paper registers the dashboard replaces (../shared/DOMAIN.md) as pages: overdue
chase slips (催还单) per class, the repair register (form E), the withdrawal register
(form F, 注销), the student-librarian work record (form G), the stock-take checklist
(查书/清点), and the privacy page, where the librarian sets the retention periods that
``central.privacy`` applies. Each register is a page (printable) and the same table as
CSV and XLSX; ``central.services.registers`` reads them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bookcorner import i18n
from bookcorner.central import db
from bookcorner.central.dashboard.data_in import _unreadable_text, multipart_upload
from bookcorner.central.dashboard.deps import Dash, Form, Librarian
from bookcorner.central.dashboard.site import PREFIX, Answered, Site
from bookcorner.central.privacy import (
    MAX_RETENTION_DAYS,
    anonymise,
    anonymise_events,
    events_retention,
    retention,
    set_events_retention,
    set_retention,
)
from bookcorner.central.services import registers
from bookcorner.central.services.registers import (
    REGISTERS,
    MarkLostRefused,
    ScanFileRefused,
    Unseen,
    WithdrawRefused,
    shelf_text,
    state_text,
    where_text,
)
from bookcorner.central.services.reviews import record
from bookcorner.central.services.tables import FORMATS, ReportTable
from bookcorner.i18n import _

PAGES = ("/registers", "/registers/privacy",
         *(f"/registers/{name}{suffix}" for name in REGISTERS for suffix in ("", ".csv", ".xlsx")),
         "/registers/stock-take/scans",
         *(f"/registers/stock-take/scans/sample{suffix}" for suffix in ("", ".csv", ".xlsx")))
FORMS = ("/registers/withdrawals", "/registers/privacy", "/registers/privacy/events", "/registers/stock-take/upload",
         "/registers/stock-take/scans/sample/lost")


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def _refusal_text(code: str) -> str:
    return {"unknown_item": _("No book with that id in the catalogue."),
            "already_withdrawn": _("That book is already withdrawn."),
            "on_loan": _("That book is on loan: it must come back (or be reported lost) first."),
            "no_reason": _("Withdrawing a book needs a reason.")}.get(code, code)


def _bilingual(message: str) -> str:
    zh, en = i18n.bilingual(message)
    return zh if zh == en else f"{zh} / {en}"


#: what the registers' templates call
GLOBALS = {"register_cell": _cell, "where_text": where_text, "bilingual": _bilingual,
           "stocktake_state": state_text, "shelf_text": shelf_text}
#: the registers read over a period, and the table each downloads as
_PERIODIC: dict[str, tuple[Callable[..., Any], Callable[[Any], ReportTable]]] = {
    "repairs": (registers.repairs, registers.repairs_table),
    "withdrawals": (registers.withdrawals, registers.withdrawals_table),
    "librarians": (registers.librarians_work, registers.librarians_table)}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


async def _overdue(site: Site) -> dict[str, Any]:
    today = site.today()
    by_class = await site.run(registers.overdue, site.store, today)
    return {"by_class": by_class, "today": today, "table": registers.overdue_table(by_class),
            "file": today.isoformat(), "school_name": await site.run(registers.school_name, site.store)}


async def _stock_take(request: Request, site: Site) -> dict[str, Any]:
    since = site.day(request, "since", site.today() - timedelta(days=90))
    if since is None:
        raise Answered(site.refused(request, 422, error=_("Choose a valid date.")))
    rows = await site.run(registers.stock_take, site.store, since, site.zone)
    shelves: dict[str, list[Unseen]] = defaultdict(list)
    for row in rows:
        shelves[row.shelf].append(row)
    return {"since": since, "shelves": shelves, "count": len(rows), "table": registers.stock_take_table(rows),
            "file": f"since-{since}"}


async def _gather(request: Request, site: Site, name: str) -> dict[str, Any]:
    """The register's values for its page, with ``table`` (its download) and ``file`` (a name)."""
    if name == "overdue":
        return await _overdue(site)
    if name == "stock-take":
        return await _stock_take(request, site)
    today = site.today()  # a month up to today, unless asked otherwise
    period = site.period(request, (today - timedelta(days=29), today))
    if period is None:
        raise Answered(site.refused(request, 422, error=_("Choose a valid period (from, to).")))
    start, end = period
    read, build = _PERIODIC[name]
    rows = await site.run(read, site.store, start, end, site.zone)
    return {"start": start, "end": end, "table": build(rows), "file": f"{start}-{end}"}


def _show(request: Request, site: Site, name: str, who: Any, values: dict[str, Any], status: int = 200,
          **extra: Any) -> Response:
    template = {"overdue": "registers_overdue.html", "stock-take": "registers_stock_take.html"}.get(
        name, "registers_table.html")
    return site.page(request, template, status, who=who, register=name, query=request.url.query, **values, **extra)


async def register_page(request: Request, who: Librarian, site: Dash) -> Response:
    """``/registers/<name>``: one register's page."""
    name = PurePosixPath(request.url.path).name
    values = await _gather(request, site, name)
    return _show(request, site, name, who, values, done=request.query_params.get("done"))


async def register_download(request: Request, who: Librarian, site: Dash) -> Response:
    """``/registers/<name>.<format>``: one register's table as CSV or XLSX."""
    name, _dot, form = PurePosixPath(request.url.path).name.rpartition(".")
    values = await _gather(request, site, name)
    body, media = values["table"].render(form)
    filename = f"bookcorner-{name}-{values['file']}.{form}"
    await site.run(record, site.store, who.name, f"registers.download.{form}", filename, dict(request.query_params))
    return site.download(body, filename, media)


for _name in REGISTERS:
    router.add_api_route(f"/registers/{_name}", register_page, methods=["GET"], name=f"register_{_name}")
    for _form in FORMATS:
        router.add_api_route(f"/registers/{_name}.{_form}", register_download, methods=["GET"],
                             name=f"register_{_name}_{_form}")


@router.get("/registers")
async def index(request: Request, who: Librarian, site: Dash) -> Response:
    return site.page(request, "registers.html", who=who)


@router.post("/registers/withdrawals")
async def withdraw_book(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    item_id, reason = fields.get("item_id", "").strip()[:80], " ".join(fields.get("reason", "").split())[:400]
    try:
        if not reason:
            raise WithdrawRefused("no_reason")
        await site.run(registers.withdraw, site.store, item_id, reason, who.name, db.now())
    except WithdrawRefused as refused:
        values, error = await _gather(request, site, "withdrawals"), _refusal_text(str(refused))
        return _show(request, site, "withdrawals", who, values, 422, error=error, item_id=item_id, reason=reason)
    return site.redirect(f"/registers/withdrawals?done={quote(item_id)}")


async def _privacy_page(request: Request, who: Any, site: Site, status: int = 200, **values: Any) -> Response:
    now = db.now()
    state = await site.run(retention, site.store, now)
    log_state = await site.run(events_retention, site.store, now)
    values = {"saved": request.query_params.get("saved"), "events_saved": request.query_params.get("events_saved"),
              **values}
    return site.page(request, "registers_privacy.html", status, who=who, state=state, log_state=log_state, **values)


@router.get("/registers/privacy")
async def privacy(request: Request, who: Librarian, site: Dash) -> Response:
    return await _privacy_page(request, who, site)


@router.post("/registers/privacy")
async def set_privacy(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    text = fields.get("days", "").strip()
    if not text.isdigit() or int(text) > MAX_RETENTION_DAYS:
        error = _("The retention period is a number of days from 0 to {most}.").format(most=MAX_RETENTION_DAYS)
        return await _privacy_page(request, who, site, 422, saved=None, events_saved=None, error=error)
    log_days = (await site.run(events_retention, site.store, db.now())).days
    if log_days and (int(text) == 0 or int(text) > log_days):
        error = _("The circulation log forgets names after {days} days: the loans' retention period must be "
                  "from 1 to {days} days (or set the log's period to 0 first).").format(days=log_days)
        return await _privacy_page(request, who, site, 422, saved=None, events_saved=None, error=error)
    now = db.now()
    await site.run(set_retention, site.store, int(text), who.name, now)
    changed = await site.run(anonymise, site.store, now, who.name)
    return site.redirect(f"/registers/privacy?saved={changed}")


@router.post("/registers/privacy/events")
async def set_events_privacy(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    text = fields.get("events_days", "").strip()
    now = db.now()
    refusal = (_("The circulation log's period is a number of days from 0 to {most}.").format(
        most=MAX_RETENTION_DAYS) if not text.isdigit() or len(text) > 6
        else await site.run(set_events_retention, site.store, int(text), who.name, now))
    if refusal is not None:
        return await _privacy_page(request, who, site, 422, saved=None, events_saved=None, events_error=refusal)
    changed = await site.run(anonymise_events, site.store, now, who.name)
    return site.redirect(f"/registers/privacy?events_saved={changed}")


# --- stock-takes by scanning the shelf (清点): the kiosks' and uploaded scan files ------------------------


def _scan_file_text(refused: ScanFileRefused) -> str:
    return {"binary": _("This is not a text file: upload the scanner's export as text or CSV, one code a line."),
            "encoding": _("The file's text could not be read: save it as UTF-8 text or CSV."),
            "too_many": _("Too many lines: at most {most} codes in one file.").format(most=registers.MAX_SCAN_LINES),
            "bad_code": _("Line {line} is not a code: “{value}” (one code a line, no spaces, at most {most} "
                          "characters).").format(line=refused.line, value=refused.value, most=registers.MAX_CODE),
            "empty": _("The file holds no codes.")}.get(refused.code, refused.code)


def _mark_refusal_text(code: str) -> str:
    return {"running": _("This stock-take is still running: its missing books are only known when it is finished."),
            "cancelled": _("This stock-take was cancelled: its scans say nothing about what is missing."),
            "not_confirmed": _("Tick the box to confirm that the missing books were looked for."),
            "unknown": _("There is no stock-take with that id.")}.get(code, code)


async def _stocktakes_page(request: Request, who: Any, site: Site, status: int = 200, error: str = "") -> Response:
    takes = await site.run(registers.stocktakes, site.store, site.zone)
    shelves = await site.run(registers.corners, site.store)
    return site.page(request, "registers_stocktakes.html", status, who=who, takes=takes, shelves=shelves,
                     error=error)


@router.get("/registers/stock-take/scans")
async def stocktakes_list(request: Request, who: Librarian, site: Dash) -> Response:
    """Every stock-take: the kiosks' and the uploaded scan files', with the upload form."""
    return await _stocktakes_page(request, who, site)


@router.post("/registers/stock-take/upload")
async def stocktake_upload(request: Request, who: Librarian, site: Dash) -> Response:
    fields = await multipart_upload(site, request, who)
    if isinstance(fields, str):
        return await _stocktakes_page(request, who, site, 413 if fields == "too_large" else 422,
                                      _unreadable_text(fields))
    try:
        codes = registers.read_scan_file(fields["file"])
    except ScanFileRefused as refused:
        return await _stocktakes_page(request, who, site, 422, _scan_file_text(refused))
    corner = str(fields.get("shelf") or "").strip()[:80]
    stocktake_id = await site.run(registers.upload_stocktake, site.store, who.name, fields["filename"],
                                  (corner,) if corner else None, codes, db.now())
    return site.redirect(f"/registers/stock-take/scans/{quote(stocktake_id)}")


async def _view(request: Request, site: Site, stocktake_id: str) -> registers.StocktakeView:
    view = await site.run(registers.stocktake, site.store, stocktake_id, site.zone)
    if view is None:
        raise Answered(site.refused(request, 404, error=_mark_refusal_text("unknown")))
    return view


async def _result_page(request: Request, who: Any, site: Site, stocktake_id: str, status: int = 200,
                       error: str = "") -> Response:
    view = await _view(request, site, stocktake_id)
    return site.page(request, "registers_stocktake.html", status, who=who, view=view, take=view.stocktake,
                     result=view.result, items=view.items, error=error, done=request.query_params.get("done"))


async def stocktake_download(request: Request, who: Librarian, site: Dash, stocktake_id: str) -> Response:
    """``/registers/stock-take/scans/<id>.<format>``: the result's table as CSV or XLSX."""
    form = PurePosixPath(request.url.path).suffix.lstrip(".")
    view = await _view(request, site, stocktake_id)
    body, media = registers.stocktake_table(view).render(form)
    filename = f"bookcorner-stock-take-{stocktake_id}.{form}"
    await site.run(record, site.store, who.name, f"registers.download.{form}", filename, {})
    return site.download(body, filename, media)


for _form in FORMATS:
    router.add_api_route(f"/registers/stock-take/scans/{{stocktake_id}}.{_form}", stocktake_download,
                         methods=["GET"], name=f"stocktake_{_form}")


@router.get("/registers/stock-take/scans/{stocktake_id}")
async def stocktake_result(request: Request, who: Librarian, site: Dash, stocktake_id: str) -> Response:
    return await _result_page(request, who, site, stocktake_id)


@router.post("/registers/stock-take/scans/{stocktake_id}/lost")
async def stocktake_mark_lost(request: Request, who: Librarian, fields: Form, site: Dash,
                              stocktake_id: str) -> Response:
    """Marks the stock-take's missing books lost (once), after the librarian confirmed it."""
    if fields.get("confirm") != "yes":
        return await _result_page(request, who, site, stocktake_id, 422, _mark_refusal_text("not_confirmed"))
    try:
        marked = await site.run(registers.mark_missing_lost, site.store, stocktake_id, who.name, db.now(), site.zone)
    except MarkLostRefused as refused:
        status = 404 if str(refused) == "unknown" else 409
        return await _result_page(request, who, site, stocktake_id, status, _mark_refusal_text(str(refused)))
    return site.redirect(f"/registers/stock-take/scans/{quote(stocktake_id)}?done={len(marked)}")
