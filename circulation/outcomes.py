"""The circulation model's vocabulary: what became of an act or an event, and why.

One place for the codes both uses of the model speak: the kiosk's rules (``rules``:
a refusal's ``Reason``, a done act's ``Warning_``) and the server's replay of the kiosk's
events (``replay``: an ``Outcome``, a ``ReviewReason`` when a person must decide, the same
``Warning_`` when it applied but the librarian should know how). The values are codes on
the wire, in journals and in the database: never change one, add new ones.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What the server did with one event (the wire's ``EventResult.outcome``)."""

    #: stored and replayed into the loans
    APPLIED = "applied"
    #: stored and replayed, but the librarian should know how (see warnings)
    APPLIED_WITH_WARNING = "applied_with_warning"
    #: the server already had this event (same event id): nothing changed
    DUPLICATE = "duplicate"
    #: stored, not applied: a librarian decides (see reason)
    NEEDS_REVIEW = "needs_review"


class Reason(StrEnum):
    """Why the kiosk's rules refused an act (told to the child, recorded in ``scan.refused``)."""

    CARD_UNKNOWN = "card_unknown"
    CARD_NOT_ACTIVE = "card_not_active"
    PATRON_SUSPENDED = "patron_suspended"
    PATRON_LEFT = "patron_left"
    ITEM_UNKNOWN = "item_unknown"
    UNREADABLE = "unreadable"
    REFERENCE_ONLY = "reference_only"
    NOT_LOANABLE = "not_lendable"
    IN_REPAIR = "in_repair"
    WITHDRAWN = "withdrawn"
    LIMIT_REACHED = "limit_reached"
    TYPE_LIMIT_REACHED = "type_limit_reached"
    OVERDUE = "overdue"
    TERM_ENDED = "term_ended"
    RENEWAL_LIMIT = "renewal_limit"
    #: re-scanning a book you borrowed today: it is already yours, nothing to do
    ALREADY_YOURS = "already_yours"
    #: a book handed back that no loan holds (the server's review of such a return has the same code)
    NOT_ON_LOAN = "not_on_loan"
    #: several copies with this barcode are on loan: tap a card to say whose
    AMBIGUOUS_COPY = "ambiguous_copy"
    NOT_ALLOWED = "not_allowed"
    ALREADY_REPORTED = "already_reported"
    ALREADY_ENROLLED = "already_enrolled"
    ALREADY_REGISTERED = "already_registered"
    PATRON_UNKNOWN = "patron_unknown"
    #: a book needs at least its title: never a half record
    TITLE_MISSING = "title_missing"


class ReviewReason(StrEnum):
    """Why an event the server replays waits for a librarian's review (codes on the wire
    and in the database; each has its sentence in central.dashboard.review_text)."""

    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    INVALID_PAYLOAD = "invalid_payload"
    #: a return of a book no loan holds (Koha keeps it for review)
    NOT_ON_LOAN = Reason.NOT_ON_LOAN.value
    LOAN_CHANGED = "loan_changed"
    OLDER_THAN_ITEM_CHANGE = "older_than_item_change"
    JOURNAL_DAMAGE = "journal_damage"
    SEQ_CONFLICT = "seq_conflict"
    EVENT_ID_CONFLICT = "event_id_conflict"
    EVENTS_MISSING = "events_missing"
    CARD_HELD_BY_OTHER = "card_held_by_other"
    ITEM_ID_TAKEN = "item_id_taken"
    NOT_HANDLED = "not_handled_here"
    #: a kiosk's journal began a new incarnation after going back in time (restored from a
    #: backup, repaired, copied back): what the server has that the kiosk no longer has
    JOURNAL_RESTORED = "journal_restored"
    JOURNAL_REPAIRED = "journal_repaired"
    JOURNAL_WENT_BACK = "journal_went_back"
    #: a checkout applied, but the kiosk worked its due date out under a clock the server
    #: corrected onto another day: the loan keeps the date the child was told, the librarian
    #: may move it to the one the rules give on the corrected day (central.due_check)
    DUE_FROM_WRONG_CLOCK = "due_date_from_wrong_clock"
    #: the school's own library system refused a loan, return or renewal the replay bridge
    #: sent it over SIP2 (central.services.bridge): the loan stands here, not there
    SIP2_REFUSED = "sip2_refused"
    #: the bridge's request was written, its answer lost, and the book's status there cannot
    #: tell whether it took effect: a person looks rather than the bridge sending it twice
    SIP2_UNSURE = "sip2_unsure"


class Warning_(StrEnum):
    """Done, but the librarian should know how: the kiosk's rules put these in the events
    they record, the server's replay in the results it stores (kept for review)."""

    #: the book was on loan to someone else: that loan was closed first (Koha semantics)
    RETURNED_FROM_OTHER = "returned_from_other"
    #: a shared barcode matched several loans; the oldest was closed (kiosk)
    OLDEST_OF_SEVERAL = "oldest_of_several"
    #: the book was recorded lost and has turned up, lent again at the kiosk (kiosk)
    WAS_LOST = "was_lost"
    #: the book came back after its due date (kiosk)
    LATE = "late"
    #: a return named another loan than the one open: the open one was closed (server)
    CLOSED_OTHER_LOAN = "closed_other_loan"
    #: a checkout of a book already on loan to the same patron (server)
    ALREADY_ON_LOAN_TO_PATRON = "already_on_loan_to_patron"
    #: lent while the server had the book in repair, lost or withdrawn (server)
    ITEM_WAS_IN_REPAIR = "item_was_in_repair"
    ITEM_WAS_LOST = "item_was_lost"
    ITEM_WAS_WITHDRAWN = "item_was_withdrawn"
    #: damage reported of a book still on loan: the loan was closed (server)
    LOAN_STILL_OPEN = "loan_still_open"
    #: found or repaired, but it was never reported lost or damaged (server)
    NOT_REPORTED = "was_not_reported"
    #: a card enrolled for a patron the server's roster does not have (server)
    PATRON_UNKNOWN = "patron_unknown"
    #: the server had another event under this sequence number of the same journal (it went
    #: back in time): this one is a different event, stored and applied all the same (server)
    SEQ_REUSED = "seq_reused"
