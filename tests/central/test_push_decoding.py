"""A push's body decoded the fast way (``protocol.messages.decode_push``) gives what the strict
typed decoding gives: the same message for a good batch, and for a bad one the same error,
word for word (the 422's detail a kiosk's log shows)."""

from __future__ import annotations

import msgspec
import pytest

from bookcorner.protocol.messages import PushRequest, WireEvent, decode, decode_push


def _body(**changed: object) -> dict:
    events = [{"event_id": f"e-{i:04d}", "kiosk_id": "kiosk-1", "seq": i, "boot_id": "boot:1", "monotonic_ns": i * 10,
               "wall_time": "2026-12-04T10:00:00.123456+08:00", "clock_synced": True, "actor": "student:S0001",
               "type": "loan.checked_out", "payload": {"item_id": f"B{i}", "card_id": "S0001", "tags": [1, [2]]}}
              for i in range(1, 301)]
    events[117].update(changed)
    return {"kiosk_id": "kiosk-1", "batch_id": "b-1", "from_seq": 1, "to_seq": 300,
            "clock": {"boot_id": "boot:1", "monotonic_ns": 5, "wall_time": "2026-12-04T10:00:01+08:00",
                      "clock_synced": True}, "events": events}


def _outcome(decoder, raw: bytes) -> tuple[str, str]:
    try:
        return "ok", msgspec.json.encode(decoder(raw)).decode()
    except msgspec.ValidationError as error:
        return "invalid", str(error)


STRICT = lambda raw: decode(raw, PushRequest)  # noqa: E731


@pytest.mark.parametrize("changed", [
    {},
    {"event_id": "a b"}, {"event_id": ""}, {"event_id": "x" * 81}, {"event_id": "é"},
    {"event_id": "ok-but-a-newline\n"},  # (a regex's $ takes a last newline: the strict way accepts it)
    {"kiosk_id": "-kiosk"}, {"kiosk_id": "k" * 65}, {"kiosk_id": ""},
    {"boot_id": "boot 2"}, {"wall_time": "2026-12-04T10:00\x01:00"}, {"wall_time": "short"},
    {"actor": "a\x7fb"}, {"actor": ""}, {"type": "Loan.checked_out"}, {"type": "loan..x"},
    {"seq": 0}, {"monotonic_ns": -1}, {"seq": 118.0},  # an integral float: the strict way's second pass
    {"clock_synced": "yes"},
], ids=repr)
def test_the_fast_way_decides_and_words_every_case_as_the_strict_way(changed: dict) -> None:
    raw = msgspec.json.encode(_body(**changed))
    strict, fast = _outcome(STRICT, raw), _outcome(decode_push, raw)
    assert fast == strict
    if not changed:
        assert fast[0] == "ok"
        message = decode_push(raw)
        assert isinstance(message, PushRequest) and all(isinstance(e, WireEvent) for e in message.events)
