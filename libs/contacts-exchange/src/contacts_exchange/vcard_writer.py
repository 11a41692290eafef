"""vCard 4.0 export (RFC 6350) of contact resources, streamed card by card.

Each card: ``BEGIN``, ``VERSION:4.0``, ``UID`` (``urn:uuid:`` of the contact id), ``FN``,
``N``, then ``EMAIL``/``TEL``/``ADR`` with ``TYPE`` (home, work; ``cell`` for a mobile
phone; none for other) and ``PREF=1`` on the primary entry, ``ORG``, ``TITLE``, ``BDAY``
(``YYYYMMDD``), ``NOTE``, ``CATEGORIES``, ``REV`` (the contact's ``updated_at``), ``END``.
``TEL`` is a ``tel:`` URI (RFC 3966) of the stored number, its extension in the ``ext``
parameter as the domain stores it (``TEL;VALUE=uri:tel:+12025550100;ext=5``).

Text values are escaped as RFC 6350 §3.4 requires (``\\\\``, ``\\,``, newline as ``\\n``;
``\\;`` only in the compound N, ADR and ORG); lines end in CRLF and are folded at 75 octets
(§3.2) without splitting a UTF-8 sequence. ``read_vcards`` reads the output back to the same
normalized contacts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO, Final

LINE_OCTETS: Final = 75
_TEL_TYPES: Final = {"mobile": "cell", "home": "home", "work": "work"}
_TYPES: Final = {"home": "home", "work": "work"}


def vcard_chunks(contacts: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    """Yield the UTF-8 bytes of one vCard 4.0 card per contact resource, in order.

    ``contacts`` are resources as ``contacts_domain.resource.contact_resource`` builds them
    (``id``, the contact fields, ``updated_at``); only those keys are read. Memory holds one
    card at a time.
    """
    for contact in contacts:
        yield b"".join(fold(line) for line in _card_lines(contact))


def write_vcards(contacts: Iterable[Mapping[str, Any]], out: BinaryIO) -> int:
    """Write ``vcard_chunks(contacts)`` to the binary file ``out``; return the octets written."""
    total = 0
    for chunk in vcard_chunks(contacts):
        out.write(chunk)
        total += len(chunk)
    return total


def escape(text: str, *, compound: bool = False) -> str:
    """Escape a text value as RFC 6350 §3.4 requires: backslash, comma and newlines (as
    ``\\n``) always; semicolon only in a component of a compound property (``compound``: N,
    ADR, ORG), where it separates components. §3.4 permits ``\\;`` elsewhere too, but
    Thunderbird's parser (ical.js) shows it literally in NOTE, so it is not written there."""
    escaped = text.replace("\\", "\\\\").replace(",", "\\,")
    if compound:
        escaped = escaped.replace(";", "\\;")
    return escaped.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def fold(line: str) -> bytes:
    """Encode one content line as UTF-8 and fold it (RFC 6350 §3.2): no physical line is longer
    than 75 octets without its CRLF, continuation lines start with one space, and a fold never
    falls inside a multi-octet UTF-8 sequence."""
    data = line.encode("utf-8")
    out: list[bytes] = []
    limit = LINE_OCTETS
    while len(data) > limit:
        cut = limit
        while cut > 0 and data[cut] & 0xC0 == 0x80:
            cut -= 1
        out.append(data[:cut] + b"\r\n ")
        data = data[cut:]
        limit = LINE_OCTETS - 1
    out.append(data + b"\r\n")
    return b"".join(out)


def _card_lines(contact: Mapping[str, Any]) -> Iterator[str]:
    first = contact.get("first_name") or ""
    last = contact.get("last_name") or ""
    yield "BEGIN:VCARD"
    yield "VERSION:4.0"
    if contact.get("id"):
        yield f"UID:urn:uuid:{contact['id']}"
    yield "FN:" + escape(" ".join(part for part in (first, last) if part))
    yield f"N:{escape(last, compound=True)};{escape(first, compound=True)};;;"
    for entry in contact.get("emails") or ():
        params = _params(_TYPES.get(entry.get("type", "")), entry)
        yield f"EMAIL{params}:{escape(entry['value'])}"
    for entry in contact.get("phones") or ():
        params = _params(_TEL_TYPES.get(entry.get("type", "")), entry)
        yield f"TEL;VALUE=uri{params}:tel:{entry['value']}"
    for address in contact.get("addresses") or ():
        kind = _TYPES.get(address.get("type") or "")
        parts = ("street", "city", "region", "postal_code", "country")
        value = ";".join(escape(address.get(part) or "", compound=True) for part in parts)
        yield "ADR" + (f";TYPE={kind}" if kind else "") + ":;;" + value
    if contact.get("company"):
        yield "ORG:" + escape(contact["company"], compound=True)
    if contact.get("job_title"):
        yield "TITLE:" + escape(contact["job_title"])
    if contact.get("birthday"):
        yield "BDAY:" + str(contact["birthday"]).replace("-", "")
    if contact.get("notes"):
        yield "NOTE:" + escape(contact["notes"])
    if contact.get("tags"):
        yield "CATEGORIES:" + ",".join(escape(tag) for tag in contact["tags"])
    if contact.get("updated_at"):
        stamp = str(contact["updated_at"]).replace("-", "").replace(":", "")
        yield "REV:" + stamp.split(".")[0].removesuffix("Z") + "Z"
    yield "END:VCARD"


def _params(kind: str | None, entry: Mapping[str, Any]) -> str:
    return (f";TYPE={kind}" if kind else "") + (";PREF=1" if entry.get("primary") else "")
