"""Reading challenges on the central server: the librarian sets one (a period, a goal of books
or of categories, the classes taking part), edits it, ends it early; the kiosks get it with
the reading guide (``reading.publish``) and show a child their progress after a borrow; the
dashboard ranks the classes and the children, counted from the server's loans with the same
``progress`` the kiosks use.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from bookcorner.central import db
from bookcorner.central.ingest import upsert
from bookcorner.central.services import reading
from bookcorner.central.zone import school_zone_name
from bookcorner.circulation.challenges import Challenge, Checkout, Progress, category_of, progress
from bookcorner.circulation.suggestions import grade_of

MAX_GOAL = 1000


class ChallengeRefused(ValueError):
    """The challenge cannot be saved as given (``code`` says why, for the dashboard's words)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class ChallengeMeta:
    name: str
    starts_on: date
    ends_on: date
    goal: int
    by_category: bool = False
    #: the classes taking part (empty: every class)
    class_names: tuple[str, ...] = ()


@dataclass
class ChallengeSummary:
    challenge_id: str
    meta: ChallengeMeta
    ended_at: datetime | None
    updated_at: datetime
    updated_by: str

    def state(self, today: date) -> str:
        """"coming" | "running" | "over" (its period passed, or the librarian ended it)."""
        if self.ended_at is not None or today > self.meta.ends_on:
            return "over"
        return "coming" if today < self.meta.starts_on else "running"

    @property
    def challenge(self) -> Challenge:
        m = self.meta
        return Challenge(m.name, m.starts_on, m.ends_on, m.goal, m.by_category, self.challenge_id,
                         frozenset(m.class_names))


@dataclass
class ChildRow:
    patron_id: str
    name: str
    class_name: str
    done: int
    goal: int

    @property
    def reached(self) -> bool:
        return self.done >= self.goal


@dataclass
class ClassRow:
    class_name: str
    children: int
    reached: int
    #: books (or categories) counted for all its children together
    done: int

    @property
    def share(self) -> float:
        """The share of the class's children who reached the goal (0 to 1)."""
        return self.reached / self.children if self.children else 0.0


@dataclass
class Ranking:
    summary: ChallengeSummary
    classes: list[ClassRow] = field(default_factory=list)
    children: list[ChildRow] = field(default_factory=list)


def check(meta: ChallengeMeta) -> None:
    if not meta.name.strip() or len(meta.name) > 200:
        raise ChallengeRefused("name")
    if meta.ends_on < meta.starts_on:
        raise ChallengeRefused("period")
    if not 1 <= meta.goal <= MAX_GOAL:
        raise ChallengeRefused("goal")
    if meta.by_category and meta.goal > 26:
        raise ChallengeRefused("goal_categories")
    if len(",".join(meta.class_names)) > 400 or any("," in c or not c.strip() for c in meta.class_names):
        raise ChallengeRefused("classes")


def save(store: db.Store, meta: ChallengeMeta, who: str, at: datetime, challenge_id: str | None = None) -> str:
    """Saves a new challenge (or ``challenge_id``'s new details) and publishes the reading
    guide; returns its id."""
    check(meta)
    r = db.reading_challenges.c
    with store.writing() as conn:
        ended = None
        if challenge_id is not None:
            kept = conn.execute(select(r.created_at, r.ended_at).where(r.challenge_id == challenge_id)).first()
            if kept is None:
                raise ChallengeRefused("gone")
            created, ended = kept.created_at, kept.ended_at  # an ended challenge stays ended
        else:
            challenge_id, created = secrets.token_hex(8), at
        upsert(conn, db.reading_challenges, ["challenge_id"], [{
            "challenge_id": challenge_id, "name": meta.name.strip(), "starts_on": meta.starts_on,
            "ends_on": meta.ends_on, "goal": meta.goal, "by_category": meta.by_category,
            "class_names": ",".join(sorted({c.strip() for c in meta.class_names})), "ended_at": ended,
            "created_at": created, "updated_at": at, "updated_by": who}])
        _audit(conn, at, who, "reading.challenge_saved", challenge_id, meta.name)
    reading.publish(store, at)
    return challenge_id


def end(store: db.Store, challenge_id: str, who: str, at: datetime) -> bool:
    """Ends a challenge now (the kiosks stop showing it with their next pull); its ranking
    stays. False: no such challenge."""
    r = db.reading_challenges.c
    with store.writing() as conn:
        name = conn.execute(select(r.name).where(r.challenge_id == challenge_id)).scalar()
        if name is None:
            return False
        conn.execute(update(db.reading_challenges).where(r.challenge_id == challenge_id)
                     .values(ended_at=at, updated_at=at, updated_by=who))
        _audit(conn, at, who, "reading.challenge_ended", challenge_id, name)
    reading.publish(store, at)
    return True


def _audit(conn: Connection, at: datetime, who: str, action: str, target: str, name: str) -> None:
    conn.execute(db.audit_log.insert().values(at=at, who=who, action=action, target=target,
                                              detail=msgspec.json.encode({"name": name}).decode()))


def _summary(row) -> ChallengeSummary:
    meta = ChallengeMeta(row.name, row.starts_on, row.ends_on, row.goal, bool(row.by_category),
                         tuple(c for c in row.class_names.split(",") if c))
    return ChallengeSummary(row.challenge_id, meta, row.ended_at, row.updated_at, row.updated_by)


def challenges(store: db.Store) -> list[ChallengeSummary]:
    r = db.reading_challenges.c
    with store.reading() as conn:
        rows = conn.execute(select(db.reading_challenges).order_by(r.starts_on.desc(), r.name)).all()
    return [_summary(row) for row in rows]


def one(store: db.Store, challenge_id: str) -> ChallengeSummary | None:
    with store.reading() as conn:
        row = conn.execute(select(db.reading_challenges)
                           .where(db.reading_challenges.c.challenge_id == challenge_id)).first()
    return _summary(row) if row is not None else None


def today(store: db.Store, now: datetime) -> date:
    with store.reading() as conn:
        return now.astimezone(ZoneInfo(school_zone_name(conn))).date()


def ranking(store: db.Store, challenge_id: str) -> Ranking | None:
    """The challenge's classes (most children at the goal first) and children (most books
    first), counted from the loans the server holds: a loan the retention period has
    anonymised names no child and counts for none."""
    summary = one(store, challenge_id)
    if summary is None:
        return None
    challenge = summary.challenge
    with store.reading() as conn:
        zone = ZoneInfo(school_zone_name(conn))
        children = _children(conn, challenge)
        categories = _categories(conn) if challenge.by_category else {}
        c = db.loans.c
        borrowed: dict[str, list[Checkout]] = {}
        period = (c.out_at >= datetime.combine(challenge.start - timedelta(days=1), time(), UTC),
                  c.out_at < datetime.combine(challenge.end + timedelta(days=2), time(), UTC))  # any zone's days
        for row in conn.execute(select(c.patron_id, c.item_id, c.out_at).where(c.patron_id.is_not(None), *period)):
            if row.patron_id in children:
                at = row.out_at.astimezone(zone)
                borrowed.setdefault(row.patron_id, []).append(Checkout(row.item_id, categories.get(row.item_id, ""), at))
    out = Ranking(summary)
    by_class: dict[str, ClassRow] = {}
    for patron_id, (name, class_name) in children.items():
        got: Progress = progress(challenge, borrowed.get(patron_id, ()))
        out.children.append(ChildRow(patron_id, name, class_name, got.done, got.goal))
        klass = by_class.setdefault(class_name, ClassRow(class_name, 0, 0, 0))
        klass.children += 1
        klass.reached += got.reached
        klass.done += got.done
    out.children.sort(key=lambda r: (-r.done, r.class_name, r.name))
    out.classes = sorted(by_class.values(), key=lambda r: (-r.share, -r.done, grade_of(r.class_name) or 0,
                                                            r.class_name))
    return out


def _children(conn: Connection, challenge: Challenge) -> dict[str, tuple[str, str]]:
    """The students taking part: patron id -> (name, class)."""
    p = db.patrons.c
    out = {}
    for row in conn.execute(select(p.patron_id, p.data).where(p.removed.is_(False))):
        data = msgspec.json.decode(row.data)
        class_name = data.get("class_name")
        if data.get("role", "student") in ("student", "student_librarian") and class_name and challenge.is_for(class_name):
            out[row.patron_id] = (data["name"], class_name)
    return out


def _categories(conn: Connection) -> dict[str, str]:
    c = db.catalogue.c
    return {row.item_id: category_of(msgspec.json.decode(row.data).get("call_number"))
            for row in conn.execute(select(c.item_id, c.data))}


# -- certificates -----------------------------------------------------------------------------


def certificates(ranking: Ranking, school: str, issued: date) -> bytes:
    """A PDF with a certificate page for each child who reached the goal, in Chinese and in
    English on the same page (whatever the librarian's language), the CJK font embedded as
    for the labels; no page when nobody reached it yet."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfgen.canvas import Canvas

    from bookcorner.central.services.labels import _fitted, cjk_font

    out = io.BytesIO()
    width, height = landscape(A4)
    canvas = Canvas(out, pagesize=(width, height), pageCompression=1)
    m = ranking.summary.meta
    canvas.setTitle(m.name)
    font = cjk_font()
    winners = [child for child in ranking.children if child.reached]
    for child in winners:
        canvas.setLineWidth(4)
        canvas.rect(28, 28, width - 56, height - 56)
        canvas.setLineWidth(1)
        canvas.rect(38, 38, width - 76, height - 76)
        y = height - 110
        for language, (title, line, size) in _certificate_words(child, m, school, issued):
            canvas.setFont(font, 34 if language == "zh_CN" else 26)
            canvas.drawCentredString(width / 2, y, title)
            y -= 54
            for n, text in enumerate(line):
                big = size + 8 if n == 0 else size  # the child's name
                canvas.setFont(font, big)
                canvas.drawCentredString(width / 2, y, _fitted(text, font, big, width - 140))
                y -= big * 1.6
            y -= 26
        canvas.showPage()
    if not winners:
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def _certificate_words(child: ChildRow, m: ChallengeMeta, school: str,
                       issued: date) -> list[tuple[str, tuple[str, list[str], int]]]:
    from bookcorner.i18n import _, in_language

    words = []
    for language in ("zh_CN", "en"):
        with in_language(language):
            amount = (_("{goal} kinds of books") if m.by_category else _("{goal} books")).format(goal=m.goal)
            lines = [
                _("{name}, class {klass}").format(name=child.name, klass=child.class_name),
                _("reached the goal of the reading challenge “{challenge}”:").format(challenge=m.name),
                _("{amount}, from {start} to {end}.").format(amount=amount, start=m.starts_on.isoformat(),
                                                            end=m.ends_on.isoformat()),
                _("Well done, and keep reading!"),
                f"{school} · {issued.isoformat()}" if school else issued.isoformat(),
            ]
            words.append((language, (_("Reading Challenge Certificate"), lines, 18 if language == "zh_CN" else 15)))
    return words
