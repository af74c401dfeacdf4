"""The central server's tunables as one typed value.

The app factory keeps it in ``app.state.settings``; the API reads it through a
dependency (``central.api.deps.Config``) and the lifespan's background jobs from the same
place, so a test or a tool can build an app with its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from bookcorner.central.privacy import RETENTION_EVERY_S
from bookcorner.central.services.bridge import BRIDGE_EVERY_S
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
    #: how often the replay bridge looks for loans to send to the school's library system
    bridge_every_s: float = BRIDGE_EVERY_S
