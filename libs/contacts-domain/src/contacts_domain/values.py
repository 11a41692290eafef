"""Value objects: the normalization rules of every contact field.

Each ``parse_*`` function takes raw input and returns the canonical stored form, or raises
``ValueError`` with a message fit to show an API client. They never touch the network.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

import email_validator
import phonenumbers
import pycountry

from contacts_domain import limits

_ALLOWED_IN_MULTILINE = frozenset("\n\t")
#: Categories of characters that draw nothing on their own: format characters (U+200B ZERO
#: WIDTH SPACE, U+200D, U+2060, U+FEFF...), combining marks and separators.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Mn", "Mc", "Me", "Zs", "Zl", "Zp"})
#: Invisible code points of other categories. The Default_Ignorable_Code_Point set (Unicode
#: 15.1, DerivedCoreProperties.txt; a renderer draws nothing for them, known or not) beyond the
#: categories above: the Hangul fillers U+115F, U+1160, U+3164, U+FFA0 (letters by category)
#: and the code points reserved for more such characters (U+2065, U+FFF0-U+FFF8, unassigned
#: U+E0000-U+E0FFF); and symbols whose glyph is blank: U+2800 BRAILLE PATTERN BLANK, U+1D159
#: MUSICAL SYMBOL NULL NOTEHEAD.
_INVISIBLE_CODE_POINTS = re.compile(
    "[\u115f\u1160\u2065\u3164\uffa0\ufff0-\ufff8\U000e0000-\U000e0fff\u2800\U0001d159]"
)


#: Bidirectional embedding, override and isolate controls (LRE, RLE, PDF, LRO, RLO; LRI, RLI,
#: FSI, PDI): they reorder what a UI shows after them, so a name can spoof another (Unicode
#: Technical Report #36, "Unicode Security Considerations", §2.1 bidirectional text spoofing;
#: UTS #39 §3 restricts them in identifiers). The implicit marks LRM, RLM and ALM stay allowed:
#: they only nudge neutral characters, and right-to-left names need them.
_BIDI_CONTROLS = frozenset(map(chr, (*range(0x202A, 0x202F), *range(0x2066, 0x206A))))


def _refused(char: str, category: str) -> str | None:
    """Why ``char`` (of general category ``category``) may not be in a text, or ``None``."""
    if category == "Cs":
        return "Contains an unpaired surrogate code point."
    if category == "Cc":
        return f"Contains the control character U+{ord(char):04X}."
    if char in _BIDI_CONTROLS:
        return f"Contains the bidirectional control character U+{ord(char):04X}."
    code = ord(char)
    if 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE:
        return f"Contains the noncharacter U+{code:04X}."
    return None


def clean_text(value: object, *, max_length: int, multiline: bool = False) -> str | None:
    """Return ``value`` NFC-normalized and trimmed, or ``None`` when nothing is left.

    The empty string (after trimming) means "no value": the same rule for every text field, so
    ``""`` and ``null`` clear a field alike. ``multiline`` admits LF and TAB (CRLF becomes LF).

    Raises ``ValueError`` for a non-string, a control character (C0, DEL, C1; NUL included),
    a bidirectional embedding, override or isolate control (U+202A–U+202E, U+2066–U+2069), a
    noncharacter (U+FDD0–U+FDEF and the last two code points of every plane, U+FFFE, U+FFFF,
    U+1FFFE...: Unicode §23.7, never for interchange), a lone surrogate, or more than
    ``max_length`` code points. docs/contracts.md, "Text", gives the rule and its sources.
    """
    if not isinstance(value, str):
        raise ValueError("Not a valid string.")
    text = unicodedata.normalize("NFC", value)
    if multiline:
        text = text.replace("\r\n", "\n")
    # Checked before trimming: ``str.strip`` also drops TAB, CR, U+001C-U+001F and U+0085 at
    # either end, and a value of only those must be refused, not read as "no value".
    # Printable ASCII has no control, bidirectional or noncharacter code point and no
    # surrogate: skip the per-character check (the common case of an import).
    for char in () if text.isascii() and text.isprintable() else text:
        if multiline and char in _ALLOWED_IN_MULTILINE:
            continue
        reason = _refused(char, unicodedata.category(char))
        if reason is not None:
            raise ValueError(reason)
    text = text.strip()
    if not text:
        return None
    if len(text) > max_length:
        raise ValueError(f"Longer than maximum length {max_length}.")
    return text


def parse_name(raw: object) -> str | None:
    """Return a first or last name as ``clean_text`` does (at most ``limits.NAME_MAX`` code
    points), or ``None`` when it has no visible character.

    A name made only of format characters (``"\\u200b"``, ``"\\ufeff"``), combining marks,
    spaces, default-ignorable code points (Hangul fillers, U+E0000-U+E0FFF...) or blank
    symbols (U+2800 BRAILLE PATTERN BLANK, U+1D159 MUSICAL SYMBOL NULL NOTEHEAD) shows as
    nothing, so it counts as empty: ``None``, like ``""``. A name with one visible character
    besides them is kept whole.
    Raises ``ValueError`` as ``clean_text`` does.
    """
    text = clean_text(raw, max_length=limits.NAME_MAX)
    if text is None or not shows_something(text):
        return None
    return text


def shows_something(text: str) -> bool:
    """Whether ``text`` has a character that draws something: not only format characters,
    combining marks, spaces, default-ignorable code points or blank symbols (``parse_name``'s
    rule, also a search's)."""
    return any(_visible(char) for char in text)


def _visible(char: str) -> bool:
    return unicodedata.category(char) not in _INVISIBLE_CATEGORIES and not (
        _INVISIBLE_CODE_POINTS.match(char)
    )


def email_key(value: str) -> str:
    """The key under which two email addresses are the same: ``value`` with Unicode *simple*
    case folding, one code point to one code point (statuses C and S of the Unicode Character
    Database's CaseFolding.txt; Unicode §3.13, "Default Case Folding"), as of the Unicode
    version of Python's ``unicodedata``.

    Per code point: its ``str.casefold()`` when that is one code point (status C), else its
    ``str.lower()`` when that is one (status S: U+1E9E ẞ → ß, U+1F88 ᾈ → ᾀ), else the code
    point itself. So ``Ada@X.com`` and ``ada@x.com`` share a key, ``ς``, ``σ`` and ``Σ`` fold
    to ``σ`` and the Kelvin sign to ``k``, but full folding's expansions (status F: ß → ss,
    ﬁ → fi, İ → i̇) are never applied: ``straße@x.com`` and ``strasse@x.com`` are two
    mailboxes (RFC 6531 leaves the local part to its server) and must keep two keys.
    ASCII only lower-cases. Migration 0009 of the worker holds a frozen copy of this rule.
    """
    if value.isascii():
        return value.lower()
    return "".join(_simple_fold(char) for char in value)


def _simple_fold(char: str) -> str:
    folded = char.casefold()
    if len(folded) == 1:
        return folded
    lowered = char.lower()
    return lowered if len(lowered) == 1 else char


@dataclass(frozen=True, slots=True)
class EmailAddress:
    """A syntactically valid email address (RFC 5321/5322/6531 via email-validator; no DNS).

    ``value`` keeps the local part as given (NFC) and the domain lower-cased in Unicode form
    (IDNA punycode input is decoded), so ``a@XN--MGBH0FB.xn--kgbechtv`` and ``a@مثال.إختبار``
    are one address. ``key`` (``email_key``) is the simple-case-folded form used for
    uniqueness and lookups: ``Ada@X.com`` and ``ada@x.com`` are one address,
    ``straße@x.com`` and ``strasse@x.com`` two.
    """

    value: str

    @property
    def key(self) -> str:
        """The canonical lookup key of this address: ``email_key(value)``."""
        return email_key(self.value)

    @classmethod
    def parse(cls, raw: object) -> EmailAddress:
        """Raises ``ValueError`` for anything email-validator rejects or longer than 254 octets."""
        text = clean_text(raw, max_length=limits.EMAIL_MAX)
        if text is None:
            raise ValueError("An email address cannot be empty.")
        try:
            result = email_validator.validate_email(
                text, check_deliverability=False, allow_smtputf8=True
            )
        except email_validator.EmailNotValidError as exc:
            raise ValueError(_without_echo(str(exc))) from None
        return cls(unicodedata.normalize("NFC", result.normalized))


#: email-validator quotes parts of the address in some reasons (``... in 'label'``, an IDNA
#: error in parentheses). An address is personal data and error messages must not carry it
#: (issue 7): such parts are removed; a single quoted character (``invalid characters: '_'``)
#: stays, since it names the problem without revealing the address.
_QUOTED_DETAIL = re.compile(r"\s*\([^)]*'[^)]*\)")
_QUOTED_FRAGMENT = re.compile(r"'[^']{2,}'")
_QUOTED_CHARACTER = re.compile(r"'[^'\x00]'")
_MASKED = re.compile(r"\x00(\d+)\x00")


def _without_echo(reason: str) -> str:
    """``reason`` without any quoted fragment of the rejected address.

    Single characters that email-validator names as invalid (``'!', '#'``) stay: they say
    what to fix and are not personal data (masked first, so the two patterns never read the
    text between two of them as a fragment).
    """
    characters: list[str] = []

    def mask(match: re.Match[str]) -> str:
        characters.append(match.group(0))
        return f"\x00{len(characters) - 1}\x00"

    masked = _QUOTED_CHARACTER.sub(mask, reason)
    cleaned = _QUOTED_FRAGMENT.sub("a part of the address", _QUOTED_DETAIL.sub("", masked))
    return _MASKED.sub(lambda match: characters[int(match.group(1))], cleaned)


#: How a stored number carries its extension: the ``ext`` parameter of an RFC 3966 ``tel:`` URI
#: (§5.1.5), which libphonenumber reads back as the extension.
EXTENSION_PARAMETER: Final = ";ext="


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A valid phone number, parsed with libphonenumber: E.164 (``+12025550100``), then, when the
    number has an extension, ``;ext=`` and its ASCII digits (``+12025550100;ext=5``).

    ``value`` parses to itself in any region, so a stored number is valid input; one without
    an extension is plain E.164, as every number was before extensions were kept.
    """

    value: str

    @property
    def e164(self) -> str:
        """The number without its extension (``+12025550100``)."""
        return self.value.partition(EXTENSION_PARAMETER)[0]

    @property
    def extension(self) -> str | None:
        """The extension's digits (``"5"``, leading zeros kept), or ``None``."""
        return self.value.partition(EXTENSION_PARAMETER)[2] or None

    @classmethod
    def parse(cls, raw: object, default_region: str) -> PhoneNumber:
        """Parse a number written for ``default_region`` (ISO 3166-1 alpha-2) unless it has a
        ``+`` country code; an extension libphonenumber recognizes (``ext 5``, ``ext. 5``,
        ``x5``, ``;ext=5``, ``#5``...) is kept.

        Raises ``ValueError`` when libphonenumber cannot parse it or deems it invalid for its
        region, or when the number and its extension are longer than ``limits.PHONE_MAX``.
        """
        text = clean_text(raw, max_length=limits.PHONE_INPUT_MAX)
        if text is None:
            raise ValueError("A phone number cannot be empty.")
        try:
            number = phonenumbers.parse(text, default_region)
        except phonenumbers.NumberParseException as exc:
            raise ValueError(f"Not a phone number: {exc._msg}") from None
        if not phonenumbers.is_valid_number(number):
            raise ValueError("Not a valid phone number.")
        value = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if number.extension:
            # libphonenumber keeps the extension's digits as written (fullwidth, Arabic-Indic).
            value += EXTENSION_PARAMETER + phonenumbers.normalize_digits_only(number.extension)
        if len(value) > limits.PHONE_MAX:
            raise ValueError(
                f"Longer than maximum length {limits.PHONE_MAX} with its extension "
                "(E.164, then ;ext= and the extension)."
            )
        return cls(value)


def parse_country(raw: object) -> str:
    """Return an ISO 3166-1 alpha-2 code in upper case. Raises ``ValueError`` otherwise."""
    text = clean_text(raw, max_length=limits.REGION_MAX)
    if text is None or len(text) != 2 or pycountry.countries.get(alpha_2=text.upper()) is None:
        raise ValueError("Not an ISO 3166-1 alpha-2 country code.")
    return text.upper()


def parse_birthday(raw: object) -> str:
    """Return an ISO 8601 calendar date (``YYYY-MM-DD``) not in the future (UTC).

    Raises ``ValueError`` for another shape, an impossible date or a future date.
    """
    if not isinstance(raw, str):
        raise ValueError("Not a valid date.")
    try:
        day = dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError("Not a valid date (expected YYYY-MM-DD).") from None
    if len(raw.strip()) != 10:
        raise ValueError("Not a valid date (expected YYYY-MM-DD).")
    if day > dt.datetime.now(dt.UTC).date():
        raise ValueError("A birthday cannot be in the future.")
    return day.isoformat()


def parse_tag(raw: object) -> str:
    """Return a tag trimmed and NFC-normalized. Raises ``ValueError`` when empty or too long."""
    text = clean_text(raw, max_length=limits.TAG_MAX)
    if text is None:
        raise ValueError("A tag cannot be empty.")
    return text
