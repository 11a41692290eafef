"""A row whose quotes are broken is an invalid record naming its line, and never takes the
rows after it along (csv_reader's "Malformed rows" rule); quoted fields that legitimately span
lines read as before (test_csv_samples reads every shared sample with such fields)."""

from __future__ import annotations

import io

import pytest

from contacts_exchange import ImportFormatError, ImportRecord, read_csv

HEADER = "First Name,Last Name,E-mail Address,Notes\n"


def read(rows: str) -> list[ImportRecord]:
    return list(read_csv(io.BytesIO((HEADER + rows).encode())))


def summary(records: list[ImportRecord]) -> list[tuple[int, str | None, list[str]]]:
    """(line, first name or None when invalid, error messages) of each record."""
    return [
        (
            record.line or 0,
            record.data["first_name"] if record.data else None,
            [error["message"] for error in record.errors],
        )
        for record in records
    ]


def test_an_unclosed_quote_is_an_error_on_its_line_and_the_rows_after_it_are_read() -> None:
    records = read(
        '"Quo,X,quo1@example.com,n\nAnn,Y,ann-q@example.com,n\nBob,Z,bob-q@example.com,n\n'
    )

    assert summary(records) == [
        (
            2,
            None,
            [
                "The row starting on line 2 could not be read: a quoted field is not closed "
                "before the end of the file."
            ],
        ),
        (3, "Ann", []),
        (4, "Bob", []),
    ]
    assert [r.errors[0]["field"] for r in records if r.errors] == ["_card"]
    assert records[1].data is not None
    assert records[1].data["emails"][0]["value"] == "ann-q@example.com"


def test_an_unclosed_quote_in_the_only_row_is_an_error_not_a_name() -> None:
    (record,) = read('"Quo,X,quo1@example.com,n\n')

    assert record.data is None
    assert record.errors == [
        {
            "field": "_card",
            "message": "The row starting on line 2 could not be read: a quoted field is not "
            "closed before the end of the file.",
        }
    ]


def test_a_stray_quote_closed_by_a_later_one_does_not_hide_the_rows_between() -> None:
    records = read(
        '"Quo,X,quo1@example.com,n\nAnn,Y,ann@example.com,"two\nlines"\nBob,Z,bob@example.com,n\n'
    )

    assert summary(records) == [
        (
            2,
            None,
            [
                "The row starting on line 2 could not be read: on line 3, a closing quote is "
                "followed by other text, not by ',' or the end of the line."
            ],
        ),
        (3, "Ann", []),
        (5, "Bob", []),
    ]
    assert records[1].data is not None
    assert records[1].data["notes"] == "two\nlines"


def test_lines_that_may_belong_to_the_broken_field_are_reported_unread_with_a_count() -> None:
    records = read(
        'Ann,Y,ann@example.com,"a note\nover lines, with a comma\n\nBob,Z,bob@example.com,n\n'
    )

    assert summary(records) == [
        (
            2,
            None,
            [
                "The row starting on line 2 could not be read: a quoted field is not closed "
                "before the end of the file."
            ],
        ),
        (
            3,
            None,
            [
                "Lines 3 to 5 (3 lines, the rest of the file) were not read: the broken quoted "
                "field of the row on line 2 may hold them (read as rows, the one on line 3 has "
                "2 fields, the header 4 fields). Correct the quotes from line 2 on and import "
                "the file again."
            ],
        ),
    ]


def test_every_broken_row_is_reported_and_each_good_row_kept() -> None:
    records = read(
        '"Quo,X,q@example.com,n\n'
        "Ann,Y,ann@example.com,n\n"
        '"Dan,W,d@example.com,n\n'
        'Eve,V,e@example.com,"a\nb"\n'
    )

    assert [(line, name) for line, name, _errors in summary(records)] == [
        (2, None),
        (3, "Ann"),
        (4, None),
        (5, "Eve"),
    ]


def test_text_after_a_closing_quote_is_an_error_naming_the_line() -> None:
    records = read('"Smith" Jr,Y,ann@example.com,n\nBob,Z,bob@example.com,n\n')

    assert summary(records) == [
        (
            2,
            None,
            [
                "The row starting on line 2 could not be read: a closing quote is followed by "
                "other text, not by ',' or the end of the line."
            ],
        ),
        (3, "Bob", []),
    ]


def test_a_quoted_field_over_several_lines_is_one_field() -> None:
    records = read('Ann,Y,ann@example.com,"one, two\n\nthree ""3"""\nBob,Z,bob@example.com,n\n')

    assert summary(records) == [(2, "Ann", []), (5, "Bob", [])]
    assert records[0].data is not None
    assert records[0].data["notes"] == 'one, two\n\nthree "3"'


def test_a_header_whose_quote_is_not_closed_on_line_1_is_refused() -> None:
    body = b'First Name,"Last Name,E-mail Address\nAnn,Y,ann@example.com\n'
    with pytest.raises(ImportFormatError, match=r"header row \(line 1\)"):
        list(read_csv(io.BytesIO(body)))
