"""A review case and an audit record told in the librarian's words: one or two sentences
built from the reason (or the action) and its data, naming books by title, students by
name and corners by their name, times in the school's time zone. Pure: everything it
names is passed in (``Words``); the words come from the active language.

Each review reason has its sentence in ``SENTENCES`` (reason code -> function of the case
and the names); a reason added elsewhere adds its entry there. A reason without one gets
a plain sentence that still names the corner, the time and the book or student."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from typing import Any, cast

from bookcorner.circulation.events import (
    PAYLOAD_CLASSES,
    Payload,
    UnknownPayload,
    decode_or_raw,
    event_type,
    item_id_of,
    new_title_of,
    patron_id_of,
)
from bookcorner.i18n import N_, _, ngettext

#: the payload of an event whose ids are not to be looked up (nothing named)
_NOTHING = UnknownPayload({})

MONTHS = (N_("Jan"), N_("Feb"), N_("Mar"), N_("Apr"), N_("May"), N_("Jun"), N_("Jul"), N_("Aug"), N_("Sep"),
          N_("Oct"), N_("Nov"), N_("Dec"))


@dataclass(frozen=True)
class Words:
    """The names a sentence may use: book titles by item id, people by patron id, corners
    by kiosk id, and the school's time zone."""

    zone: tzinfo
    titles: Mapping[str, str] = field(default_factory=dict)
    people: Mapping[str, str] = field(default_factory=dict)
    corners: Mapping[str, str] = field(default_factory=dict)

    def book(self, item_id: Any) -> str:
        if not isinstance(item_id, str) or not item_id:
            return _("a book")
        title = self.titles.get(item_id)
        if title:
            return _("“{title}”").format(title=title)
        return _("a book not in the catalogue (label {id})").format(id=_shown(item_id))

    def student(self, patron_id: Any) -> str:
        if not isinstance(patron_id, str) or not patron_id:
            return _("a student")
        return self.people.get(patron_id) or _("a student not on the list (card or id {id})").format(
            id=_shown(patron_id))

    def corner(self, kiosk_id: Any) -> str:
        if not isinstance(kiosk_id, str) or not kiosk_id:
            return _("a corner")
        return self.corners.get(kiosk_id) or kiosk_id

    def moment(self, when: Any) -> str:
        """A time as the school reads it: day, month and hour in its own time zone."""
        at = _instant(when)
        if at is None:
            return _("an unknown time")
        local = at.astimezone(self.zone)
        return _("{day} at {time}").format(day=day_text(local.date()), time=local.strftime("%H:%M"))


def day_text(day: date) -> str:
    return _("{day} {month}").format(day=day.day, month=_(MONTHS[day.month - 1]))


def _instant(when: Any) -> datetime | None:
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when)
        except ValueError:
            return None
    if not isinstance(when, datetime):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _day(value: Any) -> str:
    if isinstance(value, datetime):
        return day_text(value.date())
    if isinstance(value, date):
        return day_text(value)
    if isinstance(value, str):
        try:
            return day_text(date.fromisoformat(value[:10]))
        except ValueError:
            return ""
    return ""


def _shown(text: str) -> str:
    """An id as it may be shown: printable characters only, not too long."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= 40 else clean[:39] + "…"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class Case:
    """A review as the sentence needs it: the reason, what the server wrote about it
    (``detail``), the event it is about (``event``: type, payload, time; None for lost
    events or a journal notice) and the book as it is now (``item``: status, patron_id,
    due, since; None when the case names no book)."""

    reason: str
    kiosk_id: str
    detail: Mapping[str, Any]
    event: Mapping[str, Any] | None = None
    item: Mapping[str, Any] | None = None
    seq: int | None = None
    created_at: datetime | None = None

    @property
    def payload(self) -> Payload:
        """The event's payload, typed (central.payloads.stored); one given as builtins is decoded here."""
        found = (self.event or {}).get("payload")
        if isinstance(found, Mapping):
            return decode_or_raw(self.kind, found)
        return cast(Payload, found) if isinstance(found, PAYLOAD_CLASSES) else _NOTHING

    @property
    def kind(self) -> str:
        """The event's type, under its current name (``loan.returned`` is ``loan.checked_in``)."""
        kind = (self.event or {}).get("type") or self.detail.get("type")
        return _current_name(kind) if isinstance(kind, str) else ""

    @property
    def item_id(self) -> Any:
        return self.detail.get("item_id") or item_id_of(self.payload)

    @property
    def when(self) -> Any:
        return (self.event or {}).get("time") or self.created_at


# --- pieces ---------------------------------------------------------------------------------


def _current_name(kind: str) -> str:
    known = event_type(kind)
    return str(known) if known is not None else kind


def action(kind: str, payload: Payload, words: Words) -> str:
    """What an event recorded, as a clause with its subject ("Wang Li borrowed “Frog”")."""
    kind = _current_name(kind)
    book, patron = words.book(item_id_of(payload)), patron_id_of(payload)
    who = words.student(patron)
    if kind == "loan.checked_out":
        return _("{student} borrowed {book}").format(student=who, book=book)
    if kind == "loan.checked_in":
        if isinstance(patron, str) and patron:
            return _("{student} returned {book}").format(student=who, book=book)
        return _("{book} was returned").format(book=book)
    if kind == "loan.renewed":
        return _("{student} renewed {book}").format(student=who, book=book)
    simple = {"item.damaged": N_("{book} was put aside as damaged"), "item.lost": N_("{book} was reported lost"),
              "item.found": N_("{book} was reported found"), "item.repaired": N_("{book} came back from repair")}
    if kind in simple:
        return _(simple[kind]).format(book=book)
    if kind == "card.enrolled":
        return _("A card was given to {student}").format(student=who)
    if kind == "item.registered":
        title = new_title_of(payload)
        if title:
            return _("A new book {title} was put on the shelf").format(title=_("“{title}”").format(title=title))
        return _("A new book was put on the shelf")
    if kind == "journal.damage":
        return _("The corner found damage in its own records")
    return _("The corner recorded something this server does not know")


def _at(case: Case, words: Words) -> str:
    """ "at 3 Dec at 12:16 at Class 3.2" as one clause."""
    return _("on {when} at {corner}").format(when=words.moment(case.when), corner=words.corner(case.kiosk_id))


def book_now(item: Mapping[str, Any] | None, words: Words) -> str:
    """Where the server has the book now, as a sentence ("" when it does not know the book)."""
    if not item:
        return ""
    patron = item.get("patron_id")
    if isinstance(patron, str) and patron:
        since = _day(item.get("since"))
        if since:
            return _("The server has it on loan to {student} since {day}.").format(student=words.student(patron),
                                                                                  day=since)
        return _("The server has it on loan to {student}.").format(student=words.student(patron))
    return {"lost": _("The server has it marked lost."), "in_repair": _("The server has it in repair."),
            "withdrawn": _("The server has it withdrawn from the catalogue.")}.get(
        str(item.get("status") or ""), _("The server has it on the shelf."))


def _join(*sentences: str) -> str:
    """Sentences one after the other (no space after a Chinese full stop)."""
    return re.sub(r"(?<=[。；！？]) ", "", " ".join(s for s in sentences if s))


FIELD_WORDS = {"payload.item_id": N_("the book's label"), "payload.patron_id": N_("the student's card or id"),
               "payload.card_id": N_("the card number"), "payload.loan_id": N_("the loan's number"),
               "payload.due": N_("the due date"), "payload.replaces": N_("the cards it replaces"),
               "payload": N_("the whole record"), "payload.item": N_("the new book's record")}
MISSING_WORDS = {"item_id": N_("the book"), "patron_id or due": N_("the student or the due date"),
                 "due": N_("the due date"), "card_id or patron_id": N_("the card or the student")}
PROBLEM_WORDS = {"too_long": N_("too long for the database"), "control_character": N_("holds a control character"),
                 "not_a_string": N_("not text"), "empty": N_("empty"), "not_a_list": N_("not a list"),
                 "too_many": N_("too many entries"), "invalid_item": N_("not a valid book record"),
                 "too_deep": N_("nested too deeply"), "too_large": N_("too large"),
                 "invalid": N_("missing, or not what this kind of record holds")}


def field_words(path: Any) -> str:
    path = str(path or "")
    if path in FIELD_WORDS:
        return _(FIELD_WORDS[path])
    if path.startswith("payload.item."):
        return _(FIELD_WORDS["payload.item"])
    return _("one of its parts")


# --- one sentence per reason ----------------------------------------------------------------


def _not_on_loan(case: Case, words: Words) -> str:
    return _join(_("{what} {at}, but the server did not have it on loan.").format(
        what=action(case.kind, case.payload, words), at=_at(case, words)), book_now(case.item, words))


def _loan_changed(case: Case, words: Words) -> str:
    holder = case.detail.get("on_loan_to")
    still = case.item is not None and case.item.get("patron_id") == holder
    return _join(_("{what} {at}, but by then the book was on another loan, to {student}.").format(
        what=action(case.kind, case.payload, words), at=_at(case, words), student=words.student(holder)),
        "" if still else book_now(case.item, words))


def _older(case: Case, words: Words) -> str:
    return _join(_("{what} {at}, but {corner} had recorded a later change to the book on {when}.").format(
        what=action(case.kind, case.payload, words), at=_at(case, words),
        corner=words.corner(case.detail.get("changed_by")), when=words.moment(case.detail.get("changed_at"))),
        book_now(case.item, words))


def _invalid(case: Case, words: Words) -> str:
    what = action(case.kind, case.payload, words) if case.kind in _SAFE_TO_NAME else _("The corner recorded an event")
    if case.detail.get("problem") in PROBLEM_WORDS:
        return _("{what} {at}, but this server cannot keep {field} as recorded ({problem}), so nothing of it was "
                 "applied. The record is kept as it came; correct the book or student if you know them.").format(
            what=what, at=_at(case, words), field=field_words(case.detail.get("field")),
            problem=_(PROBLEM_WORDS[str(case.detail["problem"])]))
    missing = MISSING_WORDS.get(str(case.detail.get("missing")))
    return _("{what} {at}, but the record does not say {missing}, so nothing of it was applied.").format(
        what=what, at=_at(case, words), missing=_(missing) if missing else _("everything it needs"))


#: event types whose payload's ids are looked up by name (an invalid payload's may not fit a column)
_SAFE_TO_NAME = frozenset({"loan.checked_out", "loan.checked_in", "loan.renewed", "item.damaged", "item.lost",
                           "item.found", "item.repaired"})


def _unknown_type(case: Case, words: Words) -> str:
    return _("{corner} recorded something this server does not know on {when} (a newer corner?); nothing of it "
             "was applied.").format(corner=words.corner(case.kiosk_id), when=words.moment(case.when))


def _not_handled(case: Case, words: Words) -> str:
    return _("{what} {at}; this server does not apply that kind of record, so it is kept for you to look at.").format(
        what=action(case.kind, case.payload, words), at=_at(case, words))


def _damage(case: Case, words: Words) -> str:
    return _("{corner} found damage in its own records on {when}: some of what it recorded may be lost. Check "
             "the corner's loans against its shelf.").format(corner=words.corner(case.kiosk_id),
                                                             when=words.moment(case.when))


def _seq_conflict(case: Case, words: Words) -> str:
    return _("{corner} sent two different records under one number on {when}; both are kept.").format(
        corner=words.corner(case.kiosk_id), when=words.moment(case.when))


def _event_id_conflict(case: Case, words: Words) -> str:
    sent = case.detail.get("event")
    sent = sent if isinstance(sent, Mapping) else {}
    kind = _current_name(str(sent.get("type") or ""))
    found = sent.get("payload")
    payload = decode_or_raw(kind, found) if isinstance(found, Mapping) else _NOTHING
    stored = case.detail.get("stored_as")
    other = stored[0] if isinstance(stored, list) and stored else None
    return _("{corner} sent a record ({what}) that the server already has from {other}; the second copy was "
             "kept aside and not applied.").format(
        corner=words.corner(case.kiosk_id), other=words.corner(other),
        what=action(kind, payload if kind in _SAFE_TO_NAME else _NOTHING, words))


def _events_missing(case: Case, words: Words) -> str:
    first, last = _count(case.detail.get("from_seq")), _count(case.detail.get("to_seq"))
    count = max(1, last - first + 1)
    return ngettext("{corner} lost {count} record before sending it (noticed on {when}): it may have been a loan "
                    "or a return. Check the corner's shelf against the register.",
                    "{corner} lost {count} records before sending them (noticed on {when}): they may have been "
                    "loans or returns. Check the corner's shelf against the register.", count).format(
        corner=words.corner(case.kiosk_id), count=count, when=words.moment(case.created_at))


def _card_held(case: Case, words: Words) -> str:
    return _("{corner} gave card {card} to {student} on {when}, but the server has that card with {holder}; "
             "nothing changed.").format(
        corner=words.corner(case.kiosk_id), card=_shown(str(case.detail.get("card_id") or "?")),
        student=words.student(patron_id_of(case.payload)), when=words.moment(case.when),
        holder=words.student(case.detail.get("held_by")))


def _item_id_taken(case: Case, words: Words) -> str:
    new = new_title_of(case.payload)
    old = case.detail.get("title")
    return _("{corner} put a new book {new} on the shelf on {when} under label {id}, but that label already "
             "belongs to {old}; the new book was not added.").format(
        corner=words.corner(case.kiosk_id), when=words.moment(case.when),
        new=_("“{title}”").format(title=new) if isinstance(new, str) and new else _("(no title)"),
        id=_shown(str(case.item_id or "?")),
        old=_("“{title}”").format(title=old) if isinstance(old, str) and old else words.book(case.item_id))


def _restored(case: Case, words: Words) -> str:
    d = case.detail
    return _("{corner} was restored from a backup of {when}; {loans} loan(s) ({events} event(s)) were made after the "
             "backup and are not on the corner any more. They are kept here and the corner has taken their loans "
             "back; nothing was lost.").format(
        corner=words.corner(case.kiosk_id), when=words.moment(d.get("restored_from")),
        loans=_count(d.get("loans_not_here")), events=_count(d.get("events_not_here")))


def _repaired(case: Case, words: Words) -> str:
    return _("{corner}'s records were repaired on {when} and lost their newest {events} event(s); those had "
             "reached this server and are kept here.").format(
        corner=words.corner(case.kiosk_id), when=words.moment(case.created_at),
        events=_count(case.detail.get("events_not_here")))


def _went_back(case: Case, words: Words) -> str:
    return _("{count} record(s) of {corner} came under numbers this server already had for other records (its "
             "records went back in time: files copied back by hand?). They were applied as the new records they "
             "are; nothing was lost.").format(count=_count(case.detail.get("reused_numbers")),
                                              corner=words.corner(case.kiosk_id))


def _wrong_clock(case: Case, words: Words) -> str:
    d = case.detail
    return _("{student} borrowed {book} at {corner} when its clock read {kiosk_time}, but it was really "
             "{corrected_time}. The child was told the book is due on {given}; the rules give {corrected}. The loan "
             "keeps {given} until you decide: Accept changes it to {corrected}, Dismiss keeps {given}.").format(
        student=words.student(d.get("patron_id")), book=words.book(d.get("item_id")),
        corner=words.corner(case.kiosk_id), kiosk_time=words.moment(d.get("kiosk_time")),
        corrected_time=words.moment(d.get("corrected_time")), given=_day(d.get("due_given")),
        corrected=_day(d.get("due_corrected")))


_SENT_KINDS = {"checkout": N_("the loan of"), "checkin": N_("the return of"), "renewal": N_("the renewal of")}


def _sip2_refused(case: Case, words: Words) -> str:
    d = case.detail
    what = _(_SENT_KINDS.get(str(d.get("kind")), N_("the loan of")))
    said = str(d.get("screen") or "")  # the other system's words; ours (bridge.NO_CARD...) translated
    return _("The school's library system ({system}) refused {what} {book} by {student}, done at {corner} on "
             "{when}. It said: “{screen}”. The loan stands in bookcorner; record it in the library system by "
             "hand, then Dismiss this.").format(
        system=str(d.get("system", "")), what=what, book=words.book(d.get("item_id")),
        student=words.student(d.get("patron_id")), corner=words.corner(case.kiosk_id),
        when=words.moment(d.get("done_at")), screen=_(said) if said else "")


def _sip2_unsure(case: Case, words: Words) -> str:
    d = case.detail
    what = _(_SENT_KINDS.get(str(d.get("kind")), N_("the loan of")))
    return _("Bookcorner sent {what} {book} by {student}, done at {corner} on {when}, to the school's library system "
             "({system}), but its answer was lost, and the library system has the book on loan with another due "
             "date. Look there whether it was recorded; record it by hand if not, then Dismiss this.").format(
        what=what, book=words.book(d.get("item_id")), student=words.student(d.get("patron_id")),
        corner=words.corner(case.kiosk_id), when=words.moment(d.get("done_at")), system=str(d.get("system", "")))


Sentence = Callable[[Case, Words], str]

#: each review reason's sentence, by reason code (circulation.outcomes.ReviewReason); add new reasons here
SENTENCES: dict[str, Sentence] = {
    "not_on_loan": _not_on_loan,
    "loan_changed": _loan_changed,
    "older_than_item_change": _older,
    "invalid_payload": _invalid,
    "unknown_event_type": _unknown_type,
    "not_handled_here": _not_handled,
    "journal_damage": _damage,
    "seq_conflict": _seq_conflict,
    "event_id_conflict": _event_id_conflict,
    "events_missing": _events_missing,
    "card_held_by_other": _card_held,
    "item_id_taken": _item_id_taken,
    "journal_restored": _restored,
    "journal_repaired": _repaired,
    "journal_went_back": _went_back,
    "due_date_from_wrong_clock": _wrong_clock,
    "sip2_refused": _sip2_refused,
    "sip2_unsure": _sip2_unsure,
}


def _fallback(case: Case, words: Words) -> str:
    if case.event is not None:
        what = action(case.kind, case.payload if case.kind in _SAFE_TO_NAME else _NOTHING, words)
        return _join(_("{what} {at}, and the server kept it for you to look at.").format(what=what, at=_at(case, words)),
                     book_now(case.item, words))
    return _("{corner} sent something on {when} that the server kept for you to look at.").format(
        corner=words.corner(case.kiosk_id), when=words.moment(case.created_at))


def _opening(text: str) -> str:
    """A sentence that opens with one of our own words ("a book not in the catalogue…") begins
    with a capital; one that opens with a name is left as the name is written."""
    return text[0].upper() + text[1:] if text.startswith(("a ", "the ")) else text


def sentence(case: Case, words: Words) -> str:
    """The case in one or two sentences, in the active language."""
    told = SENTENCES.get(case.reason, _fallback)
    try:
        return _opening(told(case, words))
    except (KeyError, TypeError, ValueError, AttributeError):  # data of an unexpected shape: say it plainly
        return _opening(_fallback(case, words))


REASON_TITLES = {
    "unknown_event_type": N_("The kiosk recorded something this server does not know"),
    "invalid_payload": N_("The kiosk's record is incomplete"),
    "not_on_loan": N_("A book was returned that was not on loan"),
    "loan_changed": N_("The loan had changed elsewhere"),
    "older_than_item_change": N_("Older than a later change to the book recorded elsewhere"),
    "journal_damage": N_("The kiosk's journal was damaged"),
    "seq_conflict": N_("Two different events with one sequence number"),
    "event_id_conflict": N_("One event id used for two different events"),
    "events_missing": N_("Events the kiosk lost"),
    "card_held_by_other": N_("The card belongs to someone else"),
    "item_id_taken": N_("The book's id is already used by another book"),
    "not_handled_here": N_("The server does not apply this kind of event"),
    "journal_restored": N_("The kiosk was restored from a backup"),
    "journal_repaired": N_("The kiosk's journal was repaired and lost its newest events"),
    "journal_went_back": N_("The kiosk's journal went back in time"),
    "due_date_from_wrong_clock": N_("The due date was worked out on a wrong kiosk clock"),
    "sip2_refused": N_("The school's library system refused it"),
    "sip2_unsure": N_("Not known whether the school's library system recorded it"),
}


def reason_title(code: str) -> str:
    """A review reason as a short heading (a reason without one: a plain heading, never the code)."""
    return _(REASON_TITLES[code]) if code in REASON_TITLES else _("A record to look at")


# --- the audit log --------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    """One audit record: ``review``: for a decision, the case's reason and corner."""

    who: str
    action: str
    target: str
    detail: Mapping[str, Any]
    review: tuple[str, str] | None = None


_DOWNLOADS = {"export.csv": N_("{who} downloaded the events of {start} to {end} as a spreadsheet (CSV)."),
              "export.koc": N_("{who} downloaded the loans and returns of {start} to {end} for Koha (.koc).")}
_SETTINGS = {"policy": N_("the loan rules"), "calendar": N_("the school calendar"),
             "timetable": N_("the timetable"), "school": N_("the school's details")}
_CORNER_ACTIONS = {"kiosk.add": N_("{who} added the corner {corner}."),
                   "kiosk.reissue": N_("{who} gave the corner {corner} a new key."),
                   "kiosk.revoke": N_("{who} took the corner {corner}'s keys away.")}
_CARD_STATUS = {"lost": N_("lost"), "withdrawn": N_("withdrawn"), "active": N_("in use"),
                "damaged": N_("damaged")}


def _note(detail: Mapping[str, Any]) -> str:
    note = detail.get("note")
    return _("Note: {note}").format(note=note) if isinstance(note, str) and note else ""


def _decision(entry: AuditEntry, words: Words) -> str:
    d, decision = entry.detail, entry.action.split(".", 1)[1]
    case = _("the case “{reason}” from {corner}").format(
        reason=reason_title(entry.review[0]), corner=words.corner(entry.review[1])) if entry.review else _("a case")
    if decision == "correct":
        parts = [words.book(d["item_id"]) if d.get("item_id") else "",
                 words.student(d["patron_id"]) if d.get("patron_id") else ""]
        said = _("{who} corrected {case}: the right one is {choice}.").format(
            who=entry.who, case=case, choice=_(", ").join(p for p in parts if p) or _("as recorded"))
    elif decision == "accept":
        said = _("{who} accepted {case} as recorded.").format(who=entry.who, case=case)
    else:
        said = _("{who} dismissed {case}.").format(who=entry.who, case=case)
    return _join(said, _note(d))


def audit_sentence(entry: AuditEntry, words: Words) -> str:
    """An audit record in one sentence: who did what, naming books and students."""
    try:
        said = _record_sentence(entry, words) or _stocktake_sentence(entry, words) or _school_sentence(entry, words)
    except (KeyError, TypeError, ValueError, AttributeError):
        said = None
    return said or _("{who} did something the dashboard has no words for yet ({action}).").format(
        who=entry.who or "?", action=entry.action)


def _record_sentence(entry: AuditEntry, words: Words) -> str | None:
    """Sign-ins, decisions, downloads, withdrawals, retention and imports (None: another kind)."""
    a, d, who = entry.action, entry.detail, entry.who
    if a.startswith("review."):
        return _decision(entry, words)
    if a == "sign_in":
        return _("{who} signed in.").format(who=who)
    if a == "sign_in.failed":
        return _("Someone failed to sign in as {name}.").format(name=who or _("(no name)"))
    if a in _DOWNLOADS:
        return _(_DOWNLOADS[a]).format(who=who, start=_day(d.get("from")) or "?", end=_day(d.get("to")) or "?")
    if a.startswith(("registers.download.", "report.")):
        return _("{who} downloaded {file}.").format(who=who, file=entry.target)
    if a == "registers.withdraw":
        title = d.get("title")
        return _("{who} withdrew {book} from the catalogue.").format(
            who=who, book=_("“{title}”").format(title=title) if title else words.book(entry.target))
    if a in ("registers.retention", "registers.events_retention"):
        which = _("loans") if a == "registers.retention" else _("records of the corners")
        return _("{who} set how long {which} keep the student's name: {days} days (before: {before}).").format(
            who=who, which=which, days=_count(d.get("days")), before=_count(d.get("before")))
    if a in ("registers.anonymise", "registers.anonymise_events"):
        return _("{count} old {which} from before {day} no longer name the student (kept {days} days).").format(
            count=_count(d.get("loans", d.get("events"))),
            which=_("loans") if a == "registers.anonymise" else _("records of the corners"),
            day=_day(d.get("returned_before", d.get("before"))) or "?", days=_count(d.get("retention_days")))
    if a.startswith("import."):
        return _("{who} loaded {file}: {added} added, {changed} changed, {unchanged} unchanged.").format(
            who=who, file=entry.target, added=_count(d.get("added")), changed=_count(d.get("changed")),
            unchanged=_count(d.get("unchanged")))
    return None


def _stocktake_sentence(entry: AuditEntry, words: Words) -> str | None:
    """A stock-take's scan file uploaded, its missing books marked lost (None: another kind)."""
    a, d, who = entry.action, entry.detail, entry.who
    if a == "registers.lost":
        title = d.get("title")
        return _("{who} marked {book} lost: missing at a stock-take.").format(
            who=who, book=_("“{title}”").format(title=title) if title else words.book(entry.target))
    if a == "registers.stocktake.lost":
        return _("{who} marked the {count} missing book(s) of the stock-take at {where} lost.").format(
            who=who, count=_count(len(d.get("items") or ())), where=d.get("where") or entry.target)
    if a == "registers.stocktake.upload":
        return _("{who} uploaded the scan file {file} for a stock-take ({count} codes).").format(
            who=who, file=d.get("filename") or entry.target, count=_count(d.get("codes")))
    return None


def _school_sentence(entry: AuditEntry, words: Words) -> str | None:
    """Changes to the school's settings, cards, corners and librarians (None: another kind)."""
    a, d, who = entry.action, entry.detail, entry.who
    if a == "reports.targets":
        return _("{who} changed the reading targets.").format(who=who)
    if a == "reading.challenge_saved":
        return _("{who} set the reading challenge {name}.").format(who=who, name=_shown(str(d.get("name") or "?")))
    if a == "reading.challenge_ended":
        return _("{who} ended the reading challenge {name}.").format(who=who, name=_shown(str(d.get("name") or "?")))
    if a.endswith(".edit") and a[:-5] in _SETTINGS:
        return _("{who} changed {setting}.").format(who=who, setting=_(_SETTINGS[a[:-5]]))
    if a == "card.give":
        return _("{who} gave card {card} to {student}.").format(who=who, card=_shown(entry.target),
                                                                student=words.student(d.get("patron_id")))
    if a.startswith("card.") and a[5:] in _CARD_STATUS:
        return _("{who} marked card {card} of {student} as {status}.").format(
            who=who, card=_shown(entry.target), student=words.student(d.get("patron_id")),
            status=_(_CARD_STATUS[a[5:]]))
    if a in ("kiosk.add", "kiosk.reissue", "kiosk.revoke"):
        return _(_CORNER_ACTIONS[a]).format(who=who, corner=words.corner(entry.target))
    if a == "librarian.add":
        return _("{who} let {name} sign in as a librarian.").format(who=who, name=entry.target)
    if a == "librarian.revoke":
        return _("{who} took {name}'s librarian sign-in away.").format(who=who, name=entry.target)
    if a == "district.add":
        return _("{who} let {name} sign in as the district's staff (every school's figures).").format(
            who=who, name=entry.target)
    return None
