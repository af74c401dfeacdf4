"""The librarian's dashboard, served by ``bookcorner central`` under /dashboard.

Server-side pages (Jinja2, autoescaped: a title or name holding HTML is shown as text),
no JavaScript. Every page needs a signed-in librarian and every form that changes
something carries the session's form token: the routes are given both through
``Depends`` (``deps``). Words go through ``i18n`` (the ``central`` catalogue), in the
language the librarian chose (English or Chinese).

The areas are modules of this package, each an ``APIRouter`` (``router``) of
module-level routes that parse the request, call ``central.services`` and render, with
the template helpers it adds (``GLOBALS``), ``PAGES`` and ``FORMS`` (see ``site``);
``AREAS`` lists them in the order their links appear.
"""

from __future__ import annotations

from fastapi import FastAPI

from bookcorner.central import zone
from bookcorner.central.dashboard import (
    bridge,
    cataloguing,
    data_in,
    district,
    labels,
    notices,
    pages,
    reading,
    registers,
    reports,
    school,
)
from bookcorner.central.dashboard.site import Site
from bookcorner.central.schools import Schools

AREAS = (pages, reports, registers, notices, cataloguing, labels, data_in, reading, school, bridge, district)


def mount(app: FastAPI, schools: Schools, version: str) -> None:
    """The dashboard, in ``app``, for every school of ``schools`` (each librarian sees their own)."""
    store = schools.root
    site = Site(store, version, zone.school_zone(store), schools.reports_root, schools)
    site.install(app)
    for area in AREAS:
        site.globals.update(area.GLOBALS)
        app.include_router(area.router)


#: every dashboard page and download a signed-in librarian can open (for the security tests)
PAGES = tuple(path for area in AREAS for path in area.PAGES)
#: open to anyone: the sign-in form and the style sheet
PUBLIC = pages.PUBLIC
#: every state-changing form's address (path parameters filled with sample values)
FORMS = tuple(path for area in AREAS for path in area.FORMS)
