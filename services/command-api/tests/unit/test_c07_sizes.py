"""C07 — oversized requests and the 256 KiB SQS limit: the API's part on fakes.

The fake publisher applies the real ``message_size`` rule. Streaming (chunked) bodies and memory
are checked against a real gunicorn in ``tests/integration``.
"""

from __future__ import annotations

import io

from werkzeug.test import EnvironBuilder, run_wsgi_app
from werkzeug.wrappers import Response

from command_api.adapters.sqs_publisher import message_size
from contacts_domain import limits, normalize_contact
from contacts_infra.messaging import SQS_MESSAGE_MAX_BYTES
from support.auth import AUTH_HEADERS


def largest_contact(char: str = "a") -> dict:
    """Every field at its largest allowed size, written with ``char``."""

    def text(n: int) -> str:
        return char * n

    return {
        "first_name": text(limits.NAME_MAX),
        "last_name": text(limits.NAME_MAX),
        "company": text(limits.COMPANY_MAX),
        "job_title": text(limits.JOB_TITLE_MAX),
        "notes": text(limits.NOTES_MAX),
        "birthday": "1970-01-01",
        "tags": [f"{i:02d}" + text(limits.TAG_MAX - 2) for i in range(limits.TAGS_MAX_ITEMS)],
        "emails": [
            {"value": f"{i}{'x' * 60}@{'d' * 60}.{'e' * 60}.example.com", "type": "work"}
            for i in range(limits.EMAILS_MAX_ITEMS)
        ],
        # Numbers with an extension, stored near limits.PHONE_MAX (+1202555NNNN;ext=...).
        "phones": [
            {"value": f"+1202555{i:04d};ext={'9' * 20}", "type": "mobile"}
            for i in range(limits.PHONES_MAX_ITEMS)
        ],
        "addresses": [
            {
                "type": "home",
                "street": text(limits.STREET_MAX),
                "city": text(limits.CITY_MAX),
                "region": text(limits.REGION_MAX),
                "postal_code": text(limits.POSTAL_CODE_MAX),
                "country": "FR",
            }
            for _ in range(limits.ADDRESSES_MAX_ITEMS)
        ],
    }


def test_c07_notes_of_300000_characters_is_400_naming_the_field(client, publisher) -> None:
    response = client.post("/v1/contacts", json={"first_name": "A", "notes": "n" * 300_000})
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {"notes"}
    assert publisher.events == []


def test_c07_body_over_max_request_bytes_is_413(client, publisher) -> None:
    body = b'{"first_name": "A", "notes": "' + b"n" * 20_000_000 + b'"}'
    response = client.post("/v1/contacts", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert publisher.events == []


def test_c07_streamed_body_without_length_past_the_limit_is_413(app, publisher) -> None:
    environ = EnvironBuilder(
        path="/v1/contacts",
        method="POST",
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked", **AUTH_HEADERS},
    ).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = io.BytesIO(b'{"notes": "' + b"n" * 2_000_000 + b'"}')
    environ["wsgi.input_terminated"] = True
    app_iter, status, headers = run_wsgi_app(app, environ)
    response = Response(b"".join(app_iter), status=status, headers=headers)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert publisher.events == []


def test_c07_largest_allowed_contact_is_accepted_unchanged(client, publisher) -> None:
    body = largest_contact()
    response = client.post("/v1/contacts", json=body)
    assert response.status_code == 202, response.get_json()
    [event] = publisher.events
    assert event.data == normalize_contact(body, partial=False, default_region="US")
    assert event.data["notes"] == body["notes"]


def test_c07_largest_contact_in_four_byte_characters_still_fits_one_message(
    client, publisher
) -> None:
    # kombu escapes each astral character to 12 bytes and base64s twice: the limits of
    # contacts_domain.limits are chosen so that this worst case still fits.
    body = largest_contact("\U0001f600")
    assert message_size({"data": body}) < SQS_MESSAGE_MAX_BYTES
    response = client.post("/v1/contacts", json=body)
    assert response.status_code == 202, response.get_json()
    [event] = publisher.events
    assert event.data["notes"] == body["notes"]
