"""The kiosks' HTTP API under /v1, one ``APIRouter`` per resource, described by the
OpenAPI document the server serves.

Request bodies are decoded with msgspec against the protocol's own types (one source of
truth for the kiosk and the server, and a batch of 5,000 events decodes in
milliseconds); their JSON Schemas are put into the OpenAPI document from the same types
(``docs``). Blocking database work runs in the thread pool, never on the event loop.
What a route is given (store, settings, principal) comes through ``deps``; every error
answers ``ErrorReply`` JSON (``errors``).
"""

from __future__ import annotations

from fastapi import APIRouter

from bookcorner.central.api import health, imports, kiosks, push, reference
from bookcorner.protocol.messages import API_PREFIX

#: the resources, in the order the OpenAPI document lists them
RESOURCES = (push, reference, kiosks, imports, health)

router = APIRouter(prefix=API_PREFIX)
for _resource in RESOURCES:
    router.include_router(_resource.router)
