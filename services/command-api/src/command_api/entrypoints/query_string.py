"""The write routes take no query parameters: one sent is a 400 naming it.

A client that sends ``POST /v1/contacts?dry_run=1`` expects something of the parameter; the
write would be queued anyway, so ignoring it silently would answer a question nobody asked.
The query API refuses unknown parameters the same way (``query_api.entrypoints.arguments``).
"""

from __future__ import annotations

from typing import Final

from flask import request

from contacts_http import ProblemError
from contacts_http.problems import VALIDATION_PROBLEM

UNKNOWN: Final = "Unknown parameter: the write API takes no query parameters."


def refuse_query_parameters() -> None:
    """A blueprint's ``before_request`` (after authentication and rate limits, which the app
    runs first): raises ``ProblemError`` 400 whose ``errors`` names every query parameter of
    the request, if it has any."""
    if request.args:
        raise ProblemError(
            400,
            "The write API takes no query parameters.",
            type_uri=VALIDATION_PROBLEM,
            errors={name: [UNKNOWN] for name in request.args},
        )
