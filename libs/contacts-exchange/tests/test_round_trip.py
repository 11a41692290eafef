"""Import → export → import gives the same normalized contacts, for vCard 4.0 and Google CSV:
on generated contacts (hypothesis) and on every contact of the shared sample files."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from contacts_domain.contact import normalize_contact
from contacts_domain.errors import ValidationFailed
from contacts_domain.resource import contact_resource
from contacts_domain.values import email_key
from contacts_exchange import (
    ImportRecord,
    csv_chunks,
    read_csv,
    read_vcards,
    vcard_chunks,
)
from contacts_exchange.csv_dialects import GOOGLE_SEPARATOR

Exporter = Callable[[Iterable[Mapping[str, Any]]], Iterator[bytes]]
Importer = Callable[..., Iterator[ImportRecord]]
FORMATS: list[tuple[str, Exporter, Importer]] = [
    ("vcard", vcard_chunks, read_vcards),
    ("csv", csv_chunks, read_csv),
]

#: Letters of several scripts, the characters vCard and CSV must escape or quote, and
#: combining/RTL marks. Newlines and tabs only where the domain admits them (notes).
_TRICKY = "aZé ñß,;\\:\"'=^#*Ωж中あ한ع\u0301\u200f"
#: Starts a spreadsheet reads as a formula (the CSV writer escapes them with a ``'``), and
#: apostrophes before them (a value the reader must not mistake for the escape).
_FORMULA_STARTS = ["", "", "=", "+", "-", "@", "\t=", "'", "'=", "''+", "'-"]


def _formula_start(
    text: st.SearchStrategy[str], starts: list[str] = _FORMULA_STARTS
) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(starts), text).map("".join)


_TEXT = _formula_start(st.text(alphabet=st.sampled_from(_TRICKY), min_size=1, max_size=30))
_NOTES = _formula_start(
    st.text(alphabet=st.sampled_from(_TRICKY + "\n\t"), min_size=1, max_size=300)
)
_LOCAL = _formula_start(
    st.text(alphabet=st.sampled_from("abcxyz019._-+"), min_size=1, max_size=12),
    [start for start in _FORMULA_STARTS if "@" not in start],
)
_DOMAIN = st.sampled_from(["example.com", "mustermann.example", "مثال.إختبار", "例え.jp"])
_PHONES = [
    "+12025550100",
    "+12025550123",
    "+4922155501234",
    "+33155550101",
    "+819012345678",
    "+966505550101",
    "+201055500105",
    "+442071838750",
    "+12025550100;ext=5",
    "+442071838750;ext=0012",
]


def _one_primary(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = False
    for entry in entries:
        entry["primary"] = entry["primary"] and not seen
        seen = seen or entry["primary"]
    return entries


def _entries(values: st.SearchStrategy[str], types: list[str], max_size: int) -> Any:
    return st.lists(
        st.fixed_dictionaries(
            {"value": values, "type": st.sampled_from(types), "primary": st.booleans()}
        ),
        max_size=max_size,
        unique_by=lambda entry: email_key(entry["value"]),  # the domain's duplicate rule
    ).map(_one_primary)


_ADDRESS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["home", "work", "other"]),
        "street": st.none() | _TEXT,
        "city": st.none() | _TEXT,
        "region": st.none() | _TEXT,
        "postal_code": st.none()
        | _formula_start(st.text(alphabet="0123456789 -AB", min_size=1, max_size=10)),
        "country": st.none() | st.sampled_from(["US", "DE", "JP", "SA", "GB"]),
    }
)

RAW_CONTACTS = st.fixed_dictionaries(
    {
        "first_name": st.none() | _TEXT | st.just("O'Brien, Jr.; \\n"),
        "last_name": st.none() | _TEXT,
        "company": st.none() | _TEXT,
        "job_title": st.none() | _TEXT,
        "notes": st.none() | _NOTES,
        "birthday": st.none()
        | st.dates(dt.date(1900, 1, 1), dt.date(2020, 12, 31)).map(dt.date.isoformat),
        "emails": _entries(
            st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN),
            ["home", "work", "other"],
            4,
        ),
        "phones": _entries(st.sampled_from(_PHONES), ["mobile", "home", "work", "other"], 4),
        "addresses": st.lists(_ADDRESS, max_size=3),
        "tags": st.lists(_TEXT, max_size=5),
    }
)


def _normalized(raw: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return normalize_contact(raw, partial=False, default_region="US")
    except ValidationFailed:
        assume(False)
        raise


def _survive_google_join(tags: list[str]) -> bool:
    """Whether ``tags`` come back from one Google ``Labels`` cell as they went in: not when a
    tag holds ``" ::: "`` (the writer's documented limit) nor when one ends in ``" :::"``
    (``["a :::", "b"]`` is written ``a ::: ::: b`` and read back ``["a", "::: b"]``)."""
    return GOOGLE_SEPARATOR.join(tags).split(GOOGLE_SEPARATOR) == tags


def _resources(contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    updated = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    return [
        contact_resource(
            f"0000000{i}-0000-4000-8000-000000000000",
            fields,
            version=1,
            created_at=updated,
            updated_at=updated,
        )
        for i, fields in enumerate(contacts)
    ]


def _export_import(
    contacts: list[dict[str, Any]], export: Exporter, read: Importer
) -> list[ImportRecord]:
    data = b"".join(export(_resources(contacts)))
    return list(read(io.BytesIO(data)))


@pytest.mark.parametrize(("name", "export", "read"), FORMATS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(raw=st.lists(RAW_CONTACTS, min_size=1, max_size=3))
def test_generated_contacts_round_trip(
    name: str, export: Exporter, read: Importer, raw: list[dict[str, Any]]
) -> None:
    contacts = [_normalized(one) for one in raw]
    if name == "csv":
        assume(all(_survive_google_join(contact["tags"]) for contact in contacts))
    back = _export_import(contacts, export, read)
    assert [r.errors for r in back] == [[] for _ in contacts]
    assert [r.warnings for r in back] == [[] for _ in contacts]
    assert [r.data for r in back] == contacts


def _sample_contacts(data_dir: Path) -> list[dict[str, Any]]:
    contacts: list[dict[str, Any]] = []
    for path in sorted((data_dir / "vcards").glob("*.vcf")):
        with path.open("rb") as stream:
            contacts += [r.data for r in read_vcards(stream) if r.data]
    for path in sorted((data_dir / "csv").glob("*.csv")):
        if path.name.startswith("11-"):
            continue
        with path.open("rb") as stream:
            contacts += [r.data for r in read_csv(stream) if r.data]
    return contacts


@pytest.mark.parametrize(("name", "export", "read"), FORMATS)
def test_every_imported_sample_contact_round_trips(
    data_dir: Path, name: str, export: Exporter, read: Importer
) -> None:
    contacts = _sample_contacts(data_dir)
    assert len(contacts) == 68
    back = _export_import(contacts, export, read)
    assert [r.data for r in back] == contacts
