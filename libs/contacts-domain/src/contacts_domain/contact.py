"""The contact's fields and the rules that turn client input into their canonical form.

A contact is a flat record of the fields in ``FIELDS``. Lists (emails, phones, addresses, tags)
are values of their own: a write replaces the whole list. ``email`` and ``phone`` are shorthand on
writes for a one-entry list with that primary value, and are returned on reads as the primary
values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Final

from contacts_domain import limits
from contacts_domain.errors import ValidationFailed
from contacts_domain.values import (
    EmailAddress,
    PhoneNumber,
    clean_text,
    email_key,
    parse_birthday,
    parse_country,
    parse_name,
    parse_tag,
)

Fields = dict[str, Any]

SCALAR_TEXT: Final = ("first_name", "last_name", "company", "job_title", "notes")
LIST_FIELDS: Final = ("emails", "phones", "addresses", "tags")
FIELDS: Final = (
    "first_name",
    "last_name",
    "emails",
    "phones",
    "company",
    "job_title",
    "addresses",
    "birthday",
    "notes",
    "tags",
)
NAME_FIELDS: Final = ("first_name", "last_name")
SHORTHANDS: Final = {"email": "emails", "phone": "phones"}

EMAIL_TYPES: Final = ("home", "work", "other")
PHONE_TYPES: Final = ("mobile", "home", "work", "other")
ADDRESS_TYPES: Final = ("home", "work", "other")
ADDRESS_TEXT: Final = {
    "street": limits.STREET_MAX,
    "city": limits.CITY_MAX,
    "region": limits.REGION_MAX,
    "postal_code": limits.POSTAL_CODE_MAX,
}


def empty_fields() -> Fields:
    """Return every field at its empty value: ``None`` for scalars, ``[]`` for lists."""
    return {name: [] if name in LIST_FIELDS else None for name in FIELDS}


class _Errors:
    def __init__(self) -> None:
        self.by_path: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.by_path.setdefault(path, []).append(message)

    def guard(self, path: str, parse: Callable[[], Any]) -> Any:
        try:
            return parse()
        except ValueError as exc:
            self.add(path, str(exc))
            return None


def normalize_contact(raw: Mapping[str, Any], *, partial: bool, default_region: str) -> Fields:
    """Validate client input and return the canonical fields.

    ``raw`` is the decoded JSON object. With ``partial=False`` (create, replace) the result has
    every key of ``FIELDS``, absent ones empty, and needs a first or last name. With
    ``partial=True`` (RFC 7396 merge patch) the result has only the keys present; ``None`` (or
    ``""``) clears a field; an empty patch and a patch that clears both names are refused. A
    name with no visible character (``parse_name``) is empty too.
    ``default_region`` (ISO 3166-1 alpha-2) is used for phone numbers written without ``+``.

    Raises ``ValidationFailed`` naming every failing field path.
    """
    errors = _Errors()
    if not isinstance(raw, Mapping):
        raise ValidationFailed({"_schema": ["The body must be a JSON object."]})
    _check_keys(errors, raw)
    out = _fields_present(errors, raw, default_region)
    if partial:
        _check_patch(errors, raw, out)
    else:
        out = {**empty_fields(), **out}
        named = any(out[n] for n in NAME_FIELDS)
        if not named and not any(n in errors.by_path for n in NAME_FIELDS):
            for n in NAME_FIELDS:
                errors.add(n, "A contact needs a first_name or a last_name.")
    if errors.by_path:
        raise ValidationFailed(errors.by_path)
    return out


def _check_keys(errors: _Errors, raw: Mapping[str, Any]) -> None:
    """Unknown keys, and a shorthand sent with its long form (``email`` with ``emails``)."""
    for key in raw:
        if key not in FIELDS and key not in SHORTHANDS:
            errors.add(str(key), "Unknown field.")
    for short, long in SHORTHANDS.items():
        if short in raw and long in raw:
            errors.add(short, f"Send either '{short}' or '{long}', not both.")


def _check_patch(errors: _Errors, raw: Mapping[str, Any], out: Fields) -> None:
    """A merge patch must change something and leave the contact a name."""
    if not raw:
        errors.add("_schema", "An empty patch changes nothing.")
    elif all(n in out and out[n] is None for n in NAME_FIELDS):
        for n in NAME_FIELDS:
            errors.add(n, "A contact needs a first_name or a last_name.")


def _fields_present(errors: _Errors, raw: Mapping[str, Any], default_region: str) -> Fields:
    """The canonical value of every field ``raw`` names (shorthands folded into their lists);
    what fails is recorded in ``errors``."""
    out: Fields = {}
    for name in SCALAR_TEXT:
        if name in raw:
            out[name] = _scalar(errors, name, raw[name])
    if "birthday" in raw:
        value = raw["birthday"]
        out["birthday"] = (
            None if value in (None, "") else errors.guard("birthday", lambda: parse_birthday(value))
        )
    if "emails" in raw or "email" in raw:
        items = _shorthand(raw, "email", "emails")
        out["emails"] = _entries(
            errors,
            "emails",
            items,
            EMAIL_TYPES,
            limits.EMAILS_MAX_ITEMS,
            lambda v: EmailAddress.parse(v).value,
            key=email_key,
        )
    if "phones" in raw or "phone" in raw:
        items = _shorthand(raw, "phone", "phones")
        out["phones"] = _entries(
            errors,
            "phones",
            items,
            PHONE_TYPES,
            limits.PHONES_MAX_ITEMS,
            lambda v: PhoneNumber.parse(v, default_region).value,
            key=str,
        )
    if "addresses" in raw:
        out["addresses"] = _addresses(errors, raw["addresses"])
    if "tags" in raw:
        out["tags"] = _tags(errors, raw["tags"])
    return out


def _scalar(errors: _Errors, name: str, value: Any) -> str | None:
    if value is None:
        return None
    if name in NAME_FIELDS:
        return errors.guard(name, lambda: parse_name(value))
    return errors.guard(
        name,
        lambda: clean_text(value, max_length=limits.TEXT_COLUMNS[name], multiline=name == "notes"),
    )


def _shorthand(raw: Mapping[str, Any], short: str, long: str) -> Any:
    if short not in raw:
        return raw[long]
    value = raw[short]
    return None if value in (None, "") else [{"value": value, "primary": True}]


def _entries(
    errors: _Errors,
    path: str,
    items: Any,
    types: tuple[str, ...],
    max_items: int,
    parse_value: Callable[[Any], str],
    key: Callable[[str], str],
) -> list[dict[str, Any]]:
    if items is None:
        return []
    if not isinstance(items, list):
        errors.add(path, "Not a valid list.")
        return []
    if len(items) > max_items:
        errors.add(path, f"At most {max_items} entries.")
        return []
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{path}.{i}"
        if isinstance(item, str):
            item = {"value": item}
        if not isinstance(item, Mapping):
            errors.add(where, "Not a valid object.")
            continue
        for extra in set(item) - {"value", "type", "primary"}:
            errors.add(f"{where}.{extra}", "Unknown field.")
        value = errors.guard(f"{where}.value", partial(parse_value, item.get("value")))
        kind = item.get("type", "other")
        if kind not in types:
            errors.add(f"{where}.type", f"Must be one of: {', '.join(types)}.")
        primary = item.get("primary", False)
        if not isinstance(primary, bool):
            errors.add(f"{where}.primary", "Not a valid boolean.")
        if value is None:
            continue
        if key(value) in seen:
            errors.add(f"{where}.value", "Duplicate entry.")
        seen.add(key(value))
        out.append({"value": value, "type": kind, "primary": primary is True})
    return _one_primary(errors, path, out)


def _one_primary(errors: _Errors, path: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    flagged = sum(1 for e in entries if e["primary"])
    if flagged > 1:
        errors.add(path, "Only one entry can be primary.")
    elif entries and flagged == 0:
        entries[0]["primary"] = True
    return entries


def _addresses(errors: _Errors, items: Any) -> list[dict[str, Any]]:
    if items is None:
        return []
    if not isinstance(items, list):
        errors.add("addresses", "Not a valid list.")
        return []
    if len(items) > limits.ADDRESSES_MAX_ITEMS:
        errors.add("addresses", f"At most {limits.ADDRESSES_MAX_ITEMS} entries.")
        return []
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"addresses.{i}"
        if not isinstance(item, Mapping):
            errors.add(where, "Not a valid object.")
            continue
        for extra in set(item) - {"type", *ADDRESS_TEXT, "country"}:
            errors.add(f"{where}.{extra}", "Unknown field.")
        kind = item.get("type", "home")
        if kind not in ADDRESS_TYPES:
            errors.add(f"{where}.type", f"Must be one of: {', '.join(ADDRESS_TYPES)}.")
        address: dict[str, Any] = {"type": kind}
        for part, max_length in ADDRESS_TEXT.items():
            value = item.get(part)
            address[part] = (
                None
                if value is None
                else errors.guard(
                    f"{where}.{part}", partial(clean_text, value, max_length=max_length)
                )
            )
        country = item.get("country")
        address["country"] = (
            None
            if country in (None, "")
            else errors.guard(f"{where}.country", partial(parse_country, country))
        )
        if not any(address[p] for p in (*ADDRESS_TEXT, "country")):
            errors.add(where, "An address needs at least one part.")
        out.append(address)
    return out


def _tags(errors: _Errors, items: Any) -> list[str]:
    if items is None:
        return []
    if not isinstance(items, list):
        errors.add("tags", "Not a valid list.")
        return []
    if len(items) > limits.TAGS_MAX_ITEMS:
        errors.add("tags", f"At most {limits.TAGS_MAX_ITEMS} entries.")
        return []
    out: list[str] = []
    for i, item in enumerate(items):
        tag = errors.guard(f"tags.{i}", partial(parse_tag, item))
        if tag is not None and tag not in out:
            out.append(tag)
    return out


def primary_value(entries: list[dict[str, Any]] | None) -> str | None:
    """Return the ``value`` of the primary entry of an email or phone list, or ``None``."""
    for entry in entries or ():
        if entry.get("primary"):
            return str(entry["value"])
    return None


_ENTRY_KEYS: Final = {
    "emails": ("value", "type", "primary"),
    "phones": ("value", "type", "primary"),
    "addresses": ("type", *ADDRESS_TEXT, "country"),
}


def represent(fields: Mapping[str, Any]) -> Fields:
    """Return the read representation of ``fields``: every field plus ``email``/``phone``.

    List entries get one key order whatever storage returned (PostgreSQL's jsonb reorders
    keys), so the same contact always encodes to the same bytes.
    """
    body = {name: fields.get(name) for name in FIELDS}
    for name, keys in _ENTRY_KEYS.items():
        body[name] = [{key: entry.get(key) for key in keys} for entry in body[name] or []]
    body["email"] = primary_value(body["emails"])
    body["phone"] = primary_value(body["phones"])
    return body


def primary_email_key(fields: Mapping[str, Any]) -> str | None:
    """The key (``values.email_key``, ``EmailAddress.key``) of the primary email of normalized
    ``fields``: what an upsert matches on; ``None`` when there is none."""
    primary = primary_value(fields.get("emails") or [])
    return EmailAddress(primary).key if primary else None
