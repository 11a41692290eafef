"""Rotating ``QUERY_TOKEN_SECRET`` on real PostgreSQL and Redis (docs/architecture.md §10; README,
"Rotating QUERY_TOKEN_SECRET"): a list cursor and a change token given out by an app keyed with
secret A are accepted by an app keyed with B that keeps A as ``QUERY_TOKEN_PREVIOUS_SECRET``,
and refused as today (400 problem naming the parameter) by an app keyed with B alone.

Both are taken in the session's second workspace: a change token of ``default`` carries no
digest, so no secret refuses it.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask.testing import FlaskClient

from query_api.service_layer import change_feed, cursor
from query_api.settings import Settings

SECRET_A = "secret-A-of-the-query-api-32-characters"
SECRET_B = "secret-B-of-the-query-api-32-characters"


def _client(make_app: Any, settings: Settings, secret: str, previous: str = "") -> FlaskClient:
    update = {"token_secret": secret, "token_previous_secret": previous}
    return make_app(settings.model_copy(update=update)).test_client()


def _refused(response: Any, parameter: str, detail: str) -> None:
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"] == {parameter: [detail]}


def test_a_cursor_and_a_change_token_of_secret_a_are_accepted_with_a_as_the_previous_secret(
    make_app, settings, seed, other_workspace
):
    other, headers = other_workspace
    tag = f"rot-{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        seed.contact(tags=[tag], workspace=other)
    issuer = _client(make_app, settings, SECRET_A)
    rotated = _client(make_app, settings, SECRET_B, previous=SECRET_A)
    replaced = _client(make_app, settings, SECRET_B)

    listing = f"/v1/contacts?limit=1&tag={tag}"
    first = issuer.get(listing, headers=headers).get_json()
    token = issuer.get("/v1/contacts/changes", headers=headers).get_json()["next_token"]

    # Secret B, previous A: the old cursor resumes where it stood and the next one is B's.
    resumed = rotated.get(f"{listing}&cursor={first['next_cursor']}", headers=headers)
    assert resumed.status_code == 200, resumed.get_json()
    expected = issuer.get(f"{listing}&cursor={first['next_cursor']}", headers=headers)
    assert resumed.get_json()["items"] == expected.get_json()["items"] != first["items"]
    next_cursor = resumed.get_json()["next_cursor"]
    assert replaced.get(f"{listing}&cursor={next_cursor}", headers=headers).status_code == 200
    followed = rotated.get(f"/v1/contacts/changes?since={token}", headers=headers)
    assert followed.status_code == 200, followed.get_json()
    next_token = followed.get_json()["next_token"]
    onward = replaced.get(f"/v1/contacts/changes?since={next_token}", headers=headers)
    assert onward.status_code == 200

    # Secret B alone: what A signed is refused exactly as before rotations existed.
    _refused(
        replaced.get(f"{listing}&cursor={first['next_cursor']}", headers=headers),
        "cursor",
        cursor.INVALID,
    )
    _refused(
        replaced.get(f"/v1/contacts/changes?since={token}", headers=headers),
        "since",
        change_feed.INVALID,
    )
