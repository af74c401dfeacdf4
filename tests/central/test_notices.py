"""Overdue notices to class teachers through a real SMTP server (aiosmtpd, started here):
each class teacher gets their class's overdue books and the books due this week, the
messages parsed back with the e-mail package (recipients, subject, books, Chinese intact);
the mail server down, then up: each notice sent exactly once; a wrong password and a
refused address held with the server's own words, then sent once the librarian fixes
them; a notice a stop left half-sent is held, not sent again."""

from __future__ import annotations

import ssl
import time as time_module
import uuid
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import trustme
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.ingest import Batch, ingest
from bookcorner.central.kiosks import add_kiosk
from bookcorner.central.reference import load_document
from bookcorner.central.services import notices
from bookcorner.central.services.channels import Delivery, EmailChannel, Outgoing, SmtpSettings
from bookcorner.protocol.messages import ItemRecord, PatronRecord, ReferenceDocument
from tests.central.mailbox import PASSWORD, USER, Mailbox
from tests.central.pushes import KioskClient

ZONE = ZoneInfo("Asia/Shanghai")
WANG, ZHOU = "wang.laoshi@school.example", "zhou@school.example"


def local_today() -> date:
    return datetime.now(timezone.utc).astimezone(ZONE).date()


def lend(kiosk: KioskClient, item: str, patron: str, days: int):
    due = local_today() + timedelta(days=days)
    return kiosk.event("loan.checked_out", {"item_id": item, "patron_id": patron, "card_id": "c", "code": item,
                                            "due": due.isoformat(), "warnings": []})


def a_school(store: db.Store) -> None:
    """Three classes: 三(2)班 (Ms Wang) with two overdue books and one due this week, 四(1)班
    (Mr Zhou) with one overdue, 五(1)班 with one overdue and no teacher's address; 六(1)班
    borrows nothing."""
    load_document(store, ReferenceDocument(
        school="阳光小学",
        patrons=[PatronRecord(patron_id="S1", name="王小明", role="student", class_name="三(2)班"),
                 PatronRecord(patron_id="S2", name="李雷", role="student", class_name="三(2)班"),
                 PatronRecord(patron_id="S3", name="韩梅梅", role="student", class_name="四(1)班"),
                 PatronRecord(patron_id="S4", name="张伟", role="student", class_name="五(1)班"),
                 PatronRecord(patron_id="S5", name="刘洋", role="student", class_name="六(1)班")],
        items=[ItemRecord(item_id=f"I{n}", title=title) for n, title in enumerate(
            ["小王子", "夏洛的网", "西游记", "草房子", "十万个为什么", "窗边的小豆豆"], start=1)]))
    kiosk = KioskClient("", "corner-1", add_kiosk(store, "corner-1"))
    day = local_today()
    soon = min((day + timedelta(days=1)), notices.week_end(day))  # due this week, not overdue
    events = [lend(kiosk, "I1", "S1", -4), lend(kiosk, "I2", "S2", -1), lend(kiosk, "I3", "S1", (soon - day).days),
              lend(kiosk, "I4", "S3", -9), lend(kiosk, "I5", "S4", -2), lend(kiosk, "I6", "S5", 30)]
    request = kiosk.request(events)
    ingest(store, Batch(request.kiosk_id, request.batch_id, request.from_seq, request.to_seq, request.clock,
                        request.events), db.now())
    now = db.now()
    notices.set_class_teacher(store, "Ms Li", "三(2)班", "王老师", WANG, now)
    notices.set_class_teacher(store, "Ms Li", "四(1)班", "", ZHOU, now)


def settings_for(box: Mailbox, password: str = PASSWORD) -> SmtpSettings:
    return SmtpSettings("127.0.0.1", box.port, "none", USER, password, "library@school.example")


def every_day(store: db.Store, language: str = "zh_CN") -> None:
    notices.save_schedule(store, "Ms Li", notices.Schedule(list(range(7)), time(0, 0), language), db.now())


def rows(store: db.Store) -> dict[str, dict]:
    with store.reading() as conn:
        return {r.class_name: dict(r._mapping) for r in conn.execute(select(db.notices))}


def test_each_class_teacher_gets_their_class_list_once(store, mailbox):
    a_school(store)
    every_day(store, "en")
    notices.save_smtp(store, "Ms Li", settings_for(mailbox), db.now())
    now = db.now()
    assert notices.plan_scheduled(store, now, ZONE) == 3
    assert notices.plan_scheduled(store, now, ZONE) == 0  # a period is planned once
    sent = notices.send_due(store, EmailChannel(notices.smtp_settings(store)))
    assert sent == {"sent": 2, "failed": 0, "held": 0}  # 五(1)班's was held when planned

    by_recipient = {r.recipients[0]: r for r in mailbox.received}
    assert sorted(by_recipient) == [WANG, ZHOU] and len(mailbox.received) == 2
    wang = by_recipient[WANG].message()
    assert by_recipient[WANG].sender == "library@school.example"
    assert wang["To"].addresses[0].display_name == "王老师" and wang["To"].addresses[0].addr_spec == WANG
    assert "三(2)班" in wang["Subject"] and wang["Subject"].isprintable()
    raw_headers = by_recipient[WANG].data.split(b"\r\n\r\n", 1)[0]
    assert raw_headers.isascii() and b"=?utf-8?" in raw_headers  # RFC 2047 words, not raw UTF-8
    body = wang.get_content()
    assert wang.get_content_charset() == "utf-8"
    assert "王小明: 小王子" in body and "李雷: 夏洛的网" in body and "王小明: 西游记" in body
    overdue_part, _, soon_part = body.partition("(by ")
    assert "小王子" in overdue_part and "西游记" in soon_part and "夏洛的网" not in soon_part
    assert "韩梅梅" not in body and "阳光小学" in body and "窗边的小豆豆" not in body
    zhou = by_recipient[ZHOU].message()
    assert "草房子" in zhou.get_content() and "9 days overdue" in zhou.get_content()
    assert zhou["Message-ID"].startswith("<bookcorner-notice-")

    outbox = rows(store)
    assert set(outbox) == {"三(2)班", "四(1)班", "五(1)班"}  # 六(1)班's book is not due this week
    assert outbox["三(2)班"]["status"] == "sent" and outbox["三(2)班"]["attempts"] == 1
    assert outbox["三(2)班"]["sent_at"] is not None and outbox["三(2)班"]["books"] == 3
    assert outbox["五(1)班"]["status"] == "held" and "No e-mail address" in outbox["五(1)班"]["last_error"]
    assert notices.send_due(store, EmailChannel(notices.smtp_settings(store))) == {"sent": 0, "failed": 0, "held": 0}
    assert len(mailbox.received) == 2

    every_day(store, "zh_CN")  # in Chinese, the school's language: what was written is what arrives
    assert notices.plan_now(store, "Ms Li", db.now(), ZONE) == 3
    notices.send_due(store, EmailChannel(notices.smtp_settings(store)))
    chinese = next(r.message() for r in mailbox.received[2:] if r.recipients == [WANG])
    with store.reading() as conn:
        written = conn.execute(select(db.notices.c.subject, db.notices.c.body).where(
            db.notices.c.class_name == "三(2)班", db.notices.c.language == "zh_CN")).one()
    assert chinese["Subject"] == written.subject and "三(2)班" in written.subject
    assert chinese.get_content().replace("\r\n", "\n") == written.body
    assert all(word in written.body for word in ("王小明", "小王子", "李雷", "夏洛的网", "西游记", "阳光小学"))


def test_mail_server_down_then_up_each_notice_sent_exactly_once(store, mailbox):
    a_school(store)
    every_day(store, "en")
    notices.save_smtp(store, "Ms Li", settings_for(mailbox), db.now())
    mailbox.stop()
    start = db.now()
    clock = [start]
    notices.plan_scheduled(store, start, ZONE)
    channel = EmailChannel(notices.smtp_settings(store), timeout=5)
    assert notices.send_due(store, channel, lambda: clock[0]) == {"sent": 0, "failed": 2, "held": 0}
    down = rows(store)["三(2)班"]
    assert down["status"] == "failed" and down["attempts"] == 1 and "Connection refused" in down["last_error"]
    assert down["next_try"] == start + notices.FIRST_WAIT
    clock[0] = start + timedelta(seconds=30)  # not yet time to try again
    assert notices.send_due(store, channel, lambda: clock[0])["failed"] == 0
    clock[0] = start + timedelta(seconds=61)  # still down: the next wait is twice as long
    assert notices.send_due(store, channel, lambda: clock[0])["failed"] == 2
    assert rows(store)["三(2)班"]["next_try"] == clock[0] + 2 * notices.FIRST_WAIT

    mailbox.start()
    clock[0] += timedelta(minutes=3)
    assert notices.send_due(store, channel, lambda: clock[0]) == {"sent": 2, "failed": 0, "held": 0}
    for later in (5, 60, 600):
        clock[0] += timedelta(minutes=later)
        assert notices.send_due(store, channel, lambda: clock[0])["sent"] == 0
    assert notices.plan_scheduled(store, start + timedelta(minutes=1), ZONE) == 0
    assert sorted(r.recipients[0] for r in mailbox.received) == [WANG, ZHOU]
    sent = rows(store)["四(1)班"]
    assert sent["status"] == "sent" and sent["attempts"] == 3 and sent["last_error"] is None


def test_too_many_failures_are_held_for_the_librarian(store):
    a_school(store)
    every_day(store)
    notices.plan_scheduled(store, db.now(), ZONE)

    class Down:
        name = "email"

        def send(self, outgoing: Outgoing) -> None:
            raise Delivery("421 4.3.2 Service not available, closing transmission channel", permanent=False)

    clock = [db.now()]
    for _ in range(notices.MAX_ATTEMPTS):
        notices.send_due(store, Down(), lambda: clock[0])
        clock[0] += notices.LONGEST_WAIT
    held = rows(store)["四(1)班"]
    assert held["status"] == "held" and held["attempts"] == notices.MAX_ATTEMPTS
    assert held["last_error"] == "421 4.3.2 Service not available, closing transmission channel"
    assert notices.send_due(store, Down(), lambda: clock[0] + timedelta(days=1))["failed"] == 0  # not tried again


def test_wrong_password_and_refused_address_are_held_then_sent_once_fixed(store, mailbox):
    a_school(store)
    every_day(store)
    mailbox.handler.refuse.add(ZHOU)
    notices.save_smtp(store, "Ms Li", settings_for(mailbox, "wrong"), db.now())
    notices.plan_scheduled(store, db.now(), ZONE)
    assert notices.send_due(store, EmailChannel(notices.smtp_settings(store)))["held"] == 2
    held = rows(store)
    assert held["三(2)班"]["status"] == "held" and held["三(2)班"]["last_error"].startswith("535 ")
    assert "Authentication" in held["三(2)班"]["last_error"] and not mailbox.received

    assert notices.save_smtp(store, "Ms Li", settings_for(mailbox), db.now()) == 2  # the addressed two again
    assert notices.send_due(store, EmailChannel(notices.smtp_settings(store))) == {"sent": 1, "failed": 0, "held": 1}
    refused = rows(store)["四(1)班"]
    assert refused["status"] == "held"
    assert refused["last_error"] == (f"550 5.1.1 <{ZHOU}>: Recipient address rejected: User unknown in virtual "
                                     "mailbox table")

    notices.set_class_teacher(store, "Ms Li", "四(1)班", "周老师", "zhou.laoshi@school.example", db.now())
    assert notices.send_due(store, EmailChannel(notices.smtp_settings(store)))["sent"] == 1
    assert sorted(r.recipients[0] for r in mailbox.received) == [WANG, "zhou.laoshi@school.example"]
    with pytest.raises(notices.Refused):
        notices.send_again(store, "Ms Li", rows(store)["四(1)班"]["notice_id"], db.now())  # sent: never again


def test_a_notice_half_sent_when_the_server_stopped_is_held_not_sent_again(store, mailbox):
    a_school(store)
    every_day(store)
    notices.save_smtp(store, "Ms Li", settings_for(mailbox), db.now())
    notices.plan_scheduled(store, db.now(), ZONE)

    class Killed:
        name = "email"

        def send(self, outgoing: Outgoing) -> None:
            raise SystemExit("the server was stopped mid-send")

    with pytest.raises(SystemExit):
        notices.send_due(store, Killed())
    assert sorted(r["status"] for r in rows(store).values()) == ["held", "pending", "sending"]
    assert notices.recover(store) == 1
    assert notices.send_due(store, EmailChannel(notices.smtp_settings(store)))["sent"] == 1
    halted = next(r for r in rows(store).values() if r["status"] == "held" and r["recipient"])
    assert "may have arrived" in halted["last_error"] and len(mailbox.received) == 1
    notices.save_smtp(store, "Ms Li", settings_for(mailbox), db.now())  # saving the mail server, or the
    notices.set_class_teacher(store, "Ms Li", halted["class_name"], "老师", halted["recipient"], db.now())  # name
    assert notices.send_due(store, EmailChannel(notices.smtp_settings(store)))["sent"] == 0  # sends it not again
    notices.send_again(store, "Ms Li", halted["notice_id"], db.now())  # the librarian asked the teacher
    assert notices.send_due(store, EmailChannel(notices.smtp_settings(store)))["sent"] == 1
    assert len(mailbox.received) == 2


def test_send_now_once_a_day_and_the_schedule_in_the_school_zone(store, mailbox):
    a_school(store)
    notices.save_smtp(store, "Ms Li", settings_for(mailbox), db.now())
    assert notices.plan_scheduled(store, db.now(), ZONE) == 0  # no weekdays chosen: nothing scheduled
    assert notices.plan_now(store, "Ms Li", db.now(), ZONE) == 3
    assert notices.plan_now(store, "Ms Li", db.now(), ZONE) == 0
    notices.send_due(store, EmailChannel(notices.smtp_settings(store)))
    assert len(mailbox.received) == 2
    assert {r["period"] for r in rows(store).values()} == {f"{local_today().isoformat()} now"}
    monday_8 = notices.Schedule([0], time(8, 0))
    # Monday 2026-12-07 07:59 in Shanghai is 23:59 on Sunday in UTC: the slot is the Monday before
    before = datetime(2026, 12, 6, 23, 59, tzinfo=timezone.utc)
    assert notices.latest_slot(monday_8, before, ZONE) == datetime(2026, 11, 30, 8, 0, tzinfo=ZONE)
    after = datetime(2026, 12, 7, 0, 0, tzinfo=timezone.utc)
    assert notices.latest_slot(monday_8, after, ZONE) == datetime(2026, 12, 7, 8, 0, tzinfo=ZONE)
    assert notices.latest_slot(notices.Schedule([], time(8, 0)), after, ZONE) is None


def test_starttls_with_the_schools_certificate():
    authority = trustme.CA()  # the school's own CA, which the server trusts and the system does not
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_side)
    box = Mailbox(tls=server_side).start()
    try:
        settings = SmtpSettings("127.0.0.1", box.port, "starttls", USER, PASSWORD, "library@school.example")
        reference = f"bookcorner-notice-{uuid.uuid4().hex}"
        outgoing = Outgoing("teacher@school.example", "陈老师", "三(2)班：逾期图书", "小王子\n", reference)
        with pytest.raises(Delivery) as untrusted:  # a certificate of no CA the system trusts: tried again later
            EmailChannel(settings, timeout=5).send(outgoing)
        assert not untrusted.value.permanent and "CERTIFICATE_VERIFY_FAILED" in untrusted.value.message
        trusting = ssl.create_default_context()
        authority.configure_trust(trusting)
        EmailChannel(settings, timeout=5, context=trusting).send(outgoing)
        plain = SmtpSettings("127.0.0.1", box.port, "none", USER, PASSWORD, "library@school.example")
        with pytest.raises(Delivery) as refused:  # the server offers no login before STARTTLS
            EmailChannel(plain, timeout=5).send(outgoing)
        assert refused.value.permanent and "AUTH extension not supported" in refused.value.message
    finally:
        box.stop()
    message = box.received[0].message()
    assert message["Subject"] == "三(2)班：逾期图书" and message.get_content().splitlines() == ["小王子"]
    assert message["Message-ID"].strip() == f"<{reference}@school.example>"


def test_the_keeper_sends_on_schedule_by_itself_and_holds_what_a_stop_left_half_sent(store, mailbox):
    a_school(store)
    every_day(store)
    notices.save_smtp(store, "Ms Li", settings_for(mailbox), db.now())
    keeper = notices.NoticeKeeper(store, every=0.1)
    keeper.start()
    try:
        deadline = datetime.now(timezone.utc) + timedelta(seconds=20)
        while len(mailbox.received) < 2 and datetime.now(timezone.utc) < deadline:
            time_module.sleep(0.05)
    finally:
        keeper.stop()
    assert sorted(r.recipients[0] for r in mailbox.received) == [WANG, ZHOU]
    assert {r["status"] for r in rows(store).values()} == {"sent", "held"}

    with store.writing() as conn:  # as a stop in the middle of a send leaves one
        conn.execute(db.notices.update().where(db.notices.c.class_name == "四(1)班").values(status="sending"))
    keeper = notices.NoticeKeeper(store, every=0.1)
    keeper.start()
    time_module.sleep(0.5)
    keeper.stop()
    assert rows(store)["四(1)班"]["status"] == "held" and len(mailbox.received) == 2
