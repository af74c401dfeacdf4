"""How a notice leaves the server: a ``Channel`` takes one ``Outgoing`` message and either
delivers it or raises ``Delivery`` with the other side's own words and whether trying
again can help. ``EmailChannel`` (SMTP, with STARTTLS or TLS and a login) is the first;
a webhook to the school's messaging platform would be another class with the same
``send`` (the outbox in ``central.services.notices`` knows no more than this).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol

import msgspec

from bookcorner.central import db
from bookcorner.i18n import _

SECURITIES = ("starttls", "tls", "none")
#: seconds to connect and for each reply of the mail server
SMTP_TIMEOUT_S = 30.0


class SmtpSettings(msgspec.Struct, frozen=True, omit_defaults=True):
    """The school's mail server, as the librarian sets it on the dashboard."""

    host: str = ""
    port: int = 587
    #: "starttls" (port 587), "tls" (port 465) or "none" (a relay on the school's own network)
    security: str = "starttls"
    user: str = ""
    password: str = ""
    #: the From address
    sender: str = ""

    def ready(self) -> bool:
        return bool(self.host and self.sender)


@dataclass(frozen=True)
class Outgoing:
    """One notice, as any channel sends it."""

    recipient: str
    #: the recipient's name, when known (the teacher's)
    name: str
    subject: str
    body: str
    #: a stable id of this notice (a Message-ID for e-mail): a receiver can tell a resend
    reference: str


class Delivery(Exception):
    """Not delivered: ``message`` in the other side's own words; ``permanent``: trying again
    as things stand cannot help (a refused login, a refused address)."""

    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.message, self.permanent = message, permanent


class Channel(Protocol):
    #: what the outbox records as the notice's channel
    name: str

    def send(self, outgoing: Outgoing) -> None:
        """Deliver, or raise Delivery."""
        ...


def _reply_text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}".strip()


class EmailChannel:
    """Notices as e-mail through the school's SMTP server (one connection per message:
    a schedule sends a few dozen, and a dropped connection then costs only one)."""

    name = "email"

    def __init__(self, settings: SmtpSettings, timeout: float = SMTP_TIMEOUT_S,
                 context: ssl.SSLContext | None = None) -> None:
        self.settings, self.timeout = settings, timeout
        self.context = context or ssl.create_default_context()

    def message(self, outgoing: Outgoing) -> EmailMessage:
        """UTF-8 headers (RFC 2047 words for a Chinese subject or name) and a UTF-8 body."""
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = Address(outgoing.name, addr_spec=outgoing.recipient) if outgoing.name \
            else outgoing.recipient
        message["Subject"] = outgoing.subject
        message["Date"] = format_datetime(db.now())
        domain = self.settings.sender.rpartition("@")[2] or "bookcorner"
        message["Message-ID"] = f"<{outgoing.reference}@{domain}>"
        message.set_content(outgoing.body, charset="utf-8")
        return message

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "tls":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=self.timeout, context=self.context)
        smtp = smtplib.SMTP(s.host, s.port, timeout=self.timeout)
        if s.security == "starttls":
            smtp.starttls(context=self.context)
        return smtp

    def send(self, outgoing: Outgoing) -> None:
        if not self.settings.ready():
            raise Delivery(_("No mail server is set: set one under Notices, then send again."), True)
        try:
            with self._connect() as smtp:
                if self.settings.user:
                    smtp.login(self.settings.user, self.settings.password)
                smtp.send_message(self.message(outgoing))
        except smtplib.SMTPNotSupportedError as error:  # no login offered (without STARTTLS, perhaps)
            raise Delivery(f"{type(error).__name__}: {error}", permanent=True) from None
        except smtplib.SMTPRecipientsRefused as refused:
            code, reply = next(iter(refused.recipients.values()))
            raise Delivery(_reply_text(code, reply), permanent=code >= 500) from None
        except smtplib.SMTPResponseException as error:  # a refused login (535), sender, message
            raise Delivery(_reply_text(error.smtp_code, error.smtp_error), permanent=error.smtp_code >= 500) from None
        except UnicodeEncodeError:  # smtplib sends a login in ASCII only
            raise Delivery(_("The mail server's user and password can only be sent in ASCII letters, digits and "
                             "signs."), permanent=True) from None
        except (smtplib.SMTPException, OSError) as error:  # refused, unreachable, timed out, dropped, TLS
            raise Delivery(f"{type(error).__name__}: {error}".strip(), permanent=False) from None
