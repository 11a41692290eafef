"""The CSV formula escape (OWASP "CSV Injection"): the writer puts ``'`` before every contact
text starting with ``=``, ``+``, ``-``, ``@``, TAB or CR, stored phones excepted; the reader
removes exactly that ``'``."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contacts_exchange import csv_chunks, read_csv
from contacts_exchange.csv_formulas import escape_formula, unescape_formula

TRIGGERS = ["=", "+", "-", "@", "\t", "\r"]

#: Every free-text column of the Google layout → how a contact resource holds its value.
FREE_TEXT: dict[str, Any] = {
    "First Name": lambda v: {"first_name": v},
    "Last Name": lambda v: {"last_name": v},
    "Organization Name": lambda v: {"company": v},
    "Organization Title": lambda v: {"job_title": v},
    "Notes": lambda v: {"notes": v},
    "Labels": lambda v: {"tags": [v, "second"]},
    "E-mail 1 - Value": lambda v: {"emails": [{"value": v, "type": "home", "primary": True}]},
    "Address 1 - Street": lambda v: {"addresses": [{"type": "home", "street": v}]},
    "Address 1 - City": lambda v: {"addresses": [{"type": "home", "city": v}]},
    "Address 1 - Region": lambda v: {"addresses": [{"type": "home", "region": v}]},
    "Address 1 - Postal Code": lambda v: {"addresses": [{"type": "home", "postal_code": v}]},
}


def exported_row(**fields: Any) -> dict[str, str]:
    """The exported CSV row of one contact resource, by column name."""
    text = b"".join(csv_chunks([{"first_name": "Ada", **fields}])).decode("utf-8")
    header, row = csv.reader(io.StringIO(text, newline=""))
    return dict(zip(header, row, strict=True))


def imported(header: str, row: str) -> Any:
    """The normalized fields ``read_csv`` makes of one data row (no errors expected)."""
    (record,) = read_csv(io.BytesIO(f"{header}\r\n{row}\r\n".encode()))
    assert record.errors == []
    return record.data


@pytest.mark.parametrize("column", FREE_TEXT)
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_a_text_starting_with_a_formula_character_is_written_after_an_apostrophe(
    column: str, trigger: str
) -> None:
    value = f'{trigger}HYPERLINK("http://evil.example","x")'
    row = exported_row(**FREE_TEXT[column](value))
    expected = value + " ::: second" if column == "Labels" else value
    assert row[column] == "'" + expected


@pytest.mark.parametrize("column", FREE_TEXT)
@pytest.mark.parametrize("value", ["a=1+1", "O'Brien", "'quoted'", "x-y@z", " =1", "1-2"])
def test_a_text_starting_otherwise_is_written_as_it_is(column: str, value: str) -> None:
    row = exported_row(**FREE_TEXT[column](value))
    expected = value + " ::: second" if column == "Labels" else value
    assert row[column] == expected


def test_a_value_already_starting_with_apostrophes_before_a_trigger_gets_one_more() -> None:
    row = exported_row(first_name="'=1", last_name="''-1", company="'plain")
    assert (row["First Name"], row["Last Name"]) == ("''=1", "'''-1")
    assert row["Organization Name"] == "'plain"


def test_stored_phones_are_written_as_they_are_other_phone_values_escaped() -> None:
    phones = [
        {"value": "+12025550100", "type": "mobile", "primary": True},
        {"value": "+cmd|' /C calc'!A0", "type": "work", "primary": False},
        {"value": "=1+1", "type": "home", "primary": False},
        {"value": "+12025550100;ext=5", "type": "work", "primary": False},
        {"value": "+12025550100;ext=SUM(A1)", "type": "other", "primary": False},
    ]
    row = exported_row(phones=phones)
    assert row["Phone 1 - Value"] == "+12025550100"
    assert row["Phone 2 - Value"] == "'+cmd|' /C calc'!A0"
    assert row["Phone 3 - Value"] == "'=1+1"
    assert row["Phone 4 - Value"] == "+12025550100;ext=5"
    assert row["Phone 5 - Value"] == "'+12025550100;ext=SUM(A1)"


def test_the_owasp_examples_import_back_as_they_were() -> None:
    contact = {
        "first_name": '=HYPERLINK("http://evil.example","x")',
        "last_name": "+cmd|calc",
        "notes": "@SUM(1+1)",
        "company": "-2+3",
        "tags": ["=1", "@2"],
        "emails": [{"value": "-a@example.com", "type": "home", "primary": True}],
        "phones": [{"value": "+12025550100", "type": "mobile", "primary": True}],
    }
    (record,) = read_csv(io.BytesIO(b"".join(csv_chunks([contact]))))
    assert record.errors == []
    assert record.data is not None
    assert {key: record.data[key] for key in contact} == contact


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("'=1+1", "=1+1"),
        ("'+cmd|calc", "+cmd|calc"),
        ("'-2", "-2"),
        ("'@SUM(1)", "@SUM(1)"),
        ("''=1", "'=1"),
        ("'''-1", "''-1"),
        ("'plain", "'plain"),
        ("'", "'"),
        ("''", "''"),
        ("O'Brien", "O'Brien"),
        ("=1", "=1"),
        (" '=1", "'=1"),  # not the escape: the reader trims spaces after it looked
    ],
)
def test_the_reader_removes_exactly_the_escape(cell: str, value: str) -> None:
    data = imported("Last Name,Notes", f'Doe,"{cell}"')
    assert data["notes"] == value


def test_the_reader_removes_the_escape_in_every_column_phones_included() -> None:
    data = imported(
        "First Name,Last Name,Organization Name,Labels,E-mail 1 - Value,Phone 1 - Value,"
        "Address 1 - City",
        "'=a,'-b,'@c,'+d ::: 'e,'-x@example.com,'+12025550100,'=city",
    )
    assert (data["first_name"], data["last_name"], data["company"]) == ("=a", "-b", "@c")
    assert data["tags"] == ["+d", "'e"]  # only the cell's first character is escaped
    assert data["emails"][0]["value"] == "-x@example.com"
    assert data["phones"][0]["value"] == "+12025550100"
    assert data["addresses"][0]["city"] == "=city"


@given(st.text(alphabet=st.sampled_from("'=+-@\t\rab ")))
def test_unescape_inverts_escape_on_every_string(value: str) -> None:
    assert unescape_formula(escape_formula(value)) == value


@given(st.text(alphabet=st.sampled_from("'=+-@\t\rab ")))
def test_an_escaped_value_never_starts_with_a_trigger(value: str) -> None:
    assert escape_formula(value)[:1] not in TRIGGERS
