"""A list page with no filter runs a statement built once per shape (``_list_template``, its
values bind parameters); it must be the very SQL that the general builder
(``_filtered_statement``) makes for the same request, so that the plans checked by
``test_explain`` and the pages of ``test_list_contacts`` hold for it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.dialects import postgresql

from query_api.adapters.sql_read_model import _filtered_statement, list_statement, page_statement
from query_api.service_layer.listing import SORT_NAMES, ListFilters, ListRequest, Position, Sort

CONTACT_ID = "0b7d4a4e-6f0a-4c57-9d8e-2f1f7f3c9a10"


def _sql(statement: object) -> str:
    return str(
        statement.compile(  # type: ignore[attr-defined]
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
    )


def _request(name: str, cursor: bool, filters: ListFilters | None = None) -> ListRequest:
    sort = Sort.parse(name)
    key: dt.datetime | str = (
        dt.datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=dt.UTC)
        if sort.key == "created_at"
        else "o'brien"
    )
    position = Position(key, CONTACT_ID) if cursor else None
    return ListRequest(sort, filters or ListFilters(), 21, position)


@pytest.mark.parametrize("name", SORT_NAMES)
@pytest.mark.parametrize("cursor", [False, True])
def test_an_unfiltered_page_is_the_built_statement_with_its_values_bound(
    name: str, cursor: bool
) -> None:
    request = _request(name, cursor)

    template, params = page_statement("ws-a", request, 21)
    built = _filtered_statement("ws-a", request, 21, candidates=False)

    assert params["workspace"] == "ws-a"
    assert _sql(template.params(params)) == _sql(built)
    assert _sql(list_statement("ws-a", request, 21)) == _sql(built)
    # The values are compared too (rendered as literals), not only the shape.
    assert "'ws-a'" in _sql(built)
    assert (CONTACT_ID.replace("-", "") in _sql(built)) == cursor


@pytest.mark.parametrize("cursor", [False, True])
def test_the_template_is_built_once_per_shape_and_shared_by_workspaces(cursor: bool) -> None:
    request = _request("-last_name", cursor)

    first, first_params = page_statement("ws-a", request, 21)
    second, second_params = page_statement("ws-b", request, 21)

    assert first is second
    assert (first_params["workspace"], second_params["workspace"]) == ("ws-a", "ws-b")
    assert page_statement("ws-a", request, 11)[0] is not first  # the limit is part of the shape


@pytest.mark.parametrize(
    "filters",
    [ListFilters(email_key="a@example.org"), ListFilters(tags=("vip",))],
)
def test_a_filtered_page_is_still_built_for_its_request(filters: ListFilters) -> None:
    request = _request("created_at", True, filters)

    statement, params = page_statement("ws-a", request, 21)

    assert params == {}
    assert _sql(statement) == _sql(_filtered_statement("ws-a", request, 21, candidates=False))
