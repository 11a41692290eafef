"""Address-book import and export for contacts: vCard 2.1/3.0/4.0 and CSV in, vCard 4.0 and
Google Contacts CSV out. Pure Python; the HTTP layers stream uploads and downloads through it.
"""

from __future__ import annotations

from contacts_exchange.csv_reader import read_csv
from contacts_exchange.csv_writer import csv_chunks, write_csv
from contacts_exchange.errors import ImportFormatError, ImportTooLarge
from contacts_exchange.records import FieldMessage, ImportRecord
from contacts_exchange.vcard_reader import read_vcards
from contacts_exchange.vcard_writer import vcard_chunks, write_vcards

__all__ = [
    "FieldMessage",
    "ImportFormatError",
    "ImportRecord",
    "ImportTooLarge",
    "csv_chunks",
    "read_csv",
    "read_vcards",
    "vcard_chunks",
    "write_csv",
    "write_vcards",
]
