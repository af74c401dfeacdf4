"""The .koc export as Koha reads it: a small model of Koha's offline circulation
(offline_circ/process_koc.pl and C4::Circulation's ProcessOfflineIssue and
ProcessOfflineReturn, its rules restated here, not its code) replays two consecutive
exports, and every book ends as it is at the corner: renewed books on loan and not
overdue, returned books in, a book lent on to another child with the new child.

Koha's rules, as the model keeps them: the first line is a header of tab-separated
``key=value`` fields (Version 1.0); each other line is ``date time ms<TAB>command<TAB>
arguments``, ``issue`` taking a card number and a barcode and ``return`` a barcode, other
commands ignored. An ``issue`` of a book on loan to the same card renews that loan (the new
due date counted from the old due date or from the renewal, by the library's
RenewalPeriodBase); on loan to another card, that loan is returned and the book issued
anew; otherwise it is issued. A ``return`` closes the book's loan, or reports "Item not
issued"."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bookcorner.central import db
from bookcorner.central.reference import load_document
from bookcorner.protocol.messages import CardRecord, ItemRecord, PatronRecord, ReferenceDocument
from tests.central.harness import store_events

LOAN_DAYS = 14  # the model's circulation rule for every book and card


@dataclass
class KohaLoan:
    card: str
    due: date
    renewals: int = 0


class Koha:
    """The books' loans as Koha keeps them after processing .koc files."""

    def __init__(self, cards: set[str], barcodes: set[str], renewal_base: str) -> None:
        self.cards, self.barcodes, self.renewal_base = cards, barcodes, renewal_base
        self.loans: dict[str, KohaLoan] = {}
        self.messages: list[str] = []

    def process(self, text: str) -> None:
        lines = text.split("\n")
        header = dict(field.split("=", 1) for field in lines[0].replace("\r", "").split("\t"))
        assert header["Version"] == "1.0", header
        for line in lines[1:]:
            line = line.replace("\r", "")
            if not line:
                continue
            stamp, command, *arguments = line.split("\t")
            day, _time, _ms = stamp.split()
            names = {"issue": ("cardnumber", "barcode"), "return": ("barcode",)}.get(command)
            if names is None:
                self.messages.append(f"unknown command {command}")
                continue
            fields = dict(zip(names, arguments, strict=True))
            getattr(self, f"_{command}")(date.fromisoformat(day), **fields)

    def _issue(self, on: date, cardnumber: str, barcode: str) -> None:
        if cardnumber not in self.cards:
            self.messages.append("Borrower not found.")
            return
        assert barcode in self.barcodes, barcode
        current = self.loans.get(barcode)
        if current is not None and current.card == cardnumber:  # the same borrower: a renewal
            base = current.due if self.renewal_base == "date_due" else on
            current.due, current.renewals = base + timedelta(days=LOAN_DAYS), current.renewals + 1
            return
        # on loan to another borrower: returned from them first; then issued
        self.loans[barcode] = KohaLoan(cardnumber, on + timedelta(days=LOAN_DAYS))

    def _return(self, on: date, barcode: str) -> None:
        if self.loans.pop(barcode, None) is None:
            self.messages.append("Item not issued.")


def _event(tag: str, n: int, kind: str, at: datetime, payload: dict, outcome: str = "applied") -> dict:
    """An event as ingest stores it (written into the table: kiosks cannot push events
    weeks old)."""
    return {"event_id": f"E{n}-{tag}", "kiosk_id": "k-" + tag, "seq": n, "boot_id": "b", "monotonic_ns": n,
            "wall_time": at.isoformat(), "clock_synced": True, "actor": payload.get("patron_id") or "kiosk",
            "type": kind, "payload": json.dumps(payload, separators=(",", ":")), "received_at": at, "time": at,
            "time_quality": "synced", "time_lower": None, "time_upper": None, "outcome": outcome, "reason": None,
            "warnings": None, "batch_id": "b-" + tag, "source": "push"}


def test_koha_ends_with_each_book_as_the_corner_left_it_renewals_included(board, librarian):
    client, _name, _token = librarian
    tag = uuid.uuid4().hex[:6]
    now = db.now()
    today = now.astimezone().date()

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    sa, sb = f"SA-{tag}", f"SB-{tag}"
    card_of = {sa: f"CA-{tag}", sb: f"CB-{tag}"}
    books = "ABCDEFG"
    load_document(board.store, ReferenceDocument(
        patrons=[PatronRecord(patron_id=p, name=f"Child {p}", role="student", class_name="3.2") for p in card_of],
        cards=[CardRecord(card, patron, "active") for patron, card in card_of.items()],
        items=[ItemRecord(item_id=f"{b}-{tag}", title=f"Book {b}", barcode=f"9{b}{tag}") for b in books]))
    n = 0

    def event(kind: str, days: float, payload: dict, outcome: str = "applied") -> dict:
        nonlocal n
        n += 1
        return _event(tag, n, kind, ago(days), payload, outcome)

    def out(book: str, patron: str, days: float) -> dict:
        return event("loan.checked_out", days, {
            "item_id": f"{book}-{tag}", "patron_id": patron, "card_id": card_of[patron], "code": f"9{book}{tag}",
            "due": (ago(days) + timedelta(days=LOAN_DAYS)).date().isoformat(), "warnings": []})

    def renew(book: str, lent: dict, days: float, loan: bool = True, outcome: str = "applied") -> dict:
        payload = {"item_id": f"{book}-{tag}", "patron_id": json.loads(lent["payload"])["patron_id"],
                   "due_before": "2000-01-01", "due": (ago(days) + timedelta(days=LOAN_DAYS)).date().isoformat(),
                   "renewal": 1}
        if loan:
            payload["loan_id"] = lent["event_id"]
        return event("loan.renewed", days, payload, outcome)

    def back(book: str, lent: dict, days: float) -> dict:
        return event("loan.checked_in", days, {"item_id": f"{book}-{tag}", "loan_id": lent["event_id"],
                                             "patron_id": json.loads(lent["payload"])["patron_id"],
                                             "due": "2000-01-01", "with_card": True, "implicit": False,
                                             "warnings": []})

    a, b, c, d = out("A", sa, 20), out("B", sb, 20), out("C", sa, 20), out("D", sb, 27)
    e, f, g = out("E", sb, 20), out("F", sa, 20), out("G", sb, 20)
    events = [
        a, renew("A", a, 5),  # renewed once: due again in nine days
        b, back("B", b, 10),  # returned
        c, renew("C", c, 12), renew("C", c, 3),  # renewed twice
        d, renew("D", d, 10),  # lent in the previous export's period, renewed in this one
        e, back("E", e, 8), out("E", sa, 8),  # given on to another child (the kiosk returns it first)
        f, renew("F", f, 4, loan=False),  # a renewal that does not name its loan: the child's card
        g, renew("G", g, 4, outcome="needs_review"),  # did not apply: Koha must not see it
    ]
    with board.store.writing() as conn:
        store_events(conn, events)

    earlier = client.get("/exports/circulation.koc", params={"from": (today - timedelta(days=45)).isoformat(),
                                                             "to": (today - timedelta(days=26)).isoformat()})
    latest = client.get("/exports/circulation.koc", params={"from": (today - timedelta(days=25)).isoformat(),
                                                            "to": today.isoformat()})
    assert earlier.status_code == latest.status_code == 200
    mine = [line.split("\t", 1)[1] for line in latest.text.splitlines() if tag in line]
    assert mine.count(f"issue\t{card_of[sa]}\t9C{tag}") == 3  # the loan and its two renewals

    def koha(renewal_base: str, *files: str) -> Koha:
        replayed = Koha(set(card_of.values()), {f"9{book}{tag}" for book in books}, renewal_base)
        for text in files:  # only this test's lines: the board's other tests share the server
            header, *lines = text.split("\n")
            replayed.process("\n".join([header, *(line for line in lines if tag in line)]))
        return replayed

    for base in ("now", "date_due"):
        ended = koha(base, earlier.text, latest.text)
        assert ended.messages == [], base
        state = {barcode[1]: (loan.card, loan.renewals) for barcode, loan in ended.loans.items()}
        assert state == {"A": (card_of[sa], 1), "C": (card_of[sa], 2), "D": (card_of[sb], 1),
                         "E": (card_of[sa], 0), "F": (card_of[sa], 1), "G": (card_of[sb], 0)}, base
        overdue = sorted(barcode[1] for barcode, loan in ended.loans.items() if loan.due < today)
        assert overdue == ["G"], base  # the renewed books are not overdue; G's renewal never applied

    # without its renewal lines (the export before issue 12), Koha had the renewed books overdue
    holder: dict[str, str] = {}
    kept = []
    for line in earlier.text.split("\n")[1:] + latest.text.split("\n")[1:]:
        fields = line.split("\t")
        if len(fields) == 4 and holder.get(fields[3]) == fields[2]:
            continue  # a renewal: an issue to the card that has the book
        if len(fields) == 4:
            holder[fields[3]] = fields[2]
        elif len(fields) == 3:
            holder.pop(fields[2], None)
        kept.append(line)
    old = koha("now", "\n".join([latest.text.split("\n")[0], *kept]))
    assert sorted(barcode[1] for barcode, loan in old.loans.items() if loan.due < today) == ["A", "C", "D", "F", "G"]
