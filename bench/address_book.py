"""The synthetic vCard address book of the import figures (``bench/imports.py`` and the
``import_*`` figures of ``make bench``): ``records`` cards padded to about ``max_bytes``."""

from __future__ import annotations

#: The largest import allowed by default: ``IMPORT_MAX_RECORDS`` cards, just under
#: ``IMPORT_MAX_BYTES`` (10 MiB).
DEFAULT_RECORDS = 10_000
DEFAULT_BYTES = 10_485_760


def card(number: int, padding: int, domain: str = "example.com") -> str:
    """One vCard 3.0 card with a name, an email at ``domain``, a phone, company, title, address
    and a note of ``padding`` characters."""
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"N:Example{number};Rosa;;;\r\nFN:Rosa Example{number}\r\n"
        f"EMAIL;TYPE=INTERNET,WORK:rosa.example{number}@{domain}\r\n"
        f"TEL;TYPE=CELL:+1 202 555 {number % 10000:04d}\r\n"
        f"ORG:Acme {number % 97}\r\nTITLE:Engineer\r\n"
        f"ADR;TYPE=WORK:;;{number} Main Street;Springfield;IL;62701;US\r\n"
        f"NOTE:{'n' * padding}\r\nCATEGORIES:friends,work\r\nEND:VCARD\r\n"
    )


def address_book(
    records: int = DEFAULT_RECORDS, max_bytes: int = DEFAULT_BYTES, domain: str = "example.com"
) -> bytes:
    """``records`` cards (numbered from 1, emails at ``domain``), each note padded so the file
    is at most about ``max_bytes`` bytes (a note holds at most 4,900 characters)."""
    base = len(card(records, 0, domain).encode())
    padding = max(0, min(4_900, (max_bytes - 1_000) // records - base))
    return "".join(card(number, padding, domain) for number in range(1, records + 1)).encode()
