"""Cataloguing from an ISBN: look-ups over Z39.50 (YAZ's yaz-client) and SRU against YAZ's own
test server (yaz-ztest, which no one here wrote; it serves its built-in MARC 21 records
whatever is asked, so our own records are checked as ISO 2709 files pymarc writes, read
back through the same code the look-ups use), servers that are down, hang or answer junk
named in words, and the dashboard's page adding copies the labels page then finds."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlparse

import pymarc
import pytest
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.services import cataloguing
from bookcorner.central.services.cataloguing import Server
from tests.central.catalogue_servers import free_port

ISBN = "9787020002207"


def field(tag: str, *pairs: str, indicators: tuple[str, str] = (" ", " ")) -> pymarc.Field:
    return pymarc.Field(tag=tag, indicators=list(indicators),
                        subfields=[pymarc.Subfield(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)])


def marc21_record() -> pymarc.Record:
    record = pymarc.Record(force_utf8=True)
    record.leader = pymarc.Leader("00000nam a2200000 a 4500")
    record.add_field(pymarc.Field(tag="001", data="nlc-001"), field("020", "a", "9787020002207 :", "c", "CNY59.70"),
                     field("084", "a", "I242.4", "2", "clc"), field("050", "a", "PL2727", "b", ".S2 1982"),
                     field("100", "a", "曹雪芹,", indicators=("1", " ")),
                     field("245", "a", "红楼梦 /", "b", "校注本", "c", "曹雪芹著", indicators=("1", "0")),
                     field("264", "a", "北京 :", "b", "人民文学出版社,", "c", "2008.", indicators=(" ", "1")))
    return record


def cnmarc_record(text=lambda words: words) -> pymarc.Record:
    """A CNMARC record as Chinese servers send them: leader position 9 blank; the text as
    UTF-8, or in another encoding when ``text`` turns it into that encoding's bytes (as
    Latin-1 characters: pymarc then writes them as they are, with the right lengths)."""
    utf8 = text("中") == "中"
    record = pymarc.Record(force_utf8=utf8, to_unicode=utf8)
    record.leader = pymarc.Leader("00000nam  2200000   450 ")

    def f(tag: str, *pairs: str, indicators: tuple[str, str] = (" ", " ")) -> pymarc.Field:
        return field(tag, *[text(p) for p in pairs], indicators=indicators)

    record.add_field(pymarc.Field(tag="001", data="012345678"), f("010", "a", "978-7-5324-8577-6", "d", "CNY25.00"),
                     f("200", "a", "草房子", "e", "长篇小说", "f", "曹文轩著", indicators=("1", " ")),
                     f("210", "a", "上海", "c", "少年儿童出版社", "d", "2019"),
                     f("690", "a", "I287.45", "v", "5"), f("701", "a", "曹文轩", "4", "著", indicators=(" ", "0")),
                     f("905", "a", "XX小学", "d", "I287.45", "e", "C12"))
    return record


def blank_position_9(data: bytes) -> bytes:
    return data[:9] + b" " + data[10:]


def test_marc21_and_cnmarc_records_with_chinese_text_fill_the_form():
    utf8, blank9 = marc21_record().as_marc(), blank_position_9(cnmarc_record().as_marc())
    gb = cnmarc_record(lambda words: words.encode("gb18030").decode("latin-1")).as_marc()  # an older server's
    assert utf8[9:10] == b"a" and blank9[9:10] == b" " and gb[9:10] == b" " and "草房子".encode("gb18030") in gb
    records = cataloguing.read_iso2709(utf8 + blank9)
    assert len(records) == 2
    western = cataloguing.draft_of(records[0], "NLC")
    assert (western.isbn, western.title, western.author, western.publisher, western.year, western.clc,
            western.call_number, western.format) == ("9787020002207", "红楼梦 : 校注本", "曹雪芹", "人民文学出版社",
                                                      "2008", "I242.4", "PL2727 .S2 1982", "MARC 21")
    chinese = cataloguing.draft_of(records[1], "NLC")
    assert (chinese.isbn, chinese.title, chinese.author, chinese.publisher, chinese.year, chinese.clc,
            chinese.call_number, chinese.format) == ("978-7-5324-8577-6", "草房子 : 长篇小说", "曹文轩著",
                                                      "少年儿童出版社", "2019", "I287.45", "I287.45/C12", "CNMARC")
    from_gb = cataloguing.draft_of(cataloguing.read_iso2709(gb)[0])
    assert (from_gb.title, from_gb.publisher) == ("草房子 : 长篇小说", "少年儿童出版社")
    no_905 = cnmarc_record()
    no_905.remove_fields("905", "200")
    no_905.add_field(field("200", "a", "草房子"))
    plain = cataloguing.draft_of(cataloguing.read_iso2709(blank_position_9(no_905.as_marc()))[0])
    assert (plain.author, plain.call_number) == ("曹文轩", "I287.45")  # 701$a, and the CLC class as the call number


def servers_on(ztest, silent_server, junk_server) -> dict[str, Server]:
    return {"z": Server("YAZ Z39.50", "z3950", "127.0.0.1", ztest.port, "Default", "marc21"),
            "sru": Server("YAZ SRU", "sru", "127.0.0.1", ztest.port, "Default", "marc21"),
            "z-cnmarc": Server("YAZ UNIMARC", "z3950", "127.0.0.1", ztest.port, "Default", "cnmarc"),
            "down-z": Server("Down", "z3950", "127.0.0.1", free_port(), "Default"),
            "down-sru": Server("Down", "sru", "127.0.0.1", free_port(), "Default"),
            "silent-z": Server("Silent", "z3950", "127.0.0.1", silent_server.port, "Default"),
            "silent-sru": Server("Silent", "sru", "127.0.0.1", silent_server.port, "Default"),
            "junk-z": Server("Junk", "z3950", "127.0.0.1", junk_server.port, "Default"),
            "junk-sru": Server("Junk", "sru", "127.0.0.1", junk_server.port, "Default")}


def test_yaz_ztest_answers_over_z3950_and_sru(ztest, silent_server, junk_server):
    found = servers_on(ztest, silent_server, junk_server)
    for key in ("z", "sru", "z-cnmarc"):
        drafts = cataloguing.search(found[key], ISBN, timeout=10)
        assert drafts, key
        first = drafts[0]  # yaz-ztest's first built-in record (its 260 has "Penguin" in $a, the place: no publisher)
        assert (first.title, first.author, first.publisher, first.call_number, first.format, first.source) == (
            "How to program a computer", "Jack Collins", "", "123-xyz", "MARC 21", found[key].name), key
        assert len(drafts) <= cataloguing.MAX_RECORDS


def test_down_hanging_and_junk_servers_are_named_with_the_reason(ztest, silent_server, junk_server):
    found = servers_on(ztest, silent_server, junk_server)
    expected = {"down-z": cataloguing.DOWN, "down-sru": cataloguing.DOWN, "silent-z": cataloguing.SLOW,
                "silent-sru": cataloguing.SLOW, "junk-z": cataloguing.GARBAGE, "junk-sru": cataloguing.GARBAGE}
    for key, reason in expected.items():
        started = time.monotonic()
        with pytest.raises(cataloguing.Failed) as failed:
            cataloguing.search(found[key], ISBN, timeout=2)
        assert str(failed.value) == reason, key
        assert time.monotonic() - started < 6, key


def test_the_page_looks_up_adds_the_copies_and_links_to_their_labels(board, librarian, ztest, silent_server,
                                                                      junk_server):
    client, name, _token = librarian
    found = servers_on(ztest, silent_server, junk_server)
    for key in ("z", "down-sru", "junk-z"):
        s = found[key]
        answer = client.post("/cataloguing/servers", {"csrf": client.csrf(), "name": f"{s.name} {key}",
                                                      "protocol": s.protocol, "host": s.host, "port": str(s.port),
                                                      "database": s.database, "syntax": s.syntax})
        assert answer.status_code == 303, answer.text[-600:]
    wrong = client.post("/cataloguing/servers", {"csrf": client.csrf(), "name": "", "protocol": "gopher",
                                                 "host": "-", "port": "99999", "database": "", "syntax": "x"})
    assert wrong.status_code == 422 and "Give the server a name." in wrong.text and "1 to 65535" in wrong.text

    page = client.get("/cataloguing", params={"isbn": "978-7-02-000220-7"})
    assert page.status_code == 200
    assert 'value="How to program a computer"' in page.text and 'value="Jack Collins"' in page.text
    assert "Down down-sru gave nothing: the server did not accept the connection" in page.text
    assert "Junk junk-z gave nothing: the server answered something that is not a catalogue" in page.text
    bad = client.get("/cataloguing", params={"isbn": "12345"})
    assert bad.status_code == 422 and "12345 is not an ISBN" in bad.text

    form = {"csrf": client.csrf(), "isbn": ISBN, "title": "红楼梦", "author": "曹雪芹", "publisher": "人民文学出版社",
            "year": "2008", "clc": "I242.4", "call_number": "I242.4/C12", "source": "YAZ Z39.50 z",
            "copies": "T0001001\nt0001002\n"}
    added = client.post("/cataloguing/add", form)
    assert added.status_code == 200 and 'id="added"' in added.text, added.text[-600:]
    link = added.text.split('id="labels-link" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert parse_qs(urlparse(link).query)["codes"] == ["T0001001\nT0001002"]
    labels = client.get(link.removeprefix("/dashboard"))
    assert labels.status_code == 200 and "T0001001" in labels.text and "红楼梦" in labels.text
    assert "I242.4/C12" in labels.text
    since = client.get("/labels", params={"choose": "since", "since": db.now().date().isoformat()})
    assert "T0001002" in since.text

    with board.store.reading() as conn:
        rows = {row.item_id: row for row in conn.execute(select(db.catalogue).where(
            db.catalogue.c.item_id.in_(["T0001001", "T0001002"])))}
        audit = conn.execute(select(db.audit_log.c.who, db.audit_log.c.detail).where(
            db.audit_log.c.action == "cataloguing.add")).all()
        servers_audit = conn.execute(select(db.audit_log.c.action).where(
            db.audit_log.c.action == "cataloguing.server")).all()
    assert set(rows) == {"T0001001", "T0001002"} and all(row.added_at is not None for row in rows.values())
    record = json.loads(rows["T0001001"].data)
    assert (record["barcode"], record["title"], record["isbn13"], record["isbn10"], record["call_number"]) == (
        "T0001001", "红楼梦", ISBN, "702000220X", "I242.4/C12")
    assert audit[-1].who == name and json.loads(audit[-1].detail)["publisher"] == "人民文学出版社"
    assert len(servers_audit) >= 3

    again = client.post("/cataloguing/add", {**form, "copies": "T0001002 T0001003"})
    assert again.status_code == 422 and "Already in the catalogue: T0001002." in again.text
    twice = client.post("/cataloguing/add", {**form, "copies": "T9 T9"})
    assert twice.status_code == 422 and "Scanned twice: T9." in twice.text
    isbn_copy = client.post("/cataloguing/add", {**form, "copies": ISBN})
    assert isbn_copy.status_code == 422 and "is an ISBN" in isbn_copy.text
    with board.store.reading() as conn:
        assert conn.execute(select(db.catalogue.c.item_id).where(db.catalogue.c.item_id == "T0001003")).first() is None


def test_offline_or_no_answer_leaves_an_empty_form_to_type(board, librarian):
    client, _name, _token = librarian
    current = cataloguing.servers(board.store)
    for server in current:
        assert client.post("/cataloguing/servers/remove", {"csrf": client.csrf(),
                                                           "name": server.name}).status_code == 303
    closed = free_port()
    saved = client.post("/cataloguing/servers", {"csrf": client.csrf(), "name": "国家图书馆", "protocol": "z3950",
                                                 "host": "127.0.0.1", "port": str(closed), "database": "UCS01U",
                                                 "syntax": "cnmarc"})
    assert saved.status_code == 303
    page = client.get("/cataloguing", params={"isbn": "7-02-000220-x", "lang": "zh_CN"})  # an ISBN-10 typed
    assert page.status_code == 200
    assert "国家图书馆" in page.text and 'id="type-it"' in page.text and f'value="{ISBN}"' in page.text
    assert 'id="draft-title" value=""' in page.text
