"""A real central server for tests: ``bookcorner central`` as its own process, listening
on a free port, on SQLite (always) or on PostgreSQL (when one answers at 127.0.0.1:5432;
each test session gets its own database, dropped afterwards)."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

PG_ADMIN = os.environ.get("BOOKCORNER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used here, or None when it can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install --no-deps -r deploy/requirements-central.txt)"
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as error:  # refused, no such user or database...
        return f"no PostgreSQL at {PG_ADMIN} ({str(error).strip().splitlines()[0]})"
    return None


@contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg

    name = f"bc_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    for attempt in range(20):
        try:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            break
        except psycopg.errors.ObjectInUse:  # another worker's CREATE DATABASE is copying template1 right now
            if attempt == 19:
                raise
            time.sleep(0.1 * (attempt + 1))
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'central.db'}"
        return
    problem = postgres_problem()
    if problem:
        pytest.skip(f"PostgreSQL tests skipped: {problem}")
    with postgres_database() as url:
        yield url


class CentralServer:
    """``bookcorner central --port 0`` in a subprocess; ``url`` once it listens."""

    def __init__(self, db_url: str, log_path: Path, *extra: str) -> None:
        self.db_url, self.log_path, self.extra = db_url, log_path, extra
        self.process: subprocess.Popen | None = None
        self.url = ""
        self._store = None

    def start(self, timeout: float = 30.0) -> CentralServer:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bookcorner", "central", "--db", self.db_url, "--port", "0",
             "--log-level", "warning", *self.extra],
            stdout=subprocess.PIPE, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                break
            if self.process.poll() is not None:
                break
        text = line.decode().strip()
        if "://" not in text:
            self.stop()
            raise RuntimeError(f"the central server did not start: {text!r}; log: {self.log_path.read_text()[-2000:]}")
        self.url = text[text.index("http"):]
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout:
            self.process.stdout.close()
        if self._store is not None:
            self._store.dispose()
            self._store = None

    @property
    def store(self):
        from bookcorner.central.db import Store

        if self._store is None:
            self._store = Store(self.db_url, pool_size=2)
        return self._store

    def add_kiosk(self, kiosk_id: str) -> str:
        from bookcorner.central.kiosks import add_kiosk

        return add_kiosk(self.store, kiosk_id)

    def add_librarian(self, name: str = "librarian") -> str:
        from bookcorner.central.kiosks import add_librarian

        return add_librarian(self.store, name)


def counted_since(root, schools: int, moment: datetime, timeout: float = 30.0) -> dict[str, datetime]:
    """Waits until the server's job has counted every one of the district's ``schools`` figures
    for the district's page again since ``moment`` (``root``: the implicit school's store);
    when each school's were counted."""
    import sqlalchemy

    from bookcorner.central.schools import district_figures

    deadline = time.monotonic() + timeout
    while True:
        with root.reading() as conn:
            counted = {slug: at for slug, at in conn.execute(
                sqlalchemy.select(district_figures.c.slug, district_figures.c.counted_at))}
        if len(counted) == schools and all(at > moment for at in counted.values()):
            return counted
        assert time.monotonic() < deadline, f"the district's figures were not counted again since {moment}: {counted}"
        time.sleep(0.2)


@contextmanager
def running_server(backend: str, folder: Path) -> Iterator[CentralServer]:
    """A real central server on a fresh database of ``backend``, stopped afterwards."""
    with database(backend, folder) as url:
        server = CentralServer(url, folder / "server.log").start()
        server.backend = backend
        try:
            yield server
        finally:
            server.stop()


def hold_a_turn(url: str, token: str) -> socket.socket:
    """A slow kiosk: a push whose body has not all arrived yet holds one of the server's turns."""
    parts = urlsplit(url)
    conn = socket.create_connection((parts.hostname, parts.port))
    conn.sendall(b"POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 100\r\n\r\n{")
    return conn


def let_go(conn: socket.socket) -> bytes:
    """The rest of the slow body (not JSON: answered 400, and the turn is free again)."""
    conn.sendall(b" " * 99)
    answer = conn.recv(4096)
    conn.close()
    return answer


def store_events(conn, rows: list[dict]) -> None:
    """Events written straight into the database (as a test's history), with their ids kept in
    ``event_ids`` on PostgreSQL as ingest keeps them (central.db.record_event_ids)."""
    from bookcorner.central import db

    conn.execute(db.events.insert(), rows)
    if conn.dialect.name == "postgresql":
        conn.execute(db.event_ids.insert(), [{key: row[key] for key in ("event_id", "kiosk_id", "seq", "received_at")}
                                             for row in rows])


def partitions_of(conn, table: str) -> set[str]:
    """The names of a partitioned table's partitions (PostgreSQL's catalogue)."""
    from sqlalchemy import text

    return set(conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:t)"), {"t": table}).scalars())
