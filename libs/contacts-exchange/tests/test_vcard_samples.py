"""Every file of shared/data/vcards reads without an exception, with the contacts a person
reading the file expects (see shared/data/README.md for each file's quirks)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from contacts_exchange import ImportRecord, read_vcards

Read = Callable[[str], list[ImportRecord]]

#: File prefix → (position, first_name, last_name) of every card, None for a failed card.
EXPECTED_NAMES: dict[str, list[tuple[int, str | None, str | None] | tuple[int, None]]] = {
    "01": [(1, "Jules", "Exemplaire")],
    "02": [(1, "Fred", "Danson"), (2, "Tom", "Hawes")],
    "03": [
        (1, None),
        (2, None),
        (3, None, "Ñ Ñ Ñ Ñ"),
        (4, None, "Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ"),
        (5, "Ñ Ñ Ñ", "Ñ Ñ"),
        (6, None, "ÑÑÑÑ"),
    ],
    "04": [(1, "John", "Doe")],
    "05": [(1, "VCard", "Test")],
    "06": [(1, "John", "Doe")],
    "07": [(1, "John", "Doe")],
    "08": [(1, "FirstName", "LastName")],
    "09": [(1, "Dummy", "Dummy")],
    "10": [(1, "Bob", "Smith")],
    "12": [(1, "ロイド", "安藤")],
    "13": [(1, "A;B\\", None)],
    "14": [(1, "Conference Call", None)],
    "15": [(2, None, "nest1"), (3, None, "nest2"), (1, None, "parent")],
    "17": [
        (1, None),
        (2, "Broken", None),
        (3, "Broken", None),
        (4, "Surname", "Name"),
        (5, "Second", "Doctor"),
    ],
    "18": [(1, None)],
    "19": [(1, "My", "Name")],
    "21": [(1, "十城目管理大型知座", None)],
    "22": [(1, "Fred", "Danson")],
    "24": [(1, None)],
    "25": [(1, None, "Contact")],
    "26": [(1, "Firstname", "Lastname")],
    "27": [(1, "최철수", None), (2, "전영희", None)],
    "29": [(1, "John", "Doë")],
    "31": [(1, "Остап", "Гонча\u0301р")],
    "32": [(1, "Israel", "Israeli")],
    "34": [(1, "Max", "Mustermann")],
    "35": [],
    "37": [(1, "Franz", "Branntwein")],
    "38": [(1, "Erika", "Mustermann")],
    "40": [(1, "سارة", "المثالي"), (2, "نورة", "المثالي"), (3, "خالد", "المثالي")],
}


def test_every_sample_file_has_expectations(data_dir: Path) -> None:
    prefixes = {path.name[:2] for path in (data_dir / "vcards").glob("*.vcf")}
    assert prefixes == set(EXPECTED_NAMES) | {"23"}


@pytest.mark.parametrize("prefix", sorted(EXPECTED_NAMES))
def test_sample_file_reads_to_the_expected_names(vcard_file: Read, prefix: str) -> None:
    records = vcard_file(prefix)
    got: list[tuple[int, str | None, str | None] | tuple[int, None]] = [
        (r.position, r.data["first_name"], r.data["last_name"]) if r.data else (r.position, None)
        for r in records
    ]
    assert got == EXPECTED_NAMES[prefix]
    for record in records:
        assert bool(record.data) != bool(record.errors)


def test_cards_without_any_name_fail_with_a_name_error(vcard_file: Read) -> None:
    for prefix, positions in {"03": [1, 2], "17": [1], "18": [1], "24": [1]}.items():
        failed = [r for r in vcard_file(prefix) if not r.valid]
        assert [r.position for r in failed] == positions
        for record in failed:
            assert {e["field"] for e in record.errors} == {"first_name", "last_name"}
            assert "needs a first_name or a last_name" in record.errors[0]["message"]
    assert [r.line for r in vcard_file("03")[:2]] == [1, 6]


def test_rfc6350_example_drops_the_year_less_birthday_with_a_warning(vcard_file: Read) -> None:
    (card,) = vcard_file("01")
    assert card.data is not None
    assert card.data["birthday"] is None
    assert {
        "field": "birthday",
        "message": "Not a full date with a year (YYYY-MM-DD). Dropped the field.",
    } in card.warnings
    assert card.data["emails"] == [
        {"value": "jules.exemplaire@example.com", "type": "work", "primary": True}
    ]
    # tel: URIs (the ;ext= kept, test_phone_extensions), quoted TYPE lists, PREF=1.
    assert card.data["phones"] == [
        {"value": "+14185550154;ext=102", "type": "work", "primary": True},
        {"value": "+14185550101", "type": "mobile", "primary": False},
    ]
    assert card.data["company"] == "Exemplaire Inc."
    assert card.data["addresses"][0]["country"] == "CA"


def test_rfc2426_folded_adr_and_typed_tel(vcard_file: Read) -> None:
    fred, tom = vcard_file("02")
    assert fred.data
    assert tom.data
    assert fred.data["addresses"] == [
        {
            "type": "work",
            "street": "6544 Sampleford Drive",
            "city": "Raleigh",
            "region": "NC",
            "postal_code": "27613-3502",
            "country": "US",
        }
    ]
    assert fred.data["emails"][0] == {
        "value": "Fred_Danson@lotus.example",
        "type": "other",
        "primary": True,
    }
    assert [p["type"] for p in fred.data["phones"]] == ["work", "work"]
    assert tom.data["emails"][0]["value"] == "hawes@netscape.example"


def test_android_qp_utf8_and_undecodable_byte(vcard_file: Read) -> None:
    records = vcard_file("03")
    fifth, sixth = records[4], records[5]
    assert fifth.data
    assert sixth.data
    assert fifth.data["emails"] == [
        {"value": "bob@company.example", "type": "work", "primary": True}
    ]
    assert any(w["field"] == "emails.1.value" for w in fifth.warnings)  # QP "ÑÑÑ" is no email
    assert fifth.data["company"] == "Ñ" * 12
    assert sixth.data["company"] == "Ñ" * 44  # the stray 0x80 byte is dropped
    assert any("not valid text" in w["message"] for w in sixth.warnings)
    assert records[3].data
    assert records[3].data["notes"].count("\n\n") == 1


def test_evolution_folded_values_and_no_final_eol(vcard_file: Read) -> None:
    (card,) = vcard_file("04")
    assert card.data is not None
    assert card.data["emails"][0]["value"] == "john.doe@ibm.example"
    assert [p["value"] for p in card.data["phones"]] == ["+19055550166", "+19055550155"]
    assert card.data["phones"][0]["type"] == "mobile"
    assert card.data["birthday"] == "1980-03-22"
    assert card.data["tags"] == ["VIP"]
    assert card.data["notes"].startswith("THIS SOFTWARE IS PROVIDED")


def test_gmail_item_groups_use_their_ablabels(vcard_file: Read) -> None:
    (card,) = vcard_file("05")
    assert card.data is not None
    emails = [(e["value"], e["type"]) for e in card.data["emails"]]
    assert ("homeemail@example.com", "home") in emails
    assert ("workemail@example.com", "work") in emails
    assert card.data["birthday"] == "1912-06-23"
    # 11 TELs: the first 10 are kept (limit), all 555-555-xxxx which libphonenumber refuses.
    assert card.data["phones"] == []
    assert {"field": "phones", "message": "Only the first 10 entries were kept of 11."} in (
        card.warnings
    )


def test_macos_mixed_line_endings_and_photo(vcard_file: Read) -> None:
    (card,) = vcard_file("06")
    assert card.data is not None
    assert len(card.data["phones"]) == 7
    assert card.data["emails"][0]["value"] == "john.doe@ibm.example"
    assert card.data["birthday"] == "2012-06-06"


def test_outlook_qp_soft_break_between_cr_and_lf(vcard_file: Read) -> None:
    (card,) = vcard_file("07")
    assert card.data is not None
    assert card.data["notes"] == "This is the note field!!\nSecond line\n\nThird line is empty"
    assert card.data["company"] == "Company, The"
    assert card.data["emails"][0]["value"] == "jdoe@hotmail.example"
    assert card.data["birthday"] == "1980-03-21"
    assert [w["field"] for w in card.warnings] == [f"phones.{i}.value" for i in range(4)]


def test_unquoted_label_parameter_with_colons_does_not_eat_the_address(vcard_file: Read) -> None:
    (card,) = vcard_file("09")
    assert card.data is not None
    (address,) = card.data["addresses"]
    assert address["city"] == "Bad Homburg"
    assert address["postal_code"] == "61352"
    assert address["country"] == "DE"
    assert address["street"] is not None
    assert address["street"].endswith("Dummy-Dummy-Strasse 1")


def test_ios_cr_cr_lf(vcard_file: Read) -> None:
    (card,) = vcard_file("10")
    assert card.data is not None
    assert card.data["phones"] == [{"value": "+16505550112", "type": "mobile", "primary": True}]
    assert card.data["company"] == "Smith Auto Repair"


def test_hash_comment_after_qp_soft_break_is_part_of_the_note(vcard_file: Read) -> None:
    (card,) = vcard_file("14")
    assert card.data is not None
    assert card.data["notes"] == (
        "This is an (sharp ->#<- sharp) example. This message must NOT be ignored."
    )


def test_nested_cards_are_cards_of_their_own(vcard_file: Read) -> None:
    records = vcard_file("15")
    assert [r.line for r in records] == [4, 8, 1]
    assert records[0].warnings == [{"field": "_card", "message": "Card nested inside card 1."}]


def test_qp_soft_break_inside_a_utf8_sequence(vcard_file: Read) -> None:
    records = vcard_file("17")
    fourth = records[3].data
    assert fourth is not None
    assert fourth["job_title"] == "Facharzt für Allgemeinmedizin"
    assert "Fr     8–12" in fourth["notes"]
    assert records[1].data
    assert records[1].data["addresses"][0]["city"] == "Urt"
    assert [r.line for r in records] == [1, 9, 19, 29, 42]


def test_chinese_qp_params_in_any_order(vcard_file: Read) -> None:
    (card,) = vcard_file("21")
    assert card.data is not None
    assert card.data["company"] == "十城目管理大型知座"
    assert card.data["job_title"] == "十城目管理大型知座"
    assert card.data["emails"][0]["value"] == "weird@weird.example"


def test_missing_begin_is_assumed(vcard_file: Read) -> None:
    (card,) = vcard_file("22")
    assert card.data is not None
    assert card.data["company"] == "Lotus Development Corporation"
    assert {"field": "_card", "message": "The card has no BEGIN:VCARD line; one was assumed."} in (
        card.warnings
    )


def test_syncevolution_torture_file(vcard_file: Read) -> None:
    records = vcard_file("23")
    assert len(records) == 17
    assert all(r.valid for r in records)
    assert records[0].data
    assert records[0].data["last_name"] == "parserbug="
    umlauts = records[8].data
    assert umlauts
    assert (umlauts["first_name"], umlauts["last_name"]) == ("Ä", "Ü")
    assert "backslash \\ backslash" in umlauts["notes"]
    assert "A tab \ttab done" in umlauts["notes"]
    john = records[11].data
    assert john
    assert [e["value"] for e in john["emails"]] == [
        "john.doe@work.example",
        "john.doe@home.priv",
        "john.doe@other.example",
        "john.doe@yet.another.example",
    ]
    assert records[14].data
    assert records[14].data["first_name"] == "First ; special ;"
    # The 5 kB NOTE is over the 5,000 code point limit: dropped, the contact kept.
    assert records[16].data
    assert records[16].data["notes"] is None
    assert records[16].warnings[0]["field"] == "notes"


def test_davx5_all_fields(vcard_file: Read) -> None:
    (card,) = vcard_file("26")
    assert card.data is not None
    assert card.data["birthday"] == "1996-04-15"
    assert card.data["company"] == "ABC, Inc."
    assert card.data["tags"] == ["A", "B\\'C"]  # the invalid escape is kept as written
    assert [e["type"] for e in card.data["emails"]] == ["home", "work"]


def test_windows_1252_charset_and_pref_type(vcard_file: Read) -> None:
    (card,) = vcard_file("29")
    assert card.data is not None
    assert card.data["emails"] == [
        {"value": "inbox@roundcube.example", "type": "work", "primary": False},
        {"value": "roundcube@gmail.example", "type": "home", "primary": True},
    ]
    assert card.data["addresses"][0]["country"] == "KY"


def test_truncated_file_keeps_what_was_read(vcard_file: Read) -> None:
    (card,) = vcard_file("34")
    assert card.data is not None
    assert card.data["company"] == "Firma"
    assert card.data["notes"].startswith("Kommentar ÄÄÄÄÄÄ ääääää ÖÖÖÖÖÖ öööööö")
    assert {"field": "_card", "message": "The file ends before the card's END:VCARD line."} in (
        card.warnings
    )


def test_lowercase_card_with_version_last(vcard_file: Read) -> None:
    (card,) = vcard_file("37")
    assert card.data is not None
    assert card.data["emails"][0]["value"] == "franz.m.branntwein@example.com"
    assert card.data["addresses"][0]["street"] == "Medizinstraße 4711"
    assert card.data["addresses"][0]["city"] == "Köln"
    # A German national number read for the default region US: dropped with a warning.
    assert card.data["phones"] == []
    assert card.warnings[0]["field"] == "phones.0.value"


def test_national_numbers_follow_default_region(data_dir: Path) -> None:
    path = next((data_dir / "vcards").glob("37*.vcf"))
    with path.open("rb") as stream:
        (card,) = read_vcards(stream, default_region="DE")
    assert card.data
    assert card.data["phones"][0]["value"] == "+4922112345678"


def test_blank_lines_inside_card(vcard_file: Read) -> None:
    (card,) = vcard_file("38")
    assert card.data is not None
    assert card.data["job_title"] == "Redaktion & Gestaltung"
    assert [p["value"] for p in card.data["phones"]] == ["+492215550123", "+492215550167"]


def test_arabic_cards_idn_email_and_fold_inside_characters(vcard_file: Read) -> None:
    first, second, third = vcard_file("40")
    assert first.data
    assert second.data
    assert third.data
    assert first.data["company"] == "شركة المثال للتجارة"
    assert first.data["notes"] == "السطر الأول\nالسطر الثاني"
    assert second.data["emails"][0]["value"] == "noura@مثال.إختبار"
    assert third.data["emails"][0]["value"] == "khalid@مثال.إختبار"  # punycode decoded
    assert third.data["phones"][0] == {"value": "+201055500105", "type": "mobile", "primary": True}
    assert "\ufffd" not in third.data["notes"]
    assert third.data["notes"].endswith("في منتصف حرف متعدد البايتات.")
    assert third.warnings == []


def test_undeclared_legacy_bytes_are_a_guess_and_say_so(vcard_file: Read) -> None:
    # The Hebrew FN is 12 bytes of cp1255 with no CHARSET: too few to tell from cp1251 or
    # cp1253. The name comes from the Latin N; the guess on FN is reported.
    (card,) = vcard_file("32")
    (warning,) = card.warnings
    assert warning["field"] == "_card"
    assert warning["message"].startswith(
        "Line 3: FN is neither UTF-8 nor declares its CHARSET; read as "
    )


def test_undeclared_windows_1252_is_read(data_dir: Path) -> None:
    path = next((data_dir / "vcards").glob("29*.vcf"))
    data = path.read_bytes().replace(b";CHARSET=windows-1252", b"")
    (card,) = read_vcards(io.BytesIO(data))
    assert card.data is not None
    assert card.data["last_name"] == "Doë"
