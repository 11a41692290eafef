"""Problem details name the field and the reason, never a rejected personal value (issue 7).

Each body below is refused with 400; the distinctive value it carries must appear nowhere in
the answer (the ``errors`` keys are field paths, the messages are reasons). The same holds for
the app's metrics: labels are route templates and statuses, never values.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from support.pii_scan import find

SECRET = "Quorbelvantrexi"
BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"first_name": "A", "email": f"{SECRET}@quorbel_x.example.org"}, "emails.0.value"),
    ({"first_name": "A", "email": f"zq@{SECRET}\u0661\u06f1x.example.org"}, "emails.0.value"),
    ({"first_name": "A", "email": f"{SECRET} x@example.org"}, "emails.0.value"),
    ({"first_name": "A", "phone": f"+1 555 {SECRET}"}, "phones.0.value"),
    ({"first_name": f"{SECRET}\u0007"}, "first_name"),
    ({"first_name": SECRET * 30}, "first_name"),
    ({"first_name": "A", "addresses": [{"street": f"{SECRET}\u0000"}]}, "addresses.0.street"),
    ({"first_name": "A", "addresses": [{"country": SECRET}]}, "addresses.0.country"),
    ({"first_name": "A", "birthday": SECRET}, "birthday"),
    ({"first_name": 42, "last_name": SECRET}, "first_name"),
    ({"first_name": "A", "emails": [{"value": f"{SECRET}@", "type": SECRET}]}, "emails.0"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_a_refused_value_is_not_echoed(
    client: FlaskClient, body: dict[str, Any], field: str
) -> None:
    answer = client.post("/v1/contacts", json=body)
    assert answer.status_code == 400, answer.get_data(as_text=True)
    problem = answer.get_json()
    assert any(key.startswith(field) for key in problem["errors"]), problem
    assert find(answer.get_data(as_text=True), [SECRET]) == [], problem


def test_metrics_have_no_values_in_labels(client: FlaskClient) -> None:
    for body, _ in BAD_BODIES:
        client.post("/v1/contacts", json=body)
    client.patch(f"/v1/contacts/{SECRET}", json={"first_name": SECRET})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'route="/v1/contacts",status="400"' in text
    assert 'route="unmatched",status="404"' in text
    assert find(text, [SECRET]) == []
