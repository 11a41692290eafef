"""``GET /v1/contacts/changes``: the change feed (``service_layer.change_feed``)."""

from __future__ import annotations

from typing import Any

from flask import Response

from contacts_http import VALIDATION_PROBLEM, abort_problem, problem_response
from contacts_http.auth import request_workspace
from query_api.entrypoints import schemas
from query_api.entrypoints.arguments import QueryBlueprint
from query_api.entrypoints.context import current
from query_api.service_layer import change_feed, representation
from query_api.service_layer.records import Change

JSON = "application/json"


def changes_blueprint() -> QueryBlueprint:
    """Build the change-feed blueprint (a new one per app) with its view."""
    blp = QueryBlueprint(
        "changes",
        __name__,
        url_prefix="/v1/contacts/changes",
        description="Keep a copy of the contacts in sync.",
    )
    blp.add_view("", list_changes, schemas.LIST_CHANGES)
    return blp


def list_changes(args: dict[str, Any]) -> Response:
    """Contacts created, updated or deleted since a token, in commit order.

    Call without `since` to get a token for "now", then call with `since=<next_token>`
    to get what changed after it; follow `next_token` while `has_more` is true, then poll
    with the last `next_token`. No change is skipped or repeated across pages, even while
    contacts are being written. Each item is one new version of one contact: a deletion is
    `{"id", "version", "deleted": true}`; otherwise `contact` is the contact as it is now,
    or null when a later item supersedes that version. Tokens stay valid for at least
    7 days (until the changes after them are purged); an older one gets 410: list the
    contacts again, then take a new token. So does a token ahead of the feed, which only a
    database restored from a backup taken before the token was issued can produce. The feed
    is the caller's workspace's; a token is valid only there (elsewhere it is a 400, like a
    malformed one).
    """
    try:
        context = current()
        page = change_feed.read_changes(
            request_workspace(),
            args.get("since"),
            args["limit"],
            feed=context.ports.changes,
            key=context.token_key,
        )
    except change_feed.InvalidToken as exc:
        abort_problem(400, str(exc), type_uri=VALIDATION_PROBLEM, errors={"since": [str(exc)]})
    except change_feed.TokenExpired as exc:
        return problem_response(410, str(exc))
    items = [_item(change) for change in page.changes]
    body = representation.encode(
        {"items": items, "next_token": page.next_token, "has_more": page.has_more}
    )
    response = Response(body, status=200, mimetype=JSON)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _item(change: Change) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": change.contact_id,
        "version": change.version,
        "deleted": change.deleted,
    }
    if not change.deleted:
        item["contact"] = (
            representation.resource(change.contact) if change.contact is not None else None
        )
    return item
