"""The CSV formula escape (OWASP "CSV Injection"), both ways: ``escape_formula`` for the writer,
``unescape_formula`` for the reader.

A spreadsheet program opening a CSV file reads a cell whose first character is ``=``, ``+``,
``-``, ``@``, TAB or CR (``FORMULA_TRIGGERS``) as a formula: ``=HYPERLINK(...)`` or
``+cmd|' /C calc'!A0`` run when the file is opened. A leading ``'`` makes such a cell text (the
spreadsheet shows the value, usually without the apostrophe).

The two functions are inverse on every string: ``unescape_formula(escape_formula(v)) == v``.
So that this holds for a value that itself starts with apostrophes before a trigger (``'=x``),
the escape adds one ``'`` to any value matching ``'*`` + trigger, and the unescape removes one
``'`` from any cell matching ``'+`` + trigger; every other string passes both unchanged.

The vCard export needs no such escape: spreadsheet programs do not open vCard files, and an
address book reading one takes every value as text.
"""

from __future__ import annotations

from typing import Final

#: First characters that make a spreadsheet evaluate a cell (OWASP's list).
FORMULA_TRIGGERS: Final = frozenset("=+-@\t\r")
#: What the writer puts before a cell to keep a spreadsheet from evaluating it.
ESCAPE: Final = "'"


def escape_formula(value: str) -> str:
    """``value`` with ``'`` in front when it starts (after any apostrophes) with a character of
    ``FORMULA_TRIGGERS``: ``"=1+1"`` → ``"'=1+1"``, ``"'=1"`` → ``"''=1"``; else ``value``."""
    if value.lstrip(ESCAPE)[:1] in FORMULA_TRIGGERS:
        return ESCAPE + value
    return value


def unescape_formula(cell: str) -> str:
    """``cell`` without its first ``'`` when it is one or more ``'`` then a character of
    ``FORMULA_TRIGGERS`` (``"'=1+1"`` → ``"=1+1"``); any other cell unchanged (``"'x"``,
    ``"'"``, ``"O'Brien"``)."""
    if cell.startswith(ESCAPE) and cell.lstrip(ESCAPE)[:1] in FORMULA_TRIGGERS:
        return cell[1:]
    return cell
