"""The server-side key that binds list cursors and change-feed tokens to what they were issued
for (a workspace, filters, a position), so that neither shows nor lets anyone confirm it.

A digest is the HMAC-SHA256 of a purpose and some parts, keyed with ``QUERY_TOKEN_SECRET``
(``Settings.token_secret``), cut to 32 hex digits (128 bits). Without the secret nobody can
compute one, so a digest no longer confirms a guessed workspace name or search term as an
unkeyed hash of them did; with a wrong secret every token is refused like a malformed one.
Every process of the query API must hold the same secret; changing it refuses every token
issued before (as malformed: 400).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Final

#: Hex digits kept of a digest.
DIGEST_HEX: Final = 32
#: The key of a query API without ``QUERY_TOKEN_SECRET``: known to anyone who reads this file,
#: so it hides nothing; for a local machine and tests only (the app warns at start-up).
DEVELOPMENT_SECRET: Final = "contacts-query-api-development-token-secret"


@dataclass(frozen=True, slots=True)
class TokenKey:
    """An HMAC key for the digests of cursors and tokens (module docstring)."""

    secret: bytes = field(repr=False)

    @classmethod
    def of(cls, secret: str) -> TokenKey:
        """The key of a secret setting; the empty one is ``DEVELOPMENT_SECRET``."""
        return cls((secret or DEVELOPMENT_SECRET).encode())

    def digest(self, purpose: str, *parts: object) -> str:
        """The digest of ``parts`` (JSON values) for ``purpose``: 32 hex digits."""
        message = json.dumps([purpose, *parts], ensure_ascii=False, separators=(",", ":"))
        mac = hmac.new(self.secret, message.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return mac.hexdigest()[:DIGEST_HEX]

    def verify(self, presented: object, purpose: str, *parts: object) -> bool:
        """Whether ``presented`` is the digest of ``parts`` for ``purpose`` (constant time)."""
        if not isinstance(presented, str) or len(presented) != DIGEST_HEX:
            return False
        expected = self.digest(purpose, *parts)
        return hmac.compare_digest(presented.encode("ascii", "replace"), expected.encode())
