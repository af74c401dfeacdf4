"""The reports the school publishes from its loans (../shared/DOMAIN.md) as pages: form I
for a week or a term against the school's targets, the reading stars (十佳读书之星) and
the best reading classes (阳光阅读班级), each printable and downloadable as CSV and XLSX.
``central.services.reports`` works out the figures.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import PurePosixPath

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bookcorner.central.dashboard.deps import Dash, Form, Librarian
from bookcorner.central.dashboard.site import PREFIX, Answered, Site
from bookcorner.central.services import charts, reports, sessions
from bookcorner.central.services.reports import TABLES, Borrowing, Targets, this_week
from bookcorner.central.services.reviews import record
from bookcorner.central.services.tables import FORMATS
from bookcorner.i18n import _

PAGES = ("/reports", "/reports/week", "/reports/term", "/reports/stars",
         *(f"/reports/{table}.{form}" for table in TABLES for form in FORMATS))
FORMS = ("/reports/targets",)
#: what the report templates call
GLOBALS = {"svg": charts.svg}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/reports")
async def index(request: Request, who: Librarian, site: Dash) -> Response:
    today = site.today()
    start, end, term_name = await site.run(reports.term_of, site.store, today)
    chosen = await site.run(reports.targets, site.store)
    return site.page(request, "reports.html", who=who, week=this_week(today), term=(start, end),
                     term_name=term_name, targets=chosen, saved=request.query_params.get("saved"))


@router.post("/reports/targets")
async def set_targets(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    try:
        chosen: Targets | None = Targets(int(fields.get("books_per_student", "")), int(fields.get("class_loans", "")))
    except ValueError:
        chosen = None
    if chosen is None or not (0 < chosen.books_per_student <= 500 and 0 < chosen.class_loans <= 100_000):
        return site.page(request, "refused.html", 422,
                         error=_("Targets are whole numbers above zero (books per student, loans per class)."))
    await site.run(reports.save_targets, site.store, who.name, chosen)
    return site.redirect("/reports?saved=1")


async def _term_report(request: Request, who: sessions.Session, site: Site) -> tuple[tuple[date, date], Borrowing]:
    """The borrowing of the period asked for (this term unless ``from``/``to`` say otherwise)."""
    start, end, _name = await site.run(reports.term_of, site.store, site.today())
    period = site.period(request, (start, end))
    if period is None:
        raise Answered(site.page(request, "refused.html", 422, who=who, error=_("Choose a valid period (from, to).")))
    return period, await site.run(reports.borrowing, site.reports, *period, site.zone)


async def _form_i(request: Request, who: sessions.Session, site: Site, weekly: bool) -> Response:
    if weekly:
        day = site.day(request, "day")
        if day is None:
            return site.page(request, "refused.html", 422, who=who, error=_("Choose a valid day."))
        period = this_week(day)
        report = await site.run(reports.borrowing, site.reports, *period, site.zone)
    else:
        period, report = await _term_report(request, who, site)
    return site.page(request, "report_borrowing.html", who=who, report=report, weekly=weekly,
                     terms=await site.run(reports.terms, site.store),
                     previous=period[0] - timedelta(days=7), next=period[0] + timedelta(days=7))


@router.get("/reports/week")
async def week(request: Request, who: Librarian, site: Dash) -> Response:
    return await _form_i(request, who, site, weekly=True)


@router.get("/reports/term")
async def term(request: Request, who: Librarian, site: Dash) -> Response:
    return await _form_i(request, who, site, weekly=False)


@router.get("/reports/stars")
async def stars(request: Request, who: Librarian, site: Dash) -> Response:
    _period, report = await _term_report(request, who, site)
    return site.page(request, "report_stars.html", who=who, **reports.stars_page(report),
                     this_week=this_week(site.today()))


async def download(request: Request, who: Librarian, site: Dash) -> Response:
    """``/reports/<table>.<format>``: one of the report's tables as CSV or XLSX."""
    name, _dot, form = PurePosixPath(request.url.path).name.rpartition(".")
    period, report = await _term_report(request, who, site)
    body, media = await site.run(reports.table(report, name).render, form)
    filename = f"bookcorner-{name}-{period[0]}-{period[1]}.{form}"
    await site.run(record, site.store, who.name, f"report.{form}", filename,
                   {"from": period[0].isoformat(), "to": period[1].isoformat()})
    return site.download(body, filename, media)


for _name in TABLES:
    for _form in FORMATS:
        router.add_api_route(f"/reports/{_name}.{_form}", download, methods=["GET"], name=f"reports_{_name}_{_form}")
