"""The reference snapshot: whole versions only, a damaged file falls back, never empty."""

from __future__ import annotations

import os
import time

import pytest

from bookcorner.circulation.state import Loan
from bookcorner.journal.snapshot import NoReferenceData, ReferenceStore
from bookcorner.journal.storage import StoreError
from tests.school import reference


def test_a_snapshot_round_trips_everything_the_rules_need(tmp_path):
    from datetime import date, datetime

    original = reference(loans=[Loan("l1", "I001", "S01", date(2026, 11, 30),
                                     datetime.fromisoformat("2026-11-23T12:05:00+08:00"))],
                         applied_seq=7)
    store = ReferenceStore(tmp_path)
    store.save(original, "v1", "Test school")
    loaded = store.load()
    copy = loaded.reference
    assert (loaded.version, loaded.school, loaded.damage) == ("v1", "Test school", [])
    assert dict(copy.items) == dict(original.items) and dict(copy.patrons) == dict(original.patrons)
    assert dict(copy.cards) == dict(original.cards) and dict(copy.policy.rules) == dict(original.policy.rules)
    assert copy.calendar == original.calendar and copy.timetable == original.timetable
    assert copy.loans == original.loans and copy.applied_seq == 7
    assert dict(copy.by_isbn13) == dict(original.by_isbn13)


def test_no_snapshot_yet_says_how_to_get_one(tmp_path):
    with pytest.raises(NoReferenceData, match="sync with the server, or load the demo school"):
        ReferenceStore(tmp_path).load()


@pytest.mark.parametrize("damage", [b"", b"\0" * 4096, b"garbage\n" * 10, b'{"_default": {}}'],
                         ids=["zero-length", "nul-filled", "garbage", "empty-tinydb"])
def test_a_damaged_snapshot_falls_back_to_the_previous_version_and_says_so(tmp_path, damage):
    store = ReferenceStore(tmp_path)
    store.save(reference(), "v1")
    store.save(reference(), "v2")
    store.path.write_bytes(damage)
    loaded = store.load()
    assert loaded.version == "v1" and len(loaded.reference.items) == len(reference().items)
    assert loaded.damage and "is damaged" in loaded.damage[0]


def test_with_no_usable_version_the_error_is_clear_never_an_empty_catalogue(tmp_path):
    store = ReferenceStore(tmp_path)
    store.save(reference(), "v1")
    store.save(reference(), "v2")
    store.path.write_bytes(b"")
    store.path.with_name("reference.db.prev").write_bytes(b"\0" * 100)
    with pytest.raises(StoreError, match="no earlier version is usable"):
        store.load()


def test_a_reader_never_sees_half_a_version_while_another_process_writes(tmp_path):
    store = ReferenceStore(tmp_path)
    store.save(reference(), "v0")
    pid = os.fork()
    if pid == 0:
        try:
            for n in range(1, 150):
                store.save(reference(), f"v{n}")
        finally:
            os._exit(0)
    versions = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        loaded = store.load()
        assert not loaded.damage and len(loaded.reference.items) == len(reference().items)
        versions.add(loaded.version)
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            break
    assert len(versions) > 1


def test_a_snapshot_stores_rules_and_holiday_loans_under_the_wire_names_and_reads_either_spelling():
    """The sync writes the server's records (``lendable``, ``lend_from``, ``lend_until``) into the
    snapshot and every release reads them: the code's new names (``loanable``, ``checkout_from``,
    ``checkout_until``) do not change what is on disk, and a snapshot under the new names reads too."""
    import copy
    from dataclasses import replace
    from datetime import date

    import msgspec

    from bookcorner.circulation.calendar import HolidayLoan
    from bookcorner.journal.snapshot import reference_from_tables, reference_to_tables
    from bookcorner.protocol.messages import CalendarRecord, PolicyRecord

    school = reference()
    window = HolidayLoan("winter holiday", date(2027, 1, 4), date(2027, 1, 15), date(2027, 2, 22))
    original = replace(school, calendar=replace(school.calendar, holiday_loans=(window,)))
    tables = reference_to_tables(original, "v1")
    settings = tables["settings"]["1"]
    assert all("lendable" in cell and "loanable" not in cell for cell in settings["policy"]["rules"])
    assert settings["calendar"]["holiday_loans"] == [{"name": "winter holiday", "lend_from": "2027-01-04",
                                                      "lend_until": "2027-01-15", "due": "2027-02-22"}]
    wire = msgspec.convert(settings["calendar"], CalendarRecord, strict=False).holiday_loans[0]
    assert (wire.checkout_from, wire.checkout_until) == (window.checkout_from, window.checkout_until)
    rules = msgspec.convert(settings["policy"], PolicyRecord, strict=False).rules
    assert any(not cell.loanable for cell in rules)  # reference books stay in the room

    renamed = copy.deepcopy(tables)
    new = renamed["settings"]["1"]
    new["policy"]["rules"] = [{("loanable" if k == "lendable" else k): v for k, v in cell.items()}
                              for cell in new["policy"]["rules"]]
    new["calendar"]["holiday_loans"] = [{"name": "winter holiday", "checkout_from": "2027-01-04",
                                         "checkout_until": "2027-01-15", "due": "2027-02-22"}]
    for version in (tables, renamed):
        loaded, _settings = reference_from_tables(version)
        assert loaded.calendar == original.calendar and dict(loaded.policy.rules) == dict(original.policy.rules)
