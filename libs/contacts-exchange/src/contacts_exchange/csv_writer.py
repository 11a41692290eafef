"""CSV export in the Google Contacts layout (the current one: ``First Name``, ``Last Name``,
``E-mail 1 - Label``, ``E-mail 1 - Value``...), streamed row by row.

RFC 4180: CRLF after every row, fields quoted when they hold a comma, a quote or a line
break, quotes doubled. UTF-8 without a BOM, as Google writes it. The header has a fixed set
of columns, as many entry columns as ``contacts_domain.limits`` allows (10 emails, 10 phones,
5 addresses), so every row has the same width whatever comes later. Labels are ``Home``,
``Work``, ``Mobile``, ``Other``; the primary entry's label starts with ``* `` as in Google's
exports; tags go to ``Labels`` separated by ``" ::: "``; countries are ISO 3166-1 alpha-2.
``read_csv`` reads the output back to the same normalized contacts (a tag that itself holds
``" ::: "`` would come back split).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO, Final

from contacts_domain import limits
from contacts_exchange.csv_dialects import GOOGLE_SEPARATOR

_ADDRESS_PARTS: Final = (
    ("Street", "street"),
    ("City", "city"),
    ("Region", "region"),
    ("Postal Code", "postal_code"),
    ("Country", "country"),
)


def _header() -> list[str]:
    names = [
        "First Name",
        "Last Name",
        "Organization Name",
        "Organization Title",
        "Birthday",
        "Notes",
        "Labels",
    ]
    for i in range(1, limits.EMAILS_MAX_ITEMS + 1):
        names += [f"E-mail {i} - Label", f"E-mail {i} - Value"]
    for i in range(1, limits.PHONES_MAX_ITEMS + 1):
        names += [f"Phone {i} - Label", f"Phone {i} - Value"]
    for i in range(1, limits.ADDRESSES_MAX_ITEMS + 1):
        names += [f"Address {i} - Label"] + [f"Address {i} - {name}" for name, _ in _ADDRESS_PARTS]
    return names


HEADER: Final = tuple(_header())


def csv_chunks(contacts: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    """Yield the UTF-8 bytes of the header row, then of one row per contact resource.

    ``contacts`` are resources as ``contacts_domain.resource.contact_resource`` builds them.
    Memory holds one row at a time.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    rows: Iterator[list[str]] = (_row(contact) for contact in contacts)
    writer.writerow(HEADER)
    yield buffer.getvalue().encode("utf-8")
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        yield buffer.getvalue().encode("utf-8")


def write_csv(contacts: Iterable[Mapping[str, Any]], out: BinaryIO) -> int:
    """Write ``csv_chunks(contacts)`` to the binary file ``out``; return the octets written."""
    total = 0
    for chunk in csv_chunks(contacts):
        out.write(chunk)
        total += len(chunk)
    return total


def _label(entry: Mapping[str, Any], kind: str) -> str:
    label = kind.capitalize()
    return f"* {label}" if entry.get("primary") else label


def _row(contact: Mapping[str, Any]) -> list[str]:
    row = [
        contact.get("first_name") or "",
        contact.get("last_name") or "",
        contact.get("company") or "",
        contact.get("job_title") or "",
        str(contact.get("birthday") or ""),
        contact.get("notes") or "",
        GOOGLE_SEPARATOR.join(contact.get("tags") or ()),
    ]
    for name, max_items in (
        ("emails", limits.EMAILS_MAX_ITEMS),
        ("phones", limits.PHONES_MAX_ITEMS),
    ):
        entries = list(contact.get(name) or ())[:max_items]
        for entry in entries:
            row += [_label(entry, entry.get("type") or "other"), entry["value"]]
        row += ["", ""] * (max_items - len(entries))
    addresses = list(contact.get("addresses") or ())[: limits.ADDRESSES_MAX_ITEMS]
    for address in addresses:
        row.append((address.get("type") or "other").capitalize())
        row += [address.get(part) or "" for _, part in _ADDRESS_PARTS]
    row += [""] * ((1 + len(_ADDRESS_PARTS)) * (limits.ADDRESSES_MAX_ITEMS - len(addresses)))
    return row
