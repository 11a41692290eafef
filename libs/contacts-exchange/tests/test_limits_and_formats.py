"""Limits (ImportTooLarge), files of the wrong format (ImportFormatError) and robustness."""

from __future__ import annotations

import io
import tracemalloc

import pytest

from contacts_domain.limits import NOTES_MAX
from contacts_exchange import ImportFormatError, ImportTooLarge, read_csv, read_vcards, vcard_reader

CARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Doe;Jane;;;\r\nEMAIL:jane@example.com\r\nEND:VCARD\r\n"
ROW = b"Jane,Doe,jane@example.com\r\n"
HEADER = b"First Name,Last Name,E-mail 1 - Value\r\n"


class EndlessStream(io.RawIOBase):
    """A binary stream that repeats ``unit`` forever, counting what was read."""

    def __init__(self, head: bytes, unit: bytes) -> None:
        self.head = head
        self.unit = unit
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.head if self.served < len(self.head) else self.unit
        if self.served < len(self.head):
            data = self.head[self.served :]
        size = min(len(buffer), len(data))
        buffer[:size] = data[:size]
        self.served += size
        return size


def test_vcard_record_limit_is_raised_at_the_limit() -> None:
    records: list[object] = []
    with pytest.raises(ImportTooLarge) as raised:
        records.extend(read_vcards(io.BytesIO(CARD * 4), max_records=3))
    assert len(records) == 3
    assert raised.value.limit == "max_records"
    assert "more than 3 records" in str(raised.value)


def test_vcard_byte_limit_stops_an_endless_upload_in_bounded_memory() -> None:
    stream = io.BufferedReader(EndlessStream(b"", CARD))
    tracemalloc.start()
    with pytest.raises(ImportTooLarge) as raised:
        for _ in read_vcards(stream, max_bytes=300_000, max_records=10**9):
            pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert raised.value.limit == "max_bytes"
    assert peak < 300_000


def test_one_endless_line_is_cut_at_the_byte_limit() -> None:
    stream = io.BufferedReader(EndlessStream(b"BEGIN:VCARD\r\nNOTE:", b"x" * 4096))
    with pytest.raises(ImportTooLarge):
        list(read_vcards(stream, max_bytes=1_000_000))
    assert stream.raw.served < 1_200_000  # type: ignore[attr-defined]


def test_csv_limits() -> None:
    with pytest.raises(ImportTooLarge, match="max_records"):
        list(read_csv(io.BytesIO(HEADER + ROW * 3), max_records=2))
    with pytest.raises(ImportTooLarge, match="max_bytes"):
        list(read_csv(io.BytesIO(HEADER + ROW * 100), max_bytes=1000))
    assert len(list(read_csv(io.BytesIO(HEADER + ROW * 2), max_records=2))) == 2


@pytest.mark.parametrize(
    "content",
    [b"First Name,Last Name\r\nJane,Doe\r\n", b"\x89PNG\r\n\x1a\n\x00\x00", b'{"a": 1}'],
)
def test_a_file_that_is_not_a_vcard_is_a_format_error(content: bytes) -> None:
    with pytest.raises(ImportFormatError, match="Not a vCard file"):
        list(read_vcards(io.BytesIO(content)))


@pytest.mark.parametrize(
    "content",
    [b"Name,Given Name,Additional Name\r\nJane,Doe,jane@example.com\r\n", b"Jane Doe\r\n"],
)
def test_a_format_error_never_quotes_the_file(content: bytes) -> None:
    with pytest.raises(ImportFormatError) as raised:
        list(read_vcards(io.BytesIO(content)))
    message = str(raised.value)
    assert message == (
        "Not a vCard file: line 1 is neither BEGIN:VCARD nor a vCard property such as "
        "VERSION or FN (a vCard file starts with BEGIN:VCARD)."
    )


@pytest.mark.parametrize(
    ("content", "start"),
    [
        (b"Jane\rDoe,jane@example.com\r\n", "Not a CSV file: its first line is not CSV text"),
        # Binary (gzip) bytes are not text in any encoding: refused before CSV parsing.
        (b"\x1f\x8b\x08Jane\r\x00\xff\r\n", "The file is not text in any encoding"),
    ],
)
def test_a_csv_file_that_is_not_csv_text_gets_a_message_of_our_own(
    content: bytes, start: str
) -> None:
    with pytest.raises(ImportFormatError) as raised:
        list(read_csv(io.BytesIO(content)))
    message = str(raised.value)
    assert message.startswith(start)
    assert "universal-newline" not in message
    assert "Jane" not in message


def test_empty_files_have_no_records() -> None:
    assert list(read_vcards(io.BytesIO(b""))) == []
    assert list(read_vcards(io.BytesIO(b"\xef\xbb\xbf"))) == []
    assert list(read_csv(io.BytesIO(b""))) == []


def test_csv_delimiters_and_encodings() -> None:
    text = "First Name;Last Name;E-mail 1 - Value\r\nZoë;Ødegård;zoe@example.com\r\n"
    for data in (
        text.encode("utf-8"),
        b"\xef\xbb\xbf" + text.encode("utf-8"),
        text.encode("utf-16"),
        text.encode("windows-1252"),
        text.replace(";", "\t").encode("utf-8"),
    ):
        (record,) = read_csv(io.BytesIO(data))
        assert record.data is not None
        assert (record.data["first_name"], record.data["last_name"]) == ("Zoë", "Ødegård")


def test_an_exception_in_one_card_becomes_its_error_and_the_next_card_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = vcard_reader.parse_property

    def explode(number: int, line: bytes) -> object:
        if b"BOOM" in line:
            raise RuntimeError("boom")
        return real(number, line)

    monkeypatch.setattr(vcard_reader, "parse_property", explode)
    data = CARD.replace(b"N:Doe", b"N:BOOM") + CARD
    first, second = read_vcards(io.BytesIO(data))
    assert first.errors == [{"field": "_card", "message": "The card could not be read: boom"}]
    assert first.data is None
    assert second.data is not None


def test_invalid_optional_fields_are_dropped_with_warnings_and_the_rest_imported() -> None:
    card = (
        b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Jane Doe\r\nN:Doe;Jane;;;\r\n"
        b"EMAIL;TYPE=work:not-an-email\r\nEMAIL:jane@example.com\r\n"
        b"BDAY:2999-01-01\r\nCATEGORIES:ok," + b"t" * 60 + b"\r\nEND:VCARD\r\n"
    )
    (record,) = read_vcards(io.BytesIO(card))
    assert record.data is not None
    assert record.data["emails"] == [
        {"value": "jane@example.com", "type": "other", "primary": True}
    ]
    assert record.data["birthday"] is None
    assert record.data["tags"] == ["ok"]
    assert [w["field"] for w in record.warnings] == ["birthday", "emails.0.value", "tags.1"]


def test_warnings_say_what_was_dropped_never_the_value() -> None:
    card = (
        b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Jane Doe\r\nN:Doe;Jane;;;\r\n"
        b"EMAIL:jane.private@nowhere\r\nTEL:budimax99\r\nBDAY:--0203\r\n"
        b"ADR;TYPE=home:;;1 Secret Lane;Springfield;;12345;Atlantis\r\n"
        b"NOTE:" + b"n" * (NOTES_MAX + 1) + b"\r\nEND:VCARD\r\n"
    )
    (record,) = read_vcards(io.BytesIO(card))
    assert record.data is not None
    assert record.data["addresses"][0]["city"] == "Springfield"
    notes = {
        "field": "notes",
        "message": f"Longer than maximum length {NOTES_MAX}. Dropped the field.",
    }
    assert notes in record.warnings
    assert [warning for warning in record.warnings if warning != notes] == [
        {
            "field": "birthday",
            "message": "Not a full date with a year (YYYY-MM-DD). Dropped the field.",
        },
        {
            "field": "emails.0.value",
            "message": "The part after the @-sign is not valid. It should have a period. "
            "Dropped the email address.",
        },
        {
            "field": "phones.0.value",
            "message": "Not a valid phone number. Dropped the phone number.",
        },
        {
            "field": "addresses.0.country",
            "message": "Not an ISO 3166-1 alpha-2 country code. Dropped the country.",
        },
    ]


def test_a_name_over_the_limit_fails_the_record() -> None:
    card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nN:" + b"x" * 101 + b";Jane;;;\r\nEND:VCARD\r\n"
    (record,) = read_vcards(io.BytesIO(card))
    assert record.data is None
    assert record.errors == [{"field": "last_name", "message": "Longer than maximum length 100."}]


def test_fn_is_split_when_n_is_missing() -> None:
    card = b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Anna Maria van Dijk\r\nEND:VCARD\r\n"
    (record,) = read_vcards(io.BytesIO(card))
    assert record.data is not None
    assert (record.data["first_name"], record.data["last_name"]) == ("Anna Maria van", "Dijk")


def test_shift_jis_charset_with_quoted_printable() -> None:
    name = "名無しの権兵衛".encode("shift_jis")
    qp = "".join(f"={b:02X}" for b in name).encode()
    card = (
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=SHIFT_JIS;ENCODING=QUOTED-PRINTABLE:"
        + qp[:20]
        + b"=\r\n"
        + qp[20:]
        + b";\r\nEND:VCARD\r\n"
    )
    (record,) = read_vcards(io.BytesIO(card))
    assert record.data is not None
    assert record.data["last_name"] == "名無しの権兵衛"


def test_records_stream_one_card_at_a_time() -> None:
    # The encoding is decided over the whole file first (issue 16), so the file is read to its
    # end before the first card; memory still holds one card (and one chunk) at a time.
    stream = io.BytesIO(CARD * 20_000)
    tracemalloc.start()
    reader = read_vcards(stream, max_records=10**9, max_bytes=10**12)
    first = next(reader)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert first.data is not None
    assert len(CARD * 20_000) > 1_000_000
    assert peak < 200 * 1024


def test_unknown_or_binary_charsets_fall_back_to_utf8() -> None:
    card = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN;CHARSET=base64:Doë;Jane;;;\r\n"
        "ORG;CHARSET=x-unknown:Ünïcode\r\nEND:VCARD\r\n"
    ).encode()
    (record,) = read_vcards(io.BytesIO(card))
    assert record.data is not None
    assert (record.data["last_name"], record.data["company"]) == ("Doë", "Ünïcode")


def test_the_lowest_pref_is_the_primary_entry() -> None:
    card = (
        b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Jane Doe\r\n"
        b"EMAIL;PREF=50:a@example.com\r\nEMAIL:b@example.com\r\nEMAIL;PREF=7:c@example.com\r\n"
        b"TEL;TYPE=cell:+12025550100\r\nTEL;TYPE=work:+12025550123\r\nEND:VCARD\r\n"
    )
    (record,) = read_vcards(io.BytesIO(card))
    assert record.data is not None
    assert [e["primary"] for e in record.data["emails"]] == [False, False, True]
    assert [p["primary"] for p in record.data["phones"]] == [True, False]


@pytest.mark.parametrize("char", ["\x07", "\u202e", "\u2067", "\ufdd0", "\uffff", "\U0001fffe"])
def test_bidi_controls_and_noncharacters_are_handled_like_control_characters(char: str) -> None:
    # Issue 16 (UTS #39, TR #36): in a name the record is refused; elsewhere the field is
    # dropped with a warning, in vCard and CSV alike.
    card = f"BEGIN:VCARD\r\nVERSION:4.0\r\nN:Do{char}e;Jane;;;\r\nEND:VCARD\r\n"
    (named,) = read_vcards(io.BytesIO(card.encode()))
    noted = f"BEGIN:VCARD\r\nVERSION:4.0\r\nN:Doe;Jane;;;\r\nNOTE:a{char}b\r\nEND:VCARD\r\n"
    (kept,) = read_vcards(io.BytesIO(noted.encode()))
    rows = f"First Name,Last Name,Notes\r\nJane,Do{char}e,n\r\nJim,Doe,a{char}b\r\n"
    named_row, noted_row = read_csv(io.BytesIO(rows.encode()))
    for refused in (named, named_row):
        assert refused.data is None
        assert [e["field"] for e in refused.errors] == ["last_name"]
        assert f"U+{ord(char):04X}" in refused.errors[0]["message"]
    for dropped in (kept, noted_row):
        assert dropped.data is not None
        assert dropped.data["notes"] is None
        assert [w["field"] for w in dropped.warnings] == ["notes"]
