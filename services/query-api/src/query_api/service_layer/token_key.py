"""The server-side key that binds list cursors and change-feed tokens to what they were issued
for (a workspace, filters, a position), so that neither shows nor lets anyone confirm it.

A digest is the HMAC-SHA256 of a purpose and some parts, keyed with ``QUERY_TOKEN_SECRET``
(``Settings.token_secret``), cut to 32 hex digits (128 bits). Without the secret nobody can
compute one, so a digest no longer confirms a guessed workspace name or search term as an
unkeyed hash of them did; with a wrong secret every token is refused like a malformed one.
Every process of the query API must hold the same secret.

The secret is rotated without refusing the tokens clients hold: with
``QUERY_TOKEN_PREVIOUS_SECRET`` (``Settings.token_previous_secret``) set to the old secret and
``QUERY_TOKEN_SECRET`` to the new one, digests are made with the new secret only and a presented
digest is accepted when it is the new secret's or the old one's. A client resuming from an old
token is answered a new one, so after the longest time a client may hold a token the previous
secret can be dropped; a token signed with neither is refused (as malformed: 400), as every
token is when the secret changes without a previous one. Across several processes the new
secret is first given as the previous one (every process accepts it, none signs with it yet),
so that no process restarted later refuses what one restarted earlier signed (README,
"Rotating QUERY_TOKEN_SECRET").
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
    """An HMAC key for the digests of cursors and tokens (module docstring): ``secret`` signs
    and verifies; ``previous`` (the secret before a rotation, or ``None``) only verifies."""

    secret: bytes = field(repr=False)
    previous: bytes | None = field(default=None, repr=False)

    @classmethod
    def of(cls, secret: str, previous: str = "") -> TokenKey:
        """The key of the secret settings: ``secret`` (the empty one is ``DEVELOPMENT_SECRET``)
        and ``previous`` (empty: none, only ``secret`` verifies)."""
        return cls((secret or DEVELOPMENT_SECRET).encode(), previous.encode() or None)

    def digest(self, purpose: str, *parts: object) -> str:
        """The digest of ``parts`` (JSON values) for ``purpose`` with ``secret``: 32 hex
        digits."""
        return _digest(self.secret, purpose, parts)

    def verify(self, presented: object, purpose: str, *parts: object) -> bool:
        """Whether ``presented`` is the digest of ``parts`` for ``purpose`` with ``secret`` or,
        failing that, with ``previous`` (each compared in constant time)."""
        if not isinstance(presented, str) or len(presented) != DIGEST_HEX:
            return False
        given = presented.encode("ascii", "replace")
        for secret in (self.secret, self.previous):
            if secret is not None and hmac.compare_digest(
                given, _digest(secret, purpose, parts).encode()
            ):
                return True
        return False


def _digest(secret: bytes, purpose: str, parts: tuple[object, ...]) -> str:
    message = json.dumps([purpose, *parts], ensure_ascii=False, separators=(",", ":"))
    mac = hmac.new(secret, message.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return mac.hexdigest()[:DIGEST_HEX]
