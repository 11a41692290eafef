"""Authentication settings both APIs read from the environment (names in docs/contracts.md).

- ``AUTH_DISABLED``: ``true`` turns authentication off (every route open); the app logs a
  warning at start-up. Default ``false``.
- ``AUTH_API_KEY_HASHES``: the accepted API keys as SHA-256 hex digests with their workspace
  and scopes, ``<sha256hex>[@<workspace>]=<scope>,<scope>;...`` (``;`` between keys, ``,``
  between scopes; spaces ignored; a key without ``@<workspace>`` belongs to ``default``).
  ``python -m contacts_http.auth.keygen new [--workspace NAME]`` makes a key and prints its
  entry. Default: none.
- ``AUTH_JWKS_URL``: the identity provider's JWK Set URL; set it to accept JWTs. With it,
  ``AUTH_JWT_ISSUER`` and ``AUTH_JWT_AUDIENCE`` are required.
- ``AUTH_JWT_ALGORITHMS`` (``RS256,ES256``), ``AUTH_JWT_LEEWAY_S`` (30),
  ``AUTH_JWKS_TIMEOUT_S`` (2), ``AUTH_JWKS_CACHE_S`` (300): see ``JwtSettings``.
- ``AUTH_JWT_WORKSPACE_CLAIM`` (empty): the claim naming a JWT's workspace (``org_id``; ``sub``
  gives every end user a book of their own); a token without it is refused (403). Empty: every
  JWT belongs to ``default``.
- ``AUTH_FAILURE_LIMIT`` (``20/minute``): refused tokens allowed per client address (per
  process) before its tokens are answered 429 unchecked; ``AUTH_TRUSTED_PROXIES`` (empty):
  addresses or CIDR networks whose ``X-Forwarded-For`` is believed. See ``failure_limit``.

With neither API keys nor a JWKS URL and authentication on, every request is refused (401):
authentication fails closed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Annotated, Any, NamedTuple

import limits
from pydantic import Field, NonNegativeFloat, PositiveFloat, field_validator, model_validator
from pydantic_settings import NoDecode

from contacts_domain.workspaces import DEFAULT_WORKSPACE, is_workspace
from contacts_http.auth.api_keys import DIGEST_HEX_LENGTH, ApiKeyAuthenticator, ApiKeyGrant
from contacts_http.auth.bearer import BearerAuthenticator
from contacts_http.auth.failure_limit import DEFAULT_FAILURE_LIMIT
from contacts_http.auth.jwt_tokens import SUPPORTED_ALGORITHMS, JwtAuthenticator, JwtSettings
from contacts_infra.settings import SECRET, CommaList, EnvSettings, SettingsError


class ApiKeyEntry(NamedTuple):
    """One configured API key: the SHA-256 hex digest of the key, its scopes, its workspace."""

    digest: str
    scopes: frozenset[str]
    workspace: str = DEFAULT_WORKSPACE


ApiKeyEntries = tuple[ApiKeyEntry, ...]


class AuthSettings(EnvSettings):
    """``disabled``; ``api_keys``: (SHA-256 hex digest, scopes) pairs; ``jwt``: ``None`` when
    JWTs are not accepted, else built from the ``AUTH_JWKS_URL``/``AUTH_JWT_*`` variables;
    ``failure_limit`` (a limit in flask-limiter's notation) and ``trusted_proxies`` (addresses
    or CIDR networks) configure ``AuthFailureLimiter``.

    ``from_env`` raises ``SettingsError`` naming a malformed variable (never echoing a digest).
    """

    disabled: bool = Field(False, validation_alias="AUTH_DISABLED")
    api_keys: Annotated[ApiKeyEntries, NoDecode] = Field(
        (), validation_alias="AUTH_API_KEY_HASHES", json_schema_extra=SECRET
    )
    jwks_url: str = Field("", validation_alias="AUTH_JWKS_URL")
    jwt_issuer: str = Field("", validation_alias="AUTH_JWT_ISSUER")
    jwt_audience: str = Field("", validation_alias="AUTH_JWT_AUDIENCE")
    jwt_algorithms: CommaList = Field((), validation_alias="AUTH_JWT_ALGORITHMS")
    jwt_leeway_s: NonNegativeFloat = Field(30.0, validation_alias="AUTH_JWT_LEEWAY_S")
    jwks_timeout_s: PositiveFloat = Field(2.0, validation_alias="AUTH_JWKS_TIMEOUT_S")
    jwks_cache_s: PositiveFloat = Field(300.0, validation_alias="AUTH_JWKS_CACHE_S")
    jwt_workspace_claim: str = Field("", validation_alias="AUTH_JWT_WORKSPACE_CLAIM")
    failure_limit: str = Field(DEFAULT_FAILURE_LIMIT, validation_alias="AUTH_FAILURE_LIMIT")
    trusted_proxies: CommaList = Field((), validation_alias="AUTH_TRUSTED_PROXIES")

    @field_validator("failure_limit")
    @classmethod
    def _limit_parses(cls, value: str) -> str:
        try:
            limits.parse_many(value)
        except ValueError:
            raise ValueError("not a rate limit (e.g. 20/minute).") from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an address or a CIDR network.") from None
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, raw: Any) -> Any:
        return parse_api_key_hashes(raw) if isinstance(raw, str) else raw

    @model_validator(mode="after")
    def _jwt_variables_complete(self) -> AuthSettings:
        if not self.jwks_url:
            return self
        if not self.jwt_issuer or not self.jwt_audience:
            raise ValueError("AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE are required with JWKS.")
        if not frozenset(self.jwt_algorithms) <= SUPPORTED_ALGORITHMS:
            raise ValueError(f"AUTH_JWT_ALGORITHMS must be among {sorted(SUPPORTED_ALGORITHMS)}.")
        return self

    @property
    def jwt(self) -> JwtSettings | None:
        """What a JWT must say, or ``None`` when JWTs are not accepted (no ``AUTH_JWKS_URL``)."""
        if not self.jwks_url:
            return None
        return JwtSettings(
            jwks_url=self.jwks_url,
            issuer=self.jwt_issuer,
            audience=self.jwt_audience,
            algorithms=frozenset(self.jwt_algorithms) or SUPPORTED_ALGORITHMS,
            leeway_s=self.jwt_leeway_s,
            jwks_timeout_s=self.jwks_timeout_s,
            jwks_cache_s=self.jwks_cache_s,
            workspace_claim=self.jwt_workspace_claim,
        )


def parse_api_key_hashes(raw: str) -> tuple[ApiKeyEntry, ...]:
    """Parse ``<sha256hex>[@<workspace>]=<scope>,<scope>;...`` into entries (lower-case
    digests; a key without ``@<workspace>`` belongs to ``default``).

    Raises ``SettingsError`` (naming ``AUTH_API_KEY_HASHES``, never echoing a digest) for an entry
    without ``=``, a digest that is not 64 hex digits, a workspace that is not a workspace id, a
    key without scopes, or a digest given twice.
    """
    entries: dict[str, ApiKeyEntry] = {}
    for position, entry in enumerate((e for e in raw.split(";") if e.strip()), start=1):
        head, separator, scopes = entry.partition("=")
        digest, _, workspace = head.strip().lower().partition("@")
        names = frozenset(s.strip() for s in scopes.split(",") if s.strip())
        where = f"AUTH_API_KEY_HASHES entry {position}"
        if not separator or not names:
            raise SettingsError(f"{where}: want <sha256hex>[@<workspace>]=<scopes>.")
        if len(digest) != DIGEST_HEX_LENGTH or any(c not in "0123456789abcdef" for c in digest):
            raise SettingsError(f"{where}: not a SHA-256 hex digest.")
        if workspace and not is_workspace(workspace):
            raise SettingsError(f"{where}: the workspace is not a workspace id (a-z, 0-9, '-').")
        if digest in entries:
            raise SettingsError(f"{where}: the same key twice.")
        entries[digest] = ApiKeyEntry(digest, names, workspace or DEFAULT_WORKSPACE)
    return tuple(entries.values())


def format_api_key_hashes(
    entries: Mapping[str, frozenset[str] | set[str]], workspace: str = DEFAULT_WORKSPACE
) -> str:
    """The ``AUTH_API_KEY_HASHES`` value for ``entries`` (digest → scopes) of ``workspace``
    (written only when not ``default``); inverse of ``parse_api_key_hashes``."""
    suffix = "" if workspace == DEFAULT_WORKSPACE else f"@{workspace}"
    return ";".join(
        f"{digest}{suffix}={','.join(sorted(scopes))}" for digest, scopes in entries.items()
    )


def build_authenticator(settings: AuthSettings) -> BearerAuthenticator:
    """The authenticator for ``settings`` (API keys and/or JWTs; neither: refuses everything).

    Builds the JWKS client but fetches nothing."""
    grants = {e.digest: ApiKeyGrant(e.scopes, e.workspace) for e in settings.api_keys}
    api_keys = ApiKeyAuthenticator(grants) if grants else None
    jwts = JwtAuthenticator(settings.jwt) if settings.jwt is not None else None
    return BearerAuthenticator(api_keys, jwts)
