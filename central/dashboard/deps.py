"""What the dashboard's routes are given (``Depends``): the dashboard being served (store,
zone, version: ``Site``), the signed-in librarian, and a state-changing form checked
against the session's form token.

A page (GET) for anyone but a signed-in librarian sends them to sign in; a form (POST)
is refused (403). A form without the session's form token is refused too. An address
holding control characters (no librarian types one; PostgreSQL refuses a NUL) is
answered with an error page (422), a review number no database holds with "nothing
with that number" (404). What a dependency answers instead of the route travels as
``site.Answered``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from bookcorner.central.dashboard.site import CONTROL, LARGEST_ID, Answered, Site
from bookcorner.central.kiosks import DISTRICT, LIBRARIAN
from bookcorner.central.services import sessions
from bookcorner.i18n import _


async def _site(request: Request) -> Site:
    """The dashboard of the school the request's session belongs to (``Site.for_request``)."""
    root: Site = request.app.state.dashboard
    known = root.known_site(request)
    return known if known is not None else await run_in_threadpool(root.for_request, request)


Dash = Annotated[Site, Depends(_site)]


async def _session(request: Request, site: Dash) -> sessions.Session | None:
    return await site.session(request)


def _plain_address(request: Request, site: Site) -> None:
    """Refuses an address whose query or path parameters hold control characters."""
    asked = [*request.query_params.multi_items(), *request.path_params.items()]
    if any(CONTROL.search(f"{name}{value}") for name, value in asked):
        raise Answered(site.page(request, "error.html", 422, message=site.error_text(422)))


async def anyone_signed_in(request: Request, site: Dash,
                           who: Annotated[sessions.Session | None, Depends(_session)]) -> sessions.Session:
    """Whoever's session the request carries (a school's librarian or the district's staff); a
    page's address checked (a form's is checked with the form, ``checked_form``)."""
    if who is None:
        raise Answered(site.to_sign_in() if request.method in ("GET", "HEAD") else site.refused(request, 403))
    if request.method in ("GET", "HEAD"):
        _plain_address(request, site)
    return who


#: whoever is signed in (a page: else to sign in; a form: else 403): signing out, the language
Person = Annotated[sessions.Session, Depends(anyone_signed_in)]


async def signed_in(request: Request, site: Dash, who: Person) -> sessions.Session:
    """The school's librarian whose session the request carries. The district's staff see the
    district's page only: a school's page sends them there, a school's form is refused."""
    if who.role != LIBRARIAN:
        raise Answered(site.redirect("/district") if request.method in ("GET", "HEAD") else site.refused(request, 403))
    return who


#: the signed-in librarian (a page: else to sign in; a form: else 403)
Librarian = Annotated[sessions.Session, Depends(signed_in)]


async def _district_staff(request: Request, site: Dash, who: Person) -> sessions.Session:
    if who.role != DISTRICT:
        raise Answered(site.refused(request, 403))
    return who


#: the district's staff, signed in (a school's librarian is refused: 403)
DistrictStaff = Annotated[sessions.Session, Depends(_district_staff)]


class _CheckedForm:
    """A state-changing form of at most ``max_fields`` fields carrying the session's form token;
    a school librarian's, unless ``anyone`` (signing out: the district's staff too)."""

    def __init__(self, max_fields: int, anyone: bool = False) -> None:
        self.max_fields, self.anyone = max_fields, anyone

    async def __call__(self, request: Request, site: Dash, who: Person) -> dict[str, str]:
        if not self.anyone:
            await signed_in(request, site, who)
        fields = await site.form(request, self.max_fields)
        if fields is None or not sessions.same(fields.get("csrf"), who.csrf):
            raise Answered(site.refused(request, 403))
        _plain_address(request, site)
        return fields


checked_form = _CheckedForm(20)
#: the fields of a checked form of whoever is signed in
AnyonesForm = Annotated[dict[str, str], Depends(_CheckedForm(20, anyone=True))]
#: the fields of a checked form (control characters left out)
Form = Annotated[dict[str, str], Depends(checked_form)]
#: a form with many rows (the school's rules, calendar and timetable)
LongForm = Annotated[dict[str, str], Depends(_CheckedForm(2000))]


_NUMBER = TypeAdapter(int)


async def _review_number(review_id: str) -> int:
    """The review's number, read as FastAPI reads an ``int`` path parameter, and before
    anything else: an address that does not parse is a 422 whoever asks."""
    try:
        return _NUMBER.validate_python(review_id)
    except ValidationError as error:
        raise RequestValidationError([{**e, "loc": ("path", "review_id")} for e in error.errors()]) from None


async def _review_id(request: Request, number: Annotated[int, Depends(_review_number)], site: Dash,
                     _fields: Form) -> int:
    if not 0 <= number <= LARGEST_ID:
        raise Answered(site.refused(request, 404, error=_("There is nothing with that number.")))
    return number


#: a review's number from the address, one the database can hold, of a checked form (declare it
#: first: the address is read before the librarian and the form, the number's range after)
ReviewId = Annotated[int, Depends(_review_id)]
