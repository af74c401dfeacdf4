"""Librarians signing in to the dashboard: server-side sessions and form tokens.

A librarian signs in with their name and the credential ``bookcorner central
add-librarian`` printed (the database keeps only its SHA-256 hash; a credential is 256
random bits, so a slow password hash would add nothing). A session is a random secret in
an HttpOnly, SameSite=Strict cookie scoped to /dashboard; the database keeps its hash,
the librarian it belongs to, its expiry and the form token (CSRF) every state-changing
request must carry. Revoking the credential or signing out ends the session at once.
Kiosk credentials are never looked at here (only a session cookie opens the dashboard),
and a session is never a credential for the kiosk API (which reads only the bearer header).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from central import db
from central.kiosks import LIBRARIAN
from protocol.credentials import token_hash

SESSION_COOKIE = "bc_session"
SIGN_IN_COOKIE = "bc_sign_in"
SESSION_HOURS = 12


@dataclass(frozen=True)
class Session:
    name: str
    csrf: str
    session_hash: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two tokens (neither may be empty)."""
    return bool(a) and bool(b) and hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def sign_in(store: db.Store, name: str, credential: str) -> str | None:
    """A new session's secret (for the cookie), or None when the name and credential are
    not a librarian's (a kiosk's credential included)."""
    if not name or not credential or len(credential) > 200 or len(name) > 120:
        return None
    digest = token_hash(credential)
    secret = new_secret()
    at = db.now()
    with store.writing() as conn:
        row = conn.execute(select(db.credentials).where(db.credentials.c.token_hash == digest,
                                                        db.credentials.c.revoked_at.is_(None))).first()
        if row is None or row.role != LIBRARIAN or not hmac.compare_digest(row.name.encode(), name.encode()):
            return None
        conn.execute(delete(db.dashboard_sessions).where(db.dashboard_sessions.c.expires_at < at))
        conn.execute(db.dashboard_sessions.insert().values(
            session_hash=_hash(secret), token_hash=digest, name=row.name, csrf=new_secret(), created_at=at,
            expires_at=at + timedelta(hours=SESSION_HOURS)))
    return secret


def session_of(store: db.Store, secret: str | None) -> Session | None:
    if not secret or len(secret) > 100:
        return None
    s, c = db.dashboard_sessions.c, db.credentials.c
    with store.reading() as conn:
        row = conn.execute(
            select(s.name, s.csrf, s.session_hash)
            .join_from(db.dashboard_sessions, db.credentials, s.token_hash == c.token_hash)
            .where(s.session_hash == _hash(secret), s.expires_at > db.now(), c.revoked_at.is_(None),
                   c.role == LIBRARIAN)).first()
    return Session(row.name, row.csrf, row.session_hash) if row else None


def sign_out(store: db.Store, session: Session) -> None:
    with store.writing() as conn:
        conn.execute(delete(db.dashboard_sessions).where(db.dashboard_sessions.c.session_hash == session.session_hash))
