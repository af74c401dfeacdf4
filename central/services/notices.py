"""Overdue notices to class teachers (催还通知): on the days and at the time the librarian
sets, each class teacher gets their class's overdue books and the books due this week,
in the school's language, through a ``Channel`` (e-mail first: ``channels``).

The outbox (``notices`` table) is the record of every notice: planned once per class and
period (a scheduled send, "2026-12-07 08:00" in the school's zone, or a librarian's "send
now" of a day), so a notice is never sent twice for one period; each send is claimed
("sending") in its own write transaction before the channel is called, and its outcome
written after. A failure the channel says may pass (a server down, a busy reply) is
tried again later, each wait twice the last; one that cannot pass as things stand (a
refused login or address), or that failed too often, is held for the librarian with the
server's own words, as is a class with overdue books and no teacher's address, and a
notice the server stopped in the middle of sending (it may have arrived: sending it
again is the librarian's call). ``NoticeKeeper`` plans and sends from the server's
lifespan. Settings (the mail server, the schedule) are the server's own (``meta``):
kiosks never get them. Functions take the store and "now" as arguments.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, TypeVar

import msgspec
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.engine import Connection

from bookcorner import i18n
from bookcorner.central import db, zone
from bookcorner.central.ingest import upsert
from bookcorner.central.jobs import PeriodicJob
from bookcorner.central.services import registers
from bookcorner.central.services.channels import Channel, Delivery, EmailChannel, Outgoing, SmtpSettings
from bookcorner.i18n import N_, _, ngettext

log = logging.getLogger(__name__)

SMTP_KEY = "notices.smtp"
SCHEDULE_KEY = "notices.schedule"
#: the last scheduled period planned (each is planned once)
PLANNED_KEY = "notices.planned"
#: the period of a librarian's "send now" is its day and this word
NOW = "now"
PENDING, SENDING, SENT, FAILED, HELD = "pending", "sending", "sent", "failed", "held"
STATUSES = (PENDING, SENDING, SENT, FAILED, HELD)
#: the first wait after a failure; each next one twice as long, at most LONGEST_WAIT
FIRST_WAIT = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=1)
#: tries before a notice is held for the librarian (about five hours of waiting)
MAX_ATTEMPTS = 10
#: how often the keeper looks for a period to plan and notices to send
NOTICES_EVERY_S = 30.0
_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")

#: what the outbox says of a notice in our own words (kept in English, shown in the librarian's language)
NO_ADDRESS = N_("No e-mail address for this class's teacher: add one under Notices, then send again.")
HALF_SENT = N_("The server stopped while sending this notice: it may have arrived. Ask the teacher, and send it "
               "again only if it did not.")

T = TypeVar("T")


class Schedule(msgspec.Struct, frozen=True, omit_defaults=True):
    #: 0 = Monday … 6 = Sunday; none: no scheduled notices
    weekdays: list[int] = []
    at: time = time(8, 0)
    #: the language the notices are written in (the school's)
    language: str = "zh_CN"


class Refused(Exception):
    """What the librarian asked cannot be done: the message says why."""


def _read(conn: Connection, key: str, kind: type[T], default: T) -> T:
    text = conn.execute(select(db.meta.c.value).where(db.meta.c.key == key)).scalar()
    try:
        return msgspec.json.decode(text, type=kind) if text else default
    except (msgspec.DecodeError, msgspec.ValidationError):
        log.warning("the setting %s cannot be read: its defaults hold", key)
        return default


def _write(conn: Connection, key: str, value: Any) -> None:
    upsert(conn, db.meta, ["key"], [{"key": key, "value": msgspec.json.encode(value).decode("utf-8")}])


def _audit(conn: Connection, who: str, action: str, target: str, detail: dict[str, Any], at: datetime) -> None:
    conn.execute(db.audit_log.insert().values(at=at, who=who, action=action, target=target[:120],
                                              detail=json.dumps(detail, ensure_ascii=False, default=str)))


# --- settings: the mail server and the schedule -------------------------------------------------


def smtp_settings(store: db.Store) -> SmtpSettings:
    with store.reading() as conn:
        return _read(conn, SMTP_KEY, SmtpSettings, SmtpSettings())


def schedule(store: db.Store) -> Schedule:
    with store.reading() as conn:
        return _read(conn, SCHEDULE_KEY, Schedule, Schedule())


def save_smtp(store: db.Store, who: str, settings: SmtpSettings, at: datetime) -> int:
    """Keep the mail server's settings (audited, the password never) and try the held
    notices again with them (not one a stop left half-sent: that is the librarian's call).
    How many were held."""
    with store.writing() as conn:
        _write(conn, SMTP_KEY, settings)
        shown = {**msgspec.to_builtins(settings), "password": "***" if settings.password else ""}
        _audit(conn, who, "notices.smtp", SMTP_KEY, shown, at)
        n = db.notices.c
        return conn.execute(update(db.notices).where(n.status == HELD, n.recipient != "", _not_half_sent())
                            .values(status=PENDING, next_try=at)).rowcount


def _not_half_sent() -> Any:
    n = db.notices.c
    return or_(n.last_error.is_(None), n.last_error != HALF_SENT)


def save_schedule(store: db.Store, who: str, chosen: Schedule, at: datetime) -> None:
    with store.writing() as conn:
        before = _read(conn, SCHEDULE_KEY, Schedule, Schedule())
        _write(conn, SCHEDULE_KEY, chosen)
        _audit(conn, who, "notices.schedule", SCHEDULE_KEY,
               {"before": msgspec.to_builtins(before), "after": msgspec.to_builtins(chosen)}, at)


def valid_email(text: str) -> bool:
    return len(text) <= 254 and bool(_EMAIL.match(text))


def parse_smtp(fields: dict[str, str], current: SmtpSettings) -> tuple[SmtpSettings | None, dict[str, str]]:
    """The mail server's form; an empty password keeps the one saved."""
    errors: dict[str, str] = {}
    host, port = fields.get("host", "").strip(), fields.get("port", "").strip()
    security, sender = fields.get("security", ""), fields.get("sender", "").strip()
    if not host or len(host) > 253 or any(c.isspace() for c in host):
        errors["host"] = _("The mail server's name or address, e.g. smtp.example.edu.cn")
    if not port.isdigit() or not 0 < int(port) < 65536:
        errors["port"] = _("A port number: 587 for STARTTLS, 465 for TLS, 25 for a plain relay")
    if security not in ("starttls", "tls", "none"):
        errors["security"] = _("Choose how the connection is secured")
    if not valid_email(sender):
        errors["sender"] = _("An e-mail address, e.g. library@school.example")
    if not (fields.get("user", "") + fields.get("password", "")).isascii():
        errors["password"] = _("The user and password can only hold ASCII letters, digits and signs")
    if errors:
        return None, errors
    password = fields.get("password", "") or current.password
    return SmtpSettings(host, int(port), security, fields.get("user", "").strip()[:254], password[:254], sender), {}


def parse_schedule(fields: dict[str, str]) -> tuple[Schedule | None, dict[str, str]]:
    errors: dict[str, str] = {}
    days = sorted({int(d) for d in (fields.get(f"day{n}", "") for n in range(7)) if d in {str(n) for n in range(7)}})
    text = fields.get("at", "").strip()
    at = time.fromisoformat(text) if re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", text) else None
    if at is None:
        errors["at"] = _("A time (HH:MM)")
    language = fields.get("language", "")
    if language not in i18n.LANGUAGES:
        errors["language"] = _("Choose a language")
    if errors or at is None:
        return None, errors
    return Schedule(days, at, language), {}


# --- the class teachers' addresses -------------------------------------------------------------


@dataclass
class ClassRow:
    class_name: str
    students: int
    teacher_name: str
    email: str


def classes(store: db.Store) -> list[ClassRow]:
    """Every class the roster names (with its number of students) and every class with a
    teacher's address, in order."""
    p, t = db.patrons.c, db.class_teachers.c
    counts: dict[str, int] = {}
    with store.reading() as conn:
        for data in conn.execute(select(p.data).where(p.removed.is_(False))).scalars():
            patron = db.json_object(data)
            if patron.get("class_name") and patron.get("role") in ("student", "student_librarian"):
                name = str(patron["class_name"])
                counts[name] = counts.get(name, 0) + 1
        teachers = {row.class_name: row for row in conn.execute(select(t.class_name, t.teacher_name, t.email))}
    return [ClassRow(name, counts.get(name, 0), (teachers[name].teacher_name or "") if name in teachers else "",
                     teachers[name].email if name in teachers else "")
            for name in sorted(set(counts) | set(teachers))]


def write_class_teachers(conn: Connection, who: str, rows: dict[str, tuple[str, str]], at: datetime) -> None:
    """Each class's (teacher's name, address); an empty address forgets the class's. When
    the address changes, the class's notices waiting or held go to it and are tried again
    (not one a stop left half-sent)."""
    t, n = db.class_teachers.c, db.notices.c
    for class_name, (teacher_name, email) in rows.items():
        before = conn.execute(select(t.teacher_name, t.email).where(t.class_name == class_name)).first()
        if email:
            upsert(conn, db.class_teachers, ["class_name"], [{
                "class_name": class_name, "teacher_name": teacher_name or None, "email": email, "updated_at": at,
                "updated_by": who[:120]}])
            if before is None or before.email != email:
                conn.execute(update(db.notices).where(n.class_name == class_name, _not_half_sent(),
                                                      n.status.in_((PENDING, FAILED, HELD)))
                             .values(recipient=email, status=PENDING, next_try=at))
        else:
            conn.execute(delete(db.class_teachers).where(t.class_name == class_name))
        _audit(conn, who, "notices.class_teacher", class_name, {
            "before": dict(before._mapping) if before else None, "after": {"teacher_name": teacher_name,
                                                                           "email": email}}, at)


def set_class_teacher(store: db.Store, who: str, class_name: str, teacher_name: str, email: str,
                      at: datetime) -> None:
    if not class_name or len(class_name) > 80:
        raise Refused(_("No such class."))
    if email and not valid_email(email):
        raise Refused(_("“{email}” is not an e-mail address.").format(email=email))
    if len(teacher_name) > 120 or not (teacher_name.isprintable() or not teacher_name):
        raise Refused(_("A teacher's name, at most 120 characters."))
    with store.writing() as conn:
        write_class_teachers(conn, who, {class_name: (teacher_name, email)}, at)


# --- what a notice says -------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A send: its label in the outbox and the school day it is about."""

    label: str
    today: date


def week_end(today: date) -> date:
    """The Sunday of ``today``'s week: "due this week" runs to it."""
    return today + timedelta(days=6 - today.weekday())


def _lines(slips: list[registers.Slip], overdue: bool) -> list[str]:
    out = []
    for slip in slips:
        for book in slip.books:
            if overdue:
                out.append("  - " + ngettext("{student}: {title}, due {due}, {days} day overdue",
                                             "{student}: {title}, due {due}, {days} days overdue", book.days).format(
                    student=slip.name, title=book.title, due=book.due.isoformat(), days=book.days))
            else:
                out.append("  - " + _("{student}: {title}, due {due}").format(
                    student=slip.name, title=book.title, due=book.due.isoformat()))
    return out


def compose(class_name: str, teacher: str, late: list[registers.Slip], soon: list[registers.Slip], today: date,
            school: str) -> tuple[str, str]:
    """The notice's subject and text, in the active language."""
    subject = _("Class {class_name}: overdue library books and books due this week").format(class_name=class_name)
    lines = [_("Dear {teacher},").format(teacher=teacher) if teacher else _("Dear class teacher,"), ""]
    if late:
        lines += [_("These books from the book corner of class {class_name} are overdue ({today}). Please remind "
                    "the students to bring them back: until then they cannot borrow.").format(
            class_name=class_name, today=today.isoformat()), *_lines(late, True), ""]
    else:
        lines += [_("No book of class {class_name} is overdue.").format(class_name=class_name), ""]
    if soon:
        lines += [_("Due this week (by {end}):").format(end=week_end(today).isoformat()), *_lines(soon, False), ""]
    lines.append(_("Sent by bookcorner, the class book corners' library system{school}.").format(
        school=f" ({school})" if school else ""))
    return subject, "\n".join(lines) + "\n"


# --- the outbox -------------------------------------------------------------------------------


def latest_slot(chosen: Schedule, now: datetime, zone: tzinfo) -> datetime | None:
    """The last scheduled moment at or before ``now`` within a week (None: none is set)."""
    local = now.astimezone(zone)
    for back in range(8):
        day = local.date() - timedelta(days=back)
        if day.weekday() in chosen.weekdays:
            slot = datetime.combine(day, chosen.at, tzinfo=zone)
            if slot <= local:
                return slot
    return None


def _plan_rows(store: db.Store, period: Period, language: str, at: datetime) -> list[dict[str, Any]]:
    """One outbox row per class with overdue books or books due this week."""
    late = registers.overdue(store, period.today)
    soon = registers.due_between(store, period.today, period.today, week_end(period.today))
    school = registers.school_name(store)
    teachers = {row.class_name: row for row in classes(store)}
    rows = []
    for class_name in sorted((set(late) | set(soon)) - {""}):
        teacher = teachers.get(class_name)
        with i18n.in_language(language):
            subject, body = compose(class_name, teacher.teacher_name if teacher else "", late.get(class_name, []),
                                    soon.get(class_name, []), period.today, school)
        books = sum(len(s.books) for s in late.get(class_name, []) + soon.get(class_name, []))
        email = teacher.email if teacher else ""
        rows.append({"class_name": class_name[:80], "period": period.label, "channel": EmailChannel.name,
                     "recipient": email, "language": language, "subject": subject, "body": body, "books": books,
                     "status": PENDING if email else HELD, "attempts": 0, "last_error": None if email else NO_ADDRESS,
                     "next_try": at, "created_at": at, "sent_at": None})
    return rows


def plan(store: db.Store, period: Period, language: str, at: datetime) -> int:
    """Put the period's notices in the outbox, each class's once (a class already holding a
    notice for this period keeps it). How many were added."""
    rows = _plan_rows(store, period, language, at)
    n = db.notices.c
    with store.writing() as conn:
        have = set(conn.execute(select(n.class_name).where(n.period == period.label,
                                                           n.channel == EmailChannel.name)).scalars())
        fresh = [row for row in rows if row["class_name"] not in have]
        if fresh:
            conn.execute(db.notices.insert(), fresh)
    return len(fresh)


def plan_scheduled(store: db.Store, now: datetime, zone: tzinfo) -> int:
    """The latest scheduled period, once: planned when it has not been yet."""
    with store.reading() as conn:
        chosen = _read(conn, SCHEDULE_KEY, Schedule, Schedule())
        done = _read(conn, PLANNED_KEY, str, "")
    slot = latest_slot(chosen, now, zone)
    if slot is None:
        return 0
    label = slot.strftime("%Y-%m-%d %H:%M")
    if label <= done:
        return 0
    added = plan(store, Period(label, now.astimezone(zone).date()), chosen.language, now)
    with store.writing() as conn:
        _write(conn, PLANNED_KEY, label)
    return added


def plan_now(store: db.Store, who: str, now: datetime, zone: tzinfo) -> int:
    """The librarian's "send now": today's notices, once a day for each class."""
    today = now.astimezone(zone).date()
    added = plan(store, Period(f"{today.isoformat()} {NOW}", today), schedule(store).language, now)
    with store.writing() as conn:
        _audit(conn, who, "notices.send_now", "notices", {"added": added}, now)
        conn.execute(update(db.notices).where(db.notices.c.status == FAILED).values(next_try=now))
    return added


def _claim(store: db.Store, now: datetime) -> Any | None:
    """The next notice due, marked as being sent (one sender has it)."""
    n = db.notices.c
    with store.writing() as conn:
        row = conn.execute(select(db.notices).where(n.status.in_((PENDING, FAILED)), n.next_try <= now)
                           .order_by(n.next_try, n.notice_id).limit(1)).first()
        if row is not None:
            conn.execute(update(db.notices).where(n.notice_id == row.notice_id)
                         .values(status=SENDING, attempts=row.attempts + 1))
        return row


def _outcome(store: db.Store, notice_id: int, attempts: int, error: Delivery | None, now: datetime) -> str:
    if error is None:
        values: dict[str, Any] = {"status": SENT, "sent_at": now, "last_error": None, "next_try": None}
    elif error.permanent or attempts >= MAX_ATTEMPTS:
        values = {"status": HELD, "last_error": error.message, "next_try": None}
    else:
        wait = min(FIRST_WAIT * 2 ** (attempts - 1), LONGEST_WAIT)
        values = {"status": FAILED, "last_error": error.message, "next_try": now + wait}
    with store.writing() as conn:
        conn.execute(update(db.notices).where(db.notices.c.notice_id == notice_id).values(**values))
    return str(values["status"])


def send_due(store: db.Store, channel: Channel, clock: Callable[[], datetime] = db.now,
             stopping: Callable[[], bool] = lambda: False) -> dict[str, int]:
    """Send every notice due now, one at a time, until none is left or ``stopping()``:
    how many ended sent, failed (to try again) and held."""
    counts = {SENT: 0, FAILED: 0, HELD: 0}
    while not stopping():
        row = _claim(store, clock())
        if row is None:
            break
        error = None
        try:
            channel.send(Outgoing(row.recipient, _teacher_name(store, row.class_name), row.subject, row.body,
                                  f"bookcorner-notice-{row.notice_id}"))
        except Delivery as failed:
            error = failed
        counts[_outcome(store, row.notice_id, row.attempts + 1, error, clock())] += 1
    return counts


def _teacher_name(store: db.Store, class_name: str) -> str:
    with store.reading() as conn:
        return conn.execute(select(db.class_teachers.c.teacher_name)
                            .where(db.class_teachers.c.class_name == class_name)).scalar() or ""


def recover(store: db.Store) -> int:
    """Notices the server stopped in the middle of sending: held for the librarian (the
    mail server may have taken them; sending again could send them twice)."""
    with store.writing() as conn:
        return conn.execute(update(db.notices).where(db.notices.c.status == SENDING).values(
            status=HELD, last_error=HALF_SENT)).rowcount


def send_again(store: db.Store, who: str, notice_id: int, at: datetime) -> None:
    """A held or failed notice tried again now (the librarian's word)."""
    n = db.notices.c
    with store.writing() as conn:
        row = conn.execute(select(n.class_name, n.status, n.recipient).where(n.notice_id == notice_id)).first()
        if row is None or row.status not in (HELD, FAILED):
            raise Refused(_("That notice is not waiting to be sent again."))
        if not row.recipient:
            raise Refused(_("Add the class teacher's e-mail address first."))
        conn.execute(update(db.notices).where(n.notice_id == notice_id).values(status=PENDING, next_try=at))
        _audit(conn, who, "notices.send_again", row.class_name, {"notice_id": notice_id}, at)


def outbox(store: db.Store, limit: int = 200) -> list[Any]:
    """The latest notices, newest first."""
    n = db.notices.c
    with store.reading() as conn:
        return list(conn.execute(select(db.notices).order_by(n.created_at.desc(), n.notice_id.desc()).limit(limit)))


def counts(store: db.Store) -> dict[str, int]:
    n = db.notices.c
    with store.reading() as conn:
        found: dict[str, int] = {status: int(count) for status, count in
                                 conn.execute(select(n.status, func.count()).group_by(n.status))}
    return {status: found.get(status, 0) for status in STATUSES}


class NoticeKeeper(PeriodicJob):
    """Plans the scheduled notices and sends what is due, every ``every`` seconds on a daemon
    thread of its own (stopped with the server); at start-up, what a stop left half-sent
    is held."""

    name = "bookcorner-notices"

    def __init__(self, store: db.Store, every: float = NOTICES_EVERY_S, clock: Callable[[], datetime] = db.now,
                 channel: Callable[[SmtpSettings], Channel] = EmailChannel) -> None:
        super().__init__(every)
        self.store, self.clock, self.channel = store, clock, channel

    def once(self) -> dict[str, int]:
        plan_scheduled(self.store, self.clock(), zone.school_zone(self.store))
        return send_due(self.store, self.channel(smtp_settings(self.store)), self.clock, self.stopping)

    def first(self) -> None:
        if recover(self.store):
            log.warning("notices left half-sent by a stop are held for the librarian")

    def round(self) -> float:
        sent = self.once()
        if any(sent.values()):
            log.info("notices: %d sent, %d to try again, %d held", sent[SENT], sent[FAILED], sent[HELD])
        return self.every
