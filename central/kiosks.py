"""Kiosks and librarians: issuing credentials, recognising them, listing kiosks."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from bookcorner.central import db
from bookcorner.central.schools import Schools, UnknownSchool, prefixed, school_of_secret
from bookcorner.protocol.credentials import new_token, signing_key, token_hash
from bookcorner.protocol.messages import KioskInfo, KioskList

KIOSK, LIBRARIAN = "kiosk", "librarian"
#: the district's own staff: every school's figures on the dashboard, nothing to change (``central.schools``)
DISTRICT = "district"


class KioskExists(ValueError):
    pass


class Audit(NamedTuple):
    """The audit record of a credential the librarian issued from the dashboard, written in
    the credential's own transaction (so there is never one without the other)."""

    who: str
    action: str
    target: str
    detail: dict[str, Any]

    def write(self, conn: Connection, at: datetime) -> None:
        conn.execute(db.audit_log.insert().values(at=at, who=self.who, action=self.action, target=self.target[:120],
                                                  detail=json.dumps(self.detail, ensure_ascii=False)))


@dataclass(frozen=True)
class Principal:
    role: str
    name: str
    kiosk_id: str | None
    #: the school whose credential it is ("": the implicit school; ``central.schools``)
    school: str = ""


def add_kiosk(store: db.Store, kiosk_id: str, name: str = "", *, reissue: bool = False,
              audit: Audit | None = None) -> str:
    """A credential for a kiosk; printed once, never stored (only its hash).

    ``reissue``: the kiosk exists (a replaced SD card, a leaked credential): its old
    credentials stop working, its history stays. ``audit``: written in the same transaction.
    The credential names the store's school (``central.schools``)."""
    token = prefixed(store, new_token())
    at = db.now()
    with store.writing() as conn:
        exists = conn.execute(select(db.kiosks.c.kiosk_id).where(db.kiosks.c.kiosk_id == kiosk_id)).first()
        if exists and not reissue:
            raise KioskExists(kiosk_id)
        if exists:
            conn.execute(update(db.credentials).where(db.credentials.c.kiosk_id == kiosk_id,
                                                      db.credentials.c.revoked_at.is_(None)).values(revoked_at=at))
            conn.execute(update(db.kiosks).where(db.kiosks.c.kiosk_id == kiosk_id)
                         .values(signing_key=signing_key(token).hex(), **({"name": name} if name else {})))
        else:
            conn.execute(db.kiosks.insert().values(
                kiosk_id=kiosk_id, name=name or kiosk_id, provisioned=at, signing_key=signing_key(token).hex(),
                applied_seq=0, max_seq=0, events=0))
        conn.execute(db.credentials.insert().values(token_hash=token_hash(token), role=KIOSK, name=name or kiosk_id,
                                                    kiosk_id=kiosk_id, created_at=at))
        if audit is not None:
            audit.write(conn, at)
    return token


def add_librarian(store: db.Store, name: str, *, audit: Audit | None = None) -> str:
    """A librarian's credential (``audit``: written in the same transaction), of the store's school."""
    return _person(store, name, LIBRARIAN, audit)


def add_district_user(store: db.Store, name: str, *, audit: Audit | None = None) -> str:
    """A credential of the district's own staff (``DISTRICT``): they sign in to the dashboard
    and see every school's figures, and change nothing of any school. Kept with the implicit
    school's credentials (``store`` must be its store)."""
    if store.school:
        raise ValueError("district credentials belong to the implicit school's database")
    return _person(store, name, DISTRICT, audit)


def _person(store: db.Store, name: str, role: str, audit: Audit | None) -> str:
    token = prefixed(store, new_token())
    at = db.now()
    with store.writing() as conn:
        conn.execute(db.credentials.insert().values(token_hash=token_hash(token), role=role, name=name,
                                                    kiosk_id=None, created_at=at))
        if audit is not None:
            audit.write(conn, at)
    return token


def signing_key_of(store: db.Store, kiosk_id: str) -> bytes | None:
    with store.reading() as conn:
        key = conn.execute(select(db.kiosks.c.signing_key).where(db.kiosks.c.kiosk_id == kiosk_id)).scalar()
    return bytes.fromhex(key) if key else None


class Authenticator:
    """Recognises credentials; remembers each answer for two seconds, so a kiosk's
    stream of pushes costs one lookup, and a revoked credential stops within them."""

    def __init__(self, schools: Schools, ttl_s: float = 2.0) -> None:
        self.schools, self.ttl_s = schools, ttl_s
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, token: str) -> Principal | None:
        digest = token_hash(token)
        moment = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and moment - hit[0] < self.ttl_s:
            return hit[1]
        slug, _rest = school_of_secret(token)
        try:  # looked up in the tables of the school it names, and no other's
            store = self.schools.store(slug)
        except UnknownSchool:
            row = None
        else:
            with store.reading() as conn:
                row = conn.execute(select(db.credentials).where(db.credentials.c.token_hash == digest,
                                                                db.credentials.c.revoked_at.is_(None))).first()
        principal = Principal(row.role, row.name, row.kiosk_id, slug) if row else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (moment, principal)
        return principal


def list_kiosks(store: db.Store) -> KioskList:
    def iso(value) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    with store.reading() as conn:
        open_reviews: dict[str, int] = dict(conn.execute(
            select(db.reviews.c.kiosk_id, func.count()).where(db.reviews.c.resolved_at.is_(None))
            .group_by(db.reviews.c.kiosk_id)).all())
        rows = conn.execute(select(db.kiosks).order_by(db.kiosks.c.kiosk_id)).all()
    return KioskList([
        KioskInfo(kiosk_id=r.kiosk_id, name=r.name, provisioned=iso(r.provisioned) or "", last_contact=iso(r.last_contact),
                  applied_seq=r.applied_seq, events=r.events, needs_review=open_reviews.get(r.kiosk_id, 0),
                  last_boot_id=r.last_boot_id, clock_offset_s=r.clock_offset_s)
        for r in rows
    ])


def open_reviews(store: db.Store, kiosk_id: str | None = None, limit: int = 200) -> list[dict]:
    """The review queue, oldest first (for ``bookcorner central reviews`` and the dashboard)."""
    query = select(db.reviews).where(db.reviews.c.resolved_at.is_(None)).order_by(db.reviews.c.review_id).limit(limit)
    if kiosk_id:
        query = query.where(db.reviews.c.kiosk_id == kiosk_id)
    with store.reading() as conn:
        return [{**row._asdict(), "detail": msgspec.json.decode(row.detail)} for row in conn.execute(query)]
