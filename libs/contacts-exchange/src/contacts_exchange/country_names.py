"""Country names as address books write them, to ISO 3166-1 alpha-2 codes."""

from __future__ import annotations

from typing import Final

import pycountry

_COUNTRY_ALIASES: Final = {
    "USA": "US",
    "U.S.A.": "US",
    "U.S.": "US",
    "UNITED STATES OF AMERICA": "US",
    "UK": "GB",
    "U.K.": "GB",
    "ENGLAND": "GB",
    "DEUTSCHLAND": "DE",
    "ÖSTERREICH": "AT",
    "SCHWEIZ": "CH",
    "NEDERLAND": "NL",
    "ESPAÑA": "ES",
    "ITALIA": "IT",
}


def country_code(name: str) -> str:
    """Return the ISO 3166-1 alpha-2 code of a country name or code, or ``name`` itself when it
    is not recognized (validation then reports it and drops the country)."""
    upper = name.strip().upper()
    if upper in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[upper]
    try:
        return str(pycountry.countries.lookup(name.strip()).alpha_2)
    except LookupError:
        return name
