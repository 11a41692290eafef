"""The vCard lexer's line heads and quoted-printable detection: the fast paths (no quote before
the first colon; a line not ending in ``=``) give what the byte-by-byte reading gives."""

from __future__ import annotations

import pytest

from contacts_exchange.vcard_lexer import is_qp, logical_lines


@pytest.mark.parametrize(
    ("line", "qp"),
    [
        (b"NOTE;ENCODING=QUOTED-PRINTABLE:a=3Db", True),
        (b'NOTE;X-LABEL="a:ENCODING=QUOTED-PRINTABLE":plain', True),
        (b'NOTE;X-LABEL="a:b";ENCODING=QUOTED-PRINTABLE:a', True),
        (b"NOTE:ENCODING=QUOTED-PRINTABLE", False),
        (b"NOTE;QUOTED-PRINTABLE", True),
    ],
)
def test_only_the_parameters_before_the_value_say_quoted_printable(line, qp) -> None:
    assert is_qp(line) is qp


def test_a_soft_line_break_joins_only_quoted_printable_lines() -> None:
    physical = [
        b"NOTE;ENCODING=QUOTED-PRINTABLE:first=",
        b"second",
        b"TITLE:ends with =",
        b"ORG:Acme",
    ]

    assert list(logical_lines(iter(physical))) == [
        (1, b"NOTE;ENCODING=QUOTED-PRINTABLE:firstsecond"),
        (3, b"TITLE:ends with ="),
        (4, b"ORG:Acme"),
    ]
