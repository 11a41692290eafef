"""The ``Authenticator`` the APIs use: API keys and JWTs behind one ``Authorization: Bearer``.

A token with two dots (``header.payload.signature``, RFC 7519 §3) goes to the JWT scheme when
one is configured; anything else to the API keys (a key from ``new_api_key`` has no dot).
"""

from __future__ import annotations

from contacts_http.auth.principal import Authenticator, InvalidToken, Principal


class BearerAuthenticator:
    """Routes a token to ``api_keys`` or ``jwts`` (either may be ``None``: scheme off).

    With neither configured every token is refused (``InvalidToken``): authentication fails
    closed.
    """

    def __init__(self, api_keys: Authenticator | None, jwts: Authenticator | None) -> None:
        self._api_keys = api_keys
        self._jwts = jwts

    @property
    def configured(self) -> bool:
        """Whether any scheme can accept a token."""
        return self._api_keys is not None or self._jwts is not None

    def authenticate(self, token: str) -> Principal:
        """See ``Authenticator.authenticate``."""
        if token.count(".") == 2 and self._jwts is not None:
            return self._jwts.authenticate(token)
        if self._api_keys is not None:
            return self._api_keys.authenticate(token)
        raise InvalidToken("The token is not accepted by this API.")
