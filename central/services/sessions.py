"""Librarians signing in to the dashboard: server-side sessions and form tokens.

A librarian signs in with their name and the credential ``bookcorner central
add-librarian`` printed (the database keeps only its SHA-256 hash; a credential is 256
random bits, so a slow password hash would add nothing). A session is a random secret in
an HttpOnly, SameSite=Strict cookie scoped to /dashboard; the database keeps its hash,
the librarian it belongs to, its expiry and the form token (CSRF) every state-changing
request must carry. Revoking the credential or signing out ends the session at once.
Kiosk credentials are never looked at here (only a session cookie opens the dashboard),
and a session is never a credential for the kiosk API (which reads only the bearer header).

Failed sign-ins are slowed, then refused for a while. Each failure is an audit record
(``sign_in.failed``: the name typed, the client's address), and so is each success, so
the limits hold across several server processes (they share the database) and the
librarian sees the attempts on the audit page. In the last ``WINDOW``, counting only
failures since that address last signed in: ``ADDRESS_LIMIT`` failures from one address
refuse it (any name), ``PAIR_LIMIT`` failures for one name from one address refuse that
name there; a refused attempt is not even checked, nor recorded. A name's failures from
every address only slow the answers to failures (after ``SLOW_AFTER``, doubling up to
``MAX_DELAY_S``): refusing a name everywhere would let anyone lock the librarian out, and
a correct credential is never delayed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.engine import Connection

from bookcorner.central import db
from bookcorner.central.kiosks import DISTRICT, LIBRARIAN
from bookcorner.protocol.credentials import token_hash

SESSION_COOKIE = "bc_session"
SIGN_IN_COOKIE = "bc_sign_in"
SESSION_HOURS = 12
#: who may sign in to the dashboard (never a kiosk)
SIGN_IN_ROLES = (LIBRARIAN, DISTRICT)
#: the audit actions of sign-ins, and the limits on failed ones (see above)
SIGNED_IN, FAILED = "sign_in", "sign_in.failed"
WINDOW = timedelta(minutes=15)
ADDRESS_LIMIT = 10
PAIR_LIMIT = 5
SLOW_AFTER = 3
MAX_DELAY_S = 2.0


@dataclass(frozen=True)
class Session:
    name: str
    csrf: str
    session_hash: str
    #: LIBRARIAN, or DISTRICT for the district's own staff (who see the district's page only)
    role: str = LIBRARIAN


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two tokens (neither may be empty)."""
    return bool(a and b and hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8")))


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Attempt:
    """How a sign-in went: ``secret`` for the new session's cookie when it succeeded;
    ``refused_until`` when too many failures refused it unchecked; ``delay_s``: how long
    to hold the answer to a failure."""

    secret: str | None = None
    refused_until: datetime | None = None
    delay_s: float = 0.0
    #: whose credential signed in (LIBRARIAN or DISTRICT)
    role: str = LIBRARIAN


def _address_target(address: str) -> str:
    return f"address:{address}"[:120]


def _until(times: list[datetime], limit: int) -> datetime | None:
    """When fewer than ``limit`` of these failures are left in the window (None: already)."""
    return sorted(times)[-limit] + WINDOW if len(times) >= limit else None


def sign_in(store: db.Store, name: str, credential: str, address: str = "") -> Attempt:
    """Check a name and credential (a librarian's only: a kiosk's is refused), within the
    limits on failed sign-ins from ``address`` (the client's) and for ``name``."""
    name, at = name[:120], db.now()
    target = _address_target(address)
    with store.writing() as conn:
        here, failed = _recent_failures(conn, name, target, at)
        until = [u for u in (_until([r.at for r in here], ADDRESS_LIMIT),
                             _until([r.at for r in here if r.who == name], PAIR_LIMIT)) if u is not None]
        if until:
            return Attempt(refused_until=max(until))
        row = _librarian_credential(conn, name, credential)
        if row is None:
            conn.execute(db.audit_log.insert().values(at=at, who=name, action=FAILED, target=target, detail=json.dumps(
                {"address": address, "name": name}, ensure_ascii=False)))
            failures = max(len(here), sum(r.who == name for r in failed)) + 1
            return Attempt(delay_s=min(MAX_DELAY_S, 0.25 * 2 ** (failures - SLOW_AFTER)) if failures >= SLOW_AFTER
                           else 0.0)
        secret = new_secret()
        conn.execute(delete(db.dashboard_sessions).where(db.dashboard_sessions.c.expires_at < at))
        conn.execute(db.dashboard_sessions.insert().values(
            session_hash=_hash(secret), token_hash=row.token_hash, name=row.name, csrf=new_secret(), created_at=at,
            expires_at=at + timedelta(hours=SESSION_HOURS)))
        conn.execute(db.audit_log.insert().values(at=at, who=row.name, action=SIGNED_IN, target=target,
                                                  detail=json.dumps({"address": address}, ensure_ascii=False)))
    return Attempt(secret=secret, role=row.role)


def _recent_failures(conn: Connection, name: str, target: str, at: datetime) -> tuple[list[Any], list[Any]]:
    """The failed sign-ins in the window: from this address since it last signed in, and
    every one (for this name or address)."""
    a = db.audit_log.c
    recent = conn.execute(select(a.at, a.action, a.who, a.target).where(
        a.at > at - WINDOW, a.action.in_((FAILED, SIGNED_IN)), or_(a.target == target, a.who == name))).all()
    since = max((r.at for r in recent if r.action == SIGNED_IN and r.target == target), default=None)
    failed = [r for r in recent if r.action == FAILED]
    return [r for r in failed if r.target == target and (since is None or r.at > since)], failed


def _librarian_credential(conn: Connection, name: str, credential: str) -> Any:
    """The librarian's credential row when ``name`` and ``credential`` match one (else None)."""
    if not name or not credential or len(credential) > 200:
        return None
    row = conn.execute(select(db.credentials).where(db.credentials.c.token_hash == token_hash(credential),
                                                    db.credentials.c.revoked_at.is_(None))).first()
    if row is None or row.role not in SIGN_IN_ROLES or not hmac.compare_digest(row.name.encode(), name.encode()):
        return None
    return row


def session_of(store: db.Store, secret: str | None) -> Session | None:
    if not secret or len(secret) > 100:
        return None
    s, c = db.dashboard_sessions.c, db.credentials.c
    with store.reading() as conn:
        row = conn.execute(
            select(s.name, s.csrf, s.session_hash, c.role)
            .join_from(db.dashboard_sessions, db.credentials, s.token_hash == c.token_hash)
            .where(s.session_hash == _hash(secret), s.expires_at > db.now(), c.revoked_at.is_(None),
                   c.role.in_(SIGN_IN_ROLES))).first()
    return Session(row.name, row.csrf, row.session_hash, row.role) if row else None


def sign_out(store: db.Store, session: Session) -> None:
    with store.writing() as conn:
        conn.execute(delete(db.dashboard_sessions).where(db.dashboard_sessions.c.session_hash == session.session_hash))
