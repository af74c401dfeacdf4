"""Overdue notices to class teachers as a page (``central.services.notices`` plans, sends
and records them): when they go (weekdays and a time in the school's zone, and the
language), the school's mail server, each class teacher's address, a "send now" button,
and the outbox: what was sent and when, what failed with the mail server's own words,
and a "send again" for what is held.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bookcorner import i18n
from bookcorner.central import db
from bookcorner.central.dashboard.deps import Dash, Form, Librarian
from bookcorner.central.dashboard.site import PREFIX, Site
from bookcorner.central.services import notices
from bookcorner.central.services.channels import SECURITIES, EmailChannel
from bookcorner.i18n import _

PAGES = ("/notices",)
FORMS = ("/notices/schedule", "/notices/smtp", "/notices/class", "/notices/send-now", "/notices/send-again")
#: how long "send now" sends before it leaves the rest to the server's own round
SEND_NOW_S = 20.0


def status_label(status: str) -> str:
    return {notices.PENDING: _("waiting"), notices.SENDING: _("sending"), notices.SENT: _("sent"),
            notices.FAILED: _("failed, will try again"), notices.HELD: _("needs you")}.get(status, status)


def security_label(security: str) -> str:
    return {"starttls": _("STARTTLS (usually port 587)"), "tls": _("TLS (usually port 465)"),
            "none": _("none (a relay on the school's own network)")}.get(security, security)


def period_label(period: str) -> str:
    day, _space, kind = period.partition(" ")
    return _("{day}, sent by hand").format(day=day) if kind == notices.NOW else period


def notice_said(text: str | None) -> str:
    """What went wrong: the server's own words as they are, ours (``notices.NO_ADDRESS``...)
    in the librarian's language (no %-formatting: a server's words may hold a %)."""
    return _(text) if text else ""


def language_label(language: str) -> str:
    return {"zh_CN": "中文", "en": "English"}.get(language, language)


#: what the notices' template calls
GLOBALS = {"notice_status": status_label, "security_label": security_label, "period_label": period_label,
           "notice_said": notice_said,
           "language_label": language_label, "securities": SECURITIES, "languages": i18n.LANGUAGES,
           "max_attempts": notices.MAX_ATTEMPTS}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


async def _page(request: Request, who: Any, site: Site, status: int = 200, **values: Any) -> Response:
    smtp = await site.run(notices.smtp_settings, site.store)
    chosen = await site.run(notices.schedule, site.store)
    values = {"smtp_values": {"host": smtp.host, "port": str(smtp.port), "security": smtp.security,
                              "user": smtp.user, "sender": smtp.sender},
              "has_password": bool(smtp.password), "smtp_errors": {}, "schedule_errors": {},
              "schedule_values": {**{f"day{d}": str(d) for d in chosen.weekdays}, "at": chosen.at.strftime("%H:%M"),
                                  "language": chosen.language},
              "done": request.query_params.get("done"), "scheduled": bool(chosen.weekdays), **values}
    return site.page(request, "notices.html", status, who=who, classes=await site.run(notices.classes, site.store),
                     outbox=await site.run(notices.outbox, site.store), counts=await site.run(notices.counts, site.store),
                     zone_name=str(site.zone), request_args=request.query_params, **values)


@router.get("/notices")
async def page(request: Request, who: Librarian, site: Dash) -> Response:
    return await _page(request, who, site)


@router.post("/notices/schedule")
async def save_schedule(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    chosen, errors = notices.parse_schedule(fields)
    if chosen is None:
        return await _page(request, who, site, 422, schedule_errors=errors, schedule_values=fields)
    await site.run(notices.save_schedule, site.store, who.name, chosen, db.now())
    return site.redirect("/notices?done=schedule")


@router.post("/notices/smtp")
async def save_smtp(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    current = await site.run(notices.smtp_settings, site.store)
    settings, errors = notices.parse_smtp(fields, current)
    if settings is None:
        shown = {name: value for name, value in fields.items() if name != "password"}
        return await _page(request, who, site, 422, smtp_errors=errors, smtp_values=shown)
    await site.run(notices.save_smtp, site.store, who.name, settings, db.now())
    return site.redirect("/notices?done=smtp")


@router.post("/notices/class")
async def save_class(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    class_name = fields.get("class_name", "").strip()
    try:
        await site.run(notices.set_class_teacher, site.store, who.name, class_name,
                       " ".join(fields.get("teacher_name", "").split()), fields.get("email", "").strip(), db.now())
    except notices.Refused as refused:
        return await _page(request, who, site, 422, class_error=str(refused), class_name=class_name)
    return site.redirect("/notices?done=class#classes")


def _send_for(site: Site, who: str | None) -> dict[str, int]:
    """Today's notices planned (``who``: the librarian asking; None: only what is due), then
    sent for at most SEND_NOW_S (the server's keeper sends the rest)."""
    added = notices.plan_now(site.store, who, db.now(), site.zone) if who is not None else 0
    deadline = time.monotonic() + SEND_NOW_S
    sent = notices.send_due(site.store, EmailChannel(notices.smtp_settings(site.store), timeout=SEND_NOW_S / 2),
                            stopping=lambda: time.monotonic() > deadline)
    return {"added": added, **sent}


@router.post("/notices/send-now")
async def send_now(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    outcome = await site.run(_send_for, site, who.name)
    return site.redirect("/notices?done=sent&" + "&".join(f"{k}={v}" for k, v in outcome.items()) + "#outbox")


@router.post("/notices/send-again")
async def send_again(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    number = fields.get("notice_id", "")
    try:
        if not number.isdigit() or len(number) > 9:
            raise notices.Refused(_("That notice is not waiting to be sent again."))
        await site.run(notices.send_again, site.store, who.name, int(number), db.now())
    except notices.Refused as refused:
        return await _page(request, who, site, 422, outbox_error=str(refused))
    await site.run(_send_for, site, None)
    return site.redirect("/notices?done=again#outbox")
