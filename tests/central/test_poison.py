"""A poison event never blocks the ones behind it (issue 12), over a real server on SQLite
and PostgreSQL: an event whose payload the database cannot take (an id over 80
characters, a NUL, a wrong type, a payload nested too deep...) is stored once and kept for
review as ``invalid_payload``; the rest of its batch applies, the high-water mark moves,
and no push ever answers 5xx. Bodies no kiosk writes (nested deeper than the decoder
goes, a lone surrogate) are refused with a 4xx and a clear error."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.protocol.credentials import bearer, sign, signing_key
from bookcorner.protocol.export import ExportBody, ExportFile, seal
from bookcorner.protocol.messages import encode
from tests.central.pushes import KioskClient, checkout, checkin


def new_kiosk(central) -> KioskClient:
    kiosk_id = "p-" + uuid.uuid4().hex[:10]
    return KioskClient(central.url, kiosk_id, central.add_kiosk(kiosk_id))


def nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"x": value}
    return value


#: values no id column can take, or no id is: each of them is why PostgreSQL once answered 500
BAD_IDS = st.one_of(
    st.text(min_size=81, max_size=200),
    st.tuples(st.text(max_size=10), st.text(max_size=10)).map(lambda t: t[0] + "\x00" + t[1]),
    st.sampled_from(["\x00", "a\x00", "tab\tin", "line\nfeed", "\x1b[31m", "del\x7f", "c1\x85", "", "x" * 81]),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([2**64, -(2**63) - 1, 10**40, 1e308, -0.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def bad_event(draw) -> tuple[str, dict[str, Any]]:
    """An event the replay cannot take: valid JSON, wrong in a way the database objects to."""
    bad = draw(BAD_IDS)
    item = "poison-" + uuid.uuid4().hex[:8]
    shape = draw(st.sampled_from(["item", "patron", "card", "return_item", "return_loan", "renew_item",
                                  "lost_item", "enrol_card", "enrol_patron", "enrol_replaces", "register",
                                  "register_item", "deep", "deep_unknown"]))
    kind, payload = checkout(item, "S-poison")
    if shape in ("item", "patron", "card"):
        payload[f"{shape}_id"] = bad
    elif shape == "return_item":
        kind, payload = checkin(bad)
    elif shape == "return_loan":
        kind, payload = checkin(item, bad)
    elif shape in ("renew_item", "lost_item"):
        kind = "loan.renewed" if shape == "renew_item" else "item.lost"
        payload = {"item_id": bad, "due": "2026-12-14"}
    elif shape.startswith("enrol"):
        kind = "card.enrolled"
        payload = {"card_id": "card-" + item, "patron_id": "S-poison", "replaces": []}
        payload[{"enrol_card": "card_id", "enrol_patron": "patron_id", "enrol_replaces": "replaces"}[shape]] = (
            [bad] if shape == "enrol_replaces" and draw(st.booleans()) else bad)
    elif shape.startswith("register"):
        kind = "item.registered"
        payload = {"item": {"item_id": bad, "title": "A book"} if shape == "register_item" else bad}
    else:
        kind = "loan.checked_out" if shape == "deep" else "classroom.something_new"
        payload = {**payload, "extra": nested(draw(st.integers(min_value=33, max_value=400)))}
    return kind, payload


def _outcomes(answer: requests.Response) -> list[dict[str, Any]]:
    assert answer.status_code < 500, answer.text
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def test_fuzzed_poison_events_never_block_the_good_ones(central):
    """Good loans before, between and after bad events: every push answers 200, every bad
    event is stored and kept for review, every good one applies (its return too, so its
    loan was written), and the high-water mark reaches the batch's end."""
    kiosk = new_kiosk(central)

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(st.one_of(st.none(), bad_event()), min_size=1, max_size=6))
    def push(slots: list[tuple[str, dict[str, Any]] | None]) -> None:
        events, good, bad = [], [], []
        for slot in [None, *slots, None]:  # a good loan before and after the bad ones, at least
            if slot is None:
                item = "good-" + uuid.uuid4().hex[:10]
                lent = kiosk.event(*checkout(item, "S-good"))
                returned = kiosk.event(*checkin(item, lent.event_id))
                events += [lent]
                good += [lent.event_id]
                later = returned
                events.append(later)
                good.append(later.event_id)
            else:
                event = kiosk.event(*slot)
                events.append(event)
                bad.append(event.event_id)
        results = {r["event_id"]: r for r in _outcomes(kiosk.push(events))}
        for event_id in good:
            assert results[event_id]["outcome"] in ("applied", "applied_with_warning"), results[event_id]
        for event_id in bad:
            assert (results[event_id]["outcome"], results[event_id].get("reason")) == (
                "needs_review", "invalid_payload"), results[event_id]
        with central.store.reading() as conn:
            e = db.events.c
            stored = conn.execute(select(e.event_id, e.outcome).where(e.event_id.in_(good + bad))).all()
            assert sorted(r.event_id for r in stored) == sorted(good + bad)  # each exactly once
            r = db.reviews.c
            kept = conn.execute(select(r.event_id, r.reason).where(r.event_id.in_(bad))).all()
            assert sorted(kept) == sorted((event_id, "invalid_payload") for event_id in bad)

    push()
    listed = requests.get(f"{central.url}/v1/kiosks", headers=bearer(central.add_librarian()), timeout=10).json()
    mine = next(k for k in listed["kiosks"] if k["kiosk_id"] == kiosk.kiosk_id)
    assert mine["applied_seq"] == kiosk.seq == mine["events"]


def test_an_overlong_or_nul_id_is_kept_for_review_with_the_field_not_the_value(central):
    kiosk = new_kiosk(central)
    secret = "Zhang-Xiaoming-" + "x" * 80
    first = kiosk.event(*checkout("book-" + uuid.uuid4().hex[:8], "S1"))
    poisoned = kiosk.event("loan.checked_out", {**checkout("book-x", secret)[1]})
    nul = kiosk.event("loan.checked_out", {**checkout("book-\x00-y", "S1")[1]})
    after = kiosk.event(*checkout("book-" + uuid.uuid4().hex[:8], "S2"))
    answer = kiosk.push([first, poisoned, nul, after])
    outcomes = [(r["outcome"], r.get("reason")) for r in _outcomes(answer)]
    assert outcomes == [("applied", None), ("needs_review", "invalid_payload"), ("needs_review", "invalid_payload"),
                        ("applied", None)]
    assert answer.json()["applied_seq"] == 4
    again = kiosk.push([first, poisoned, nul, after])  # a retry (new batch id): duplicates, nothing twice
    assert [r["outcome"] for r in _outcomes(again)] == ["duplicate"] * 4
    with central.store.reading() as conn:
        r = db.reviews.c
        details = dict(conn.execute(select(r.event_id, r.detail).where(r.event_id.in_(
            [poisoned.event_id, nul.event_id]))).all())
        payload = conn.execute(select(db.events.c.payload).where(db.events.c.event_id == nul.event_id)).scalar_one()
    assert len(details) == 2
    assert '"field":"payload.patron_id"' in details[poisoned.event_id] and '"problem":"too_long"' in \
        details[poisoned.event_id] and secret not in details[poisoned.event_id]
    assert '"field":"payload.item_id"' in details[nul.event_id] and "control_character" in details[nul.event_id]
    assert "book-\\u0000-y" in payload  # the payload is kept as it came (JSON text)
    assert secret not in (central.log_path.read_text(errors="replace"))


def test_bodies_no_kiosk_writes_get_a_4xx_not_a_500(central):
    kiosk = new_kiosk(central)
    headers = {**bearer(kiosk.token), "Content-Type": "application/json"}
    deep = b"[" * 100_000 + b"]" * 100_000
    answer = requests.post(f"{central.url}/v1/push", data=deep, headers=headers, timeout=30)
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_request", answer.text  # not an object
    body = encode(kiosk.request([kiosk.event(*checkout("b1", "S1"))]))
    deep_payload = body.replace(b'"payload":{', b'"payload":{"x":' + b"[" * 50_000 + b"]" * 50_000 + b",", 1)
    answer = requests.post(f"{central.url}/v1/push", data=deep_payload, headers=headers, timeout=30)
    assert answer.status_code == 400 and answer.json()["error"] == "too_deep", answer.text
    surrogate = body.replace(b'"S1"', b'"\\ud800"', 1)
    answer = requests.post(f"{central.url}/v1/push", data=surrogate, headers=headers, timeout=30)
    assert answer.status_code == 400 and answer.json()["error"] == "not_json", answer.text
    librarian = {**bearer(central.add_librarian()), "Content-Type": "application/json"}
    for data in (deep, b'{"format":' + b"[" * 50_000 + b"]" * 50_000 + b"}"):
        answer = requests.post(f"{central.url}/v1/imports", data=data, headers=librarian, timeout=30)
        assert answer.status_code == 422 and answer.json()["error"] == "invalid_request", answer.text
    # the kiosk goes on as if nothing happened
    assert [r["outcome"] for r in _outcomes(kiosk.push([kiosk.event(*checkout("b1-" + kiosk.kiosk_id, "S1"))]))] == [
        "applied"]


def test_a_usb_export_with_poison_imports_the_rest_and_a_deep_one_is_refused(central):
    kiosk = new_kiosk(central)
    events = [kiosk.event(*checkout("usb-" + uuid.uuid4().hex[:8], "S1")),
              kiosk.event(*checkout("usb-\x00" + "y" * 90, "S1")),
              kiosk.event(*checkout("usb-" + uuid.uuid4().hex[:8], "S1"))]
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    body = ExportBody(kiosk_id=kiosk.kiosk_id, batch_id=str(uuid.uuid4()), clock=kiosk.request(events).clock,
                      from_seq=1, to_seq=3, events=events)
    key = signing_key(kiosk.token)
    librarian = {**bearer(central.add_librarian()), "Content-Type": "application/json"}
    answer = requests.post(f"{central.url}/v1/imports", data=seal(body, key, now), headers=librarian, timeout=30)
    assert answer.status_code == 200, answer.text
    chunk = answer.json()["chunks"][0]
    assert (chunk["applied"] + chunk["applied_with_warning"], chunk["needs_review"]) == (2, 1)
    assert answer.json()["applied_seq"] == 3
    text = encode(body).decode().replace('"payload":{', '"payload":{"x":' + "[" * 50_000 + "]" * 50_000 + ",", 1)
    deep = encode(ExportFile(kiosk_id=kiosk.kiosk_id, signature=sign(text.encode(), key), body=text, created=now))
    answer = requests.post(f"{central.url}/v1/imports", data=deep, headers=librarian, timeout=30)
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_export", answer.text
    assert "nested too deeply" in answer.json()["detail"]
