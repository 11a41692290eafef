"""vCard import: ``read_vcards`` turns a vCard 2.1/3.0/4.0 stream into ``ImportRecord``s.

Mapping of properties (RFC 6350 §6, RFC 2426 §3, vCard 2.1 §2) to contact fields:

- ``N`` (family;given;additional;prefixes;suffixes) → ``last_name``/``first_name``; without a
  usable N, ``FN`` is split at its last space (one word → ``first_name``).
- ``EMAIL``/``TEL``/``ADR`` → ``emails``/``phones``/``addresses``, every occurrence, in order.
  TYPE HOME → home, WORK → work, CELL (TEL) → mobile, anything else → other; an Apple
  ``itemN.X-ABLabel`` of the same group (``_$!<Mobile>!$_``, ``work``...) is read the same way
  when the property has no such TYPE. The primary entry is the one with the lowest 4.0
  ``PREF=1..100`` (RFC 6350 §5.3), TYPE=PREF (2.1/3.0) counting as 1, the first one on a tie;
  without any, the first entry. A ``tel:`` URI (4.0) is read as its number and its ``ext``
  parameter (``tel:+1-418-555-0154;ext=102``); a text TEL keeps the extension libphonenumber
  finds in it (``+1 418 555 0154 ext. 102``, ``x102``). The domain stores the number with its
  extension (``+14185550154;ext=102``); an extension it cannot read drops the number with a
  warning, never the extension alone.
- ``ORG`` (first component) → ``company``; ``TITLE`` → ``job_title``; the first non-empty one.
- ``NOTE`` → ``notes`` (several NOTEs joined by a blank line); ``CATEGORIES`` → ``tags``.
- ``BDAY`` → ``birthday`` when it has a full date (``YYYY-MM-DD``, ``YYYYMMDD``, or a date-time
  whose date part is one); a date without a year (``--0203``) or free text is dropped with a
  warning.
- Everything else (PHOTO, KEY, URL, X- properties...) is ignored.

Charsets: the file's encoding is decided once, before the first card (``file_encoding``): a
BOM or the NUL pattern of UTF-16/UTF-32 (such a file is transcoded to UTF-8 as it is read), else
from the bytes of every value without a CHARSET parameter in the file: UTF-8 when they all are,
else charset-normalizer's guess, accepted only when it decodes all of them cleanly (a warning
on each value read with it: "read as cp1253 (a guess)"), else the file is refused
(``UndecodableFile``). A value is decoded with its CHARSET parameter, else as UTF-8, else in
the file's guessed encoding.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

from contacts_exchange.byte_source import plain_utf8, read_lines, rewindable, wide_encoding
from contacts_exchange.country_names import country_code
from contacts_exchange.file_encoding import UTF8, FileEncoding, guess_message, segments_encoding
from contacts_exchange.records import CARD, ImportRecord, problem, validate_record
from contacts_exchange.vcard_lexer import RawCard, is_qp, logical_lines, split_cards
from contacts_exchange.vcard_properties import Property, parse_property, split_value

DEFAULT_MAX_BYTES: Final = 10 * 1024 * 1024
DEFAULT_MAX_RECORDS: Final = 10_000
_FALLBACK_CHARSET: Final = "windows-1252"
_LABELS: Final = {
    "home": "home",
    "work": "work",
    "mobile": "mobile",
    "cell": "mobile",
    "iphone": "mobile",
    "other": "other",
}
_AB_LABEL: Final = re.compile(r"^_\$!<(.*)>!\$_$")
_LINE_BREAKS: Final = re.compile(r"\s*[\r\n]+\s*")
_DATE: Final = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})(?:T.*)?$")
#: RFC 3966 §3 ``visual-separator``, allowed among the digits of an ``ext`` parameter.
_VISUAL_SEPARATORS: Final = re.compile(r"[-.()]")


def read_vcards(
    stream: BinaryIO,
    *,
    max_records: int = DEFAULT_MAX_RECORDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    default_region: str = "US",
) -> Iterator[ImportRecord]:
    """Yield one ``ImportRecord`` per card of ``stream`` (a binary file object), as it is read.

    ``position`` is the card's 1-based number in the file (nested cards are numbered where
    their BEGIN line is, and yielded when their END is reached) and ``line`` its first line.
    Phone numbers without ``+`` are read for ``default_region`` (ISO 3166-1 alpha-2).
    Memory holds one card at a time.

    Reads a seekable ``stream`` twice (first for its encoding; a stream that is not seekable is
    copied first). Raises ``ImportFormatError`` (before the first record) when the stream is
    not a vCard file, ``UndecodableFile`` (a subclass) when it is not text in any encoding;
    ``ImportTooLarge`` when more than ``max_bytes`` bytes (octets of the upload) or more than
    ``max_records`` cards are read. An empty file (or one with only a BOM) yields nothing. Any
    other problem is reported on the record it concerns; the next card is still read.
    """
    stream = rewindable(stream, max_bytes=max_bytes)
    encoding = _file_encoding(stream, max_bytes)
    fallback = encoding.name if encoding.guessed else _FALLBACK_CHARSET
    lines = read_lines(stream, max_bytes=max_bytes, encoding=encoding)
    for card in split_cards(lines, max_records=max_records):
        record = ImportRecord(position=card.number, line=card.line)
        record.warnings.extend(problem(CARD, message) for message in card.warnings)
        try:
            fields = _card_fields(card, record, fallback)
            validate_record(record, fields, default_region=default_region)
        except Exception as exc:  # one unreadable card must not stop the import
            record.data = None
            record.errors.append(problem(CARD, f"The card could not be read: {exc}"))
        yield record


def _file_encoding(stream: BinaryIO, max_bytes: int) -> FileEncoding:
    """The encoding of the whole file (see the module); ``stream`` is left where it was."""
    encoding = wide_encoding(stream)
    if encoding is not None and encoding.wide:
        return encoding
    if plain_utf8(stream, max_bytes=max_bytes, unless="QUOTED-PRINTABLE"):
        return UTF8  # what the pass below answers for such a file, without lexing it
    start = stream.tell()
    encoding = segments_encoding(_undeclared_values(read_lines(stream, max_bytes=max_bytes)))
    stream.seek(start)
    return encoding


def _undeclared_values(lines: Iterator[bytes]) -> Iterator[bytes]:
    """The value bytes (quoted-printable decoded) of every property without a CHARSET."""
    for number, line in logical_lines(lines):
        if line.isascii() and not is_qp(line):
            continue
        prop = parse_property(number, line)
        if not prop.charset:
            yield prop.raw


@dataclass
class _CardReading:
    """What the properties of one card gave so far (``_card_fields``)."""

    version: str
    labels: dict[str, str]
    fields: dict[str, Any] = field(
        default_factory=lambda: {"emails": [], "phones": [], "addresses": [], "tags": []}
    )
    notes: list[str] = field(default_factory=list)
    ranks: dict[str, list[int | None]] = field(default_factory=lambda: {"emails": [], "phones": []})
    names: list[str] | None = None
    formatted: str | None = None


def _card_fields(card: RawCard, record: ImportRecord, fallback: str) -> dict[str, Any]:
    props = [parse_property(number, line) for number, line in card.lines]
    version = next(
        (p.raw.decode("ascii", "replace").strip() for p in props if p.name == "VERSION"), ""
    )
    if version not in ("2.1", "3.0", "4.0"):
        version = "3.0"
    labels = {
        p.group: _text(p, fallback, record).strip()
        for p in props
        if p.name == "X-ABLABEL" and p.group
    }
    reading = _CardReading(version, labels)
    for prop in props:
        if prop.params.get("ENCODING", [""])[0].upper() in ("B", "BASE64"):
            continue
        if prop.name in _WANTED:
            _take(reading, prop, _text(prop, fallback, record), record)
    fields = reading.fields
    for name, ranked in reading.ranks.items():
        _mark_primary(fields[name], ranked)
    if reading.notes:
        fields["notes"] = "\n\n".join(reading.notes)
    fields["first_name"], fields["last_name"] = _names(reading.names, reading.formatted)
    return fields


def _take(reading: _CardReading, prop: Property, text: str, record: ImportRecord) -> None:
    """Add what one wanted property (``_WANTED``) says to ``reading``."""
    name, version, fields = prop.name, reading.version, reading.fields
    if name == "N" and reading.names is None:
        parts = [p.strip() for p in split_value(text, ";", version)]
        if any(parts[:2]):
            reading.names = parts
    elif name == "FN" and reading.formatted is None:
        reading.formatted = split_value(text, None, version)[0].strip() or None
    elif name in ("EMAIL", "TEL"):
        _take_contact_point(reading, prop, split_value(text, None, version)[0].strip())
    elif name == "ADR":
        address = _address(prop, split_value(text, ";", version), reading.labels, record)
        if address:
            fields["addresses"].append(address)
    elif name in ("ORG", "TITLE"):
        key = "company" if name == "ORG" else "job_title"
        value = split_value(text, ";" if name == "ORG" else None, version)[0].strip()
        if value and not fields.get(key):
            fields[key] = value
    elif name == "NOTE":
        value = split_value(text, None, version)[0].replace("\r\n", "\n").strip()
        if value:
            reading.notes.append(value)
    elif name == "CATEGORIES":
        fields["tags"].extend(t.strip() for t in split_value(text, ",", version) if t.strip())
    elif name == "BDAY" and "birthday" not in fields:
        fields["birthday"] = _birthday(text.strip(), record)


def _take_contact_point(reading: _CardReading, prop: Property, value: str) -> None:
    """An EMAIL or TEL value, with its type and preference rank."""
    types: tuple[str, ...]
    if prop.name == "EMAIL":
        kind, types = "emails", ("home", "work")
    else:
        kind, types = "phones", ("mobile", "home", "work")
        if value.lower().startswith("tel:"):
            value = _tel_uri_number(value)
    if value:
        reading.fields[kind].append(_entry(prop, value, reading.labels, types))
        reading.ranks[kind].append(_rank(prop))


def _tel_uri_number(uri: str) -> str:
    """The number of a ``tel:`` URI (RFC 3966) as the domain reads it: the number, then its
    ``ext`` parameter when it has one, without visual separators (``tel:+1-418-555-0154;ext=102``
    → ``+1-418-555-0154;ext=102``). Other parameters (``isub``, ``phone-context``...) are left
    out."""
    number, *params = uri[4:].split(";")
    for param in params:
        name, _, extension = param.partition("=")
        if name.strip().lower() == "ext" and extension.strip():
            return f"{number};ext={_VISUAL_SEPARATORS.sub('', extension)}"
    return number


_WANTED: Final = frozenset(
    {"N", "FN", "EMAIL", "TEL", "ADR", "ORG", "TITLE", "NOTE", "CATEGORIES", "BDAY"}
)


def _text(prop: Property, fallback: str, record: ImportRecord) -> str:
    text, damaged = prop.text(fallback)
    if not prop.charset and not prop.raw.isascii() and not _is_utf8(prop.raw):
        record.warnings.append(
            problem(
                CARD,
                f"Line {prop.line}: {prop.name} is neither UTF-8 nor declares its CHARSET; "
                f"{guess_message(FileEncoding(fallback, guessed=True))}.",
            )
        )
    if damaged:
        record.warnings.append(
            problem(CARD, f"Line {prop.line}: {prop.name} has bytes that are not valid text.")
        )
    return text.replace("\ufffd", "")


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _kind(prop: Property, labels: dict[str, str], kinds: tuple[str, ...]) -> str:
    types = prop.types
    if "mobile" in kinds and types & {"CELL", "MOBILE", "IPHONE"}:
        return "mobile"
    for kind in kinds:
        if kind.upper() in types:
            return kind
    label = labels.get(prop.group) if prop.group else None
    if label:
        match = _AB_LABEL.match(label)
        mapped = _LABELS.get((match.group(1) if match else label).lower())
        if mapped in kinds:
            return mapped
    return "other"


def _rank(prop: Property) -> int | None:
    if "PREF" in prop.types:
        return 1
    try:
        return int(prop.params.get("PREF", [""])[0])
    except ValueError:
        return None


def _mark_primary(entries: list[dict[str, Any]], ranks: list[int | None]) -> None:
    ranked = [(rank, i) for i, rank in enumerate(ranks) if rank is not None]
    best = min(ranked)[1] if ranked else None
    for i, entry in enumerate(entries):
        entry["primary"] = i == best


def _entry(
    prop: Property, value: str, labels: dict[str, str], kinds: tuple[str, ...]
) -> dict[str, Any]:
    return {"value": value, "type": _kind(prop, labels, kinds), "primary": False}


def _address(
    prop: Property, parts: list[str], labels: dict[str, str], record: ImportRecord
) -> dict[str, Any] | None:
    parts = [_one_line(p) for p in parts]
    parts += [""] * (7 - len(parts))
    po_box, extended, street, city, region, postal_code, country = parts[:7]
    street_text = ", ".join(p for p in (po_box, extended, street) if p)
    if not any((street_text, city, region, postal_code, country)):
        return None
    kind = _kind(prop, labels, ("home", "work"))
    return {
        "type": kind,
        "street": street_text or None,
        "city": city or None,
        "region": region or None,
        "postal_code": postal_code or None,
        "country": country_code(country) if country else None,
    }


def _one_line(text: str) -> str:
    """Address parts are single-line: line breaks inside one become ", "."""
    return _LINE_BREAKS.sub(", ", text).strip()


def _birthday(text: str, record: ImportRecord) -> str | None:
    match = _DATE.match(text)
    if match:
        try:
            return dt.date(*(int(g) for g in match.groups())).isoformat()
        except ValueError:
            pass
    record.warnings.append(
        problem("birthday", "Not a full date with a year (YYYY-MM-DD). Dropped the field.")
    )
    return None


def _names(parts: list[str] | None, formatted: str | None) -> tuple[str | None, str | None]:
    if parts is not None:
        parts = parts + [""] * (2 - len(parts))
        return parts[1] or None, parts[0] or None
    if not formatted:
        return None, None
    first, _, last = formatted.rpartition(" ")
    if not first:
        return last, None
    return first, last
