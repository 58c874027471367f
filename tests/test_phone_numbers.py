"""Phone numbers normalised once (``rules.contact.normalize_phone``, with ``phonenumbers``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krise_tui.playbook.loader import parse_org
from krise_tui.rules.contact import (
    EMERGENCY_NUMBERS,
    InvalidPhoneNumber,
    find_contacts,
    is_phone_number,
    normalize_phone,
)


@pytest.mark.parametrize(
    "written",
    [
        "75180000",
        "75 18 00 00",
        "7518 0000",
        "+47 75 18 00 00",
        "+4775180000",
        "0047 75180000",
        "0047 75 18 00 00",
        "4775180000",
        "75.18.00.00",
        "75-18-00-00",
        "+47 (75) 18 00 00",
        "75\u00a018\u00a000\u00a000",  # no-break spaces, as word processors write them
        " 75 18 00 00 ",
    ],
)
def test_a_norwegian_number_in_any_usual_writing(written: str) -> None:
    assert normalize_phone(written) == "75180000"


def test_mobile_and_other_norwegian_numbers() -> None:
    assert normalize_phone("412 34 567") == "41234567"
    assert normalize_phone("+47 412 34 567") == "41234567"
    assert normalize_phone("800 12 345") == "80012345"  # toll-free
    assert normalize_phone("02800") == "02800"  # five-digit service number


@pytest.mark.parametrize(
    ("written", "digits"),
    [
        ("110", "110"),
        ("112", "112"),
        ("113", "113"),
        ("116 117", "116117"),
        ("116117", "116117"),
        ("1881", "1881"),
        ("1412", "1412"),
    ],
)
def test_emergency_and_short_numbers_are_their_digits(written: str, digits: str) -> None:
    assert normalize_phone(written) == digits


def test_every_emergency_number_is_accepted() -> None:
    for number in EMERGENCY_NUMBERS:
        assert normalize_phone(number) == number


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("+46 8 123 456", "+468123456"),
        ("0046 8 123 456", "+468123456"),
        ("+46 8 123 456 78", "+46812345678"),
        ("+1 202 555 0123", "+12025550123"),
        ("+45 33 12 34 56", "+4533123456"),
    ],
)
def test_foreign_numbers_keep_their_country_code(written: str, e164: str) -> None:
    assert normalize_phone(written) == e164


def test_the_region_decides_what_is_national() -> None:
    assert normalize_phone("08-123 456", region="SE") == "8123456"
    assert normalize_phone("+47 75 18 00 00", region="SE") == "+4775180000"


@pytest.mark.parametrize(
    "written",
    [
        "",
        "   ",
        "abc",
        "75 18 00 AB",  # keypad letters are a typo here, not a vanity number
        "1-800-FLOWERS",
        "12 34 56 78",  # no Norwegian number starts with 1
        "999",
        "+47",
        "+47 112",  # short numbers are dialled without a country code
        "(0)75 18 00 00",
        "75180000 ext 5",
        "+999 123",
        "7" * 41,
        "75 18 00 00; 112",
        "75 18\n00 00",
    ],
)
def test_invalid_input_is_refused(written: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalize_phone(written)
    assert not is_phone_number(written)
    assert issubclass(InvalidPhoneNumber, ValueError)


@given(
    st.sampled_from("23456789"),
    st.text("0123456789", min_size=7, max_size=7),
    st.sampled_from(["", "+47 ", "0047 ", "47"]),
    st.sampled_from([" ", ".", "-", ""]),
)
def test_normalising_is_stable(first: str, rest: str, prefix: str, sep: str) -> None:
    digits = first + rest
    written = prefix + sep.join([digits[:2], digits[2:4], digits[4:6], digits[6:]])
    try:
        once = normalize_phone(written)
    except InvalidPhoneNumber:
        return  # a range phonenumbers does not know; refused in every writing
    assert once == digits
    assert normalize_phone(once) == once


def test_the_lint_compares_allow_lists_in_the_same_form() -> None:
    text = "Ring 75 18 00 00 eller 412 34 567, eller 112."
    found = find_contacts(text, allowed_phones=["+47 75.18.00.00"])
    assert [(f.shown, f.normalized, f.allowed) for f in found] == [
        ("75 18 00 00", "75180000", True),
        ("412 34 567", "41234567", False),
    ]
    # An invalid allow-list entry allows nothing, and does not stop the lint.
    found = find_contacts(text, allowed_phones=["12 34 56 78", "nonsens"])
    assert [f.allowed for f in found] == [False, False]


def test_the_org_file_uses_the_same_function() -> None:
    org = parse_org(
        """\
name: Testkommune
slug: test
municipality_number: "1826"
website: https://www.test.kommune.no
required_languages: [nb]
operators:
  - id: kari
    full_name: Kari Nordmann
    title: kommunedirektør
    role: kriseleder
    passphrase_hash: scrypt$1024$8$1$c2FsdHNhbHRzYWx0$c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdA==
channels:
  - {id: nettside, kind: website, endpoint: /tmp/nettside}
allowed_phone_numbers: ["0047 75-18-00-00", "+46 8 123 456", "1881"]
"""
    )
    assert org.phone_allowlist() == {normalize_phone(n) for n in org.allowed_phone_numbers} | set(
        EMERGENCY_NUMBERS
    )
    assert {"75180000", "+468123456", "1881"} <= org.phone_allowlist()
