"""Reading challenges on the central server, on both databases: set, edited and ended by the
librarian, shipped to the kiosks with the reading guide (and gone from it once ended), and
ranked per class and per child from the server's loans with the kiosks' own ``progress``."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import msgspec
import pytest

from bookcorner.central import db
from bookcorner.central.kiosks import add_kiosk
from bookcorner.central.reference import delta, load_document
from bookcorner.central.services import challenges
from bookcorner.journal.snapshot import guide_from_builtins
from bookcorner.protocol.messages import (
    ItemRecord,
    NextBooksRecord,
    PatronRecord,
    ReadingListRecord,
    ReadingRecord,
    ReferenceDocument,
)
from bookcorner.sync.reference import merge

UTC = timezone.utc
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NOVEMBER = challenges.ChallengeMeta("十一月读书月", date(2026, 11, 1), date(2026, 11, 30), 3, False, ("3-1", "3-2"))
#: item id: call number (main classes I, I, I, K, N)
BOOKS = {"B1": "I287/1", "B2": "I247/2", "B3": "I242/3", "B4": "K82/1", "B5": "N49/1"}
CHILDREN = {"S1": ("王小明", "3-1"), "S2": ("李小红", "3-1"), "S3": ("张小华", "3-2"), "S4": ("赵小四", "4-1")}


def _school(store) -> None:
    add_kiosk(store, "K1")
    load_document(store, ReferenceDocument(
        school="Test school",
        patrons=[PatronRecord(patron_id=p, name=n, role="student", class_name=k) for p, (n, k) in CHILDREN.items()],
        items=[ItemRecord(item_id=i, title=f"书{i}", call_number=cn) for i, cn in BOOKS.items()]))


def _loans(store, rows) -> None:
    """(child, item, day of November 2026; 0: in October)."""
    with store.writing() as conn:
        conn.execute(db.loans.insert(), [
            {"loan_id": f"L{n}", "item_id": item, "patron_id": child, "class_name": CHILDREN[child][1],
             "kiosk_id": "K1", "out_at": datetime(2026, 11 if day else 10, day or 20, 3, 0, tzinfo=UTC),
             "due": date(2026, 12, 20)} for n, (child, item, day) in enumerate(rows)])


def test_a_challenge_reaches_the_kiosks_until_the_librarian_ends_it(store):
    _school(store)
    challenge_id = challenges.save(store, NOVEMBER, "Ms Li", NOW)
    shipped = delta(store, "K1").reading
    assert shipped is not None
    assert [(c.name, c.start, c.end, c.goal, c.class_names) for c in shipped.challenges] == [
        ("十一月读书月", date(2026, 11, 1), date(2026, 11, 30), 3, ["3-1", "3-2"])]
    kiosk = merge(None, delta(store, "K1"))
    [on_kiosk] = kiosk.reading.challenges
    assert on_kiosk.challenge_id == challenge_id and on_kiosk.is_for("3-2") and not on_kiosk.is_for("4-1")
    assert on_kiosk.running(NOW)

    challenges.save(store, challenges.ChallengeMeta("十一月读书月", date(2026, 11, 1), date(2026, 11, 30), 5),
                    "Ms Li", NOW, challenge_id)
    kiosk = merge(kiosk, delta(store, "K1"))
    assert [(c.goal, c.class_names) for c in kiosk.reading.challenges] == [(5, frozenset())]

    assert challenges.end(store, challenge_id, "Ms Li", NOW + timedelta(days=1))
    kiosk = merge(kiosk, delta(store, "K1"))
    assert kiosk.reading.challenges == ()
    [kept] = challenges.challenges(store)
    assert kept.state(date(2026, 11, 21)) == "over" and kept.meta.goal == 5
    assert not challenges.end(store, "nosuch", "Ms Li", NOW)
    challenges.save(store, NOVEMBER, "Ms Li", NOW + timedelta(days=2), challenge_id)  # a typo fixed afterwards
    assert challenges.challenges(store)[0].ended_at is not None and merge(kiosk, delta(store, "K1")).reading.challenges == ()


def test_the_ranking_counts_each_childs_books_in_the_period_per_class(store):
    _school(store)
    challenge_id = challenges.save(store, NOVEMBER, "Ms Li", NOW)
    _loans(store, [("S1", "B1", 2), ("S1", "B2", 3), ("S1", "B3", 4), ("S1", "B4", 5),  # 4 books: capped at 3
                   ("S2", "B1", 2), ("S2", "B1", 9), ("S2", "B2", 0),  # 西 twice, one in October: 1
                   ("S3", "B5", 10), ("S3", "B4", 11), ("S3", "B3", 12),  # 3: reached
                   ("S4", "B1", 3)])  # class 4-1 is not taking part
    ranking = challenges.ranking(store, challenge_id)
    assert ranking is not None
    assert [(r.name, r.class_name, r.done, r.reached) for r in ranking.children] == [
        ("王小明", "3-1", 3, True), ("张小华", "3-2", 3, True), ("李小红", "3-1", 1, False)]
    assert [(r.class_name, r.children, r.reached, r.done) for r in ranking.classes] == [
        ("3-2", 1, 1, 3), ("3-1", 2, 1, 4)]


def test_a_categories_goal_counts_clc_main_classes(store):
    _school(store)
    meta = challenges.ChallengeMeta("五类书", date(2026, 11, 1), date(2026, 11, 30), 3, True)
    challenge_id = challenges.save(store, meta, "Ms Li", NOW)
    _loans(store, [("S1", "B1", 2), ("S1", "B2", 3), ("S1", "B3", 4), ("S3", "B1", 2), ("S3", "B4", 3),
                   ("S3", "B5", 4)])
    ranking = challenges.ranking(store, challenge_id)
    assert ranking is not None
    done = {r.patron_id: r.done for r in ranking.children}
    assert done == {"S1": 1, "S2": 0, "S3": 3, "S4": 0}


@pytest.mark.parametrize(("meta", "code"), [
    (challenges.ChallengeMeta(" ", date(2026, 11, 1), date(2026, 11, 30), 3), "name"),
    (challenges.ChallengeMeta("x", date(2026, 11, 30), date(2026, 11, 1), 3), "period"),
    (challenges.ChallengeMeta("x", date(2026, 11, 1), date(2026, 11, 30), 0), "goal"),
    (challenges.ChallengeMeta("x", date(2026, 11, 1), date(2026, 11, 30), 30, True), "goal_categories"),
])
def test_a_challenge_without_a_name_a_period_or_a_goal_is_refused(store, meta, code):
    with pytest.raises(challenges.ChallengeRefused) as refused:
        challenges.save(store, meta, "Ms Li", NOW)
    assert refused.value.code == code
    assert challenges.challenges(store) == []


def test_the_kiosks_snapshot_keeps_the_challenge_on_disk(store, tmp_path):
    from bookcorner.journal.snapshot import ReferenceStore

    _school(store)
    challenges.save(store, NOVEMBER, "Ms Li", NOW)
    pulled = merge(None, delta(store, "K1"))
    snapshots = ReferenceStore(tmp_path / "reference")
    snapshots.save(pulled, "e:1", "Test school")
    loaded = snapshots.load().reference
    assert loaded.reading == pulled.reading and loaded.reading.challenges[0].goal == 3


class OldReadingRecord(msgspec.Struct, kw_only=True):
    """The reading guide as protocol/messages.py had it before challenges."""

    lists: list[ReadingListRecord] = msgspec.field(default_factory=list)
    next_books: list[NextBooksRecord] = msgspec.field(default_factory=list)


def test_old_kiosks_and_old_servers_still_understand_each_other(store):
    """The reading guide as a kiosk from before challenges decodes it (the field ignored),
    and a guide from a server before challenges decodes here with none."""
    _school(store)
    challenges.save(store, NOVEMBER, "Ms Li", NOW)
    wire = msgspec.json.encode(delta(store, "K1").reading)
    assert b"challenges" in wire
    assert msgspec.json.decode(wire, type=OldReadingRecord).lists == []
    old = msgspec.json.encode(OldReadingRecord())
    assert msgspec.json.decode(old, type=ReadingRecord).challenges == []
    assert guide_from_builtins({"lists": [], "next_books": []}).challenges == ()


# -- the school's award rules (阅读之星, 书香班级) -------------------------------------------------

#: class 5-1: books read 5, 5, 4, 2; class 5-2: 3, 1 (goal 3)
READERS = {"R1": ("钱一", "5-1", 5), "R2": ("孙二", "5-1", 5), "R3": ("周三", "5-1", 4), "R4": ("吴四", "5-1", 2),
           "R5": ("郑五", "5-2", 3), "R6": ("冯六", "5-2", 1)}


def _readers(store, rules: challenges.AwardRules) -> challenges.Ranking:
    load_document(store, ReferenceDocument(
        school="Test school",
        patrons=[PatronRecord(patron_id=p, name=n, role="student", class_name=k) for p, (n, k, _) in READERS.items()],
        items=[ItemRecord(item_id=f"X{n}", title=f"书{n}", call_number="I287") for n in range(6)]))
    with store.writing() as conn:
        conn.execute(db.loans.insert(), [
            {"loan_id": f"L{p}{n}", "item_id": f"X{n}", "patron_id": p, "class_name": k, "kiosk_id": "K1",
             "out_at": datetime(2026, 11, 2 + n, 3, 0, tzinfo=UTC), "due": date(2026, 12, 20)}
            for p, (_, k, books) in READERS.items() for n in range(books)])
    meta = challenges.ChallengeMeta("星级读书月", date(2026, 11, 1), date(2026, 11, 30), 3, False, ("5-1", "5-2"), rules)
    challenge_id = challenges.save(store, meta, "Ms Li", NOW)
    kept = challenges.one(store, challenge_id)
    assert kept is not None and kept.meta.rules == rules  # the rules come back as saved
    ranking = challenges.ranking(store, challenge_id)
    assert ranking is not None
    return ranking


def test_by_default_every_child_at_the_goal_is_a_reading_star_and_no_class_is_awarded(store):
    ranking = _readers(store, challenges.AwardRules())
    # the most books first (past the goal too; the progress stays capped), then by name
    assert [(r.patron_id, r.done, r.counted) for r in ranking.children[:3]] == [("R2", 3, 5), ("R1", 3, 5),
                                                                               ("R3", 3, 4)]
    assert {r.patron_id for r in ranking.stars} == {"R1", "R2", "R3", "R5"}
    assert ranking.book_loving == [] and not any(k.awarded for k in ranking.classes)


def test_a_least_number_and_a_per_class_cap_let_tied_children_share_the_place(store):
    ranking = _readers(store, challenges.AwardRules(star_at_least=4, stars_per_class=1))
    # 5-1: 5, 5 share the first place (both stars), 4 is third; 5-2's 3 books are fewer than 4
    assert sorted(r.patron_id for r in ranking.stars) == ["R1", "R2"]
    assert {r.patron_id: r.star for r in ranking.children} == {
        "R1": True, "R2": True, "R3": False, "R4": False, "R5": False, "R6": False}


def test_a_per_class_cap_alone_counts_places_per_class(store):
    ranking = _readers(store, challenges.AwardRules(stars_per_class=2))
    # 5-1: places 1, 1, 3: the third is past the cap of 2; 5-2's only child at the goal is first
    assert sorted(r.patron_id for r in ranking.stars) == ["R1", "R2", "R5"]


@pytest.mark.parametrize(("rules", "awarded"), [
    (challenges.AwardRules(class_share=75), ["5-1"]),  # 3 of 4 is 75%; 5-2's 1 of 2 is 50%
    (challenges.AwardRules(class_share=50), ["5-1", "5-2"]),
    (challenges.AwardRules(class_share=76), []),
    (challenges.AwardRules(class_share=50, class_average=4), ["5-1"]),  # 16 books / 4 = 4; 5-2: 4 / 2 = 2
    (challenges.AwardRules(class_share=75, class_average=5), []),
])
def test_a_book_loving_class_needs_its_share_at_the_goal_and_its_average(store, rules, awarded):
    ranking = _readers(store, rules)
    assert sorted(k.class_name for k in ranking.book_loving) == awarded
    [five_one] = [k for k in ranking.classes if k.class_name == "5-1"]
    assert (five_one.children, five_one.reached, five_one.counted, five_one.average) == (4, 3, 16, 4.0)


@pytest.mark.parametrize(("rules", "code"), [
    (challenges.AwardRules(star_at_least=2), "star_at_least"),  # fewer than the goal of 3
    (challenges.AwardRules(star_at_least=1001), "star_at_least"),
    (challenges.AwardRules(stars_per_class=0), "stars_per_class"),
    (challenges.AwardRules(class_share=0), "class_share"),
    (challenges.AwardRules(class_share=101), "class_share"),
    (challenges.AwardRules(class_share=80, class_average=0), "class_average"),
    (challenges.AwardRules(class_average=3), "class_average_alone"),
])
def test_award_rules_out_of_range_are_refused(store, rules, code):
    meta = challenges.ChallengeMeta("x", date(2026, 11, 1), date(2026, 11, 30), 3, rules=rules)
    with pytest.raises(challenges.ChallengeRefused) as refused:
        challenges.save(store, meta, "Ms Li", NOW)
    assert refused.value.code == code
    assert challenges.challenges(store) == []
