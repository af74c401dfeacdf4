"""The dashboard's first pages: signing in and out, end of day, the review queue, the
audit log and the circulation exports (CSV of events, Koha .koc)."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from bookcorner.central import db
from bookcorner.central.dashboard import auth, exports, queries, review_text
from bookcorner.central.dashboard.school import find_students
from bookcorner.central.dashboard.school import student as student_of
from bookcorner.central.dashboard.site import CSS_PATH, CSV_MEDIA, PREFIX, Site
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


def _find_people(store: db.Store, text: str) -> list[Any]:
    """Students whose name, class or id holds ``text``, the holder of the card ``text`` first."""
    found = find_students(store, text)
    holder = queries.card_holder(store, text)
    if holder and all(p.patron_id != holder for p in found):
        held = student_of(store, holder)
        if held is not None:
            found.insert(0, held.record)
    return found


def _case(r: queries.ReviewItem) -> review_text.Case:
    return review_text.Case(r.reason, r.kiosk_id, r.detail, r.event, r.item, r.seq, r.created_at)


def _fit_text(code: str) -> str:
    return {"nothing_corrected": _("name the right book or student"),
            "not_correctable": _("this kind of event cannot be corrected here"),
            "unknown_item": _("no book with that id in the catalogue"),
            "unknown_patron": _("no student with that id"),
            }.get(code) or _reason_text(code)


def _accept_text(effect: queries.AcceptEffect, people: dict[str, str]) -> list[str]:
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


def mount(site: Site) -> None:
    site.globals.update(reason_text=_reason_text,
                        corner_problem_text=_problem_text, accept_text=_accept_text,
                        correctable=CORRECTABLE)
    site.globals.update(time_text=_time_text)

    @site.app.get(PREFIX + "/static/dashboard.css", include_in_schema=False)
    async def css() -> Response:
        return Response(CSS, media_type="text/css", headers={"Cache-Control": "max-age=3600",
                                                             "X-Content-Type-Options": "nosniff"})

    @site.app.get(PREFIX + "/sign-in", include_in_schema=False)
    async def sign_in_form(request: Request) -> Response:
        token = auth.new_secret()
        response = site.page(request, "sign_in.html", csrf=token, failed=False)
        response.set_cookie(auth.SIGN_IN_COOKIE, token, path=PREFIX, httponly=True, samesite="strict",
                            secure=site.secure(request), max_age=3600)
        return response

    @site.app.post(PREFIX + "/sign-in", include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        fields = await site.form(request)
        if fields is None or not auth.same(fields.get("csrf"), request.cookies.get(auth.SIGN_IN_COOKIE)):
            return site.refused(request, 403)
        attempt = await site.run(auth.sign_in, site.store, fields.get("name", "").strip(),
                                 fields.get("credential", "").strip(), request.client.host if request.client else "")
        if attempt.refused_until is not None:
            wait = max(1, math.ceil((attempt.refused_until - db.now()).total_seconds()))
            response: Response = site.page(request, "sign_in.html", 429, csrf=request.cookies.get(auth.SIGN_IN_COOKIE),
                                 refused_until=attempt.refused_until)
            response.headers["Retry-After"] = str(wait)
            return response
        if attempt.secret is None:
            await asyncio.sleep(attempt.delay_s)
            return site.page(request, "sign_in.html", 401, csrf=request.cookies.get(auth.SIGN_IN_COOKIE), failed=True)
        response = site.redirect("/end-of-day")
        response.set_cookie(auth.SESSION_COOKIE, attempt.secret, path=PREFIX, httponly=True, samesite="strict",
                            secure=site.secure(request), max_age=auth.SESSION_HOURS * 3600)
        response.delete_cookie(auth.SIGN_IN_COOKIE, path=PREFIX)
        return response

    @site.form_route("/sign-out")
    async def sign_out(request: Request, who: auth.Session, _fields: dict[str, str]) -> Response:
        await site.run(auth.sign_out, site.store, who)
        response = site.to_sign_in()
        response.delete_cookie(auth.SESSION_COOKIE, path=PREFIX)
        return response

    @site.page_route("")
    @site.page_route("/")
    async def home(request: Request, who: auth.Session) -> Response:
        return site.redirect("/end-of-day")

    @site.page_route("/end-of-day")
    async def end_of_day(request: Request, who: auth.Session) -> Response:
        today = site.today()
        corners, movements = await site.run(queries.end_of_day, site.store, today, site.zone)
        return site.page(request, "end_of_day.html", who=who, today=today, corners=corners, movements=movements,
                    loans=sum(m.kind == queries.LOANS for m in movements),
                    returns=sum(m.kind == queries.RETURNS for m in movements),
                    all_in=all(c.all_in for c in corners))

    async def queue(request: Request, who: auth.Session, status: int = 200, page_asked: str | None = None,
                    **values: Any) -> Response:
        """The waiting cases, one page of them, each told in a sentence; the one being
        corrected (``case``) with the books and students its search found."""
        count = await site.run(queries.waiting_count, site.store)
        pages = max(1, math.ceil(count / queries.PAGE_SIZE))
        page = min(_number(page_asked or request.query_params.get("page"), 1), pages)
        waiting = await site.run(lambda: queries.reviews(site.store, offset=(page - 1) * queries.PAGE_SIZE))
        corners = await site.run(queries.corner_names, site.store)
        decided = [] if status != 200 else await site.run(lambda: queries.reviews(site.store, resolved=True, limit=50))
        case = _number(request.query_params.get("case"), 0)
        book, student = (request.query_params.get(k, "").strip()[:80] for k in ("book", "student"))
        books = await site.run(queries.find_items, site.store, book) if case and book else []
        students = await site.run(_find_people, site.store, student) if case and student else []
        stories = {r.review_id: review_text.sentence(_case(r), review_text.Words(site.zone, r.titles, r.people,
                                                                                   corners))
                   for r in waiting}
        decided_words = {r.review_id: review_text.Words(site.zone, r.titles, r.people, corners) for r in decided}
        return site.page(request, "reviews.html", status, who=who, waiting=waiting, decided=decided, count=count,
                         count_text=ngettext("{count} case waits for a decision.", "{count} cases wait for a decision.",
                                             count).format(count=count),
                         page=page, pages=pages, stories=stories, decided_words=decided_words, case=case,
                         book=book, student=student, books=books, students=students, **values)

    @site.page_route("/reviews")
    async def review_queue(request: Request, who: auth.Session) -> Response:
        return await queue(request, who, message=request.query_params.get("done"))

    @site.form_route("/reviews/{review_id}")
    async def decide(request: Request, who: auth.Session, fields: dict[str, str], review_id: int) -> Response:
        decision, note = fields.get("decision", ""), fields.get("note", "").strip()[:2000]
        page = fields.get("page")
        if decision not in queries.DECISIONS or (decision == "dismiss" and not note):
            return await queue(request, who, 422, page, error=_("Dismissing needs a note saying why."))
        try:
            if decision == "correct":
                await site.run(lambda: queries.correct(
                    site.store, review_id, who.name, note, item_id=fields.get("item_id", "").strip()[:80],
                    patron_id=fields.get("patron_id", "").strip()[:80]))
            else:
                await site.run(queries.decide, site.store, review_id, decision, note, who.name,
                               fields.get("effect", "")[:400])
        except queries.DoesNotFit as problem:
            return await queue(request, who, 422, page,
                               error=_("The correction does not fit: {reason}").format(reason=_fit_text(str(problem))))
        except queries.BookChanged:
            return await queue(request, who, 409, page,
                               error=_("The book changed since this page was shown: look at what Accept will do "
                                       "now and decide again."))
        except queries.AlreadyDecided:
            return await queue(request, who, 409, page, error=_("That item was already decided (or does not exist)."))
        back = _number(page, 1)
        return site.redirect(f"/reviews?done={review_id}" + (f"&page={back}" if back > 1 else ""))

    @site.page_route("/audit")
    async def audit_page(request: Request, who: auth.Session) -> Response:
        rows = await site.run(queries.audit, site.store, 200)
        names = await site.run(queries.audit_names, site.store, rows)
        words = review_text.Words(site.zone, names.titles, names.people, names.corners)
        told = [(row, review_text.audit_sentence(review_text.AuditEntry(
            row.who, row.action, row.target, queries.json_object(row.detail), names.reviews.get(_review_of(row.target))),
            words)) for row in rows]
        return site.page(request, "audit.html", who=who, rows=told)

    @site.page_route("/exports")
    async def export_page(request: Request, who: auth.Session) -> Response:
        today = site.today()
        return site.page(request, "exports.html", who=who, today=today, week_ago=today - timedelta(days=6))

    async def download(request: Request, who: auth.Session, kind: str) -> Response:
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
        await site.run(queries.record, site.store, who.name, f"export.{kind}", name,
                                {"from": start.isoformat(), "to": end.isoformat()})
        return site.download(body.encode("utf-8"), name, media)

    @site.page_route("/exports/events.csv")
    async def export_csv(request: Request, who: auth.Session) -> Response:
        return await download(request, who, "csv")

    @site.page_route("/exports/circulation.koc")
    async def export_koc(request: Request, who: auth.Session) -> Response:
        return await download(request, who, "koc")
