"""A contact as a client sends it → normalized fields, beyond ``normalize_contact``: the rules
the single routes (``contacts.py``) and batch items (``batch.py``) share. They raise
``ValidationFailed`` with field paths and reasons, never a rejected value.
"""

from __future__ import annotations

from typing import Any

from contacts_domain import ValidationFailed, normalize_contact
from contacts_domain.contact import primary_value


def upsert_fields(raw: Any, *, default_region: str) -> dict[str, Any]:
    """The body of an upsert, normalized like a patch (absent fields stay untouched on a
    match), with the primary email it matches on.

    No name is required here (issue 16): an upsert that matches a contact keeps its name, and
    only the worker knows whether it matches. One that creates a contact without a name is
    rejected there (operation ``rejected``, reason ``name_required``).

    Raises ``ValidationFailed``: the patch rules (which refuse clearing both names), ``email``
    without a primary email (the upsert matches on it).
    """
    fields = normalize_contact(raw, partial=True, default_region=default_region)
    if primary_value(fields.get("emails") or []) is None:
        raise ValidationFailed({"email": ["An upsert matches on the primary email: give one."]})
    return fields
