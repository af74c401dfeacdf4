"""The central server's tunables as one typed value.

The app factory keeps it in ``app.state.settings``; the API reads it through a
dependency (``central.api.deps.Config``) and the lifespan's background jobs from the same
place, so a test or a tool can build an app with its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from bookcorner.central.privacy import RETENTION_EVERY_S
from bookcorner.central.services.bridge import BRIDGE_EVERY_S
from bookcorner.central.services.district import COUNT_EVERY_S
from bookcorner.central.services.notices import NOTICES_EVERY_S


@dataclass(frozen=True)
class Settings:
    #: seconds a client is told to wait (Retry-After) when the database is busy
    retry_after_s: int = 5
    #: how often the retention periods are applied (and once at start-up)
    retention_every_s: float = RETENTION_EVERY_S
    #: how long a credential's lookup is remembered (a revoked one stops within it)
    credential_ttl_s: float = 2.0
    #: how often the overdue notices' schedule and outbox are looked at
    notices_every_s: float = NOTICES_EVERY_S
    #: the morning storm (``central.api.admission``): pushes taken at once by one server
    #: process; more wait for a turn, at most ``push_queue`` of them and each at most
    #: ``push_wait_s``; any other push is answered 429 with a Retry-After of when a turn is
    #: likely free (from the pushes held, waiting and told to come back), at least
    #: ``busy_retry_after_s`` and at most ``busy_retry_after_max_s``
    push_limit: int = 8
    push_queue: int = 64
    push_wait_s: float = 2.0
    busy_retry_after_s: int = 2
    busy_retry_after_max_s: int = 120
    #: where the borrowing reports read (a hot standby: a heavy report never slows ingest);
    #: empty: the server's own database
    report_database: str = ""
    #: how often the replay bridge looks for loans to send to the school's library system
    bridge_every_s: float = BRIDGE_EVERY_S
    #: how often each school's figures for the district's page are counted (and once at start-up);
    #: the page counts live a school's figures older than three of these (at least 15 minutes)
    district_every_s: float = COUNT_EVERY_S
