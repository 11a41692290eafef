"""Normalization rules of contact input (the domain half of cases C04 and C07)."""

from __future__ import annotations

from typing import Any

import pytest

from contacts_domain import ValidationFailed, limits, normalize_contact, represent


def full(raw: dict[str, Any]) -> dict[str, Any]:
    return normalize_contact(raw, partial=False, default_region="US")


def patch(raw: dict[str, Any]) -> dict[str, Any]:
    return normalize_contact(raw, partial=True, default_region="US")


def errors_of(raw: dict[str, Any], *, partial: bool) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as info:
        normalize_contact(raw, partial=partial, default_region="US")
    return info.value.errors


def test_full_write_normalizes_every_field() -> None:
    fields = full(
        {
            "first_name": "  Ro\u0073\u0061 ",
            "last_name": "Example",
            "email": "Rosa@EXAMPLE.com",
            "phone": "(202) 555-0100",
            "addresses": [{"city": "Paris", "country": "fr"}],
            "birthday": "1990-02-03",
            "tags": ["vip", " vip "],
        }
    )
    assert fields["first_name"] == "Rosa"
    assert fields["emails"] == [{"value": "Rosa@example.com", "type": "other", "primary": True}]
    assert fields["phones"] == [{"value": "+12025550100", "type": "other", "primary": True}]
    assert fields["addresses"][0]["country"] == "FR"
    assert fields["tags"] == ["vip"]
    assert fields["company"] is None
    assert represent(fields)["email"] == "Rosa@example.com"


def test_c04_patch_null_and_empty_list_clear_phones() -> None:
    assert patch({"phones": []}) == {"phones": []}
    assert patch({"phone": None}) == {"phones": []}


def test_c04_patch_null_last_name_clears_it() -> None:
    assert patch({"last_name": None}) == {"last_name": None}


def test_c04_patch_clearing_both_names_is_refused() -> None:
    errors = errors_of({"first_name": None, "last_name": None}, partial=True)
    assert set(errors) == {"first_name", "last_name"}


def test_c04_empty_string_means_null_everywhere() -> None:
    assert patch({"last_name": ""}) == {"last_name": None}
    assert patch({"company": "   "}) == {"company": None}
    assert set(errors_of({"first_name": "", "last_name": ""}, partial=True)) == {
        "first_name",
        "last_name",
    }


@pytest.mark.parametrize(
    "invisible", ["\u200b", "\ufeff", "\u0301\u0308", "\u200b \u200d", "\u2800", "\U0001d159"]
)
def test_a_name_without_a_visible_character_means_null(invisible: str) -> None:
    assert patch({"last_name": invisible}) == {"last_name": None}
    assert full({"first_name": invisible, "last_name": "Example"})["first_name"] is None
    assert set(errors_of({"first_name": invisible}, partial=False)) == {
        "first_name",
        "last_name",
    }
    assert set(errors_of({"first_name": invisible, "last_name": ""}, partial=True)) == {
        "first_name",
        "last_name",
    }


def test_c04_empty_patch_is_refused() -> None:
    assert "_schema" in errors_of({}, partial=True)


def test_c04_full_write_without_any_name_is_refused() -> None:
    errors = errors_of({"email": "a@example.com"}, partial=False)
    assert set(errors) == {"first_name", "last_name"}


def test_c04_absent_keys_are_not_in_a_patch() -> None:
    assert patch({"company": "Acme"}) == {"company": "Acme"}


def test_c07_notes_over_the_limit_names_the_field() -> None:
    errors = errors_of({"first_name": "A", "notes": "x" * 300_000}, partial=False)
    assert list(errors) == ["notes"]


def test_c07_every_field_at_its_largest_size_is_accepted() -> None:
    fields = full(largest_contact())
    assert len(fields["notes"]) == limits.NOTES_MAX
    assert len(fields["tags"]) == limits.TAGS_MAX_ITEMS


def largest_contact() -> dict[str, Any]:
    """A contact with every field at its maximum size (4-byte characters where text is free)."""
    wide = "😀"
    return {
        "first_name": wide * limits.NAME_MAX,
        "last_name": wide * limits.NAME_MAX,
        "company": wide * limits.COMPANY_MAX,
        "job_title": wide * limits.JOB_TITLE_MAX,
        "notes": wide * limits.NOTES_MAX,
        "tags": [f"{i:02d}" + wide * (limits.TAG_MAX - 2) for i in range(limits.TAGS_MAX_ITEMS)],
        "emails": [
            {"value": f"{i}{'a' * 60}@{'b' * 60}.{'c' * 60}.example"}
            for i in range(limits.EMAILS_MAX_ITEMS)
        ],
        "phones": [{"value": f"+1 202 555 01{i:02d}"} for i in range(limits.PHONES_MAX_ITEMS)],
        "addresses": [
            {
                "street": wide * limits.STREET_MAX,
                "city": wide * limits.CITY_MAX,
                "region": wide * limits.REGION_MAX,
                "postal_code": "9" * limits.POSTAL_CODE_MAX,
                "country": "US",
            }
            for _ in range(limits.ADDRESSES_MAX_ITEMS)
        ],
        "birthday": "1990-01-01",
    }


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"first_name": "A\x00B"}, "first_name"),
        ({"first_name": "A\x1bB"}, "first_name"),
        # Issue 16: bidi overrides and isolates, and noncharacters, as control characters are.
        ({"first_name": "A\u202eB"}, "first_name"),
        ({"last_name": "\u2066A\u2069", "first_name": "A"}, "last_name"),
        ({"first_name": "A\ufffe"}, "first_name"),
        ({"first_name": "A\ufdd0"}, "first_name"),
        ({"first_name": "A", "company": "Acme\U0010ffff"}, "company"),
        ({"first_name": "A", "notes": "line\n\u202dB"}, "notes"),
        ({"first_name": "A", "tags": ["\u202bx"]}, "tags.0"),
        ({"first_name": "\ud800"}, "first_name"),
        ({"first_name": 12}, "first_name"),
        ({"first_name": "A", "nickname": "x"}, "nickname"),
        ({"first_name": "A", "email": "not-an-email"}, "emails.0.value"),
        ({"first_name": "A", "phone": "12"}, "phones.0.value"),
        (
            {"first_name": "A", "emails": [{"value": "a@example.com", "type": "pager"}]},
            "emails.0.type",
        ),
        ({"first_name": "A", "email": "a@example.com", "emails": []}, "email"),
        ({"first_name": "A", "addresses": [{"country": "XX"}]}, "addresses.0.country"),
        ({"first_name": "A", "addresses": [{}]}, "addresses.0"),
        ({"first_name": "A", "birthday": "2999-01-01"}, "birthday"),
        ({"first_name": "A", "birthday": "1990-02-30"}, "birthday"),
        ({"first_name": "A", "tags": ["x" * 51]}, "tags.0"),
        ({"first_name": "A", "tags": ["t"] * 51}, "tags"),
        (
            {
                "first_name": "A",
                "emails": [
                    {"value": "a@example.com", "primary": True},
                    {"value": "b@example.com", "primary": True},
                ],
            },
            "emails",
        ),
        ({"first_name": "A", "emails": ["a@example.com", "A@EXAMPLE.com"]}, "emails.1.value"),
    ],
)
def test_bad_input_names_the_failing_field(raw: dict[str, Any], path: str) -> None:
    assert path in errors_of(raw, partial=False)


def test_notes_keep_newlines_and_tabs_but_names_do_not() -> None:
    assert full({"first_name": "A", "notes": "l1\r\nl2\tx"})["notes"] == "l1\nl2\tx"
    assert "first_name" in errors_of({"first_name": "A\nB"}, partial=False)


def test_first_entry_becomes_primary_when_none_is_flagged() -> None:
    fields = full({"first_name": "A", "emails": ["a@example.com", "b@example.com"]})
    assert [e["primary"] for e in fields["emails"]] == [True, False]


def test_emails_that_differ_only_in_case_are_one_entry_but_sharp_s_is_not_ss() -> None:
    sharp, double = "stra\u00dfe@example.com", "strasse@example.com"
    fields = full({"first_name": "A", "emails": [sharp, double]})
    assert [e["value"] for e in fields["emails"]] == [sharp, double]
    errors = errors_of({"first_name": "A", "emails": ["Ada@X.com", "ada@x.com"]}, partial=False)
    assert errors == {"emails.1.value": ["Duplicate entry."]}


def test_represent_gives_list_entries_one_key_order() -> None:
    stored = {"emails": [{"primary": True, "type": "work", "value": "a@example.com"}]}
    assert list(represent(stored)["emails"][0]) == ["value", "type", "primary"]
