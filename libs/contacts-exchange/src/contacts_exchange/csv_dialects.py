"""Which contact field each CSV column holds, detected from the header row.

Known layouts (names compared case-insensitively, surrounding spaces ignored):

- Google Contacts, current (``First Name``, ``Last Name``, ``E-mail 1 - Label``,
  ``E-mail 1 - Value``, ``Phone 1 - Label``, ``Address 1 - Street``..., ``Labels``,
  ``Organization Name``, ``Organization Title``) and 2012-2020 (``Given Name``,
  ``Family Name``, ``E-mail 1 - Type``, ``Group Membership``, ``Organization 1 - Name``...).
  A type starting with ``*`` marks the primary entry; ``" ::: "`` separates several values
  in one cell.
- Outlook (``E-mail Address``, ``E-mail 2 Address``, ``Business Phone``, ``Mobile Phone``,
  ``Home Street``, ``Business Postal Code``...). Outlook's ``Title`` is the honorific prefix
  and is ignored.
- Thunderbird (``Primary Email``, ``Work Phone``, ``Mobile Number``, ``Home ZipCode``,
  ``Organization``, ``Birth Year``/``Birth Month``/``Birth Day``).
- Yahoo (``First``, ``Last``, ``Email``, ``Alternate Email 1``, ``Home``/``Work``/``Mobile``
  phones, ``Work Post Code``, ``Comments``; ``Title`` is the job title there).
- Gmail 2008 (``Name``, ``E-mail``, ``Section 1 - Email``, ``Section 1 - Phone``...).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from contacts_exchange.country_names import country_code

#: Primary, secondary... values in one Google cell are separated by this.
GOOGLE_SEPARATOR: Final = " ::: "

_SCALARS: Final = {
    "first name": "first_name",
    "given name": "first_name",
    "first": "first_name",
    "last name": "last_name",
    "family name": "last_name",
    "last": "last_name",
    "name": "full_name",
    "display name": "full_name",
    "full name": "full_name",
    "company": "company",
    "organization": "company",
    "organization name": "company",
    "organization 1 - name": "company",
    "section 1 - company": "company",
    "job title": "job_title",
    "organization title": "job_title",
    "organization 1 - title": "job_title",
    "notes": "notes",
    "comments": "notes",
    "birthday": "birthday",
    "birth year": "birth_year",
    "birth month": "birth_month",
    "birth day": "birth_day",
    "group membership": "google_tags",
    "labels": "google_tags",
    "categories": "tags",
    "category": "tags",
}

#: Fixed columns of one entry: column → (list, entry key, entry type or None, part).
_FIXED: Final = {
    # Outlook
    "e-mail address": ("emails", "o1", "other", "value"),
    "e-mail 2 address": ("emails", "o2", "other", "value"),
    "e-mail 3 address": ("emails", "o3", "other", "value"),
    "mobile phone": ("phones", "mobile", "mobile", "value"),
    "business phone": ("phones", "business", "work", "value"),
    "business phone 2": ("phones", "business2", "work", "value"),
    "home phone 2": ("phones", "home2", "home", "value"),
    "other phone": ("phones", "other", "other", "value"),
    "primary phone": ("phones", "primary", "other", "value"),
    "company main phone": ("phones", "main", "work", "value"),
    # Thunderbird
    "primary email": ("emails", "t1", "other", "value"),
    "secondary email": ("emails", "t2", "other", "value"),
    "work phone": ("phones", "work", "work", "value"),
    "home phone": ("phones", "home", "home", "value"),
    "mobile number": ("phones", "mobile", "mobile", "value"),
    # Yahoo
    "email": ("emails", "y1", "other", "value"),
    "alternate email 1": ("emails", "y2", "other", "value"),
    "alternate email 2": ("emails", "y3", "other", "value"),
    "home": ("phones", "home", "home", "value"),
    "work": ("phones", "work", "work", "value"),
    "mobile": ("phones", "mobile", "mobile", "value"),
    "other": ("phones", "other", "other", "value"),
    # Gmail 2008
    "e-mail": ("emails", "g0", "other", "value"),
    "section 1 - email": ("emails", "s1", "other", "value"),
    "section 1 - phone": ("phones", "s1", "other", "value"),
    "section 1 - mobile": ("phones", "s1m", "mobile", "value"),
    "section 1 - address": ("addresses", "s1", "other", "street"),
}

_ADDRESS_PARTS: Final = {
    "street": "street",
    "street 2": "street2",
    "street 3": "street3",
    "address": "street",
    "address 2": "street2",
    "city": "city",
    "town": "city",
    "state": "region",
    "county": "region",
    "postal code": "postal_code",
    "zipcode": "postal_code",
    "zip": "postal_code",
    "post code": "postal_code",
    "country": "country",
    "address po box": "po_box",
}
_ADDRESS_KINDS: Final = {"business": "work", "work": "work", "home": "home", "other": "other"}
_GOOGLE: Final = re.compile(
    r"^(e-mail|phone|address) (\d+) - "
    r"(type|label|value|street|city|po box|region|postal code|country|extended address)$"
)
_GOOGLE_ADDRESS_PARTS: Final = {
    "street": "street",
    "city": "city",
    "po box": "po_box",
    "region": "region",
    "postal code": "postal_code",
    "country": "country",
    "extended address": "street2",
}
_LINE_BREAKS: Final = re.compile(r"\s*[\r\n]+\s*")
#: Google's own groups, written with a leading "* " ("* Starred"); "My Contacts" holds every
#: contact, so it is no tag.
_GOOGLE_SYSTEM_GROUPS: Final = {
    "my contacts",
    "mycontacts",
    "starred",
    "friends",
    "family",
    "coworkers",
}
_ALL_CONTACTS_GROUPS: Final = {"my contacts", "mycontacts"}
_LISTS: Final = {"e-mail": "emails", "phone": "phones", "address": "addresses"}


@dataclass(frozen=True, slots=True)
class Column:
    """What one column holds: a scalar ``target`` or a ``part`` of an entry of ``target``."""

    index: int
    target: str
    key: str = ""
    kind: str | None = None
    part: str = ""


def columns_for(header: Sequence[str]) -> list[Column]:
    """Return the columns of ``header`` that hold contact data (others are ignored).

    The result is empty when the row does not look like a header of a known layout: no
    column names a first, last or full name or an email.
    """
    yahoo = any(_norm(name) in ("yahoo! id", "alternate email 1") for name in header)
    out: list[Column] = []
    for index, raw in enumerate(header):
        name = _norm(raw)
        if name == "title" and yahoo:
            out.append(Column(index, "job_title"))
        elif name in _SCALARS:
            out.append(Column(index, _SCALARS[name]))
        elif name in _FIXED:
            target, key, kind, part = _FIXED[name]
            out.append(Column(index, target, key, kind, part))
        elif match := _GOOGLE.match(name):
            part = match.group(3)
            target = _LISTS[match.group(1)]
            if part in ("type", "label"):
                part = "type"
            elif target == "addresses":
                part = _GOOGLE_ADDRESS_PARTS[part]
            out.append(Column(index, target, f"g{match.group(2)}", None, part))
        elif column := _address_column(index, name):
            out.append(column)
    named = {c.target for c in out} & {"first_name", "last_name", "full_name", "emails"}
    return out if named else []


def _norm(name: str) -> str:
    return " ".join(name.strip().strip('"').lower().split())


def _address_column(index: int, name: str) -> Column | None:
    first, _, rest = name.partition(" ")
    kind = _ADDRESS_KINDS.get(first)
    if kind is None or rest not in _ADDRESS_PARTS:
        return None
    return Column(index, "addresses", first, kind, _ADDRESS_PARTS[rest])


def _google_type(raw: str, kinds: tuple[str, ...]) -> tuple[str, bool]:
    text = raw.strip()
    primary = text.startswith("*")
    word = text.lstrip("* ").lower()
    if word in ("mobile", "cell") and "mobile" in kinds:
        return "mobile", primary
    for kind in kinds:
        if word.startswith(kind):
            return kind, primary
    return "other", primary


def row_fields(columns: Sequence[Column], row: Sequence[str]) -> dict[str, Any]:
    """Build the raw contact fields (the input of ``normalize_contact``) of one data row."""
    fields: dict[str, Any] = {"emails": [], "phones": [], "addresses": [], "tags": []}
    scalars: dict[str, str] = {}
    entries: dict[tuple[str, str], dict[str, str]] = {}
    kinds: dict[tuple[str, str], str | None] = {}
    for column in columns:
        value = row[column.index].strip() if column.index < len(row) else ""
        if not value:
            continue
        if not column.part:
            scalars.setdefault(column.target, value)
            continue
        slot = (column.target, column.key)
        kinds[slot] = column.kind
        entries.setdefault(slot, {})[column.part] = value
    for (target, _key), parts in entries.items():
        kind = kinds[(target, _key)]
        if target == "addresses":
            _add_address(fields, parts, kind)
        else:
            _add_values(fields, target, parts, kind)
    _add_scalars(fields, scalars)
    return fields


def _add_values(
    fields: dict[str, Any], target: str, parts: dict[str, str], kind: str | None
) -> None:
    value = parts.get("value")
    if not value:
        return
    types = ("home", "work", "other") if target == "emails" else ("mobile", "home", "work", "other")
    primary = False
    if kind is None:
        kind, primary = _google_type(parts.get("type", ""), types)
    for i, one in enumerate(value.split(GOOGLE_SEPARATOR)):
        if one.strip():
            fields[target].append(
                {"value": one.strip(), "type": kind, "primary": primary and i == 0}
            )


def _add_address(fields: dict[str, Any], parts: dict[str, str], kind: str | None) -> None:
    if kind is None:
        kind, _primary = _google_type(parts.get("type", ""), ("home", "work", "other"))
    order = ("po_box", "street", "street2", "street3")
    street = ", ".join(_LINE_BREAKS.sub(", ", parts[p]).strip() for p in order if p in parts)
    address = {
        "type": kind,
        "street": street or None,
        "city": parts.get("city"),
        "region": parts.get("region"),
        "postal_code": parts.get("postal_code"),
        "country": country_code(parts["country"]) if parts.get("country") else None,
    }
    if any(value for key, value in address.items() if key != "type"):
        fields["addresses"].append(address)


def _add_scalars(fields: dict[str, Any], scalars: dict[str, str]) -> None:
    for name in ("first_name", "last_name", "company", "job_title"):
        if name in scalars:
            fields[name] = scalars[name]
    if "notes" in scalars:
        fields["notes"] = scalars["notes"].replace("\r\n", "\n").replace("\r", "\n")
    if not fields.get("first_name") and not fields.get("last_name") and "full_name" in scalars:
        first, _, last = scalars["full_name"].rpartition(" ")
        fields["first_name"], fields["last_name"] = (first, last) if first else (last, None)
    if "birthday" in scalars:
        fields["birthday"] = scalars["birthday"]
    elif {"birth_year", "birth_month", "birth_day"} <= scalars.keys():
        year, month, day = (scalars[k] for k in ("birth_year", "birth_month", "birth_day"))
        fields["birthday"] = f"{year:0>4}-{month:0>2}-{day:0>2}"
    tags = scalars.get("google_tags", "").split(GOOGLE_SEPARATOR)
    tags += re.split(r"[;,]", scalars.get("tags", ""))
    for tag in tags:
        tag = tag.strip()
        if tag.startswith("* ") and tag[2:].strip().casefold() in _GOOGLE_SYSTEM_GROUPS:
            tag = tag[2:].strip()
            if tag.casefold() in _ALL_CONTACTS_GROUPS:
                continue
        if tag:
            fields["tags"].append(tag)
