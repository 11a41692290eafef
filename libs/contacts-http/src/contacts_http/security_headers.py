"""Response headers every API answer carries (issue 7, item 7).

- ``X-Content-Type-Options: nosniff`` on every response, so a browser never second-guesses a
  JSON or problem body's media type (Fetch standard §3.5).
- ``Cache-Control: no-store`` on every response whose route set no policy of its own: answers
  to authenticated requests hold personal data and must not be stored by any cache (RFC 9111
  §5.2.2.5). A route with an ETag-based policy (the query API's ``private, no-cache``) keeps it.
- ``Vary: Authorization`` (when ``vary_on_authorization``): a response depends on who asked, so
  a private cache must not reuse one caller's answer for another's credentials (RFC 9110
  §12.5.5).
"""

from __future__ import annotations

from flask import Flask, Response

NOSNIFF = "nosniff"
NO_STORE = "no-store"


def init_security_headers(app: Flask, *, vary_on_authorization: bool) -> None:
    """Add the headers above to every response of ``app``."""

    def add(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = NOSNIFF
        response.headers.setdefault("Cache-Control", NO_STORE)
        if vary_on_authorization:
            response.vary.add("Authorization")
        return response

    app.after_request(add)
