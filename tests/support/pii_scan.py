"""Find personal test data where it must not be: log output, metrics, database rows, Redis.

``forms(value)`` is every spelling a value can take on its way into text: as sent, case-folded,
JSON-escaped (``ensure_ascii``), URL-encoded (query strings, access logs) and, for a phone
number, its digits alone. ``find(text, values)`` returns the values found in ``text`` in any of
those forms, so a scan cannot pass only because a logger escaped or encoded a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus


def forms(value: str) -> set[str]:
    """The spellings of ``value`` to look for, case-folded (see module doc)."""
    spellings = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote_plus(value),
    }
    digits = re.sub(r"\D", "", value)
    if value.lstrip().startswith("+") and len(digits) >= 8:
        spellings.add(digits)
    return {s.casefold() for s in spellings if s}


def find(text: str, values: Iterable[str]) -> list[str]:
    """The ``values`` that appear in ``text`` in one of their ``forms`` (case-insensitive)."""
    haystack = text.casefold()
    return [v for v in values if any(f in haystack for f in forms(v))]


def json_lines(text: str) -> list[dict[str, Any]]:
    """The lines of ``text`` that are JSON objects, parsed (other lines are skipped)."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                lines.append(parsed)
    return lines
