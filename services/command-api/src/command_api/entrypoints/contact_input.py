"""A contact as a client sends it → normalized fields: the rules every write route shares.

The single routes (``contacts.py``) get the shape checked by webargs before the view runs; a
batch item's ``data`` is checked here with the same marshmallow schema (``check_shape``). The
canonical rules are ``contacts_domain.normalize_contact``; ``upsert_fields`` adds what an
upsert needs. Every function raises ``ValidationFailed`` with field paths and reasons, never a
rejected value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma

from contacts_domain import ValidationFailed, normalize_contact
from contacts_domain.contact import NAME_FIELDS, primary_value
from contacts_http import flatten_errors


def check_shape(schema: ma.Schema, raw: Any) -> None:
    """Validate the decoded JSON ``raw`` against ``schema`` (types, sizes, unknown fields).

    Raises ``ValidationFailed`` keyed by dotted path (``emails.0.value``; ``_schema`` for the
    value as a whole, e.g. when it is not an object).
    """
    messages = schema.validate(raw) if isinstance(raw, Mapping) else ["Not a JSON object."]
    if messages:
        raise ValidationFailed(flatten_errors(messages))


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
