"""The dashboard's first pages: signing in and out, end of day, the review queue, the
audit log and the circulation exports (CSV of events, Koha .koc)."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta

from fastapi import Request
from fastapi.responses import Response

from bookcorner.central import db
from bookcorner.central.dashboard import auth, exports, queries
from bookcorner.central.dashboard.site import CSS_PATH, CSV_MEDIA, PREFIX, Site
from bookcorner.central.replay import CHANGES_ITEMS
from bookcorner.i18n import _

#: event types whose book or student a librarian may correct (those replay applies to an item)
CORRECTABLE = frozenset(str(t) for t in CHANGES_ITEMS)
CSS = CSS_PATH.read_bytes()
PAGES = ("", "/", "/end-of-day", "/reviews", "/audit", "/exports", "/exports/events.csv", "/exports/circulation.koc")
#: open to anyone: the sign-in form and the style sheet
PUBLIC = ("/sign-in", "/static/dashboard.css")
FORMS = ("/sign-out", "/reviews/1")


def _reason_text(code: str) -> str:
    words = {
        "unknown_event_type": _("The kiosk recorded something this server does not know"),
        "invalid_payload": _("The kiosk's record is incomplete"),
        "not_on_loan": _("A book was returned that was not on loan"),
        "loan_changed": _("The loan had changed elsewhere"),
        "older_than_item_change": _("Older than a later change to the book recorded elsewhere"),
        "journal_damage": _("The kiosk's journal was damaged"),
        "seq_conflict": _("Two different events with one sequence number"),
        "event_id_conflict": _("One event id used for two different events"),
        "events_missing": _("Events the kiosk lost"),
        "card_held_by_other": _("The card belongs to someone else"),
        "item_id_taken": _("The book's id is already used by another book"),
        "not_handled_here": _("The server does not apply this kind of event"),
        "journal_restored": _("The kiosk was restored from a backup"),
        "journal_repaired": _("The kiosk's journal was repaired and lost its newest events"),
        "journal_went_back": _("The kiosk's journal went back in time"),
        "due_date_from_wrong_clock": _("The due date was worked out on a wrong kiosk clock"),
    }
    return words.get(code, code)


def _shown_time(text: object) -> str:
    """A time of a review's detail (ISO, in the school's zone) as the librarian reads it."""
    return str(text or "?")[:16].replace("T", " ")


def _review_explanation(code: str, detail: dict) -> str:
    """What a journal review means, in one sentence for the librarian ("" for other reasons)."""
    if code == "journal_restored":
        when = str(detail.get("restored_from") or "?")[:16].replace("T", " ")
        return _("This kiosk was restored from a backup of {when}; {loans} loan(s) ({events} event(s)) were made "
                 "after the backup and are not on the kiosk any more. They are kept here and the kiosk has taken "
                 "their loans back; nothing was lost.").format(when=when, loans=detail.get("loans_not_here", 0),
                                                                events=detail.get("events_not_here", 0))
    if code == "journal_repaired":
        return _("The kiosk's journal was repaired and lost its events from number {seq} on; {events} of them had "
                 "reached this server and are kept here.").format(seq=detail.get("since_seq", "?"),
                                                                  events=detail.get("events_not_here", 0))
    if code == "invalid_payload" and detail.get("problem"):
        problems = {"too_long": _("too long for the database"), "control_character": _("holds a control character"),
                    "not_a_string": _("not text"), "empty": _("empty"), "not_a_list": _("not a list"),
                    "too_many": _("too many entries"), "invalid_item": _("not a valid book record"),
                    "too_deep": _("nested too deeply"), "too_large": _("too large")}
        return _("The kiosk recorded {field} in a form this server cannot keep ({problem}); nothing of this event "
                 "was applied. The event is kept as it came; correct the book or student if you know them.").format(
            field=str(detail.get("field") or "?"),
            problem=problems.get(str(detail["problem"]), str(detail["problem"])))
    if code == "due_date_from_wrong_clock":
        return _("The kiosk's clock read {kiosk_time} when this book was lent, but it was really {corrected_time}: "
                 "the child was told the book is due on {given}, and the rules give {corrected}. The loan keeps "
                 "{given} until you decide: Accept changes it to {corrected}, Dismiss keeps {given}.").format(
            kiosk_time=_shown_time(detail.get("kiosk_time")), corrected_time=_shown_time(detail.get("corrected_time")),
            given=str(detail.get("due_given") or "?"), corrected=str(detail.get("due_corrected") or "?"))
    if code == "journal_went_back":
        return _("{count} event(s) of this kiosk came under numbers this server already had for other events (its "
                 "journal went back in time: files copied back by hand?). They were applied as the new events they "
                 "are; nothing was lost.").format(count=detail.get("reused_numbers", 0))
    return ""


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
    """Why the server could not vouch for an event's time (central.clock's flags)."""
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
    site.globals.update(reason_text=_reason_text, review_explanation=_review_explanation,
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

    @site.page_route("/reviews")
    async def review_queue(request: Request, who: auth.Session) -> Response:
        waiting = await site.run(queries.reviews, site.store)
        decided = await site.run(lambda: queries.reviews(site.store, resolved=True, limit=50))
        return site.page(request, "reviews.html", who=who, waiting=waiting, decided=decided,
                    message=request.query_params.get("done"))

    @site.form_route("/reviews/{review_id}")
    async def decide(request: Request, who: auth.Session, fields: dict[str, str], review_id: int) -> Response:
        decision, note = fields.get("decision", ""), fields.get("note", "").strip()[:2000]
        if decision not in queries.DECISIONS or (decision == "dismiss" and not note):
            waiting = await site.run(queries.reviews, site.store)
            return site.page(request, "reviews.html", 422, who=who, waiting=waiting, decided=[],
                        error=_("Dismissing needs a note saying why."))
        try:
            if decision == "correct":
                await site.run(lambda: queries.correct(
                    site.store, review_id, who.name, note, item_id=fields.get("item_id", "").strip()[:80],
                    patron_id=fields.get("patron_id", "").strip()[:80]))
            else:
                await site.run(queries.decide, site.store, review_id, decision, note, who.name,
                               fields.get("effect", "")[:400])
        except queries.DoesNotFit as problem:
            waiting = await site.run(queries.reviews, site.store)
            return site.page(request, "reviews.html", 422, who=who, waiting=waiting, decided=[],
                        error=_("The correction does not fit: {reason}").format(reason=_fit_text(str(problem))))
        except queries.BookChanged:
            waiting = await site.run(queries.reviews, site.store)
            return site.page(request, "reviews.html", 409, who=who, waiting=waiting, decided=[],
                             error=_("The book changed since this page was shown: look at what Accept will do "
                                     "now and decide again."))
        except queries.AlreadyDecided:
            waiting = await site.run(queries.reviews, site.store)
            return site.page(request, "reviews.html", 409, who=who, waiting=waiting, decided=[],
                        error=_("That item was already decided (or does not exist)."))
        return site.redirect(f"/reviews?done={review_id}")

    @site.page_route("/audit")
    async def audit_page(request: Request, who: auth.Session) -> Response:
        rows = await site.run(queries.audit, site.store, 200)
        return site.page(request, "audit.html", who=who, rows=rows)

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
