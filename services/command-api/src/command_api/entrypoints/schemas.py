"""Marshmallow schemas of the write API: the shape of a body, documented in /openapi.json;
then the rest of that document the routes use: parameters, headers and response descriptions.

They check types, unknown fields and the size limits of ``contacts_domain.limits`` (counted on
the raw input; the domain counts them again after trimming and NFC). The canonical rules
(normalization, names, emails, phones, dates, countries) are ``contacts_domain.normalize_contact``
and run on the raw body after these schemas pass. ``null`` and ``""`` clear a field alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Final

import marshmallow as ma
from marshmallow import fields, validate

from command_api.service_layer.batch import BATCH_MAX_ITEMS, BATCH_OPS
from contacts_domain import limits
from contacts_domain.contact import ADDRESS_TYPES, EMAIL_TYPES, PHONE_TYPES
from contacts_http import ProblemSchema
from contacts_http.openapi import NO_CONTROL, VISIBLE_TEXT

#: Text without control characters; notes also take LF and TAB (``clean_text``).
ONE_LINE: Final = f"^{NO_CONTROL}*$"
MULTILINE: Final = f"^(?:{NO_CONTROL}|[\\t\\n])*$"

#: ``email`` and ``emails`` (``phone`` and ``phones``) exclude each other, even when ``null``.
_SHORTHAND_EXCLUSIONS: Final = [
    {"not": {"required": ["email", "emails"]}},
    {"not": {"required": ["phone", "phones"]}},
]
_CLEARED: Final = {"anyOf": [{"type": "null"}, {"type": "string", "pattern": "^\\s*$"}]}
#: A patch, or an upsert (applied like one on a match), may not clear both names at once.
_NOT_BOTH_NAMES_CLEARED: Final = {
    "not": {
        "required": ["first_name", "last_name"],
        "properties": {"first_name": _CLEARED, "last_name": _CLEARED},
    }
}
#: A whole contact needs a first or a last name that is not blank.
_NAME_REQUIRED: Final = {
    "anyOf": [
        {"required": [name], "properties": {name: {"type": "string", "pattern": VISIBLE_TEXT}}}
        for name in ("first_name", "last_name")
    ]
}


def _text(max_length: int, description: str, **metadata: Any) -> fields.String:
    # No control character (``clean_text``); notes pass their own pattern (LF and TAB).
    return fields.String(
        allow_none=True,
        validate=validate.Length(max=max_length),
        metadata={"description": description, "pattern": ONE_LINE, **metadata},
    )


def _entries(schema: type[ma.Schema], max_items: int, description: str) -> fields.List:
    return fields.List(
        fields.Nested(schema),
        allow_none=True,
        validate=validate.Length(max=max_items),
        metadata={"description": description},
    )


class EmailEntrySchema(ma.Schema):
    """One email address of a contact."""

    value = fields.String(
        required=True,
        validate=validate.Length(max=limits.EMAIL_MAX),
        metadata={
            "format": "email",
            "description": "An email address (no DNS check); a special-use domain "
            "(RFC 6761: `.test`, `.invalid`, `.localhost`...) is refused.",
        },
    )
    type = fields.String(validate=validate.OneOf(EMAIL_TYPES), metadata={"default": "other"})
    primary = fields.Boolean(
        metadata={"description": "At most one per list; the first entry when none is."}
    )


#: What a phone value may be, for both ``phone`` and ``phones[].value``.
PHONE_DESCRIPTION: Final = (
    "E.164 (`+12025550100`) or a national number of DEFAULT_PHONE_REGION, optionally with an "
    "extension (`+1 202 555 0100 ext 5`, `x5`, `;ext=5`). Stored as E.164, then `;ext=` and "
    "the extension's digits when there is one (`+12025550100;ext=5`, RFC 3966); at most "
    f"{limits.PHONE_MAX} characters stored."
)


class PhoneEntrySchema(ma.Schema):
    """One phone number of a contact; stored in E.164 form, then `;ext=` and the extension's
    digits when it has one (`+12025550100;ext=5`)."""

    value = fields.String(
        required=True,
        validate=validate.Length(max=limits.PHONE_INPUT_MAX),
        metadata={"description": PHONE_DESCRIPTION},
    )
    type = fields.String(validate=validate.OneOf(PHONE_TYPES), metadata={"default": "other"})
    primary = fields.Boolean(
        metadata={"description": "At most one per list; the first entry when none is."}
    )


class AddressSchema(ma.Schema):
    """A postal address; at least one part is required."""

    OPENAPI_EXTRA: ClassVar[dict[str, Any]] = {
        "anyOf": [
            {"required": [part], "properties": {part: {"type": "string", "pattern": VISIBLE_TEXT}}}
            for part in ("street", "city", "region", "postal_code", "country")
        ]
    }

    type = fields.String(validate=validate.OneOf(ADDRESS_TYPES), metadata={"default": "home"})
    street = _text(limits.STREET_MAX, "Street and number.")
    city = _text(limits.CITY_MAX, "City.")
    region = _text(limits.REGION_MAX, "State, province or region.")
    postal_code = _text(limits.POSTAL_CODE_MAX, "Postal code.")
    country = _text(2, "ISO 3166-1 alpha-2 code.")


class ContactWriteSchema(ma.Schema):
    """A whole contact (POST, PUT). Needs `first_name` or `last_name`; absent fields are empty.

    `email` and `phone` are shorthands for a one-entry `emails`/`phones` list; send either
    form, not both. Text is trimmed and NFC-normalized; `""` means no value.
    """

    class Meta:
        unknown = ma.RAISE

    OPENAPI_EXTRA: ClassVar[dict[str, Any]] = {"allOf": [*_SHORTHAND_EXCLUSIONS, _NAME_REQUIRED]}

    first_name = _text(limits.NAME_MAX, "Given name.")
    last_name = _text(limits.NAME_MAX, "Family name.")
    email = _text(limits.EMAIL_MAX, "Shorthand for one primary email.", format="email")
    emails = _entries(EmailEntrySchema, limits.EMAILS_MAX_ITEMS, "Email addresses.")
    phone = _text(
        limits.PHONE_INPUT_MAX, f"Shorthand for one primary phone number. {PHONE_DESCRIPTION}"
    )
    phones = _entries(PhoneEntrySchema, limits.PHONES_MAX_ITEMS, "Phone numbers.")
    company = _text(limits.COMPANY_MAX, "Company.")
    job_title = _text(limits.JOB_TITLE_MAX, "Job title.")
    addresses = _entries(AddressSchema, limits.ADDRESSES_MAX_ITEMS, "Postal addresses.")
    birthday = _text(10, "Calendar date `YYYY-MM-DD`, not in the future.", format="date")
    notes = _text(limits.NOTES_MAX, "Free text; LF and TAB allowed.", pattern=MULTILINE)
    tags = fields.List(
        fields.String(
            validate=validate.Length(max=limits.TAG_MAX),
            metadata={"minLength": 1, "pattern": VISIBLE_TEXT},
        ),
        allow_none=True,
        validate=validate.Length(max=limits.TAGS_MAX_ITEMS),
        metadata={"description": "Labels; duplicates are dropped."},
    )


class ContactUpsertSchema(ContactWriteSchema):
    """A whole contact to upsert by its primary email (POST /v1/contacts/upsert): it must have
    a primary email, as `email` or as `emails` (the entry marked `primary`, else the first). A
    name is required only to create one, which only the worker knows (issue 16: a nameless
    upsert that matches no contact is rejected `name_required`), so the document cannot
    require it; like a patch, it may not clear both names."""

    OPENAPI_EXTRA: ClassVar[dict[str, Any]] = {
        "allOf": [
            *_SHORTHAND_EXCLUSIONS,
            _NOT_BOTH_NAMES_CLEARED,  # normalized like a patch (contact_input.upsert_fields)
            {
                "anyOf": [
                    {
                        "required": ["email"],
                        "properties": {"email": {"type": "string", "minLength": 1}},
                    },
                    {
                        "required": ["emails"],
                        "properties": {"emails": {"type": "array", "minItems": 1}},
                    },
                ]
            },
        ]
    }


class ContactPatchSchema(ContactWriteSchema):
    """An RFC 7396 merge patch of a contact (PATCH).

    Only the fields present change; `null` (or `""`) clears one. An empty patch, or one that
    clears both names, is refused (400).
    """

    OPENAPI_EXTRA: ClassVar[dict[str, Any]] = {
        "allOf": [*_SHORTHAND_EXCLUSIONS, _NOT_BOTH_NAMES_CLEARED],
        "minProperties": 1,
    }


class AcceptedSchema(ma.Schema):
    """The body of `202 Accepted`: the command is durably queued, not yet applied."""

    id = fields.UUID(required=True, metadata={"description": "The contact id."})
    operation_id = fields.UUID(
        required=True,
        metadata={"description": "Poll `GET /v1/operations/{operation_id}` on the query API."},
    )
    status = fields.String(required=True, metadata={"enum": ["pending"]})


_OPS_DESCRIPTION = (
    "`create` (needs `data`, no `id`: the id is assigned), `replace` (`id` and a whole "
    "contact in `data`), `patch` (`id` and an RFC 7396 merge patch in `data`; `null` clears), "
    "`delete` (`id`, no `data`), `upsert` (`data` with a primary email, no `id`; "
    "patches the live contact holding that email, or creates one, which needs a first or last "
    "name: a nameless upsert that matches nothing ends `rejected`, reason `name_required`)."
)


class BatchOperationSchema(ma.Schema):
    """One operation of a batch, validated on its own with the rules of its single route."""

    class Meta:
        unknown = ma.RAISE

    op = fields.String(
        required=True,
        validate=validate.OneOf(BATCH_OPS),
        metadata={"description": _OPS_DESCRIPTION},
    )
    id = fields.UUID(metadata={"description": "The contact (replace, patch, delete only)."})
    if_match = fields.String(
        metadata={
            "description": 'One strong ETag `"<version>"` from the query API, as the `If-Match` '
            'header of the single routes (replace, patch, delete only). A weak ETag, `"0"`, '
            "`*` or a list make the item invalid.",
            "pattern": '^"[1-9][0-9]{0,17}"$',
        }
    )
    data = fields.Nested(
        ContactWriteSchema,
        metadata={"description": "The contact (create, replace, upsert) or the patch (patch)."},
    )
    match_on = fields.String(
        validate=validate.OneOf(["email"]),
        metadata={
            "description": "Upsert only: what identifies the contact (`email`, the default)."
        },
    )


class BatchRequestSchema(ma.Schema):
    """A batch: 1 to 100 operations, each validated, queued and answered on its own."""

    class Meta:
        unknown = ma.RAISE

    operations = fields.List(
        fields.Nested(BatchOperationSchema),
        required=True,
        validate=validate.Length(min=1, max=BATCH_MAX_ITEMS),
        metadata={"description": "In the order they apply to each contact."},
    )


class BatchBodySchema(ma.Schema):
    """What is checked of a batch as a whole (400 when it fails, nothing queued): an object
    with 1 to 100 ``operations``. Each item is checked alone afterwards
    (``BatchOperationSchema``) and reported in its result."""

    class Meta:
        unknown = ma.RAISE

    operations = fields.List(
        fields.Raw(allow_none=True),
        required=True,
        validate=validate.Length(min=1, max=BATCH_MAX_ITEMS),
    )


class BatchItemResultSchema(ma.Schema):
    """The outcome of one operation of a batch."""

    index = fields.Integer(required=True, metadata={"description": "0-based, the order sent."})
    status = fields.String(
        required=True,
        validate=validate.OneOf(["accepted", "invalid", "failed"]),
        metadata={
            "description": "`accepted`: durably queued, poll its operation. `invalid`: refused, "
            "nothing queued; see `errors`. `failed`: the queue did not take it (or an earlier "
            "item of the same contact failed); nothing queued, retry it."
        },
    )
    id = fields.UUID(
        required=True,
        allow_none=True,
        metadata={
            "description": "The contact: the one named, or the id a create (or an upsert that "
            "creates) gets; null when an invalid item named none."
        },
    )
    operation_id = fields.UUID(
        required=True,
        allow_none=True,
        metadata={"description": "Accepted items only: poll `GET /v1/operations/{id}`."},
    )
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        required=True,
        allow_none=True,
        metadata={
            "description": "null when accepted; else field path inside the item (`id`, `op`, "
            "`if_match`, `data.emails.0.value`, `_schema`, `_queue`) → reasons."
        },
    )


class BatchResultsSchema(ma.Schema):
    """The body of `202` and `207`: one result per operation, in the order sent."""

    results = fields.List(fields.Nested(BatchItemResultSchema), required=True)


class BatchProblemSchema(ProblemSchema):
    """A problem (RFC 9457) about a batch; `results` when items were looked at one by one."""

    results = fields.List(
        fields.Nested(BatchItemResultSchema),
        metadata={
            "description": "One result per operation, in order (absent when the batch as a "
            "whole was refused: not JSON, no `operations`, too many, too large)."
        },
    )


def _import_counts(*, required: bool) -> dict[str, fields.Field]:
    """The counts of an import's records (cards or CSV rows):
    `received` = `accepted` + `invalid` + `failed`."""
    return {
        "import_id": fields.UUID(
            required=required,
            metadata={"description": "Poll `GET /v1/imports/{import_id}` on the query API."},
        ),
        "received": fields.Integer(
            required=required, metadata={"description": "Records in the file."}
        ),
        "accepted": fields.Integer(
            required=required,
            metadata={
                "description": "Valid records durably queued, or (`status` `queuing`) valid "
                "records the first 250 of which are queued and the rest being queued."
            },
        ),
        "invalid": fields.Integer(
            required=required,
            metadata={"description": "Records refused; the report lists why (position, field)."},
        ),
        "failed": fields.Integer(
            required=required,
            metadata={
                "description": "Valid records not known to be queued because the queue failed. "
                "A send whose answer was lost may have queued some of them: the report's "
                "`applied` can then exceed `accepted`."
            },
        ),
        "repaired": fields.Integer(
            required=required,
            metadata={
                "description": "Valid records (of `accepted` + `failed`) that lost a value "
                "breaking a rule (an invalid email, phone number, birthday...) or were "
                "repaired; the report lists each as a warning (position, field)."
            },
        ),
    }


#: The body of `202 Accepted` for an import: the file is validated and its report stored;
#: `queued` when every valid record is durably queued, `queuing` while the rest is being
#: queued after the answer (the report's `state` says how that ends).
ImportAcceptedSchema = ma.Schema.from_dict(
    {
        **_import_counts(required=True),
        "status": fields.String(
            required=True,
            metadata={
                "enum": ["queuing", "queued"],
                "description": "`queued`: every valid record is in the queue. `queuing`: "
                "the first ones are, the rest is being queued; poll the report at "
                "`Location` (its `state` becomes `queued`, `failed` or `interrupted`).",
            },
        ),
    },
    name="ImportAccepted",
)


#: A 503 problem of an import. When the queue stopped taking it part-way, it carries
#: `import_id` and the counts: how many records were queued (`accepted`) and how many were
#: not (`failed`); sending the same file with the same `Idempotency-Key` queues the rest.
ImportNotQueuedProblemSchema = ProblemSchema.from_dict(
    _import_counts(required=False), name="ImportNotQueuedProblem"
)


# --- OpenAPI parameters, headers and response descriptions of the routes -----------------------

#: The links of a ``202 Accepted`` write.
ACCEPTED_HEADERS: Final = {
    "Location": {
        "description": "The contact on the query API (`GET` it once the operation is applied).",
        "schema": {"type": "string", "format": "uri"},
    },
    "Operation-Location": {
        "description": "The operation on the query API: `pending`, `applied` or `rejected`.",
        "schema": {"type": "string", "format": "uri"},
    },
}
#: An upsert's ``202`` links the operation only (the contact it writes is not known yet).
UPSERT_HEADERS: Final = {"Operation-Location": ACCEPTED_HEADERS["Operation-Location"]}
#: A strong ETag of a version a contact can have: 1 to 18 digits, no leading zero
#: (``headers.version_of_etag``; `"0"` and weak ETags answer 412, anything else 400).
IF_MATCH_PATTERN: Final = '^"[1-9][0-9]{0,17}"$'
#: 1-255 visible ASCII characters (``service_layer.idempotency.KEY_PATTERN``).
IDEMPOTENCY_KEY_SCHEMA: Final = {"type": "string", "pattern": "^[!-~]{1,255}$"}
IF_MATCH: Final = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "description": 'One strong ETag `"<version>"` from the query API. A weak ETag or `"0"` '
    "answers 412 at once; `*`, a list or two `If-Match` fields answer 400. A mismatch found "
    "by the worker ends the operation `rejected` with reason `version_mismatch`.",
    "schema": {"type": "string", "pattern": IF_MATCH_PATTERN},
    "example": '"1"',
}
IF_NONE_MATCH: Final = {
    "in": "header",
    "name": "If-None-Match",
    "required": False,
    "description": "`*`: create the contact, never replace one (RFC 9110 §13.1.2). A visible "
    "contact with this id ends the operation `rejected` with reason `version_mismatch`. Any "
    "other value answers 400 (PATCH and DELETE take none); beside `If-Match`, 412.",
    "schema": {"type": "string", "enum": ["*"]},
    "example": "*",
}
IDEMPOTENCY_KEY: Final = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "1-255 visible ASCII characters, unique per create (a UUID is best). Retries "
    "with the same key and body answer the same ids and create one contact; the same key "
    "with another body answers 422. Remembered 24 h. Send it once: two `Idempotency-Key` "
    "fields (which the server would join with a comma) answer 400.",
    "schema": IDEMPOTENCY_KEY_SCHEMA,
}
BATCH_IDEMPOTENCY_KEY: Final = {
    **IDEMPOTENCY_KEY,
    "description": "1-255 visible ASCII characters, unique per batch (a UUID is best). The "
    "ids of operation `i` are derived from the key and `i`: a retry with the same key and "
    "body queues the same events again (SQS and the worker drop the duplicates) and answers "
    "the same ids, so retrying a `207` or a `503` whole is safe. The same key with another "
    "body answers 422. Remembered 24 h. Send it once: two `Idempotency-Key` fields answer "
    "400.",
}
CHANGE_IDEMPOTENCY_KEY: Final = {
    **IDEMPOTENCY_KEY,
    "description": "1-255 visible ASCII characters, unique per write (a UUID is best). A retry "
    "with the same key, contact, body and `If-Match` answers the same operation and is applied "
    "once: a PATCH retried after a lost answer is neither applied twice nor rejected by its own "
    "`If-Match`. The same key with another write answers 422. Remembered 24 h. Send it once: "
    "two `Idempotency-Key` fields answer 400.",
}
MATCH_ON: Final = {
    "in": "query",
    "name": "match_on",
    "required": False,
    "description": "What identifies the contact: `email` (the only choice, and the default).",
    "schema": {"type": "string", "enum": ["email"]},
}
RETRY_AFTER: Final = {
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "integer", "minimum": 0},
}
BATCH_202: Final = (
    "Every valid operation is durably queued (some operations may be `invalid`): one result "
    "per operation, in order."
)
BATCH_207: Final = (
    "Some operations were queued and some `failed` (the queue did not take them): retry the "
    "failed ones, or the whole batch with its Idempotency-Key."
)
BATCH_400: Final = (
    "The batch as a whole is refused (not a JSON object, no `operations`, not 1 to 100 of "
    "them), or no operation is valid (`results` says why, item by item). Nothing is queued."
)
BATCH_503: Final = (
    "Valid operations exist but none could be queued (`results`: `failed`); retry after "
    "`Retry-After` seconds."
)

#: The ``Location`` of an import's ``202``.
IMPORT_LOCATION: Final = {
    "Location": {
        "description": "The import's report on the query API (`GET /v1/imports/{import_id}`).",
        "schema": {"type": "string", "format": "uri"},
    }
}
IMPORT_IDEMPOTENCY_KEY: Final = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "1-255 visible ASCII characters, unique per import (a UUID is best). The "
    "import id is derived from it: sending the same file again with the same key answers the "
    "same import id and queues its records again, which the queue and the worker drop as "
    "duplicates (the way to finish an import that answered 503). The same key with another "
    "file (or format) answers 422, also while the server is too busy to import (503 for the "
    "same file). Remembered 24 h. Send it once: two `Idempotency-Key` fields answer 400.",
    "schema": IDEMPOTENCY_KEY_SCHEMA,
}
IMPORT_503: Final = (
    "Nothing queued (the report could not be stored, or this server is already queuing as "
    "many imports as it may), or the queue did not take the first records: then the problem "
    "carries `import_id` and the counts. `Retry-After` says when to "
    "send the same file again with the same `Idempotency-Key`. Without a key, sending it again "
    "is a new import that queues every record again (records without an email are created "
    "twice): send imports with an `Idempotency-Key`."
)


def import_request_body(media_types: Iterable[str]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of an import: the raw file under each of ``media_types``."""
    file = {"type": "string", "format": "binary"}
    return {
        "required": True,
        "description": "The address book, sent as the raw body (not a form): vCard 2.1, 3.0 "
        "or 4.0 (any mix, one file) or CSV with a header row (Google Contacts, Outlook, "
        "Thunderbird, Yahoo columns). Any charset parameter is ignored: encodings are "
        "detected. At most IMPORT_MAX_BYTES bytes (10 MB) and IMPORT_MAX_RECORDS records "
        "(10,000).",
        "content": {media_type: {"schema": file} for media_type in media_types},
    }
