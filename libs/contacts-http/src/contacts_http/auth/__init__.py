"""Authentication and scopes for both APIs: ``Authorization: Bearer <API key or JWT>``.

- ``principal``: ``Principal``, the ``Authenticator`` port and its errors (``InvalidToken``,
  ``AuthUnavailable``).
- ``api_keys``: ``ApiKeyAuthenticator`` (SHA-256 digests, constant-time comparison),
  ``hash_api_key``, ``new_api_key``.
- ``jwt_tokens``: ``JwtAuthenticator`` (RS256/ES256 against a JWKS URL, RFC 7519 claims).
- ``bearer``: ``BearerAuthenticator`` (routes a token to one of the two).
- ``settings``: ``AuthSettings.from_env`` (the ``AUTH_*`` variables), ``build_authenticator``.
- ``guard``: ``init_auth`` (the Flask ``before_request`` guard, RFC 6750 answers),
  ``request_principal``, ``request_workspace`` (the workspace the caller's identity decides,
  or an operator's ``X-Contacts-Workspace``), ``rate_limit_identity``, ``rate_limit_workspace``.
- ``openapi``: ``document_bearer_auth`` (the security scheme in the OpenAPI document).
- ``wiring``: ``install_auth`` and ``install_rate_limits``, one call each in an app factory.
- ``scopes``: ``READ``, ``WRITE``, ``IMPORT``, ``ADMIN`` (operators).
- ``keygen``: ``python -m contacts_http.auth.keygen new`` prints a key and its settings entry.
"""

from contacts_http.auth import scopes
from contacts_http.auth.api_keys import (
    ApiKeyAuthenticator,
    ApiKeyGrant,
    hash_api_key,
    new_api_key,
)
from contacts_http.auth.bearer import BearerAuthenticator
from contacts_http.auth.guard import (
    OPEN_PATHS,
    WORKSPACE_HEADER,
    AuthPolicy,
    init_auth,
    plain_caller,
    rate_limit_identity,
    rate_limit_workspace,
    request_principal,
    request_workspace,
)
from contacts_http.auth.jwt_tokens import JwtAuthenticator, JwtSettings
from contacts_http.auth.openapi import document_bearer_auth
from contacts_http.auth.principal import (
    Authenticator,
    AuthUnavailable,
    InvalidToken,
    Principal,
)
from contacts_http.auth.settings import (
    ApiKeyEntry,
    AuthSettings,
    build_authenticator,
    format_api_key_hashes,
    parse_api_key_hashes,
)
from contacts_http.auth.wiring import install_auth, install_rate_limits

__all__ = [
    "OPEN_PATHS",
    "WORKSPACE_HEADER",
    "ApiKeyAuthenticator",
    "ApiKeyEntry",
    "ApiKeyGrant",
    "AuthPolicy",
    "AuthSettings",
    "AuthUnavailable",
    "Authenticator",
    "BearerAuthenticator",
    "InvalidToken",
    "JwtAuthenticator",
    "JwtSettings",
    "Principal",
    "build_authenticator",
    "document_bearer_auth",
    "format_api_key_hashes",
    "hash_api_key",
    "init_auth",
    "install_auth",
    "install_rate_limits",
    "new_api_key",
    "parse_api_key_hashes",
    "plain_caller",
    "rate_limit_identity",
    "rate_limit_workspace",
    "request_principal",
    "request_workspace",
    "scopes",
]
