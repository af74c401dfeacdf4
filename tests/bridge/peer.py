"""The school's library system for the replay bridge's tests: a SIP2 server on 127.0.0.1 built
on pysip2's codec (typed, strict, written by no one here), with its own items, patrons and
log of every transaction it applied (the evidence that nothing arrived twice or out of
order). It can drop, delay and reset connections (seeded) and be stopped and started again
on the same port with its state kept, as a real system restarted keeps its database.

GB18030: pysip2 splits a frame on the byte ``|`` before it decodes, and GB18030 writes
many Chinese characters with that byte; so in GB18030 the peer checks the checksum over the
bytes on the wire with pysip2's ``verify_checksum``, decodes the text first, and hands the
same message in UTF-8 to pysip2's parser. Answers are written by pysip2 in the set encoding."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pysip2
from pysip2 import (
    CheckinRequest,
    CheckinResponse,
    CheckoutRequest,
    CheckoutResponse,
    ItemInformationRequest,
    ItemInformationResponse,
    LoginRequest,
    LoginResponse,
    RenewRequest,
    RenewResponse,
)

TITLE_DATE = "%Y%m%d    %H%M%S"


@dataclass
class Book:
    title: str
    patron: str | None = None
    due: str = ""


@dataclass
class LibrarySystem:
    """What the other system knows, and what it did (``applied``: one line per transaction)."""

    login: str
    password: str
    patrons: set[str]
    books: dict[str, Book]
    applied: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: sets its own due dates, whatever the no-block due date says (as dp2 and older Koha do)
    own_due: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, message, now: str):  # one request, under the lock: the other system's own rules
        with self.lock:
            if isinstance(message, LoginRequest):
                return LoginResponse(ok="1" if (message.login_user_id, message.login_password)
                                     == (self.login, self.password) else "0")
            if isinstance(message, ItemInformationRequest):
                book = self.books.get(message.item_identifier)
                return ItemInformationResponse(
                    circulation_status="01" if book is None else ("04" if book.patron else "03"),
                    security_marker="00", fee_type="01", transaction_date=now,
                    due_date=book.due if book and book.patron else None, item_identifier=message.item_identifier,
                    title_identifier=book.title if book else "")
            if isinstance(message, CheckoutRequest | RenewRequest):
                return self._lend(message, now)
            if isinstance(message, CheckinRequest):
                return self._take_back(message, now)
        raise ValueError(type(message).__name__)

    def _lend(self, message, now: str):
        item, patron = message.item_identifier or "", message.patron_identifier
        book = self.books.get(item)
        renewal = isinstance(message, RenewRequest)
        reply = RenewResponse if renewal else CheckoutResponse
        screen = ""
        if patron not in self.patrons:
            screen = "读者证号不存在：東區 unknown patron"
        elif book is None:
            screen = "册条码号不存在 unknown item"
        elif renewal and book.patron != patron:
            screen = "该册不在此读者名下 not on loan to this patron"
        if screen or book is None:
            return reply(ok="0", renewal_ok="N", magnetic_media="U", desensitize="N", transaction_date=now,
                         institution_id=message.institution_id, patron_identifier=patron, item_identifier=item,
                         title_identifier="", due_date="", screen_message=(screen,))
        due = message.nb_due_date if message.nb_due_date.strip() and not self.own_due else \
            (date.today() + timedelta(days=14)).strftime("%Y%m%d") + "    235959"
        kind = "renewal" if renewal else "checkout"
        if book.patron is not None and not renewal:
            self.applied.append(("checkin", item, book.patron, message.transaction_date))  # no-block: returned first
        book.patron, book.due = patron, due
        self.applied.append((kind, item, patron, message.transaction_date))
        return reply(ok="1", renewal_ok="N", magnetic_media="N", desensitize="Y", transaction_date=now,
                     institution_id=message.institution_id, patron_identifier=patron, item_identifier=item,
                     title_identifier=book.title, due_date=due)

    def _take_back(self, message: CheckinRequest, now: str):
        item = message.item_identifier
        book = self.books.get(item)
        ok = book is not None and book.patron is not None
        if ok and book is not None:
            self.applied.append(("checkin", item, book.patron or "", message.return_date))
            book.patron, book.due = None, ""
        return CheckinResponse(ok="1" if ok else "0", resensitize="Y" if ok else "N", magnetic_media="N",
                               alert="N" if ok else "Y", transaction_date=now,
                               institution_id=message.institution_id, item_identifier=item,
                               permanent_location="三(2)", title_identifier=book.title if book else None,
                               screen_message=() if ok else ("此册未借出 not checked out",))


@dataclass
class Chaos:
    """A third of the connections (seeded) meet one fault at their n-th request: dropped
    before it is applied, dropped after, answered late, or reset (RST)."""

    seed: int = 14
    share: float = 1 / 3
    delay_s: float = 1.2
    faults: dict[str, int] = field(default_factory=dict)
    connections: int = 0
    #: fixed plans for the first connections (then the seeded ones)
    script: list[tuple[str, int] | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def plan(self) -> tuple[str, int] | None:
        self.connections += 1
        if self.script:
            return self.script.pop(0)
        if self.random.random() >= self.share:
            return None
        return self.random.choice(["drop_before", "drop_after", "delay", "reset"]), self.random.randint(1, 4)


class Peer:
    def __init__(self, system: LibrarySystem, encoding: str = "utf-8", chaos: Chaos | None = None,
                 port: int = 0) -> None:
        self.system, self.encoding, self.chaos, self.port = system, encoding, chaos, port
        self.requests: list[str] = []
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> Peer:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port, self._listener = listener.getsockname()[1], listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (a close alone does not)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        for conn in list(self._conns):
            _reset(conn)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            plan = self.chaos.plan() if self.chaos is not None else None
            threading.Thread(target=self._serve, args=(conn, plan), daemon=True).start()

    def _serve(self, conn: socket.socket, plan: tuple[str, int] | None) -> None:
        buffer, count = b"", 0
        with conn:
            while True:
                try:
                    chunk = conn.recv(4096)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
                while b"\r" in buffer:
                    frame, _, buffer = buffer.partition(b"\r")
                    count += 1
                    if not self._one(conn, frame + b"\r", plan if plan and plan[1] == count else None):
                        return

    def _one(self, conn: socket.socket, frame: bytes, fault: tuple[str, int] | None) -> bool:
        decoded = self._decode(frame)
        self.requests.append(type(decoded.message).__name__)
        kind = fault[0] if fault else None
        if kind is not None and self.chaos is not None:
            self.chaos.faults[kind] = self.chaos.faults.get(kind, 0) + 1
        if kind == "drop_before":
            conn.close()
            return False
        answer = self.system.answer(decoded.message, datetime.now().strftime(TITLE_DATE))
        if kind == "drop_after":
            conn.close()
            return False
        if kind == "reset":
            _reset(conn)
            return False
        if kind == "delay" and self.chaos is not None:
            time.sleep(self.chaos.delay_s)
        try:
            conn.sendall(pysip2.encode_message(answer, sequence_number=decoded.sequence_number, checksum=True,
                                               encoding=self.encoding))
        except OSError:
            return False
        return True

    def _decode(self, frame: bytes):
        if self.encoding == "utf-8":
            return pysip2.decode_message(frame, encoding="utf-8")
        body = frame[:-1]
        assert body[-6:-4] == b"AZ" and pysip2.verify_checksum(body), frame
        text = body[:-6].decode(self.encoding)  # decoded first: 東 holds the byte of "|" in GB18030
        text, sequence = (text[:-3], int(text[-1])) if text[-3:-1] == "AY" else (text, None)
        found = pysip2.decode_message(text.encode("utf-8") + b"\r", encoding="utf-8")
        return pysip2.DecodedMessage(message=found.message, sequence_number=sequence, checksum=None)


def _reset(conn: socket.socket) -> None:
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    except OSError:
        pass
