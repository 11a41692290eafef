"""Deterministic ids for the writes sent with an ``Idempotency-Key``: ``POST /v1/contacts``,
upsert, batch, and ``PUT``/``PATCH``/``DELETE /v1/contacts/{id}``.

The contact id, event id and operation id are UUIDv5s of the SHA-256 digest of the key, so
every retry of one request carries the same ids before any store has recorded anything: SQS
drops the duplicate sends (``MessageDeduplicationId`` = event id, 5-minute window) and the
worker's inbox makes a later one a no-op.

Keys are per workspace (docs/architecture.md §10): the ids are derived from the workspace as
well as the key, so the same key sent by two workspaces names two requests, two contacts and two
events (an event id is then unique across the queue, which ``MessageDeduplicationId`` needs).
The ``default`` workspace keeps the names of the first release (its ids are those derived
before workspaces existed, so a retry across the upgrade stays a duplicate); within a workspace,
clients must still use unique keys, e.g. UUIDs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from contacts_domain.workspaces import DEFAULT_WORKSPACE

#: Namespace of the UUIDv5s derived from idempotency keys (fixed forever: changing it would
#: give a retried request new ids).
ID_NAMESPACE: Final = uuid.UUID("8f0b6f8e-3c1a-5d3e-9a52-7c1f0e6a4b21")
#: What an ``Idempotency-Key`` may be: 1–255 visible ASCII characters.
KEY_PATTERN: Final = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True, slots=True)
class DerivedIds:
    """The ids of the create request identified by one workspace and idempotency key (all
    lowercase UUIDs).

    ``key_digest`` is the SHA-256 hex digest of the key: the Redis key holds it (with the
    workspace, ``redis_keys.idempotency_key``), never the key.
    """

    key_digest: str
    contact_id: str
    event_id: str
    operation_id: str


def derive_ids(workspace: str, idempotency_key: str) -> DerivedIds:
    """Return the ids a create with ``idempotency_key`` in ``workspace`` gets, the same on every
    call and different in every other workspace."""
    return _derived(workspace, idempotency_key, "")


def derive_item_ids(workspace: str, idempotency_key: str, index: int) -> DerivedIds:
    """Return the ids of item ``index`` (0-based) of a batch sent with ``idempotency_key`` in
    ``workspace``, the same on every call: UUIDv5s of the workspace, the key's digest and the
    index, distinct from ``derive_ids``'s and from every other index's and workspace's.
    ``contact_id`` is the id a created (or upserted-and-created) contact gets; other operations
    keep the id they name.
    """
    return _derived(workspace, idempotency_key, f":{index}")


def derive_change_ids(
    workspace: str, idempotency_key: str, request_fingerprint: str, contact_id: str
) -> DerivedIds:
    """Return the ids of a ``PUT``, ``PATCH`` or ``DELETE`` of ``contact_id`` sent with
    ``idempotency_key`` in ``workspace``, the same on every call: UUIDv5s of the workspace, the
    key's digest and ``request_fingerprint`` (``fingerprint`` of the whole write: its kind,
    contact, fields and ``If-Match``), distinct from ``derive_ids``'s; ``contact_id`` of the
    result is the one given (the key's record is indexed under it, so the contact's erasure
    deletes the record).

    The write itself is part of the name so that a key whose record is gone (expired after
    ``IDEMPOTENCY_TTL_S``, or not stored while Redis was down) and is then sent with another
    write names a new event: with the first write's event id, the worker's inbox would drop it
    as a duplicate and report the first write's outcome.
    """
    derived = _derived(workspace, idempotency_key, f":change:{request_fingerprint}")
    return dataclasses.replace(derived, contact_id=contact_id)


def _derived(workspace: str, idempotency_key: str, suffix: str) -> DerivedIds:
    # The names of the default workspace with an empty suffix are those of the first release:
    # never change them.
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()
    name = _scoped(workspace, digest) + suffix
    return DerivedIds(
        key_digest=digest,
        contact_id=str(uuid.uuid5(ID_NAMESPACE, f"contact:{name}")),
        event_id=str(uuid.uuid5(ID_NAMESPACE, f"event:{name}")),
        operation_id=str(uuid.uuid5(ID_NAMESPACE, f"operation:{name}")),
    )


def _scoped(workspace: str, digest: str) -> str:
    """The name the ids of ``digest`` derive from in ``workspace``: the digest alone in
    ``default`` (the first release's names), ``<workspace>/<digest>`` elsewhere. A workspace id
    never holds ``/`` and a digest is 64 hex digits, so two (workspace, key) pairs never share
    a name."""
    return digest if workspace == DEFAULT_WORKSPACE else f"{workspace}/{digest}"


def fingerprint(fields: Mapping[str, Any]) -> str:
    """SHA-256 hex digest of the normalized fields as canonical JSON (sorted keys)."""
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class DerivedImport:
    """The id of the import identified by one workspace and idempotency key
    (``POST /v1/imports``).

    ``key_digest`` is the SHA-256 hex digest of the key (as for ``derive_ids``); ``import_id``
    a lowercase UUIDv5 of the workspace and the digest, distinct from the ids ``derive_ids``
    gives the same key and from the import id of the same key in any other workspace. The ids
    of the import's records derive from ``import_id`` (``contacts_domain.imports.record_ids``),
    so they differ per workspace too.
    """

    key_digest: str
    import_id: str


def derive_import(workspace: str, idempotency_key: str) -> DerivedImport:
    """Return the import id an import with ``idempotency_key`` in ``workspace`` gets, the same
    on every call."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()
    name = _scoped(workspace, digest)
    return DerivedImport(digest, str(uuid.uuid5(ID_NAMESPACE, f"import:{name}")))


def upload_hasher(file_format: str) -> hashlib._Hash:
    """A SHA-256 hasher primed with the import's format; feed it the uploaded bytes, and its
    hex digest is the upload's fingerprint: the same file sent as another format, or another
    file, is another request (422 under the same ``Idempotency-Key``). The ``import:`` prefix
    keeps it apart from the fingerprints of JSON bodies (``fingerprint``)."""
    return hashlib.sha256(f"import:{file_format}\n".encode())
