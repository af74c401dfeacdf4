"""SIP2 accounts: the logins a self-check machine, an RFID gate or a library desk uses with
bookcorner's SIP2 server (``central.sip2``).

Each account is a server-side virtual kiosk, ``sip2-<login>``: the loans made through it
are that kiosk's events, with its own gap-free sequence, so the reports, chase lists and
the .koc export see them like any kiosk's. Its password is random, printed once and kept
only as a hash in ``credentials`` (role ``sip2``), like a kiosk's credential; the kiosks
page of the dashboard revokes it (``school.revoke_kiosk``), and every issue is audited.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select, update

from bookcorner.central import db
from bookcorner.central.kiosks import Audit
from bookcorner.central.schools import prefixed
from bookcorner.protocol.credentials import signing_key, token_hash

SIP2 = "sip2"
KIOSK_PREFIX = "sip2-"
#: a login as self-check machines let one type it (and as a kiosk id takes it after the prefix)
LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,58}$")


class AccountExists(ValueError):
    pass


class BadLogin(ValueError):
    pass


def login_of(store: db.Store, login: str) -> str:
    """The login a self-check machine sends for account ``login`` of the store's school."""
    return prefixed(store, login) if store.school and not login.startswith(f"{store.school}.") else login


def kiosk_of(login: str) -> str:
    return KIOSK_PREFIX + login


def _hash(login: str, password: str) -> str:
    # the login is part of what is hashed: the same password for two logins never collides, and a
    # SIP2 password sent as an HTTP bearer token matches nothing
    return token_hash(f"{SIP2}:{login}:{password}")


def add_account(store: db.Store, login: str, *, reissue: bool = False, audit: Audit | None = None) -> str:
    """A new SIP2 account (or, with ``reissue``, a new password for one: the old stops working);
    its password, shown once. A school of a district's account has its login start with the
    school's slug and a dot (``login_of``), so the SIP2 listener knows whose it is."""
    login = login_of(store, login)
    if not LOGIN.match(login):
        raise BadLogin(login)
    password = secrets.token_urlsafe(12)  # 96 random bits, short enough for a self-check's settings screen
    kiosk_id, at = kiosk_of(login), db.now()
    with store.writing() as conn:
        exists = conn.execute(select(db.kiosks.c.kiosk_id).where(db.kiosks.c.kiosk_id == kiosk_id)).first()
        if exists and not reissue:
            raise AccountExists(login)
        if exists:
            conn.execute(update(db.credentials).where(db.credentials.c.kiosk_id == kiosk_id,
                                                      db.credentials.c.revoked_at.is_(None)).values(revoked_at=at))
        else:
            conn.execute(db.kiosks.insert().values(
                kiosk_id=kiosk_id, name=f"SIP2 {login}", provisioned=at, signing_key=signing_key(password).hex(),
                applied_seq=0, max_seq=0, events=0))
        conn.execute(db.credentials.insert().values(token_hash=_hash(login, password), role=SIP2, name=login,
                                                    kiosk_id=kiosk_id, created_at=at))
        if audit is not None:
            audit.write(conn, at)
    return password


def authenticate(store: db.Store, login: str, password: str) -> str | None:
    """The account's virtual kiosk when ``login`` and ``password`` are a live SIP2 account's."""
    if not LOGIN.match(login) or not password:
        return None
    c = db.credentials.c
    with store.reading() as conn:
        row = conn.execute(select(c.kiosk_id).where(c.token_hash == _hash(login, password), c.role == SIP2,
                                                    c.name == login, c.revoked_at.is_(None))).first()
    return row.kiosk_id if row else None
