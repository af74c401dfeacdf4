"""The central database: its tables, and how to open it (SQLite by default, PostgreSQL by URL).

One ``Store`` is one school's tables (``central.schools``): a district's other schools are
stores of their own, on PostgreSQL the same pool with the school's schema as each
transaction's search path (``Store.in_schema``), and every lock below keyed per school, so
one school's writes never wait for another's.

Two kinds of write transaction (``Store.writing`` and ``Store.ingesting``):

* ``writing``: one at a time, across threads and processes. The librarian's changes, imports,
  the retention period, the bridge's and the notices' bookkeeping, migrations: rare, and
  free to read and change anything. SQLite serialises with ``BEGIN IMMEDIATE`` (and a lock
  file that hands over at once), PostgreSQL with a transaction-level advisory lock taken
  exclusively; a process-wide lock in front keeps threads from spinning on either.
* ``ingesting``: taking a kiosk's batch (``central.ingest``), the hot path. On SQLite it is
  ``writing`` (SQLite has one writer whatever we do). On PostgreSQL batches run side by
  side, each holding, until it commits, transaction-level advisory locks as narrow as
  correctness allows:

  - the global write lock *shared*: no ``writing`` transaction (a librarian's correction of
    an item, a catalogue import, anonymising loans) runs in the middle of a batch, and none
    of those needs to know what ingest touches;
  - its **kiosk**: that kiosk's sequence and idempotency (its high-water mark, event count and
    times in ``kiosks``, its journal incarnations in ``journals``, its boots' anchors, its
    batch ids in ``batches``): two pushes of one kiosk (a daemon retrying while its first
    request is still being served, or a kiosk behind two server processes) go one after the
    other, so the second sees the first's batch id and numbers;
  - every **item** the batch's events change or register (``item_state``, the item's loans in
    ``loans``, its catalogue record when a kiosk registers it): where replays from different
    kiosks meet. Replay reads an item's state and loan after taking its lock, so it sees
    them as the last batch that touched the item left them (checkout at one kiosk, return
    at another: one after the other, in either order, never interleaved);
  - every **card** a batch enrols or replaces (``cards``).

  All of a batch's keys are taken in one sorted order, so two batches cannot deadlock on
  them. Each is an entry in PostgreSQL's shared lock table until the commit (room for
  ``max_locks_per_transaction`` x ``max_connections`` entries: 6,400 by default); so that
  batches side by side always fit, a batch that would take more than ``INGEST_LOCKS_MAX``
  (a kiosk's first push after weeks offline, in batches of thousands) takes the global write
  lock exclusively instead, like ``writing``, and goes alone. With several server processes
  each taking ``push_limit`` pushes at once, ``max_locks_per_transaction`` must cover
  processes x push_limit x (INGEST_LOCKS_MAX + 2) / max_connections (docs/operations.md). What remains shared is made safe otherwise: the reference cursor (``revision``) is
  bumped by an ``UPDATE`` of its one row, whose row lock is held to commit, as the last
  step of the batch (see ``central.ingest``), so revisions still grow in commit order and a
  kiosk's "changes since" misses nothing; events' ids are unique by primary key (``events``'
  on SQLite, ``event_ids``' on PostgreSQL, where ``events`` is partitioned by time: two kiosks
  sending one id: the second is looked up again and kept for review); the review queue and
  the bridge's outbox take rows under their own serial ids (``central.outbox`` on order).
"""

from __future__ import annotations

import copy
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    literal,
    select,
)
from sqlalchemy.engine import Connection, Row, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

UTC = timezone.utc
#: a lock key of our own for pg_advisory_xact_lock ("bookcorn" in ASCII)
_PG_WRITE_LOCK = 0x626F6F6B636F726E
LOCK_WAIT_S = 30.0
#: the most locks one batch takes (its kiosk, books and cards); a batch that would take more
#: takes the global write lock exclusively instead (see the module's docstring)
INGEST_LOCKS_MAX = 256
DEFAULT_DB_ENV = "BOOKCORNER_CENTRAL_DB"
#: a school's PostgreSQL schema: ``school_`` and its slug (``central.schools``), nothing to quote
SCHEMA_NAME = re.compile(r"school_[a-z0-9_]{1,40}")


class Busy(Exception):
    """The database is busy or unreachable for now; try again later."""


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which has no time zones) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

#: settings of the database itself: its "epoch" (identity)
meta = Table(
    "meta", metadata,
    Column("key", String(40), primary_key=True),
    Column("value", Text, nullable=False),
)

#: one row: the reference cursor, bumped by every transaction that changes what kiosks pull
revision = Table(
    "revision", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("rev", BigInteger, nullable=False),
)

credentials = Table(
    "credentials", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("role", String(16), nullable=False),  # "kiosk" | "librarian"
    Column("name", String(120), nullable=False),
    Column("kiosk_id", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

kiosks = Table(
    "kiosks", metadata,
    Column("kiosk_id", String(64), primary_key=True),
    Column("name", String(120), nullable=False),
    #: when its credential was issued: no event of it can be older
    Column("provisioned", UTCDateTime, nullable=False),
    Column("signing_key", String(64), nullable=False),
    #: high-water mark: every event up to here is stored (or declared lost by the kiosk)
    Column("applied_seq", BigInteger, nullable=False, default=0),
    Column("max_seq", BigInteger, nullable=False, default=0),
    Column("events", BigInteger, nullable=False, default=0),
    Column("last_contact", UTCDateTime, nullable=True),
    Column("last_boot_id", String(80), nullable=True),
    Column("clock_offset_s", Float, nullable=True),
    #: the time given to its event max_seq (nothing after it is placed earlier)
    Column("last_event_time", UTCDateTime, nullable=True),
    #: the latest time of its events the server is sure of (a lower bound for what comes next)
    Column("last_known_time", UTCDateTime, nullable=True),
    #: events the kiosk still held (not yet acknowledged) when it last reported, and when
    Column("waiting_events", BigInteger, nullable=True),
    Column("waiting_reported_at", UTCDateTime, nullable=True),
    #: the journal incarnation the columns above count in (None: a kiosk that never named one)
    Column("incarnation", String(80), nullable=True),
)

#: every journal incarnation a kiosk has pushed from (journal.incarnation): each counts its
#: own sequence numbers. The kiosk's current one is also in ``kiosks`` (the live copy of its
#: high-water mark and times); the others keep theirs here, so that a push from an older
#: incarnation (a card thought dead) is still taken exactly once.
journals = Table(
    "journals", metadata,
    Column("kiosk_id", String(64), primary_key=True),
    #: "" for the events a kiosk pushed before it named incarnations
    Column("incarnation", String(80), primary_key=True),
    Column("since_seq", BigInteger, nullable=False),
    Column("reason", String(24), nullable=False),
    Column("previous", String(80), nullable=True),
    Column("restored_from", String(40), nullable=True),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("applied_seq", BigInteger, nullable=False),
    Column("max_seq", BigInteger, nullable=False),
    Column("last_event_time", UTCDateTime, nullable=True),
    Column("last_known_time", UTCDateTime, nullable=True),
)

#: (monotonic clock, server time) pairs seen during a kiosk's boots: re-time that boot's events
boot_anchors = Table(
    "boot_anchors", metadata,
    Column("kiosk_id", String(64), primary_key=True),
    Column("boot_id", String(80), primary_key=True),
    Column("monotonic_ns", BigInteger, nullable=False),
    Column("server_time", UTCDateTime, nullable=False),
)

#: the reply to every batch, by its idempotency key
batches = Table(
    "batches", metadata,
    Column("kiosk_id", String(64), primary_key=True),
    Column("batch_id", String(80), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("reply", LargeBinary, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

events = Table(
    "events", metadata,
    Column("event_id", String(80), primary_key=True),
    Column("kiosk_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("boot_id", String(80), nullable=False),
    Column("monotonic_ns", BigInteger, nullable=False),
    #: as the kiosk's clock read it
    Column("wall_time", String(40), nullable=False),
    Column("clock_synced", Boolean, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("type", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    #: the corrected time, and how it was found (corrected | synced | bounded)
    Column("time", UTCDateTime, nullable=False),
    Column("time_quality", String(16), nullable=False),
    Column("time_lower", UTCDateTime, nullable=True),
    Column("time_upper", UTCDateTime, nullable=True),
    Column("outcome", String(24), nullable=False),
    Column("reason", String(64), nullable=True),
    Column("warnings", Text, nullable=True),
    Column("batch_id", String(80), nullable=False),
    Column("source", String(8), nullable=False),  # "push" | "import"
    #: the kiosk's journal incarnation that recorded it (None: before incarnations)
    Column("incarnation", String(80), nullable=True),
    Index("ix_events_kiosk_seq", "kiosk_id", "seq"),
    Index("ix_events_time", "time"),
    Index("ix_events_type_time", "type", "time"),
)

#: every stored event's id, on PostgreSQL only (issue 15): ``events`` is partitioned there by
#: ``received_at``, and a partitioned table's unique key must hold the partition key, so exactly-once
#: by event id is this table's primary key, written in the transaction that stores the event
#: (``record_event_ids``). Its ``received_at`` leads a lookup by id to the one partition holding
#: the event (``event_id_in``); kiosk and number answer ingest's duplicate check without ``events``.
event_ids = Table(
    "event_ids", metadata,
    Column("event_id", String(80), primary_key=True),
    Column("kiosk_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

#: what a librarian must look at: events not applied, events a kiosk lost, conflicts
reviews = Table(
    "reviews", metadata,
    Column("review_id", Integer, primary_key=True, autoincrement=True),
    Column("kiosk_id", String(64), nullable=False),
    Column("event_id", String(80), nullable=True),
    Column("seq", BigInteger, nullable=True),
    Column("reason", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("resolution", Text, nullable=True),
    Index("ix_reviews_open", "kiosk_id", "resolved_at"),
)

#: each item's circulation state as replay left it (an item is on loan at most once)
item_state = Table(
    "item_state", metadata,
    Column("item_id", String(80), primary_key=True),
    #: set by events (in_repair, lost, available); None: the catalogue's status holds
    Column("status", String(16), nullable=True),
    Column("loan_id", String(80), nullable=True),
    Column("patron_id", String(80), nullable=True),
    Column("due", Date, nullable=True),
    Column("since", UTCDateTime, nullable=True),
    Column("loan_kiosk", String(64), nullable=True),
    Column("renewals", Integer, nullable=False, default=0),
    #: the last event that changed the item: later news from elsewhere that is older is stale
    Column("changed_time", UTCDateTime, nullable=True),
    Column("changed_kiosk", String(64), nullable=True),
    Column("changed_seq", BigInteger, nullable=True),
    Column("rev", BigInteger, nullable=False),
    Index("ix_item_state_rev", "rev"),
)


#: every loan as replay made it, for the reports (one row per checkout that applied);
#: patron_id is None once the school's retention period has anonymised a closed loan
loans = Table(
    "loans", metadata,
    Column("loan_id", String(80), primary_key=True),
    Column("item_id", String(80), nullable=False),
    Column("patron_id", String(80), nullable=True),
    #: the borrower's class when the book was lent (reports stay true after a class moves up)
    Column("class_name", String(80), nullable=True),
    Column("kiosk_id", String(64), nullable=False),
    Column("out_at", UTCDateTime, nullable=False),
    Column("due", Date, nullable=False),
    Column("returned_at", UTCDateTime, nullable=True),
    Column("renewals", Integer, nullable=False, default=0),
    Column("anonymised_at", UTCDateTime, nullable=True),
    #: covering for the reports: a period's loans by class and borrower without reading the table
    Index("ix_loans_out_at", "out_at", "class_name", "patron_id"),
    Index("ix_loans_returned_due", "returned_at", "due"),
    #: a book's loans (whose loan a return closed, when the return does not say)
    Index("ix_loans_item_out_at", "item_id", "out_at"),
)

#: an uploaded roster or catalogue waiting for the librarian to confirm its preview
staged_imports = Table(
    "staged_imports", metadata,
    Column("token", String(64), primary_key=True),
    Column("who", String(120), nullable=False),
    Column("kind", String(16), nullable=False),  # "roster" | "catalogue"
    Column("filename", String(255), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


#: a librarian signed in to the dashboard: the cookie carries a secret, the database its hash
dashboard_sessions = Table(
    "dashboard_sessions", metadata,
    Column("session_hash", String(64), primary_key=True),
    #: the librarian credential signed in with (revoking it ends its sessions)
    Column("token_hash", String(64), nullable=False),
    Column("name", String(120), nullable=False),
    #: the form token every state-changing request must carry
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

#: who decided or changed what, from the dashboard (never updated, never deleted)
audit_log = Table(
    "audit_log", metadata,
    Column("audit_id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("who", String(120), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(120), nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_audit_log_at", "at"),
)


def _reference_table(name: str, key: str, *extra: Column) -> Table:
    return Table(
        name, metadata,
        Column(key, String(80), primary_key=True),
        *extra,
        Column("data", Text, nullable=False),
        Column("rev", BigInteger, nullable=False),
        Column("removed", Boolean, nullable=False, default=False),
        Index(f"ix_{name}_rev", "rev"),
    )


patrons = _reference_table("patrons", "patron_id")
cards = _reference_table("cards", "card_id", Column("patron_id", String(80), nullable=False))
catalogue = _reference_table("catalogue", "item_id")
#: when the server first stored each book (None: before the server kept it): "copies added since"
#: for the labels (a column of the server's own, never sent to kiosks; an upsert leaves it be)
catalogue.append_column(Column("added_at", UTCDateTime, nullable=True, default=lambda: now()))

#: each class's teacher and where notices for the class go (the server's own: kiosks never get it)
class_teachers = Table(
    "class_teachers", metadata,
    Column("class_name", String(80), primary_key=True),
    Column("teacher_name", String(120), nullable=True),
    Column("email", String(254), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(120), nullable=False),
)

#: the outbox of overdue notices to class teachers: one row per class, period and channel (so
#: one is never sent twice for a period), kept with what happened to it
notices = Table(
    "notices", metadata,
    Column("notice_id", Integer, primary_key=True, autoincrement=True),
    Column("class_name", String(80), nullable=False),
    #: the scheduled send it belongs to ("2026-12-07 08:00", school-local), or "... now" for a librarian's
    Column("period", String(40), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(254), nullable=False),
    Column("language", String(8), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("books", Integer, nullable=False),
    #: pending | sending | sent | failed (retried) | held (needs the librarian)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("next_try", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    UniqueConstraint("class_name", "period", "channel", name="uq_notices_class_period_channel"),
    Index("ix_notices_status_next", "status", "next_try"),
)

#: the replay bridge's outbox (central.outbox, central.services.bridge): every checkout, return and
#: renewal replay applied while the bridge was on, in the order it applied them (outbox_id), to be
#: sent once to the school's own library system over SIP2
sip2_outbox = Table(
    "sip2_outbox", metadata,
    Column("outbox_id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(80), nullable=False, unique=True),
    #: the kiosk (or ``sip2-<login>`` account) that recorded it: where it came from
    Column("kiosk_id", String(64), nullable=False),
    #: checkout | checkin | renewal
    Column("kind", String(16), nullable=False),
    Column("item_id", String(80), nullable=False),
    Column("patron_id", String(80), nullable=True),
    Column("card_id", String(80), nullable=True),
    #: when it was done (the corrected time) and the due date the child was promised
    Column("done_at", UTCDateTime, nullable=False),
    Column("due", Date, nullable=True),
    #: waiting | sending (written, no answer yet: ask the item's status first) | sent | refused
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    #: the other system's own words (AF) when it refused
    Column("screen", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Index("ix_sip2_outbox_status", "status", "outbox_id"),
)

#: school name, policy, calendar, timetable: one JSON document each
settings = Table(
    "settings", metadata,
    Column("name", String(32), primary_key=True),
    Column("data", Text, nullable=False),
    Column("rev", BigInteger, nullable=False),
)


#: the librarian's reading lists: the school's recommended list for a grade, a festival's
#: theme list, a teacher's list for a class (grades and class empty: for everyone)
reading_lists = Table(
    "reading_lists", metadata,
    Column("list_id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # "grade" | "festival" | "class"
    #: comma-separated grades ("3,4"); empty: every grade
    Column("grades", String(80), nullable=False, default=""),
    Column("class_name", String(80), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(120), nullable=False),
)

#: a stock-take from a handheld scanner's file (the kiosks' are their stocktake.* events):
#: the codes as the file listed them (a JSON list), for the shelf's corners (JSON; None: every book)
stocktake_uploads = Table(
    "stocktake_uploads", metadata,
    Column("stocktake_id", String(80), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("who", String(120), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("shelf", Text, nullable=True),
    Column("codes", Text, nullable=False),
)

#: a list's books in order, as the librarian's file named them (ISBN-13 and/or title)
reading_list_books = Table(
    "reading_list_books", metadata,
    Column("list_id", String(40), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("isbn13", String(13), nullable=True),
    Column("title", String(400), nullable=False),
    #: the catalogue's book it matched when imported (an ISBN-13 or item:<id>); None: none yet
    Column("book", String(90), nullable=True),
)


#: the librarian's reading challenges: a period (inclusive), a goal of books or of categories
#: (CLC main classes), the classes taking part; ended early by the librarian: ``ended_at``
reading_challenges = Table(
    "reading_challenges", metadata,
    Column("challenge_id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False),
    Column("goal", Integer, nullable=False),
    Column("by_category", Boolean, nullable=False, default=False),
    #: comma-separated class names; empty: every class
    Column("class_names", String(400), nullable=False, default=""),
    #: the school's award rules (circulation.challenges.AwardRules); None: not set
    Column("star_at_least", Integer, nullable=True),
    Column("stars_per_class", Integer, nullable=True),
    Column("class_share", Integer, nullable=True),
    Column("class_average", Integer, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(120), nullable=False),
)

# --- opening ---------------------------------------------------------------------------------


def default_url() -> str:
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{base / 'bookcorner-central' / 'central.db'}"


def normalise_url(url: str | None) -> str:
    """A database URL from what a person typed: a path means SQLite, postgresql:// means psycopg 3."""
    url = url or os.environ.get(DEFAULT_DB_ENV) or default_url()
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def shown_url(url: str | None) -> str:
    """A database URL fit to print (its password hidden)."""
    try:
        return make_url(normalise_url(url)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001  (only for printing: any URL that does not parse is shown as given)
        return str(url)


class Store:
    """The database, opened: an engine and the write lock. Statement parameters are kept
    out of error messages (they would put children's names in the server's log)."""

    def __init__(self, url: str | None = None, *, pool_size: int = 8) -> None:
        self.url = normalise_url(url)
        self.sqlite = self.url.startswith("sqlite")
        if self.sqlite:
            path = self.url.split(":///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(
                self.url, connect_args={"check_same_thread": False, "timeout": LOCK_WAIT_S},
                pool_size=pool_size, max_overflow=pool_size, hide_parameters=True,
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = create_engine(self.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                                        hide_parameters=True)
        self._lock = threading.Lock()
        self._file_lock: Path | None = None
        if self.sqlite:
            path = self.url.split(":///", 1)[-1]
            if path and path != ":memory:":
                self._file_lock = Path(path + ".write-lock")
        #: the school whose tables this store reads and writes ("": the implicit school of a
        #: single-school installation, or a district's first school; ``central.schools``)
        self.school = ""
        #: on PostgreSQL, that school's schema (None: the connection's own, ``public``), set as
        #: the search path of every transaction; on SQLite every school has a file of its own
        self.schema: str | None = None
        self._write_lock_key = _PG_WRITE_LOCK
        self._in_school = ""

    def in_schema(self, school: str, schema: str) -> Store:
        """The same PostgreSQL database and pool, seen as one school: every transaction's search
        path is ``schema`` (only: a table missing there is an error, never another school's),
        and its advisory lock keys are that school's own."""
        if self.sqlite:
            raise ValueError("on SQLite each school has a database file of its own")
        if not SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"not a school's schema name: {schema!r}")
        other = copy.copy(self)
        other._lock = threading.Lock()  # (the advisory locks below are per school too)
        other.school, other.schema = school, schema
        other._write_lock_key = lock_key("school", schema)
        other._in_school = f"{schema}:"
        return other

    def _search_path(self) -> str:
        """The statement that puts a transaction in this store's school ("" for the implicit one)."""
        return f"SET LOCAL search_path TO {self.schema}; " if self.schema else ""

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """One write transaction at a time, across threads and server processes; raises
        Busy when the wait is too long."""
        if not self._lock.acquire(timeout=LOCK_WAIT_S):
            raise Busy("another write has held the database for too long")
        try:
            with self._between_processes(), _translated():
                with self.engine.connect().execution_options(bookcorner_write=True) as conn:
                    with conn.begin():
                        if not self.sqlite:  # (one round trip)
                            conn.exec_driver_sql(f"{self._search_path()}SET LOCAL lock_timeout = '{int(LOCK_WAIT_S)}s'; "
                                                 f"SELECT pg_advisory_xact_lock({self._write_lock_key})")
                        yield conn
        finally:
            self._lock.release()

    @contextmanager
    def ingesting(self, kiosk_id: str, items: Iterable[str] = (), cards: Iterable[str] = ()) -> Iterator[Connection]:
        """A write transaction for one batch of ``kiosk_id`` that changes ``items`` and
        ``cards``: on PostgreSQL side by side with other kiosks' batches, holding the narrow
        locks the module's docstring lists (taken before anything is read); on SQLite,
        ``writing``. Raises Busy when a lock is not had within ``LOCK_WAIT_S``."""
        if self.sqlite:
            with self.writing() as conn:
                yield conn
            return
        keys = ingest_lock_keys(kiosk_id, items, cards, school=self._in_school)
        if len(keys) > INGEST_LOCKS_MAX:  # the whole school for this one, as ``writing``
            locks = f"SELECT pg_advisory_xact_lock({self._write_lock_key})"
        else:  # the keys in the array's (sorted) order: the subquery's order is the order taken in
            array = "{" + ",".join(str(int(key)) for key in keys) + "}"  # (numbers of our own making)
            locks = (f"SELECT pg_advisory_xact_lock_shared({self._write_lock_key}); "
                     f"SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT k FROM unnest('{array}'::bigint[]) "
                     f"WITH ORDINALITY AS t(k, n) ORDER BY n) AS ordered")
        with _translated():
            with self.engine.connect().execution_options(bookcorner_write=True) as conn:
                with conn.begin():
                    conn.exec_driver_sql(f"{self._search_path()}SET LOCAL lock_timeout = '{int(LOCK_WAIT_S)}s'; "
                                         f"{locks}")  # one round trip
                    yield conn

    @contextmanager
    def _between_processes(self) -> Iterator[None]:
        """SQLite: a lock file that hands the write over at once (SQLite's own busy wait
        sleeps up to 100 ms at a time). PostgreSQL serialises with an advisory lock."""
        if self._file_lock is None:
            yield
            return
        fd = os.open(self._file_lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + LOCK_WAIT_S
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise Busy("another server process has held the database for too long") from None
                    time.sleep(0.0005)
            yield
        finally:
            os.close(fd)  # releases the lock

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction that sees one consistent state of the database."""
        with _translated():
            with self.engine.connect() as conn:
                if not self.sqlite:
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    if self.schema:
                        conn.exec_driver_sql(self._search_path())
                    yield conn

    def epoch(self) -> str:
        with self.reading() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == "epoch")).scalar_one()

    def migrate(self) -> None:
        from bookcorner.central.migrations import upgrade

        with self.writing() as conn:
            upgrade(conn)

    def dispose(self) -> None:
        self.engine.dispose()


@functools.lru_cache(maxsize=1 << 15)
def lock_key(kind: str, ident: str) -> int:
    """A PostgreSQL advisory lock key (a signed 64-bit number) for one kiosk, item or card.
    Two names may share a key (one in 2**64): they then wait for each other, nothing worse.
    (Remembered: a school's books and cards come back batch after batch, and a batch locks
    hundreds; working them out again was about 1 us an event.)"""
    digest = hashlib.blake2b(f"bookcorner:{kind}:{ident}".encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    return key if key != _PG_WRITE_LOCK else key - 1


def ingest_lock_keys(kiosk_id: str, items: Iterable[str] = (), cards: Iterable[str] = (),
                     school: str = "") -> list[int]:
    """The keys a batch locks, once each, in the one order every batch takes them in
    (``school``: a prefix of the school's own, so one school's batches never wait for another's)."""
    keys = {lock_key("kiosk", school + kiosk_id)}
    keys.update(lock_key("item", school + i) for i in items)
    keys.update(lock_key("card", school + c) for c in cards)
    return sorted(keys)


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except OperationalError as error:
        # locked, connection refused or dropped, lock timeout: the request can be retried
        first = str(error.orig).strip().splitlines()[0] if error.orig else "database unavailable"
        # the first line only: a driver's DETAIL and CONTEXT lines can quote a row (docs/operations.md)
        log.warning("database busy or unreachable: %s", first)
        raise Busy(first) from error


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun explicitly, below
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # an acknowledged batch must survive a power cut of the library computer too
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={int(LOCK_WAIT_S * 1000)}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("bookcorner_write") else "BEGIN")


def now() -> datetime:
    return datetime.now(UTC)


# --- the hot path: many rows at once, through the driver's fastest door ----------------------------


_json_rows = msgspec.json.Encoder()


def time_param(conn: Connection):
    """How an aware datetime goes to the driver in ``bulk_insert``/``bulk_upsert`` rows:
    as is for PostgreSQL, as the text SQLAlchemy's SQLite dialect stores (naive UTC)."""
    if conn.dialect.name != "sqlite":
        return lambda value: value

    def sqlite(value: datetime | None) -> str | None:
        if value is None:
            return None
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")

    return sqlite


def date_param(conn: Connection):
    if conn.dialect.name != "sqlite":
        return lambda value: value
    return lambda value: None if value is None else value.isoformat()


def key_in(conn: Connection, column, keys: Sequence[str]):
    """``column IN keys``, planned well whatever the statistics say: on PostgreSQL a
    semi-join to ``unnest`` of one array parameter (a plain IN list over a table it
    believes small becomes a sequential scan comparing every row with every key)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column.in_(select(func.unnest(literal(list(keys), ARRAY(String)))))
    return column.in_(list(keys))


def ids_table(conn: Connection) -> Table:
    """Where event ids are looked up with the kiosk and number they were stored under (the
    columns ``event_id``, ``kiosk_id``, ``seq``): ``event_ids`` on PostgreSQL, ``events`` on SQLite."""
    return event_ids if conn.dialect.name == "postgresql" else events


def event_id_in(conn: Connection, ids: Sequence[str]):
    """A condition on ``events``: its id is one of ``ids``. On PostgreSQL through ``event_ids``,
    whose ``received_at`` prunes ``events`` to the partitions that hold them (a bare ``event_id
    IN`` would probe every term's partition)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy import tuple_

        found = select(event_ids.c.event_id, event_ids.c.received_at).where(key_in(conn, event_ids.c.event_id, ids))
        return tuple_(events.c.event_id, events.c.received_at).in_(found)
    return events.c.event_id.in_(list(ids))


#: where ``received_at`` sits in a row of ``events`` (a tuple in its columns' order)
_RECEIVED_AT = list(events.c.keys()).index("received_at")


def record_event_ids(conn: Connection, rows: Sequence[tuple]) -> None:
    """Keep the ids of events about to be stored (tuples in ``events``' column order) in
    ``event_ids``, in the caller's transaction, before the events themselves: an id stored
    before trips its primary key here (IntegrityError, as ``events``' own key does on SQLite,
    where nothing is written here)."""
    if conn.dialect.name == "postgresql" and rows:
        bulk_insert(conn, event_ids, [(row[0], row[1], row[2], row[_RECEIVED_AT]) for row in rows])


def time_result(conn: Connection):
    """Reading back a time that ``fetch_rows`` returns: aware UTC either way."""
    if conn.dialect.name != "sqlite":
        return lambda value: value

    def sqlite(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)

    return sqlite


def date_result(conn: Connection):
    if conn.dialect.name != "sqlite":
        return lambda value: value
    return lambda value: None if value is None else date.fromisoformat(value)


def json_object(text: str | None) -> dict[str, Any]:
    """A stored JSON document (a payload, a reference record) as a dict; {} when it is not one."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def fetch_rows(conn: Connection, table: Table, key, keys: Sequence[str]) -> Sequence[Row]:
    """Whole rows (tuples in column order) whose ``key`` is one of ``keys``, through the
    driver (times as stored: see ``time_result``)."""
    names = ", ".join(c.name for c in table.columns)
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(keys))
        return conn.exec_driver_sql(f"SELECT {names} FROM {table.name} WHERE {key.name} IN ({marks})",
                                    tuple(keys)).all()
    return conn.exec_driver_sql(
        f"SELECT {names} FROM {table.name} WHERE {key.name} IN (SELECT unnest(%s::text[]))", (list(keys),)).all()


def bulk_insert(conn: Connection, table: Table, rows: list[tuple]) -> None:
    """Rows (tuples in the table's column order, times through ``time_param``) inserted
    the fastest way the database offers: ``executemany`` on SQLite, ``COPY`` on
    PostgreSQL (in binary when every column's type allows: ``_binary_types``). The
    benchmark's "bulk insert" limit uses this same function."""
    if not rows:
        return
    names = ", ".join(c.name for c in table.columns)
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(table.columns))
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)
        return
    raw: Any = conn.connection.dbapi_connection  # psycopg's: its cursor's copy() is psycopg's own API
    types = _binary_types(conn, table)
    statement = f"COPY {table.name} ({names}) FROM STDIN{' (FORMAT BINARY)' if types else ''}"
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            if types:
                copy.set_types(types)
            for row in rows:
                copy.write_row(row)
    except conn.dialect.loaded_dbapi.IntegrityError as error:  # as SQLAlchemy would have raised it
        raise IntegrityError(statement, None, error) from error


#: PostgreSQL's types (as the table declares them) that COPY takes in binary from these Python
#: values: str, int, bool, aware datetime, date (what ``time_param``/``date_param`` give)
_BINARY_COPY = {"VARCHAR": "text", "TEXT": "text", "BIGINT": "int8", "INTEGER": "int4", "SMALLINT": "int2",
                "BOOLEAN": "bool", "TIMESTAMP WITH TIME ZONE": "timestamptz", "DATE": "date"}
_binary_copy_types: dict[Table, list[str] | None] = {}


def _binary_types(conn: Connection, table: Table) -> list[str] | None:
    """The types ``bulk_insert`` gives COPY for ``table``'s columns in binary, or None (a
    column of another type: the table is copied as text). Binary costs psycopg a quarter of
    the CPU a row as text (0.8 against 3.2 us for a row of ``events``: no value is formatted
    as text, and PostgreSQL parses none)."""
    if table not in _binary_copy_types:
        found = [_BINARY_COPY.get(c.type.compile(dialect=conn.dialect).split("(")[0]) for c in table.columns]
        _binary_copy_types[table] = [t for t in found if t is not None] if None not in found else None
    return _binary_copy_types[table]


def bulk_upsert(conn: Connection, table: Table, keys: list[str], rows: list[tuple], *,
                new_revision: str | None = None, commit: bool = False) -> None:
    """Insert or replace rows (tuples in column order) by their primary key: one
    ``executemany`` on SQLite; on PostgreSQL one statement over the rows as one JSON document.

    ``new_revision``: the name of a column every row gets a new revision in (the rows' values
    for it are not used): on PostgreSQL the ``revision`` row is bumped in the same statement,
    so its row lock (which ingest's batches queue for: see the module's docstring) is held
    from there to the commit only.

    ``commit``: this is the transaction's last statement, and on PostgreSQL it goes in one
    message with the COMMIT (psycopg's pipeline), answered once both are done; nothing may
    be written after it (the caller's transaction then commits nothing more). Otherwise
    the revision row stayed locked while the reply crossed to this process, the process
    got the CPU and its thread the interpreter's lock back, and the COMMIT crossed back:
    on a busy host several scheduling delays, during which every other batch waits."""
    if not rows:
        return
    names = [c.name for c in table.columns]
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n not in keys)
    conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    if conn.dialect.name == "sqlite":
        if new_revision is not None:
            at = names.index(new_revision)
            rev = conn.execute(revision.update().where(revision.c.id == 1).values(rev=revision.c.rev + 1)
                               .returning(revision.c.rev)).scalar_one()
            rows = [(*row[:at], rev, *row[at + 1:]) for row in rows]
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(names)}) "
                             f"VALUES ({', '.join('?' * len(names))}) {conflict}", rows)
        return
    # the rows as one JSON document that PostgreSQL turns back into rows itself: one
    # parameter, one round trip, no per-value adaptation in Python
    document = _json_rows.encode([dict(zip(names, row, strict=True)) for row in rows]).decode("utf-8")
    if new_revision is None:
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(names)} "
                             f"FROM json_populate_recordset(NULL::{table.name}, %s) {conflict}", (document,))
        return
    values = ", ".join("(SELECT rev FROM bumped)" if n == new_revision else n for n in names)
    statement = (f"WITH bumped AS (UPDATE revision SET rev = rev + 1 WHERE id = 1 RETURNING rev) "
                 f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {values} "
                 f"FROM json_populate_recordset(NULL::{table.name}, %s) {conflict}")
    if not commit:
        conn.exec_driver_sql(statement, (document,))
        return
    raw: Any = conn.connection.dbapi_connection  # psycopg's: its pipeline is psycopg's own API
    try:
        with raw.pipeline():
            raw.execute(statement, (document,))
            raw.commit()
    except conn.dialect.loaded_dbapi.Error as error:  # as SQLAlchemy would have raised it (OperationalError...)
        raise DBAPIError.instance(statement, None, error, conn.dialect.loaded_dbapi.Error) from error


def bulk_update_located(conn: Connection, table: Table, key: str, partition_key: str, columns: list[str],
                        rows: list[tuple]) -> set:
    """PostgreSQL: ``bulk_update`` of a table partitioned by ``partition_key``, whose value for each
    row follows the columns' values: PostgreSQL reads only the partition holding each row (by key
    alone it looks in every partition). Returns the keys updated; a row whose ``partition_key``
    is not the one given is left as it is (for ``bulk_update`` by key alone)."""
    if not rows:
        return set()
    names = [key, *columns, partition_key]
    document = _json_rows.encode([dict(zip(names, row, strict=True)) for row in rows]).decode("utf-8")
    sets = ", ".join(f"{c} = v.{c}" for c in columns)
    return set(conn.exec_driver_sql(
        f"UPDATE {table.name} SET {sets} FROM json_populate_recordset(NULL::{table.name}, %s) AS v "
        f"WHERE {table.name}.{key} = v.{key} AND {table.name}.{partition_key} = v.{partition_key} "
        f"RETURNING {table.name}.{key}", (document,)).scalars())


def bulk_update(conn: Connection, table: Table, key: str, columns: list[str], rows: list[tuple]) -> None:
    """Set ``columns`` of the rows whose ``key`` is each tuple's first value (the columns'
    values follow, times through ``time_param``): one ``executemany`` on SQLite; on
    PostgreSQL one statement over the rows as one JSON document (as ``bulk_upsert``)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        sets = ", ".join(f"{c} = ?" for c in columns)
        conn.exec_driver_sql(f"UPDATE {table.name} SET {sets} WHERE {key} = ?", [(*row[1:], row[0]) for row in rows])
        return
    names = [key, *columns]
    document = _json_rows.encode([dict(zip(names, row, strict=True)) for row in rows]).decode("utf-8")
    sets = ", ".join(f"{c} = v.{c}" for c in columns)
    conn.exec_driver_sql(f"UPDATE {table.name} SET {sets} FROM json_populate_recordset(NULL::{table.name}, %s) AS v "
                         f"WHERE {table.name}.{key} = v.{key}", (document,))
