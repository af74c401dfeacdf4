"""The stock-take of a shelf (circulation/stocktake.py) on the test school: present,
missing, misplaced, on loan but on the shelf, lost but found, unknown codes, repeated
scans, and copies that share one ISBN."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from bookcorner.circulation.model import Item, ItemStatus
from bookcorner.circulation.reference import build_reference
from bookcorner.circulation.state import CirculationState, Loan
from bookcorner.circulation.stocktake import reconcile
from tests.school import ANDERSEN, CARDS, HONGLOUMENG, ITEMS, MONDAY, SHUIHU, XIAOMING, XIYOUJI

OTHER = Item("I050", "草房子", barcode="30001000000069", home_corner="4-1")
GONE = Item("I060", "城南旧事", barcode="30001000000077", status=ItemStatus.LOST)


def shelf(*extra: Item):
    return build_reference(patrons=CARDS.keys(), cards=(), items=(*ITEMS, *extra))


def on_loan(*items: Item) -> CirculationState:
    loans = {item.item_id: Loan(f"L-{item.item_id}", item.item_id, XIAOMING.patron_id, date(2026, 12, 7), MONDAY)
             for item in items}
    return CirculationState(loans=loans, by_patron={XIAOMING.patron_id: tuple(loans)})


def test_a_full_shelf_is_present_and_complete():
    reference = shelf()
    codes = [item.barcode or item.isbn13 or "" for item in ITEMS]
    result = reconcile(reference, CirculationState(), codes, shelf={"3-2"})
    assert result.present == tuple(sorted(item.item_id for item in ITEMS))
    assert result.complete and result.expected == len(ITEMS) and result.scans == len(ITEMS)


def test_each_kind_of_difference_is_sorted_out():
    reference = shelf(OTHER, GONE)
    state = on_loan(HONGLOUMENG, SHUIHU)
    codes = [XIYOUJI.barcode, "A" + XIYOUJI.barcode + "A",  # the same label twice (the second Codabar-wrapped)
             HONGLOUMENG.barcode,  # out on loan, yet on the shelf: came back unscanned
             OTHER.barcode,  # another corner's book
             GONE.barcode,  # marked lost, found again
             "9787020024759",  # one of the three Andersen copies, by its ISBN
             "30009999999993", "not a book", "0006547886"]  # no copy: a stray label, junk, a card
    result = reconcile(reference, state, codes, shelf={"3-2"})
    assert result.present == ("I001", ANDERSEN[0].item_id)
    assert result.on_loan_on_shelf == ("I002",)
    assert result.misplaced == ("I050",) and result.gone_but_found == ("I060",)
    # SHUIHU is out on loan: not missing; the other two Andersen copies are
    assert result.missing == (ANDERSEN[1].item_id, ANDERSEN[2].item_id, "I020", "I030", "I040")
    assert result.unknown == ("30009999999993", "NOTABOOK", "0006547886") and result.repeated == 1
    assert not result.complete


def test_more_scans_of_an_isbn_than_copies_are_unknown_and_on_loan_copies_come_last():
    reference = shelf()
    state = on_loan(ANDERSEN[0])
    result = reconcile(reference, state, ["9787020024759"] * 2, shelf=None)
    assert set(result.present) == {ANDERSEN[1].item_id, ANDERSEN[2].item_id} and not result.on_loan_on_shelf
    more = reconcile(reference, state, ["9787020024759"] * 3, shelf=None)
    assert more.on_loan_on_shelf == (ANDERSEN[0].item_id,) and more.unknown == ()
    assert reconcile(reference, state, ["9787020024759"] * 4).unknown == ("9787020024759",)


def test_a_copy_with_no_home_corner_belongs_to_every_shelf_and_a_homed_one_to_its_own():
    homed = replace(XIYOUJI, home_corner="3-2")
    reference = build_reference(patrons=(), cards=(), items=(homed, OTHER))
    assert reconcile(reference, CirculationState(), [], shelf={"3-2"}).missing == ("I001",)
    assert reconcile(reference, CirculationState(), [], shelf={"4-1"}).missing == ("I050",)
    assert reconcile(reference, CirculationState(), [], shelf=None).missing == ("I001", "I050")


@given(st.lists(st.sampled_from([i.barcode or i.isbn13 or "" for i in ITEMS] + ["junk", OTHER.barcode]),
                max_size=30))
def test_every_copy_is_in_at_most_one_class_and_nothing_is_dropped(codes):
    reference = shelf(OTHER)
    result = reconcile(reference, on_loan(SHUIHU), codes, shelf={"3-2"})
    classes = [result.present, result.missing, result.misplaced, result.on_loan_on_shelf, result.gone_but_found]
    ids = [item_id for group in classes for item_id in group]
    assert len(ids) == len(set(ids))
    counted = len(ids) - len(result.missing)
    assert counted + len(result.unknown) + result.repeated == len(codes)
