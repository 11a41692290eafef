"""Static API keys, stored only as SHA-256 hex digests, each with its scopes.

A key is an opaque random string (``new_api_key``: 32 random bytes, base64url). The service's
settings hold ``sha256(key)`` only, so a leaked configuration does not leak a usable key. A
presented key is hashed and compared with every stored digest with ``hmac.compare_digest``
(constant time, and no early exit), so the time taken does not tell how much of a digest
matched.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import NamedTuple

from contacts_domain.workspaces import DEFAULT_WORKSPACE
from contacts_http.auth.principal import InvalidToken, Principal

#: Length of a SHA-256 hex digest.
DIGEST_HEX_LENGTH = 64


def hash_api_key(key: str) -> str:
    """Return the lower-case SHA-256 hex digest (64 characters) of ``key`` encoded as UTF-8."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    """Return a new random API key: 32 bytes from ``secrets``, base64url (43 characters)."""
    return secrets.token_urlsafe(32)


class ApiKeyGrant(NamedTuple):
    """What one API key may do: its scopes, in its workspace."""

    scopes: frozenset[str]
    workspace: str = DEFAULT_WORKSPACE


class ApiKeyAuthenticator:
    """Accepts the keys whose SHA-256 hex digest is in ``keys`` (digest → grant, or digest →
    scopes for a key of the default workspace).

    Raises ``ValueError`` at construction for a digest that is not 64 hex digits.
    """

    def __init__(self, keys: Mapping[str, ApiKeyGrant | frozenset[str]]) -> None:
        for digest in keys:
            if len(digest) != DIGEST_HEX_LENGTH or not _is_hex(digest):
                raise ValueError("an API key hash must be 64 hex digits (SHA-256)")
        self._keys = [
            (digest.lower().encode("ascii"), g if isinstance(g, ApiKeyGrant) else ApiKeyGrant(g))
            for digest, g in keys.items()
        ]

    def authenticate(self, token: str) -> Principal:
        """Return the key's principal (``subject`` ``key:<12 hex digits>``, its scopes and
        workspace); raises ``InvalidToken`` for an unknown key."""
        presented = hash_api_key(token).encode("ascii")
        found: ApiKeyGrant | None = None
        for digest, grant in self._keys:
            # Compare with every digest: the loop's duration does not depend on where (or
            # whether) the key matches.
            if hmac.compare_digest(presented, digest):
                found = grant
        if found is None:
            raise InvalidToken("Unknown API key.")
        text = presented.decode("ascii")
        return Principal(
            subject=f"key:{text[:12]}",
            scopes=found.scopes,
            rate_limit_key=f"key:{text}",
            workspace=found.workspace,
        )


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)
