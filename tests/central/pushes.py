"""Building pushes by hand, as a kiosk's daemon would send them (for API tests)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import ClockReading, PushRequest, WireEvent, encode

BOOT = "11111111-2222-3333-4444-555555555555"


class KioskClient:
    """One kiosk's events over HTTP: its own seq counter and (synced) clock, which started
    an hour before the kiosk was made."""

    def __init__(self, url: str, kiosk_id: str, token: str) -> None:
        self.url, self.kiosk_id, self.token = url, kiosk_id, token
        self.seq = 0
        self.start = datetime.now(timezone.utc) - timedelta(hours=1)

    def event(self, kind: str, payload: dict[str, Any], *, minutes: float | None = None, actor: str = "S01",
              seq: int | None = None) -> WireEvent:
        if seq is None:
            self.seq += 1
            seq = self.seq
        # by default the kiosk's synced clock reads the true time as the event is made (a time
        # the server keeps, even before the kiosk was paired); ``minutes`` from ``start`` otherwise
        offset = datetime.now(timezone.utc) - self.start if minutes is None else timedelta(minutes=minutes)
        return WireEvent(event_id=str(uuid.uuid4()), kiosk_id=self.kiosk_id, seq=seq, boot_id=BOOT,
                         monotonic_ns=int(offset.total_seconds() * 1e9) + 10**9,
                         wall_time=(self.start + offset).isoformat(timespec="milliseconds"), clock_synced=True,
                         actor=actor, type=kind, payload=payload)

    def request(self, events: list[WireEvent], *, from_seq: int | None = None, to_seq: int | None = None,
                batch_id: str | None = None, kiosk_id: str | None = None) -> PushRequest:
        first = from_seq if from_seq is not None else (events[0].seq if events else self.seq + 1)
        last = to_seq if to_seq is not None else (events[-1].seq if events else first - 1)
        return PushRequest(kiosk_id=kiosk_id or self.kiosk_id, batch_id=batch_id or str(uuid.uuid4()),
                           from_seq=first, to_seq=last,
                           clock=ClockReading("push-boot", 10**12,
                                              datetime.now(timezone.utc).isoformat(timespec="milliseconds"), True),
                           events=events)

    def push(self, events: list[WireEvent] | PushRequest, token: str | None = None, **request) -> requests.Response:
        body = events if isinstance(events, PushRequest) else self.request(events, **request)
        return requests.post(f"{self.url}/v1/push", data=encode(body), timeout=30,
                             headers={**bearer(token or self.token), "Content-Type": "application/json"})


def checkout(item: str, patron: str) -> tuple[str, dict[str, Any]]:
    return "loan.checked_out", {"item_id": item, "patron_id": patron, "card_id": "c", "code": item,
                                "due": "2026-12-07", "warnings": []}


def checkin(item: str, loan_id: str | None = None) -> tuple[str, dict[str, Any]]:
    payload: dict[str, Any] = {"item_id": item, "due": "2026-12-07", "with_card": False, "implicit": False,
                               "warnings": []}
    if loan_id:
        payload["loan_id"] = loan_id
    return "loan.returned", payload
