"""Phone extensions survive import and export: the domain stores ``+14185550154;ext=102``
(E.164, then RFC 3966's ``ext`` parameter), the vCard reader keeps a ``tel:`` URI's ``ext`` and
a text TEL's ``ext. 102``/``x102``, and both writers put it where their reader finds it again.
An extension that cannot be read drops its number with a warning, never the extension alone."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
import vobject

from contacts_exchange import ImportRecord, csv_chunks, read_csv, read_vcards, vcard_chunks

Read = Callable[[str], list[ImportRecord]]


def read_card(*tel_lines: str, version: str = "4.0") -> ImportRecord:
    """The record of one card with the given TEL lines (and a name)."""
    lines = ["BEGIN:VCARD", f"VERSION:{version}", "N:Exemplaire;Jules;;;", *tel_lines, "END:VCARD"]
    (record,) = read_vcards(io.BytesIO(("\r\n".join(lines) + "\r\n").encode()))
    return record


def phone_values(record: ImportRecord) -> list[str]:
    assert record.data is not None
    return [entry["value"] for entry in record.data["phones"]]


def test_the_rfc6350_sample_keeps_its_extension_without_a_warning(vcard_file: Read) -> None:
    # vcards/01 (RFC 6350 §8) holds TEL;VALUE=uri;...:tel:+1-418-555-0154;ext=102.
    (card,) = vcard_file("01")
    assert phone_values(card) == ["+14185550154;ext=102", "+14185550101"]
    assert not [w for w in card.warnings if w["field"].startswith("phones")]


@pytest.mark.parametrize(
    "tel",
    [
        "TEL;VALUE=uri;TYPE=work:tel:+1-418-555-0154;ext=102",
        "TEL;VALUE=uri:TEL:+1-418-555-0154;EXT=102",
        "TEL;VALUE=uri:tel:+1-418-555-0154;ext=1-0.2",  # RFC 3966 visual separators
        "TEL;VALUE=uri:tel:+1-418-555-0154;isub=7;ext=102",
        "TEL;TYPE=work:+1 418 555 0154 ext. 102",
        "TEL:+1 (418) 555-0154 x102",
    ],
)
def test_a_tel_uri_or_text_keeps_its_extension(tel: str) -> None:
    assert phone_values(read_card(tel)) == ["+14185550154;ext=102"]


@pytest.mark.parametrize(
    ("version", "tel"),
    [
        ("3.0", "TEL;TYPE=WORK,VOICE:+1 418 555 0154 ext. 102"),
        ("3.0", "item1.TEL;type=WORK:+1 (418) 555-0154 x102"),
        ("3.0", "TEL;TYPE=WORK:+1-418-555-0154\\;ext=102"),
        ("2.1", "TEL;WORK;VOICE:+1-418-555-0154 ext 102"),
    ],
)
def test_vcard_3_and_2_1_text_forms_keep_the_extension(version: str, tel: str) -> None:
    assert phone_values(read_card(tel, version=version)) == ["+14185550154;ext=102"]


def test_an_empty_ext_parameter_is_no_extension() -> None:
    assert phone_values(read_card("TEL;VALUE=uri:tel:+1-418-555-0154;ext=")) == ["+14185550154"]


def test_an_unreadable_extension_drops_the_number_with_a_warning() -> None:
    record = read_card(
        "TEL;VALUE=uri:tel:+1-418-555-0154;ext=abc", "TEL;VALUE=uri:tel:+1-418-555-0101"
    )
    assert phone_values(record) == ["+14185550101"]
    [warning] = record.warnings
    assert warning["field"] == "phones.0.value"
    assert warning["message"].endswith("Dropped the phone number.")


CONTACT: dict[str, Any] = {
    "id": "6f1c7a2e-0000-4000-8000-000000000001",
    "first_name": "Jules",
    "last_name": "Exemplaire",
    "phones": [
        {"value": "+14185550154;ext=102", "type": "work", "primary": True},
        {"value": "+442079460018;ext=0012", "type": "home", "primary": False},
        {"value": "+14185550101", "type": "mobile", "primary": False},
    ],
}


def test_the_vcard_export_writes_the_extension_in_the_tel_uri() -> None:
    text = b"".join(vcard_chunks([CONTACT])).decode("utf-8")
    lines = text.split("\r\n")
    assert "TEL;VALUE=uri;TYPE=work;PREF=1:tel:+14185550154;ext=102" in lines
    assert "TEL;VALUE=uri;TYPE=home:tel:+442079460018;ext=0012" in lines
    # Another parser reads the same URI.
    card = vobject.readOne(text)
    assert [tel.value for tel in card.tel_list][:2] == [
        "tel:+14185550154;ext=102",
        "tel:+442079460018;ext=0012",
    ]


def test_the_csv_export_writes_the_stored_number_unescaped() -> None:
    text = b"".join(csv_chunks([CONTACT])).decode("utf-8")
    header, row = csv.reader(io.StringIO(text, newline=""))
    cells = dict(zip(header, row, strict=True))
    assert cells["Phone 1 - Value"] == "+14185550154;ext=102"
    assert cells["Phone 2 - Value"] == "+442079460018;ext=0012"


@pytest.mark.parametrize(
    ("export", "read"), [(vcard_chunks, read_vcards), (csv_chunks, read_csv)], ids=["vcard", "csv"]
)
def test_export_then_import_keeps_every_extension(export: Any, read: Any) -> None:
    (record,) = read(io.BytesIO(b"".join(export([CONTACT]))))
    assert record.warnings == []
    assert record.data is not None
    assert record.data["phones"] == CONTACT["phones"]


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_an_imported_card_exports_and_imports_back_with_its_extension(version: str) -> None:
    tel = (
        "TEL;TYPE=WORK:+1 418 555 0154 ext. 102"
        if version == "3.0"
        else "TEL;VALUE=uri;TYPE=work:tel:+1-418-555-0154;ext=102"
    )
    first = read_card(tel, version=version)
    assert first.data is not None
    (again,) = read_vcards(io.BytesIO(b"".join(vcard_chunks([first.data]))))
    assert again.warnings == []
    assert again.data == first.data
    assert phone_values(again) == ["+14185550154;ext=102"]
