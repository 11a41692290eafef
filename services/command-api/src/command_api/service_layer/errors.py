"""Errors the use cases raise for the HTTP layer to map (besides the domain's own)."""

from __future__ import annotations


class EventTooLarge(ValueError):
    """The event's queue message would exceed the SQS limit (256 KiB); nothing was sent.

    ``size`` is the message size in bytes as the publisher would send it, ``limit`` the cap.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"The event's message would be {size} bytes; the queue takes {limit}.")
        self.size = size
        self.limit = limit


class IdempotencyKeyReused(ValueError):
    """An ``Idempotency-Key`` already used with a different request body; nothing was sent."""
