"""Schemathesis against both OpenAPI documents, on the running services (issue #4, item 5).

Every operation of both documents is fuzzed with ``EXAMPLES`` generated requests at most (plus
schemathesis's explicit and coverage examples), valid and invalid, and every response is checked:
no 5xx, and status code, content type, headers and body as documented. Also checked: a request
the document says is invalid is refused (negative data rejection), 413 (body), 414 (request
line) and 431 (headers) counting as refusals, which schemathesis does not do by default; but
not for ``POST /v1/contacts/batch``, whose invalid operations are answered one by one in a 202.

Not checked: that every request the document allows is accepted (positive data acceptance). The
documents describe shapes and sizes, while some rules span fields or need the domain (a contact
needs a first or last name; ``email`` and ``emails`` exclude each other; a phone number must
exist): such requests are refused with a documented 400 problem.

The documents are built in-process (``support.openapi_documents``), because schemathesis makes
its tests at collection, before the services run; the first test checks that the running
services serve the same. The number of requests made is printed in pytest's summary.
"""

from __future__ import annotations

import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from support.auth import AUTH_HEADERS
from support.openapi_documents import command_api_document, query_api_document
from support.stack import Stack

#: Statuses that refuse a request the document says is invalid.
REFUSALS = [400, 401, 403, 404, 405, 406, 409, 413, 414, 415, 422, 428, 429, 431]
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            "negative_data_rejection": {"expected-statuses": REFUSALS},
        },
        # A batch validates each operation on its own: one the document calls invalid is
        # reported in its result while the valid ones are queued (202), by design.
        "operations": [
            {
                "include-path": "/v1/contacts/batch",
                "checks": {"negative_data_rejection": {"enabled": False}},
            }
        ],
    }
)
# POST /v1/imports takes address books as raw bodies (`format: binary`): sent as generated.
schemathesis.serializer.alias(
    ["text/vcard", "text/x-vcard", "text/directory", "text/csv", "application/csv"],
    "application/octet-stream",
)
COMMAND_API = schemathesis.openapi.from_dict(command_api_document(), config=CONFIG)
QUERY_API = schemathesis.openapi.from_dict(query_api_document(), config=CONFIG)
EXAMPLES = 200

FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


def test_the_running_services_serve_the_fuzzed_documents(fuzz_stack: Stack) -> None:
    for url, schema in ((fuzz_stack.command_url, COMMAND_API), (fuzz_stack.query_url, QUERY_API)):
        assert requests.get(f"{url}/openapi.json", timeout=5).json() == schema.raw_schema


def authorize(case: schemathesis.Case) -> None:
    """Give the case this session's API key wherever schemathesis sends an ``Authorization``
    header (a made-up value); a case without one stays without one (and gets 401)."""
    if case.headers and "Authorization" in case.headers:
        case.headers["Authorization"] = AUTH_HEADERS["Authorization"]


@COMMAND_API.parametrize()
@FUZZ
def test_command_api(case, fuzz_stack: Stack, fuzz_session: requests.Session) -> None:
    authorize(case)
    case.call_and_validate(
        base_url=fuzz_stack.command_url,
        session=fuzz_session,
        excluded_checks=[positive_data_acceptance],
        timeout=30,
    )


@QUERY_API.parametrize()
@FUZZ
def test_query_api(case, fuzz_stack: Stack, fuzz_session: requests.Session) -> None:
    authorize(case)
    case.call_and_validate(
        base_url=fuzz_stack.query_url,
        session=fuzz_session,
        excluded_checks=[positive_data_acceptance],
        timeout=30,
    )
