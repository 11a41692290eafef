"""The vCard 4.0 and Google CSV writers: RFC 6350 line rules, RFC 4180 quoting, streaming."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from contacts_exchange import csv_chunks, vcard_chunks, write_csv, write_vcards
from contacts_exchange.csv_writer import HEADER
from contacts_exchange.vcard_writer import escape, fold

CONTACT: dict[str, Any] = {
    "id": "6f1c7a2e-0000-4000-8000-000000000001",
    "version": 3,
    "first_name": "Zoë; \\ ,",
    "last_name": "Ødegård",
    "emails": [
        {"value": "zoe@example.com", "type": "work", "primary": False},
        {"value": "z@example.org", "type": "other", "primary": True},
    ],
    "phones": [{"value": "+12025550100", "type": "mobile", "primary": True}],
    "company": "Acme, Inc.",
    "job_title": None,
    "addresses": [
        {
            "type": "home",
            "street": "1 Main St; Apt 2",
            "city": "Springfield",
            "region": None,
            "postal_code": "12345",
            "country": "US",
        }
    ],
    "birthday": "1990-02-03",
    "notes": "line 1\nline 2\twith tab",
    "tags": ["a,b", "c"],
    "email": "z@example.org",
    "phone": "+12025550100",
    "created_at": "2026-01-02T03:04:05.000000Z",
    "updated_at": "2026-01-02T03:04:05.678901Z",
}


def test_vcard_card_content() -> None:
    text = b"".join(vcard_chunks([CONTACT])).decode("utf-8")
    assert text.startswith("BEGIN:VCARD\r\nVERSION:4.0\r\n")
    assert text.endswith("END:VCARD\r\n")
    lines = text.split("\r\n")
    assert "UID:urn:uuid:6f1c7a2e-0000-4000-8000-000000000001" in lines
    # FN is single-valued: its ";" is not escaped (issue 16: ical.js would show "\\;").
    assert "FN:Zoë; \\\\ \\, Ødegård" in lines
    assert "N:Ødegård;Zoë\\; \\\\ \\,;;;" in lines
    assert "EMAIL;TYPE=work:zoe@example.com" in lines
    assert "EMAIL;PREF=1:z@example.org" in lines
    assert "TEL;VALUE=uri;TYPE=cell;PREF=1:tel:+12025550100" in lines
    assert "ADR;TYPE=home:;;1 Main St\\; Apt 2;Springfield;;12345;US" in lines
    assert "ORG:Acme\\, Inc." in lines
    assert "BDAY:19900203" in lines
    assert "NOTE:line 1\\nline 2\twith tab" in lines
    assert "CATEGORIES:a\\,b,c" in lines
    assert "REV:20260102T030405Z" in lines
    assert not any(line.startswith("TITLE") for line in lines)


def test_escape_follows_rfc6350() -> None:
    assert escape("a\\b,c;d\ne\r\nf") == "a\\\\b\\,c;d\\ne\\nf"
    assert escape("a\\b,c;d\ne\r\nf", compound=True) == "a\\\\b\\,c\\;d\\ne\\nf"


def test_semicolons_are_escaped_only_in_compound_properties() -> None:
    contact = {
        "first_name": "Ann",
        "last_name": "Lee; Jr",
        "company": "Sales; EMEA",
        "job_title": "Head; ops",
        "notes": "Call after 5; not before",
        "tags": ["x;y"],
    }
    lines = b"".join(vcard_chunks([contact])).decode("utf-8").split("\r\n")
    assert "NOTE:Call after 5; not before" in lines
    assert "TITLE:Head; ops" in lines
    assert "CATEGORIES:x;y" in lines
    assert "FN:Ann Lee; Jr" in lines
    assert "N:Lee\\; Jr;Ann;;;" in lines
    assert "ORG:Sales\\; EMEA" in lines


def test_fold_at_75_octets_without_splitting_utf8() -> None:
    line = "NOTE:" + "ж" * 100 + "é" * 3 + "x" * 80
    folded = fold(line)
    physical = folded.split(b"\r\n")
    assert physical[-1] == b""
    for piece in physical[:-1]:
        assert len(piece) <= 75
        piece.decode("utf-8")  # every physical line is whole UTF-8 on its own
    assert all(p.startswith(b" ") for p in physical[1:-1])
    unfolded = b"".join(p[1:] if i else p for i, p in enumerate(physical[:-1]))
    assert unfolded.decode("utf-8") == line


def test_short_lines_are_not_folded() -> None:
    assert fold("FN:" + "a" * 72) == b"FN:" + b"a" * 72 + b"\r\n"
    assert fold("FN:" + "a" * 73).count(b"\r\n") == 2


def test_csv_layout_is_google_with_fixed_width() -> None:
    rows = list(csv.reader(io.StringIO(b"".join(csv_chunks([CONTACT])).decode("utf-8"))))
    assert rows[0] == list(HEADER)
    assert rows[0][:7] == [
        "First Name",
        "Last Name",
        "Organization Name",
        "Organization Title",
        "Birthday",
        "Notes",
        "Labels",
    ]
    assert len(HEADER) == 7 + 10 * 2 + 10 * 2 + 5 * 6
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["First Name"] == "Zoë; \\ ,"
    assert row["E-mail 1 - Label"] == "Work"
    assert row["E-mail 2 - Label"] == "* Other"
    assert row["Phone 1 - Label"] == "* Mobile"
    assert row["Address 1 - Street"] == "1 Main St; Apt 2"
    assert row["Address 1 - Country"] == "US"
    assert row["Labels"] == "a,b ::: c"
    assert row["Notes"] == "line 1\nline 2\twith tab"


def test_csv_rows_end_in_crlf_and_quote_what_needs_it() -> None:
    data = b"".join(csv_chunks([CONTACT]))
    assert data.count(b"\r\n") == 2
    assert b'"Acme, Inc."' in data
    assert b'"line 1\nline 2\twith tab"' in data


def test_writers_stream_one_contact_at_a_time() -> None:
    produced = 0

    def contacts() -> Iterator[dict[str, Any]]:
        nonlocal produced
        for _ in range(1000):
            produced += 1
            yield CONTACT

    for chunks in (vcard_chunks(contacts()), csv_chunks(contacts())):
        produced = 0
        next(chunks)
        next(chunks)
        assert produced <= 2


def test_write_functions_return_octets_written() -> None:
    out = io.BytesIO()
    assert write_vcards([CONTACT, CONTACT], out) == len(out.getvalue())
    out = io.BytesIO()
    assert write_csv([CONTACT], out) == len(out.getvalue())
    assert write_csv([], io.BytesIO()) > 0  # the header alone
    assert write_vcards([], io.BytesIO()) == 0
