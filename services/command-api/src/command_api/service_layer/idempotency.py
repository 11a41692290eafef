"""Deterministic ids for ``POST /v1/contacts`` (and upsert, batch) with an ``Idempotency-Key``.

The contact id, event id and operation id are UUIDv5s of the SHA-256 digest of the key, so
every retry of one request carries the same ids before any store has recorded anything: SQS
drops the duplicate sends (``MessageDeduplicationId`` = event id, 5-minute window) and the
worker's inbox makes a later one a no-op. Keys are global (there is no authentication yet):
clients must use unique keys, e.g. UUIDs.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

#: Namespace of the UUIDv5s derived from idempotency keys (fixed forever: changing it would
#: give a retried request new ids).
ID_NAMESPACE: Final = uuid.UUID("8f0b6f8e-3c1a-5d3e-9a52-7c1f0e6a4b21")
#: What an ``Idempotency-Key`` may be: 1–255 visible ASCII characters.
KEY_PATTERN: Final = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True, slots=True)
class DerivedIds:
    """The ids of the create request identified by one idempotency key (all lowercase UUIDs).

    ``key_digest`` is the SHA-256 hex digest of the key: the Redis key holds it, never the key.
    """

    key_digest: str
    contact_id: str
    event_id: str
    operation_id: str


def derive_ids(idempotency_key: str) -> DerivedIds:
    """Return the ids a create with ``idempotency_key`` gets, the same on every call."""
    return _derived(idempotency_key, "")


def derive_item_ids(idempotency_key: str, index: int) -> DerivedIds:
    """Return the ids of item ``index`` (0-based) of a batch sent with ``idempotency_key``, the
    same on every call: UUIDv5s of the key's digest and the index, distinct from
    ``derive_ids``'s and from every other index's. ``contact_id`` is the id a created (or
    upserted-and-created) contact gets; other operations keep the id they name.
    """
    return _derived(idempotency_key, f":{index}")


def _derived(idempotency_key: str, suffix: str) -> DerivedIds:
    # The names with an empty suffix are those of the first release: never change them.
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()
    return DerivedIds(
        key_digest=digest,
        contact_id=str(uuid.uuid5(ID_NAMESPACE, f"contact:{digest}{suffix}")),
        event_id=str(uuid.uuid5(ID_NAMESPACE, f"event:{digest}{suffix}")),
        operation_id=str(uuid.uuid5(ID_NAMESPACE, f"operation:{digest}{suffix}")),
    )


def fingerprint(fields: Mapping[str, Any]) -> str:
    """SHA-256 hex digest of the normalized fields as canonical JSON (sorted keys)."""
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class DerivedImport:
    """The id of the import identified by one idempotency key (``POST /v1/imports``).

    ``key_digest`` is the SHA-256 hex digest of the key (as for ``derive_ids``); ``import_id``
    a lowercase UUIDv5 of it, distinct from the ids ``derive_ids`` gives the same key. The ids
    of the import's records derive from ``import_id`` (``contacts_domain.imports.record_ids``).
    """

    key_digest: str
    import_id: str


def derive_import(idempotency_key: str) -> DerivedImport:
    """Return the import id an import with ``idempotency_key`` gets, the same on every call."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()
    return DerivedImport(digest, str(uuid.uuid5(ID_NAMESPACE, f"import:{digest}")))


def upload_hasher(file_format: str) -> hashlib._Hash:
    """A SHA-256 hasher primed with the import's format; feed it the uploaded bytes, and its
    hex digest is the upload's fingerprint: the same file sent as another format, or another
    file, is another request (422 under the same ``Idempotency-Key``). The ``import:`` prefix
    keeps it apart from the fingerprints of JSON bodies (``fingerprint``)."""
    return hashlib.sha256(f"import:{file_format}\n".encode())
