"""Bookcorner as a SIP2 server: self-check machines, RFID gates and library desks lend and
return class-corner books over SIP2 (docs/sip2.md).

An asyncio server in the central server's own event loop, started and stopped by the app's
lifespan beside HTTP (``central.app``), on a socket ``central.server`` binds. Each
connection is a session: Login (93) first, then patron status (23), patron information
(63), item information (17), checkout (11), checkin (09), renew (29), end session (35);
SC status (99) and resend (97) at any time. Screen messages (AF) and print lines (AG) are in
the language the machine's last patron status or information asked for (its fixed field
"language": 001 English, 019 Chinese), until the patron's session ends; in the school's
language otherwise; the response's own language field says which. Frames are read and written by
``protocol.sip2`` (checksums verified and produced, sequence numbers echoed); the
decisions and their events are ``central.services.sip2``'s, run in a worker thread so
that HTTP never waits for them.

A frame that is not SIP2 gets 96 ("send it again"); a third bad frame in a row, a frame
longer than ``protocol.sip2.MAX_FRAME``, a request before login, a session silent for the
idle timeout, or more sessions than ``max_sessions`` are closed cleanly, with a line in
the log that says why (never the frame's content: it may hold a child's name).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from bookcorner import i18n
from bookcorner.central import db
from bookcorner.central.schools import Schools, UnknownSchool, school_of_secret
from bookcorner.central.services import notices, sip2_accounts
from bookcorner.central.services.sip2 import Desk, PatronView, Result, due_moment, screen_text
from bookcorner.circulation.model import ItemStatus
from bookcorner.i18n import N_, _
from bookcorner.protocol import sip2
from bookcorner.protocol.sip2 import Message

log = logging.getLogger(__name__)

#: what this server answers: BX of SC status, in the standard's order (23, 11, 09, 01, 99, 97, 93,
#: 63, 35, 37, 17, 19, 25, 15, 29, 65)
SUPPORTED = "YYYNYYYYYNYNNNYN"
#: bad frames in a row before a session is closed
MAX_BAD_FRAMES = 3
#: failed logins before a session is closed
MAX_FAILED_LOGINS = 3
DUE_TEXT = N_("Due back on {due}")
#: what SC status tells the machine to wait for an answer (a checkout may wait for the database's write lock)
ANSWER_WITHIN_S = 30
#: the languages of SIP2's fixed field "language" bookcorner answers in (any other: the school's)
LANGUAGE_OF = {sip2.LANGUAGE_ENGLISH: "en", sip2.LANGUAGE_UNITED_KINGDOM: "en", sip2.LANGUAGE_CHINESE: "zh_CN"}
#: the code a response's language field gives for each of bookcorner's languages
CODE_OF = {"en": sip2.LANGUAGE_ENGLISH, "zh_CN": sip2.LANGUAGE_CHINESE}


@dataclass(frozen=True)
class Options:
    #: the character set of the frames: utf-8 or gb18030 (what the self-check machine is set to)
    encoding: str = "utf-8"
    #: seconds a session may stay silent before it is closed
    idle_timeout_s: float = 300.0
    max_sessions: int = 500
    library: str = "bookcorner"
    #: TLS: the HTTP server's certificate and key, when it has them (None: plain SIP2)
    certfile: str | None = None
    keyfile: str | None = None
    #: the language of the screen messages and print lines when the machine asks for none (000) or for
    #: one bookcorner does not speak; empty: the school's, as its overdue notices are written in
    language: str = ""

    def tls(self) -> ssl.SSLContext | None:
        if not self.certfile:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certfile, self.keyfile)
        return context


@dataclass(frozen=True)
class Listener:
    """A bound socket for the SIP2 server (``central.server`` binds it), and its options."""

    sock: socket.socket
    options: Options


@dataclass
class Session:
    peer: str
    #: the store of the school the session's login belongs to (set at login: ``Sip2Server.school_of``)
    store: db.Store | None = field(default=None, repr=False)
    kiosk_id: str | None = None
    login: str = ""
    password: str = field(default="", repr=False)
    bad_frames: int = 0
    failed_logins: int = 0
    last_answer: bytes = b""
    done: bool = False
    #: the language the machine asked for in its last patron status or information (None: none,
    #: or one bookcorner does not speak), for the patron's session until it ends (35)
    language: str | None = None
    #: the school's language, read once for the session
    school_language: str | None = None


class Closing(Exception):
    """The session ends here (the reason is logged)."""


@dataclass
class Sip2Server:
    store: db.Store
    options: Options = field(default_factory=Options)
    #: the district's schools: a login ``<school>.<name>`` is that school's account (``central.schools``);
    #: None: the implicit school's only
    schools: Schools | None = None
    _desks: dict[str, Desk] = field(default_factory=dict)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self, sock: socket.socket) -> None:
        tls = self.options.tls()
        # a handshake timeout is refused without TLS
        self._server = await asyncio.start_server(self._connected, sock=sock, limit=sip2.MAX_FRAME, ssl=tls,
                                                  ssl_handshake_timeout=30 if tls is not None else None)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = writer.get_extra_info("peername")
        session = Session(f"{address[0]}:{address[1]}" if address else "?")
        if len(self._writers) >= self.options.max_sessions:
            log.warning("SIP2: %s refused: %d sessions are open already", session.peer, len(self._writers))
            writer.close()
            return
        self._writers.add(writer)
        try:
            await self._serve(session, reader, writer)
        except Closing as why:
            log.info("SIP2: session of %s (%s) closed: %s", session.peer, session.login or "not logged in", why)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            log.info("SIP2: %s went away", session.peer)
        except Exception:  # the database down, a bug: this session ends, the others and HTTP go on
            log.exception("SIP2: session of %s (%s) failed", session.peer, session.login or "not logged in")
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve(self, session: Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not session.done:
            frame = await self._read(reader)
            if frame is None:
                return
            answer = await self._answer(session, frame)
            writer.write(answer)
            try:  # a peer that sends and never reads does not hold its session open for ever
                await asyncio.wait_for(writer.drain(), self.options.idle_timeout_s)
            except TimeoutError:
                raise Closing("it does not read its answers") from None

    async def _read(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            return await asyncio.wait_for(reader.readuntil(sip2.TERMINATOR), self.options.idle_timeout_s)
        except TimeoutError:
            raise Closing(f"silent for {self.options.idle_timeout_s:g} s") from None
        except asyncio.LimitOverrunError:
            raise Closing(f"a frame longer than {sip2.MAX_FRAME} bytes") from None
        except asyncio.IncompleteReadError as end:
            if end.partial.strip():
                log.info("SIP2: a frame without its carriage return before the connection closed")
            return None

    async def _answer(self, session: Session, frame: bytes) -> bytes:
        try:
            request = sip2.decode(frame, self.options.encoding)
        except sip2.Sip2Error as error:
            return self._bad(session, str(error))
        if request.command == "97":
            return session.last_answer or self._bad(session, "a resend request before any answer")
        handler = _HANDLERS.get(request.command)
        if handler is None:
            return self._bad(session, f"command {request.command} is not supported")
        if request.command not in ("93", "99"):
            await self._still_logged_in(session, request.command)
        session.bad_frames = 0
        if request.command in ("23", "63"):
            session.language = LANGUAGE_OF.get(request.fixed[:3])
        with i18n.in_language(session.language or await self._school_language(session)):
            response = await handler(self, session, request)  # its AF and AG in that language
        if request.command == "35":
            session.language = None
        session.last_answer = sip2.encode(response, self.options.encoding, with_checksum=request.checksummed)
        return session.last_answer

    async def _school_language(self, session: Session) -> str:
        if session.school_language is None:
            chosen = self.options.language or (await asyncio.to_thread(notices.schedule, self._store(session))).language
            session.school_language = chosen if chosen in i18n.LANGUAGES else i18n.SOURCE_LANGUAGE
        return session.school_language

    async def _still_logged_in(self, session: Session, command: str) -> None:
        """Logged in, with an account not revoked since (a revoked one stops at its next request)."""
        if session.kiosk_id is None:
            raise Closing(f"command {command} before login")
        if await asyncio.to_thread(sip2_accounts.authenticate, self._store(session), session.login,
                                   session.password) is None:
            raise Closing("its SIP2 account was revoked")

    def _bad(self, session: Session, why: str) -> bytes:
        session.bad_frames += 1
        log.info("SIP2: %s sent a bad frame (%s)", session.peer, why)
        if session.bad_frames >= MAX_BAD_FRAMES:
            raise Closing(f"{MAX_BAD_FRAMES} bad frames in a row")
        return sip2.encode(sip2.resend_request(), self.options.encoding)

    # --- the messages ---------------------------------------------------------------------------

    async def _login(self, session: Session, request: Message) -> Message:
        login, password = request.get("CN", "") or "", request.get("CO", "") or ""
        store = await asyncio.to_thread(self.school_of, login)
        kiosk_id = await asyncio.to_thread(sip2_accounts.authenticate, store, login, password)
        if kiosk_id is None:
            session.failed_logins += 1
            log.warning("SIP2: failed login as %r from %s", sip2.clean(login, 60), session.peer)
            if session.failed_logins >= MAX_FAILED_LOGINS:
                session.done = True
            return sip2.login_response(False, request.sequence)
        session.kiosk_id, session.login, session.password, session.store = kiosk_id, login, password, store
        log.info("SIP2: %s logged in from %s", login, session.peer)
        return sip2.login_response(True, request.sequence)

    async def _status(self, session: Session, request: Message) -> Message:
        return sip2.acs_status(await self._now(session), request.sequence, online=session.kiosk_id is not None,
                               timeout_s=ANSWER_WITHIN_S, supported=SUPPORTED,
                               institution=request.get("AO", "") or "", library=self.options.library,
                               location=session.login)

    async def _now(self, session: Session) -> datetime:
        if session.kiosk_id is None:
            return db.now().astimezone().replace(tzinfo=None)
        return (await asyncio.to_thread(self._desk(session).now, session.kiosk_id)).replace(tzinfo=None)

    def school_of(self, login: str) -> db.Store:
        """The store of the school a login names (``<school>.<name>``); the implicit school's for a
        login that names none this server has."""
        slug = school_of_secret(login)[0]
        if slug and self.schools is not None:
            try:
                return self.schools.store(slug)
            except UnknownSchool:
                pass
        return self.store

    def _store(self, session: Session) -> db.Store:
        return session.store or self.store

    def _desk(self, session: Session) -> Desk:
        """The circulation desk of the session's school."""
        store = self._store(session)
        desk = self._desks.get(store.school)
        if desk is None:
            desk = self._desks.setdefault(store.school, Desk(store))
        return desk

    async def _patron(self, session: Session, request: Message) -> Message:
        now = await self._now(session)
        view = await asyncio.to_thread(self._desk(session).patron, _kiosk(session), request.get("AA", "") or "", now)
        answer = patron_answer(request.get("AO", "") or "", view, now)
        language = CODE_OF[i18n.current_language()]  # the language it is answered in
        if request.command == "23":
            return sip2.patron_status_response(answer, now, request.sequence, language)
        return sip2.patron_information_response(answer, now, request.sequence, language)

    async def _item(self, session: Session, request: Message) -> Message:
        code = request.get("AB", "") or ""
        item, loan, status = await asyncio.to_thread(self._desk(session).item, _kiosk(session), code)
        answer = sip2.ItemAnswer(request.get("AO", "") or "", code)
        if item is None:
            answer = sip2.ItemAnswer(answer.institution, code, circulation_status=sip2.ITEM_OTHER,
                                     screen=(screen_text("item_unknown"),))
        else:
            answer = sip2.ItemAnswer(answer.institution, code, item.title, _circulation_status(loan is not None, status),
                                     due_moment(loan.due) if loan else None, location=item.home_corner or "")
        return sip2.item_information_response(answer, await self._now(session), request.sequence)

    async def _checkout(self, session: Session, request: Message) -> Message:
        card = request.get("AA", "") or ""
        result = await asyncio.to_thread(self._desk(session).checkout, _kiosk(session), card,
                                         request.get("AB", "") or "")
        answer = item_answer(request, result, card)
        return sip2.checkout_response(result.ok, result.renewed, answer, await self._now(session), request.sequence)

    async def _renew(self, session: Session, request: Message) -> Message:
        card = request.get("AA", "") or ""
        result = await asyncio.to_thread(self._desk(session).renew, _kiosk(session), card, request.get("AB", "") or "")
        answer = item_answer(request, result, card)
        return sip2.renew_response(result.ok, answer, await self._now(session), request.sequence)

    async def _checkin(self, session: Session, request: Message) -> Message:
        result = await asyncio.to_thread(self._desk(session).checkin, _kiosk(session), request.get("AB", "") or "")
        answer = item_answer(request, result, "")
        return sip2.checkin_response(result.ok, answer, await self._now(session), request.sequence,
                                     alert=not result.ok)

    async def _end(self, session: Session, request: Message) -> Message:
        return sip2.end_session_response(request.get("AO", "") or "", request.get("AA", "") or "",
                                         await self._now(session), request.sequence)


def _kiosk(session: Session) -> str:
    assert session.kiosk_id is not None, "logged in"
    return session.kiosk_id


def _circulation_status(on_loan: bool, status: str) -> str:
    if on_loan:
        return sip2.ITEM_CHARGED
    return {ItemStatus.AVAILABLE: sip2.ITEM_ON_SHELF, ItemStatus.LOST: sip2.ITEM_LOST}.get(
        ItemStatus(status) if status else ItemStatus.AVAILABLE, sip2.ITEM_OTHER)


def item_answer(request: Message, result: Result, card: str) -> sip2.ItemAnswer:
    """A checkout's, renewal's or checkin's answer about its book."""
    screen: tuple[str, ...] = result.screen
    printed: tuple[str, ...] = ()
    if result.ok and result.due is not None and request.command != "09":
        screen = printed = (_(DUE_TEXT).format(due=result.due.isoformat()),)  # on the screen and the receipt
    item = result.item
    return sip2.ItemAnswer(
        request.get("AO", "") or "", request.get("AB", "") or result.code, item.title if item else "",
        due=due_moment(result.due) if result.ok and request.command != "09" else None, patron_id=card,
        location=(item.home_corner or "") if item else "", screen=screen, printed=printed)


def patron_answer(institution: str, view: PatronView, now: datetime) -> sip2.PatronAnswer:
    """What patron status and patron information say about the card's holder."""
    if view.patron is None:
        return sip2.PatronAnswer(institution, view.card, False, status=sip2.PatronStatus(
            charge_denied=True, renewal_denied=True, card_lost=view.reason == "card_not_active"),
            screen=(screen_text(view.reason or "card_unknown"),))
    today = now.date()
    full = len(view.loans) >= view.limit

    def code(item) -> str:
        return item.barcode or item.isbn13 or item.item_id

    status = sip2.PatronStatus(charge_denied=view.blocked or full, renewal_denied=view.blocked,
                               too_many_charged=full, too_many_overdue=view.blocked and view.overdue > 0)
    return sip2.PatronAnswer(
        institution, view.card, True, view.patron.name, status,
        charged=tuple(code(item) for _loan, item in view.loans),
        overdue=tuple(code(item) for loan, item in view.loans if loan.is_overdue(today)), limit=view.limit)


_Handler = Callable[[Sip2Server, Session, Message], Awaitable[Message]]
_HANDLERS: dict[str, _Handler] = {
    "93": Sip2Server._login, "99": Sip2Server._status, "23": Sip2Server._patron, "63": Sip2Server._patron,
    "17": Sip2Server._item, "11": Sip2Server._checkout, "29": Sip2Server._renew, "09": Sip2Server._checkin,
    "35": Sip2Server._end,
}
