"""Who is calling: the ``Principal`` an ``Authenticator`` returns for a bearer token, and the
errors it raises. The port that ``ApiKeyAuthenticator`` and ``JwtAuthenticator`` implement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from contacts_domain.workspaces import DEFAULT_WORKSPACE


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    ``subject`` names it without revealing a secret (``key:<first 12 hex digits of the key's
    SHA-256>`` or ``jwt:<sub>``), safe to log; ``scopes`` are what it may do; ``rate_limit_key``
    identifies it for rate limits (the whole key hash, or issuer and subject of a JWT).
    ``workspace`` is the workspace its identity is bound to (docs/architecture.md §10): an API
    key's configured one, a JWT's claim; ``None`` when a JWT lacks the configured claim (the
    guard then refuses it with 403).
    """

    subject: str
    scopes: frozenset[str]
    rate_limit_key: str
    workspace: str | None = DEFAULT_WORKSPACE


class InvalidToken(Exception):
    """The bearer token is unknown, malformed, expired, not yet valid, or for another issuer or
    audience: 401 with ``error="invalid_token"`` (RFC 6750 §3.1). The message is safe to show
    to the client (it never echoes the token)."""


class AuthUnavailable(Exception):
    """The token cannot be checked right now (the JWKS endpoint did not answer within its
    timeout): 503 with ``Retry-After``, never a 401 that would make a client drop a good token."""


class Authenticator(Protocol):
    """Turns a bearer token into a ``Principal``."""

    def authenticate(self, token: str) -> Principal:
        """Return the caller ``token`` identifies.

        Raises ``InvalidToken`` when the token is not accepted, ``AuthUnavailable`` when it
        cannot be checked now.
        """
        ...
