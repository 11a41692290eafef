"""The API key of this test session, and what tests need to send it.

One key is generated per test session (per pytest process); the services only ever get its
SHA-256 hash (``AUTH_ENV``, ``TEST_AUTH``), as in production. In-process apps get the header
through ``AuthorizedClient`` (a Flask test client that sends it on every request); processes
through ``AUTH_HEADERS`` or ``api_session()``.

Rate limits in tests: functional tests make far more requests than a person would (the fuzzer
makes thousands a minute), so ``AUTH_ENV`` and ``TEST_AUTH`` raise the default limit and the
limit of each workspace (every test writes to ``default``) and the limit of refused tokens
per client address (``AUTH_FAILURE_LIMIT``: every test's 401s come from
127.0.0.1); tests of the limits set their own.
"""

from __future__ import annotations

from typing import Any, Final

import requests
from flask.testing import FlaskClient

from contacts_http.auth import (
    AuthSettings,
    InvalidToken,
    Principal,
    format_api_key_hashes,
    hash_api_key,
    new_api_key,
)
from contacts_http.auth import scopes as scope_names

TEST_API_KEY: Final = new_api_key()
AUTH_HEADERS: Final = {"Authorization": f"Bearer {TEST_API_KEY}"}
#: A limit no functional test reaches (per route and caller, or per address for refusals).
GENEROUS_LIMIT: Final = "100000/minute"
TEST_AUTH: Final = AuthSettings(
    api_keys=((hash_api_key(TEST_API_KEY), scope_names.ALL),), failure_limit=GENEROUS_LIMIT
)
#: Environment of a service process: the key's hash, with every scope, and generous limits.
AUTH_ENV: Final = {
    "AUTH_API_KEY_HASHES": format_api_key_hashes({hash_api_key(TEST_API_KEY): scope_names.ALL}),
    "RATE_LIMIT_DEFAULT": GENEROUS_LIMIT,
    "RATE_LIMIT_WORKSPACE_DEFAULT": GENEROUS_LIMIT,
    "AUTH_FAILURE_LIMIT": GENEROUS_LIMIT,
}


class AuthorizedClient(FlaskClient):
    """A Flask test client that sends the session's API key with every request (set it as an
    app's ``test_client_class``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.environ_base["HTTP_AUTHORIZATION"] = AUTH_HEADERS["Authorization"]


def api_session() -> requests.Session:
    """A ``requests`` session that sends the session's API key."""
    session = requests.Session()
    session.headers.update(AUTH_HEADERS)
    return session


def authorized(app: Any) -> Any:
    """``app`` (a Flask app), its test clients made ``AuthorizedClient``s; returns it."""
    app.test_client_class = AuthorizedClient
    return app


class _Api:
    """``requests``' one-call functions (``get``, ``post``, ...), each sending the session's
    API key: ``api.get(url, timeout=5)``. Headers a call passes are added to it. No session is
    shared, so threads may call it freely."""

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = {**AUTH_HEADERS, **(kwargs.pop("headers", None) or {})}
        return requests.request(method, url, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", url, **kwargs)


api: Final = _Api()


class CountingAuthenticator:
    """A fake of our own ``Authenticator`` port: accepts ``good`` (with every scope) and
    refuses any other token, or raises ``error`` for every token; counts its calls in
    ``calls``, to show which requests reached it."""

    def __init__(self, good: str, error: Exception | None = None) -> None:
        self.good = good
        self.error = error
        self.calls = 0

    def authenticate(self, token: str) -> Principal:
        """See ``Authenticator.authenticate``."""
        self.calls += 1
        if self.error is not None:
            raise self.error
        if token != self.good:
            raise InvalidToken("Unknown API key.")
        return Principal("fake:good", scope_names.ALL, "fake:good")
