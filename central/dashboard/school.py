"""The school's own settings as pages (``central.services.school`` reads, checks and
saves them): the loan rules, the calendar, the rotation timetable, the students' cards,
and who may connect (kiosks, librarians). A form with any mistake comes back with each
mistake next to its field; one drawn from an older revision than the saved one is refused.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlencode

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import Response

from bookcorner.central.dashboard.deps import Dash, Form, Librarian, LongForm
from bookcorner.central.dashboard.site import PREFIX, Site
from bookcorner.central.kiosks import Audit, KioskExists, add_kiosk, add_librarian
from bookcorner.central.reference import policy_record
from bookcorner.central.services import school, sessions
from bookcorner.central.services.school import CARD_STATUSES, CREDENTIAL_REF, SPARE_ROWS, Refused
from bookcorner.circulation.codes import normalise
from bookcorner.circulation.model import ItemType, Role
from bookcorner.circulation.policy import DEFAULT_POLICY
from bookcorner.i18n import _
from bookcorner.protocol.messages import CalendarRecord, Identifier, KioskId, PolicyRecord, TimetableRecord

PAGES = ("/school", "/school/policy", "/school/calendar", "/school/timetable", "/school/cards",
         "/school/kiosks", "/school/librarians")
FORMS = ("/school/policy", "/school/calendar", "/school/timetable", "/school/cards", "/school/cards/C1/status",
         "/school/kiosks", "/school/kiosks/k1/revoke", "/school/librarians", "/school/librarians/0123abcd/revoke")


def role_label(role: str) -> str:
    return {"student": _("Students"), "student_librarian": _("Student librarians"), "teacher": _("Teachers"),
            "librarian": _("Librarians")}.get(role, role)


def item_label(kind: str) -> str:
    return {"circulating": _("Circulating books"), "reference": _("Reference books"),
            "periodical": _("Periodicals")}.get(kind, kind)


def weekday_label(day: int) -> str:
    return (_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"),
            _("Sunday"))[day]


def card_status_label(status: str) -> str:
    return {"active": _("active"), "lost": _("lost"), "withdrawn": _("withdrawn")}.get(status, status)


#: what the school's templates call
GLOBALS = {"role_label": role_label, "item_label": item_label, "weekday_label": weekday_label,
           "card_status_label": card_status_label, "roles": [str(r) for r in Role],
           "item_types": [str(t) for t in ItemType]}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _show(request: Request, site: Site, template: str, who: Any, status: int = 200, **values: Any) -> Response:
    return site.page(request, template, status, who=who, **values)


@router.get("/school")
async def index(request: Request, who: Librarian, site: Dash) -> Response:
    return _show(request, site, "school.html", who, zone_name=str(site.zone))


# --- the three settings documents share one shape: read, draw, check, save ----------------------


class _Document(msgspec.Struct, frozen=True):
    kind: type
    default: Any
    fields_of: Any
    parse: Any
    template: str
    flat: Any = msgspec.to_builtins


DOCUMENTS = {
    "policy": _Document(PolicyRecord, lambda: policy_record(DEFAULT_POLICY), school.policy_fields, school.parse_policy,
                        "school_policy.html", school.policy_fields),
    "calendar": _Document(CalendarRecord, CalendarRecord, school.calendar_fields, school.parse_calendar,
                          "school_calendar.html"),
    "timetable": _Document(TimetableRecord, TimetableRecord, school.timetable_fields, school.parse_timetable,
                           "school_timetable.html"),
}


def _document_named(request: Request) -> str:
    """Which document an address names (``/school/<name>``)."""
    return PurePosixPath(request.url.path).name


def _spare_rows(values: dict[str, str], prefix: str) -> list[int]:
    used = school.row_numbers(values, prefix)
    return list(range((used[-1] + 1 if used else 0) + SPARE_ROWS))


def _draw(request: Request, site: Site, name: str, who: Any, values: dict[str, str], based_on: int,
          status: int = 200, errors: dict[str, str] | None = None, saved: str | None = None) -> Response:
    return _show(request, site, DOCUMENTS[name].template, who, status, values=values, errors=errors or {},
                 based_on=based_on, saved=saved, terms=_spare_rows(values, "term"),
                 holidays=_spare_rows(values, "holiday"), slots=_spare_rows(values, "slot"))


async def document_page(request: Request, who: Librarian, site: Dash) -> Response:
    name = _document_named(request)
    document = DOCUMENTS[name]
    current = await site.run(school.read_setting, site.store, name, document.kind, document.default())
    return _draw(request, site, name, who, school.as_form(document.fields_of(current.record)), current.rev,
                 saved=request.query_params.get("saved"))


async def document_save(request: Request, who: Librarian, fields: LongForm, site: Dash) -> Response:
    name = _document_named(request)
    document = DOCUMENTS[name]
    based_on = school.form_revision(fields)
    record, errors = document.parse(fields)
    if record is None:
        return _draw(request, site, name, who, fields, based_on or 0, 422, errors)
    try:
        changed = await site.run(school.save_setting, site.store, who.name, name, record, based_on,
                                 document.default(), document.flat)
    except school.ChangedMeanwhile:
        current = await site.run(school.read_setting, site.store, name, document.kind, document.default())
        return _draw(request, site, name, who, fields, current.rev, 409, {"form": _(
            "Someone saved these settings after you opened this page: nothing was saved. Your "
            "changes are still in the form below; save again to keep them.")})
    return site.redirect(f"/school/{name}?saved={'yes' if changed else 'same'}")


for _name in DOCUMENTS:
    router.add_api_route(f"/school/{_name}", document_page, methods=["GET"], name=f"school_{_name}")
    router.add_api_route(f"/school/{_name}", document_save, methods=["POST"], name=f"school_{_name}_save")


# --- cards -------------------------------------------------------------------------------------


async def _cards_page(request: Request, who: Any, site: Site, status: int = 200, **values: Any) -> Response:
    query = request.query_params.get("q", "").strip()[:80]
    chosen = values.pop("chosen", None) or request.query_params.get("student", "")[:80]
    found = await site.run(school.find_students, site.store, query) if query else []
    holder = await site.run(school.student, site.store, chosen) if chosen else None
    asked = request.query_params
    return _show(request, site, "school_cards.html", who, status, query=query, found=found, holder=holder,
                 chosen=chosen, done=asked.get("done"), card=asked.get("card"), lost=asked.getlist("lost"), **values)


@router.get("/school/cards")
async def cards(request: Request, who: Librarian, site: Dash) -> Response:
    return await _cards_page(request, who, site)


@router.post("/school/cards")
async def give(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    patron_id, typed = fields.get("student", "").strip()[:80], fields.get("card", "")[:200]
    card_id = normalise(typed)
    lost: list[str] = []
    if not school.fits_protocol(card_id, Identifier):
        error: str | None = _("A card id: letters, digits and . _ : - only (at most 80)")
    else:
        try:
            lost = await site.run(school.give_card, site.store, who.name, patron_id, card_id,
                                  bool(fields.get("replace")))
            error = None
        except Refused as refused:
            error = str(refused)
    if error:
        return await _cards_page(request, who, site, 422, chosen=patron_id, card_error=error, typed=typed)
    return site.redirect("/school/cards?" + urlencode(
        [("student", patron_id), ("done", "given"), ("card", card_id), *(("lost", c) for c in lost)]))


@router.post("/school/cards/{card_id}/status")
async def card_status(request: Request, who: Librarian, fields: Form, site: Dash, card_id: str) -> Response:
    status = fields.get("status", "")
    if status not in CARD_STATUSES:
        return await _cards_page(request, who, site, 422, chosen=fields.get("student", ""),
                                 card_error=_("Choose active, lost or withdrawn"))
    try:
        card = await site.run(school.set_card_status, site.store, who.name, card_id, status)
    except Refused as refused:
        return await _cards_page(request, who, site, 404, chosen=fields.get("student", ""), card_error=str(refused))
    return site.redirect("/school/cards?" + urlencode({"student": card.patron_id, "done": status, "card": card_id}))


# --- kiosks ------------------------------------------------------------------------------------


async def _kiosks_page(request: Request, who: Any, site: Site, status: int = 200, **values: Any) -> Response:
    rows = await site.run(school.kiosk_rows, site.store)
    return _show(request, site, "school_kiosks.html", who, status, kiosks=rows, done=request.query_params.get("done"),
                 errors=values.pop("errors", {}), values=values.pop("values", {}), **values)


@router.get("/school/kiosks")
async def kiosks(request: Request, who: Librarian, site: Dash) -> Response:
    return await _kiosks_page(request, who, site)


def _kiosk_errors(kiosk_id: str, name: str) -> dict[str, str]:
    errors = {}
    if not school.fits_protocol(kiosk_id, KioskId):
        errors["kiosk_id"] = _("The kiosk's id as in its [kiosk] id: letters, digits and . _ - "
                               "(at most 64, starting with a letter or digit)")
    if name and not school.printable(name, 120):
        errors["name"] = _("At most 120 characters")
    return errors


@router.post("/school/kiosks")
async def provision(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    kiosk_id, name = fields.get("kiosk_id", "").strip(), fields.get("name", "").strip()
    reissue = bool(fields.get("reissue"))
    errors = _kiosk_errors(kiosk_id, name)
    if not errors:
        audit = Audit(who.name, "kiosk.reissue" if reissue else "kiosk.add", kiosk_id, {"name": name or kiosk_id})
        try:
            token = await site.run(lambda: add_kiosk(site.store, kiosk_id, name, reissue=reissue, audit=audit))
        except KioskExists:
            errors["kiosk_id"] = _("Kiosk {id} exists already; tick “new credential” to give it a new one "
                                   "(its old one stops working)").format(id=kiosk_id)
    if errors:
        return await _kiosks_page(request, who, site, 422, errors=errors, values=fields)
    # the words ``bookcorner central add-kiosk`` prints
    instructions = _("This is kiosk {id}'s credential; it is shown only once. On the kiosk, save it as the "
                     "file named by [sync] credential_file (default <data_dir>/sync/credential), readable "
                     "by the sync daemon only (chmod 600).").format(id=kiosk_id)
    return _show(request, site, "school_issued.html", who, kind="kiosk", token=token, kiosk_id=kiosk_id,
                 instructions=instructions, server=str(request.base_url).rstrip("/"))


@router.post("/school/kiosks/{kiosk_id}/revoke")
async def revoke(request: Request, who: Librarian, fields: Form, site: Dash, kiosk_id: str) -> Response:
    if fields.get("confirm", "").strip() != kiosk_id:
        return await _kiosks_page(request, who, site, 422, revoke_error=(kiosk_id, _(
            "Type the kiosk's id ({id}) to confirm").format(id=kiosk_id)))
    try:
        count = await site.run(school.revoke_kiosk, site.store, who.name, kiosk_id)
    except Refused as refused:
        return await _kiosks_page(request, who, site, 404, revoke_error=(kiosk_id, str(refused)))
    return site.redirect("/school/kiosks?" + urlencode({"done": "revoked" if count else "none", "kiosk": kiosk_id}))


# --- librarians --------------------------------------------------------------------------------


async def _librarians_page(request: Request, who: sessions.Session, site: Site, status: int = 200,
                           **values: Any) -> Response:
    rows = await site.run(school.librarian_rows, site.store, who.session_hash)
    return _show(request, site, "school_librarians.html", who, status, librarians=rows,
                 done=request.query_params.get("done"), **values)


@router.get("/school/librarians")
async def librarians(request: Request, who: Librarian, site: Dash) -> Response:
    return await _librarians_page(request, who, site)


@router.post("/school/librarians")
async def add_one(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    name = fields.get("name", "").strip()
    if not school.printable(name, 120):
        return await _librarians_page(request, who, site, 422, name_error=_("A name (at most 120 characters)"),
                                      typed=name)
    token = await site.run(lambda: add_librarian(site.store, name, audit=Audit(who.name, "librarian.add", name, {})))
    return _show(request, site, "school_issued.html", who, kind="librarian", token=token, name=name)


@router.post("/school/librarians/{ref}/revoke")
async def revoke_one(request: Request, who: Librarian, fields: Form, site: Dash, ref: str) -> Response:
    try:
        if not CREDENTIAL_REF.fullmatch(ref):
            raise Refused(_("No such credential, or it is revoked already"))
        rows = await site.run(school.librarian_rows, site.store, who.session_hash)
        holder = next((r.name for r in rows if r.ref == ref and r.revoked_at is None), None)
        if holder is None:
            raise Refused(_("No such credential, or it is revoked already"))
        if fields.get("confirm", "").strip() != holder:
            raise Refused(_("Type the librarian's name ({name}) to confirm").format(name=holder))
        await site.run(school.revoke_librarian, site.store, who.name, ref)
    except Refused as refused:
        return await _librarians_page(request, who, site, 422, revoke_error=(ref, str(refused)))
    return site.redirect("/school/librarians?done=revoked")
