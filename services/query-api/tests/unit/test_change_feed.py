"""Change-feed tokens and paging (``service_layer.change_feed``), without a database."""

from __future__ import annotations

import base64
import json

import pytest

from contacts_domain.workspaces import DEFAULT_WORKSPACE as WS
from query_api.service_layer.change_feed import (
    InvalidToken,
    TokenAhead,
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
    assert decode_token(encode_token(WS, at), WS) == at
    assert decode_token(encode_token("acme", at), "acme") == at


@pytest.mark.parametrize(("issued_in", "read_in"), [("acme", WS), (WS, "acme"), ("acme", "acme-2")])
def test_a_token_of_another_workspace_is_refused_like_a_malformed_one(
    issued_in: str, read_in: str
) -> None:
    token = encode_token(issued_in, FeedPosition(77, 1))

    assert _message(token, read_in) == _message("not base64!", read_in)


def test_a_token_does_not_show_its_workspace_and_the_default_one_carries_none() -> None:
    at = FeedPosition(77, 1)
    payload = json.loads(base64.urlsafe_b64decode(encode_token("acme", at) + "=="))

    assert "acme" not in json.dumps(payload)
    assert payload["w"] != ""
    # A token issued before workspaces existed resumes the default workspace's feed.
    assert decode_token(_token({"v": 1, "x": 77, "p": 1}), WS) == at
    assert "w" not in json.loads(base64.urlsafe_b64decode(encode_token(WS, at) + "=="))


def _message(token: str, workspace: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        decode_token(token, workspace)
    return str(caught.value)


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
        decode_token(token, WS)


def _change(txid: int, position: int) -> Change:
    return Change(FeedPosition(txid, position), "c", 1, deleted=True, contact=None)


def test_a_full_page_resumes_after_its_last_change() -> None:
    batch = ChangeBatch([_change(5, 1), _change(5, 2), _change(6, 3)], FeedPosition(9, 0), None)

    page = page_of(WS, batch, FeedPosition(4, 0), limit=2)

    assert [c.at for c in page.changes] == [FeedPosition(5, 1), FeedPosition(5, 2)]
    assert page.has_more
    assert decode_token(page.next_token, WS) == FeedPosition(5, 2)


def test_the_last_page_resumes_at_the_bound() -> None:
    # Nothing readable was left below the bound: the token moves up to it.
    batch = ChangeBatch([_change(5, 1)], FeedPosition(9, 0), None)

    page = page_of(WS, batch, FeedPosition(4, 0), limit=2)

    assert not page.has_more
    assert decode_token(page.next_token, WS) == FeedPosition(9, 0)


def test_an_empty_page_keeps_a_token_that_is_at_the_bound() -> None:
    batch = ChangeBatch([], FeedPosition(9, 0), None)

    page = page_of(WS, batch, FeedPosition(9, 0), limit=5)

    assert decode_token(page.next_token, WS) == FeedPosition(9, 0)


@pytest.mark.parametrize("after", [FeedPosition(9, 1), FeedPosition(12, 0)])
def test_a_token_ahead_of_the_bound_is_from_a_restored_database(after: FeedPosition) -> None:
    # A restore from a backup moves the feed's end back below tokens already handed out.
    batch = ChangeBatch([], FeedPosition(9, 0), None)

    with pytest.raises(TokenAhead, match="list the contacts again"):
        page_of(WS, batch, after, limit=5)
    assert issubclass(TokenAhead, TokenExpired)


def test_a_token_behind_the_purge_horizon_has_expired() -> None:
    batch = ChangeBatch([], FeedPosition(9, 0), FeedPosition(7, 3))

    with pytest.raises(TokenExpired):
        page_of(WS, batch, FeedPosition(7, 2), limit=5)
    assert page_of(WS, batch, FeedPosition(7, 3), limit=5).changes == []
