"""Cataloguing from an ISBN as a page (``central.services.cataloguing`` looks up, reads the
records and adds the copies): scan or type an ISBN, see the record each catalogue server
holds as a form, correct it, scan the copies' accession barcodes and add them; then print
their labels. A server that gives nothing is named with the reason; none answering leaves
an empty form to type. The servers are set on the same page (audited).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bookcorner.central.dashboard.deps import Dash, Form, Librarian
from bookcorner.central.dashboard.site import PREFIX, Site
from bookcorner.central.services import cataloguing
from bookcorner.i18n import _

PAGES = ("/cataloguing",)
FORMS = ("/cataloguing/add", "/cataloguing/servers", "/cataloguing/servers/remove")
FIELDS = ("isbn", "title", "author", "publisher", "year", "clc", "call_number", "source")


def protocol_label(protocol: str) -> str:
    return {"z3950": "Z39.50", "sru": "SRU"}.get(protocol, protocol)


def syntax_label(syntax: str) -> str:
    return {"marc21": "MARC 21", "cnmarc": "CNMARC", "unimarc": "UNIMARC"}.get(syntax, syntax)


#: what the cataloguing template calls
GLOBALS = {"protocol_label": protocol_label, "syntax_label": syntax_label, "catalogue_protocols": cataloguing.PROTOCOLS,
           "catalogue_syntaxes": cataloguing.SYNTAXES, "draft_fields": FIELDS}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


async def _page(request: Request, who: Any, site: Site, status: int = 200, **values: Any) -> Response:
    values = {"server_values": {"protocol": "z3950", "port": "210", "syntax": "cnmarc"}, "server_errors": {},
              "done": request.query_params.get("done"), "isbn": "", "lookup": None, "draft": None, **values}
    return site.page(request, "cataloguing.html", status, who=who,
                     servers=await site.run(cataloguing.servers, site.store), **values)


@router.get("/cataloguing")
async def page(request: Request, who: Librarian, site: Dash) -> Response:
    typed = request.query_params.get("isbn", "").strip()[:40]
    if not typed:
        return await _page(request, who, site)
    isbn = cataloguing.isbn_for_search(typed)
    if isbn is None:
        return await _page(request, who, site, 422, isbn=typed,
                           isbn_error=_("{isbn} is not an ISBN: scan the barcode on the back cover, or type its "
                                        "13 (or 10) digits.").format(isbn=typed))
    found = await site.run(cataloguing.lookup, site.store, isbn)
    pick = request.query_params.get("pick", "0")
    chosen = int(pick) if pick.isdigit() and int(pick) < len(found.drafts) else 0
    draft = found.drafts[chosen] if found.drafts else cataloguing.Draft()
    draft.isbn = isbn  # the book in hand (a record may carry only its other ISBNs, or none)
    return await _page(request, who, site, isbn=isbn, lookup=found, draft=draft, chosen=chosen)


def _draft(fields: dict[str, str]) -> cataloguing.Draft:
    return cataloguing.Draft(**{name: " ".join(fields.get(name, "").split())[:400] for name in FIELDS})


@router.post("/cataloguing/add")
async def add(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    draft = _draft(fields)
    codes = cataloguing.barcodes_in(fields.get("copies", ""))
    try:
        added = await site.run(cataloguing.add_copies, site.store, who.name, draft, codes)
    except cataloguing.Refused as refused:
        return await _page(request, who, site, 422, isbn=draft.isbn, draft=draft, copies=fields.get("copies", ""),
                           add_error=_(str(refused)).format(**refused.values))
    labels = f"{PREFIX}/labels?" + urlencode({"choose": "codes", "codes": "\n".join(added), "kind": "barcode"})
    return await _page(request, who, site, added=added, added_title=draft.title, labels_link=labels)


@router.post("/cataloguing/servers")
async def save_server(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    server, errors = cataloguing.parse_server(fields)
    try:
        if server is not None:
            await site.run(cataloguing.add_server, site.store, who.name, server)
    except cataloguing.Refused as refused:
        errors = {"name": _(str(refused)).format(**refused.values)}
    if errors:
        return await _page(request, who, site, 422, server_values=fields,
                           server_errors={name: _(text) for name, text in errors.items()})
    return site.redirect("/cataloguing?done=server#servers")


@router.post("/cataloguing/servers/remove")
async def remove_server(request: Request, who: Librarian, fields: Form, site: Dash) -> Response:
    try:
        await site.run(cataloguing.remove_server, site.store, who.name, fields.get("name", ""))
    except cataloguing.Refused as refused:
        return await _page(request, who, site, 422, servers_error=_(str(refused)))
    return site.redirect("/cataloguing?done=removed#servers")
