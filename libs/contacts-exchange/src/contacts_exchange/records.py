"""The unit the readers yield: one imported record, validated by the domain rules.

Validation policy (one rule for vCard and CSV): a record is built from the file, then checked
with ``contacts_domain.contact.normalize_contact(partial=False)``. Entries of list fields
(emails, phones, addresses, tags) and optional scalar fields (company, job_title, notes,
birthday) that break a rule are dropped and reported as *warnings*: the rest of the contact is
still imported. The record fails (``data`` is ``None``, ``errors`` not empty) only when a rule
that cannot be met by dropping fails: it has no name, or a name is invalid (too long, control
characters), or the card itself could not be read (field ``_card``).

Field paths are the domain's (``emails.0.value``, ``addresses.1.country``, ``first_name``), the
index being the entry's position among the entries of that kind in the record.

Messages name what was dropped (``Dropped the email address.``), never the dropped value: an
import's report is kept for days and shown to whoever reads it, and the value is personal data
(the domain's own messages follow the same rule, ``contacts_domain.values``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict

from contacts_domain import limits
from contacts_domain.contact import NAME_FIELDS, normalize_contact
from contacts_domain.errors import ValidationFailed

#: Field path of problems that concern the whole card or row rather than one field.
CARD: Final = "_card"

_MAX_ITEMS: Final = {
    "emails": limits.EMAILS_MAX_ITEMS,
    "phones": limits.PHONES_MAX_ITEMS,
    "addresses": limits.ADDRESSES_MAX_ITEMS,
    "tags": limits.TAGS_MAX_ITEMS,
}
#: What one entry of a list field is called in a warning's "Dropped the ..." sentence.
_ENTRY_NOUN: Final = {
    "emails": "email address",
    "phones": "phone number",
    "addresses": "address",
    "tags": "tag",
}
_ENTRY_PATH: Final = re.compile(r"^(emails|phones|addresses|tags)\.(\d+)(?:\.(\w+))?$")


class FieldMessage(TypedDict):
    """One problem of a record: ``field`` is a domain field path or ``_card``."""

    field: str
    message: str


@dataclass(slots=True)
class ImportRecord:
    """One card of a vCard file or one row of a CSV file.

    - ``position``: 1-based card number (vCard) or the CSV line number where the row starts.
    - ``line``: 1-based line of the file where the record starts (for CSV equal to
      ``position``); lines are counted in the file's own line endings.
    - ``data``: the contact fields as ``normalize_contact`` returns them (every field of
      ``contacts_domain.contact.FIELDS``), or ``None`` when the record failed.
    - ``errors``: why the record failed; empty when ``data`` is set.
    - ``warnings``: what was dropped or repaired in an imported record.
    """

    position: int
    line: int | None
    data: dict[str, Any] | None = None
    errors: list[FieldMessage] = field(default_factory=list)
    warnings: list[FieldMessage] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True when the record holds a contact to import."""
        return self.data is not None


def problem(path: str, message: str) -> FieldMessage:
    """Build one ``{field, message}`` entry."""
    return {"field": path, "message": message}


def validate_record(
    record: ImportRecord, raw: Mapping[str, Any], *, default_region: str
) -> ImportRecord:
    """Fill ``record.data`` (or ``record.errors``) from ``raw`` following the module's policy.

    ``raw`` has the shape ``normalize_contact`` takes; lists may be longer than the limits
    (the extra entries are dropped with a warning). Returns ``record``.
    """
    candidate: dict[str, Any] = {
        key: value for key, value in raw.items() if value not in (None, [])
    }
    for name, max_items in _MAX_ITEMS.items():
        items = candidate.get(name)
        if items and len(items) > max_items:
            record.warnings.append(
                problem(name, f"Only the first {max_items} entries were kept of {len(items)}.")
            )
            candidate[name] = items[:max_items]
    _single_primary(candidate)
    for _attempt in range(4):
        try:
            record.data = normalize_contact(candidate, partial=False, default_region=default_region)
            return record
        except ValidationFailed as exc:
            fatal = _drop_invalid(candidate, exc.errors, record.warnings)
            if fatal:
                record.errors.extend(fatal)
                return record
    record.errors.append(problem(CARD, "The record could not be repaired into a valid contact."))
    return record


def _single_primary(candidate: dict[str, Any]) -> None:
    for name in ("emails", "phones"):
        seen = False
        for entry in candidate.get(name) or ():
            if entry.get("primary") and seen:
                entry["primary"] = False
            seen = seen or bool(entry.get("primary"))


def _drop_invalid(
    candidate: dict[str, Any],
    errors: Mapping[str, list[str]],
    warnings: list[FieldMessage],
) -> list[FieldMessage]:
    """Drop what ``errors`` names from ``candidate``; return the errors dropping cannot fix."""
    fatal: list[FieldMessage] = []
    drops: dict[str, set[int]] = {}
    for path, messages in errors.items():
        text = " ".join(messages)
        match = _ENTRY_PATH.match(path)
        if path in NAME_FIELDS or path.startswith("_") or path in ("email", "phone"):
            fatal.append(problem(path, text))
        elif match:
            name, index, part = match.group(1), int(match.group(2)), match.group(3)
            entry = candidate[name][index]
            if name == "addresses" and part not in (None, "type"):
                warnings.append(problem(path, f"{text} Dropped the {part.replace('_', ' ')}."))
                entry[part] = None
                if not any(value for key, value in entry.items() if key != "type"):
                    drops.setdefault(name, set()).add(index)
            else:
                warnings.append(problem(path, f"{text} Dropped the {_ENTRY_NOUN[name]}."))
                drops.setdefault(name, set()).add(index)
        else:
            warnings.append(problem(path, f"{text} Dropped the field."))
            candidate.pop(path, None)
    for name, indexes in drops.items():
        candidate[name] = [e for i, e in enumerate(candidate[name]) if i not in indexes]
    return fatal
