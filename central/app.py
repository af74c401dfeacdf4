"""The central server as one ASGI app: the kiosks' API under /v1 (``central.api``), the
librarian's dashboard under /dashboard (``central.dashboard``), and the background jobs
that run while it serves (the retention periods, ``central.privacy``; the overdue notices
to class teachers, ``central.services.notices``; the replay bridge into the school's own
library system, ``central.services.bridge``; the schools' figures for the district's page,
``central.services.district``).

The factory builds the app's state (store, typed settings, credential check), installs
the API's error handlers before the dashboard wraps them for its pages, and owns the
lifespan, so that a job starts and stops with the server whichever pages are mounted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

from fastapi import FastAPI

from bookcorner.central import api, db
from bookcorner.central.api import docs, errors
from bookcorner.central.api.admission import Admission
from bookcorner.central.config import Settings
from bookcorner.central.jobs import EverySchool
from bookcorner.central.kiosks import Authenticator
from bookcorner.central.partitions import PartitionKeeper
from bookcorner.central.privacy import RetentionKeeper
from bookcorner.central.schools import Schools
from bookcorner.central.services import reading
from bookcorner.central.services.bridge import BridgeKeeper
from bookcorner.central.services.district import FiguresKeeper
from bookcorner.central.services.notices import NoticeKeeper
from bookcorner.protocol.messages import PROTOCOL_VERSION

if TYPE_CHECKING:
    from bookcorner.central.sip2 import Listener


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The background jobs, started with the server and stopped (each within one batch's
    time) when it shuts down; and the SIP2 listener when the server was given one."""
    settings, stores = app.state.settings, app.state.schools.stores
    # each job goes round every school of the district (one school: the job as it always was)
    keeper = EverySchool(lambda store: RetentionKeeper(store, settings.retention_every_s,
                                                       after=partial(reading.publish, store)), stores)
    notices = EverySchool(lambda store: NoticeKeeper(store, settings.notices_every_s), stores)
    bridge = EverySchool(lambda store: BridgeKeeper(store, settings.bridge_every_s), stores)
    partitions = EverySchool(PartitionKeeper, stores)
    figures = EverySchool(lambda store: FiguresKeeper(store, app.state.schools, settings.district_every_s), stores)
    partitions.start()
    figures.start()
    keeper.start()
    notices.start()
    bridge.start()
    sip2 = None
    try:
        if app.state.sip2 is not None:
            from bookcorner.central.sip2 import Sip2Server

            sip2 = Sip2Server(app.state.store, app.state.sip2.options, app.state.schools)
            await sip2.start(app.state.sip2.sock)
        yield
    finally:
        if sip2 is not None:
            await sip2.stop()
        bridge.stop()
        figures.stop()
        partitions.stop()
        notices.stop()
        keeper.stop()
        app.state.schools.dispose()
        if app.state.reports is not app.state.store:
            app.state.reports.dispose()


def create_app(store: db.Store, settings: Settings | None = None, sip2: Listener | None = None) -> FastAPI:
    from bookcorner.central.dashboard import mount

    app = FastAPI(
        title="bookcorner central server",
        version=f"{PROTOCOL_VERSION}",
        description="Takes kiosk events exactly once and serves reference data. See docs/protocol.md.",
        docs_url=None, redoc_url=None, lifespan=lifespan,
    )
    app.state.store, app.state.settings, app.state.sip2 = store, settings or Settings(), sip2
    app.state.admission = Admission.from_settings(app.state.settings)
    # the borrowing reports on a hot standby when one is named: a heavy report never slows ingest
    report_url = app.state.settings.report_database
    app.state.reports = db.Store(report_url, pool_size=2) if report_url else store
    #: the district's schools (one, the implicit school, in a single-school installation)
    app.state.schools = Schools(store, app.state.reports)
    app.state.authenticate = Authenticator(app.state.schools, app.state.settings.credential_ttl_s)
    errors.install(app)
    app.include_router(api.router)
    app.openapi = partial(docs.openapi, app)  # type: ignore[method-assign]
    mount(app, app.state.schools, _version())
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bookcorner")
    except PackageNotFoundError:
        return "0"
