"""A real central server serving SIP2 beside HTTP (``bookcorner central --sip2-port 0``), on
SQLite, with the demo school plus a patron and books whose names are Chinese characters
that GB18030 writes with the byte of ``|`` (東, 瑋, 墊); and a SIP2 account on it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest

from tests.central.harness import CentralServer, database

#: the patron and books the SIP2 tests lend (besides the demo school's)
CARD, PATRON, NAME = "0009990001", "S-SIP2-01", "王瑋東"
BOOK, TITLE = "30732000999019", "東方墊子的故事"
SECOND_BOOK, SECOND_TITLE = "30732000999027", "瑋瑋和小猫钓鱼"
RENEWED_BOOK = "30732000999035"
LOGIN = "selfcheck-1"


@dataclass
class Sip2Server:
    central: CentralServer
    port: int
    password: str
    encoding: str


def _school_document():
    from bookcorner.central.reference import document_from_reference
    from bookcorner.demo.school import build_demo_school
    from bookcorner.protocol.messages import CardRecord, ItemRecord, PatronRecord

    school = build_demo_school(date.today())
    document = document_from_reference(school.reference(), school.name)
    document.patrons.append(PatronRecord(PATRON, NAME, "student", class_name="三年级(2)班"))
    document.cards.append(CardRecord(CARD, PATRON))
    document.items += [ItemRecord(f"I-SIP2-{n}", title, barcode=code, home_corner="三(2)")
                       for n, (code, title) in enumerate([(BOOK, TITLE), (SECOND_BOOK, SECOND_TITLE),
                                                          (RENEWED_BOOK, "西游记")])]
    return document


def start(folder, encoding: str, idle_s: float = 3.0, *extra: str, url: str | None = None) -> Sip2Server:
    from bookcorner.central.db import Store
    from bookcorner.central.reference import load_document
    from bookcorner.central.services.sip2_accounts import add_account

    url = url or f"sqlite:///{folder / 'central.db'}"
    store = Store(url)
    store.migrate()
    load_document(store, _school_document())
    password = add_account(store, LOGIN)
    store.dispose()
    central = CentralServer(url, folder / "server.log", "--sip2-port", "0", "--sip2-encoding", encoding,
                            "--sip2-idle-timeout", str(idle_s), *extra).start()
    # the line after the HTTP address (readline: the first one may have buffered it already; the
    # server prints both at once, and an exit ends the read)
    line = central.process.stdout.readline().decode()
    if "SIP2 listening on" not in line:
        central.stop()
        raise RuntimeError(f"no SIP2 listener: {line!r}")
    return Sip2Server(central, int(line.rsplit(":", 1)[1]), password, encoding)


@pytest.fixture(scope="module", params=[("sqlite", "utf-8"), ("postgresql", "gb18030")], ids=lambda p: "-".join(p))
def sip2_server(request, tmp_path_factory) -> Iterator[Sip2Server]:
    """Each encoding once, each database once (PostgreSQL when one answers, see tests.central.harness)."""
    backend, encoding = request.param
    folder = tmp_path_factory.mktemp(f"sip2-{encoding}")
    with database(backend, folder) as url:
        server = start(folder, encoding, url=url)
        try:
            yield server
        finally:
            server.central.stop()


@pytest.fixture(scope="module")
def utf8_server(tmp_path_factory) -> Iterator[Sip2Server]:
    server = start(tmp_path_factory.mktemp("sip2-bad-input"), "utf-8", idle_s=1.5)
    try:
        yield server
    finally:
        server.central.stop()


@pytest.fixture
def client(sip2_server, tmp_path):
    """The Sip2 client from PyPI (no one here wrote it), connected in plain TCP."""
    from Sip2.sip2 import Sip2

    c = Sip2()
    c.hostName, c.hostPort, c.tlsEnable = "127.0.0.1", sip2_server.port, False
    c.hostEncoding, c.logfile_path, c.socketTimeout = sip2_server.encoding, str(tmp_path), 15
    c.institutionId = "一小"
    c.connect()
    yield c
    c.disconnect()


