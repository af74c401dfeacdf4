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
from bookcorner.circulation.challenges import (
    AwardRules,
    Challenge,
    Checkout,
    Progress,
    Reader,
    book_loving,
    category_of,
    counted,
    progress,
    reading_stars,
)
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
    #: the school's rules for its reading stars and book-loving classes
    rules: AwardRules = field(default_factory=AwardRules)


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
    #: books (or categories) in the period, not capped at the goal
    counted: int = 0
    #: a reading star (阅读之星) by the challenge's award rules
    star: bool = False

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
    #: books (or categories) its children counted, not capped at the goal
    counted: int = 0
    #: a book-loving class (书香班级) by the challenge's award rules
    awarded: bool = False

    @property
    def average(self) -> float:
        return self.counted / self.children if self.children else 0.0

    @property
    def share(self) -> float:
        """The share of the class's children who reached the goal (0 to 1)."""
        return self.reached / self.children if self.children else 0.0


@dataclass
class Ranking:
    summary: ChallengeSummary
    classes: list[ClassRow] = field(default_factory=list)
    children: list[ChildRow] = field(default_factory=list)

    @property
    def stars(self) -> list[ChildRow]:
        return [child for child in self.children if child.star]

    @property
    def book_loving(self) -> list[ClassRow]:
        return [klass for klass in self.classes if klass.awarded]


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
    rules = meta.rules
    if rules.star_at_least is not None and not meta.goal <= rules.star_at_least <= MAX_GOAL:
        raise ChallengeRefused("star_at_least")
    if rules.stars_per_class is not None and not 1 <= rules.stars_per_class <= MAX_GOAL:
        raise ChallengeRefused("stars_per_class")
    if rules.class_share is not None and not 1 <= rules.class_share <= 100:
        raise ChallengeRefused("class_share")
    if rules.class_average is not None:
        if not 1 <= rules.class_average <= MAX_GOAL:
            raise ChallengeRefused("class_average")
        if rules.class_share is None:
            raise ChallengeRefused("class_average_alone")


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
            "star_at_least": meta.rules.star_at_least, "stars_per_class": meta.rules.stars_per_class,
            "class_share": meta.rules.class_share, "class_average": meta.rules.class_average,
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
                         tuple(c for c in row.class_names.split(",") if c),
                         AwardRules(row.star_at_least, row.stars_per_class, row.class_share, row.class_average))
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
        books = counted(challenge, borrowed.get(patron_id, ()))
        out.children.append(ChildRow(patron_id, name, class_name, got.done, got.goal, books))
        klass = by_class.setdefault(class_name, ClassRow(class_name, 0, 0, 0))
        klass.children += 1
        klass.reached += got.reached
        klass.done += got.done
        klass.counted += books
    readers = [Reader(r.patron_id, r.class_name, r.counted) for r in out.children]
    rules = summary.meta.rules
    stars = reading_stars(challenge.goal, rules, readers)
    classes = book_loving(challenge.goal, rules, readers)
    for child in out.children:
        child.star = child.patron_id in stars
    for klass in by_class.values():
        klass.awarded = klass.class_name in classes
    out.children.sort(key=lambda r: (-r.counted, r.class_name, r.name))
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
    """A PDF with a certificate page for each reading star (阅读之星), then one for each
    book-loving class (书香班级), in Chinese and in English on the same page (whatever the
    librarian's language), the award's name in both, the CJK font embedded as for the labels;
    a blank page when nobody has an award yet."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfgen.canvas import Canvas

    from bookcorner.central.services.labels import cjk_font, fitted

    out = io.BytesIO()
    width, height = landscape(A4)
    canvas = Canvas(out, pagesize=(width, height), pageCompression=1)
    m = ranking.summary.meta
    canvas.setTitle(m.name)
    font = cjk_font()
    pages = [_star_words(child, m, school, issued) for child in ranking.stars]
    pages += [_class_words(klass, m, school, issued) for klass in ranking.book_loving]
    for words in pages:
        canvas.setLineWidth(4)
        canvas.rect(28, 28, width - 56, height - 56)
        canvas.setLineWidth(1)
        canvas.rect(38, 38, width - 76, height - 76)
        y = height - 110
        for language, (title, line, size) in words:
            title_size = 30 if language == "zh_CN" else 24
            canvas.setFont(font, title_size)
            canvas.drawCentredString(width / 2, y, fitted(title, font, title_size, width - 140))
            y -= 50
            for n, text in enumerate(line):
                big = size + 8 if n == 0 else size  # the child's (the class's) name
                canvas.setFont(font, big)
                canvas.drawCentredString(width / 2, y, fitted(text, font, big, width - 140))
                y -= big * 1.6
            y -= 26
        canvas.showPage()
    if not pages:
        canvas.showPage()
    canvas.save()
    return out.getvalue()


Words = list[tuple[str, tuple[str, list[str], int]]]


def _star_words(child: ChildRow, m: ChallengeMeta, school: str, issued: date) -> Words:
    from bookcorner.i18n import _, in_language

    words = []
    for language in ("zh_CN", "en"):
        with in_language(language):
            lines = [
                _("{name}, class {klass}").format(name=child.name, klass=child.class_name),
                _("reached the goal of the reading challenge “{challenge}”:").format(challenge=m.name),
                _amount_line(m),
                _("Well done, and keep reading!"),
                f"{school} · {issued.isoformat()}" if school else issued.isoformat(),
            ]
            title = _("Reading Star · Reading Challenge Certificate")
            words.append((language, (title, lines, 18 if language == "zh_CN" else 15)))
    return words


def _class_words(klass: ClassRow, m: ChallengeMeta, school: str, issued: date) -> Words:
    from bookcorner.i18n import _, in_language

    words = []
    for language in ("zh_CN", "en"):
        with in_language(language):
            lines = [
                _("Class {klass}").format(klass=klass.class_name),
                _("{reached} of its {children} students reached the goal of the reading challenge “{challenge}”:")
                .format(reached=klass.reached, children=klass.children, challenge=m.name),
                _amount_line(m),
                _("Well done, and keep reading!"),
                f"{school} · {issued.isoformat()}" if school else issued.isoformat(),
            ]
            title = _("Book-loving Class · Reading Challenge Certificate")
            words.append((language, (title, lines, 18 if language == "zh_CN" else 15)))
    return words


def _amount_line(m: ChallengeMeta) -> str:
    from bookcorner.i18n import _

    amount = (_("{goal} kinds of books") if m.by_category else _("{goal} books")).format(goal=m.goal)
    return _("{amount}, from {start} to {end}.").format(amount=amount, start=m.starts_on.isoformat(),
                                                       end=m.ends_on.isoformat())
