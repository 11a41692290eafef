"""Cursors: round trips, and every tampered or foreign cursor refused with ``InvalidCursor``,
a foreign one exactly like garbage."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contacts_domain.workspaces import DEFAULT_WORKSPACE as WS
from query_api.service_layer import cursor
from query_api.service_layer.listing import ListFilters, Position, Sort
from query_api.service_layer.token_key import TokenKey

ID = str(uuid.uuid4())
WHEN = dt.datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=dt.UTC)
SECRET = "a-test-secret-of-at-least-32-characters"
KEY = TokenKey.of(SECRET)


def encode(workspace: str, sort: Sort, filters: ListFilters, position: Position) -> str:
    return cursor.encode(workspace, sort, filters, position, key=KEY)


def decode(token: str, workspace: str, filters: ListFilters, sort: Sort | None):  # type: ignore[no-untyped-def]
    return cursor.decode(token, workspace, filters, sort, key=KEY)


def _token(payload: object) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _valid_payload(**changes: object) -> dict[str, object]:
    """A version-2 payload of ``WS``'s unfiltered listing, signed before ``changes``."""
    token = encode(WS, Sort("created_at"), ListFilters(), Position(WHEN, ID))
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return {**payload, **changes}


@pytest.mark.parametrize(
    ("sort", "position"),
    [
        (Sort("created_at"), Position(WHEN, ID)),
        (Sort("created_at", descending=True), Position(WHEN, ID)),
        (Sort("last_name"), Position("o'brien ñ", ID)),
        (Sort("last_name", descending=True), Position("", ID)),
    ],
)
def test_round_trip(sort, position):
    filters = ListFilters(email_key="a@b.example", tags=("x", "y"), q="ad")

    token = encode(WS, sort, filters, position)

    assert decode(token, WS, filters, None) == (sort, position)
    assert decode(token, WS, filters, sort) == (sort, position)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_cursor_for_other_filters_is_refused():
    token = encode(WS, Sort("created_at"), ListFilters(tags=("a",)), Position(WHEN, ID))

    with pytest.raises(cursor.InvalidCursor) as caught:
        decode(token, WS, ListFilters(tags=("b",)), None)

    assert str(caught.value) == cursor.INVALID


def test_a_cursor_for_another_sort_is_refused():
    token = encode(WS, Sort("created_at"), ListFilters(), Position(WHEN, ID))

    with pytest.raises(cursor.InvalidCursor, match="another sort"):
        decode(token, WS, ListFilters(), Sort("last_name"))


def test_tag_order_does_not_matter():
    token = encode(WS, Sort("created_at"), ListFilters(tags=("a", "b")), Position(WHEN, ID))

    assert decode(token, WS, ListFilters(tags=("b", "a")), None)[1] == Position(WHEN, ID)


@pytest.mark.parametrize(("issued_in", "read_in"), [("acme", WS), (WS, "acme"), ("acme", "acme-2")])
@pytest.mark.parametrize("sort", [None, Sort("last_name")], ids=["same-sort", "other-sort"])
def test_a_cursor_of_another_workspace_is_refused_exactly_like_garbage(issued_in, read_in, sort):
    filters = ListFilters(tags=("a",))
    token = encode(issued_in, Sort("created_at"), filters, Position(WHEN, ID))

    with pytest.raises(cursor.InvalidCursor) as foreign:
        decode(token, read_in, filters, sort)
    with pytest.raises(cursor.InvalidCursor) as garbage:
        decode("bm90IGEgY3Vyc29y", read_in, filters, sort)

    assert str(foreign.value) == str(garbage.value) == cursor.INVALID
    assert issued_in not in base64.urlsafe_b64decode(token + "==").decode()
    assert decode(token, issued_in, filters, None) == (Sort("created_at"), Position(WHEN, ID))


def test_the_digest_is_keyed_so_a_guess_of_workspace_or_filters_cannot_be_confirmed():
    filters = ListFilters(q="ada")
    token = encode("acme", Sort("created_at"), filters, Position(WHEN, ID))
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))

    unkeyed = [
        _sha256(json.dumps(parts, separators=(",", ":")))
        for parts in ([None, [], "ada", "acme"], ["acme"], "acme")
    ]
    assert not any(payload["m"].startswith(guess[:16]) for guess in unkeyed)
    assert "f" not in payload
    # Another server secret refuses it, like garbage: only the secret's holder can sign.
    with pytest.raises(cursor.InvalidCursor):
        cursor.decode(token, "acme", filters, None, key=TokenKey.of("x" * 32))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_cursor_issued_before_signing_is_refused_as_not_valid():
    # Version 1: {"v":1,...,"f": 16 hex of an unkeyed SHA-256 of the filters}.
    old = _token(
        {
            "v": 1,
            "s": "created_at",
            "k": "2026-03-04T05:06:07.123456Z",
            "i": ID,
            "f": _sha256("[null,[],null]")[:16],
        }
    )

    with pytest.raises(cursor.InvalidCursor) as caught:
        decode(old, WS, ListFilters(), None)

    assert str(caught.value) == cursor.INVALID


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!!",
        "not base64 at all",
        "eyJ2IjoxfQ==",  # padding is not part of the alphabet we issue
        "a" * 2000,
        _token([1, 2, 3]),
        _token("string"),
        _token(_valid_payload(v=1)),
        _token(_valid_payload(v=3)),
        _token(_valid_payload(m="0" * 32)),
        _token(_valid_payload(m=None)),
        _token({k: v for k, v in _valid_payload().items() if k != "m"}),
        _token(_valid_payload(i=str(uuid.uuid4()))),  # an edited member
        _token(_valid_payload(k="2026-03-04T05:06:08.123456Z")),
        _token(_valid_payload(v="1")),
        _token(_valid_payload(s="id")),
        _token(_valid_payload(s=None)),
        _token(_valid_payload(k=12)),
        _token(_valid_payload(k="yesterday")),
        _token(_valid_payload(k="2026-03-04T05:06:07Z")),
        _token(_valid_payload(i="not-a-uuid")),
        _token(_valid_payload(i=ID.upper())),
        _token(_valid_payload(s="last_name", k="nul\x00byte")),
        _token(_valid_payload(s="last_name", k="\ud800")),
        base64.urlsafe_b64encode(b"\xff\xfe").rstrip(b"=").decode(),
    ],
)
def test_tampered_cursors_are_refused(token):
    with pytest.raises(cursor.InvalidCursor) as caught:
        decode(token, WS, ListFilters(), None)

    assert str(caught.value) == cursor.INVALID


@given(st.text(max_size=300))
def test_any_text_decodes_or_is_refused_cleanly(token):
    with contextlib.suppress(cursor.InvalidCursor):
        decode(token, WS, ListFilters(), None)


@given(st.binary(max_size=200))
def test_any_bytes_behind_base64_decode_or_are_refused_cleanly(raw):
    token = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    with contextlib.suppress(cursor.InvalidCursor):
        decode(token, WS, ListFilters(), None)
