"""Stock-take (清点) of a corner's shelf: the codes scanned off the shelf against what the
catalogue and the loans say should be there (pure: no I/O, no clock).

The result sorts every copy the stock-take concerns:

- **present**: a copy of this shelf, scanned, not on loan;
- **missing**: a copy of this shelf that is neither on loan nor scanned (nor already lost
  or withdrawn);
- **misplaced**: a copy scanned here whose home is another corner;
- **on loan but on the shelf**: a copy the loans say is out, scanned on the shelf (it came
  back without being scanned in: offer to check it in);
- **unknown**: codes that are no copy of the catalogue (an unregistered label, an ISBN of
  more copies than the catalogue has, a card, something unreadable).

A book known only by its printed ISBN has several copies sharing one code: each scan of it
counts one copy, this shelf's copies not on loan first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from bookcorner.circulation.codes import CodeKind, Source, classify
from bookcorner.circulation.model import Item, ItemStatus
from bookcorner.circulation.reference import Reference
from bookcorner.circulation.state import CirculationState

#: copies a stock-take does not expect on any shelf
GONE = frozenset({ItemStatus.LOST, ItemStatus.WITHDRAWN})


@dataclass(frozen=True)
class StocktakeResult:
    """Item ids (sorted) in each class, and the codes that were no copy, as scanned."""

    present: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    misplaced: tuple[str, ...] = ()
    on_loan_on_shelf: tuple[str, ...] = ()
    #: copies the catalogue has as lost or withdrawn, found on the shelf
    gone_but_found: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    #: how many scans were of a copy already counted (the same label twice)
    repeated: int = 0
    #: copies expected on the shelf (this shelf's, not on loan, not lost or withdrawn)
    expected: int = 0
    scans: int = 0

    @property
    def complete(self) -> bool:
        """Every copy the shelf should hold was found, and nothing else was."""
        return not (self.missing or self.misplaced or self.on_loan_on_shelf or self.gone_but_found or self.unknown)


@dataclass
class _Tally:
    seen: set[str] = field(default_factory=set)
    unknown: list[str] = field(default_factory=list)
    repeated: int = 0


def belongs(item: Item, shelf: Collection[str] | None) -> bool:
    """Whether a copy's home is this shelf: ``shelf`` is the corners (classes) whose books
    stand here, None for every book of the catalogue. A copy with no home corner belongs to
    every shelf."""
    return shelf is None or item.home_corner is None or item.home_corner in shelf


def reconcile(reference: Reference, state: CirculationState, scanned: Iterable[str],
              shelf: Collection[str] | None = None) -> StocktakeResult:
    """The stock-take of ``shelf`` from the codes ``scanned`` (raw, as the scanner sent
    them, in any order), against the catalogue and the loans now."""
    tally = _Tally()
    by_isbn: Counter[str] = Counter()
    copies_of: dict[str, tuple[str, ...]] = {}
    codes = list(scanned)
    for raw in codes:
        code = classify(raw, reference, Source.SCANNER)
        if code.kind is not CodeKind.ITEM:
            tally.unknown.append(code.text or raw)
        elif len(code.item_ids) == 1 and reference.items[code.item_ids[0]].barcode == code.text:
            _count(tally, code.item_ids[0])
        else:
            isbn = code.isbn13 or code.text
            by_isbn[isbn] += 1
            copies_of[isbn] = code.item_ids
    for isbn, scans in by_isbn.items():
        candidates = [item_id for item_id in copies_of[isbn] if item_id not in tally.seen]
        candidates.sort(key=lambda item_id: _preference(reference.items[item_id], state, shelf))
        for n in range(scans):
            if n < len(candidates):
                _count(tally, candidates[n])
            else:
                tally.unknown.append(isbn)  # more copies on the shelf than the catalogue has
    return _sorted(reference, state, shelf, tally, len(codes))


def _count(tally: _Tally, item_id: str) -> None:
    if item_id in tally.seen:
        tally.repeated += 1
    else:
        tally.seen.add(item_id)


def _preference(item: Item, state: CirculationState, shelf: Collection[str] | None) -> tuple[bool, bool, bool, str]:
    return (not belongs(item, shelf), state.loan_of(item.item_id) is not None,
            state.status_of(item) in GONE, item.item_id)


def _sorted(reference: Reference, state: CirculationState, shelf: Collection[str] | None, tally: _Tally,
            scans: int) -> StocktakeResult:
    present, missing, misplaced, on_loan, gone = [], [], [], [], []
    expected = 0
    for item_id in sorted(reference.items):
        item = reference.items[item_id]
        here, out = belongs(item, shelf), state.loan_of(item_id) is not None
        is_gone = state.status_of(item) in GONE
        if here and not out and not is_gone:
            expected += 1
        if item_id not in tally.seen:
            if here and not out and not is_gone:
                missing.append(item_id)
        elif out:
            on_loan.append(item_id)
        elif is_gone:
            gone.append(item_id)
        elif not here:
            misplaced.append(item_id)
        else:
            present.append(item_id)
    return StocktakeResult(present=tuple(present), missing=tuple(missing), misplaced=tuple(misplaced),
                           on_loan_on_shelf=tuple(on_loan), gone_but_found=tuple(gone),
                           unknown=tuple(tally.unknown), repeated=tally.repeated, expected=expected, scans=scans)
