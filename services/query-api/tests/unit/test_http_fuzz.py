"""Never a 500 for bad input (docs/architecture.md §6): arbitrary query strings and ids, with fakes
behind."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NAMES = st.sampled_from(["limit", "sort", "cursor", "email", "tag", "q", "x"])
VALUES = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(["created_at", "-last_name", "eyJ2IjoxfQ", "a@b.example", "%", "_"]),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(NAMES, VALUES), max_size=5))
def test_list_answers_200_or_400(client, pairs):
    query = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in pairs)

    response = client.get(f"/v1/contacts?{query}")

    assert response.status_code in (200, 400), (query, response.data)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=60))
def test_get_by_any_id_answers_404(client, raw_id):
    path = quote(raw_id, safe="")

    for prefix in ("/v1/contacts/", "/v1/operations/"):
        response = client.get(prefix + path)
        assert response.status_code in (404, 308), (prefix, raw_id)
