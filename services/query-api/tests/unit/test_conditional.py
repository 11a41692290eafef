"""``If-None-Match`` parsing and weak comparison (RFC 9110 §13.1.2)."""

from __future__ import annotations

import pytest

from query_api.entrypoints.conditional import none_match


@pytest.mark.parametrize(
    "field",
    ['"3"', 'W/"3"', "*", " * ", '"1","3"', '"1" , W/"3"', '"a,b", "3"', ',"3",', '"3"\t'],
)
def test_matches(field):
    assert none_match(field, "3")


@pytest.mark.parametrize(
    "field",
    [None, "", '"2"', '"33"', 'w/"3"', "3", '"3', '3"', '"3" "4"', '"1", 3', '"3" x', "**"],
)
def test_does_not_match(field):
    assert not none_match(field, "3")
