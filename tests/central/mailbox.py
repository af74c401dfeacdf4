"""A real SMTP server for the notices' tests (aiosmtpd, on a port of loopback): it asks
for a login, keeps every message it takes as the bytes it received, and refuses the
recipients it is told to refuse, as a school's mail server would. It can be stopped and
started again on the same port (the mail server down, then up)."""

from __future__ import annotations

import socket
import ssl
import warnings
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD = "library@school.example", "s3cret pass!"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                                      or envelope.content))
        return "250 Message accepted for delivery"


def _login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER \
        and auth_data.password.decode() == PASSWORD
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """``start()``/``stop()`` the server on ``port``; ``received``: what it took, in order."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.port = free_port()
        self.handler = _Handler()
        self.tls = tls
        self._controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> Mailbox:
        extra: dict[str, Any] = {"tls_context": self.tls, "require_starttls": True} if self.tls else {}
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)  # a loopback test
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, authenticator=_login,
                                      auth_required=True, auth_require_tls=self.tls is not None, **extra)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
