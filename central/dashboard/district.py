"""The district's page: every school's figures side by side and in total
(``central.services.district``), for the district's staff only; as a download too."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bookcorner.central import db
from bookcorner.central.dashboard.deps import Dash, DistrictStaff
from bookcorner.central.dashboard.site import PREFIX
from bookcorner.central.services import district
from bookcorner.central.services.reviews import record
from bookcorner.central.services.tables import FORMATS

PAGES = ("/district", *(f"/district/schools.{form}" for form in FORMATS))
FORMS: tuple[str, ...] = ()
GLOBALS: dict = {}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _overview(request: Request, site: Dash) -> district.Overview:
    """The schools' figures as the job kept them (``central.services.district``)."""
    fresh_for = district.freshness(request.app.state.settings.district_every_s)
    return district.overview(site.schools, site.today(), site.zone, fresh_for=fresh_for)


@router.get("/district")
async def page(request: Request, who: DistrictStaff, site: Dash) -> Response:
    seen = await site.run(_overview, request, site)
    return site.page(request, "district.html", who=who, seen=seen, formats=FORMATS)


async def download(request: Request, who: DistrictStaff, site: Dash) -> Response:
    """``/district/schools.<format>``: the page's table as CSV or XLSX."""
    form = request.url.path.rpartition(".")[2]
    seen = await site.run(_overview, request, site)
    body, media = await site.run(district.table(seen, site.zone).render, form)
    filename = f"bookcorner-district-{site.today()}.{form}"
    await site.run(record, site.store, who.name, f"report.district.{form}", filename, {"at": db.now().isoformat()})
    return site.download(body, filename, media)


for _form in FORMATS:
    router.add_api_route(f"/district/schools.{_form}", download, methods=["GET"], name=f"district_{_form}")
