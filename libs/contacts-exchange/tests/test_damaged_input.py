"""Damaged uploads never crash the readers: only ImportFormatError or ImportTooLarge escape,
anything else becomes the error of the record it concerns."""

from __future__ import annotations

import io
import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from contacts_exchange import ImportFormatError, ImportTooLarge, read_csv, read_vcards
from contacts_exchange.records import ImportRecord

#: The shared samples as conftest.py finds them (a test module cannot import conftest under
#: --import-mode=importlib); without them, two small files stand in.
_SHARED = Path(
    os.environ.get("CONTACTS_SHARED_DIR") or Path(__file__).resolve().parents[4] / "shared"
)
_DATA = _SHARED / "data" if (_SHARED / "data" / "vcards").is_dir() else None
_SAMPLES = (
    sorted(p.read_bytes() for p in (_DATA / "vcards").glob("*.vcf"))
    + sorted(p.read_bytes() for p in (_DATA / "csv").glob("*.csv"))
    if _DATA
    else [b"BEGIN:VCARD\r\nN:Doe;Jane\r\nEND:VCARD\r\n", b"First Name\r\nJane\r\n"]
)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SAMPLES)))
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 40))]
        else:
            data[at:at] = draw(
                st.sampled_from(
                    [b"=", b"\r", b"\n ", b'"', b";", b":", b"\\", b"BEGIN:VCARD\n", b"\xff\xfe"]
                )
            )
    return bytes(data)


def _read_all(reader: object, data: bytes) -> list[ImportRecord]:
    try:
        return list(reader(io.BytesIO(data), max_records=100, max_bytes=100_000))  # type: ignore[operator]
    except (ImportFormatError, ImportTooLarge):
        return []


@settings(max_examples=300, deadline=None)
@given(data=damaged())
def test_damaged_files_never_raise_anything_else(data: bytes) -> None:
    for reader in (read_vcards, read_csv):
        for record in _read_all(reader, data):
            assert (record.data is None) == bool(record.errors)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2000))
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    for reader in (read_vcards, read_csv):
        _read_all(reader, data)
