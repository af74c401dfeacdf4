"""The journal keeps every acknowledged event, whatever happens to the disk or the power."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from bookcorner.circulation.events import Checkout, EventDraft, EventType, UnknownPayload
from bookcorner.journal import schema
from bookcorner.journal.journal import Journal, JournalBusy, JournalDamaged, JournalReader, list_segments, read_header
from bookcorner.journal.storage import SegmentStorage, SegmentUnreadable, StoreError, StoreWriteError, write_new_file
from tests.journal.conftest import checkout_draft


def fill(journal: Journal, count: int, start: int = 0) -> list[str]:
    ids = []
    for n in range(start, start + count):
        ids.extend(e.event_id for e in journal.append([checkout_draft(n)]))
    return ids


def all_events(directory: Path) -> list:
    return list(JournalReader(directory).events_after(0))


def test_events_are_stamped_in_gap_free_order_and_survive_reopening(tmp_path, clock):
    with Journal(tmp_path, "corner-a", clock, segment_events=16) as journal:
        ids = fill(journal, 50)
        first = journal.append([checkout_draft(99), checkout_draft(100)])
    assert [e.seq for e in first] == [51, 52]
    assert first[0].boot_id == clock.boot_id and first[0].kiosk_id == "corner-a" and first[0].clock_synced
    events = all_events(tmp_path)
    assert [e.seq for e in events] == list(range(1, 53))
    assert [e.event_id for e in events[:50]] == ids
    with Journal(tmp_path, "corner-a", clock, segment_events=16) as journal:
        assert journal.last_seq == 52
        assert journal.append([checkout_draft(0)])[0].seq == 53
    assert JournalReader(tmp_path).check() == []


def test_old_events_move_into_sealed_read_only_segments(tmp_path, clock):
    with Journal(tmp_path, "corner-a", clock, segment_events=16) as journal:
        fill(journal, 40)
    segments = list_segments(tmp_path)
    assert [first for first, _ in segments] == [1, 17, 33]
    for _first, path in segments[:-1]:
        assert not os.access(path, os.W_OK) or os.geteuid() == 0
        assert path.stat().st_mode & 0o222 == 0
        header = SegmentStorage(path, read_only=True).read()["_meta"]["1"]
        assert header["sealed"] and header["events"] == 16
    # the hot segment holds only the newest events, however long the history
    hot = SegmentStorage(segments[-1][1], read_only=True).read()["events"]
    assert len(hot) == 8


def test_the_reader_finds_events_after_any_point_across_segments(tmp_path, clock):
    with Journal(tmp_path, "corner-a", clock, segment_events=16) as journal:
        fill(journal, 70)
    reader = JournalReader(tmp_path)
    assert [e.seq for e in reader.events_after(30, limit=5)] == [31, 32, 33, 34, 35]
    assert [e.seq for e in reader.events_after(64)] == [65, 66, 67, 68, 69, 70]
    assert list(reader.events_after(70)) == []
    assert reader.last_seq() == 70


def test_a_second_writer_is_refused_while_the_first_holds_the_journal(tmp_path, clock):
    with Journal(tmp_path, "corner-a", clock):
        with pytest.raises(JournalBusy, match="in use by another bookcorner process"):
            Journal(tmp_path, "corner-a", clock)


def test_a_data_directory_belongs_to_one_kiosk(tmp_path, clock):
    with Journal(tmp_path, "corner-a", clock) as journal:
        fill(journal, 3)
    with pytest.raises(StoreError, match="belongs to kiosk 'corner-a'"):
        Journal(tmp_path, "corner-b", clock)


# -- torn and damaged files ---------------------------------------------------------------------


def hot_segment(directory: Path) -> Path:
    return list_segments(directory)[-1][1]


def test_an_append_cut_short_by_a_crash_is_dropped_and_the_rest_kept(tmp_path, clock):
    with Journal(tmp_path, "corner-a", clock, segment_events=64) as journal:
        fill(journal, 10)
    path = hot_segment(tmp_path)
    size = path.stat().st_size
    with open(path, "r+b") as fp:
        fp.truncate(size - 17)  # the last record loses its end
    with Journal(tmp_path, "corner-a", clock, segment_events=64) as journal:
        assert journal.last_seq == 9 and journal.damage == []
        assert journal.append([checkout_draft(10)])[0].seq == 10
    assert [e.seq for e in all_events(tmp_path)] == list(range(1, 11))


def test_a_tail_of_zeros_after_a_crash_is_dropped(tmp_path, clock):
    with Journal(tmp_path, "corner-a", clock, segment_events=64) as journal:
        fill(journal, 5)
    with open(hot_segment(tmp_path), "ab") as fp:
        fp.write(b"\0" * 300)
    with Journal(tmp_path, "corner-a", clock, segment_events=64) as journal:
        assert journal.last_seq == 5 and journal.damage == []


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda size: b"", id="zero-length"),
        pytest.param(lambda size: b"\0" * size, id="nul-filled"),
        pytest.param(lambda size: random.Random(7).randbytes(size), id="garbage"),
        pytest.param(lambda size: b"{\"_default\": {}}", id="looks-like-an-empty-tinydb"),
    ],
)
def test_an_unreadable_segment_is_never_taken_for_an_empty_journal(tmp_path, clock, damage):
    with Journal(tmp_path, "corner-a", clock, segment_events=16) as journal:
        fill(journal, 20)  # one sealed segment (1-16), a hot one (17-20)
    path = hot_segment(tmp_path)
    path.write_bytes(damage(path.stat().st_size))
    with pytest.raises(JournalDamaged, match="bookcorner journal repair"):
        Journal(tmp_path, "corner-a", clock, segment_events=16)
    # the repair keeps the damaged file aside, carries on after the last good event, and says so
    with Journal(tmp_path, "corner-a", clock, segment_events=16, repair=True) as journal:
        assert [d.kind for d in journal.damage] == ["unreadable"]
        kept = Path(journal.damage[0].kept_at)
        assert kept.exists() and kept.read_bytes() == damage(kept.stat().st_size) or kept.stat().st_size >= 0
        assert journal.last_seq == 17  # 1-16 kept, then the damage report itself
    events = all_events(tmp_path)
    assert [e.seq for e in events[:16]] == list(range(1, 17))
    assert events[-1].type is EventType.JOURNAL_DAMAGE
    assert "17" in events[-1].payload.damage[0].detail


def test_repair_never_reuses_a_sequence_number_the_server_has(tmp_path, clock):
    with Journal(tmp_path, "corner-a", clock, segment_events=16) as journal:
        fill(journal, 20)
    hot_segment(tmp_path).write_bytes(b"")
    with Journal(tmp_path, "corner-a", clock, segment_events=16, repair=True, known_seq=19) as journal:
        assert journal.last_seq == 20  # the damage event takes number 20, after what the server has


def test_a_damaged_record_in_the_middle_is_reported_and_the_rest_salvaged(tmp_path, clock):
    with Journal(tmp_path, "corner-a", clock, segment_events=64) as journal:
        ids = fill(journal, 10)
    path = hot_segment(tmp_path)
    lines = path.read_bytes().split(b"\n")
    lines[4] = lines[4][:30] + b"X" + lines[4][31:]  # one flipped byte in the 4th event's record
    path.write_bytes(b"\n".join(lines))
    with Journal(tmp_path, "corner-a", clock, segment_events=64) as journal:
        assert [d.kind for d in journal.damage] == ["corrupt_records"]
        assert Path(journal.damage[0].kept_at).read_bytes() == b"\n".join(lines)
        assert journal.last_seq == 11  # 10 events, one of them lost, then the damage report
    assert read_header(path)["first_seq"] == 1
    events = all_events(tmp_path)
    assert [e.event_id for e in events[:9]] == ids[:3] + ids[4:]
    assert events[-1].type is EventType.JOURNAL_DAMAGE
    found = JournalReader(tmp_path).check()
    assert [d.kind for d in found] == ["gap"] and "4" in found[0].detail


def test_check_reports_a_missing_or_unreadable_archive(tmp_path, clock):
    with Journal(tmp_path, "corner-a", clock, segment_events=16) as journal:
        fill(journal, 40)
    segments = list_segments(tmp_path)
    os.chmod(segments[1][1], 0o644)
    segments[1][1].write_bytes(b"")
    kinds = [d.kind for d in JournalReader(tmp_path).check()]
    assert "unreadable" in kinds
    segments[1][1].unlink()
    assert [d.kind for d in JournalReader(tmp_path).check()] == ["gap"]


def test_repair_salvages_damaged_archives_and_sets_unreadable_ones_aside(tmp_path, clock):
    with Journal(tmp_path, "corner-a", clock, segment_events=16) as journal:
        fill(journal, 60)  # sealed 1-16, 17-32, 33-48; hot 49-60
    segments = list_segments(tmp_path)
    os.chmod(segments[0][1], 0o644)
    lines = segments[0][1].read_bytes().split(b"\n")
    lines[0] = lines[0][:50] + b"#" + lines[0][51:]  # bit rot in a sealed segment's only record...
    segments[0][1].write_bytes(b"\n".join(lines))
    os.chmod(segments[1][1], 0o644)
    segments[1][1].write_bytes(b"\0" * 512)  # ...and a sealed segment zeroed
    kinds = sorted(d.kind for d in JournalReader(tmp_path).check())
    assert "unreadable" in kinds
    with Journal(tmp_path, "corner-a", clock, segment_events=16, repair=True) as journal:
        found = {d.segment: d for d in journal.damage}
        assert "17 to 32 are lost" in found[segments[1][1].name].detail
    remaining = JournalReader(tmp_path).check()
    assert all(d.kind == "gap" for d in remaining), remaining
    assert (tmp_path / "damaged").is_dir() and len(list((tmp_path / "damaged").iterdir())) >= 1


def test_a_storage_opened_on_a_damaged_file_refuses_instead_of_starting_empty(tmp_path):
    path = tmp_path / "x.log"
    path.write_bytes(b"")
    with pytest.raises(SegmentUnreadable, match="not an empty database"):
        SegmentStorage(path)


# -- full disk ------------------------------------------------------------------------------------


def test_a_full_disk_fails_the_write_clearly_and_loses_nothing_acknowledged(full_disk, clock):
    directory, use_up_space = full_disk
    with Journal(directory / "journal", "corner-a", clock, segment_events=100_000) as journal:
        acknowledged = fill_until_full(journal, use_up_space)
    events = all_events(directory / "journal")
    assert [e.event_id for e in events] == acknowledged
    assert [e.seq for e in events] == list(range(1, len(acknowledged) + 1))
    assert JournalReader(directory / "journal").check() == []


def fill_until_full(journal: Journal, use_up_space) -> list[str]:
    acknowledged = fill(journal, 5)
    free_again = use_up_space()
    failures = 0
    for n in range(5, 400):
        try:
            acknowledged.extend(e.event_id for e in journal.append([checkout_draft(n)]))
        except StoreWriteError as error:
            assert error.disk_full and "disk is full" in str(error) and "Nothing was recorded" in str(error)
            failures += 1
            if failures == 3:
                break
    assert failures == 3, "the disk never filled up"
    last = journal.last_seq
    free_again()
    # after space is freed the next event follows on without a gap
    acknowledged.extend(e.event_id for e in journal.append([checkout_draft(999)]))
    assert journal.last_seq == last + 1
    return acknowledged


# -- schema migration ---------------------------------------------------------------------------


def test_segments_written_by_an_older_release_are_migrated_in_place(tmp_path, clock, monkeypatch):
    with Journal(tmp_path, "corner-a", clock, segment_events=16) as journal:
        fill(journal, 20)

    def add_branch(tables):
        for doc in tables.get("events", {}).values():
            doc["payload"]["branch"] = "main-school"
        return tables

    monkeypatch.setattr(schema, "SCHEMA", 2)
    monkeypatch.setattr(schema, "MIGRATIONS", {1: add_branch})
    monkeypatch.setattr(schema, "migrate",
                        lambda tables, frm, to=2, migrations={1: add_branch}: add_branch(tables))
    with Journal(tmp_path, "corner-a", clock, segment_events=16) as journal:
        assert journal.last_seq == 20
    for _first, path in list_segments(tmp_path):
        tables = SegmentStorage(path, read_only=True).read()
        assert tables["_meta"]["1"]["schema"] == 2
        assert read_header(path)["schema"] == 2  # the header stays the first record, readable alone
        assert all(doc["payload"]["branch"] == "main-school" for doc in tables.get("events", {}).values())


def test_a_segment_from_a_newer_release_is_refused(tmp_path, clock):
    with Journal(tmp_path, "corner-a", clock) as journal:
        fill(journal, 2)
    path = hot_segment(tmp_path)
    tables = SegmentStorage(path, read_only=True).read()
    tables["_meta"]["1"]["schema"] = schema.SCHEMA + 1
    write_new_file(path, [{"u": tables}])
    with pytest.raises(StoreError, match="newer bookcorner"):
        Journal(tmp_path, "corner-a", clock)


# -- two processes ------------------------------------------------------------------------------


def test_a_reader_in_another_process_sees_whole_events_only_while_the_writer_appends(tmp_path, clock):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the kiosk: appends as fast as it can
        os.close(read_end)
        try:
            with Journal(tmp_path, "corner-a", clock, segment_events=32) as journal:
                os.write(write_end, b"r")
                for n in range(600):
                    journal.append([checkout_draft(n)])
            os._exit(0)
        except BaseException:
            os._exit(1)
    os.close(write_end)
    assert os.read(read_end, 1) == b"r"
    reader = JournalReader(tmp_path)
    seen = 0
    deadline = time.monotonic() + 30
    while seen < 600 and time.monotonic() < deadline:
        for event in reader.events_after(seen):
            assert event.seq == seen + 1, "the reader skipped or repeated an event"
            assert event.payload.item_id == f"I{seen:05d}"
            seen = event.seq
    _pid, status = os.waitpid(pid, 0)
    os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0
    assert seen == 600


def test_a_record_whose_payload_does_not_fit_its_type_is_kept_as_recorded(tmp_path, clock, caplog):
    """A checkout without its due date (no release of ours writes one; a record of a release
    that wrote them otherwise would look so): read back with its raw payload and said in the
    log, never dropped; the sync daemon's records carry it as it is on disk."""
    with Journal(tmp_path, "corner-a", clock) as journal:
        journal.append([checkout_draft(1), EventDraft(EventType.CHECKED_OUT, "S01", UnknownPayload({"item_id": "I7"})),
                        checkout_draft(3)])
    events = list(JournalReader(tmp_path).events_after(0))
    assert [type(e.payload) for e in events] == [Checkout, UnknownPayload, Checkout]
    assert events[1].type is EventType.CHECKED_OUT and events[1].payload == UnknownPayload({"item_id": "I7"})
    assert "journal event 2 kept as recorded" in caplog.text
    assert [r["payload"] for r in JournalReader(tmp_path).records_after(1, 1)] == [{"item_id": "I7"}]
