"""Change-feed tokens and paging (``service_layer.change_feed``), without a database."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from contacts_domain.workspaces import DEFAULT_WORKSPACE as WS
from query_api.service_layer import change_feed
from query_api.service_layer.change_feed import INVALID, InvalidToken, TokenAhead, TokenExpired
from query_api.service_layer.records import Change, ChangeBatch, FeedPosition
from query_api.service_layer.token_key import TokenKey

KEY = TokenKey.of("a-test-secret-of-at-least-32-characters")


def encode_token(workspace: str, at: FeedPosition) -> str:
    return change_feed.encode_token(workspace, at, key=KEY)


def decode_token(token: str, workspace: str) -> FeedPosition:
    return change_feed.decode_token(token, workspace, key=KEY)


def page_of(
    workspace: str, batch: ChangeBatch, after: FeedPosition, limit: int
) -> change_feed.ChangePage:
    return change_feed.page_of(workspace, batch, after, limit, key=KEY)


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


def test_the_workspace_digest_is_keyed_so_a_guessed_name_cannot_be_confirmed() -> None:
    at = FeedPosition(77, 1)
    payload = json.loads(base64.urlsafe_b64decode(encode_token("acme", at) + "=="))

    assert payload["w"] != hashlib.sha256(b"acme").hexdigest()[:16]
    assert hashlib.sha256(b"acme").hexdigest()[:16] not in payload["w"]
    # Another server secret refuses it like garbage: only the secret's holder can sign.
    with pytest.raises(InvalidToken, match=INVALID):
        change_feed.decode_token(encode_token("acme", at), "acme", key=TokenKey.of("x" * 32))


@pytest.mark.parametrize(
    "w", [hashlib.sha256(b"acme").hexdigest()[:16], "0" * 32, None, 7], ids=str
)
def test_a_token_issued_before_the_keyed_digest_is_invalid_like_garbage(w: object) -> None:
    # Before: "w" was 16 hex of an unkeyed SHA-256 of the workspace name.
    old = _token({"v": 1, "x": 77, "p": 1, "w": w})

    assert _message(old, "acme") == _message("not base64!", "acme") == INVALID


def test_an_edited_position_is_refused_outside_the_default_workspace() -> None:
    payload = json.loads(base64.urlsafe_b64decode(encode_token("acme", FeedPosition(77, 1)) + "=="))

    assert _message(_token({**payload, "x": 78}), "acme") == INVALID


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
