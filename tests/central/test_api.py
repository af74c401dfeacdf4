"""The central server's API over a real socket (SQLite, and PostgreSQL when it runs):
who may do what, batches taken exactly once, and replay with the peers' semantics."""

from __future__ import annotations

import http.client
import uuid
from urllib.parse import urlsplit

import msgspec
import requests
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import encode
from tests.central.pushes import KioskClient, checkout, checkin

#: book ids of this module's run: the server (and its loans) is shared by the session's tests
BOOKS = uuid.uuid4().hex[:6] + "-"


def results(response: requests.Response) -> list[tuple[str, str | None, list[str]]]:
    assert response.status_code == 200, response.text
    return [(r["outcome"], r.get("reason"), r.get("warnings", [])) for r in response.json()["results"]]


def new_kiosk(central) -> KioskClient:
    kiosk_id = "k-" + uuid.uuid4().hex[:10]
    return KioskClient(central.url, kiosk_id, central.add_kiosk(kiosk_id))


def stored(central, kiosk_id: str) -> int:
    with central.store.reading() as conn:
        return len(conn.execute(select(db.events.c.event_id).where(db.events.c.kiosk_id == kiosk_id)).all())


def test_requests_without_a_known_credential_are_refused(central):
    kiosk = new_kiosk(central)
    body = kiosk.request([kiosk.event(*checkout(BOOKS + "I1", "S01"))])
    for token in (None, "bck1_nobody-issued-this"):
        headers = bearer(token) if token else {}
        for method, path in (("POST", "/v1/push"), ("GET", "/v1/reference"), ("GET", "/v1/kiosks"),
                             ("POST", "/v1/imports")):
            answer = requests.request(method, central.url + path, headers=headers, timeout=10,
                                      data=b"{}" if method == "POST" else None)
            assert answer.status_code == 401, (path, answer.text)
            assert answer.json()["error"] == "unauthorized" and answer.headers["WWW-Authenticate"] == "Bearer"
    assert kiosk.push(body, token="bck1_nobody-issued-this").status_code == 401
    assert stored(central, kiosk.kiosk_id) == 0


def test_a_kiosk_cannot_push_as_another_kiosk(central):
    mine, theirs = new_kiosk(central), new_kiosk(central)
    as_them = mine.push([theirs.event(*checkout(BOOKS + "I1", "S01"))], kiosk_id=theirs.kiosk_id)
    assert as_them.status_code == 403 and as_them.json()["error"] == "wrong_kiosk"
    smuggled = mine.push([mine.event(*checkout(BOOKS + "I1", "S01")), theirs.event(*checkout(BOOKS + "I2", "S01"), seq=2)])
    assert smuggled.status_code == 403 and theirs.kiosk_id in smuggled.json()["detail"]
    assert stored(central, mine.kiosk_id) == stored(central, theirs.kiosk_id) == 0


def test_kiosk_and_librarian_credentials_do_different_things(central):
    kiosk = new_kiosk(central)
    librarian = central.add_librarian("Ms Zhou")
    assert requests.get(f"{central.url}/v1/kiosks", headers=bearer(kiosk.token), timeout=10).status_code == 403
    assert kiosk.push([kiosk.event(*checkout(BOOKS + "I1", "S01"))], token=librarian).status_code == 403


def test_a_batch_is_taken_once_whatever_the_retries(central):
    kiosk = new_kiosk(central)
    first = kiosk.request([kiosk.event(*checkout(BOOKS + "I1", "S01")), kiosk.event(*checkin(BOOKS + "I1"))])
    answer = kiosk.push(first)
    assert results(answer) == [("applied", None, []), ("applied", None, [])]
    assert answer.json()["applied_seq"] == 2
    assert kiosk.push(first).json()["results"] == answer.json()["results"]  # the stored reply, nothing replayed

    same_events_new_batch = kiosk.request(first.events)
    assert [r[0] for r in results(kiosk.push(same_events_new_batch))] == ["duplicate", "duplicate"]
    other = kiosk.request([kiosk.event(*checkout(BOOKS + "I2", "S01"))], batch_id=first.batch_id)
    reused = kiosk.push(other)
    assert reused.status_code == 409 and reused.json()["error"] == "batch_id_reused"
    assert stored(central, kiosk.kiosk_id) == 2


def test_replay_follows_the_peers_semantics(central):
    a, b = new_kiosk(central), new_kiosk(central)
    lent = a.event(*checkout(BOOKS + "BOOK-1", "S01"), minutes=1)
    assert results(a.push([lent])) == [("applied", None, [])]
    # at the other corner the same book is lent to someone else: that loan closes first (Koha)
    assert results(b.push([b.event(*checkout(BOOKS + "BOOK-1", "S02"), minutes=20)])) == [
        ("applied_with_warning", None, ["returned_from_other"])]
    # corner A's return of its loan, made before corner B's checkout: older than the item's last change
    assert results(a.push([a.event(*checkin(BOOKS + "BOOK-1", lent.event_id), minutes=10)]))[0][:2] == (
        "needs_review", "older_than_item_change")
    # a return of a book that is not on loan waits for review (Koha)
    assert results(b.push([b.event(*checkin(BOOKS + "BOOK-2"), minutes=21)]))[0][:2] == ("needs_review", "not_on_loan")
    # an event type this server does not know is kept, never dropped
    assert results(b.push([b.event("shelf.rearranged", {"shelf": 3}, minutes=22)]))[0][:2] == (
        "needs_review", "unknown_event_type")
    # the journal lost events 6 to 7 on the kiosk: recorded, and the high-water mark moves on
    b.seq = 7
    answer = b.push([b.event(*checkin(BOOKS + "BOOK-1"), minutes=30)], from_seq=4)
    assert answer.json()["applied_seq"] == 8 and results(answer) == [("applied", None, [])]
    with central.store.reading() as conn:
        reviews = {(r.reason, r.seq) for r in conn.execute(select(db.reviews).where(db.reviews.c.kiosk_id == b.kiosk_id))}
    assert ("events_missing", 4) in reviews and ("not_on_loan", 2) in reviews


def test_a_push_past_a_gap_is_stored_but_asked_for_again(central):
    kiosk = new_kiosk(central)
    kiosk.seq = 10
    ahead = kiosk.push([kiosk.event(*checkout(BOOKS + "I9", "S01"))])
    assert ahead.json()["applied_seq"] == 0  # the server has nothing before 11: send from 1
    kiosk.seq = 0
    earlier = [kiosk.event(*checkout(f"I{n}", "S01")) for n in range(10)]
    assert kiosk.push(earlier, to_seq=11).json()["applied_seq"] == 11


def test_cards_enrolled_and_books_registered_at_a_kiosk_reach_the_other_kiosks(central):
    a, b = new_kiosk(central), new_kiosk(central)
    item = {"item_id": "NEW-" + a.kiosk_id, "title": "小王子", "barcode": None, "isbn13": "9787020042494",
            "isbn10": "7020042494", "author": None, "call_number": None, "item_type": "circulating",
            "home_corner": None}
    card = "0009" + uuid.uuid4().hex[:6]
    # a pupil on no roster (the session's server may have been given one with S01 by another module's tests)
    stranger = "S-new-" + uuid.uuid4().hex[:6]
    answer = a.push([a.event("card.enrolled", {"card_id": card, "patron_id": stranger, "replaces": []}),
                     a.event("item.registered", {"item": item, "code": "9787020042494"})])
    assert [r[0] for r in results(answer)] == ["applied_with_warning", "applied"]  # the pupil is not on the roster
    delta = requests.get(f"{central.url}/v1/reference", params={"since": 0}, headers=bearer(b.token), timeout=10).json()
    assert card in {c["card_id"] for c in delta["cards"]} and item["item_id"] in {i["item_id"] for i in delta["items"]}
    clash = b.push([b.event("card.enrolled", {"card_id": card, "patron_id": "S02", "replaces": []})])
    assert results(clash)[0][:2] == ("needs_review", "card_held_by_other")


def test_the_librarian_sees_each_kiosk_with_its_last_contact_and_high_water_mark(central):
    kiosk = new_kiosk(central)
    kiosk.push([kiosk.event(*checkout(BOOKS + "I1", "S01")), kiosk.event(*checkin(BOOKS + "I7"))])
    librarian = central.add_librarian()
    listing = requests.get(f"{central.url}/v1/kiosks", headers=bearer(librarian), timeout=10).json()["kiosks"]
    mine = next(k for k in listing if k["kiosk_id"] == kiosk.kiosk_id)
    assert mine["applied_seq"] == 2 and mine["events"] == 2 and mine["needs_review"] == 1
    assert mine["last_contact"] and mine["last_boot_id"] == "push-boot" and abs(mine["clock_offset_s"]) < 5


def test_malformed_requests_are_refused_with_the_reason(central):
    kiosk = new_kiosk(central)
    headers = {**bearer(kiosk.token), "Content-Type": "application/json"}
    not_json = requests.post(f"{central.url}/v1/push", data=b'{"kiosk_id": ', headers=headers, timeout=10)
    assert not_json.status_code == 400 and not_json.json()["error"] == "not_json"
    wrong_shape = requests.post(f"{central.url}/v1/push", data=b'{"kiosk_id": "x"}', headers=headers, timeout=10)
    assert wrong_shape.status_code == 422 and "batch_id" in wrong_shape.json()["detail"]
    address = urlsplit(central.url)
    announced = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    announced.putrequest("POST", "/v1/push")
    for name, value in {**headers, "Content-Length": str(10**9)}.items():
        announced.putheader(name, value)
    announced.endheaders(b"{}")  # a gigabyte announced: refused before it is read
    assert announced.getresponse().status == 413
    announced.close()
    backwards = kiosk.request([kiosk.event(*checkout(BOOKS + "I1", "S01"), seq=5), kiosk.event(*checkout(BOOKS + "I2", "S01"), seq=3)],
                              from_seq=1, to_seq=5)
    assert kiosk.push(backwards).status_code == 422


def test_the_openapi_document_describes_the_protocol(central):
    document = requests.get(f"{central.url}/openapi.json", timeout=10).json()
    assert {"/v1/push", "/v1/reference", "/v1/kiosks", "/v1/imports"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert {"PushRequest", "PushReply", "ReferenceDelta", "KioskList", "ErrorReply"} <= set(schemas)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert set(schemas["Outcome"]["enum"]) == {
        "applied", "applied_with_warning", "duplicate", "needs_review"}


def test_the_422_of_push_and_imports_names_the_rules_no_schema_states(central):
    """What the server refuses beyond the JSON Schema is in the document (schemathesis lets
    schema-valid data be refused only with these codes: test_schemathesis)."""
    document = requests.get(f"{central.url}/openapi.json", timeout=10).json()
    push = document["paths"]["/v1/push"]["post"]["responses"]["422"]
    imports = document["paths"]["/v1/imports"]["post"]["responses"]["422"]
    assert "invalid_batch" in push["description"] and "to_seq" in push["description"]
    assert "invalid_export" in imports["description"] and "signature" in imports["description"]
    for answer in (push, imports):
        assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorReply"}


def test_integers_spelled_with_a_fraction_of_zero_are_integers(central):
    """JSON has one kind of number and the document's "integer" (JSON Schema 2020-12) is any
    number with no fraction: a push saying ``"seq": 1.0`` is taken (schemathesis found it
    refused with 422); a real fraction is still refused, and a payload's numbers are kept as sent."""
    kiosk = new_kiosk(central)
    body = msgspec.json.decode(encode(kiosk.request([kiosk.event(*checkout(BOOKS + "I40", "S01"))])))
    body["from_seq"], body["to_seq"], body["waiting"] = 1.0, 1.0, 1.0
    body["clock"]["monotonic_ns"] = float(body["clock"]["monotonic_ns"])
    body["events"][0]["seq"] = 1.0
    body["events"][0]["payload"]["copies"] = 2.0
    headers = {**bearer(kiosk.token), "Content-Type": "application/json"}
    fraction = {**body, "to_seq": 1.5, "batch_id": body["batch_id"] + "x"}
    refused = requests.post(f"{central.url}/v1/push", data=msgspec.json.encode(fraction), headers=headers, timeout=10)
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_request", refused.text
    taken = requests.post(f"{central.url}/v1/push", data=msgspec.json.encode(body), headers=headers, timeout=10)
    assert taken.status_code == 200, taken.text
    assert taken.json()["applied_seq"] == 1 and [r["outcome"] for r in taken.json()["results"]] == ["applied"]
    with central.store.reading() as conn:
        payload = conn.execute(select(db.events.c.payload).where(db.events.c.kiosk_id == kiosk.kiosk_id)).scalar_one()
    assert msgspec.json.decode(payload)["copies"] == 2.0 and isinstance(msgspec.json.decode(payload)["copies"], float)


def test_an_event_id_the_server_has_under_another_kiosk_waits_for_review(central):
    a, b = new_kiosk(central), new_kiosk(central)
    original = a.event(*checkout(BOOKS + "I30", "S01"))
    assert results(a.push([original])) == [("applied", None, [])]
    copied = b.event(*checkout(BOOKS + "I31", "S01"))
    copied = type(copied)(**{**{f: getattr(copied, f) for f in copied.__struct_fields__}, "event_id": original.event_id})
    answer = b.push([copied, b.event(*checkout(BOOKS + "I32", "S01"))])
    assert [r[:2] for r in results(answer)] == [("needs_review", "event_id_conflict"), ("applied", None)]
    assert answer.json()["applied_seq"] == 2 and stored(central, b.kiosk_id) == 1
