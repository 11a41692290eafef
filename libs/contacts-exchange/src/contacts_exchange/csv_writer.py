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

Formulas (OWASP "CSV Injection"): every cell holding contact text (names, company, job title,
birthday, notes, the tags in ``Labels``, email values, every address part) goes through
``csv_formulas.escape_formula``: a value starting with ``=``, ``+``, ``-``, ``@``, TAB or CR
is written with a leading ``'``, so a spreadsheet shows ``'=HYPERLINK(...)`` as text instead
of running it; ``read_csv`` removes exactly that ``'`` again. Phone numbers as the domain
stores every phone (E.164, ``+`` then digits, and an extension as ``;ext=`` then digits:
``+12025550100;ext=5``, which libphonenumber-based importers read back with its extension) are
written as they are: a spreadsheet reads ``+12025550100`` as a number at worst, and one that
takes ``+12025550100;ext=5`` for a formula finds no function or cell reference in it, while
``'+12025550100`` would break the number for every other importer of the Google layout. A
phone value of any other shape (none is stored, but the writer takes resources as given) is
escaped like text. The entry labels (``* Home``...) are the writer's own words and never
start with such a character.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO, Final

from contacts_domain import limits
from contacts_exchange.csv_dialects import GOOGLE_SEPARATOR
from contacts_exchange.csv_formulas import escape_formula

_ADDRESS_PARTS: Final = (
    ("Street", "street"),
    ("City", "city"),
    ("Region", "region"),
    ("Postal Code", "postal_code"),
    ("Country", "country"),
)
#: A phone number as the domain stores it (E.164, then ``;ext=`` and digits when it has an
#: extension): no function call or cell reference a spreadsheet could run.
_STORED_PHONE: Final = re.compile(r"\+[0-9]+(?:;ext=[0-9]+)?")


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


def _phone(value: str) -> str:
    return value if _STORED_PHONE.fullmatch(value) else escape_formula(value)


def _row(contact: Mapping[str, Any]) -> list[str]:
    text = [
        contact.get("first_name") or "",
        contact.get("last_name") or "",
        contact.get("company") or "",
        contact.get("job_title") or "",
        str(contact.get("birthday") or ""),
        contact.get("notes") or "",
        GOOGLE_SEPARATOR.join(contact.get("tags") or ()),
    ]
    row = [escape_formula(value) for value in text]
    for name, max_items, cell in (
        ("emails", limits.EMAILS_MAX_ITEMS, escape_formula),
        ("phones", limits.PHONES_MAX_ITEMS, _phone),
    ):
        entries = list(contact.get(name) or ())[:max_items]
        for entry in entries:
            row += [_label(entry, entry.get("type") or "other"), cell(entry["value"])]
        row += ["", ""] * (max_items - len(entries))
    addresses = list(contact.get("addresses") or ())[: limits.ADDRESSES_MAX_ITEMS]
    for address in addresses:
        row.append((address.get("type") or "other").capitalize())
        row += [escape_formula(address.get(part) or "") for _, part in _ADDRESS_PARTS]
    row += [""] * ((1 + len(_ADDRESS_PARTS)) * (limits.ADDRESSES_MAX_ITEMS - len(addresses)))
    return row
