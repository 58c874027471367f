"""ID numbers: every kind is found in every separator style; look-alikes are not."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from krise_tui.rules.idnumbers import (
    ControlRule,
    IdKind,
    classify,
    control_rule,
    find_id_numbers,
    has_account_layout,
    is_valid_account_number,
    override_allowed,
)

# --- an independent oracle: the algorithm as DOMAIN rule 16 states it ---------------------

W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def weighted(digits: str, weights: tuple[int, ...]) -> int:
    return sum(w * int(d) for w, d in zip(weights, digits, strict=False))


def classic_control(digits: str, weights: tuple[int, ...]) -> int | None:
    """k = 11 − (weighted sum mod 11); 11 → 0; 10 → invalid (None)."""
    k = 11 - weighted(digits, weights) % 11
    if k == 11:
        return 0
    return None if k == 10 else k


def complete(nine: str, r1: int = 0) -> str | None:
    """Append k1 and k2 to nine digits so that r1 is as asked (0 = classic) and r2 = 0."""
    if r1 == 0:
        k1 = classic_control(nine, W1)
    else:
        k1 = (r1 - weighted(nine, W1)) % 11
        k1 = None if k1 == 10 else k1
    if k1 is None:
        return None
    k2 = classic_control(nine + str(k1), W2)
    return None if k2 is None else f"{nine}{k1}{k2}"


def passes_control(digits: str) -> bool:
    """Either rule: r2 = 0 and r1 ∈ {0, 1, 2, 3}."""
    r1 = (weighted(digits, W1) + int(digits[9])) % 11
    r2 = (weighted(digits, W2) + int(digits[10])) % 11
    return r2 == 0 and r1 <= 3


def account_number(ten: str) -> str | None:
    k = classic_control(ten, W2)
    return None if k is None else f"{ten}{k}"


STYLES: dict[str, Callable[[str], str]] = {
    "compact": lambda d: d,
    "space": lambda d: f"{d[:6]} {d[6:]}",
    "dash": lambda d: f"{d[:6]}-{d[6:]}",
    "spaced dash": lambda d: f"{d[:6]} - {d[6:]}",
    "dotted date": lambda d: f"{d[:2]}.{d[2:4]}.{d[4:6]} {d[6:]}",
    "dotted 3-2": lambda d: f"{d[:2]}.{d[2:4]}.{d[4:6]} {d[6:9]} {d[9:]}",
    "space 3-2": lambda d: f"{d[:6]} {d[6:9]} {d[9:]}",
    "no-break space": lambda d: f"{d[:6]}\u00a0{d[6:]}",
    "6-4-1": lambda d: f"{d[:6]} {d[6:10]} {d[10]}",
    "account layout": lambda d: f"{d[:4]}.{d[4:6]}.{d[6:]}",
}

# --- hand-checked numbers ------------------------------------------------------------------

# 010190 12480 (fødselsnummer, 1 January 1990):
#   k1: 0·3+1·7+0·6+1·1+9·8+0·9+1·4+2·5+4·2 = 102; 102 mod 11 = 3; k1 = 11−3 = 8
#   k2: 0·5+1·4+0·3+1·2+9·7+0·6+1·5+2·4+4·3+8·2 = 110; 110 mod 11 = 0; k2 = 11 → 0
FNR_HAND = "01019012480"
# 410190 12474 (D-nummer, day 01 + 40):
#   k1: 4·3+1·7+0·6+1·1+9·8+0·9+1·4+2·5+4·2 = 114; 114 mod 11 = 4; k1 = 7
#   k2: 4·5+1·4+0·3+1·2+9·7+0·6+1·5+2·4+4·3+7·2 = 128; 128 mod 11 = 7; k2 = 4
D_HAND = "41019012474"
# 010190 12308 (2032 rule): k1 digit 0 gives r1 = (100 + 0) mod 11 = 1;
#   k2: 0·5+1·4+0·3+1·2+9·7+0·6+1·5+2·4+3·3+0·2 = 91; 91 mod 11 = 3; k2 = 8 → r2 = 99 mod 11 = 0
NEW_RULE_HAND = "01019012308"
# 010190 12345 looks like the textbook example but fails: r1 = (100 + 4) mod 11 = 5.
LOOKALIKE_HAND = "01019012345"


def test_hand_checked_numbers_agree_with_the_oracle() -> None:
    assert complete("010190124") == FNR_HAND
    assert complete("410190124") == D_HAND
    assert complete("010190123", r1=1) == NEW_RULE_HAND
    assert not passes_control(LOOKALIKE_HAND)


@pytest.mark.parametrize(
    ("digits", "kind", "rule"),
    [
        (FNR_HAND, IdKind.FODSELSNUMMER, ControlRule.CLASSIC),
        (D_HAND, IdKind.D_NUMMER, ControlRule.CLASSIC),
        (NEW_RULE_HAND, IdKind.FODSELSNUMMER, ControlRule.FROM_2032),
    ],
)
def test_hand_checked_numbers_are_found(digits: str, kind: IdKind, rule: ControlRule) -> None:
    assert classify(digits) is kind
    assert control_rule(digits) is rule
    for style in STYLES.values():
        text = f"Opplysning: {style(digits)}."
        [found] = find_id_numbers(text)
        assert (found.kind, found.rule) == (kind, rule)
        assert found.digits(text) == digits


def test_the_textbook_lookalike_is_not_an_id_number() -> None:
    assert classify(LOOKALIKE_HAND) is None
    assert find_id_numbers("010190 12345 og 010190-12345 og 01.01.90 123 45") == []


# --- generated valid numbers of every kind -------------------------------------------------

DATES = st.dates(date(1854, 1, 1), date(2039, 12, 31))
INDIVIDUAL = st.integers(0, 999)
R1 = st.sampled_from([0, 1, 2, 3])


@st.composite
def nine_digits(draw: st.DrawFn) -> tuple[str, IdKind]:
    """The first nine digits of a number of a drawn kind, and that kind."""
    kind = draw(st.sampled_from(list(IdKind)))
    if kind is IdKind.FH_NUMMER:
        rest = draw(st.text("0123456789", min_size=8, max_size=8))
        return draw(st.sampled_from("89")) + rest, kind
    when = draw(DATES)
    day, month = when.day, when.month
    if kind is IdKind.D_NUMMER:
        day += 40
    elif kind is IdKind.H_NUMMER:
        month += 40
    elif kind is IdKind.SYNTETISK:
        month += draw(st.sampled_from([80, 65]))
    return f"{day:02}{month:02}{when.year % 100:02}{draw(INDIVIDUAL):03}", kind


@st.composite
def id_numbers(draw: st.DrawFn) -> tuple[str, IdKind, int]:
    """A valid number: (11 digits, kind, r1 target; 0 = classic rule)."""
    nine, kind = draw(nine_digits())
    r1 = draw(R1)
    digits = complete(nine, r1)
    assume(digits is not None)
    assert digits is not None
    return digits, kind, r1


PREFIXES = ["", "Fnr: ", "Pasient (", "Første linje\nfødselsnummer ", "a\n\nb ", "#"]
SUFFIXES = ["", ".", ")", " er registrert.", ",\nneste linje", "@eksempel.no"]


@settings(max_examples=300, deadline=None)
@given(id_numbers(), st.sampled_from(PREFIXES), st.sampled_from(SUFFIXES))
def test_valid_numbers_are_found_in_every_style(
    number: tuple[str, IdKind, int], prefix: str, suffix: str
) -> None:
    digits, kind, r1 = number
    assert passes_control(digits)
    for name, style in STYLES.items():
        written = style(digits)
        text = f"{prefix}{written}{suffix}"
        findings = find_id_numbers(text)
        assert len(findings) == 1, (name, text)
        [found] = findings
        assert (found.start, found.end) == (len(prefix), len(prefix) + len(written)), name
        assert found.line == prefix.count("\n") + 1
        assert found.kind is kind, (name, digits)
        assert found.rule is (ControlRule.CLASSIC if r1 == 0 else ControlRule.FROM_2032)
        assert found.redacted == f"{digits[:6]} *****"
        assert found.digits(text) == digits
        assert found.account_layout is (name == "account layout")
        assert digits not in found.redacted
        assert digits not in repr(found)


@given(id_numbers())
def test_several_numbers_in_one_text_are_each_found(number: tuple[str, IdKind, int]) -> None:
    digits = number[0]
    text = f"{digits}\n\nog {digits[:6]} {digits[6:]}, og ({digits})"
    assert [f.line for f in find_id_numbers(text)] == [1, 3, 3]


@given(id_numbers(), st.sampled_from(["ABC", "x", "ø", "Fnr", "fnr", "nr.", "ORD"]))
def test_numbers_glued_to_letters_are_found(number: tuple[str, IdKind, int], letters: str) -> None:
    """A glued prefix or suffix (``fnr17057234881``) got numbers published: not a shield."""
    digits = number[0]
    for text in (f"Ordre {letters}{digits}", f"Ordre {digits}{letters}", f"{letters}{digits}x"):
        [found] = find_id_numbers(text)
        assert found.digits(text) == digits
        assert text[found.start : found.end] == digits


@given(id_numbers(), st.sampled_from("0123456789"))
def test_numbers_inside_longer_digit_runs_are_not_candidates(
    number: tuple[str, IdKind, int], extra: str
) -> None:
    digits = number[0]
    assert find_id_numbers(f"nr {extra}{digits}") == []
    assert find_id_numbers(f"nr {digits}{extra}") == []
    assert find_id_numbers(f"nr {digits[:6]} {digits[6:]}{extra}") == []


def test_fodselsnummer_needs_a_calendar_date() -> None:
    leap = complete("290200123")  # 29.02.(20)00 exists
    assert leap is not None
    assert classify(leap) is IdKind.FODSELSNUMMER
    for nine in ("290201123", "320190123", "001390123", "000190123"):
        for r1 in range(4):
            digits = complete(nine, r1)
            if digits is not None:
                assert classify(digits) is None, digits
                assert find_id_numbers(digits) == []


def test_special_kinds_need_no_calendar_date() -> None:
    cases = {
        "711190123": IdKind.D_NUMMER,  # 31 (+ 40) November
        "314290123": IdKind.H_NUMMER,  # 31 February (+ 40)
        "308290123": IdKind.SYNTETISK,  # 30 February (+ 80)
        "306790123": IdKind.SYNTETISK,  # 30 February (+ 65)
        "900000123": IdKind.FH_NUMMER,
    }
    for nine, kind in cases.items():
        digits = next(d for r1 in range(4) if (d := complete(nine, r1)) is not None)
        assert classify(digits) is kind, nine


# --- look-alikes that must pass ------------------------------------------------------------

MONTHS = ["januar", "februar", "mars", "april", "mai", "juni"]
MONTHS += ["juli", "august", "september", "oktober", "november", "desember"]


def assert_clean(text: str) -> None:
    assert find_id_numbers(text) == [], text


@given(DATES, st.integers(0, 23), st.integers(0, 59))
def test_dates_and_times_pass(when: date, hour: int, minute: int) -> None:
    assert_clean(f"Møte {when:%d.%m.%Y}")
    assert_clean(f"Møte {when.day}. {MONTHS[when.month - 1]} {when.year} kl. {hour:02}.{minute:02}")
    assert_clean(f"{when.isoformat()} {hour:02}:{minute:02}")
    assert_clean(f"{when:%d.%m.%Y} {hour:02}.{minute:02}")
    assert_clean(f"{when:%d.%m.%y} kl {hour:02}.{minute:02} - {hour:02}.{minute:02}")
    assert_clean(f"Åpent {hour:02}.{minute:02}–{hour:02}.{minute:02}, {when:%d.%m.%Y}–{when:%d.%m}")


@given(st.sampled_from("23456789"), st.text("0123456789", min_size=7, max_size=7))
def test_phone_numbers_pass(first: str, rest: str) -> None:
    n = first + rest
    assert_clean(f"Ring {n}, {n[:3]} {n[3:5]} {n[5:]} eller +47 {n[:2]} {n[2:4]} {n[4:6]} {n[6:]}")
    assert_clean(f"Tlf. 0047 {n} / +47 {n[:3]} {n[3:5]} {n[5:]} / +47{n}")


@given(st.text("0123456789", min_size=11, max_size=11))
def test_wrong_control_digits_pass(digits: str) -> None:
    assume(not passes_control(digits))
    for style in STYLES.values():
        assert_clean(f"Nr. {style(digits)}.")


@given(st.text("0123456789", min_size=10, max_size=10), st.sampled_from("0123456789"))
def test_ten_and_twelve_digit_numbers_pass(ten: str, extra: str) -> None:
    twelve = ten + extra + extra
    assert_clean(f"Nr. {ten} og {ten[:6]} {ten[6:]} og {ten[:2]}.{ten[2:4]}.{ten[4:6]} {ten[6:]}")
    assert_clean(f"Nr. {twelve}, {twelve[:6]} {twelve[6:]}, {twelve[:6]}-{twelve[6:]}")
    assert_clean(f"{twelve[:2]}.{twelve[2:4]}.{twelve[4:6]} {twelve[6:9]} {twelve[9:]}")


@given(st.text("0123456789", min_size=10, max_size=10))
def test_account_numbers_that_are_not_id_numbers_pass(ten: str) -> None:
    number = account_number(ten)
    assume(number is not None)
    assert number is not None
    assume(not passes_control(number))
    assert is_valid_account_number(number)
    written = f"{number[:4]}.{number[4:6]}.{number[6:]}"
    assert is_valid_account_number(written)
    assert_clean(f"Gaver til konto {written} eller {number[:4]} {number[4:6]} {number[6:]}")
    assert_clean(f"Kontonummer: {number}")


@given(st.integers(0, 9_999_999_999), st.sampled_from([" ", "\u00a0", "."]))
def test_amounts_pass(amount: int, separator: str) -> None:
    grouped = f"{amount:,}".replace(",", separator)
    assert_clean(f"kr {grouped}")
    assert_clean(f"{grouped} kr og {grouped},-")


@given(st.text("0123456789", min_size=4, max_size=7))
def test_order_numbers_pass(short: str) -> None:
    # "2026/…" and "2026-…" join into 11 digits for a 7-digit short number, but month 26
    # is no kind of ID number.
    assert_clean(f"Ordre ORD{short}{short}, sak 2026/{short}, bestilling {short}B")
    assert_clean(f"Bestillingsnr. {short}{short[:3]}, faktura 2026-{short}")


# --- bank accounts and the override --------------------------------------------------------


def test_account_numbers_by_hand() -> None:
    # 1503 12 3456 + k: 1·5+5·4+0·3+3·2+1·7+2·6+3·5+4·4+5·3+6·2 = 108; 108 mod 11 = 9; k = 2
    assert is_valid_account_number("15031234562")
    assert is_valid_account_number("1503.12.34562")
    assert not is_valid_account_number("15031234563")
    assert not is_valid_account_number("1503123456")
    assert not is_valid_account_number("1503x234562")
    # a remainder of 1 would need control digit 10: never a valid account number
    ten = next(f"{n:010}" for n in range(10**9, 10**10) if weighted(f"{n:010}", W2) % 11 == 1)
    assert not any(is_valid_account_number(ten + k) for k in "0123456789")


@given(id_numbers())
def test_every_id_number_is_also_a_valid_account_number(number: tuple[str, IdKind, int]) -> None:
    """Why the override also looks at the layout: mod 11 alone cannot tell them apart."""
    assert is_valid_account_number(number[0])


def test_override_needs_a_valid_account_number_and_a_reason() -> None:
    assert override_allowed(FNR_HAND, "innsamlingskonto for flomofre") == (
        True,
        "overstyring tillatt: gyldig kontonummer; begrunnelsen journalføres",
    )
    ok, why = override_allowed(FNR_HAND, "  ", lang="en")
    assert not ok
    assert why == "an override needs a reason"
    assert not override_allowed(FNR_HAND, "ok")[0]
    assert not override_allowed("15031234563", "innsamlingskonto")[0]
    assert not override_allowed("1503123456", "innsamlingskonto")[0]


def test_override_can_require_the_account_layout() -> None:
    reason = "innsamlingskonto for flomofre"
    assert override_allowed(FNR_HAND, reason, written="0101.90.12480")[0]
    assert override_allowed(FNR_HAND, reason, written="0101 90 12480")[0]
    ok, why = override_allowed(FNR_HAND, reason, written="010190 12480")
    assert not ok
    assert "kontonummer" in why
    assert has_account_layout("1503.12.34562")
    assert not has_account_layout("x1503.12.34562")
    assert not has_account_layout("15031234562")


def test_override_answers_never_contain_the_number() -> None:
    for digits in (FNR_HAND, D_HAND, "15031234563", "123"):
        for reason in ("", "innsamlingskonto"):
            for written in (None, digits):
                for lang in ("nb", "en"):
                    _, why = override_allowed(digits, reason, written=written, lang=lang)
                    assert digits not in why
                    assert re.search(r"[0-9]{6}", why) is None
