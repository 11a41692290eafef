"""JWT bearer tokens (RFC 7519) signed by an identity provider, verified against its JWKS.

Rules, in the order they are checked:

- the token's header names an allowed algorithm (``RS256`` or ``ES256`` only: no ``none``, no
  HMAC, so a public key can never be used as an HMAC secret) and, through ``kid``, a key of the
  provider's JWK Set (RFC 7517), fetched from ``jwks_url`` with a timeout and cached;
- the signature verifies with that key;
- ``exp`` is in the future, ``nbf`` (when present) in the past, each with ``leeway_s`` seconds of
  tolerance for clock skew (RFC 7519 §4.1.4, §4.1.5); ``iss`` equals ``issuer`` and ``aud``
  contains ``audience`` (§4.1.1, §4.1.3); ``exp``, ``iss``, ``aud`` and ``sub`` are required;
- scopes come from ``scope`` (a space-separated string, RFC 8693 §4.2 / RFC 9068 §2.2.3) or
  ``scp`` (a list, or a space-separated string, as some providers issue it).

A JWK Set that cannot be fetched raises ``AuthUnavailable`` (the API answers 503), never
``InvalidToken``: a provider outage must not look like a revoked token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import jwt
from jwt import PyJWKClient
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWKClientConnectionError,
    PyJWTError,
)

from contacts_domain.workspaces import DEFAULT_WORKSPACE, workspace_of_identity
from contacts_http.auth.principal import AuthUnavailable, InvalidToken, Principal

#: Asymmetric algorithms only (RFC 8725 §3.1: never let the token pick a weaker one).
SUPPORTED_ALGORITHMS: Final = frozenset({"RS256", "ES256"})
REQUIRED_CLAIMS: Final = ("exp", "iss", "aud", "sub")

_MESSAGES: Final = (
    (ExpiredSignatureError, "The token has expired."),
    (ImmatureSignatureError, "The token is not valid yet (nbf)."),
    (InvalidAudienceError, "The token is for another audience."),
    (InvalidIssuerError, "The token is from another issuer."),
    (InvalidSignatureError, "The token's signature does not verify."),
    (MissingRequiredClaimError, "The token lacks a required claim (exp, iss, aud, sub)."),
)


@dataclass(frozen=True, slots=True)
class JwtSettings:
    """Where the keys are and what a token must say.

    ``jwks_url``: the provider's JWK Set URL; ``issuer``/``audience``: the exact ``iss`` and
    one ``aud`` value expected; ``algorithms``: a subset of ``SUPPORTED_ALGORITHMS``;
    ``leeway_s``: clock skew tolerated on ``exp``/``nbf`` (seconds); ``jwks_timeout_s``: bound on
    one JWKS fetch (seconds); ``jwks_cache_s``: how long a fetched JWK Set is reused (seconds).
    """

    jwks_url: str
    issuer: str
    audience: str
    algorithms: frozenset[str] = SUPPORTED_ALGORITHMS
    leeway_s: float = 30.0
    jwks_timeout_s: float = 2.0
    jwks_cache_s: float = 300.0
    #: The claim naming the caller's workspace (``org_id``; ``sub`` for a book per user); empty:
    #: every token belongs to ``default``.
    workspace_claim: str = ""


class JwtAuthenticator:
    """Verifies JWTs against a JWKS URL (``JwtSettings``). Builds its JWKS client at once but
    fetches nothing until the first token arrives."""

    def __init__(self, settings: JwtSettings) -> None:
        unsupported = set(settings.algorithms) - SUPPORTED_ALGORITHMS
        if unsupported or not settings.algorithms:
            raise ValueError(f"JWT algorithms must be among {sorted(SUPPORTED_ALGORITHMS)}")
        self._settings = settings
        self._jwks = PyJWKClient(
            settings.jwks_url,
            cache_jwk_set=True,
            lifespan=settings.jwks_cache_s,
            timeout=settings.jwks_timeout_s,
        )

    def authenticate(self, token: str) -> Principal:
        """Return the token's principal (``subject`` ``jwt:<sub>``, scopes from ``scope`` or
        ``scp``). Raises ``InvalidToken`` for any rule broken (see the module), and
        ``AuthUnavailable`` when the JWK Set cannot be fetched within ``jwks_timeout_s``."""
        s = self._settings
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except PyJWTError:
            raise InvalidToken("The token is not a JWT.") from None
        if algorithm not in s.algorithms:
            raise InvalidToken(f"The token's algorithm must be one of {sorted(s.algorithms)}.")
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_s,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except PyJWKClientConnectionError:
            raise AuthUnavailable("The identity provider's JWKS cannot be fetched.") from None
        except PyJWTError as exc:
            raise InvalidToken(_message(exc)) from None
        subject = str(claims["sub"])
        return Principal(
            subject=f"jwt:{subject}",
            scopes=scopes_of(claims),
            rate_limit_key=f"jwt:{claims['iss']}#{subject}",
            workspace=workspace_of(claims, s.workspace_claim),
        )


def workspace_of(claims: dict[str, Any], claim: str) -> str | None:
    """The workspace ``claims`` name in ``claim`` (``workspaces.workspace_of_identity``:
    a slug as is, any other text hashed to ``h-<hex>``); ``default`` when no claim is
    configured; ``None`` when the claim is configured but absent, empty or not a string or a
    number."""
    if not claim:
        return DEFAULT_WORKSPACE
    value = claims.get(claim)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return workspace_of_identity(str(value))


def scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    """Scopes granted by ``claims``: ``scope`` (space-separated) and ``scp`` (list or
    space-separated string), united; anything else is ignored."""
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, Iterable) and not isinstance(value, bytes | dict):
            found.update(item for item in value if isinstance(item, str))
    return frozenset(found)


def _message(error: PyJWTError) -> str:
    for kind, message in _MESSAGES:
        if isinstance(error, kind):
            return message
    return "The token is not valid."
