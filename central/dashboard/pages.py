"""The dashboard's first pages: signing in and out, end of day, the review queue, the
audit log and the circulation exports (CSV of events, Koha .koc)."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bookcorner.central import db
from bookcorner.central.dashboard import review_text
from bookcorner.central.dashboard.deps import AnyonesForm, Dash, Form, Librarian, Person, ReviewId
from bookcorner.central.dashboard.site import CSS_PATH, PREFIX, Site
from bookcorner.central.kiosks import DISTRICT
from bookcorner.central.schools import prefixed
from bookcorner.central.services import exports, reviews, school, sessions
from bookcorner.central.services.tables import CSV_MEDIA
from bookcorner.circulation.replay import CHANGES_ITEMS
from bookcorner.i18n import _, ngettext

#: event types whose book or student a librarian may correct (those replay applies to an item)
CORRECTABLE = frozenset(str(t) for t in CHANGES_ITEMS)
CSS = CSS_PATH.read_bytes()
PAGES = ("", "/", "/end-of-day", "/reviews", "/audit", "/exports", "/exports/events.csv", "/exports/circulation.koc")
#: open to anyone: the sign-in form and the style sheet
PUBLIC = ("/sign-in", "/static/dashboard.css")
FORMS = ("/sign-out", "/reviews/1")


def _reason_text(code: str) -> str:
    return review_text.reason_title(code)


def _number(text: str | None, default: int) -> int:
    """A page or case number from an address or a form (``default`` when it is none)."""
    return int(text) if text and text.isdigit() and len(text) < 10 else default


def _review_of(target: str) -> int:
    return int(target[7:]) if target.startswith("review:") and target[7:].isdigit() and len(target) < 17 else 0


def _case(r: reviews.ReviewItem) -> review_text.Case:
    return review_text.Case(r.reason, r.kiosk_id, r.detail, r.event, r.item, r.seq, r.created_at)


def _fit_text(code: str) -> str:
    return {"nothing_corrected": _("name the right book or student"),
            "not_correctable": _("this kind of event cannot be corrected here"),
            "unknown_item": _("no book with that id in the catalogue"),
            "unknown_patron": _("no student with that id"),
            }.get(code) or _reason_text(code)


def _accept_text(effect: reviews.AcceptEffect, people: dict[str, str]) -> list[str]:
    """What Accept will do, in the librarian's words, one line per change."""
    if not effect.changes:
        return [{"record_only": _("Accept records the decision only: no loan or book changes."),
                 "not_on_loan": _("Accept changes nothing: the server already has the book on the shelf. "
                                  "The decision is recorded."),
                 "no_change": _("Accept changes nothing: the book is already as the event says. "
                                "The decision is recorded."),
                 }.get(effect.unchanged) or _("Accept changes nothing ({reason}). The decision is recorded.").format(
                     reason=_fit_text(effect.unchanged))]
    lines = []
    for code, value in effect.changes:
        who = people.get(value) or value
        if code == "close_loan":
            lines.append(_("Accept closes the loan of this book to {student}.").format(student=who))
        elif code == "open_loan":
            lines.append(_("Accept lends this book to {student}.").format(student=who))
        elif code == "due":
            lines.append(_("The loan will be due on {day}.").format(day=value))
        else:
            lines.append({"available": _("Accept puts the book back on the shelf (available)."),
                          "in_repair": _("Accept marks the book as in repair."),
                          "lost": _("Accept marks the book as lost.")}.get(value, value))
    return lines


def _time_text(code: str) -> str:
    """Why the server could not vouch for an event's time (circulation.retiming's flags)."""
    return {
        "time_before_provisioning": _("The kiosk's clock put this before the kiosk was added to the server, and "
                                      "nothing confirms that clock: the time shown is the server's estimate."),
        "time_in_the_future": _("The kiosk's clock was ahead: the time shown is when the server received it."),
        "time_went_backwards": _("The kiosk's clock went back (an old time after a power cut): the time shown is "
                                 "the server's estimate."),
        "time_out_of_bounds": _("The kiosk's clock disagrees with the events around this one: the time shown is "
                                "the server's estimate."),
        "time_unreadable": _("The kiosk's time could not be read: the time shown is the server's estimate."),
    }.get(code, code)


def _problem_text(code: str) -> str:
    return {"no_contact_today": _("no contact today"),
            "sequence_gap": _("events missing in its sequence"),
            "events_waiting": _("events still waiting on the kiosk")}.get(code, code)


#: what the pages' templates call
GLOBALS = {"reason_text": _reason_text, "corner_problem_text": _problem_text, "accept_text": _accept_text,
           "correctable": CORRECTABLE, "time_text": _time_text}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/static/dashboard.css")
async def css() -> Response:
    return Response(CSS, media_type="text/css", headers={"Cache-Control": "max-age=3600",
                                                         "X-Content-Type-Options": "nosniff"})


@router.get("/sign-in")
async def sign_in_form(request: Request, site: Dash) -> Response:
    token = sessions.new_secret()
    response = site.page(request, "sign_in.html", csrf=token, failed=False)
    response.set_cookie(sessions.SIGN_IN_COOKIE, token, path=PREFIX, httponly=True, samesite="strict",
                        secure=site.secure(request), max_age=3600)
    return response


@router.post("/sign-in")
async def sign_in(request: Request, site: Dash) -> Response:
    fields = await site.form(request)
    if fields is None or not sessions.same(fields.get("csrf"), request.cookies.get(sessions.SIGN_IN_COOKIE)):
        return site.refused(request, 403)
    credential = fields.get("credential", "").strip()
    # the school the credential names: the librarian is signed in there, and only there
    school = await site.run(site.for_school_of, credential)
    attempt = await school.run(sessions.sign_in, school.store, fields.get("name", "").strip(),
                               credential, request.client.host if request.client else "")
    if attempt.refused_until is not None:
        wait = max(1, math.ceil((attempt.refused_until - db.now()).total_seconds()))
        response: Response = site.page(request, "sign_in.html", 429, csrf=request.cookies.get(sessions.SIGN_IN_COOKIE),
                                       refused_until=attempt.refused_until)
        response.headers["Retry-After"] = str(wait)
        return response
    if attempt.secret is None:
        await asyncio.sleep(attempt.delay_s)
        return site.page(request, "sign_in.html", 401, csrf=request.cookies.get(sessions.SIGN_IN_COOKIE), failed=True)
    response = site.redirect("/district" if attempt.role == DISTRICT else "/end-of-day")
    response.set_cookie(sessions.SESSION_COOKIE, prefixed(school.store, attempt.secret), path=PREFIX, httponly=True, samesite="strict",
                        secure=site.secure(request), max_age=sessions.SESSION_HOURS * 3600)
    response.delete_cookie(sessions.SIGN_IN_COOKIE, path=PREFIX)
    return response


@router.post("/sign-out")
async def sign_out(who: Person, _fields: AnyonesForm, site: Dash) -> Response:
    await site.run(sessions.sign_out, site.store, who)
    response = site.to_sign_in()
    response.delete_cookie(sessions.SESSION_COOKIE, path=PREFIX)
    return response


@router.get("")
@router.get("/")
async def home(_who: Librarian, site: Dash) -> Response:
    return site.redirect("/end-of-day")


@router.get("/end-of-day")
async def end_of_day(request: Request, who: Librarian, site: Dash) -> Response:
    today = site.today()
    corners, movements = await site.run(reviews.end_of_day, site.store, today, site.zone)
    return site.page(request, "end_of_day.html", who=who, today=today, corners=corners, movements=movements,
                     loans=sum(m.kind == reviews.LOANS for m in movements),
                     returns=sum(m.kind == reviews.RETURNS for m in movements),
                     all_in=all(c.all_in for c in corners))


async def _queue(request: Request, who: sessions.Session, site: Site, status: int = 200, page_asked: str | None = None,
                 **values: Any) -> Response:
    """The waiting cases, one page of them, each told in a sentence; the one being
    corrected (``case``) with the books and students its search found."""
    count = await site.run(reviews.waiting_count, site.store)
    pages = max(1, math.ceil(count / reviews.PAGE_SIZE))
    page = min(_number(page_asked or request.query_params.get("page"), 1), pages)
    waiting = await site.run(lambda: reviews.reviews(site.store, offset=(page - 1) * reviews.PAGE_SIZE))
    corners = await site.run(reviews.corner_names, site.store)
    decided = [] if status != 200 else await site.run(lambda: reviews.reviews(site.store, resolved=True, limit=50))
    case = _number(request.query_params.get("case"), 0)
    book, student = (request.query_params.get(k, "").strip()[:80] for k in ("book", "student"))
    books = await site.run(reviews.find_items, site.store, book) if case and book else []
    students = await site.run(school.find_people, site.store, student) if case and student else []
    stories = {r.review_id: review_text.sentence(_case(r), review_text.Words(site.zone, r.titles, r.people, corners))
               for r in waiting}
    decided_words = {r.review_id: review_text.Words(site.zone, r.titles, r.people, corners) for r in decided}
    return site.page(request, "reviews.html", status, who=who, waiting=waiting, decided=decided, count=count,
                     count_text=ngettext("{count} case waits for a decision.", "{count} cases wait for a decision.",
                                         count).format(count=count),
                     page=page, pages=pages, stories=stories, decided_words=decided_words, case=case,
                     book=book, student=student, books=books, students=students, **values)


@router.get("/reviews")
async def review_queue(request: Request, who: Librarian, site: Dash) -> Response:
    return await _queue(request, who, site, message=request.query_params.get("done"))


async def _apply(site: Site, who: sessions.Session, fields: dict[str, str], review_id: int, decision: str,
                 note: str) -> None:
    if decision == "correct":
        await site.run(lambda: reviews.correct(
            site.store, review_id, who.name, note, item_id=fields.get("item_id", "").strip()[:80],
            patron_id=fields.get("patron_id", "").strip()[:80]))
    else:
        await site.run(reviews.decide, site.store, review_id, decision, note, who.name, fields.get("effect", "")[:400])


@router.post("/reviews/{review_id}")
async def decide(review_id: ReviewId, request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    decision, note = fields.get("decision", ""), fields.get("note", "").strip()[:2000]
    page = fields.get("page")
    if decision not in reviews.DECISIONS or (decision == "dismiss" and not note):
        return await _queue(request, who, site, 422, page, error=_("Dismissing needs a note saying why."))
    try:
        await _apply(site, who, fields, review_id, decision, note)
    except reviews.DoesNotFit as problem:
        return await _queue(request, who, site, 422, page,
                            error=_("The correction does not fit: {reason}").format(reason=_fit_text(str(problem))))
    except reviews.BookChanged:
        return await _queue(request, who, site, 409, page,
                            error=_("The book changed since this page was shown: look at what Accept will do "
                                    "now and decide again."))
    except reviews.AlreadyDecided:
        return await _queue(request, who, site, 409, page,
                            error=_("That item was already decided (or does not exist)."))
    back = _number(page, 1)
    return site.redirect(f"/reviews?done={review_id}" + (f"&page={back}" if back > 1 else ""))


@router.get("/audit")
async def audit_page(request: Request, who: Librarian, site: Dash) -> Response:
    rows = await site.run(reviews.audit, site.store, 200)
    names = await site.run(reviews.audit_names, site.store, rows)
    words = review_text.Words(site.zone, names.titles, names.people, names.corners)
    told = [(row, review_text.audit_sentence(review_text.AuditEntry(
        row.who, row.action, row.target, reviews.json_object(row.detail), names.reviews.get(_review_of(row.target))),
        words)) for row in rows]
    return site.page(request, "audit.html", who=who, rows=told)


@router.get("/exports")
async def export_page(request: Request, who: Librarian, site: Dash) -> Response:
    today = site.today()
    return site.page(request, "exports.html", who=who, today=today, week_ago=today - timedelta(days=6))


async def _download(request: Request, who: sessions.Session, site: Site, kind: str) -> Response:
    chosen = site.period(request)
    if chosen is None:
        return site.page(request, "refused.html", 422, error=_("Choose a valid period (from, to)."))
    start, end = chosen
    if kind == "csv":
        body = await site.run(exports.events_csv, site.store, start, end, site.zone)
        name, media = f"bookcorner-events-{start}-{end}.csv", CSV_MEDIA
    else:
        body = await site.run(exports.koc, site.store, start, end, site.zone, site.version)
        name, media = f"bookcorner-{start}-{end}.koc", "text/plain; charset=utf-8"
    await site.run(reviews.record, site.store, who.name, f"export.{kind}", name,
                   {"from": start.isoformat(), "to": end.isoformat()})
    return site.download(body.encode("utf-8"), name, media)


@router.get("/exports/events.csv")
async def export_csv(request: Request, who: Librarian, site: Dash) -> Response:
    return await _download(request, who, site, "csv")


@router.get("/exports/circulation.koc")
async def export_koc(request: Request, who: Librarian, site: Dash) -> Response:
    return await _download(request, who, site, "koc")
