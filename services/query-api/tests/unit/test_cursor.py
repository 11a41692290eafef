"""Cursors: round trips, and every tampered or foreign cursor refused with ``InvalidCursor``."""

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

ID = str(uuid.uuid4())
WHEN = dt.datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=dt.UTC)


def _token(payload: object) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _valid_payload(**changes: object) -> dict[str, object]:
    payload = {
        "v": 1,
        "s": "created_at",
        "k": "2026-03-04T05:06:07.123456Z",
        "i": ID,
        "f": ListFilters().fingerprint(WS),
    }
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

    token = cursor.encode(WS, sort, filters, position)

    assert cursor.decode(token, WS, filters, None) == (sort, position)
    assert cursor.decode(token, WS, filters, sort) == (sort, position)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_cursor_for_other_filters_is_refused():
    token = cursor.encode(WS, Sort("created_at"), ListFilters(tags=("a",)), Position(WHEN, ID))

    with pytest.raises(cursor.InvalidCursor, match="other filters"):
        cursor.decode(token, WS, ListFilters(tags=("b",)), None)


def test_a_cursor_for_another_sort_is_refused():
    token = cursor.encode(WS, Sort("created_at"), ListFilters(), Position(WHEN, ID))

    with pytest.raises(cursor.InvalidCursor, match="another sort"):
        cursor.decode(token, WS, ListFilters(), Sort("last_name"))


def test_tag_order_does_not_matter_to_the_fingerprint():
    ab, ba = ListFilters(tags=("a", "b")), ListFilters(tags=("b", "a"))
    assert ab.fingerprint(WS) == ba.fingerprint(WS)
    assert ab.fingerprint("acme") == ba.fingerprint("acme")


@pytest.mark.parametrize(("issued_in", "read_in"), [("acme", WS), (WS, "acme"), ("acme", "acme-2")])
def test_a_cursor_of_another_workspace_is_refused_like_one_of_other_filters(issued_in, read_in):
    filters = ListFilters(tags=("a",))
    token = cursor.encode(issued_in, Sort("created_at"), filters, Position(WHEN, ID))
    other_filters = cursor.encode(read_in, Sort("created_at"), ListFilters(), Position(WHEN, ID))

    with pytest.raises(cursor.InvalidCursor) as foreign:
        cursor.decode(token, read_in, filters, None)
    with pytest.raises(cursor.InvalidCursor) as mismatch:
        cursor.decode(other_filters, read_in, filters, None)

    assert str(foreign.value) == str(mismatch.value)
    assert issued_in not in base64.urlsafe_b64decode(token + "==").decode()
    assert cursor.decode(token, issued_in, filters, None) == (
        Sort("created_at"),
        Position(WHEN, ID),
    )


def test_the_default_workspace_keeps_the_fingerprint_of_cursors_issued_before_workspaces():
    # The digest of version 1 before workspaces: the JSON of [email, sorted tags, q].
    before = hashlib.sha256(b'[null,["a","b"],"ad"]').hexdigest()[:16]
    filters = ListFilters(tags=("b", "a"), q="ad")

    assert filters.fingerprint(WS) == before
    assert filters.fingerprint("acme") != before


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
        _token(_valid_payload(v=2)),
        _token(_valid_payload(v="1")),
        _token(_valid_payload(s="id")),
        _token(_valid_payload(s=None)),
        _token(_valid_payload(k=12)),
        _token(_valid_payload(k="yesterday")),
        _token(_valid_payload(k="2026-03-04T05:06:07Z")),
        _token(_valid_payload(i="not-a-uuid")),
        _token(_valid_payload(i=ID.upper())),
        _token(_valid_payload(f="0" * 16)),
        _token(_valid_payload(s="last_name", k="nul\x00byte")),
        _token(_valid_payload(s="last_name", k="\ud800")),
        base64.urlsafe_b64encode(b"\xff\xfe").rstrip(b"=").decode(),
    ],
)
def test_tampered_cursors_are_refused(token):
    with pytest.raises(cursor.InvalidCursor):
        cursor.decode(token, WS, ListFilters(), None)


@given(st.text(max_size=300))
def test_any_text_decodes_or_is_refused_cleanly(token):
    with contextlib.suppress(cursor.InvalidCursor):
        cursor.decode(token, WS, ListFilters(), None)


@given(st.binary(max_size=200))
def test_any_bytes_behind_base64_decode_or_are_refused_cleanly(raw):
    token = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    with contextlib.suppress(cursor.InvalidCursor):
        cursor.decode(token, WS, ListFilters(), None)
