"""What the API's routes are given (``Depends``): the database store, the typed settings,
the kiosk or librarian presenting the credential, the moment a push arrived; and the
request body, read within its limit and decoded with msgspec against a protocol type.

The store, settings and credential check live in ``app.state`` (set by the app factory).
The providers are ``async``: none blocks for long (a credential's lookup is remembered,
``central.kiosks.Authenticator``), and a plain function would cost every request a trip
through the thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import msgspec
from fastapi import Depends, Request

from bookcorner.central import db
from bookcorner.central.api.errors import HTTPError
from bookcorner.central.config import Settings
from bookcorner.central.ingest import Timings
from bookcorner.central.kiosks import KIOSK, LIBRARIAN, Principal
from bookcorner.central.schools import UnknownSchool, school_of_secret
from bookcorner.protocol.messages import MAX_BODY_BYTES, PushRequest, decode, decode_push

_BEARER = {"WWW-Authenticate": "Bearer"}


async def _store(request: Request) -> db.Store:
    """The store of the school the request's credential names (``central.schools``): the
    implicit school's when it names none. Read from the credential itself, not from whatever
    was resolved before, so a route gets its school's store whatever order it declares them in;
    the credential is then looked up in that school's tables only (``_principal``)."""
    slug, _rest = school_of_secret(_bearer(request))
    try:
        return request.app.state.schools.store(slug)
    except UnknownSchool:
        raise HTTPError(401, "unauthorized", "this credential is not known here (or was revoked)", _BEARER) from None


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _bearer(request: Request) -> str:
    """The request's bearer token ("" when it has none)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _principal(request: Request, role: str) -> Principal:
    token = _bearer(request)
    if not token or len(token) > 200:
        raise HTTPError(401, "unauthorized", "send the credential as 'Authorization: Bearer <token>'", _BEARER)
    found = request.app.state.authenticate(token)
    if found is None:
        raise HTTPError(401, "unauthorized", "this credential is not known here (or was revoked)", _BEARER)
    if found.role != role:
        raise HTTPError(403, "forbidden", f"a {found.role} credential cannot do this")
    return found


async def _kiosk(request: Request) -> Principal:
    return _principal(request, KIOSK)


async def _librarian(request: Request) -> Principal:
    return _principal(request, LIBRARIAN)


@dataclass
class Arrival:
    """When a request arrived (before its credential was checked), and where its time went since."""

    received: datetime = field(default_factory=db.now)
    timings: Timings = field(default_factory=Timings)


async def _arrival() -> Arrival:
    return Arrival()


Store = Annotated[db.Store, Depends(_store)]
Config = Annotated[Settings, Depends(_settings)]
#: the kiosk presenting the credential (401 without a known one, 403 for a librarian's)
Kiosk = Annotated[Principal, Depends(_kiosk)]
#: the librarian presenting the credential (401 without a known one, 403 for a kiosk's)
Librarian = Annotated[Principal, Depends(_librarian)]
#: declared before the credential, so that its time is counted
Arrived = Annotated[Arrival, Depends(_arrival)]


async def body_of(request: Request) -> bytes:
    """The request's body, refused (413) as soon as it is known to be too large."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        raise HTTPError(413, "too_large", f"a request body may hold at most {MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPError(413, "too_large", f"a request body may hold at most {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decoded(raw: bytes, kind: type) -> Any:
    try:
        return decode_push(raw) if kind is PushRequest else decode(raw, kind)  # (a push: the fast way)
    except msgspec.ValidationError as error:
        raise HTTPError(422, "invalid_request", str(error)) from None
    except msgspec.DecodeError as error:
        raise HTTPError(400, "not_json", f"the body is not JSON: {error}") from None
    except RecursionError:
        # msgspec decodes nested arrays and objects by recursion: a body nested deeper than
        # the interpreter allows is no kiosk's batch (their events nest 3 deep at most)
        raise HTTPError(400, "too_deep", "the body's JSON is nested too deeply") from None
