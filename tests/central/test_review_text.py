"""The review queue's and the audit log's sentences (central.dashboard.review_text): one per
review reason the server writes, in English and in Chinese, naming students, books and
corners, in the school's local time, and never showing a field name or a Python value."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from bookcorner import i18n
from bookcorner.central.dashboard.review_text import (SENTENCES, AuditEntry, Case, Words, audit_sentence, reason_title,
                                           sentence)
from bookcorner.circulation.outcomes import ReviewReason

SHANGHAI = ZoneInfo("Asia/Shanghai")
WORDS = Words(SHANGHAI, titles={"I-1": "草房子", "I-2": "Charlotte's Web"},
              people={"S-1": "王小明", "S-2": "李华"}, corners={"k-32": "三年级2班", "k-41": "Class 4.1"})
SCANNED = datetime(2026, 12, 4, 4, 16, tzinfo=timezone.utc)  # 12:16 in Shanghai
RECEIVED = datetime(2026, 12, 4, 5, 0, tzinfo=timezone.utc)
ON_LOAN_TO_LI = {"status": None, "patron_id": "S-2", "due": date(2026, 12, 17),
                 "since": datetime(2026, 12, 3, 1, 0, tzinfo=timezone.utc)}
ON_SHELF = {"status": None, "patron_id": None, "due": None, "since": None}


def event(kind: str, **payload) -> dict:
    return {"type": kind, "payload": payload, "time": SCANNED, "wall_time": "2026-12-04T12:16:00+08:00",
            "actor": "kiosk"}


#: a realistic case of every reason the server writes (central.ingest, central.additions, central.validate,
#: circulation.replay)
CASES = {
    "not_on_loan": Case("not_on_loan", "k-32", {"type": "loan.returned", "item_id": "I-1", "loan_id": None,
                                                "patron_id": "S-1"},
                        event("loan.returned", item_id="I-1", patron_id="S-1"), ON_LOAN_TO_LI, 7, RECEIVED),
    "loan_changed": Case("loan_changed", "k-32", {"type": "loan.renewed", "item_id": "I-1", "on_loan_to": "S-2"},
                         event("loan.renewed", item_id="I-1", patron_id="S-1", due="2026-12-20", loan_id="x"),
                         ON_LOAN_TO_LI, 8, RECEIVED),
    "older_than_item_change": Case(
        "older_than_item_change", "k-32", {"type": "loan.returned", "item_id": "I-1",
                                           "changed_at": "2026-12-04T05:30:00+00:00", "changed_by": "k-41"},
        event("loan.returned", item_id="I-1"), ON_LOAN_TO_LI, 9, RECEIVED),
    "invalid_payload": Case("invalid_payload", "k-32", {"type": "loan.checked_out", "field": "payload.patron_id",
                                                        "problem": "too_long", "limit": 80},
                            event("loan.checked_out", item_id="I-1", patron_id="S" * 81, due="2026-12-18"),
                            None, 10, RECEIVED),
    "unknown_event_type": Case("unknown_event_type", "k-32", {"type": "loan.teleported"},
                               event("loan.teleported", item_id="I-1"), None, 11, RECEIVED),
    "not_handled_here": Case("not_handled_here", "k-32", {"type": "item.found"}, event("item.found", item_id="I-1"),
                             ON_SHELF, 12, RECEIVED),
    "journal_damage": Case("journal_damage", "k-32", {"type": "journal.damage"},
                           event("journal.damage", segment="journal.3"), None, 13, RECEIVED),
    "seq_conflict": Case("seq_conflict", "k-32", {}, None, None, 14, RECEIVED),
    "event_id_conflict": Case("event_id_conflict", "k-32", {
        "event": {"event_id": "e-1", "seq": 15, "type": "loan.checked_out",
                  "payload": {"item_id": "I-2", "patron_id": "S-1", "due": "2026-12-18"}},
        "stored_as": ["k-41", 3]}, None, None, 15, RECEIVED),
    "events_missing": Case("events_missing", "k-32", {"from_seq": 16, "to_seq": 18}, None, None, 16, RECEIVED),
    "card_held_by_other": Case("card_held_by_other", "k-32", {"type": "card.enrolled", "card_id": "0042",
                                                              "held_by": "S-2"},
                               event("card.enrolled", card_id="0042", patron_id="S-1", replaces=[]), None, 19,
                               RECEIVED),
    "item_id_taken": Case("item_id_taken", "k-32", {"type": "item.registered", "item_id": "I-1", "title": "草房子"},
                          event("item.registered", item={"item_id": "I-1", "title": "青铜葵花"}), None, 20, RECEIVED),
    "journal_restored": Case("journal_restored", "k-32", {"restored_from": "2026-12-01T09:00:00+00:00",
                                                          "since_seq": 21, "events_not_here": 5,
                                                          "loans_not_here": 2}, None, None, 21, RECEIVED),
    "journal_repaired": Case("journal_repaired", "k-32", {"restored_from": None, "since_seq": 30,
                                                          "events_not_here": 4, "loans_not_here": 1},
                             None, None, 30, RECEIVED),
    "journal_went_back": Case("journal_went_back", "k-32", {"reused_numbers": 6, "from_seq": 40, "to_seq": 45},
                              None, None, 40, RECEIVED),
    "due_date_from_wrong_clock": Case(
        "due_date_from_wrong_clock", "k-32",
        {"item_id": "I-1", "patron_id": "S-1", "kiosk_time": "2026-11-14T12:16:00+08:00",
         "corrected_time": "2026-12-04T12:16:00+08:00", "due_given": "2026-11-28", "due_corrected": "2026-12-18",
         "timezone": "Asia/Shanghai"},
        event("loan.checked_out", item_id="I-1", patron_id="S-1", due="2026-11-28"), ON_LOAN_TO_LI, 41, RECEIVED),
    "sip2_refused": Case(
        "sip2_refused", "k-32",
        {"kind": "checkout", "item_id": "I-1", "patron_id": "S-1", "screen": "读者证号不存在 unknown patron",
         "system": "10.0.0.5:6001", "done_at": "2026-12-04T04:16:00+00:00"},
        event("loan.checked_out", item_id="I-1", patron_id="S-1", due="2026-12-18"), ON_LOAN_TO_LI, 42, RECEIVED),
    "sip2_unsure": Case(
        "sip2_unsure", "k-32",
        {"kind": "renewal", "item_id": "I-1", "patron_id": "S-1", "screen": "", "system": "10.0.0.5:6001",
         "done_at": "2026-12-04T04:16:00+00:00"},
        event("loan.renewed", item_id="I-1", patron_id="S-1", due="2026-12-18"), ON_LOAN_TO_LI, 43, RECEIVED),
}

#: what the English sentence of each case must say (names, titles, corners, local times)
SAYS = {
    "not_on_loan": ["王小明 returned “草房子” on 4 Dec at 12:16 at 三年级2班, but the server did not have it on loan.",
                    "The server has it on loan to 李华 since 3 Dec."],
    "loan_changed": ["王小明 renewed “草房子” on 4 Dec at 12:16 at 三年级2班", "another loan, to 李华"],
    "older_than_item_change": ["“草房子” was returned on 4 Dec at 12:16 at 三年级2班",
                               "Class 4.1 had recorded a later change to the book on 4 Dec at 13:30"],
    "invalid_payload": ["borrowed “草房子” on 4 Dec at 12:16", "the student's card or id as recorded (too long for the "
                        "database)", "nothing of it was applied"],
    "unknown_event_type": ["三年级2班 recorded something this server does not know on 4 Dec at 12:16"],
    "not_handled_here": ["“草房子” was reported found on 4 Dec at 12:16 at 三年级2班"],
    "journal_damage": ["三年级2班 found damage in its own records on 4 Dec at 12:16"],
    "seq_conflict": ["三年级2班 sent two different records under one number"],
    "event_id_conflict": ["王小明 borrowed “Charlotte's Web”", "already has from Class 4.1"],
    "events_missing": ["三年级2班 lost 3 records before sending them (noticed on 4 Dec at 13:00)"],
    "card_held_by_other": ["三年级2班 gave card 0042 to 王小明 on 4 Dec at 12:16",
                           "the server has that card with 李华"],
    "item_id_taken": ["a new book “青铜葵花” on the shelf", "already belongs to “草房子”"],
    "journal_restored": ["三年级2班 was restored from a backup of 1 Dec at 17:00; 2 loan(s) (5 event(s))"],
    "journal_repaired": ["三年级2班's records were repaired on 4 Dec at 13:00", "newest 4 event(s)"],
    "journal_went_back": ["6 record(s) of 三年级2班 came under numbers"],
    "due_date_from_wrong_clock": ["王小明 borrowed “草房子” at 三年级2班 when its clock read 14 Nov at 12:16, but it "
                                  "was really 4 Dec at 12:16", "due on 28 Nov; the rules give 18 Dec",
                                  "Accept changes it to 18 Dec"],
    "sip2_refused": ["The school's library system (10.0.0.5:6001) refused the loan of “草房子” by 王小明, done at 三年级2班 "
                     "on 4 Dec at 12:16", "It said: “读者证号不存在 unknown patron”", "record it in the library system"],
    "sip2_unsure": ["Bookcorner sent the renewal of “草房子” by 王小明, done at 三年级2班 on 4 Dec at 12:16, to the school's "
                    "library system (10.0.0.5:6001), but its answer was lost", "Look there whether it was recorded"],
}

#: what a sentence must never show: field names, Python values, containers, reason codes
RAW = re.compile(r"item_id|patron_id|card_id|loan_id|on_loan_to|held_by|changed_by|changed_at|_not_here|"
                 r"reused_numbers|from_seq|to_seq|restored_from|since_seq|payload|\bFalse\b|\bTrue\b|\bNone\b|"
                 r"\[\]|\{|\}|\[|'type'|" + "|".join(re.escape(code) for code in SAYS))


def test_every_reason_the_server_writes_has_its_sentence_and_a_case_here():
    reasons = {value for name, value in vars(ReviewReason).items() if name.isupper()}
    assert reasons <= set(SENTENCES) and reasons <= set(CASES) and set(CASES) == set(SAYS)


@pytest.mark.parametrize("reason", sorted(CASES))
def test_each_reason_in_english_names_who_what_where_and_when(reason):
    with i18n.in_language("en"):
        said = sentence(CASES[reason], WORDS)
    for part in SAYS[reason]:
        assert part in said, (part, said)
    assert not RAW.search(said), said


@pytest.mark.parametrize("reason", sorted(CASES))
def test_each_reason_in_chinese_shows_no_field_name_or_python_value(reason):
    with i18n.in_language("zh_CN"):
        said = sentence(CASES[reason], WORDS)
        heading = reason_title(reason)
    assert said and not RAW.search(said), said
    assert not RAW.search(heading)
    case = CASES[reason]
    if case.event is not None and reason not in ("unknown_event_type", "journal_damage", "seq_conflict"):
        assert "王小明" in said or "草房子" in said or "青铜葵花" in said, said
    if reason.startswith("journal") or reason in ("events_missing", "seq_conflict"):
        assert "三年级2班" in said, said


def test_a_reason_without_a_sentence_and_odd_data_still_read_as_words():
    unnamed = Case("not_on_loan", "k-32", {"item_id": "I-404"}, event("loan.returned", item_id="I-404"), ON_SHELF)
    with i18n.in_language("en"):
        assert sentence(unnamed, WORDS).startswith("A book not in the catalogue (label I-404) was returned on 4 Dec")
    odd = Case("time_wrong_somehow", "k-32", {"expected": [1, 2], "flag": False, "nested": {"a": None}},
               event("loan.checked_out", item_id="I-9", patron_id="S-1", due="2026-12-18"), ON_SHELF, 50, RECEIVED)
    shaky = Case("journal_restored", "k-gone", {"restored_from": 12, "events_not_here": "many",
                                               "loans_not_here": None}, None, None, 51, None)
    for language in i18n.LANGUAGES:
        with i18n.in_language(language):
            for case in (odd, shaky):
                said = sentence(case, WORDS)
                assert said and not RAW.search(said) and "many" not in said, said
    with i18n.in_language("en"):
        said = sentence(odd, WORDS)
        assert said.startswith("王小明 borrowed a book not in the catalogue (label I-9) on 4 Dec at 12:16 at 三年级2班")
        assert "k-gone" in sentence(shaky, WORDS) and "an unknown time" in sentence(shaky, WORDS)
        assert reason_title("time_wrong_somehow") == "A record to look at"


def test_a_new_reason_needs_only_an_entry_in_the_table(monkeypatch):
    monkeypatch.setitem(SENTENCES, "clock_was_wrong", lambda case, words: "{} at {}".format(
        words.book(case.item_id), words.moment(case.when)))
    with i18n.in_language("en"):
        said = sentence(Case("clock_was_wrong", "k-32", {"item_id": "I-1"}, event("loan.checked_out")), WORDS)
    assert said == "“草房子” at 4 Dec at 12:16"


AUDIT = [
    (AuditEntry("Ms Li", "review.correct", "review:7", {"decision": "correct", "note": "two copies look alike",
                                                       "item_id": "I-1", "patron_id": None, "warnings": []},
                ("not_on_loan", "k-32")),
     "Ms Li corrected the case “A book was returned that was not on loan” from 三年级2班: the right one is “草房子”. "
     "Note: two copies look alike"),
    (AuditEntry("Ms Li", "review.accept", "review:8", {"decision": "accept", "effect": [["status", "available"]]},
                ("older_than_item_change", "k-41")),
     "Ms Li accepted the case “Older than a later change to the book recorded elsewhere” from Class 4.1 as recorded."),
    (AuditEntry("Ms Li", "review.dismiss", "review:9", {"decision": "dismiss", "note": "found on the shelf"}, None),
     "Ms Li dismissed a case. Note: found on the shelf"),
    (AuditEntry("Ms Li", "export.csv", "bookcorner-events.csv", {"from": "2026-12-01", "to": "2026-12-04"}),
     "Ms Li downloaded the events of 1 Dec to 4 Dec as a spreadsheet (CSV)."),
    (AuditEntry("Ms Li", "card.give", "0042", {"patron_id": "S-1", "before": None, "recorded_lost": []}),
     "Ms Li gave card 0042 to 王小明."),
    (AuditEntry("Ms Li", "card.lost", "0042", {"patron_id": "S-2", "before": "active", "after": "lost"}),
     "Ms Li marked card 0042 of 李华 as lost."),
    (AuditEntry("Ms Li", "kiosk.add", "k-41", {}), "Ms Li added the corner Class 4.1."),
    (AuditEntry("Ms Li", "sign_in", "address:10.0.0.2", {"address": "10.0.0.2"}), "Ms Li signed in."),
    (AuditEntry("bookcorner", "registers.anonymise", "loans", {"loans": 12, "returned_before": "2026-06-01T00:00:00",
                                                              "retention_days": 180}),
     "12 old loans from before 1 Jun no longer name the student (kept 180 days)."),
    (AuditEntry("Ms Li", "import.patrons", "class3.csv", {"kind": "patrons", "rows": 30, "added": 28, "changed": 2,
                                                         "unchanged": 0, "possible_duplicates": 0}),
     "Ms Li loaded class3.csv: 28 added, 2 changed, 0 unchanged."),
]


@pytest.mark.parametrize(("entry", "expected"), AUDIT, ids=[e.action for e, _x in AUDIT])
def test_audit_records_read_as_sentences(entry, expected):
    with i18n.in_language("en"):
        assert audit_sentence(entry, WORDS) == expected
    with i18n.in_language("zh_CN"):
        said = audit_sentence(entry, WORDS)
    assert said and not RAW.search(said) and entry.action not in said, said


def test_the_dashboard_templates_translate_plural_entries():
    """A template's ngettext looks the plural entry up as one (not its two forms as two singulars)."""
    from bookcorner.central.dashboard.site import env

    template = env.from_string('{{ ngettext("{count} case waits for a decision.", '
                               '"{count} cases wait for a decision.", n) }}')
    with i18n.in_language("zh_CN"):
        assert template.render(n=3) == "有{count}个事项等待处理。"
    with i18n.in_language("en"):
        assert template.render(n=1) == "{count} case waits for a decision."
        assert template.render(n=3) == "{count} cases wait for a decision."


def test_a_record_whose_field_does_not_fit_its_type_says_which_field():
    """A checkout whose due date is no date (its typed payload refused it: central.validate)."""
    case = Case("invalid_payload", "k-32", {"type": "loan.checked_out", "field": "payload.due", "problem": "invalid",
                                            "rule": "Invalid RFC3339 encoded date"},
                event("loan.checked_out", item_id="I-1", patron_id="S-1", due="next week"), None, 7, RECEIVED)
    text = sentence(case, WORDS)
    assert "王小明 borrowed “草房子” on 4 Dec at 12:16" in text
    assert "cannot keep the due date as recorded (missing, or not what this kind of record holds)" in text
    assert "payload" not in text and "RFC3339" not in text
