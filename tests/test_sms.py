"""SMS encoding and segment counting (GSM 03.38 / 3GPP TS 23.038)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krise_tui.rules.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SmsInfo,
    is_gsm7,
    non_gsm_chars,
    sms_info,
)


def test_table_sizes() -> None:
    # 128 basic codes, one of which is the escape to the extension table.
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


def test_plain_text_is_gsm7() -> None:
    assert sms_info("Hello world") == SmsInfo("GSM-7", 11, 1)


def test_empty_text_has_no_segments() -> None:
    assert sms_info("") == SmsInfo("GSM-7", 0, 0)


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_segment_limits(length: int, segments: int) -> None:
    info = sms_info("a" * length)
    assert (info.encoding, info.chars, info.segments) == ("GSM-7", length, segments)


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_segment_limits(length: int, segments: int) -> None:
    info = sms_info("ï" * length)
    assert (info.encoding, info.chars, info.segments) == ("UCS-2", length, segments)


@pytest.mark.parametrize("ch", list("æøåÆØÅäöüÄÖÜéÉèàìòùñÑßÇ£$¥§¤¡¿_@ΔΦΓΛΩΠΨΣΘΞ\n\r"))
def test_letters_in_the_basic_table(ch: str) -> None:
    assert is_gsm7(ch)
    assert sms_info(ch).chars == 1


@pytest.mark.parametrize("ch", list("€[]{}^~\\|\f"))
def test_extension_characters_count_two(ch: str) -> None:
    info = sms_info(ch)
    assert (info.encoding, info.chars) == ("GSM-7", 2)
    assert sms_info("Pris: 10 " + ch).chars == 11


@pytest.mark.parametrize(
    "ch",
    [
        "ï",  # South Sami
        "Ï",
        "á",  # North Sami
        "č",
        "đ",
        "ŋ",
        "š",
        "ŧ",
        "ž",
        "ç",  # only the capital Ç is in the table
        "«",  # Norwegian quotation marks
        "»",
        "–",  # en dash
        "’",  # typographic apostrophe
        "…",
        "\t",
        "\u00a0",  # no-break space
        "😀",
    ],
)
def test_characters_that_force_ucs2(ch: str) -> None:
    assert not is_gsm7(ch)
    info = sms_info("Hei " + ch)
    assert info.encoding == "UCS-2"
    assert info.non_gsm == ch


def test_south_sami_text_goes_out_as_ucs2() -> None:
    info = sms_info("Aarborten tjïelte")
    assert (info.encoding, info.chars, info.segments, info.non_gsm) == ("UCS-2", 17, 1, "ï")


def test_norwegian_text_stays_gsm7() -> None:
    text = "Kok drikkevannet før du bruker det. Rent vann på brannstasjonen, kl. 08-20. Ærlig!"
    info = sms_info(text)
    assert (info.encoding, info.chars, info.segments) == ("GSM-7", len(text), 1)


@given(st.text(alphabet="a€", max_size=800))
def test_escape_pairs_fill_segments_without_splitting(text: str) -> None:
    info = sms_info(text)
    assert info.chars == len(text) + text.count("€")
    assert info.chars <= info.limit


def test_an_escape_pair_is_never_split_across_segments() -> None:
    # 306 septets would be two segments of 153, but the euro sign (escape + e) starts at
    # septet 153 and cannot be split, so it moves on and a third segment is needed.
    text = "a" * 152 + "€" + "a" * 152
    info = sms_info(text)
    assert (info.chars, info.segments) == (306, 3)


def test_a_surrogate_pair_is_never_split_across_segments() -> None:
    text = "ï" * 66 + "😀" + "ï" * 66
    info = sms_info(text)
    assert (info.encoding, info.chars, info.segments) == ("UCS-2", 134, 3)


def test_non_gsm_chars_are_listed_once_in_order() -> None:
    assert non_gsm_chars("«Tjïelte» «ï»") == "«ï»"
    assert non_gsm_chars("helt vanlig") == ""


def test_limit_reports_capacity_of_the_current_segments() -> None:
    assert sms_info("a").limit == 160
    assert sms_info("a" * 200).limit == 306
    assert sms_info("ï").limit == 70
    assert sms_info("ï" * 100).limit == 134


@given(st.text(max_size=400))
def test_segments_hold_the_text(text: str) -> None:
    info = sms_info(text)
    assert (info.encoding == "GSM-7") == is_gsm7(text)
    assert (info.segments == 0) == (text == "")
    assert info.chars >= len(text)
    assert info.chars <= info.limit
    if info.segments > 1:
        # A full segment may leave one unit empty rather than split a 2-unit character.
        per_segment = 153 if info.encoding == "GSM-7" else 67
        assert (info.segments - 1) * (per_segment - 1) < info.chars
