"""Loans that did not apply cleanly wait in the review queue; once the librarian's Correct or
Accept has made them real checkouts or returns, the school's library system (tests/bridge/peer.py,
over a real socket) gets them too, once, after the loans applied before the decision."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.ingest import Batch, ingest
from bookcorner.central.kiosks import add_kiosk
from bookcorner.central.services import bridge, reviews
from tests.bridge.peer import Peer
from tests.bridge.test_bridge import outbox, turn_on
from tests.central.pushes import KioskClient


def _open_reviews(store, reason: str) -> list[int]:
    with store.reading() as conn:
        return list(conn.execute(select(db.reviews.c.review_id).where(db.reviews.c.reason == reason,
                                                                      db.reviews.c.resolved_at.is_(None))
                                 .order_by(db.reviews.c.review_id)).scalars())


def test_a_corrected_return_reaches_the_library_system_once_after_its_loan(school, other):
    peer = Peer(other(), "utf-8").start()
    try:
        turn_on(school.store, peer.port)
        school.record(school.checkout("I1", "S1"))
        school.record(school.checkin("I2"))  # the wrong copy scanned at the return: not on loan, kept for review
        (review,) = _open_reviews(school.store, "not_on_loan")
        assert [(r.kind, r.item_id) for r in outbox(school.store)] == [("checkout", "I1")]
        assert bridge.send_due(school.store).sent == 1

        reviews.correct(school.store, review, "Ms Li", "two copies look alike", item_id="I1")
        with pytest.raises(reviews.AlreadyDecided):
            reviews.correct(school.store, review, "Ms Li", "again", item_id="I1")
        assert bridge.send_due(school.store).sent == 1
        assert bridge.send_due(school.store).sent == 0  # nothing left: it is not sent twice
    finally:
        peer.stop()
    rows = outbox(school.store)
    with school.store.reading() as conn:
        returned = conn.execute(select(db.reviews.c.event_id).where(db.reviews.c.review_id == review)).scalar_one()
    assert [(r.kind, r.item_id, r.event_id == returned, r.status) for r in rows] == [
        ("checkout", "I1", False, "sent"), ("checkin", "I1", True, "sent")]  # the corrected book, not I2
    assert [a[:3] for a in peer.system.applied] == [("checkout", "30732000900001", "0009990001"),
                                                    ("checkin", "30732000900001", "0009990001")]
    assert peer.system.books["30732000900001"].patron is None


def test_stale_news_accepted_closes_the_loan_there_too(school, other):
    """A return recorded at one corner before a loan another corner recorded (its batch came
    later): older than the book's latest change, kept for review; Accept closes the loan here
    and, through the bridge, at the library system."""
    returner = KioskClient("", "corner-2", add_kiosk(school.store, "corner-2"))
    time.sleep(1.0)  # both corners provisioned before the events' (synced) times
    school.kiosk.start = returner.start = datetime.now(UTC) - timedelta(seconds=0.8)
    peer = Peer(other(), "utf-8").start()
    try:
        turn_on(school.store, peer.port)
        made = school.checkout("I7", "S7")
        school.kiosk.seq -= 1  # made again, at its own time: the same number
        lent = school.kiosk.event(made.type, made.payload, minutes=0.4 / 60)
        school.record(lent)
        back = returner.event("loan.checked_in", {"item_id": "I7", "with_card": False, "implicit": False,
                                                  "warnings": []}, minutes=0.1 / 60)
        request = returner.request([back])
        ingest(school.store, Batch(request.kiosk_id, request.batch_id, request.from_seq, request.to_seq,
                                   request.clock, request.events), db.now())
        (review,) = _open_reviews(school.store, "older_than_item_change")
        assert [r.kind for r in outbox(school.store)] == ["checkout"]

        reviews.decide(school.store, review, "accept", "", "Ms Li")
        done = bridge.send_due(school.store)
    finally:
        peer.stop()
    assert done.sent == 2
    assert [(r.kind, r.event_id, r.status) for r in outbox(school.store)] == [
        ("checkout", lent.event_id, "sent"), ("checkin", back.event_id, "sent")]
    assert [a[:2] for a in peer.system.applied] == [("checkout", "30732000900007"), ("checkin", "30732000900007")]


def test_with_the_bridge_off_a_decision_puts_nothing_in_the_outbox(school):
    school.record(school.checkout("I3", "S3"))
    school.record(school.checkin("I4"))
    (review,) = _open_reviews(school.store, "not_on_loan")
    reviews.correct(school.store, review, "Ms Li", "", item_id="I3")
    assert outbox(school.store) == []


def test_a_checkout_corrected_to_another_student_goes_with_that_students_card(school, other):
    peer = Peer(other(), "utf-8").start()
    try:
        turn_on(school.store, peer.port)
        misread = school.checkout("I5", "S1")  # 王瑋東's card number, a student id no column holds
        school.kiosk.seq -= 1
        school.record(school.kiosk.event(misread.type, {**misread.payload, "patron_id": "S" * 200}))
        (review,) = _open_reviews(school.store, "invalid_payload")
        reviews.correct(school.store, review, "Ms Li", "it was 李雷, with a friend's card", patron_id="S2")
        assert bridge.send_due(school.store).sent == 1
    finally:
        peer.stop()
    assert [(r.kind, r.item_id, r.patron_id, r.card_id) for r in outbox(school.store)] == [
        ("checkout", "I5", "S2", None)]  # not the card read: it is someone else's
    assert [a[:3] for a in peer.system.applied] == [("checkout", "30732000900005", "0009990002")]

