"""``POST /v1/contacts/batch``: one item of the body → a valid operation or its errors, and the
results → the answer.

Each item is checked alone with the rules of its single route: the shape
(``BatchOperationSchema``, ``data`` as ``ContactWriteSchema``), what its ``op`` needs (``id``,
``data``), ``if_match`` as the ``If-Match`` header (``headers.version_of_etag``) and
``data`` through ``normalize_contact`` (and ``contact_input.upsert_fields`` for an upsert).
Errors are keyed by field path inside the item and give reasons, never the value refused.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

import marshmallow as ma

from command_api.entrypoints.contact_input import upsert_fields
from command_api.entrypoints.errors import QUEUE_PROBLEM, QUEUE_RETRY_AFTER_S
from command_api.entrypoints.headers import BadETag, version_of_etag
from command_api.entrypoints.schemas import BatchOperationSchema
from command_api.service_layer.batch import (
    BatchItem,
    BatchOperation,
    InvalidOperation,
    ItemResult,
)
from contacts_domain import ValidationFailed, normalize_contact
from contacts_http import VALIDATION_PROBLEM, ProblemError, flatten_errors

#: Operations that name the contact they change (``id`` required); the others get an id.
_NAMED_OPS = frozenset({"replace", "patch", "delete"})
_ITEM_SCHEMA = BatchOperationSchema()


def parse_item(raw: Any, *, default_region: str) -> BatchItem:
    """Return the operation item ``raw`` (decoded JSON, any type) asks for, or its errors.

    ``default_region`` (ISO 3166-1 alpha-2) is used for phone numbers without ``+``.
    Never raises for bad input: every problem becomes an ``InvalidOperation`` entry, e.g.
    ``{"op": [...]}``, ``{"id": ["Required for a patch."]}``, ``{"data.emails.0.value": [...]}``
    or ``{"_schema": [...]}`` when the item is not an object.
    """
    errors: dict[str, list[str]] = {}

    def add(path: str, reason: str) -> None:
        errors.setdefault(path, []).append(reason)

    try:
        valid: Mapping[str, Any] = _ITEM_SCHEMA.load(raw)
    except ma.ValidationError as error:
        for path, reasons in flatten_errors(error.messages).items():
            # {"data": 5} is {"data": {"_schema": [...]}} to marshmallow: the path is data.
            errors.setdefault(path.removesuffix("._schema"), []).extend(reasons)
        valid = error.valid_data if isinstance(error.valid_data, Mapping) else {}
    sent: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    op = valid.get("op")
    contact_id = str(valid["id"]) if isinstance(valid.get("id"), uuid.UUID) else None

    if op is not None:
        if op in _NAMED_OPS and "id" not in sent:
            add("id", f"Required for {_a(op)}.")
        elif op not in _NAMED_OPS and "id" in sent:
            add("id", f"Not allowed for {_a(op)}: the server assigns the id.")
        if op == "delete" and "data" in sent:
            add("data", "Not allowed for a delete.")
        elif op != "delete" and "data" not in sent:
            add("data", f"Required for {_a(op)}.")
        if op not in _NAMED_OPS and "if_match" in sent:
            add("if_match", f"Not allowed for {_a(op)}.")
        if op != "upsert" and "match_on" in sent:
            add("match_on", "Only an upsert matches on a field.")
    expected_version = None
    if "if_match" in valid and "if_match" not in errors:
        try:
            expected_version = version_of_etag(valid["if_match"])
        except BadETag as error:
            add("if_match", error.reason)
    fields: dict[str, Any] = {}
    data_checked = not any(path == "data" or path.startswith("data.") for path in errors)
    if op is not None and op != "delete" and "data" in sent and data_checked:
        try:
            fields = _fields(op, sent["data"], default_region)
        except ValidationFailed as error:
            for path, reasons in error.errors.items():
                errors.setdefault("data" if path == "_schema" else f"data.{path}", reasons)
    if errors or op is None:
        return InvalidOperation(errors, _digest(raw), contact_id)
    return BatchOperation(op, contact_id, fields, expected_version)


def _a(op: str) -> str:
    """``op`` after its indefinite article: "a patch", "an upsert"."""
    return f"an {op}" if op[:1] in ("a", "e", "i", "o", "u") else f"a {op}"


def _fields(op: str, data: Any, default_region: str) -> dict[str, Any]:
    if op == "upsert":
        return upsert_fields(data, default_region=default_region)
    return normalize_contact(data, partial=op == "patch", default_region=default_region)


def _digest(raw: Any) -> str:
    # ASCII escapes: client text may hold unpaired surrogates, which UTF-8 cannot encode.
    canonical = json.dumps(raw, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


#: Why a conditional item may not follow a write of the same contact in one batch.
CHAINED_IF_MATCH: Final = (
    "Not allowed after another operation on the same contact in this batch: the version it "
    "would check does not exist yet. Send it in a later request, once that operation is "
    "applied."
)


def parse_items(raws: Sequence[Any], *, default_region: str) -> list[BatchItem]:
    """``parse_item`` of every item, in order, and one rule across items: an ``if_match`` on
    a contact that an earlier valid item of the batch writes is invalid (``CHAINED_IF_MATCH``).

    Why: ``If-Match`` speaks of a version the client has seen. One a batch would produce is
    a guess, and the worker may take two messages of one contact at once (docs/architecture.md
    §5.3),
    judging the later conditional write against the version before the earlier write; it
    keeps that verdict when it puts the two back in order, so the outcome would depend on
    timing.
    """
    items: list[BatchItem] = []
    written: set[str] = set()
    for raw in raws:
        item = parse_item(raw, default_region=default_region)
        named = item.contact_id if isinstance(item, BatchOperation) else None
        if named is not None and isinstance(item, BatchOperation):
            if item.expected_version is not None and named in written:
                item = InvalidOperation({"if_match": [CHAINED_IF_MATCH]}, _digest(raw), named)
            else:
                written.add(named)
        items.append(item)
    return items


def answer(results: Sequence[ItemResult]) -> tuple[dict[str, Any], int]:
    """The body and status of a batch whose items ended as ``results``.

    ``202`` when no valid item failed to queue, ``207`` when some were accepted and some
    failed. Raises ``ProblemError`` (with ``results``) 503 and ``Retry-After`` when valid items
    exist and none was queued, and 400 when no item is valid (``errors`` then repeats the
    items' errors under ``operations.<index>.<path>``).
    """
    body = {"results": [result.to_dict() for result in results]}
    accepted = any(result.status == "accepted" for result in results)
    failed = any(result.status == "failed" for result in results)
    if failed and not accepted:
        raise ProblemError(
            503,
            "No operation could be queued; see results (an operation whose SQS call was not "
            "answered may have been queued: retry with the same Idempotency-Key). Retry later.",
            type_uri=QUEUE_PROBLEM,
            headers={"Retry-After": str(QUEUE_RETRY_AFTER_S)},
            extensions=body,
        )
    if not accepted:
        errors = {
            f"operations.{result.index}.{path}": list(reasons)
            for result in results
            for path, reasons in (result.errors or {}).items()
        }
        raise ProblemError(
            400,
            "No operation of the batch is valid; nothing was queued. See results.",
            type_uri=VALIDATION_PROBLEM,
            errors=errors,
            extensions=body,
        )
    return body, 207 if failed else 202
