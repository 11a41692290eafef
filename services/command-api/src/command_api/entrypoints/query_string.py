"""The write routes take no query parameters but the documented ones (``DOCUMENTED``: the
upsert's ``match_on``): another one, or one of them given twice, is a 400 naming it.

A client that sends ``POST /v1/contacts?dry_run=1`` expects something of the parameter; the
write would be queued anyway, so ignoring it silently would answer a question nobody asked.
The query API refuses unknown parameters the same way (``query_api.entrypoints.arguments``).
"""

from __future__ import annotations

from typing import Final

from flask import request

from contacts_http import ProblemError
from contacts_http.problems import VALIDATION_PROBLEM

UNKNOWN: Final = "Unknown parameter: this route takes no such query parameter."
GIVE_ONCE: Final = "Give this parameter once: it takes one value."
#: The query parameters a write route documents, by Flask endpoint (its view reads them).
DOCUMENTED: Final = {"contacts.Upsert": frozenset({"match_on"})}


def refuse_query_parameters() -> None:
    """A blueprint's ``before_request`` (after authentication and rate limits, which the app
    runs first): raises ``ProblemError`` 400 whose ``errors`` names every query parameter of
    the request that its route does not document (``DOCUMENTED``) or that comes twice."""
    documented = DOCUMENTED.get(request.endpoint or "", frozenset())
    errors = {
        name: [UNKNOWN if name not in documented else GIVE_ONCE]
        for name in request.args
        if name not in documented or len(request.args.getlist(name)) > 1
    }
    if errors:
        raise ProblemError(
            400,
            "A query parameter this route does not take, or takes once.",
            type_uri=VALIDATION_PROBLEM,
            errors=errors,
        )
