"""Query-string problems name the parameter and the reason, never a rejected personal value,
and metrics labels are route templates (issue 7)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from support.pii_scan import find

SECRET = "Quorbelvantrexi"


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        (f"email={SECRET}@quorbel_x.example.org", "email"),
        (f"email=zq@{SECRET}%D9%A1%DB%B1x.example.org", "email"),
        (f"q={SECRET}%07", "q"),
        (f"sort={SECRET}", "sort"),
        (f"cursor={SECRET}", "cursor"),
    ],
)
def test_a_refused_value_is_not_echoed(client: FlaskClient, query: str, parameter: str) -> None:
    answer = client.get(f"/v1/contacts?{query}")
    assert answer.status_code == 400, answer.get_data(as_text=True)
    problem = answer.get_json()
    assert parameter in str(problem.get("errors", problem)), problem
    assert find(answer.get_data(as_text=True), [SECRET]) == [], problem


def test_metrics_have_no_values_in_labels(client: FlaskClient) -> None:
    client.get(f"/v1/contacts?q={SECRET}")
    client.get(f"/v1/contacts/{SECRET}")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'route="/v1/contacts"' in text
    assert 'route="/v1/contacts/<contact_id>"' in text
    assert find(text, [SECRET]) == []
