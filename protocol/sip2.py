"""SIP2 (3M Standard Interchange Protocol 2.00) messages: framing, checksums, fields.

A message is a two-digit command, its fixed-length fields, then variable fields (a
two-letter code, the value, ``|``), optionally ``AY`` and a one-digit sequence number,
``AZ`` and four hex digits of checksum, and a carriage return. The checksum is the 16-bit
two's complement of the sum of the bytes up to and including ``AZ``.

Our own small codec, not a library's (docs/sip2.md says why): text is decoded first and
split on ``|`` afterwards, because in GB18030 the second byte of many Chinese characters
(東, 瑋, 墊...) is ``0x7C``, the byte of ``|``; the checksum is taken over the bytes on the
wire, and a checksum some clients take over the characters instead is accepted too.
Nothing here does I/O or knows circulation: the central server's SIP2 service does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

DELIMITER = "|"
TERMINATOR = b"\r"
#: the longest value a variable field carries (the standard's limit)
MAX_FIELD = 255
#: the longest frame a reader takes before it gives up on the connection (bytes)
MAX_FRAME = 8192

#: the length of each command's fixed fields, after the two-digit command
FIXED_LENGTH: dict[str, int] = {
    # requests: self-check (SC) to the library system (ACS)
    "93": 2, "99": 8, "23": 21, "63": 31, "17": 18, "11": 38, "09": 37, "29": 38, "35": 18, "97": 0,
    "01": 19, "37": 25, "15": 19, "19": 18,
    # responses
    "94": 1, "98": 34, "24": 35, "64": 59, "18": 24, "12": 22, "10": 22, "30": 22, "36": 19, "96": 0,
}
_CODE = re.compile(r"^[A-Za-z0-9]{2}$")
#: AY and AZ at the end; a checksum of fewer than four digits is taken (the Sip2 client on PyPI
#: drops leading zeros)
_TRAILER = re.compile(r"(?:AY([0-9]))?(?:AZ([0-9A-Fa-f]{1,4}))?$")


class Sip2Error(ValueError):
    """A frame that is not a SIP2 message; the text says what is wrong with it."""


class ChecksumError(Sip2Error):
    """A frame whose AZ checksum does not match its bytes (the peer should send it again)."""


@dataclass(frozen=True, slots=True)
class Message:
    command: str
    #: the fixed-length fields, as one string of the command's ``FIXED_LENGTH``
    fixed: str = ""
    #: the variable fields in order: (code, value); a code may repeat (AF, AU...)
    fields: tuple[tuple[str, str], ...] = ()
    #: AY: the request's sequence number, echoed in its response (None: not sent)
    sequence: int | None = None
    #: whether the frame carried an AZ checksum (decoded messages)
    checksummed: bool = False

    def get(self, code: str, default: str | None = None) -> str | None:
        return next((value for c, value in self.fields if c == code), default)

    def all(self, code: str) -> list[str]:
        return [value for c, value in self.fields if c == code]


def checksum(data: bytes) -> str:
    """The AZ value for ``data``: every byte from the command up to and including ``AZ``."""
    return f"{-sum(data) & 0xFFFF:04X}"


def clean(value: object, limit: int = MAX_FIELD) -> str:
    """A value as a variable field may carry it: no delimiter, no control characters, at
    most ``limit`` characters."""
    text = "".join(" " if (ch == DELIMITER or not ch.isprintable()) else ch for ch in str(value))
    return text[:limit]


def encode(message: Message, encoding: str = "utf-8", *, with_checksum: bool = True) -> bytes:
    """The frame for ``message``, terminator included. Raises Sip2Error for a message that
    cannot be sent as it is (a wrong fixed length, a field with a delimiter...)."""
    _check(message)
    text = message.command + message.fixed + "".join(code + value + DELIMITER for code, value in message.fields)
    if message.sequence is not None:
        text += f"AY{message.sequence}"
    try:
        body = text.encode(encoding)
    except UnicodeEncodeError as error:
        raise Sip2Error(f"a field cannot be written in {encoding}: {error.object[error.start:error.end]!r}") from None
    if with_checksum:
        body += b"AZ"
        body += checksum(body).encode("ascii")
    return body + TERMINATOR


def _check(message: Message) -> None:
    expected = FIXED_LENGTH.get(message.command)
    if expected is None:
        raise Sip2Error(f"unknown command {message.command!r}")
    if len(message.fixed) != expected or not message.fixed.isprintable():
        raise Sip2Error(f"command {message.command} has {expected} characters of fixed fields, not "
                        f"{len(message.fixed)}")
    if message.sequence is not None and not 0 <= message.sequence <= 9:
        raise Sip2Error("the sequence number is one digit")
    for code, value in message.fields:
        if not _CODE.match(code) or code in ("AY", "AZ"):
            raise Sip2Error(f"{code!r} is not a field code")
        if len(value) > MAX_FIELD or DELIMITER in value or not value.isprintable():
            raise Sip2Error(f"field {code} is too long or holds a delimiter or a control character")


def decode(frame: bytes, encoding: str = "utf-8") -> Message:
    """The message in one frame (with or without its terminator; a line feed around it, as
    telnet-minded clients send, is ignored). Raises ChecksumError when the checksum is
    wrong, Sip2Error for anything else that is not a SIP2 message."""
    raw = frame.strip(b"\r\n")
    if len(raw) > MAX_FRAME:
        raise Sip2Error(f"the message is longer than {MAX_FRAME} bytes")
    if b"\r" in raw or b"\n" in raw or b"\0" in raw:
        raise Sip2Error("a message holds no line breaks or NUL bytes")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        raise Sip2Error(f"the message is not valid {encoding}") from None
    trailer = _TRAILER.search(text)
    assert trailer is not None  # the pattern matches the empty string at the end
    sequence, given = trailer.group(1), trailer.group(2)
    if given is not None:
        _verify(raw, text, given)
    body = text[:trailer.start()]
    return _parse(body, int(sequence) if sequence is not None else None, given is not None)


def _verify(raw: bytes, text: str, given: str) -> None:
    """Bytes up to and including AZ must sum with the checksum to zero; so may characters
    (code points), as some clients add them up (the same thing for ASCII)."""
    value, digits = int(given, 16), len(given)
    if (sum(raw[:-digits]) + value) & 0xFFFF == 0 or (sum(map(ord, text[:-digits])) + value) & 0xFFFF == 0:
        return
    raise ChecksumError(f"the checksum {given.upper()} does not match the message "
                        f"(expected {checksum(raw[:-digits])})")


def _parse(body: str, sequence: int | None, checksummed: bool) -> Message:
    command = body[:2]
    if len(command) < 2 or not command.isdigit():
        raise Sip2Error("a message starts with a two-digit command")
    length = FIXED_LENGTH.get(command)
    if length is None:
        raise Sip2Error(f"unknown command {command}")
    fixed = body[2:2 + length]
    if len(fixed) != length:
        raise Sip2Error(f"command {command} needs {length} characters of fixed fields, it has {len(fixed)}")
    return Message(command, fixed, tuple(_fields(body[2 + length:])), sequence, checksummed)


def _fields(rest: str) -> Iterable[tuple[str, str]]:
    pieces = rest.split(DELIMITER)
    if pieces and pieces[-1] == "":
        pieces.pop()  # the last field's delimiter (some clients leave it out)
    for piece in pieces:
        if not piece:
            continue  # an empty field: "||"
        code = piece[:2]
        if not _CODE.match(code):
            raise Sip2Error(f"{piece[:10]!r} does not start with a field code")
        if len(piece) - 2 > MAX_FIELD:
            raise Sip2Error(f"field {code} is longer than {MAX_FIELD} characters")
        yield code, piece[2:]


# --- the fixed fields ----------------------------------------------------------------------------

#: an empty date field (a client that does not say)
NO_DATE = " " * 18


def sip_date(moment: datetime) -> str:
    """YYYYMMDDZZZZHHMMSS with a blank zone: local time, as the standard prefers."""
    return moment.strftime("%Y%m%d    %H%M%S")


def parse_date(text: str) -> datetime | None:
    """A date field as a naive local time (None for a blank or unreadable one)."""
    if len(text) != 18 or not text.strip():
        return None
    try:
        return datetime.strptime(text[:8] + text[12:], "%Y%m%d%H%M%S")
    except ValueError:
        return None


def flag(value: bool) -> str:
    return "Y" if value else "N"


def bit(value: bool) -> str:
    return "1" if value else "0"


@dataclass(frozen=True, slots=True)
class PatronStatus:
    """The 14 positions of a patron status field that bookcorner can say something about."""

    charge_denied: bool = False
    renewal_denied: bool = False
    card_lost: bool = False
    too_many_charged: bool = False
    too_many_overdue: bool = False

    def field(self) -> str:
        marks = [self.charge_denied, self.renewal_denied, False, False, self.card_lost, self.too_many_charged,
                 self.too_many_overdue] + [False] * 7
        return "".join("Y" if mark else " " for mark in marks)


#: the fixed field "language" of patron status and patron information, request and response:
#: three digits from the standard's list (000 unknown or the default, 001 English, 002 French ...
#: 019 Chinese ... 024 United Kingdom, 027 Taiwanese); those bookcorner answers in
LANGUAGE_UNKNOWN, LANGUAGE_ENGLISH, LANGUAGE_CHINESE, LANGUAGE_UNITED_KINGDOM = "000", "001", "019", "024"


# --- the responses a server sends ----------------------------------------------------------------


def login_response(ok: bool, sequence: int | None) -> Message:
    return Message("94", bit(ok), (), sequence)


def acs_status(now: datetime, sequence: int | None, *, online: bool = True, timeout_s: int = 0,
               retries: int = 3, supported: str = "", institution: str = "", library: str = "",
               location: str = "", screen: str = "") -> Message:
    """98: what the server does. ``timeout_s``: how long the machine should wait for an answer;
    ``supported``: the 16 Y/N flags of BX."""
    fixed = (flag(online) + "Y" + "Y" + "Y" + "N" + "N" + f"{min(timeout_s * 10, 999):03d}"
             + f"{min(retries, 999):03d}" + sip_date(now) + "2.00")
    fields = [("AO", clean(institution)), ("AM", clean(library)), ("BX", supported), ("AN", clean(location))]
    if screen:
        fields.append(("AF", clean(screen)))
    return Message("98", fixed, tuple(fields), sequence)


@dataclass(frozen=True, slots=True)
class PatronAnswer:
    """What patron status (24) and patron information (64) say about a patron."""

    institution: str
    patron_id: str
    valid: bool
    name: str = ""
    status: PatronStatus = PatronStatus()
    charged: tuple[str, ...] = ()
    overdue: tuple[str, ...] = ()
    limit: int | None = None
    screen: tuple[str, ...] = ()


def patron_status_response(answer: PatronAnswer, now: datetime, sequence: int | None,
                           language: str = LANGUAGE_UNKNOWN) -> Message:
    fixed = answer.status.field() + language + sip_date(now)
    fields = [("AO", clean(answer.institution)), ("AA", clean(answer.patron_id)), ("AE", clean(answer.name)),
              ("BL", flag(answer.valid))]
    fields += [("AF", clean(line)) for line in answer.screen]
    return Message("24", fixed, tuple(fields), sequence)


def patron_information_response(answer: PatronAnswer, now: datetime, sequence: int | None,
                                 language: str = LANGUAGE_UNKNOWN) -> Message:
    def count(n: int) -> str:
        return f"{min(n, 9999):04d}"

    fixed = (answer.status.field() + language + sip_date(now) + count(0) + count(len(answer.overdue))
             + count(len(answer.charged)) + count(0) + count(0) + count(0))
    fields = [("AO", clean(answer.institution)), ("AA", clean(answer.patron_id)), ("AE", clean(answer.name)),
              ("BL", flag(answer.valid))]
    if answer.limit is not None:
        fields.append(("CB", f"{min(answer.limit, 9999):04d}"))
    fields += [("AT", clean(item)) for item in answer.overdue]
    fields += [("AU", clean(item)) for item in answer.charged]
    fields += [("AF", clean(line)) for line in answer.screen]
    return Message("64", fixed, tuple(fields), sequence)


#: circulation status codes of item information (18)
ITEM_OTHER, ITEM_ON_SHELF, ITEM_CHARGED, ITEM_IN_TRANSIT, ITEM_MISSING, ITEM_LOST = "01", "03", "04", "10", "12", "13"


@dataclass(frozen=True, slots=True)
class ItemAnswer:
    """What item information, checkout, checkin and renew say about a book."""

    institution: str
    item_id: str
    title: str = ""
    circulation_status: str = ITEM_OTHER
    due: datetime | None = None
    patron_id: str = ""
    location: str = ""
    screen: tuple[str, ...] = ()
    #: AG: lines for the machine's receipt printer
    printed: tuple[str, ...] = ()

    def texts(self) -> list[tuple[str, str]]:
        """The screen messages (AF) and the print lines (AG)."""
        return [("AF", clean(line)) for line in self.screen] + [("AG", clean(line)) for line in self.printed]


def _item_fields(answer: ItemAnswer, *, with_patron: bool) -> list[tuple[str, str]]:
    fields = [("AO", clean(answer.institution))]
    if with_patron:
        fields.append(("AA", clean(answer.patron_id)))
    # AH is required even when nothing was lent: empty then
    return fields + [("AB", clean(answer.item_id)), ("AJ", clean(answer.title)),
                     ("AH", sip_date(answer.due) if answer.due is not None else "")]


def item_information_response(answer: ItemAnswer, now: datetime, sequence: int | None) -> Message:
    fixed = answer.circulation_status + "00" + "01" + sip_date(now)
    fields = [("AB", clean(answer.item_id)), ("AJ", clean(answer.title))]
    if answer.due is not None:
        fields.append(("AH", sip_date(answer.due)))
    if answer.location:
        fields.append(("AQ", clean(answer.location)))
    fields += answer.texts()
    return Message("18", fixed, tuple(fields), sequence)


def checkout_response(ok: bool, renewal: bool, answer: ItemAnswer, now: datetime, sequence: int | None) -> Message:
    fixed = bit(ok) + flag(renewal) + "N" + flag(ok) + sip_date(now)
    fields = _item_fields(answer, with_patron=True) + answer.texts()
    return Message("12", fixed, tuple(fields), sequence)


def renew_response(ok: bool, answer: ItemAnswer, now: datetime, sequence: int | None) -> Message:
    fixed = bit(ok) + flag(ok) + "N" + flag(ok) + sip_date(now)
    fields = _item_fields(answer, with_patron=True) + answer.texts()
    return Message("30", fixed, tuple(fields), sequence)


def checkin_response(ok: bool, answer: ItemAnswer, now: datetime, sequence: int | None, *,
                     alert: bool = False) -> Message:
    fixed = bit(ok) + flag(ok) + "N" + flag(alert) + sip_date(now)
    fields = [("AO", clean(answer.institution)), ("AB", clean(answer.item_id)),
              ("AQ", clean(answer.location)), ("AJ", clean(answer.title))]
    if answer.patron_id:
        fields.append(("AA", clean(answer.patron_id)))
    fields += answer.texts()
    return Message("10", fixed, tuple(fields), sequence)


def end_session_response(institution: str, patron_id: str, now: datetime, sequence: int | None) -> Message:
    return Message("36", "Y" + sip_date(now), (("AO", clean(institution)), ("AA", clean(patron_id))), sequence)


def resend_request() -> Message:
    """96: the frame did not arrive whole (a wrong checksum): send it again."""
    return Message("96")


# --- the requests a client sends (the replay bridge's, and the tests') ---------------------------


def login_request(login: str, password: str, location: str = "", sequence: int | None = None) -> Message:
    fields = [("CN", clean(login)), ("CO", clean(password))] + ([("CP", clean(location))] if location else [])
    return Message("93", "00", tuple(fields), sequence)


def sc_status_request(sequence: int | None = None, max_print_width: int = 40) -> Message:
    return Message("99", "0" + f"{min(max_print_width, 999):03d}" + "2.00", (), sequence)


def patron_status_request(institution: str, patron_id: str, now: datetime, sequence: int | None = None,
                          *, information: bool = False, language: str = LANGUAGE_UNKNOWN) -> Message:
    """23, or 63 (``information``) asking for the charged items (one Y in its summary, as the standard says)."""
    fields = (("AO", clean(institution)), ("AA", clean(patron_id)), ("AC", ""), ("AD", ""))
    if information:
        return Message("63", language + sip_date(now) + "  Y       ", fields, sequence)
    return Message("23", language + sip_date(now), fields, sequence)


def item_information_request(institution: str, item_id: str, now: datetime, sequence: int | None = None) -> Message:
    return Message("17", sip_date(now), (("AO", clean(institution)), ("AB", clean(item_id)), ("AC", "")), sequence)


def checkout_request(institution: str, patron_id: str, item_id: str, now: datetime, sequence: int | None = None,
                     *, no_block: bool = False, done_at: datetime | None = None,
                     promised_due: datetime | None = None) -> Message:
    """11. ``no_block`` with ``done_at``: a loan already made offline, at that time, with the
    due date the child was promised (``promised_due``)."""
    fixed = ("N" + flag(no_block) + sip_date(done_at or now)
             + (sip_date(promised_due) if promised_due is not None else NO_DATE))
    fields = (("AO", clean(institution)), ("AA", clean(patron_id)), ("AB", clean(item_id)), ("AC", ""))
    return Message("11", fixed, fields, sequence)


def checkin_request(institution: str, item_id: str, now: datetime, sequence: int | None = None, *,
                    no_block: bool = False, returned_at: datetime | None = None, location: str = "") -> Message:
    """09. ``no_block`` with ``returned_at``: a return already made offline, at that time."""
    fixed = flag(no_block) + sip_date(now) + sip_date(returned_at or now)
    fields = (("AP", clean(location)), ("AO", clean(institution)), ("AB", clean(item_id)), ("AC", ""))
    return Message("09", fixed, fields, sequence)


def renew_request(institution: str, patron_id: str, item_id: str, now: datetime,
                  sequence: int | None = None, *, no_block: bool = False, done_at: datetime | None = None,
                  promised_due: datetime | None = None) -> Message:
    fixed = ("N" + flag(no_block) + sip_date(done_at or now)
             + (sip_date(promised_due) if promised_due is not None else NO_DATE))
    fields = (("AO", clean(institution)), ("AA", clean(patron_id)), ("AB", clean(item_id)), ("AC", ""))
    return Message("29", fixed, fields, sequence)


def end_session_request(institution: str, patron_id: str, now: datetime, sequence: int | None = None) -> Message:
    return Message("35", sip_date(now), (("AO", clean(institution)), ("AA", clean(patron_id)), ("AC", "")), sequence)
