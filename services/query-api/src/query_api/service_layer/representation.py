"""The JSON bytes of a contact, built exactly as the cache holds them.

``contacts_domain.resource.contact_resource`` builds the object; this module fixes its encoding
(compact separators, UTF-8, non-ASCII kept) so a response built from PostgreSQL and one served
from a refilled cache entry are byte-identical.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from contacts_domain.contact import FIELDS
from contacts_domain.resource import contact_resource, encode_resource
from query_api.service_layer.records import ContactRecord

#: Members of a contact resource that every sparse representation keeps: what identifies it
#: and what its ETag is made of.
ALWAYS: Final = ("id", "version")
#: Names a ``fields=`` mask may ask for: every other member of the resource.
SELECTABLE: Final = frozenset((*FIELDS, "email", "phone", "created_at", "updated_at"))


def resource(record: ContactRecord) -> dict[str, Any]:
    """The JSON-ready object of ``GET /v1/contacts/{id}`` for ``record``."""
    return contact_resource(
        record.contact_id,
        record.fields,
        version=record.version,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def encode(document: Any) -> bytes:
    """Compact UTF-8 JSON of ``document`` (``contacts_domain.resource.encode_resource``)."""
    return encode_resource(document)


def parse_field_mask(text: str) -> frozenset[str]:
    """The names of a ``fields=`` parameter (``"first_name,emails"``, comma-separated, blanks
    around names ignored); ``id`` and ``version`` may be named and are always kept anyway.

    Raises ``ValueError`` naming the unknown members, or when no name is given.
    """
    names = {name.strip() for name in text.split(",")} - {""}
    if not names:
        raise ValueError("Name at least one field.")
    unknown = sorted(names - SELECTABLE - set(ALWAYS))
    if unknown:
        raise ValueError(
            f"Unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(SELECTABLE))}."
        )
    return frozenset(names - set(ALWAYS))


def sparse(document: Mapping[str, Any], mask: Iterable[str]) -> dict[str, Any]:
    """``document`` (a contact resource) with only ``ALWAYS`` and the members in ``mask``,
    in the resource's own member order."""
    keep = {*ALWAYS, *mask}
    return {name: value for name, value in document.items() if name in keep}


def sparse_bytes(body: bytes, mask: Iterable[str]) -> bytes:
    """``sparse`` of an encoded contact resource, encoded the same way."""
    return encode(sparse(json.loads(body), mask))
