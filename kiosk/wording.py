"""Decisions in words a six-year-old understands, in the active language.

The rules return reason codes and facts; this module turns them into a short headline
and one line of detail. The kiosk screen, ``bookcorner circ`` and the librarian's views
all use it, so a refusal reads the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from bookcorner.circulation.reference import Reference
from bookcorner.circulation.rules import Action, Decision, Done, Reason, Refusal, Warning_
from bookcorner.i18n import N_, _, current_language


class Tone(StrEnum):
    SUCCESS = "success"
    REFUSAL = "refusal"
    WARNING = "warning"
    #: the kiosk itself failed (nothing was recorded): the child must not think it is done
    ERROR = "error"


@dataclass(frozen=True)
class Message:
    tone: Tone
    headline: str
    detail: str = ""

    def as_line(self) -> str:
        """Headline and detail on one line (the command line's output), as two sentences:
        the screen shows them on two lines, where the headline needs no full stop."""
        head, detail = self.headline.strip(), self.detail.strip()
        if not head or not detail:
            return head or detail
        if head[-1] in _SENTENCE_ENDS_WIDE:
            return head + detail
        if head[-1] in _SENTENCE_ENDS:
            return f"{head} {detail}"
        if "\u2e80" <= head[-1] <= "\u9fff":  # Chinese: a full-width stop, no space
            return f"{head}。{detail}"
        return f"{head}. {detail}"


_SENTENCE_ENDS = ".!?:;…"
_SENTENCE_ENDS_WIDE = "。！？：；"


_WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def format_date(day: date) -> str:
    """'Mon 30 Nov' / '11月30日（周一）'."""
    weekday = _(_WEEKDAYS[day.weekday()])
    if current_language() == "zh_CN":
        return f"{day.month}月{day.day}日（{weekday}）"
    return f"{weekday} {day.day} {day:%b}"


def book_title(title: str) -> str:
    return _("“{title}”").format(title=title)


def _title(reference: Reference, item_id: str | None, fallback: str = "") -> str:
    if item_id and item_id in reference.items:
        return book_title(reference.items[item_id].title)
    return book_title(fallback) if fallback else _("this book")


def _first_name(reference: Reference, patron_id: str | None) -> str:
    patron = reference.patrons.get(patron_id or "")
    return patron.greeting_name if patron else ""


def explain(decision: Decision, reference: Reference) -> Message:
    result = decision.result
    if isinstance(result, Done):
        return _done(result, reference)
    return _refusal(result, reference)


def _done(done: Done, reference: Reference) -> Message:
    title = _title(reference, done.item_id)
    if done.action is Action.CHECKED_OUT:
        message = Message(Tone.SUCCESS, _("Borrowed!"),
                          _("{title} is yours until {due}.").format(title=title, due=format_date(done.due) if done.due else "?"))
    elif done.action is Action.RENEWED:
        message = Message(Tone.SUCCESS, _("Renewed!"),
                          _("Keep {title} until {due}.").format(title=title, due=format_date(done.due) if done.due else "?"))
    elif done.action is Action.CHECKED_IN:
        name = _first_name(reference, done.patron_id)
        headline = _("Thank you, {name}!").format(name=name) if name else _("Thank you!")
        detail = _("{title} is back.").format(title=title)
        if done.days_late:
            detail += " " + _("It was {days} school day(s) late.").format(days=done.days_late)
        message = Message(Tone.SUCCESS, headline, detail)
    elif done.action is Action.MARKED_DAMAGED:
        message = Message(Tone.SUCCESS, _("Sent to repair"),
                          _("{title} is in the repair register.").format(title=title))
    elif done.action is Action.MARKED_LOST:
        message = Message(Tone.SUCCESS, _("Marked lost"), _("{title} is recorded as lost.").format(title=title))
    elif done.action is Action.CARD_ENROLLED:
        name = _first_name(reference, done.patron_id)
        message = Message(Tone.SUCCESS, _("Card enrolled"),
                          _("This card now belongs to {name}.").format(name=name or done.patron_id))
    elif done.action is Action.ITEM_REGISTERED:
        message = Message(Tone.SUCCESS, _("Book registered"),
                          _("{title} can be borrowed now.").format(title=title))
    elif done.action is Action.MARKED_REPAIRED:
        message = Message(Tone.SUCCESS, _("Back from repair"), _("{title} can be borrowed again.").format(title=title))
    else:
        message = Message(Tone.SUCCESS, _("Found!"), _("{title} can be borrowed again.").format(title=title))
    if Warning_.RETURNED_FROM_OTHER in done.warnings or Warning_.OLDEST_OF_SEVERAL in done.warnings:
        message = Message(Tone.SUCCESS, message.headline,
                          message.detail + " " + _("(The librarian will check an earlier loan of this book.)"))
    return message


def _refusal(refusal: Refusal, reference: Reference) -> Message:
    facts = refusal.details
    title = _title(reference, facts.get("item_id"), facts.get("title", ""))
    reason = refusal.reason
    if reason is Reason.LIMIT_REACHED:
        return Message(Tone.REFUSAL, _("You have {held} books already").format(held=facts.get("loan_count", "?")),
                       _("Bring one back, then you can borrow this one."))
    if reason is Reason.TYPE_LIMIT_REACHED:
        return Message(Tone.REFUSAL, _("You have enough of these already"),
                       _("Bring one back, then you can borrow this one."))
    if reason is Reason.OVERDUE:
        late = facts.get("overdue") or [{}]
        first = late[0]
        due = format_date(date.fromisoformat(first["due"])) if first.get("due") else ""
        return Message(Tone.REFUSAL, _("Please bring a book back first"),
                       _("{title} was due on {due}.").format(title=book_title(first.get("title", "")), due=due))
    if reason is Reason.REFERENCE_ONLY:
        return Message(Tone.REFUSAL, _("This book stays in the classroom"),
                       _("{title} is a reference book: read it here.").format(title=title))
    if reason is Reason.NOT_LOANABLE:
        return Message(Tone.REFUSAL, _("This book cannot be borrowed"),
                       _("Read {title} here, or ask the librarian.").format(title=title))
    if reason is Reason.ITEM_UNKNOWN:
        return Message(Tone.REFUSAL, _("This book is not registered"), _("Please give it to the librarian."))
    if reason is Reason.CARD_UNKNOWN:
        return Message(Tone.REFUSAL, _("This card is not registered"), _("Please ask the librarian."))
    if reason is Reason.CARD_NOT_ACTIVE:
        return Message(Tone.REFUSAL, _("This card cannot be used"), _("Please ask the librarian for help."))
    if reason is Reason.PATRON_SUSPENDED:
        return Message(Tone.REFUSAL, _("Borrowing is paused for you"), _("Please talk to the librarian."))
    if reason is Reason.PATRON_LEFT:
        return Message(Tone.REFUSAL, _("This card is no longer in use"), _("Please ask the librarian."))
    if reason is Reason.UNREADABLE:
        return Message(Tone.REFUSAL, _("That did not scan well"), _("Please try again, slowly."))
    if reason is Reason.IN_REPAIR:
        return Message(Tone.REFUSAL, _("This book is being repaired"), _("Please give it to the librarian."))
    if reason is Reason.WITHDRAWN:
        return Message(Tone.REFUSAL, _("This book is no longer lent"), _("Please give it to the librarian."))
    if reason is Reason.TERM_ENDED:
        return Message(Tone.REFUSAL, _("The term is ending"), _("Books cannot be borrowed until next term."))
    if reason is Reason.RENEWAL_LIMIT:
        return Message(Tone.REFUSAL, _("You cannot keep it longer"),
                       _("Please bring {title} back by {due}.").format(
                           title=title, due=format_date(date.fromisoformat(facts["due"]))))
    if reason is Reason.ALREADY_YOURS:
        return Message(Tone.WARNING, _("It is already yours"),
                       _("Keep {title} until {due}.").format(
                           title=title, due=format_date(date.fromisoformat(facts["due"]))))
    if reason is Reason.NOT_ON_LOAN:
        return Message(Tone.WARNING, _("This book was not borrowed"), _("Please put it back on the shelf."))
    if reason is Reason.AMBIGUOUS_COPY:
        return Message(Tone.WARNING, _("Tap your card first"),
                       _("Several children have a copy of {title}.").format(title=title))
    if reason is Reason.ALREADY_ENROLLED:
        return Message(Tone.WARNING, _("This card is already enrolled"),
                       _("It belongs to {name}.").format(name=_first_name(reference, facts.get("patron_id"))
                                                         or facts.get("patron_id", "")))
    if reason is Reason.ALREADY_REGISTERED:
        return Message(Tone.WARNING, _("This book is already registered"), title)
    if reason is Reason.PATRON_UNKNOWN:
        return Message(Tone.REFUSAL, _("No such student or teacher"), _("Choose someone from the roster."))
    if reason is Reason.TITLE_MISSING:
        return Message(Tone.REFUSAL, _("The title is missing"), _("A book needs at least its title."))
    if reason is Reason.NOT_ALLOWED:
        return Message(Tone.REFUSAL, _("Only a librarian can do that"), "")
    return Message(Tone.WARNING, _("Already recorded"), _("Nothing needed to change."))


def not_saved(disk_full: bool) -> Message:
    """The journal refused a write: nothing was recorded, and the child must know it."""
    if disk_full:
        detail = _("The kiosk's memory is full. Nothing was borrowed or returned.")
    else:
        detail = _("The kiosk could not save it. Nothing was borrowed or returned.")
    return Message(Tone.ERROR, _("Not saved: please tell the librarian"), detail)


def enter_pin_first() -> Message:
    return Message(Tone.WARNING, _("Enter the PIN first"), _("Or tap your card again to cancel."))


def librarian_mode_closed() -> Message:
    return Message(Tone.REFUSAL, _("The librarian's mode is not set up"),
                   _("Set a PIN with: bookcorner librarian set-pin"))
