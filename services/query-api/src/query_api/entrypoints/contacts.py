"""``GET|HEAD /v1/contacts/{id}`` and ``GET /v1/contacts``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, request

from contacts_domain.resource import etag
from contacts_http import VALIDATION_PROBLEM, abort_problem, problem_response
from contacts_http.auth import request_workspace
from contacts_http.rate_limits import RateCounter, inline_rate_limits
from query_api.entrypoints import schemas
from query_api.entrypoints.arguments import QueryBlueprint
from query_api.entrypoints.conditional import none_match
from query_api.entrypoints.context import canonical_uuid, current
from query_api.entrypoints.fast_get import PRECOMPUTED, Precomputed
from query_api.service_layer import cursor, handlers, representation
from query_api.service_layer.listing import DEFAULT_SORT, ListFilters, ListRequest, Sort

JSON = "application/json"
#: Contacts are personal data: no shared cache may store them, and a client revalidates with
#: its ETag (a cheap 304) before reusing one.
CONTACT_CACHE_CONTROL = "private, no-cache"
#: Pages change with every write and carry no validator.
LIST_CACHE_CONTROL = "private, no-store"
NOT_FOUND_DETAIL = "No contact has this id."


def contacts_blueprint() -> QueryBlueprint:
    """Build the contacts blueprint (a new one per app) with its views."""
    blp = QueryBlueprint(
        "contacts", __name__, url_prefix="/v1/contacts", description="Read contacts."
    )
    blp.add_view("/<contact_id>", get_contact, schemas.GET_CONTACT, plain_without_query=True)
    blp.add_view("", list_contacts, schemas.LIST_CONTACTS)
    return blp


def get_contact(args: dict[str, Any], contact_id: str) -> Response:
    """Get a contact (also HEAD).

    Served from the cache when it can, else from the database. `If-None-Match` (a list of
    ETags or `*`, weak comparison) answers 304 when the version is unchanged. `fields`
    returns only the members named (the ETag is the version's either way).
    """
    # The caller's rate limits count in the same Redis call as the cache read.
    limits = inline_rate_limits()
    counters = limits.counters() if limits is not None else []
    canonical = canonical_uuid(contact_id)
    if canonical is None:
        if limits is not None:
            limits.count(counters)
        return problem_response(404, NOT_FOUND_DETAIL)
    lookup = _lookup(canonical, counters)
    if limits is not None:
        limits.settle(counters, lookup.counts)
    if lookup.body is None or lookup.version is None:
        return problem_response(404, NOT_FOUND_DETAIL, headers={"X-Cache": lookup.cache})
    headers = {
        "ETag": etag(lookup.version),
        "Cache-Control": CONTACT_CACHE_CONTROL,
        "X-Cache": lookup.cache,
    }
    if none_match(request.headers.get("If-None-Match"), str(lookup.version)):
        return Response(status=304, headers=headers)
    body = lookup.body
    if "fields" in args:
        body = representation.sparse_bytes(body, args["fields"])
    return Response(body, status=200, mimetype=JSON, headers=headers)


def _lookup(canonical: str, counters: list[RateCounter]) -> handlers.ContactLookup:
    """``handlers.get_contact`` for the request, or the outcome the WSGI fast path already got
    for it (``fast_get.PRECOMPUTED``: read and counted once; its error raised here)."""
    precomputed: Precomputed | None = request.environ.pop(PRECOMPUTED, None)
    if precomputed is not None:
        if precomputed.error is not None:
            raise precomputed.error
        assert precomputed.lookup is not None
        return precomputed.lookup
    ports = current().ports
    return handlers.get_contact(
        request_workspace(),
        canonical,
        contacts=ports.contacts,
        cache=ports.cache,
        counters=counters,
        owed=ports.owed,
    )


def list_contacts(args: dict[str, Any]) -> Response:
    """List, filter and search contacts, one page at a time.

    Keyset pagination: follow `next_cursor` (or the `Link` header) with the same filters;
    pages neither repeat nor skip contacts, ties in the sort key being broken by id.
    `fields` returns only the members named of each contact.
    """
    workspace = request_workspace()
    list_request = _list_request(workspace, args)
    context = current()
    page = handlers.list_contacts(
        workspace, list_request, contacts=context.ports.contacts, key=context.token_key
    )
    items = page.items
    if "fields" in args:
        items = [representation.sparse(item, args["fields"]) for item in items]
    body = representation.encode({"items": items, "next_cursor": page.next_cursor})
    response = Response(body, status=200, mimetype=JSON)
    response.headers["Cache-Control"] = LIST_CACHE_CONTROL
    if page.next_cursor is not None:
        response.headers["Link"] = f'<{_next_url(page.next_cursor)}>; rel="next"'
    return response


def list_filters(args: dict[str, Any]) -> ListFilters:
    """The ``email``/``tag``/``q`` filters of validated list or export arguments."""
    return ListFilters(
        email_key=args.get("email"), tags=tuple(args.get("tag") or ()), q=args.get("q")
    )


def _list_request(workspace: str, args: dict[str, Any]) -> ListRequest:
    filters = list_filters(args)
    requested = Sort.parse(args["sort"]) if "sort" in args else None
    if "cursor" not in args:
        return ListRequest(requested or Sort.parse(DEFAULT_SORT), filters, args["limit"])
    try:
        sort, after = cursor.decode(
            args["cursor"], workspace, filters, requested, key=current().token_key
        )
    except cursor.InvalidCursor as exc:
        abort_problem(400, str(exc), type_uri=VALIDATION_PROBLEM, errors={"cursor": [str(exc)]})
    return ListRequest(sort, filters, args["limit"], after)


def _next_url(next_cursor: str) -> str:
    # The same query with the new cursor, as a relative reference (RFC 8288 §3.1) so it stays
    # right behind any proxy.
    pairs = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
    pairs.append(("cursor", next_cursor))
    return f"{request.path}?{urlencode(pairs)}"
