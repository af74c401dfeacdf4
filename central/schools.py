"""Many schools on one central server (a district), each a tenant of its own.

A school's roster, catalogue, rules, calendar, timetable, kiosks, librarians, loans and
events live apart from every other school's: on PostgreSQL in a schema of its own
(``school_<slug>``), reached through the one shared pool with the search path set in each
transaction (``db.Store.in_schema``); on SQLite in a database file of its own beside the
first one (``schools/<slug>.db``). So a query can only ever see one school: nothing in the
code between the request and the rows has to remember to filter by school.

The **implicit school** is the database as it always was (``public``, or the one SQLite
file): a single-school installation never names a school and nothing changes for it; a
database made before schools existed is that school, migrated in place. A district adds
schools with ``bookcorner central add-school``; they are listed in the ``schools`` table of
the implicit school's database (this module's own registry).

Which school a request belongs to is part of its credential: a school's kiosk and librarian
credentials, and its dashboard sessions, start with the school's slug and a dot
(``north-hill.Xy…``); the implicit school's carry no prefix. The server looks the credential
up in that school's tables only, so a credential (or session) is known in one school and no
other: changing the prefix makes it unknown. A district's own staff have credentials of the
role ``district`` in the implicit school: they see every school's figures
(``central.services.district``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Column, Date, Integer, MetaData, String, Table, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from bookcorner.central import db

#: a school's short name in addresses and credentials: lower-case letters, digits and
#: hyphens, starting with a letter (it becomes the schema ``school_<slug>`` with ``_`` for ``-``)
SLUG = re.compile(r"[a-z][a-z0-9-]{0,39}")
#: names a school may not take (they name other things in the district)
RESERVED = frozenset({"district", "public", "default", "all", "admin"})

registry = MetaData()
#: the district's schools but the implicit one (which is always there), in the implicit school's database
schools = Table(
    "schools", registry,
    Column("slug", String(40), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("created_at", db.UTCDateTime, nullable=False),
)
#: every school's figures for the district's page as the job last counted them, one row a school
#: (``""``: the implicit school), beside the registry (``central.services.district``): the page
#: reads this one table instead of counting in 300 schools' schemas
district_figures = Table(
    "district_figures", registry,
    Column("slug", String(40), primary_key=True),
    Column("name", String(120), nullable=False),  # the name its reference data gives ("" for none)
    Column("counted_at", db.UTCDateTime, nullable=False),
    Column("term_start", Date, nullable=True),
    *(Column(name, Integer, nullable=False) for name in (
        "loans_this_term", "on_loan", "overdue", "waiting_review", "kiosks", "kiosks_silent", "books", "pupils")),
    Column("last_contact", db.UTCDateTime, nullable=True),
)


class UnknownSchool(LookupError):
    """No school of that slug on this server."""


class BadSlug(ValueError):
    """Not a slug a school can have."""


class SchoolExists(ValueError):
    """A school of that slug is there already."""


@dataclass(frozen=True)
class School:
    slug: str  # "" for the implicit school
    name: str
    created_at: datetime | None = None


def schema_of(slug: str) -> str:
    return "school_" + slug.replace("-", "_")


def school_of_secret(secret: str) -> tuple[str, str]:
    """(slug, the rest) of a credential or session secret: the school it names ("" for none).
    Secrets are URL-safe base64 (no dots), so a dot only ever ends a school's slug."""
    slug, dot, rest = secret.partition(".")
    return (slug, rest) if dot else ("", secret)


def prefixed(store: db.Store, secret: str) -> str:
    """A credential or session secret of ``store``'s school, as it is handed out."""
    return f"{store.school}.{secret}" if store.school else secret


def check_slug(slug: str) -> str:
    if not SLUG.fullmatch(slug) or slug in RESERVED or slug.endswith("-"):
        raise BadSlug(slug)
    return slug


class Schools:
    """The district's schools, each as a ``db.Store`` of its own (made once, then kept)."""

    def __init__(self, root: db.Store, reports: db.Store | None = None) -> None:
        self.root = root
        #: where the heavy reports read (a hot standby), for the implicit school; others follow it
        self.reports_root = reports or root
        self._stores: dict[str, tuple[db.Store, db.Store]] = {"": (root, self.reports_root)}
        self._lock = threading.Lock()
        self._registry_ready = False

    # -- the registry ---------------------------------------------------------------------------

    def ensure_registry(self) -> None:
        """The ``schools`` and ``district_figures`` tables, made if missing (in the implicit school's
        database: they are the district's, not a school's, so no school's migrations make them)."""
        if self._registry_ready:
            return
        with self.root.writing() as conn:
            registry.create_all(conn, checkfirst=True)
        self._registry_ready = True

    def listed(self) -> list[School]:
        """Every school, the implicit one first."""
        self.ensure_registry()
        with self.root.reading() as conn:
            rows = conn.execute(select(schools).order_by(schools.c.slug)).all()
        return [School("", ""), *(School(r.slug, r.name, r.created_at) for r in rows)]

    def add(self, slug: str, name: str) -> School:
        """A new school: its schema or file made and migrated, then listed (so a school that is
        listed always has its tables). Raises BadSlug, SchoolExists."""
        check_slug(slug)
        self.ensure_registry()
        with self.root.reading() as conn:
            if conn.execute(select(schools.c.slug).where(schools.c.slug == slug)).first():
                raise SchoolExists(slug)
        store = self._open(slug)
        if store.schema:
            with self.root.writing() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {store.schema}")
        store.migrate()
        at = db.now()
        try:
            with self.root.writing() as conn:
                conn.execute(schools.insert().values(slug=slug, name=name or slug, created_at=at))
        except IntegrityError:
            raise SchoolExists(slug) from None
        return School(slug, name or slug, at)

    # -- the schools' stores --------------------------------------------------------------------

    def store(self, slug: str) -> db.Store:
        """The school's store (``""``: the implicit school's). Raises UnknownSchool."""
        return self._pair(slug)[0]

    def reports(self, slug: str) -> db.Store:
        """Where the school's heavy reports read (its schema on the hot standby, when there is one)."""
        return self._pair(slug)[1]

    def stores(self) -> Iterator[db.Store]:
        """Every school's store, the implicit school's first (the background jobs go round them)."""
        for school in self.listed():
            try:
                yield self.store(school.slug)
            except UnknownSchool:  # (retired between the listing and here)
                continue

    def _pair(self, slug: str) -> tuple[db.Store, db.Store]:
        found = self._stores.get(slug)
        if found is not None:
            return found
        if not SLUG.fullmatch(slug):
            raise UnknownSchool(slug)
        self.ensure_registry()
        with self.root.reading() as conn:
            if conn.execute(select(schools.c.slug).where(schools.c.slug == slug)).first() is None:
                raise UnknownSchool(slug)
        store = self._open(slug)
        reports = store if self.reports_root is self.root else self._open(slug, self.reports_root)
        with self._lock:
            return self._stores.setdefault(slug, (store, reports))

    def _open(self, slug: str, root: db.Store | None = None) -> db.Store:
        root = root or self.root
        if not root.sqlite:
            return root.in_schema(slug, schema_of(slug))
        path = root.url.split(":///", 1)[-1]
        if not path or path == ":memory:":
            raise UnknownSchool(slug)  # (an in-memory database has nowhere to put a second school)
        store = db.Store(str(Path(path).parent / "schools" / f"{slug}.db"))
        store.school = slug
        return store

    def migrate_all(self) -> None:
        """Every listed school's tables brought up to date (the implicit school's are the caller's).
        On PostgreSQL the schools already at the program's last migration are found in one
        statement and left alone: every command and the server's start call this, and running
        alembic in each of 300 schools' schemas took 30–40 s even with nothing to do."""
        pending = self.listed()[1:]
        if pending and not self.root.sqlite:
            current = self._revisions([school.slug for school in pending])
            if current is not None:
                from bookcorner.central.migrations import head

                last = head()
                pending = [school for school in pending if current.get(school.slug) != last]
        for school in pending:
            self.store(school.slug).migrate()

    def _revisions(self, slugs: list[str]) -> dict[str, str] | None:
        """Each school's migration revision, read in one statement over their schemas (PostgreSQL);
        None when it cannot be read so (a school's schema without its version table): then every
        school is migrated the slow way, which says what is wrong."""
        if not all(db.SCHEMA_NAME.fullmatch(schema_of(slug)) for slug in slugs):
            return None
        parts = [f"SELECT %(s{n})s AS slug, version_num FROM {schema_of(slug)}.alembic_version"
                 for n, slug in enumerate(slugs)]
        try:
            with self.root.reading() as conn:
                rows = conn.exec_driver_sql(" UNION ALL ".join(parts),
                                            {f"s{n}": slug for n, slug in enumerate(slugs)}).all()
        except DBAPIError:
            return None
        return {row.slug: row.version_num for row in rows}

    def dispose(self) -> None:
        """Closes the SQLite schools' own files (PostgreSQL's share the implicit school's pool)."""
        with self._lock:
            for slug, (store, reports) in list(self._stores.items()):
                if slug and store.sqlite:
                    store.dispose()
                    if reports is not store:
                        reports.dispose()
                if slug:
                    del self._stores[slug]
