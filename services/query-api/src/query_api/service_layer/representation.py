"""The JSON bytes of a contact, built exactly as the cache holds them.

``contacts_domain.resource.contact_resource`` builds the object; this module fixes its encoding
(compact separators, UTF-8, non-ASCII kept) so a response built from PostgreSQL and one served
from a refilled cache entry are byte-identical.
"""

from __future__ import annotations

from typing import Any

from contacts_domain.resource import contact_resource, encode_resource
from query_api.service_layer.records import ContactRecord


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
