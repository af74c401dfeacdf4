"""A self-check machine lends, renews and takes back class-corner books through bookcorner's
SIP2 server: the machine is the Sip2 client from PyPI, over a real socket, in UTF-8 and in
GB18030; what it did shows up as loans and events like any kiosk's."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import requests
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import ReferenceDelta, decode
from tests.central.pushes import KioskClient
from tests.sip2.conftest import BOOK, CARD, LOGIN, NAME, RENEWED_BOOK, SECOND_BOOK, SECOND_TITLE, TITLE


def _login(client, server) -> None:
    answer = client.sip_login_response(client.get_response(client.sip_login_request(LOGIN, server.password)))
    assert answer["fixed"]["Ok"] == "1"


def _events(server) -> list:
    with server.central.store.reading() as conn:
        return conn.execute(select(db.events.c.seq, db.events.c.type, db.events.c.outcome, db.events.c.payload)
                            .where(db.events.c.kiosk_id == f"sip2-{LOGIN}").order_by(db.events.c.seq)).all()


def test_a_self_check_machine_lends_and_takes_back_a_book(sip2_server, client):
    _login(client, sip2_server)
    status = client.sip_sc_status_response(client.get_response(client.sip_sc_status_request()))
    assert status["fixed"]["OnlineStatus"] == "Y" and status["fixed"]["ProtocolVersion"] == "2.00"
    assert status["variable"]["BX"] == ["YYYNYYYYYNYNNNYN"]

    client.patron = CARD
    patron = client.sip_patron_status_response(client.get_response(client.sip_patron_status_request()))
    assert patron["variable"]["AE"] == [NAME] and patron["variable"]["BL"] == ["Y"]
    assert patron["variable"]["AO"] == ["一小"]  # the institution, echoed in the machine's own encoding
    assert patron["fixed"]["PatronStatus"] == " " * 14

    lent = client.sip_checkout_response(client.get_response(client.sip_checkout_request(BOOK)))
    assert lent["fixed"]["Ok"] == "1", lent
    assert lent["variable"]["AJ"] == [TITLE] and lent["variable"]["AB"] == [BOOK]
    due = datetime.strptime(lent["variable"]["AH"][0], "%Y%m%d    %H%M%S").date()
    assert due > date.today()

    info = client.sip_patron_information_response(client.get_response(client.sip_patron_information_request("charged")))
    assert info["variable"]["AU"] == [BOOK] and info["fixed"]["ChargedItemsCount"] == "0001"
    item = client.sip_item_information_response(client.get_response(client.sip_item_information_request(BOOK)))
    assert item["fixed"]["CirculationStatus"] == "04" and item["variable"]["AJ"] == [TITLE]

    back = client.sip_checkin_response(client.get_response(client.sip_checkin_request(BOOK)))
    assert back["fixed"]["Ok"] == "1" and back["variable"]["AJ"] == [TITLE]
    item = client.sip_item_information_response(client.get_response(client.sip_item_information_request(BOOK)))
    assert item["fixed"]["CirculationStatus"] == "03"

    events = _events(sip2_server)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # the account's gap-free sequence
    assert [(e.type, e.outcome) for e in events[-2:]] == [("loan.checked_out", "applied"), ("loan.checked_in", "applied")]
    ended = client.get_response(client.sip_end_patron_session_request())
    assert ended.startswith("36Y")


def test_a_loan_made_over_sip2_reaches_the_kiosks_and_the_koc_export(sip2_server, client):
    _login(client, sip2_server)
    client.patron = CARD
    lent = client.sip_checkout_response(client.get_response(client.sip_checkout_request(SECOND_BOOK)))
    assert lent["fixed"]["Ok"] == "1" and lent["variable"]["AJ"] == [SECOND_TITLE]

    # a kiosk pulling its reference data over HTTP sees the loan
    token = sip2_server.central.add_kiosk(f"corner-{sip2_server.encoding}")
    pulled = requests.get(f"{sip2_server.central.url}/v1/reference", headers=bearer(token), timeout=30)
    assert pulled.status_code == 200
    loans = decode(pulled.content, ReferenceDelta).loans
    assert [(loan.item_id, loan.patron_id) for loan in loans if loan.item_id == "I-SIP2-1"] == [("I-SIP2-1", "S-SIP2-01")]

    # and so do the loans table (the reports) and the .koc export
    from bookcorner.central.services.exports import koc_lines
    from bookcorner.central.zone import school_zone

    store = sip2_server.central.store
    with store.reading() as conn:
        kiosk = conn.execute(select(db.loans.c.kiosk_id).where(db.loans.c.item_id == "I-SIP2-1",
                                                               db.loans.c.returned_at.is_(None))).scalar_one()
    assert kiosk == f"sip2-{LOGIN}"
    today = date.today()
    lines = list(koc_lines(store, today - timedelta(days=1), today + timedelta(days=1), school_zone(store), "t"))
    assert any(line.endswith(f"\tissue\t{CARD}\t{SECOND_BOOK}") for line in lines), lines

    back = client.sip_checkin_response(client.get_response(client.sip_checkin_request(SECOND_BOOK)))
    assert back["fixed"]["Ok"] == "1"


def test_a_book_lent_by_a_kiosk_last_week_is_renewed_at_the_self_check(sip2_server, client):
    kiosk = KioskClient(sip2_server.central.url, f"k-{sip2_server.encoding}",
                        sip2_server.central.add_kiosk(f"k-{sip2_server.encoding}"))
    kiosk.start = datetime.now(timezone.utc) - timedelta(days=6)
    due = date.today() + timedelta(days=1)
    lent = kiosk.event("loan.checked_out", {"item_id": "I-SIP2-2", "patron_id": "S-SIP2-01", "card_id": CARD,
                                            "code": RENEWED_BOOK, "due": due.isoformat(), "warnings": []},
                       minutes=0, actor="S-SIP2-01")
    assert kiosk.push([lent]).json()["results"][0]["outcome"] == "applied"

    _login(client, sip2_server)
    client.patron = CARD
    renewed = client.sip_renew_response(client.get_response(client.sip_renew_request(RENEWED_BOOK)))
    assert renewed["fixed"]["Ok"] == "1" and renewed["fixed"]["RenewalOk"] == "Y", renewed
    new_due = datetime.strptime(renewed["variable"]["AH"][0], "%Y%m%d    %H%M%S").date()
    assert new_due > due
    again = client.sip_renew_response(client.get_response(client.sip_renew_request(RENEWED_BOOK)))
    assert again["fixed"]["Ok"] == "0" and again["variable"]["AF"]  # a reason for the screen
    assert _events(sip2_server)[-1].type == "loan.renewed"
    back = client.sip_checkin_response(client.get_response(client.sip_checkin_request(RENEWED_BOOK)))
    assert back["fixed"]["Ok"] == "1"


def test_the_rules_refuse_at_the_self_check_as_at_the_kiosk(sip2_server, client):
    _login(client, sip2_server)
    client.patron = "no-such-card"
    patron = client.sip_patron_status_response(client.get_response(client.sip_patron_status_request()))
    assert patron["variable"]["BL"] == ["N"] and patron["fixed"]["PatronStatus"][0] == "Y"
    assert patron["variable"]["AF"][0]
    refused = client.sip_checkout_response(client.get_response(client.sip_checkout_request(BOOK)))
    assert refused["fixed"]["Ok"] == "0" and refused["variable"]["AH"] == [""]

    client.patron = CARD
    unknown = client.sip_checkout_response(client.get_response(client.sip_checkout_request("9999999999999")))
    assert unknown["fixed"]["Ok"] == "0" and unknown["variable"]["AF"][0]
    item = client.sip_item_information_response(client.get_response(client.sip_item_information_request("nope")))
    assert item["fixed"]["CirculationStatus"] == "01"
    not_lent = client.sip_checkin_response(client.get_response(client.sip_checkin_request(BOOK)))
    assert not_lent["fixed"]["Ok"] == "0" and not_lent["fixed"]["Alert"] == "Y"


def _patron_status(client, language: str) -> dict:
    client.language = language
    return client.sip_patron_status_response(client.get_response(client.sip_patron_status_request()))


def test_screen_messages_and_print_lines_speak_the_language_the_machine_asks_for(sip2_server, client):
    """The machine's language field (001 English, 019 Chinese; 000 or a language bookcorner does
    not speak: the school's, Chinese unless its notices are set otherwise) decides AF and AG, for
    the patron's session; the answer's own language field says which it is in."""
    _login(client, sip2_server)
    client.patron = "no-such-card"
    for asked, answered, words in (("001", "001", "This card is not known: ask the librarian"),
                                   ("019", "019", "不认识这张卡:请找图书管理员"),
                                   ("000", "019", "不认识这张卡:请找图书管理员"),
                                   ("002", "019", "不认识这张卡:请找图书管理员")):  # French: not spoken here
        patron = _patron_status(client, asked)
        assert (patron["fixed"]["Language"], patron["variable"]["AF"]) == (answered, [words]), asked

    client.patron = CARD
    for asked, due_line in (("001", "Due back on {due}"), ("019", "请在 {due} 前还书")):
        client.language = asked
        info = client.sip_patron_information_response(client.get_response(
            client.sip_patron_information_request("charged")))
        assert info["fixed"]["Language"] == asked
        lent = client.sip_checkout_response(client.get_response(client.sip_checkout_request(BOOK)))  # no language field
        assert lent["fixed"]["Ok"] == "1", lent
        due = datetime.strptime(lent["variable"]["AH"][0], "%Y%m%d    %H%M%S").date().isoformat()
        assert lent["variable"]["AF"] == lent["variable"]["AG"] == [due_line.format(due=due)]
        back = client.sip_checkin_response(client.get_response(client.sip_checkin_request(BOOK)))
        assert back["fixed"]["Ok"] == "1"
        not_lent = client.sip_checkin_response(client.get_response(client.sip_checkin_request(BOOK)))
        assert not_lent["variable"]["AF"] == [{"001": "This book was not on loan", "019": "这本书没有被借出"}[asked]]
    client.get_response(client.sip_end_patron_session_request())


def test_the_schools_language_is_that_of_its_notices(sip2_server, client):
    from bookcorner.central.services import notices

    store = sip2_server.central.store
    before = notices.schedule(store)
    notices.save_schedule(store, "Ms Li", notices.Schedule(before.weekdays, before.at, "en"), db.now())
    try:
        _login(client, sip2_server)  # a new session reads it
        client.patron = "no-such-card"
        patron = _patron_status(client, "000")
        assert (patron["fixed"]["Language"], patron["variable"]["AF"]) == (
            "001", ["This card is not known: ask the librarian"])
        assert _patron_status(client, "019")["fixed"]["Language"] == "019"
    finally:
        notices.save_schedule(store, "Ms Li", before, db.now())
