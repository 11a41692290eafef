"""A contact as a client sends it → normalized fields, beyond ``normalize_contact``: the rules
the single routes (``contacts.py``) and batch items (``batch.py``) share. They raise
``ValidationFailed`` with field paths and reasons, never a rejected value.
"""

from __future__ import annotations

from typing import Any

from contacts_domain import ValidationFailed, normalize_contact
from contacts_domain.contact import NAME_FIELDS, primary_value


def upsert_fields(raw: Any, *, default_region: str) -> dict[str, Any]:
    """The body of an upsert, normalized like a patch (absent fields stay untouched on a
    match), with the first or last name and the primary email a created contact would need.

    Raises ``ValidationFailed``: the patch rules, ``first_name`` without a name, ``email``
    without a primary email (the upsert matches on it).
    """
    fields = normalize_contact(raw, partial=True, default_region=default_region)
    errors: dict[str, list[str]] = {}
    if not any(fields.get(name) for name in NAME_FIELDS):
        errors["first_name"] = ["An upsert needs a first or last name."]
    if primary_value(fields.get("emails") or []) is None:
        errors["email"] = ["An upsert matches on the primary email: give one."]
    if errors:
        raise ValidationFailed(errors)
    return fields
