"""Value objects: email and phone normalization, text cleaning."""

from __future__ import annotations

import pytest

from contacts_domain import limits
from contacts_domain.values import (
    EmailAddress,
    PhoneNumber,
    clean_text,
    email_key,
    parse_country,
    parse_name,
)


def test_email_domain_is_lower_cased_and_local_part_kept() -> None:
    assert (
        EmailAddress.parse("Rosa.Example@Mail.EXAMPLE.com").value == "Rosa.Example@mail.example.com"
    )


def test_idn_domain_in_unicode_and_punycode_is_one_address() -> None:
    unicode_form = EmailAddress.parse("noura@مثال.إختبار")
    punycode_form = EmailAddress.parse("noura@xn--mgbh0fb.xn--kgbechtv")
    assert unicode_form == punycode_form


def test_email_key_is_case_insensitive() -> None:
    assert EmailAddress.parse("ROSA@example.com").key == EmailAddress.parse("rosa@example.com").key


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("Ada@X.COM", "ada@x.com"),  # ASCII lower-cases
        ("\u1e9e", "\u00df"),  # ẞ folds to ß (status S)...
        ("\u00df", "\u00df"),  # ...and ß stays ß, never ss (status F)
        ("\u03c2", "\u03c3"),  # final sigma ς → σ
        ("\u03a3", "\u03c3"),  # Σ → σ
        ("\ufb01", "\ufb01"),  # the ligature ﬁ stays, never fi
        ("\u0130", "\u0130"),  # İ stays, never i + combining dot
        ("\u212a", "k"),  # KELVIN SIGN → k
        ("\u1f88", "\u1f80"),  # ᾈ → ᾀ (status S), not ἀι (status F)
        ("Stra\u00dfe\u00c9", "stra\u00dfe\u00e9"),
    ],
)
def test_email_key_is_simple_case_folding(value: str, key: str) -> None:
    assert email_key(value) == key
    assert len(email_key(value)) == len(value)  # one code point to one code point


def test_addresses_that_only_full_case_folding_makes_one_are_two() -> None:
    sharp, double = (
        EmailAddress.parse("stra\u00dfe@example.com"),
        EmailAddress.parse("strasse@example.com"),
    )
    assert sharp.key != double.key
    assert EmailAddress.parse("STRA\u1e9eE@Example.com").key == sharp.key
    assert (
        EmailAddress.parse("\ufb01le@example.com").key != EmailAddress.parse("file@example.com").key
    )


@pytest.mark.parametrize("raw", ["", "rosa", "rosa@", "a@b", "a b@example.com", None, 5])
def test_invalid_emails_are_refused(raw: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        EmailAddress.parse(raw)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+1 202 555 0100", "US", "+12025550100"),
        ("(202) 555-0199", "US", "+12025550199"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("+44 20 7946 0018", "US", "+442079460018"),
    ],
)
def test_phones_become_e164(raw: str, region: str, e164: str) -> None:
    assert PhoneNumber.parse(raw, region).value == e164


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("+1 202 555 0100 ext 5", "+12025550100;ext=5"),
        ("+1 202 555 0100;ext=12", "+12025550100;ext=12"),
        ("+1 202 555 0100 x123", "+12025550100;ext=123"),
        ("(202) 555-0100 ext. 0042", "+12025550100;ext=0042"),  # leading zeros are dialled
        ("tel:+1-418-555-0154;ext=102", "+14185550154;ext=102"),
        ("+1 202 555 0100 ext \uff15", "+12025550100;ext=5"),  # a fullwidth digit
    ],
)
def test_an_extension_is_kept_after_the_e164_number(raw: str, stored: str) -> None:
    number = PhoneNumber.parse(raw, "US")
    assert number.value == stored
    assert (number.e164, number.extension) == tuple(stored.split(";ext="))


@pytest.mark.parametrize("stored", ["+12025550100;ext=5", "+442079460018;ext=0012", "+12025550100"])
@pytest.mark.parametrize("region", ["US", "GB", "ZZ"])
def test_the_stored_form_parses_to_itself(stored: str, region: str) -> None:
    """The worker validates each event's numbers again (region ``ZZ``)."""
    assert PhoneNumber.parse(stored, region).value == stored


def test_a_number_without_extension_stays_plain_e164() -> None:
    number = PhoneNumber.parse("+1 202 555 0100", "US")
    assert number.value == "+12025550100"
    assert (number.e164, number.extension) == ("+12025550100", None)


def test_a_stored_form_longer_than_the_limit_is_refused_not_cut() -> None:
    # 15 digits and a 20-digit extension after "xt" (libphonenumber's shortest label): 38
    # characters written, 41 stored.
    raw = "+498001234567890xt" + "1" * 20
    assert len(raw) <= limits.PHONE_INPUT_MAX
    with pytest.raises(ValueError, match=f"maximum length {limits.PHONE_MAX} with its extension"):
        PhoneNumber.parse(raw, "US")


@pytest.mark.parametrize("raw", ["12", "+1 000 000 0000", "call me", "+999 1234"])
def test_invalid_phones_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        PhoneNumber.parse(raw, "US")


def test_text_is_nfc_and_trimmed() -> None:
    assert clean_text("  Cafe\u0301 ", max_length=10) == "Café"


@pytest.mark.parametrize("raw", ["\x1c", "\tRosa", "Rosa\r", "\x1f Rosa \x85", "Rosa\n"])
def test_a_control_character_at_either_end_is_refused_not_trimmed(raw: str) -> None:
    """``str.strip`` drops these; the rule (docs/contracts.md, "Text") refuses them anywhere,
    so a value of only such characters is not read as "no value" (schemathesis found
    ``"last_name": "\x1c"`` accepted against the schema's pattern)."""
    with pytest.raises(ValueError, match="control character"):
        clean_text(raw, max_length=20)


def test_notes_trim_lf_and_tab_at_either_end() -> None:
    assert clean_text("\t note\r\n\n", max_length=20, multiline=True) == "note"
    with pytest.raises(ValueError, match="U\\+000D"):
        clean_text("note\r", max_length=20, multiline=True)


def test_country_codes_are_iso_alpha2() -> None:
    assert parse_country("de") == "DE"
    with pytest.raises(ValueError, match="ISO 3166"):
        parse_country("DEU")


INVISIBLE_NAMES = [
    "\u200b",  # ZERO WIDTH SPACE
    "\ufeff",  # BYTE ORDER MARK / ZERO WIDTH NO-BREAK SPACE
    "\u200d\u2060\u200c",  # ZWJ, WORD JOINER, ZWNJ
    "\u0301",  # a combining acute accent alone
    "\u0301\u0308\u20dd",  # combining marks only (Mn, Mn, Me)
    " \u200b \u00a0\u200b ",  # spaces between format characters
    "\u3164\uffa0",  # Hangul fillers
    "\u115f\u1160",  # Hangul choseong and jungseong fillers
    "\u2800",  # BRAILLE PATTERN BLANK
    "\U0001d159",  # MUSICAL SYMBOL NULL NOTEHEAD
    " \u2800 \U0001d159 ",  # blank symbols between spaces
    "\ufff0\u2065",  # unassigned default-ignorable code points
    "\U000e0001\U000e0041\U000e007f",  # tag characters (Cf)
    "\U000e0080\U000e01f0",  # unassigned in the tag block, default-ignorable
    "\u17b4\u180e\u034f\u00ad",  # KHMER VOWEL INHERENT AQ, MVS, CGJ, SOFT HYPHEN
]


@pytest.mark.parametrize("raw", INVISIBLE_NAMES)
def test_a_name_without_a_visible_character_is_empty(raw: str) -> None:
    assert parse_name(raw) is None


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("\u200bRosa", "\u200bRosa"),
        ("e\u0301", "\u00e9"),
        ("\u0915\u093e", "\u0915\u093e"),
        ("  李  ", "李"),
        ("O'Neil", "O'Neil"),
        ("\u2800Rosa", "\u2800Rosa"),
        ("Rosa\U0001d159", "Rosa\U0001d159"),
        ("\u3164\u1100", "\u3164\u1100"),
    ],
)
def test_a_name_with_a_visible_character_is_kept(raw: str, stored: str) -> None:
    assert parse_name(raw) == stored


def test_a_name_breaks_the_text_rules_as_any_text() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        parse_name("\ud800")
    with pytest.raises(ValueError, match="maximum length"):
        parse_name("x" * 101)


@pytest.mark.parametrize(
    "raw",
    [
        "zq@quorbel\u0661\u06f1x.example.org",  # IDNA error quoting the label
        "zq@quorbel_x.example.org",
        "zq quorbel@example.org",
        "zq@quorbel..example.org",
        "zq@quorbel.invalid",
        "zq@" + "quorbel" * 10 + ".example.org",
    ],
)
def test_email_reasons_never_quote_the_address(raw: str) -> None:
    # An address is personal data: problem details name the reason, not the value (issue 7).
    with pytest.raises(ValueError, match=r".") as error:
        EmailAddress.parse(raw)
    assert "quorbel" not in str(error.value).casefold()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("bob@ex!am#ple.com", "invalid characters: '!', '#'."),
        ("b(o)b@example.com", "invalid characters before the @-sign: '(', ')'."),
    ],
)
def test_invalid_characters_are_named_and_the_address_is_not_echoed(
    address: str, reason: str
) -> None:
    with pytest.raises(ValueError, match="invalid characters") as raised:
        EmailAddress.parse(address)
    assert str(raised.value).endswith(reason)
    assert "bob" not in str(raised.value)
