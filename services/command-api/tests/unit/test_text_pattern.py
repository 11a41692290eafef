"""The OpenAPI documents' text patterns refuse exactly the code points the domain refuses.

A generated request that matches the document must not be refused by ``clean_text`` (the
contract fuzzer found a name holding the noncharacter U+FDE9 that did), and the pattern must
not refuse what the domain takes.
"""

from __future__ import annotations

import re

import pytest

from contacts_domain.values import clean_text
from contacts_http.openapi import NO_CONTROL, VISIBLE_TEXT

#: Every code point of the Basic Multilingual Plane but the surrogates (the pattern's reach).
BMP = [chr(code) for code in range(0x10000) if not 0xD800 <= code <= 0xDFFF]


def refused_by_domain(char: str) -> bool:
    try:
        clean_text(f"a{char}a", max_length=10)
    except ValueError:
        return True
    return False


def test_one_code_point_matches_the_pattern_exactly_when_the_domain_takes_it() -> None:
    one = re.compile(NO_CONTROL)
    mismatched = [
        f"U+{ord(char):04X}" for char in BMP if bool(one.fullmatch(char)) == refused_by_domain(char)
    ]
    assert mismatched == []


@pytest.mark.parametrize("char", ["\ufde9", "\ufffe", "\u202e", "\u2066", "\x85", "\x00"])
def test_a_name_holding_a_refused_code_point_does_not_match_the_name_pattern(char: str) -> None:
    assert re.fullmatch(VISIBLE_TEXT, f"Rosa{char}") is None
    assert re.fullmatch(VISIBLE_TEXT, "Rosa") is not None
