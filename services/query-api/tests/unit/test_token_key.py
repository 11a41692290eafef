"""The token key across a rotation of ``QUERY_TOKEN_SECRET``: new digests are the new secret's,
the old secret's still verify while it is the previous one, and nothing else does."""

from __future__ import annotations

import pytest

from query_api.service_layer import change_feed, cursor
from query_api.service_layer.listing import ListFilters, Position, Sort
from query_api.service_layer.records import FeedPosition
from query_api.service_layer.token_key import DEVELOPMENT_SECRET, TokenKey

OLD = "the-old-secret-of-at-least-32-characters"
NEW = "the-new-secret-of-at-least-32-characters"
OTHER = "another-secret-of-at-least-32-characters"
PARTS = ("acme", [None, ["vip"], "ada"], 77)


def test_a_digest_of_the_old_secret_verifies_after_the_rotation() -> None:
    issued = TokenKey.of(OLD).digest("cursor", *PARTS)

    assert TokenKey.of(NEW, OLD).verify(issued, "cursor", *PARTS)
    # Still bound to what it was issued for: the previous secret widens nothing else.
    assert not TokenKey.of(NEW, OLD).verify(issued, "cursor", "globex", *PARTS[1:])
    assert not TokenKey.of(NEW, OLD).verify(issued, "change-feed", *PARTS)


def test_a_digest_of_neither_secret_is_refused() -> None:
    issued = TokenKey.of(OTHER).digest("cursor", *PARTS)

    assert not TokenKey.of(NEW, OLD).verify(issued, "cursor", *PARTS)
    assert not TokenKey.of(NEW, OLD).verify("0" * 32, "cursor", *PARTS)
    # Once the previous secret is dropped, the old secret's digests are refused too.
    assert not TokenKey.of(NEW).verify(TokenKey.of(OLD).digest("cursor", *PARTS), "cursor", *PARTS)


def test_new_digests_are_made_with_the_new_secret_only() -> None:
    rotated = TokenKey.of(NEW, OLD)
    issued = rotated.digest("cursor", *PARTS)

    assert issued == TokenKey.of(NEW).digest("cursor", *PARTS)
    assert issued != TokenKey.of(OLD).digest("cursor", *PARTS)
    assert TokenKey.of(NEW).verify(issued, "cursor", *PARTS)
    assert not TokenKey.of(OLD).verify(issued, "cursor", *PARTS)


def test_an_empty_previous_secret_is_none_and_the_empty_secret_the_development_one() -> None:
    assert TokenKey.of(NEW, "") == TokenKey.of(NEW) == TokenKey(NEW.encode())
    assert TokenKey.of("") == TokenKey(DEVELOPMENT_SECRET.encode())
    # The development key is never a previous secret by default: tokens it signed do not
    # survive the first real secret.
    issued = TokenKey.of("").digest("cursor", *PARTS)
    assert not TokenKey.of(NEW).verify(issued, "cursor", *PARTS)


@pytest.mark.parametrize("presented", [None, 7, "", "0" * 31, "é" * 32, "0" * 33])
def test_what_is_no_digest_is_refused_with_either_secret(presented: object) -> None:
    assert not TokenKey.of(NEW, OLD).verify(presented, "cursor", *PARTS)


def test_the_secrets_are_never_shown() -> None:
    shown = repr(TokenKey.of(NEW, OLD))

    assert "secret-of" not in shown
    assert "TokenKey" in shown


def test_a_cursor_and_a_change_token_of_the_old_secret_resume_and_are_reissued_new() -> None:
    old, rotated = TokenKey.of(OLD), TokenKey.of(NEW, OLD)
    filters, sort = ListFilters(tags=("vip",)), Sort("last_name")
    position = Position("lovelace", "0190b6a4-0000-7000-8000-000000000001")
    at = FeedPosition(77, 1)

    old_cursor = cursor.encode("acme", sort, filters, position, key=old)
    old_token = change_feed.encode_token("acme", at, key=old)

    assert cursor.decode(old_cursor, "acme", filters, None, key=rotated) == (sort, position)
    assert change_feed.decode_token(old_token, "acme", key=rotated) == at
    new_cursor = cursor.encode("acme", sort, filters, position, key=rotated)
    with pytest.raises(cursor.InvalidCursor):
        cursor.decode(new_cursor, "acme", filters, None, key=old)
    with pytest.raises(change_feed.InvalidToken):
        change_feed.decode_token(change_feed.encode_token("acme", at, key=rotated), "acme", key=old)


def test_the_new_secret_given_as_the_previous_one_is_accepted_before_anyone_signs_with_it() -> None:
    # The README's first rollout: replicas still signing with the old secret already accept
    # what replicas of the second rollout sign with the new one.
    staged = TokenKey.of(OLD, NEW)

    assert staged.digest("cursor", *PARTS) == TokenKey.of(OLD).digest("cursor", *PARTS)
    assert staged.verify(TokenKey.of(NEW, OLD).digest("cursor", *PARTS), "cursor", *PARTS)
