"""Marshmallow schemas of the query API: query-string arguments (validated, 400 on error) and
the response bodies (used for the OpenAPI document; responses are encoded directly), and each
route's OpenAPI responses (``Endpoint``: ``GET_CONTACT``, ``LIST_CONTACTS``...), which the
blueprint factories register with their views (``arguments.QueryBlueprint.add_view``).

Unknown query parameters are refused with 400 on every endpoint: a misspelt filter
(``?tags=x`` for ``?tag=x``) would otherwise silently list everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import marshmallow as ma

from contacts_domain import limits
from contacts_domain.imports import FORMATS
from contacts_domain.values import EmailAddress, clean_text, parse_tag, shows_something
from contacts_http.openapi import VISIBLE_TEXT
from query_api.service_layer import change_feed
from query_api.service_layer.cursor import MAX_TOKEN_LENGTH
from query_api.service_layer.imports import REPORT_TTL_DAYS, SHOWN_STATES
from query_api.service_layer.listing import DEFAULT_LIMIT, DEFAULT_SORT, MAX_LIMIT, SORT_NAMES
from query_api.service_layer.representation import ALWAYS, SELECTABLE, parse_field_mask

#: Longest ``q``: the longest field it can match (an email address).
Q_MAX_LENGTH = limits.EMAIL_MAX


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class NoArgsSchema(StrictSchema):
    """Endpoints that take no query parameters."""


class FieldMask(ma.fields.String):
    """``fields=first_name,emails``: the members of each contact to return (a frozenset)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_field_mask(text)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None


def _field_mask() -> FieldMask:
    name = f"(?:{'|'.join(sorted(SELECTABLE | set(ALWAYS)))})"
    return FieldMask(
        metadata={
            "description": "Comma-separated members to return (sparse fieldset), e.g. "
            "`first_name,emails`; `id` and `version` are always returned. Default: all.",
            "minLength": 1,
            # At least one known member; blanks around names and empty items are ignored.
            "pattern": f"^(?:\\s*,)*\\s*{name}\\s*(?:,\\s*(?:{name}\\s*)?)*$",
        },
    )


class GetArgsSchema(StrictSchema):
    """Query string of ``GET /v1/contacts/{id}``."""

    # The query parameter is named `fields`, like marshmallow's own attribute (the instance
    # attribute marshmallow sets wins; the declared field still loads `?fields=`).
    fields = _field_mask()  # type: ignore[assignment]


class CanonicalEmail(ma.fields.String):
    """An email address, deserialized to its canonical lookup key
    (``EmailAddress.key``: simple case folding, ``values.email_key``)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return EmailAddress.parse(text).key
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None


class Tag(ma.fields.String):
    """A tag, NFC-normalized and trimmed like stored tags."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_tag(text)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None


class SearchText(ma.fields.String):
    """Free text, NFC-normalized and trimmed; never blank, nor only characters that draw
    nothing (``"\u200b"``: ``shows_something``, the rule that makes such a name empty)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            cleaned = clean_text(text, max_length=Q_MAX_LENGTH)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None
        if cleaned is None or not shows_something(cleaned):
            raise ma.ValidationError("Must not be blank.")
        return cleaned


class ListArgsSchema(StrictSchema):
    """Query string of ``GET /v1/contacts``."""

    limit = ma.fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=ma.validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Page size, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT})."},
    )
    sort = ma.fields.String(
        validate=ma.validate.OneOf(SORT_NAMES),
        metadata={
            "description": f"Order (default `{DEFAULT_SORT}`); `-` means descending. The id "
            "breaks ties. With a cursor, omit it or repeat the cursor's order. `last_name` "
            "orders the lower-cased last name by code point, not by a language's rules "
            "(`zola` before `Ängström`)."
        },
    )
    cursor = ma.fields.String(
        validate=ma.validate.Length(min=1, max=MAX_TOKEN_LENGTH),
        metadata={"description": "Opaque `next_cursor` of the previous page."},
    )
    email = CanonicalEmail(
        metadata={
            "description": "Contacts having this email address (any of their emails, "
            "case-insensitive).",
            "format": "email",
            "minLength": 1,
        }
    )
    tag = ma.fields.List(
        Tag(metadata={"minLength": 1, "maxLength": limits.TAG_MAX, "pattern": VISIBLE_TEXT}),
        validate=ma.validate.Length(max=limits.TAGS_MAX_ITEMS),
        metadata={
            "description": "Contacts having this tag; repeat for all of several tags (at most "
            f"{limits.TAGS_MAX_ITEMS})."
        },
    )
    q = SearchText(
        metadata={
            "description": "Case-insensitive prefix of the first name, last name or primary "
            "email; `%` and `_` match themselves. Not blank (nor only characters that draw "
            "nothing, such as U+200B), no control character.",
            "minLength": 1,
            "maxLength": Q_MAX_LENGTH,
            "pattern": VISIBLE_TEXT,
        }
    )
    # The query parameter is named `fields`, like marshmallow's own attribute (the instance
    # attribute marshmallow sets wins; the declared field still loads `?fields=`).
    fields = _field_mask()  # type: ignore[assignment]


class EmailEntrySchema(ma.Schema):
    value = ma.fields.String()
    type = ma.fields.String()
    primary = ma.fields.Boolean()


class AddressSchema(ma.Schema):
    type = ma.fields.String()
    street = ma.fields.String(allow_none=True)
    city = ma.fields.String(allow_none=True)
    region = ma.fields.String(allow_none=True)
    postal_code = ma.fields.String(allow_none=True)
    country = ma.fields.String(allow_none=True, metadata={"description": "ISO 3166-1 alpha-2."})


class ContactSchema(ma.Schema):
    """A contact (``contacts_domain.resource.contact_resource``)."""

    id = ma.fields.UUID()
    version = ma.fields.Integer(metadata={"description": 'Also the ETag: `"<version>"`.'})
    first_name = ma.fields.String(allow_none=True)
    last_name = ma.fields.String(allow_none=True)
    email = ma.fields.String(allow_none=True, metadata={"description": "Primary email."})
    phone = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Primary phone: E.164, then `;ext=` and the extension's digits when "
            "it has one (`+12025550100;ext=5`)."
        },
    )
    emails = ma.fields.List(ma.fields.Nested(EmailEntrySchema))
    phones = ma.fields.List(ma.fields.Nested(EmailEntrySchema))
    company = ma.fields.String(allow_none=True)
    job_title = ma.fields.String(allow_none=True)
    addresses = ma.fields.List(ma.fields.Nested(AddressSchema))
    birthday = ma.fields.Date(allow_none=True)
    notes = ma.fields.String(allow_none=True)
    tags = ma.fields.List(ma.fields.String())
    created_at = ma.fields.String(metadata={"description": "RFC 3339, UTC, microseconds."})
    updated_at = ma.fields.String(allow_none=True)


class ContactPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ContactSchema))
    next_cursor = ma.fields.String(
        allow_none=True, metadata={"description": "Cursor of the next page; null on the last."}
    )


class OperationSchema(ma.Schema):
    """Status of an accepted command (docs/architecture.md §5.6)."""

    operation_id = ma.fields.UUID()
    contact_id = ma.fields.UUID()
    status = ma.fields.String(validate=ma.validate.OneOf(("pending", "applied", "rejected")))
    reason = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Why it was rejected: `email_conflict`, `version_mismatch`, "
            "`not_found`, `name_required`."
        },
    )
    version = ma.fields.Integer(
        allow_none=True, metadata={"description": "Contact version after the operation."}
    )
    result = ma.fields.String(
        allow_none=True,
        validate=ma.validate.OneOf(("created", "updated")),
        metadata={
            "description": "What an applied upsert did (`created` or `updated`); null for "
            "other operations."
        },
    )


class ChangesArgsSchema(StrictSchema):
    """Query string of ``GET /v1/contacts/changes``."""

    since = ma.fields.String(
        validate=ma.validate.Length(min=1, max=change_feed.MAX_TOKEN_LENGTH),
        metadata={"description": "`next_token` of the previous call; omit it to start now."},
    )
    limit = ma.fields.Integer(
        load_default=change_feed.DEFAULT_LIMIT,
        validate=ma.validate.Range(min=1, max=change_feed.MAX_LIMIT),
        metadata={
            "description": f"Most changes per page, 1–{change_feed.MAX_LIMIT} "
            f"(default {change_feed.DEFAULT_LIMIT})."
        },
    )


class ChangeSchema(ma.Schema):
    """One new version of one contact."""

    id = ma.fields.UUID()
    version = ma.fields.Integer()
    deleted = ma.fields.Boolean()
    contact = ma.fields.Nested(
        ContactSchema,
        allow_none=True,
        metadata={
            "description": "The contact now (absent for a deletion); null when a later item "
            "supersedes this version."
        },
    )


class ChangePageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ChangeSchema))
    next_token = ma.fields.String(metadata={"description": "Resume after this page with it."})
    has_more = ma.fields.Boolean(
        metadata={"description": "More changes are readable now: call again at once."}
    )


class ExportArgsSchema(StrictSchema):
    """Query string of ``GET /v1/contacts/export``: the list's filters and a format."""

    format = ma.fields.String(
        load_default="vcard",
        validate=ma.validate.OneOf(("vcard", "csv")),
        metadata={"description": "`vcard` (vCard 4.0, default) or `csv` (Google Contacts)."},
    )
    email = ListArgsSchema._declared_fields["email"]
    tag = ListArgsSchema._declared_fields["tag"]
    q = ListArgsSchema._declared_fields["q"]


class ImportProblemSchema(ma.Schema):
    """Why one record of an import was not queued, or what was dropped from one that was
    (``contacts_domain.imports.ImportProblem``)."""

    position = ma.fields.Integer(
        metadata={"description": "The card's number (vCard, from 1) or the CSV line of the row."}
    )
    line = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "The file's line where the record starts, when known."},
    )
    field = ma.fields.String(
        metadata={"description": "Contact field path (`emails.0.value`), `_card` for the record."}
    )
    message = ma.fields.String(
        metadata={
            "description": "What is wrong and, for a warning, what was dropped (never the "
            "value itself)."
        }
    )


class ImportStatusSchema(ma.Schema):
    """An import's report (from the command API) and its records' outcomes (from the worker)."""

    id = ma.fields.UUID()
    format = ma.fields.String(validate=ma.validate.OneOf(FORMATS))
    state = ma.fields.String(
        validate=ma.validate.OneOf(SHOWN_STATES),
        metadata={
            "description": "Whether the valid records reached the queue (read it with "
            "`status`). `queuing`: the command API is still queuing them (after its 202). "
            "`queued`: every valid record was queued. `failed`: the queue stopped "
            "taking them part-way: `failed` counts the records left out, which will never be "
            "applied; send the same file again with the same `Idempotency-Key` to queue the "
            "rest (without a key, a retry queues every record again). `interrupted`: the "
            "server queuing them stopped before it was done, so some may never be queued "
            "(`status` stays `pending`); send the same file again with the same "
            "`Idempotency-Key`."
        },
    )
    status = ma.fields.String(
        validate=ma.validate.OneOf(("pending", "completed")),
        metadata={
            "description": "Whether the worker has processed what was queued: `completed` "
            "once every accepted record is applied, rejected or dead-lettered. It does not say "
            "that the whole file was imported: a `failed` import (`state`) reaches "
            "`completed` once its queued records are applied, while `failed` > 0 records "
            "were never queued."
        },
    )
    received = ma.fields.Integer(
        metadata={"description": "Records in the file: `accepted` + `invalid` + `failed`."}
    )
    accepted = ma.fields.Integer(metadata={"description": "Valid records queued."})
    invalid = ma.fields.Integer(metadata={"description": "Records refused (see `errors`)."})
    failed = ma.fields.Integer(
        metadata={
            "description": "Valid records not known to be queued. A send whose answer was lost "
            "may have queued some of them, so `applied` can exceed `accepted`."
        }
    )
    applied = ma.fields.Integer(metadata={"description": "Accepted records written."})
    rejected = ma.fields.Integer(
        metadata={"description": "Accepted records the worker rejected (`rejected_reasons`)."}
    )
    dead_lettered = ma.fields.Integer(
        metadata={
            "description": "Accepted records the worker gave up on after its retries: in the "
            "dead-letter queue until an operator sends them back (`contact-worker-admin dlq "
            "redrive`) or drops them."
        }
    )
    pending = ma.fields.Integer(
        metadata={
            "description": "Accepted records not processed yet: accepted − applied − rejected "
            "− dead_lettered."
        }
    )
    rejected_reasons = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        metadata={"description": "Rejected records per reason (`email_conflict`, ...)."},
    )
    created_at = ma.fields.String(
        metadata={"description": "When the upload was received (RFC 3339, UTC)."}
    )
    errors = ma.fields.List(
        ma.fields.Nested(ImportProblemSchema),
        metadata={
            "description": "Why each invalid record was refused, in file order (at most "
            "`IMPORT_ERRORS_MAX`, 1,000)."
        },
    )
    errors_truncated = ma.fields.Boolean(
        metadata={"description": "`errors` lists only the first problems."}
    )
    repaired = ma.fields.Integer(
        metadata={
            "description": "Valid records imported with at least one warning (of `accepted` + "
            "`failed`): a value that breaks a rule was dropped (an invalid email, phone "
            "number, birthday...) or the record was repaired (extra entries cut, a guessed "
            "charset)."
        }
    )
    warnings = ma.fields.List(
        ma.fields.Nested(ImportProblemSchema),
        metadata={
            "description": "What was dropped from or repaired in each valid record, in file "
            "order (at most `IMPORT_ERRORS_MAX`, 1,000, counted apart from `errors`). An "
            "import reported before warnings were recorded shows none (and `repaired` 0)."
        },
    )
    warnings_truncated = ma.fields.Boolean(
        metadata={"description": "`warnings` lists only the first warnings."}
    )


@dataclass(frozen=True)
class Endpoint:
    """The OpenAPI description of one ``GET`` route: ``arguments`` parses its query string;
    the success response has ``status``, body ``schema`` (``None``: described by
    ``description`` and ``content_type`` alone) and ``headers`` (OpenAPI header objects by
    name); ``alt_responses`` maps every other status it answers to its description, in the
    order the document lists them."""

    arguments: type[ma.Schema]
    schema: type[ma.Schema] | None = None
    status: int = 200
    description: str | None = None
    content_type: str | None = None
    headers: Mapping[str, Any] | None = None
    alt_responses: Mapping[int, str] = field(default_factory=dict)


DATABASE_UNAVAILABLE = "The database is unavailable; retry after `Retry-After`."

GET_CONTACT = Endpoint(
    GetArgsSchema,
    ContactSchema,
    headers={
        "ETag": {"description": '`"<version>"`', "schema": {"type": "string"}},
        "X-Cache": {
            "description": "`hit`, `miss` or `bypass` (Redis unavailable).",
            "schema": {"type": "string"},
        },
    },
    alt_responses={
        304: "Not modified: `If-None-Match` matched the ETag.",
        404: "Unknown, deleted or malformed id.",
        503: DATABASE_UNAVAILABLE,
    },
)
LIST_CONTACTS = Endpoint(
    ListArgsSchema,
    ContactPageSchema,
    headers={
        "Link": {
            "description": '`<url>; rel="next"` when there is a next page.',
            "schema": {"type": "string"},
        },
    },
    alt_responses={
        400: "Bad limit, sort, filter or cursor; unknown parameter.",
        503: DATABASE_UNAVAILABLE,
    },
)
LIST_CHANGES = Endpoint(
    ChangesArgsSchema,
    ChangePageSchema,
    alt_responses={
        400: "Bad limit or token; unknown parameter.",
        410: "The token is too old (changes after it were purged) or ahead of the feed (the "
        "database was restored from a backup): list the contacts again, then take a new token.",
        503: DATABASE_UNAVAILABLE,
    },
)
EXPORT_CONTACTS = Endpoint(
    ExportArgsSchema,
    description="The contacts, streamed.",
    content_type="text/vcard",
    alt_responses={
        400: "Bad format or filter; unknown parameter.",
        503: "The database is unavailable, or the server is streaming as many exports as it "
        "may (`urn:contacts:problem:exports-busy`); retry after `Retry-After`.",
    },
)
GET_OPERATION = Endpoint(
    NoArgsSchema,
    OperationSchema,
    alt_responses={
        404: "Unknown, expired or malformed operation id.",
        503: "The database is unavailable, or Redis is and the worker has not recorded an "
        "outcome yet (the operation may be pending); retry after `Retry-After`.",
    },
)
GET_IMPORT = Endpoint(
    NoArgsSchema,
    ImportStatusSchema,
    alt_responses={
        404: "Unknown or malformed import id, or a report older than "
        f"{REPORT_TTL_DAYS} days (expired).",
        503: "Redis (the reports) or the database (the outcomes) is unavailable; retry "
        "after `Retry-After`.",
    },
)
