"""Message lint: blocks, warnings, allow-lists, and reports that never leak an ID number."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from krise_tui.rules.contact import ContactKind, find_contacts, normalize_phone
from krise_tui.rules.idnumbers import IdKind
from krise_tui.rules.lint import (
    FREE_TEXT_FIELDS,
    LintCode,
    LintFinding,
    LintReport,
    MessageVariant,
    Override,
    Severity,
    VariantText,
    links_to,
    lint_free_text,
    lint_message,
)
from tests.test_idnumbers import D_HAND, FNR_HAND, STYLES, id_numbers
from tests.test_idnumbers_disguises import DISGUISES, FNR, disguised, folded_digits

SITE = "https://www.hattfjelldal.kommune.no/krise"
LINK = "Mer på hattfjelldal.kommune.no/krise"
OWN_PHONES = ["+47 75 18 21 00", "412 34 567"]
OWN_EMAILS = ["postmottak@hattfjelldal.kommune.no", "@krise.hattfjelldal.no"]


def lint(variants: dict[str, MessageVariant], **overrides: Any) -> LintReport:
    options: dict[str, Any] = {
        "required_languages": ["nb"],
        "allowed_phones": OWN_PHONES,
        "allowed_emails": OWN_EMAILS,
        "website_url": SITE,
    }
    options.update(overrides)
    return lint_message(variants, **options)


def nb(body: str, headline: str = "Flom i sentrum") -> dict[str, MessageVariant]:
    return {"nb": MessageVariant(headline=headline, body=f"{body}\n{LINK}")}


def squash(text: str) -> str:
    """Without the separators a number may be written with."""
    return re.sub(r"[\s.\-\u2013]", "", text)


def codes(report: LintReport) -> list[str]:
    return [f.code for f in report.findings]


def test_a_clean_message_has_no_findings() -> None:
    report = lint(nb("Rv73 er stengt ved Svenskvollen fra kl. 14.00. Ring 75 18 21 00."))
    assert report.findings == ()
    assert not report.blocked
    assert report.render() == ["✓ ingen funn"]
    assert report.render("en") == ["✓ no findings"]


# --- ID numbers ----------------------------------------------------------------------------


def test_an_id_number_is_a_hard_block_with_the_line() -> None:
    report = lint(nb(f"Første linje\nandre\nFnr {FNR_HAND[:6]} {FNR_HAND[6:]} er funnet."))
    [finding] = report.findings
    assert finding.severity is Severity.BLOCK
    assert finding.code == LintCode.ID_NUMBER
    assert (finding.language, finding.field, finding.line) == ("nb", "body", 3)
    assert finding.override is Override.NOT_ALLOWED
    assert finding.message_nb == "fødselsnummer 010190 ***** funnet (linje 3) – kan ikke godkjennes"
    assert finding.message_en == (
        "national identity number 010190 ***** found (line 3) – cannot be approved"
    )
    assert report.blocked
    assert report.hard_blocked
    assert report.render() == [f"✗ [nb] {finding.message_nb}"]


def test_an_id_number_in_the_headline_names_the_headline() -> None:
    report = lint(nb("Tekst.", headline=f"D-nummer {D_HAND}"))
    [finding] = report.findings
    assert finding.field == "headline"
    assert finding.message_nb == "D-nummer 410190 ***** funnet (overskrift) – kan ikke godkjennes"
    assert finding.message_en == "D number 410190 ***** found (headline) – cannot be approved"


def test_an_id_number_written_as_an_account_number_needs_a_reason() -> None:
    report = lint(nb(f"Gaver til konto {FNR_HAND[:4]}.{FNR_HAND[4:6]}.{FNR_HAND[6:]}."))
    [finding] = report.findings
    assert finding.severity is Severity.BLOCK
    assert finding.override is Override.WITH_REASON
    assert report.blocked
    assert not report.hard_blocked
    assert report.needs_reason == (finding,)
    assert "kontonummer" in finding.message_nb


def test_an_id_number_is_not_also_a_phone_email_or_placeholder() -> None:
    text = f"{FNR_HAND}@eksempel.no, {{{FNR_HAND}}}, +47 {FNR_HAND}, {FNR_HAND[:6]} {FNR_HAND[6:]}"
    report = lint(nb(text))
    assert set(codes(report)) == {LintCode.ID_NUMBER}
    assert len(report.findings) == 4


@settings(max_examples=150, deadline=None)
@given(
    id_numbers(),
    st.sampled_from(list(STYLES)),
    st.sampled_from(["{}", "({})", "{}@eksempel.no", "{{{}}}", "tlf {}", "+47 {}", "{} kr"]),
    st.sampled_from(["nb", "sma", "en"]),
    st.booleans(),
)
def test_no_finding_ever_contains_the_full_number(
    number: tuple[str, IdKind, int], style: str, shape: str, language: str, in_headline: bool
) -> None:
    digits = number[0]
    written = shape.format(STYLES[style](digits))
    text = f"Vi tror det er rykter om {written}. Ring 999 88 777 eller kari@eksempel.no"
    variant = MessageVariant(headline=text, body="") if in_headline else MessageVariant(body=text)
    report = lint({language: variant}, required_languages=["nb", "sma"])
    ids = [f for f in report.findings if f.code == LintCode.ID_NUMBER]
    # "+47 01.01.90 124 80" also holds "47 01.01.90 124": a second, overlapping candidate
    assert len(ids) in (1, 2)
    assert {f.code for f in report.findings} >= {LintCode.PHONE, LintCode.EMAIL}
    for finding in report.findings:
        for shown in (finding.message_nb, finding.message_en, finding.excerpt or "", repr(finding)):
            assert digits not in squash(shown), shown
    for line in report.render() + report.render("en"):
        assert digits not in squash(line)


@pytest.mark.parametrize("disguise", list(DISGUISES))
def test_a_disguised_id_number_is_blocked_in_headline_and_body(disguise: str) -> None:
    written = DISGUISES[disguise](FNR)
    headline = f"Savnet: fnr{written}"
    body = f"Første linje\nOla {written} ringte"
    report = lint(nb(body, headline=headline))
    ids = [f for f in report.findings if f.code == LintCode.ID_NUMBER]
    assert [(f.field, f.line) for f in ids] == [("headline", 1), ("body", 2)]
    assert report.hard_blocked
    for finding, text in zip(ids, (headline, f"{body}\n{LINK}"), strict=True):
        assert finding.start is not None and finding.end is not None
        assert text[finding.start : finding.end] == written
        assert finding.excerpt == "170572 *****"
        assert finding.message_nb.startswith("fødselsnummer 170572 ***** funnet")
    for shown in [*report.render(), *report.render("en"), repr(report)]:
        assert FNR not in folded_digits(shown)
        assert FNR[6:] not in folded_digits(shown)


@settings(max_examples=150, deadline=None)
@given(id_numbers(), st.data(), st.sampled_from(["nb", "sma", "en"]), st.booleans())
def test_no_finding_ever_contains_a_disguised_number(
    number: tuple[str, IdKind, int], data: st.DataObject, language: str, in_headline: bool
) -> None:
    digits = number[0]
    written = data.draw(disguised(digits))
    text = f"Vi tror det er rykter om {written}. Ring 999 88 777 eller kari@eksempel.no"
    variant = MessageVariant(headline=text, body="") if in_headline else MessageVariant(body=text)
    report = lint({language: variant}, required_languages=["nb", "sma"])
    # A disguise made of control or direction characters is blocked for those as well.
    codes = [f.code for f in report.blocks if f.code != LintCode.CONTROL_CHARACTER]
    assert codes == [LintCode.ID_NUMBER]
    for finding in report.findings:
        for shown in (finding.message_nb, finding.message_en, finding.excerpt or "", repr(finding)):
            assert digits not in folded_digits(shown), shown
    free = lint_free_text(text, field="answer", lang=language)
    assert [f.code for f in free if f.code != LintCode.CONTROL_CHARACTER] == [LintCode.ID_NUMBER]
    assert digits not in folded_digits(repr(free))


# --- free text that is not a message -------------------------------------------------------


def test_free_text_names_the_field_in_both_languages() -> None:
    [finding] = lint_free_text(f"Frys: innbygger {FNR} er savnet", field="freeze-reason")
    assert finding.severity is Severity.BLOCK
    assert finding.code == LintCode.ID_NUMBER
    assert finding.override is Override.NOT_ALLOWED
    assert (finding.field, finding.language, finding.line) == ("freeze-reason", "nb", 1)
    assert (finding.start, finding.end, finding.excerpt) == (16, 27, "170572 *****")
    assert finding.message_nb == (
        "fødselsnummer 170572 ***** i begrunnelsen for frysen – fjern nummeret før teksten sendes"
    )
    assert finding.message_en == (
        "national identity number 170572 ***** in the freeze reason"
        " – remove the number before the text is sent"
    )
    assert LintReport((finding,)).render() == [f"✗ [nb] {finding.message_nb}"]


@pytest.mark.parametrize("field", list(FREE_TEXT_FIELDS))
def test_every_free_text_field_has_a_name(field: str) -> None:
    nb_name, en_name = FREE_TEXT_FIELDS[field]
    [finding] = lint_free_text(f"Tekst med {D_HAND}.", field=field, lang="sma")
    assert f"D-nummer 410190 ***** i {nb_name} –" in finding.message_nb
    assert f"D number 410190 ***** in {en_name} –" in finding.message_en
    assert (finding.field, finding.language) == (field, "sma")


def test_free_text_with_an_unknown_or_named_field() -> None:
    [unknown] = lint_free_text(FNR, field="sms-footer")
    assert "i feltet «sms-footer» –" in unknown.message_nb
    assert "in the field “sms-footer” –" in unknown.message_en
    [named] = lint_free_text(
        FNR,
        field="freeze-notice",
        lang="sma",
        field_nb="frysmeldingen (sma)",
        field_en="the freeze notice (sma)",
    )
    assert "i frysmeldingen (sma) –" in named.message_nb
    assert "in the freeze notice (sma) –" in named.message_en


def test_free_text_gives_the_line_when_there_are_several() -> None:
    text = f"Spørsmål om vann.\nSvar: ring oss.\nRef {FNR_HAND} og {D_HAND}"
    findings = lint_free_text(text, field="answer")
    assert [(f.line, f.excerpt) for f in findings] == [(3, "010190 *****"), (3, "410190 *****")]
    assert findings[0].message_nb.startswith(
        "fødselsnummer 010190 ***** i svaret på spørsmålene (linje 3)"
    )
    assert findings[1].message_en.startswith(
        "D number 410190 ***** in the answer to the questions (line 3)"
    )


def test_free_text_without_an_id_number_has_no_findings() -> None:
    text = "Frysen oppheves kl. 14.00. Ring 75 18 21 00 / 412 34 567, konto 1503.12.34562."
    # (no 11-digit run of whole groups passes the control digits here)
    assert lint_free_text(text, field="lift-reason") == []


def test_free_text_account_layout_can_be_overridden_with_a_reason() -> None:
    written = f"{FNR_HAND[:4]}.{FNR_HAND[4:6]}.{FNR_HAND[6:]}"
    [finding] = lint_free_text(f"Gaver til {written}", field="rumour-correction")
    assert finding.override is Override.WITH_REASON
    assert "kontonummer" in finding.message_nb
    assert "bank account" in finding.message_en


@pytest.mark.parametrize("disguise", list(DISGUISES))
def test_free_text_finds_every_disguise(disguise: str) -> None:
    written = DISGUISES[disguise](FNR)
    text = f"Ola {written} ringte"
    [finding] = lint_free_text(text, field="answer")
    assert (finding.start, finding.end) == (4, 4 + len(written))
    assert FNR[6:] not in folded_digits(finding.message_nb + finding.message_en)


@given(id_numbers())
def test_id_number_messages_in_norwegian_are_norwegian(number: tuple[str, IdKind, int]) -> None:
    digits, kind, _ = number
    message = lint(nb(f"Nr {digits}.")).blocks[0]
    free = lint_free_text(f"Nr {digits}.", field="notice")[0]
    for finding in (message, free):
        assert finding.message_nb.startswith(kind.label("nb"))
        assert finding.message_en.startswith(kind.label("en"))
        nb_words = set(re.findall(r"[^\W\d_]+", finding.message_nb))
        assert not nb_words & {"found", "blocked", "national", "number", "cannot", "remove"}
    assert kind.label("nb") != kind.label("en")


# --- phone numbers and e-mail --------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "99988777",
        "999 88 777",
        "99 98 87 77",
        "+47 99988777",
        "+4799988777",
        "+47 999 88 777",
        "0047 99 98 87 77",
        "004799988777",
        "22\u00a033\u00a044\u00a055",
    ],
)
def test_phone_numbers_not_on_the_list_warn(written: str) -> None:
    report = lint(nb(f"Ring {written} for hjelp."))
    [finding] = report.findings
    assert finding.severity is Severity.WARNING
    assert finding.code == LintCode.PHONE
    assert finding.override is Override.NOT_NEEDED
    shown = " ".join(written.split())
    assert finding.message_nb == f"telefonnummer {shown} er ikke på listen (linje 1)"
    assert finding.message_en == f"phone number {shown} is not on the allow-list (line 1)"
    assert not report.blocked


@pytest.mark.parametrize(
    "text",
    [
        "Ring 412 34 567 eller +47 41234567.",
        "Sentralbord 75 18 21 00, +47 75182100, 0047 75 18 21 00.",
        "Nødnumre: 110, 112, 113 og legevakt 116 117.",
    ],
)
def test_own_and_emergency_numbers_are_allowed(text: str) -> None:
    assert lint(nb(text)).findings == ()


@pytest.mark.parametrize(
    "text",
    [
        "Møtet er 21.01.2026 kl. 22.00.",
        "Datert 2026-01-21, ref. 20260121 og 21012026.",
        "Åpent 08.00–16.00 og 08:00 - 16:00.",
        "I årene 2025 2026 og 2027.",
        "Adresse: Postboks 2026 8624 Mo i Rana, 0123 Oslo, 8690 Hattfjelldal.",
        "Tilskudd kr 22 345 678, kr 41234567, 41234567 kr og 41234567,- totalt.",
        "Saksnr. 2026/41234567-12 og 1990-41234567.",
        "Koordinater 65.5977 13.9925, konto 1503.12.34562, org.nr. 964 983 291.",
        "Tallrekke 12 34 56 78 90 og 123 45 678 9.",
        "Ring +46 8 123 456 78 i Sverige eller 0123 4567.",
        "Kode AB41234567 og 41234567CD.",
    ],
)
def test_dates_times_years_postcodes_and_amounts_are_not_phone_numbers(text: str) -> None:
    assert [f for f in find_contacts(text) if f.kind is ContactKind.PHONE] == []


def test_phone_allow_list_accepts_any_format() -> None:
    assert normalize_phone("+47 75 18 21 00") == "75182100"
    assert normalize_phone("0047 75182100") == "75182100"
    assert normalize_phone("75 18 21 00") == "75182100"
    [found] = find_contacts("Ring +47 412 34 567", allowed_phones=["41234567"])
    assert found.allowed
    assert (found.shown, found.normalized, found.line) == ("+47 412 34 567", "41234567", 1)


def test_email_addresses_not_on_the_list_warn() -> None:
    body = (
        "Skriv til Postmottak@Hattfjelldal.kommune.no eller vakt@krise.hattfjelldal.no,\n"
        "ikke til kari.nordmann@gmail.com eller ola@sub.krise.hattfjelldal.no."
    )
    report = lint(nb(body))
    assert [(f.code, f.excerpt, f.line) for f in report.findings] == [
        (LintCode.EMAIL, "kari.nordmann@gmail.com", 2),
        (LintCode.EMAIL, "ola@sub.krise.hattfjelldal.no", 2),
    ]
    assert report.findings[0].message_nb == (
        "e-postadresse kari.nordmann@gmail.com er ikke på listen (linje 2)"
    )


# --- website link --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Se https://www.hattfjelldal.kommune.no/krise",
        "Se hattfjelldal.kommune.no.",
        "Se http://HATTFJELLDAL.kommune.no/vann?id=3",
        "Se www.hattfjelldal.kommune.no/",
    ],
)
def test_a_link_to_the_website_host_counts(text: str) -> None:
    assert links_to(text, SITE)


@pytest.mark.parametrize(
    "text",
    [
        "Se nettsiden vår.",
        "Se hattfjelldal.kommune.no.example.com",
        "Se nothattfjelldal.kommune.no",
        "Se krise.hattfjelldal.kommune.no",
        "Se https://evil.example/www.hattfjelldal.kommune.no",  # the host in another's path
        "Se https://evil.example/?u=hattfjelldal.kommune.no",
        "Skriv til post@hattfjelldal.kommune.no",  # an address, not a link
    ],
)
def test_other_hosts_do_not_count(text: str) -> None:
    assert not links_to(text, SITE)


def test_a_variant_without_the_link_warns() -> None:
    variants = {"nb": MessageVariant("Flom", "Hold deg unna elva."), "en": MessageVariant("", "")}
    report = lint(variants)
    [finding] = report.findings
    assert finding.code == LintCode.MISSING_LINK
    assert finding.message_nb == "lenke til nettsiden (hattfjelldal.kommune.no) mangler"
    assert finding.message_en == "link to the website (hattfjelldal.kommune.no) is missing"
    assert finding.line is None
    assert lint(variants, website_url=None).findings == ()
    assert lint(variants, website_url="hattfjelldal.kommune.no").findings[0].code == (
        LintCode.MISSING_LINK
    )


# --- languages -----------------------------------------------------------------------------


def test_missing_blank_and_awaiting_languages_need_a_reason() -> None:
    variants = {
        "nb": MessageVariant("Flom", LINK),
        "sma": MessageVariant("Flom", LINK, awaiting_translation=True),
        "en": MessageVariant(" ", "\n"),
    }
    report = lint(variants, required_languages=["nb", "sma", "en", "nn"])
    assert [(f.code, f.language) for f in report.findings] == [
        (LintCode.MISSING_LANGUAGE, "sma"),
        (LintCode.MISSING_LANGUAGE, "en"),
        (LintCode.MISSING_LANGUAGE, "nn"),
    ]
    assert all(f.override is Override.WITH_REASON for f in report.findings)
    assert all(f.severity is Severity.WARNING for f in report.findings)
    assert report.needs_reason == report.findings
    assert report.findings[0].message_nb == (
        "sma venter på oversettelse – godkjenning krever overstyring med begrunnelse"
    )
    assert report.findings[2].message_en == (
        "nn version is missing – approval needs an override with a reason"
    )
    assert report.render()[2] == (
        "⚠ [nn] språkversjon nn mangler – godkjenning krever overstyring med begrunnelse"
    )


def test_any_object_with_the_variant_attributes_can_be_linted() -> None:
    class Draft:
        def __init__(self, body: str) -> None:
            self.headline = "Flom"
            self.body = body
            self.awaiting_translation = False

    variants: dict[str, VariantText] = {"nb": Draft(f"Ring 999 88 777. {LINK}")}
    report = lint_message(
        variants,
        required_languages=["nb"],
        allowed_phones=[],
        allowed_emails=[],
        website_url=SITE,
    )
    assert codes(report) == [LintCode.PHONE]


# --- placeholders and speculation ----------------------------------------------------------


def test_unfilled_placeholders_warn() -> None:
    body = "Vannet er stengt i {sted} fra {{ tid }}.\nMøt opp [OPPMØTESTED] kl XX:XX.\nSett {}."
    report = lint(nb(body), known_placeholders=["[OPPMØTESTED]", "XX:XX", "sted"])
    found = [(f.excerpt, f.line) for f in report.findings if f.code == LintCode.PLACEHOLDER]
    assert found == [("{sted}", 1), ("{{ tid }}", 1), ("[OPPMØTESTED]", 2), ("XX:XX", 2)]
    first = report.findings[0]
    assert first.message_nb == "plassholder {sted} er ikke fylt ut (linje 1)"
    assert first.message_en == "placeholder {sted} is not filled in (line 1)"


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Det går rykter om at dammen har brist.", "rykter"),
        ("Dette ryktes på sosiale medier.", "ryktes"),
        ("Vi kommenterer ikke spekulasjoner.", "spekulasjoner"),
        ("Vi tror at vannet er trygt.", "Vi tror"),
        ("Veien åpner trolig i kveld.", "trolig"),
        ("Skolen er muligens stengt.", "muligens"),
        ("Det sies at brua er skadet.", "Det sies"),
        ("Brua er angivelig skadet.", "angivelig"),
        ("Ubekreftede opplysninger om skader.", "Ubekreftede"),
        ("Vegen opnar truleg i kveld.", "truleg"),
        ("There are rumours about the dam.", "rumours"),
        ("The bridge is allegedly damaged.", "allegedly"),
        ("We believe the water is safe.", "We believe"),
        ("The road will probably reopen.", "probably"),
    ],
)
def test_speculation_warns_with_the_phrase(text: str, phrase: str) -> None:
    report = lint(nb(text))
    [finding] = report.findings
    assert finding.code == LintCode.SPECULATION
    assert finding.excerpt == phrase
    assert f"«{phrase}»" in finding.message_nb
    assert f"“{phrase}”" in finding.message_en


@pytest.mark.parametrize(
    "text",
    [
        "Rv73 er stengt ved Svenskvollen. Politiet har bekreftet at ingen er skadet.",
        "Kokevarsel gjelder til fredag. Vannverket tar nye prøver i dag.",
        "The road is closed. The police confirm that nobody is hurt.",
        "Bruk trappen. Troms og Finnmark er ikke berørt. Probabilistisk modell.",
        "Mannskapene gjør en utrolig innsats. Hilsen vi Antarktis-forskere.",
    ],
)
def test_factual_text_does_not_warn(text: str) -> None:
    assert lint(nb(text)).findings == ()


def test_the_same_phrase_on_one_line_is_reported_once() -> None:
    report = lint(nb("Vi tror, vi tror.\nVi tror."))
    assert [f.line for f in report.findings] == [1, 2]


# --- extension point and order -------------------------------------------------------------


def test_extra_checks_run_on_every_variant_with_text() -> None:
    seen: list[str] = []

    def too_long(language: str, variant: VariantText) -> Iterable[LintFinding]:
        seen.append(language)
        if len(variant.body) > 30:
            yield LintFinding(
                severity=Severity.WARNING,
                code="sms-length",
                language=language,
                message_nb="for lang for SMS",
                message_en="too long for SMS",
            )

    variants = {
        "nb": MessageVariant("Flom", f"Kort. {LINK}"),
        "en": MessageVariant("Flood", "hattfjelldal.kommune.no"),
        "sma": MessageVariant("", ""),
    }
    report = lint(variants, extra_checks=[too_long])
    assert seen == ["nb", "en"]
    assert [(f.code, f.language) for f in report.findings] == [("sms-length", "nb")]


def test_blocks_come_first_then_language_and_place() -> None:
    variants = {
        "en": MessageVariant("Flood", f"We believe it is fine. {LINK}"),
        "nb": MessageVariant("Flom {sted}", f"Ring 999 88 777.\n{FNR_HAND}\n{LINK}"),
    }
    report = lint(variants, required_languages=["nb", "sma"])
    assert [(f.severity.value, f.language, f.code) for f in report.findings] == [
        ("block", "nb", LintCode.ID_NUMBER),
        ("warning", "nb", LintCode.PLACEHOLDER),
        ("warning", "nb", LintCode.PHONE),
        ("warning", "sma", LintCode.MISSING_LANGUAGE),
        ("warning", "en", LintCode.SPECULATION),
    ]
    assert [line[0] for line in report.render("en")] == ["✗", "⚠", "⚠", "⚠", "⚠"]
    assert len(report.blocks) == 1
    assert len(report.warnings) == 4


# --- characters that act instead of being read ---------------------------------------------


def test_a_control_character_is_a_hard_block_naming_it_and_where() -> None:
    body = "Rv73 er stengt.\nRing oss \x1b]0;x\x07 på 22 22 22 22\x1b[2J"
    report = lint({"nb": MessageVariant(headline="Flom", body=body)}, required_languages=["nb"])
    [block] = [f for f in report.blocks if f.code == LintCode.CONTROL_CHARACTER]
    assert block.override is Override.NOT_ALLOWED and report.hard_blocked
    assert (block.field, block.line, block.start) == ("body", 2, body.index("\x1b"))
    assert block.message_nb == (
        "usynlig styretegn U+001B ESCAPE (linje 2) og 2 til – fjern det før teksten sendes"
    )
    assert block.message_en.startswith("invisible control character U+001B ESCAPE (line 2)")


def test_a_direction_control_blocks_unless_overridden_with_a_reason() -> None:
    headline = "Flom \u2066i sentrum\u2069"
    report = lint({"nb": MessageVariant(headline=headline, body="Se nettsiden.")})
    [block] = report.blocks
    assert block.code == LintCode.CONTROL_CHARACTER and block.field == "headline"
    assert block.override is Override.WITH_REASON and not report.hard_blocked
    assert "U+2066 LEFT-TO-RIGHT ISOLATE (overskrift) og 1 til" in block.message_nb


@pytest.mark.parametrize(
    "text",
    [
        "Linje én\r\nlinje to\tmed tab",  # pasted from Windows
        "Myklebust\x0bsoft break from Word\x85NEL",
        "مرحبا \u200f123\u200e and \u061c",  # the marks right-to-left text needs
        "kl. 12\u00a000 \u00adsoft hyphen, 👨\u200d👩\u200d👧",
    ],
)
def test_white_space_and_the_marks_languages_need_pass(text: str) -> None:
    report = lint({"nb": MessageVariant(headline="Flom", body=text)})
    assert LintCode.CONTROL_CHARACTER not in [f.code for f in report.findings]
    assert lint_free_text(text, field="answer") == []


def test_free_texts_that_go_out_are_checked_for_control_characters_too() -> None:
    [finding] = lint_free_text("Svar:\nkom hit \x07", field="answer")
    assert finding.code == LintCode.CONTROL_CHARACTER and finding.line == 2
    assert finding.message_nb == (
        "usynlig styretegn U+0007 BELL (i svaret på spørsmålene, linje 2) – "
        "fjern det før teksten sendes"
    )
    assert [f.code for f in lint_free_text("Frys \u202e", field="freeze-notice")] == [
        LintCode.CONTROL_CHARACTER
    ]
    # A rumour's claim copied from a hostile post stays in the journal: only ID numbers.
    assert lint_free_text("Dammen \x1b[2J brast", field="rumour-claim") == []
    assert lint_free_text("skjult: \x1b[2J", field="hide-reason") == []
