"""Schemathesis against the server's own OpenAPI document, on each database, with every
built-in check and the examples, coverage and fuzzing phases: for any input it generates
(valid and invalid bodies, parameters, credentials, boundary values) the server answers
without a 5xx, with a status and body its document declares, refuses requests that carry
no credential (``ignored_auth`` sends each request again without one), refuses what the
schema forbids and takes what the schema allows (``positive_data_acceptance``; see
``RULES_NO_SCHEMA_STATES`` for the one status that may refuse schema-valid data). Half of
the generated pushes are made to name the authenticated kiosk, so that random events get
as far as replay.

The stateful phase is not run: the API has no OpenAPI links (no operation creates a
resource another one addresses by id), so it would have no sequence to follow."""

from __future__ import annotations

import uuid

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import PositiveDataAcceptanceConfig
from schemathesis.config._checks import POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES
from schemathesis.core.parameters import ParameterLocation

from bookcorner.protocol.credentials import bearer

schema = schemathesis.pytest.from_fixture("api_schema")
EXAMPLES = 30

#: The error codes a 422 may carry for a request that satisfies the OpenAPI document: rules
#: that relate one field to another, or to what the server holds, which no JSON Schema can
#: state (the document's 422 description of each operation names them). A push's events
#: must be in increasing seq order inside from_seq..to_seq with no event id twice
#: (``invalid_batch``); an export file must name a kiosk this server knows and carry that
#: kiosk's signature over a body that is itself a valid export (``invalid_export``, and
#: ``invalid_batch`` for its events). Any other 422 on schema-valid data, above all
#: ``invalid_request`` (the decoder refused what the document allows), fails the test.
RULES_NO_SCHEMA_STATES: dict[str, frozenset[str]] = {
    "/v1/push": frozenset({"invalid_batch"}),
    "/v1/imports": frozenset({"invalid_export", "invalid_batch"}),
}


@pytest.fixture(scope="module")
def principals(central) -> dict[str, str]:
    kiosk_id = "fuzz-" + uuid.uuid4().hex[:8]
    return {"kiosk_id": kiosk_id, "kiosk": central.add_kiosk(kiosk_id), "librarian": central.add_librarian("fuzz")}


@pytest.fixture(scope="module")
def api_schema(central):
    loaded = schemathesis.openapi.from_url(f"{central.url}/openapi.json")
    # schema-valid data may be refused with 422 only for the rules above, and
    # rule_422_is_named holds each such 422 to its operation's codes
    loaded.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=[*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "422"])
    return loaded


def rule_422_is_named(ctx, response, case) -> bool | None:
    """A 422 to schema-valid data must name a rule the schema cannot state."""
    if case.meta is None or case.meta.generation.mode.is_negative or response.status_code != 422:
        return None
    code = msgspec.json.decode(response.content).get("error")
    allowed = RULES_NO_SCHEMA_STATES.get(case.path, frozenset())
    assert code in allowed, (
        f"schema-valid data to {case.method} {case.path} refused with 422 {code!r}: the OpenAPI document "
        f"allows what the server refuses (only {sorted(allowed)} may refuse schema-valid data)")
    return True


def _as_the_kiosk(body: object, kiosk_id: str) -> None:
    """Name the authenticated kiosk in a generated push, so it passes the door."""
    if isinstance(body, dict) and isinstance(body.get("events"), list):
        body["kiosk_id"] = kiosk_id
        for event in body["events"]:
            if isinstance(event, dict):
                event["kiosk_id"] = kiosk_id


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_server_fail(case, principals):
    librarian = case.path in ("/v1/kiosks", "/v1/imports")
    token = principals["librarian" if librarian else "kiosk"]
    # a case generated without a valid Authorization header is sent without a credential
    unauthenticated = case.path == "/v1/health" or (
        case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER))
    positive = case.meta is None or not case.meta.generation.mode.is_negative
    if case.path == "/v1/push" and positive and isinstance(case.body, dict) and hash(str(case.body)) % 2:
        _as_the_kiosk(case.body, principals["kiosk_id"])
    # every built-in check, and one more
    case.call_and_validate(headers=None if unauthenticated else bearer(token), additional_checks=[rule_422_is_named])

