"""Exceptions raised by the domain library."""

from __future__ import annotations

from collections.abc import Mapping


class ValidationFailed(ValueError):
    """Input that breaks a contact rule.

    ``errors`` maps a field path (``"emails.0.value"``, ``"first_name"``, ``"_schema"`` for rules
    that span fields) to the list of human-readable messages for it.
    """

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors: dict[str, list[str]] = {path: list(msgs) for path, msgs in errors.items()}
        super().__init__("; ".join(f"{p}: {', '.join(m)}" for p, m in self.errors.items()))


class MalformedEvent(ValueError):
    """A message body that is not a contact event this library can read (a poison message)."""
