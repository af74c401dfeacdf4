"""Cataloguing from an ISBN: the record looked up on the catalogue servers the librarian
configured (Z39.50 or SRU: the National Library of China and other public catalogues),
read into a form (title, author, publisher, year, CLC class, call number), and the copies
added to the catalogue with their accession barcodes.

The protocols. SRU (searchRetrieve over HTTP, records as MARCXML) with ``requests``; the
records read with pymarc (``parse_xml_to_array``). Z39.50 with YAZ's own client,
``yaz-client`` (Debian's ``yaz``, Index Data's maintained toolkit that the Z39.50 world runs
on), driven with a command file and a time limit: no Python Z39.50 library is maintained
(PyZ3950 last released in 2004, its forks in 2011 and 2017). The ISO 2709 records it
writes are read with pymarc: UTF-8 where the leader says so (position 9 'a') or where the
bytes are valid UTF-8 (CNMARC servers often leave position 9 blank), else GB18030 (older
Chinese servers), else MARC-8.

The fields. MARC 21: title 245$a : $b, author 100$a (else 110$a, 700$a), publisher and
year 264$b/$c (else 260$b/$c), CLC class 084$a with $2 clc, call number 050$a$b (else
082$a, else the CLC class). CNMARC (and UNIMARC: a 200 and no 245): title 200$a : $e,
author 200$f (else 701$a, 700$a), publisher and year 210$c/$d, CLC class 690$a, call
number 905$d/$e (class number and book mark), else the CLC class.

A server that does not answer (down, hanging past the time limit, or answering what is
no Z39.50 or SRU) is named with the reason in words (the servers are asked at once); none answering leaves the form empty
for the librarian to type. Adding copies writes one catalogue record per accession barcode,
in one transaction under one new reference revision (what kiosks pull), with an audit
record; ``added_at`` is set, so the labels page finds the new copies.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.engine import Connection
from stdnum import isbn as stdnum_isbn

from bookcorner.central import db
from bookcorner.central.ingest import next_revision, upsert
from bookcorner.circulation.codes import isbn13_of, normalise
from bookcorner.i18n import N_
from bookcorner.protocol.messages import ItemRecord

log = logging.getLogger(__name__)

SERVERS_KEY = "catalogue_servers"
PROTOCOLS = ("z3950", "sru")
SYNTAXES = ("marc21", "cnmarc", "unimarc")
#: the record syntax a Z39.50 server is asked for (CNMARC travels under UNIMARC's identifier)
_YAZ_FORMAT = {"marc21": "usmarc", "cnmarc": "unimarc", "unimarc": "unimarc"}
TIMEOUT_S = 10.0
MAX_SERVERS = 12
MAX_RECORDS = 5
MAX_COPIES = 50
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,250})$")
_DATABASE = re.compile(r"^[A-Za-z0-9_.:/-]{1,80}$")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9._:-]{1,80}$")
_SRU = "{http://www.loc.gov/zing/srw/}"
_SRU2 = "{http://docs.oasis-open.org/ns/search-ws/sruResponse}"

#: why a server gave nothing (shown through ``_``)
DOWN = N_("the server did not accept the connection (it is down, or the address or port is wrong)")
SLOW = N_("the server did not answer in time")
GARBAGE = N_("the server answered something that is not a catalogue's answer")
REFUSED = N_("the server refused the search")
NO_CLIENT = N_("Z39.50 needs the yaz-client program (Debian package yaz), which this computer lacks")
UNREADABLE = N_("the server's records could not be read")


class Server(msgspec.Struct, frozen=True):
    name: str
    protocol: str
    host: str
    port: int
    database: str
    syntax: str = "marc21"


@dataclass
class Draft:
    """A book as the form shows it, from a record or typed."""

    isbn: str = ""
    title: str = ""
    author: str = ""
    publisher: str = ""
    year: str = ""
    clc: str = ""
    call_number: str = ""
    #: where it came from: the server's name ("" typed)
    source: str = ""
    #: "MARC 21" or "CNMARC"
    format: str = ""


@dataclass
class Lookup:
    drafts: list[Draft] = field(default_factory=list)
    #: (server name, why it gave nothing: one of the module's reasons)
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: servers that answered and held nothing for the ISBN
    empty: list[str] = field(default_factory=list)


class Refused(Exception):
    """Adding is refused (the message is for the librarian, through ``_``)."""

    def __init__(self, message: str, **values: str) -> None:
        super().__init__(message)
        self.values = values


class Failed(Exception):
    """A server gave nothing (the reason is one of the module's reasons)."""


# --- settings: the servers ----------------------------------------------------------------------


def servers(store: db.Store) -> list[Server]:
    with store.reading() as conn:
        text = conn.execute(select(db.meta.c.value).where(db.meta.c.key == SERVERS_KEY)).scalar()
    try:
        return msgspec.json.decode(text, type=list[Server]) if text else []
    except (msgspec.DecodeError, msgspec.ValidationError):
        log.warning("the catalogue servers' setting cannot be read: none are used")
        return []


def parse_server(fields: dict[str, str]) -> tuple[Server | None, dict[str, str]]:
    """A server from the settings form, and what is wrong with each field."""
    errors: dict[str, str] = {}
    name = " ".join(fields.get("name", "").split())[:80]
    host, database = fields.get("host", "").strip(), fields.get("database", "").strip()
    protocol, syntax, port = fields.get("protocol", ""), fields.get("syntax", ""), fields.get("port", "").strip()
    if not name:
        errors["name"] = N_("Give the server a name.")
    if not _HOST.match(host):
        errors["host"] = N_("Give the server's address (a name such as opac.example.cn, or its IP address).")
    if not port.isdigit() or not 0 < int(port) < 65536:
        errors["port"] = N_("The port is a number from 1 to 65535 (Z39.50 is usually 210).")
    if not _DATABASE.match(database):
        errors["database"] = N_("Give the database's name as the server's librarian gave it (letters and digits).")
    if protocol not in PROTOCOLS:
        errors["protocol"] = N_("Choose Z39.50 or SRU.")
    if syntax not in SYNTAXES:
        errors["syntax"] = N_("Choose the records' format.")
    if errors:
        return None, errors
    return Server(name, protocol, host, int(port), database, syntax), {}


def save_servers(store: db.Store, who: str, chosen: list[Server], action: str, target: str) -> None:
    """Keep the servers (in the order asked) with an audit record of the change."""
    with store.writing() as conn:
        upsert(conn, db.meta, ["key"], [{"key": SERVERS_KEY, "value": msgspec.json.encode(chosen).decode("utf-8")}])
        conn.execute(db.audit_log.insert().values(
            at=db.now(), who=who, action=action, target=target[:120],
            detail=json.dumps({"servers": msgspec.to_builtins(chosen)}, ensure_ascii=False)))


def add_server(store: db.Store, who: str, server: Server) -> None:
    current = [s for s in servers(store) if s.name != server.name]
    if len(current) >= MAX_SERVERS:
        raise Refused(N_("At most {most} servers: remove one first."), most=str(MAX_SERVERS))
    save_servers(store, who, [*current, server], "cataloguing.server", server.name)


def remove_server(store: db.Store, who: str, name: str) -> None:
    current = servers(store)
    if name not in {s.name for s in current}:
        raise Refused(N_("There is no server of that name."))
    save_servers(store, who, [s for s in current if s.name != name], "cataloguing.server_removed", name)


# --- the records: MARC 21 and CNMARC into the form ---------------------------------------------


def _trim(text: str) -> str:
    return text.strip().rstrip(" /:;,.=").strip()


def _sub(record: Any, tags: Iterable[str], *codes: str, joined: str = " ") -> str:
    """The first of ``tags``' fields with any of subfields ``codes``, joined, ISBD punctuation trimmed."""
    for tag in tags:
        for found in record.get_fields(tag):
            parts = [_trim(value) for code in codes for value in found.get_subfields(code)]
            if any(parts):
                return joined.join(p for p in parts if p)
    return ""


def _year(text: str) -> str:
    found = re.search(r"\d{4}", text)
    return found.group(0) if found else ""


def _clc(record: Any) -> str:
    for found in record.get_fields("084"):
        if any(s.strip().lower() == "clc" for s in found.get_subfields("2")):
            return _trim(" ".join(found.get_subfields("a")))
    return ""


def draft_of(record: Any, source: str = "") -> Draft:
    """The form's fields from a MARC 21 or CNMARC (UNIMARC) record (see the module's words)."""
    if record.get_fields("245") or not record.get_fields("200"):
        isbn = _sub(record, ["020"], "a").split(" ")[0]
        clc = _clc(record)
        return Draft(isbn=isbn, title=_sub(record, ["245"], "a", "b", joined=" : "),
                     author=_sub(record, ["100", "110", "700"], "a"),
                     publisher=_sub(record, ["264", "260"], "b"), year=_year(_sub(record, ["264", "260"], "c")),
                     clc=clc, call_number=_sub(record, ["050"], "a", "b") or _sub(record, ["082"], "a") or clc,
                     source=source, format="MARC 21")
    clc = _sub(record, ["690"], "a")
    return Draft(isbn=_sub(record, ["010"], "a").split(" ")[0], title=_sub(record, ["200"], "a", "e", joined=" : "),
                 author=_sub(record, ["200"], "f") or _sub(record, ["701", "700"], "a"),
                 publisher=_sub(record, ["210"], "c"), year=_year(_sub(record, ["210"], "d")), clc=clc,
                 call_number=_sub(record, ["905"], "d", "e", joined="/") or clc, source=source, format="CNMARC")


def _decoded(raw: bytes) -> Any | None:
    """One ISO 2709 record read as UTF-8, else GB18030, else MARC-8 (None: none of them)."""
    import pymarc

    failures = []
    for options in ({"force_utf8": True}, {"file_encoding": "gb18030"}, {}):
        try:
            return pymarc.Record(raw, to_unicode=True, **options)
        except Exception as error:  # noqa: BLE001  (pymarc's own, and a UnicodeDecodeError: try the next encoding)
            failures.append(type(error).__name__)
    log.warning("a catalogue server's record cannot be read (%s)", ", ".join(failures))
    return None


def read_iso2709(data: bytes) -> list[Any]:
    """Each record of ISO 2709 bytes, decoded as the module's words say (an unreadable one left out)."""
    records = []
    for chunk in data.split(b"\x1d"):
        chunk = chunk.lstrip(b"\r\n ")
        if len(chunk) >= 24:
            record = _decoded(chunk + b"\x1d")
            if record is not None:
                records.append(record)
    return records


# --- the protocols ------------------------------------------------------------------------------


def _sru(server: Server, isbn: str, timeout: float) -> list[Any]:
    import pymarc
    import requests

    url = f"http://{server.host}:{server.port}/{server.database.lstrip('/')}"
    params = {"version": "1.1", "operation": "searchRetrieve", "query": f'bath.isbn="{isbn}"',
              "maximumRecords": str(MAX_RECORDS), "recordSchema": "marcxml", "recordPacking": "xml"}
    try:
        answer = requests.get(url, params=params, timeout=timeout)
    except requests.exceptions.Timeout:
        raise Failed(SLOW) from None
    except requests.exceptions.ConnectionError as error:  # refused, or a connection that spoke no HTTP
        raise Failed(DOWN if "NewConnectionError" in repr(error) else GARBAGE) from None
    except requests.exceptions.RequestException:
        raise Failed(GARBAGE) from None
    try:
        root = ET.fromstring(answer.content)
    except ET.ParseError:
        raise Failed(GARBAGE) from None
    if not root.tag.endswith("searchRetrieveResponse"):
        raise Failed(GARBAGE)
    if root.find(f"{_SRU}diagnostics") is not None and root.find(f"{_SRU}records") is None:
        raise Failed(REFUSED)
    found = []
    for data in [*root.iter(f"{_SRU}recordData"), *root.iter(f"{_SRU2}recordData")]:
        for marc in data:
            if marc.tag.endswith("record"):
                text = ET.tostring(marc, encoding="utf-8")
                try:
                    found += pymarc.parse_xml_to_array(io.BytesIO(text))
                except Exception:  # noqa: BLE001  (a broken MARCXML record: the others are read)
                    log.warning("a record from %s cannot be read", server.name)
    return found


def _z3950(server: Server, isbn: str, timeout: float) -> list[Any]:
    client = shutil.which("yaz-client")
    if client is None:
        raise Failed(NO_CLIENT)
    with tempfile.TemporaryDirectory(prefix="bookcorner-z3950-") as where:
        commands, out = Path(where, "commands"), Path(where, "records.mrc")
        commands.write_text(f"open tcp:{server.host}:{server.port}/{server.database}\n"
                            f"format {_YAZ_FORMAT[server.syntax]}\n"
                            f"find @attr 1=7 {isbn}\nshow 1+{MAX_RECORDS}\nquit\n", encoding="utf-8")
        try:
            done = subprocess.run([client, "-m", str(out), "-f", str(commands)], capture_output=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            raise Failed(SLOW) from None
        said = done.stdout.decode("utf-8", "replace")
        records = out.read_bytes() if out.exists() else b""
    if "Connecting...OK" not in said:
        raise Failed(DOWN)
    if "Connection accepted" not in said:
        raise Failed(GARBAGE)
    if "Search was a success" not in said:
        raise Failed(REFUSED)
    found = read_iso2709(records)
    if records and not found:
        raise Failed(UNREADABLE)
    return found


def search(server: Server, isbn: str, timeout: float = TIMEOUT_S) -> list[Draft]:
    """The records ``server`` holds for ``isbn``, as drafts (raises Failed). A server that
    holds none under the ISBN-13 is asked for the ISBN-10 too (older records carry only it)."""
    ask = _sru if server.protocol == "sru" else _z3950
    records = ask(server, isbn, timeout)
    if not records and isbn.startswith("978"):
        records = ask(server, stdnum_isbn.to_isbn10(isbn), timeout)
    return [draft_of(record, server.name) for record in records[:MAX_RECORDS]]


def isbn_for_search(text: str) -> str | None:
    """The ISBN-13 of what was scanned or typed (a price add-on and hyphens aside), None: no ISBN."""
    code = isbn13_of(normalise(text))
    if code is None:
        digits = re.sub(r"[\s-]", "", text.upper())
        code = stdnum_isbn.to_isbn13(digits) if stdnum_isbn.is_valid(digits) else None
    return code


def _asked(server: Server, isbn: str, timeout: float) -> list[Draft] | str:
    try:
        return search(server, isbn, timeout)
    except Failed as failed:
        return str(failed)


def lookup(store: db.Store, isbn: str, timeout: float = TIMEOUT_S) -> Lookup:
    """Ask every configured server at once (each within ``timeout``); the answers in the servers' order."""
    chosen = servers(store)
    found = Lookup()
    if not chosen:
        return found
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        answers = list(pool.map(lambda server: _asked(server, isbn, timeout), chosen))
    for server, answer in zip(chosen, answers, strict=True):
        if isinstance(answer, str):
            found.failures.append((server.name, answer))
        elif answer:
            found.drafts += answer
        else:
            found.empty.append(server.name)
    return found


# --- adding the copies --------------------------------------------------------------------------


def barcodes_in(text: str) -> list[str]:
    return [code for code in re.split(r"[\s,;，；、]+", text) if code]


def _taken(conn: Connection, codes: set[str]) -> list[str]:
    """Which of ``codes`` are already a book's id or accession barcode."""
    c = db.catalogue.c
    taken = set(conn.execute(select(c.item_id).where(c.item_id.in_(codes))).scalars())
    for data in conn.execute(select(c.data).where(c.removed.is_(False))).scalars():
        barcode = normalise(str(db.json_object(data).get("barcode") or ""))
        if barcode in codes:
            taken.add(barcode)
    return sorted(taken)


def check_copies(draft: Draft, codes: list[str]) -> list[str]:
    """The accession barcodes as a kiosk reads them; raises Refused with what is wrong."""
    if not draft.title.strip():
        raise Refused(N_("Give the book's title."))
    if draft.isbn and isbn_for_search(draft.isbn) is None:
        raise Refused(N_("{isbn} is not a valid ISBN."), isbn=draft.isbn)
    wanted = [normalise(code) for code in codes]
    if not wanted:
        raise Refused(N_("Scan or type the accession barcode of each copy."))
    if len(wanted) > MAX_COPIES:
        raise Refused(N_("At most {most} copies at a time."), most=str(MAX_COPIES))
    for code in wanted:
        if not _IDENTIFIER.match(code):
            raise Refused(N_("{code} cannot be an accession barcode (letters, digits, dots and dashes only)."),
                          code=code)
        if isbn13_of(code):
            raise Refused(N_("{code} is an ISBN: each copy needs an accession barcode of its own."), code=code)
    twice = sorted({code for code in wanted if wanted.count(code) > 1})
    if twice:
        raise Refused(N_("Scanned twice: {codes}."), codes=", ".join(twice))
    return wanted


def add_copies(store: db.Store, who: str, draft: Draft, codes: list[str]) -> list[str]:
    """One catalogue record per copy (its id and barcode the accession barcode), in one
    transaction under one new revision, audited. The ids added."""
    wanted = check_copies(draft, codes)
    isbn13 = isbn_for_search(draft.isbn) if draft.isbn else None
    isbn10 = stdnum_isbn.to_isbn10(isbn13) if isbn13 and isbn13.startswith("978") else None
    text = {name: " ".join(getattr(draft, name).split())[:400] for name in ("title", "author", "call_number")}
    with store.writing() as conn:
        taken = _taken(conn, set(wanted))
        if taken:
            raise Refused(N_("Already in the catalogue: {codes}."), codes=", ".join(taken))
        rev = next_revision(conn)
        records = [ItemRecord(item_id=code, title=text["title"], barcode=code, isbn13=isbn13, isbn10=isbn10,
                              author=text["author"] or None, call_number=text["call_number"] or None)
                   for code in wanted]
        at = db.now()
        upsert(conn, db.catalogue, ["item_id"], [
            {"item_id": r.item_id, "data": msgspec.json.encode(r).decode("utf-8"), "rev": rev, "removed": False,
             "added_at": at} for r in records])
        detail = {"isbn": isbn13 or "", "title": text["title"], "author": text["author"],
                  "publisher": draft.publisher, "year": draft.year, "clc": draft.clc,
                  "call_number": text["call_number"], "source": draft.source or "typed", "copies": wanted}
        conn.execute(db.audit_log.insert().values(at=at, who=who, action="cataloguing.add",
                                                  target=(isbn13 or text["title"])[:120],
                                                  detail=json.dumps(detail, ensure_ascii=False)))
    return wanted
