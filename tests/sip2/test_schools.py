"""A district's schools over SIP2 (issue 15): a self-check machine of one school logs in
with its school's login (``<school>.<name>``) and lends and takes back that school's books,
recorded in that school's tables only; the first school's machine goes on as before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.reference import load_document
from bookcorner.central.schools import Schools
from bookcorner.central.services.sip2_accounts import add_account, login_of
from tests.central.harness import BACKENDS, database
from tests.sip2.conftest import BOOK, CARD, LOGIN, Sip2Server, _school_document, start


@pytest.fixture(scope="module", params=BACKENDS)
def district(request, tmp_path_factory) -> Iterator[tuple[Sip2Server, str, db.Store]]:
    """A server holding the first school and school ``east`` (each with the same card and books),
    with a SIP2 account in each: the first school's fixture, and east's password."""
    folder = tmp_path_factory.mktemp(f"sip2-district-{request.param}")
    with database(request.param, folder) as url:
        root = db.Store(url)
        root.migrate()
        schools = Schools(root)
        schools.add("east", "East Primary")
        east = schools.store("east")
        load_document(east, _school_document())
        password = add_account(east, LOGIN)
        server = start(folder, "utf-8", url=url)
        try:
            yield server, password, east
        finally:
            server.central.stop()
            schools.dispose()
            root.dispose()


def _client(server: Sip2Server, tmp_path):
    from Sip2.sip2 import Sip2

    c = Sip2()
    c.hostName, c.hostPort, c.tlsEnable = "127.0.0.1", server.port, False
    c.hostEncoding, c.logfile_path, c.socketTimeout = server.encoding, str(tmp_path), 15
    c.connect()
    return c


def _loans_of(store: db.Store) -> list[tuple[str, str | None]]:
    with store.reading() as conn:
        found = conn.execute(select(db.loans.c.kiosk_id, db.loans.c.returned_at)
                             .join(db.catalogue, db.catalogue.c.item_id == db.loans.c.item_id)).all()
    return [(row.kiosk_id, row.returned_at) for row in found]


def test_a_schools_self_check_lends_in_its_own_school_only(district, tmp_path):
    server, password, east = district
    login = login_of(east, LOGIN)
    assert login == f"east.{LOGIN}"
    client = _client(server, tmp_path)
    try:
        # the account's bare name is the first school's account, whose password this is not
        refused = client.sip_login_response(client.get_response(client.sip_login_request(LOGIN, password)))
        assert refused["fixed"]["Ok"] == "0"
        answer = client.sip_login_response(client.get_response(client.sip_login_request(login, password)))
        assert answer["fixed"]["Ok"] == "1"
        client.patron = CARD
        lent = client.sip_checkout_response(client.get_response(client.sip_checkout_request(BOOK)))
        assert lent["fixed"]["Ok"] == "1", lent
    finally:
        client.disconnect()
    assert [kiosk for kiosk, returned in _loans_of(east) if returned is None] == [f"sip2-{login}"]
    assert [kiosk for kiosk, returned in _loans_of(server.central.store) if kiosk.startswith("sip2-")] == []
    # the first school's machine: its own account, its own books, as before
    first = _client(server, tmp_path)
    try:
        answer = first.sip_login_response(first.get_response(first.sip_login_request(LOGIN, server.password)))
        assert answer["fixed"]["Ok"] == "1"
        first.patron = CARD
        item = first.sip_item_information_response(first.get_response(first.sip_item_information_request(BOOK)))
        assert item["fixed"]["CirculationStatus"] == "03"  # on the shelf here: east's loan is east's
    finally:
        first.disconnect()
