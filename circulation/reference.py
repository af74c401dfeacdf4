"""Reference data: the roster, cards, catalogue, policy and calendar a kiosk decides with.

It reaches the kiosk as a snapshot (from the central server, or the demo school) and is
read-only to the rules. Lookups used on every scan are dictionary hits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bookcorner.circulation.calendar import SchoolCalendar
from bookcorner.circulation.model import Card, Item, Patron
from bookcorner.circulation.policy import DEFAULT_POLICY, Policy
from bookcorner.circulation.state import Loan
from bookcorner.circulation.suggestions import NO_GUIDE, ReadingGuide
from bookcorner.circulation.timetable import Timetable


@dataclass(frozen=True, slots=True)
class Reference:
    patrons: Mapping[str, Patron]
    cards: Mapping[str, Card]
    items: Mapping[str, Item]
    policy: Policy = DEFAULT_POLICY
    calendar: SchoolCalendar = field(default_factory=SchoolCalendar)
    timetable: Timetable = field(default_factory=Timetable)
    #: open loans as the server knew them when this snapshot was made
    loans: tuple[Loan, ...] = ()
    #: this kiosk's highest event sequence number already reflected in ``loans``...
    applied_seq: int = 0
    #: ...counted in this journal incarnation (None: a snapshot that does not say)
    incarnation: str | None = None
    by_barcode: Mapping[str, str] = field(default_factory=dict)
    by_isbn13: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: the librarian's reading lists and the co-reading counts (what to read next)
    reading: ReadingGuide = NO_GUIDE

    def copies(self, item_ids: Iterable[str]) -> list[Item]:
        return [self.items[i] for i in item_ids]


def build_reference(
    patrons: Iterable[Patron],
    cards: Iterable[Card],
    items: Iterable[Item],
    policy: Policy = DEFAULT_POLICY,
    calendar: SchoolCalendar | None = None,
    timetable: Timetable | None = None,
    loans: Iterable[Loan] = (),
    applied_seq: int = 0,
    incarnation: str | None = None,
    reading: ReadingGuide = NO_GUIDE,
) -> Reference:
    item_map = {item.item_id: item for item in items}
    by_barcode: dict[str, str] = {}
    by_isbn: dict[str, list[str]] = {}
    for item in item_map.values():
        if item.barcode:
            by_barcode[item.barcode.upper()] = item.item_id
        if item.isbn13:
            by_isbn.setdefault(item.isbn13, []).append(item.item_id)
    return Reference(
        patrons=MappingProxyType({p.patron_id: p for p in patrons}),
        cards=MappingProxyType({c.card_id: c for c in cards}),
        items=MappingProxyType(item_map),
        policy=policy,
        calendar=calendar or SchoolCalendar(),
        timetable=timetable or Timetable(),
        loans=tuple(loans),
        applied_seq=applied_seq,
        incarnation=incarnation,
        by_barcode=MappingProxyType(by_barcode),
        by_isbn13=MappingProxyType({k: tuple(v) for k, v in by_isbn.items()}),
        reading=reading,
    )


def with_local_additions(reference: Reference, cards: Mapping[str, Card], items: Mapping[str, Item]) -> Reference:
    """The reference as this kiosk knows it: the snapshot plus cards enrolled and books
    registered here that the snapshot does not have yet."""
    if not cards and not items:
        return reference
    return build_reference(
        patrons=reference.patrons.values(),
        cards=list({**reference.cards, **cards}.values()),
        items=list({**reference.items, **items}.values()),
        policy=reference.policy,
        calendar=reference.calendar,
        timetable=reference.timetable,
        loans=reference.loans,
        applied_seq=reference.applied_seq,
        incarnation=reference.incarnation,
        reading=reference.reading,
    )


def covered_seq(reference: Reference, incarnation: str, since_seq: int, upgraded: bool = False) -> int:
    """The journal's last event already reflected in the snapshot's loans, for a journal in
    incarnation ``incarnation`` whose own events start at ``since_seq``.

    A snapshot counted in another incarnation (the journal was restored, repaired or made
    anew since) reflects none of this incarnation's own events, whatever its number says:
    those numbers may have been other events. A snapshot that does not name its
    incarnation is taken as the journal's own only when the journal was upgraded in place
    (it is the same journal)."""
    if reference.incarnation == incarnation or (reference.incarnation is None and upgraded):
        return reference.applied_seq
    return min(reference.applied_seq, since_seq - 1)
