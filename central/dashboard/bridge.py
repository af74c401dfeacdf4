"""The replay bridge as a page (``central.services.bridge`` sends): the school's own library
system's SIP2 settings, how card numbers and barcodes map onto its own, and the outbox:
what was sent, what waits, what it refused (in the review queue with its own words), and
the last error."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bookcorner.central import db
from bookcorner.central.dashboard.deps import Dash, Form, Librarian
from bookcorner.central.dashboard.site import PREFIX, Site
from bookcorner.central.services import bridge
from bookcorner.i18n import _

PAGES = ("/library-system",)
FORMS = ("/library-system/settings",)


def status_label(status: str) -> str:
    return {bridge.WAITING: _("waiting"), bridge.SENDING: _("sent, answer lost: checking"), bridge.SENT: _("sent"),
            bridge.REFUSED: _("refused: in the review queue")}.get(status, status)


def kind_label(kind: str) -> str:
    return {"checkout": _("loan"), "checkin": _("return"), "renewal": _("renewal")}.get(kind, kind)


def bridge_said(text: str | None) -> str:
    """The other system's own words as they are; ours (``bridge.NO_CARD``...) in the librarian's
    language (no %-formatting: the other system's words may hold a %)."""
    return _(text) if text else ""


#: what the page's template calls
GLOBALS = {"bridge_status": status_label, "bridge_kind": kind_label, "bridge_said": bridge_said,
           "bridge_encodings": bridge.ENCODINGS}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _values(chosen: bridge.Settings) -> dict[str, str]:
    values = {name: str(getattr(chosen, name)) for name in ("host", "port", "login", "location", "institution",
                                                            "encoding", "card_from", "card_to", "item_from",
                                                            "item_to")}
    values["timeout_s"] = str(int(chosen.timeout_s))
    values.update({name: "on" for name in ("enabled", "tls") if getattr(chosen, name)})
    return values


async def _page(request: Request, who: Any, site: Site, status: int = 200, **values: Any) -> Response:
    chosen = await site.run(bridge.settings, site.store)
    values = {"values": _values(chosen), "errors": {}, "has_password": bool(chosen.password),
              "done": request.query_params.get("done"), **values}
    return site.page(request, "bridge.html", status, who=who, enabled=chosen.enabled,
                     counts=await site.run(bridge.counts, site.store), seen=await site.run(bridge.state, site.store),
                     entries=await site.run(bridge.latest, site.store), **values)


@router.get("/library-system")
async def page(request: Request, who: Librarian, site: Dash) -> Response:
    return await _page(request, who, site)


@router.post("/library-system/settings")
async def save(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    current = await site.run(bridge.settings, site.store)
    chosen, errors = bridge.parse(fields, current)
    if chosen is None:
        shown = {name: value for name, value in fields.items() if name != "password"}
        return await _page(request, who, site, 422, errors=errors, values=shown)
    await site.run(bridge.save, site.store, who.name, chosen, db.now())
    return site.redirect("/library-system?done=saved")
