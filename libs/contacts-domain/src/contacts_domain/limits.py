"""The one table of size limits shared by the API schemas, the domain rules and the columns.

Lengths count Unicode code points after NFC normalization and trimming. The email limit is the
254-octet path limit of RFC 5321 §4.5.3.1.3 as enforced by email-validator; a stored phone
number is E.164 (15 digits at most plus the leading ``+``, ITU-T E.164 §6) and its extension
(``PHONE_MAX``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

NAME_MAX: Final = 100
COMPANY_MAX: Final = 200
JOB_TITLE_MAX: Final = 200
#: Chosen so that a contact with every field at its limit, in 4-byte characters, still fits one
#: SQS message: Celery's JSON escapes such a character to 12 bytes and kombu base64-encodes the
#: body twice (x16/9), which puts that contact near 230 KiB of the 256 KiB allowed.
NOTES_MAX: Final = 5_000
TAG_MAX: Final = 50
TAGS_MAX_ITEMS: Final = 50
EMAIL_MAX: Final = 254
EMAILS_MAX_ITEMS: Final = 10
PHONE_INPUT_MAX: Final = 40
#: A stored phone number: E.164, then ``;ext=`` and the extension's digits when it has one
#: (``+12025550100;ext=5``, RFC 3966 §5.1.5). No longer than an input, so that a stored number
#: always parses again (the worker validates every event anew); the ``phone`` column is as wide.
PHONE_MAX: Final = PHONE_INPUT_MAX
PHONES_MAX_ITEMS: Final = 10
ADDRESSES_MAX_ITEMS: Final = 5
STREET_MAX: Final = 200
CITY_MAX: Final = 100
REGION_MAX: Final = 100
POSTAL_CODE_MAX: Final = 20

#: Column name → maximum length in code points; the migration creates ``varchar(n)`` from it.
TEXT_COLUMNS: Final = MappingProxyType(
    {
        "first_name": NAME_MAX,
        "last_name": NAME_MAX,
        "company": COMPANY_MAX,
        "job_title": JOB_TITLE_MAX,
        "notes": NOTES_MAX,
    }
)
