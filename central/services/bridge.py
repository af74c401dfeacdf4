"""The replay bridge: bookcorner as a SIP2 client of the school's own library system (dp2,
Koha, Evergreen, FOLIO...), so that its librarians keep one record of who has which book.

Every checkout, return and renewal that replay applied while the bridge is on is in the
outbox (``db.sip2_outbox``, filled by ``central.outbox`` in ingest's own transaction), in
the order replay applied it (for each book; see ``central.outbox``). The sender takes them
strictly in outbox order, one at a time:

- a checkout as SIP2 checkout (11) with no-block Y, the time it was done and the due date
  the child was promised; a return as checkin (09) with no-block Y and the time it was
  handed back; a renewal as renew (29) with no-block Y and the new due date;
- before a request is written, its row is marked ``sending`` (committed). A reply settles
  it: ``sent``, or ``refused`` (kept for the librarian in the review queue with the other
  system's own screen message). No reply (a timeout, a reset, a garbled frame, a stop of
  either server) leaves it ``sending``: SIP2 has no transaction id, so before anything is
  written again the bridge asks for the item's status (17) and decides from its
  circulation status and due date whether the lost request took effect; only if it did
  not is it sent again. So nothing is done twice, and nothing is skipped;
- an entry that cannot be sent now (the other system down, a refused login) stops the
  round: later entries wait behind it (order matters: a return before its checkout would
  be refused). The keeper tries again after a wait that doubles up to ``LONGEST_WAIT``,
  for as long as it takes; the outbox is in the database, so a restart resumes it.

Card numbers and accession barcodes go to the other system as they are, or through a
prefix rule (``Mapping``). Settings live in ``meta`` (server-side only; kiosks pull
``settings``). Functions take the store and "now" as arguments; ``BridgeKeeper`` runs the
sender from the server's lifespan.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import msgspec
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from bookcorner.central import db, zone
from bookcorner.central.ingest import upsert
from bookcorner.central.jobs import PeriodicJob
from bookcorner.central.outbox import SETTINGS_KEY, WAITING
from bookcorner.circulation.outcomes import ReviewReason
from bookcorner.i18n import N_, _
from bookcorner.protocol import sip2
from bookcorner.protocol.sip2 import Message, Sip2Error

log = logging.getLogger(__name__)

STATE_KEY = "sip2.bridge.state"
#: who sends now: one sender at a time across threads, worker processes and servers on one database
LEASE_KEY = "sip2.bridge.sender"
SENDING, SENT, REFUSED = "sending", "sent", "refused"
STATUSES = (WAITING, SENDING, SENT, REFUSED)
ENCODINGS = ("utf-8", "gb18030")
#: how long the keeper waits between rounds when there is nothing to send
BRIDGE_EVERY_S = 5.0
FIRST_WAIT = timedelta(seconds=5)
LONGEST_WAIT = timedelta(minutes=10)
#: what the other system answers each request with
ANSWERS = {"11": "12", "09": "10", "29": "30", "17": "18", "93": "94"}
#: our own words for a refusal found before sending (kept in English, shown in the librarian's language)
NO_CARD = N_("This student has no card number to give the other system.")
NO_MESSAGE = N_("(no message)")
#: a lost answer the item's status cannot settle (``took_effect`` None)
UNSURE = N_("The answer was lost, and the library system has the book on loan with another due date: look there "
            "whether this was recorded, and record it by hand if not.")


class Settings(msgspec.Struct, frozen=True, omit_defaults=True):
    """The other system's SIP2 service, and how our numbers become its numbers."""

    enabled: bool = False
    host: str = ""
    port: int = 6001
    login: str = ""
    password: str = ""
    location: str = ""
    institution: str = ""
    encoding: str = "utf-8"
    tls: bool = False
    #: the prefix rule: a card number starting with ``card_from`` starts with ``card_to`` there
    #: (both empty: the same number; only ``card_to``: added in front)
    card_from: str = ""
    card_to: str = ""
    item_from: str = ""
    item_to: str = ""
    #: seconds to wait for an answer before the request counts as lost
    timeout_s: float = 15.0

    def card(self, number: str) -> str:
        return _mapped(number, self.card_from, self.card_to)

    def item(self, barcode: str) -> str:
        return _mapped(barcode, self.item_from, self.item_to)


def _mapped(value: str, old: str, new: str) -> str:
    if old:
        return new + value[len(old):] if value.startswith(old) else value
    return new + value


class State(msgspec.Struct, omit_defaults=True):
    """What the keeper last saw (kept in ``meta`` for the dashboard and ``doctor``)."""

    last_error: str = ""
    last_error_at: datetime | None = None
    last_sent_at: datetime | None = None
    failures: int = 0
    next_try: datetime | None = None
    #: requests written again after the item's status showed the first did not take effect
    resent: int = 0
    #: lost requests the item's status showed had taken effect (not written again)
    found_done: int = 0


class Lease(msgspec.Struct):
    owner: str = ""
    until: datetime | None = None


class Unreachable(Exception):
    """The other system cannot be used now (down, a lost reply, a refused login): the round
    stops and the entry waits; the message says what happened, for the dashboard."""


# --- settings -----------------------------------------------------------------------------------


def _read(conn: Connection, key: str, kind: Any, default: Any) -> Any:
    text = conn.execute(select(db.meta.c.value).where(db.meta.c.key == key)).scalar()
    try:
        return msgspec.json.decode(text, type=kind) if text else default
    except (msgspec.DecodeError, msgspec.ValidationError):
        log.warning("the setting %s cannot be read: its defaults hold", key)
        return default


def settings(store: db.Store) -> Settings:
    with store.reading() as conn:
        return _read(conn, SETTINGS_KEY, Settings, Settings())


def state(store: db.Store) -> State:
    with store.reading() as conn:
        return _read(conn, STATE_KEY, State, State())


def _write(conn: Connection, key: str, value: Any) -> None:
    upsert(conn, db.meta, ["key"], [{"key": key, "value": msgspec.json.encode(value).decode("utf-8")}])


def save(store: db.Store, who: str, chosen: Settings, at: datetime) -> None:
    """Keep the settings (audited, the password never); the next round uses them."""
    with store.writing() as conn:
        _write(conn, SETTINGS_KEY, chosen)
        shown = {**msgspec.to_builtins(chosen), "password": "***" if chosen.password else ""}
        conn.execute(db.audit_log.insert().values(at=at, who=who, action="sip2.bridge", target=SETTINGS_KEY,
                                                  detail=json.dumps(shown, ensure_ascii=False)))


def _text(fields: dict[str, str], name: str, limit: int = 120) -> str:
    return sip2.clean(fields.get(name, "").strip(), limit)


def parse(fields: dict[str, str], current: Settings) -> tuple[Settings | None, dict[str, str]]:
    """The dashboard's form; an empty password keeps the one saved."""
    errors: dict[str, str] = {}
    host, port, timeout = fields.get("host", "").strip(), fields.get("port", "").strip(), fields.get("timeout_s", "15")
    enabled = fields.get("enabled") == "on"
    if (enabled or host) and (not host or len(host) > 253 or any(c.isspace() for c in host)):
        errors["host"] = _("The library system's name or address, e.g. library.school.example or 10.0.0.5")
    if not port.isdigit() or not 0 < int(port) < 65536:
        errors["port"] = _("A port number, e.g. 6001")
    if fields.get("encoding", "") not in ENCODINGS:
        errors["encoding"] = _("Choose UTF-8 or GB18030")
    if not timeout.strip().isdigit() or not 1 <= int(timeout) <= 300:
        errors["timeout_s"] = _("Seconds to wait for an answer, 1 to 300")
    if errors:
        return None, errors
    return Settings(
        enabled=enabled, host=host, port=int(port), login=_text(fields, "login"),
        password=_text(fields, "password") or current.password, location=_text(fields, "location"),
        institution=_text(fields, "institution"), encoding=fields["encoding"], tls=fields.get("tls") == "on",
        card_from=_text(fields, "card_from", 40), card_to=_text(fields, "card_to", 40),
        item_from=_text(fields, "item_from", 40), item_to=_text(fields, "item_to", 40),
        timeout_s=float(int(timeout))), {}


# --- the connection -----------------------------------------------------------------------------


class Link:
    """One SIP2 session with the other system: logged in, one request at a time, each with
    a sequence number and a checksum, each answer checked against its request."""

    def __init__(self, chosen: Settings) -> None:
        self.settings, self._sequence, self._buffer = chosen, 0, b""
        try:
            raw = socket.create_connection((chosen.host, chosen.port), timeout=chosen.timeout_s)
        except OSError as error:
            raise Unreachable(f"cannot connect to {chosen.host}:{chosen.port}: {error}") from None
        try:
            self.sock = ssl.create_default_context().wrap_socket(raw, server_hostname=chosen.host) \
                if chosen.tls else raw
        except (OSError, ssl.SSLError) as error:
            raw.close()
            raise Unreachable(f"TLS with {chosen.host}:{chosen.port} failed: {error}") from None
        if chosen.login:
            answer = self.ask(sip2.login_request(chosen.login, chosen.password, chosen.location))
            if answer.fixed[:1] != "1":
                self.close()
                raise Unreachable(f"{chosen.host}:{chosen.port} refused the login {chosen.login!r}")

    def ask(self, request: Message) -> Message:
        """The answer to ``request``; raises Unreachable when none arrives whole."""
        self._sequence = (self._sequence + 1) % 10
        sent = Message(request.command, request.fixed, request.fields, self._sequence)
        try:
            self.sock.sendall(sip2.encode(sent, self.settings.encoding))
            answer = sip2.decode(self._frame(), self.settings.encoding)
        except (OSError, Sip2Error) as error:
            self.close()
            raise Unreachable(f"no answer from {self.settings.host}:{self.settings.port}: "
                              f"{error or type(error).__name__}") from None
        if answer.command != ANSWERS.get(request.command) or answer.sequence not in (None, self._sequence):
            self.close()
            raise Unreachable(f"{self.settings.host}:{self.settings.port} answered {answer.command} "
                              f"(sequence {answer.sequence}) to {request.command}")
        return answer

    def _frame(self) -> bytes:
        while sip2.TERMINATOR not in self._buffer:
            if len(self._buffer) > sip2.MAX_FRAME:
                raise Sip2Error("the answer is longer than a SIP2 message")
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionResetError("the connection was closed")
            self._buffer += chunk
        frame, _cr, self._buffer = self._buffer.partition(sip2.TERMINATOR)
        return frame

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# --- what to send -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """One outbox entry as the other system knows it (its card number and barcode)."""

    row: Any
    item: str
    patron: str

    def request(self, chosen: Settings, zone_: tzinfo, now: datetime) -> Message:
        done_at, local_now = _local(self.row.done_at, zone_), _local(now, zone_)
        due = _due(self.row.due)
        if self.row.kind == "checkout":
            return sip2.checkout_request(chosen.institution, self.patron, self.item, local_now, no_block=True,
                                         done_at=done_at, promised_due=due)
        if self.row.kind == "renewal":
            return sip2.renew_request(chosen.institution, self.patron, self.item, local_now, no_block=True,
                                      done_at=done_at, promised_due=due)
        return sip2.checkin_request(chosen.institution, self.item, local_now, no_block=True, returned_at=done_at,
                                    location=chosen.location)


def _local(moment: datetime, zone_: tzinfo) -> datetime:
    return moment.astimezone(zone_).replace(tzinfo=None)


def _due(day: date | None) -> datetime | None:
    return datetime.combine(day, datetime.max.time().replace(microsecond=0)) if day is not None else None


def _identify(conn: Connection, chosen: Settings, row: Any) -> Outgoing | None:
    """The entry with the other system's numbers (None: the student has no card number)."""
    data = conn.execute(select(db.catalogue.c.data).where(db.catalogue.c.item_id == row.item_id)).scalar()
    barcode = str(db.json_object(data).get("barcode") or row.item_id) if data else row.item_id
    if row.kind == "checkin":
        return Outgoing(row, chosen.item(barcode), "")
    card = row.card_id or conn.execute(
        select(db.cards.c.card_id).where(db.cards.c.patron_id == row.patron_id, db.cards.c.removed.is_(False))
        .order_by(db.cards.c.card_id)).scalars().first()
    return Outgoing(row, chosen.item(barcode), chosen.card(card)) if card else None


def took_effect(row: Any, item_status: Message) -> bool | None:
    """Whether a request whose answer was lost took effect, from the item's status (18):
    a return did when the book is no longer charged; a checkout or renewal did when the book
    is charged (04) with the due date promised (or none said), did not when it is not
    charged. Charged with another due date cannot be told apart (a system that sets its own
    due dates, or the book on loan to someone else there): None, for the librarian."""
    charged = item_status.fixed[:2] == sip2.ITEM_CHARGED
    if row.kind == "checkin":
        return not charged
    if not charged:
        return False
    said = item_status.get("AH") or ""
    due = sip2.parse_date(said) if len(said) == 18 else _loose_date(said)
    return True if due is None or row.due is None or due.date() == row.due else None


def _loose_date(text: str) -> datetime | None:
    """A due date some systems write their own way (``2026-12-18``, ``20261218``...)."""
    digits = "".join(c for c in text if c.isdigit())[:8]
    try:
        return datetime.strptime(digits, "%Y%m%d") if len(digits) == 8 else None
    except ValueError:
        return None


# --- the outbox ---------------------------------------------------------------------------------


def _next(store: db.Store) -> Any:
    o = db.sip2_outbox.c
    with store.reading() as conn:
        return conn.execute(select(db.sip2_outbox).where(o.status.in_((WAITING, SENDING)))
                            .order_by(o.outbox_id).limit(1)).first()


def _mark(store: db.Store, outbox_id: int, **values: Any) -> None:
    with store.writing() as conn:
        conn.execute(update(db.sip2_outbox).where(db.sip2_outbox.c.outbox_id == outbox_id).values(**values))


def _refuse(store: db.Store, row: Any, screen: str, at: datetime, system: str,
            reason: ReviewReason = ReviewReason.SIP2_REFUSED) -> None:
    """Refused (or not to be sent again without a person: ``SIP2_UNSURE``): out of the way of
    the entries after it, and in the librarian's review queue."""
    with store.writing() as conn:
        conn.execute(update(db.sip2_outbox).where(db.sip2_outbox.c.outbox_id == row.outbox_id)
                     .values(status=REFUSED, screen=screen, sent_at=at))
        ids = db.ids_table(conn).c
        seq = conn.execute(select(ids.seq).where(ids.event_id == row.event_id)).scalar()
        detail = {"kind": row.kind, "item_id": row.item_id, "patron_id": row.patron_id, "screen": screen,
                  "system": system, "done_at": row.done_at.isoformat()}
        conn.execute(db.reviews.insert().values(kiosk_id=row.kiosk_id, event_id=row.event_id, seq=seq,
                                                reason=reason.value, created_at=at,
                                                detail=json.dumps(detail, ensure_ascii=False)))


def _screen(answer: Message) -> str:
    return " ".join(answer.all("AF")).strip() or NO_MESSAGE


@dataclass
class Round:
    sent: int = 0
    refused: int = 0
    resent: int = 0
    found_done: int = 0


def send_due(store: db.Store, connect: Callable[[Settings], Link] = Link, clock: Callable[[], datetime] = db.now,
             stopping: Callable[[], bool] = lambda: False, owner: str = "") -> Round:
    """Send the outbox in order until it is empty or ``stopping()``. Raises Unreachable
    when the other system cannot take the next entry (it stays first in line). Only one
    sender at a time (``owner``'s lease, taken again before each entry): another finds the
    lease held and sends nothing."""
    chosen, done, link = settings(store), Round(), None
    zone_, owner = zone.school_zone(store), owner or uuid.uuid4().hex
    lease = timedelta(seconds=4 * chosen.timeout_s + 30)  # connect, log in, ask the status, send
    try:
        while not stopping() and _hold(store, owner, clock(), lease):
            row = _next(store)
            if row is None:
                break
            link = link or connect(chosen)
            _send_one(store, link, chosen, zone_, row, clock, done)
    finally:
        if link is not None:
            link.close()
        _release(store, owner)
    return done


def _hold(store: db.Store, owner: str, now: datetime, lease: timedelta) -> bool:
    with store.writing() as conn:
        held = _read(conn, LEASE_KEY, Lease, Lease())
        if held.owner not in ("", owner) and held.until is not None and held.until > now:
            return False
        _write(conn, LEASE_KEY, Lease(owner, now + lease))
        return True


def _release(store: db.Store, owner: str) -> None:
    with store.writing() as conn:
        if _read(conn, LEASE_KEY, Lease, Lease()).owner == owner:
            _write(conn, LEASE_KEY, Lease())


def _send_one(store: db.Store, link: Link, chosen: Settings, zone_: tzinfo, row: Any,
              clock: Callable[[], datetime], done: Round) -> None:
    with store.reading() as conn:
        outgoing = _identify(conn, chosen, row)
    system = f"{chosen.host}:{chosen.port}"
    if outgoing is None:
        _refuse(store, row, NO_CARD, clock(), "bookcorner")
        done.refused += 1
        return
    if row.status == SENDING:  # written before, no answer: did it take effect?
        status = link.ask(sip2.item_information_request(chosen.institution, outgoing.item,
                                                        _local(clock(), zone_)))
        effect = took_effect(row, status)
        if effect is None:
            _refuse(store, row, UNSURE, clock(), system, ReviewReason.SIP2_UNSURE)
            done.refused += 1
            return
        if effect:
            _mark(store, row.outbox_id, status=SENT, sent_at=clock(), last_error=None)
            done.found_done += 1
            return
        done.resent += 1
    _mark(store, row.outbox_id, status=SENDING, attempts=row.attempts + 1)
    answer = link.ask(outgoing.request(chosen, zone_, clock()))
    if answer.fixed[:1] == "1":
        _mark(store, row.outbox_id, status=SENT, sent_at=clock(), last_error=None)
        done.sent += 1
    else:
        _refuse(store, row, _screen(answer), clock(), system)
        done.refused += 1


def counts(store: db.Store) -> dict[str, int]:
    o = db.sip2_outbox.c
    with store.reading() as conn:
        found = {status: int(n) for status, n in conn.execute(select(o.status, func.count()).group_by(o.status))}
    return {status: found.get(status, 0) for status in STATUSES}


def oldest_waiting(store: db.Store) -> datetime | None:
    """Since when the first loan still to be sent has been in the outbox (None: none waits)."""
    o = db.sip2_outbox.c
    with store.reading() as conn:
        return conn.execute(select(func.min(o.created_at)).where(o.status.in_((WAITING, SENDING)))).scalar()


def latest(store: db.Store, limit: int = 50) -> list[Any]:
    """The newest entries, newest first (the dashboard's list)."""
    o = db.sip2_outbox.c
    with store.reading() as conn:
        return list(conn.execute(select(db.sip2_outbox).order_by(o.outbox_id.desc()).limit(limit)))


def _record(store: db.Store, outcome: Round | None, error: str, now: datetime, wait: timedelta) -> State:
    with store.writing() as conn:
        seen = _read(conn, STATE_KEY, State, State())
        if outcome is not None:
            seen.resent += outcome.resent
            seen.found_done += outcome.found_done
            if outcome.sent or outcome.found_done:
                seen.last_sent_at = now
        if error:
            seen.last_error, seen.last_error_at, seen.failures = error, now, seen.failures + 1
            seen.next_try = now + wait
        else:
            seen.failures, seen.next_try = 0, None
        _write(conn, STATE_KEY, seen)
        return seen


class BridgeKeeper(PeriodicJob):
    """Sends the outbox from a daemon thread of its own (stopped with the server): a round
    every ``every`` seconds, and after a failure a wait from ``first_wait`` doubling up to
    ``longest_wait``."""

    name = "bookcorner-sip2-bridge"

    def __init__(self, store: db.Store, every: float = BRIDGE_EVERY_S, clock: Callable[[], datetime] = db.now,
                 connect: Callable[[Settings], Link] = Link, first_wait: timedelta = FIRST_WAIT,
                 longest_wait: timedelta = LONGEST_WAIT) -> None:
        super().__init__(every)
        self.store, self.clock, self.connect = store, clock, connect
        self.first_wait, self.longest_wait = first_wait, longest_wait
        self._failures = 0
        self.owner = uuid.uuid4().hex

    def once(self) -> float:
        """One round; the seconds to wait before the next."""
        if not settings(self.store).enabled:
            return self.every
        outcome, error = None, ""
        try:
            outcome = send_due(self.store, self.connect, self.clock, self.stopping, self.owner)
        except Unreachable as failed:
            error = str(failed)
        wait = min(self.first_wait * 2 ** self._failures, self.longest_wait)
        if error or self._failures or (outcome is not None and any(vars(outcome).values())):
            _record(self.store, outcome, error, self.clock(), wait)
        if error:
            self._failures += 1
            log.warning("the SIP2 bridge waits %.1f s: %s", wait.total_seconds(), error)
            return wait.total_seconds()
        self._failures = 0
        return self.every

    def round(self) -> float:
        return self.once()
