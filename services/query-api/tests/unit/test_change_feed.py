"""Change-feed tokens and paging (``service_layer.change_feed``), without a database."""

from __future__ import annotations

import base64
import json

import pytest

from query_api.service_layer.change_feed import (
    InvalidToken,
    TokenExpired,
    decode_token,
    encode_token,
    page_of,
)
from query_api.service_layer.records import Change, ChangeBatch, FeedPosition


def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


def test_a_token_round_trips() -> None:
    at = FeedPosition(2**40 + 7, 123)
    assert decode_token(encode_token(at)) == at


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        "x" * 300,
        _token([1, 2]),
        _token({"v": 2, "x": 1, "p": 1}),
        _token({"v": 1, "x": -1, "p": 1}),
        _token({"v": 1, "x": 1, "p": True}),
        _token({"v": 1, "x": "1", "p": 1}),
        _token({"v": 1, "x": 2**63, "p": 1}),
        _token({"v": 1, "x": 1}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="),
    ],
)
def test_anything_else_is_an_invalid_token(token: str) -> None:
    with pytest.raises(InvalidToken):
        decode_token(token)


def _change(txid: int, position: int) -> Change:
    return Change(FeedPosition(txid, position), "c", 1, deleted=True, contact=None)


def test_a_full_page_resumes_after_its_last_change() -> None:
    batch = ChangeBatch([_change(5, 1), _change(5, 2), _change(6, 3)], FeedPosition(9, 0), None)

    page = page_of(batch, FeedPosition(4, 0), limit=2)

    assert [c.at for c in page.changes] == [FeedPosition(5, 1), FeedPosition(5, 2)]
    assert page.has_more
    assert decode_token(page.next_token) == FeedPosition(5, 2)


def test_the_last_page_resumes_at_the_bound() -> None:
    # Nothing readable was left below the bound: the token moves up to it.
    batch = ChangeBatch([_change(5, 1)], FeedPosition(9, 0), None)

    page = page_of(batch, FeedPosition(4, 0), limit=2)

    assert not page.has_more
    assert decode_token(page.next_token) == FeedPosition(9, 0)


def test_an_empty_page_keeps_a_token_that_is_past_the_bound() -> None:
    batch = ChangeBatch([], FeedPosition(9, 0), None)

    page = page_of(batch, FeedPosition(12, 4), limit=5)

    assert decode_token(page.next_token) == FeedPosition(12, 4)


def test_a_token_behind_the_purge_horizon_has_expired() -> None:
    batch = ChangeBatch([], FeedPosition(9, 0), FeedPosition(7, 3))

    with pytest.raises(TokenExpired):
        page_of(batch, FeedPosition(7, 2), limit=5)
    assert page_of(batch, FeedPosition(7, 3), limit=5).changes == []
