"""Authentication settings both APIs read from the environment (names in docs/contracts.md).

- ``AUTH_DISABLED``: ``true`` turns authentication off (every route open); the app logs a
  warning at start-up. Default ``false``.
- ``AUTH_API_KEY_HASHES``: the accepted API keys as SHA-256 hex digests with their scopes,
  ``<sha256hex>=<scope>,<scope>;<sha256hex>=<scope>`` (``;`` between keys, ``,`` between
  scopes; spaces ignored). ``python -m contacts_http.auth.keygen new`` makes a key and prints
  its entry. Default: none.
- ``AUTH_JWKS_URL``: the identity provider's JWK Set URL; set it to accept JWTs. With it,
  ``AUTH_JWT_ISSUER`` and ``AUTH_JWT_AUDIENCE`` are required.
- ``AUTH_JWT_ALGORITHMS`` (``RS256,ES256``), ``AUTH_JWT_LEEWAY_S`` (30),
  ``AUTH_JWKS_TIMEOUT_S`` (2), ``AUTH_JWKS_CACHE_S`` (300): see ``JwtSettings``.

With neither API keys nor a JWKS URL and authentication on, every request is refused (401):
authentication fails closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from contacts_http.auth.api_keys import DIGEST_HEX_LENGTH, ApiKeyAuthenticator
from contacts_http.auth.bearer import BearerAuthenticator
from contacts_http.auth.jwt_tokens import SUPPORTED_ALGORITHMS, JwtAuthenticator, JwtSettings
from contacts_http.env import (
    ConfigError,
    read_bool,
    read_list,
    read_not_negative,
    read_positive,
    read_text,
)


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """``disabled``; ``api_keys``: (SHA-256 hex digest, scopes) pairs; ``jwt``: ``None`` when
    JWTs are not accepted."""

    disabled: bool = False
    api_keys: tuple[tuple[str, frozenset[str]], ...] = ()
    jwt: JwtSettings | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AuthSettings:
        """Read the ``AUTH_*`` variables. Raises ``ConfigError`` naming a malformed one."""
        jwt_settings = None
        jwks_url = read_text(environ, "AUTH_JWKS_URL")
        if jwks_url:
            issuer = read_text(environ, "AUTH_JWT_ISSUER")
            audience = read_text(environ, "AUTH_JWT_AUDIENCE")
            if not issuer or not audience:
                raise ConfigError("AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE are required with JWKS.")
            algorithms = frozenset(read_list(environ, "AUTH_JWT_ALGORITHMS")) or frozenset(
                SUPPORTED_ALGORITHMS
            )
            if not algorithms <= SUPPORTED_ALGORITHMS:
                raise ConfigError(
                    f"AUTH_JWT_ALGORITHMS must be among {sorted(SUPPORTED_ALGORITHMS)}."
                )
            defaults = JwtSettings(jwks_url, issuer, audience)
            jwt_settings = JwtSettings(
                jwks_url=jwks_url,
                issuer=issuer,
                audience=audience,
                algorithms=algorithms,
                leeway_s=read_not_negative(environ, "AUTH_JWT_LEEWAY_S", defaults.leeway_s),
                jwks_timeout_s=read_positive(
                    environ, "AUTH_JWKS_TIMEOUT_S", defaults.jwks_timeout_s
                ),
                jwks_cache_s=read_positive(environ, "AUTH_JWKS_CACHE_S", defaults.jwks_cache_s),
            )
        return cls(
            disabled=read_bool(environ, "AUTH_DISABLED", False),
            api_keys=parse_api_key_hashes(environ.get("AUTH_API_KEY_HASHES", "")),
            jwt=jwt_settings,
        )


def parse_api_key_hashes(raw: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """Parse ``<sha256hex>=<scope>,<scope>;...`` into (lower-case digest, scopes) pairs.

    Raises ``ConfigError`` (naming ``AUTH_API_KEY_HASHES``, never echoing a digest) for an entry
    without ``=``, a digest that is not 64 hex digits, a key without scopes, or a digest given
    twice.
    """
    entries: dict[str, frozenset[str]] = {}
    for position, entry in enumerate((e for e in raw.split(";") if e.strip()), start=1):
        digest, separator, scopes = entry.partition("=")
        digest = digest.strip().lower()
        names = frozenset(s.strip() for s in scopes.split(",") if s.strip())
        if not separator or not names:
            raise ConfigError(f"AUTH_API_KEY_HASHES entry {position}: want <sha256hex>=<scopes>.")
        if len(digest) != DIGEST_HEX_LENGTH or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(f"AUTH_API_KEY_HASHES entry {position}: not a SHA-256 hex digest.")
        if digest in entries:
            raise ConfigError(f"AUTH_API_KEY_HASHES entry {position}: the same key twice.")
        entries[digest] = names
    return tuple(entries.items())


def format_api_key_hashes(entries: Mapping[str, frozenset[str] | set[str]]) -> str:
    """The ``AUTH_API_KEY_HASHES`` value for ``entries`` (digest → scopes); inverse of
    ``parse_api_key_hashes``."""
    return ";".join(f"{digest}={','.join(sorted(scopes))}" for digest, scopes in entries.items())


def build_authenticator(settings: AuthSettings) -> BearerAuthenticator:
    """The authenticator for ``settings`` (API keys and/or JWTs; neither: refuses everything).

    Builds the JWKS client but fetches nothing."""
    api_keys = ApiKeyAuthenticator(dict(settings.api_keys)) if settings.api_keys else None
    jwts = JwtAuthenticator(settings.jwt) if settings.jwt is not None else None
    return BearerAuthenticator(api_keys, jwts)
