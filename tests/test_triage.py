"""Triage of inbound posts (issue 11.2): labels, precedence, negation, playbook keywords.

The examples are written for these tests (bokmål, nynorsk, dialect, English, with typos
and without diacritics), not taken from any real feed. Each row says the label the
guideline asks for; rows the rules are known to get wrong are marked ``xfail(strict)``
with the reason, so the table reports its own accuracy and a fix shows up. The second
batch was written after the rules and run once before any change: 33 of 40 were right;
three general gaps it showed were then closed (a role named five words from the insult,
"ønsker å klage", "en vits"/"ignored"), the rest are the xfail rows. The third batch,
written after that, was run once the same way: 22 of 30 were right; a stem clash ("få
tak i" read as thanks via "takker") and a few missing words were then fixed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from krise_tui.playbook.loader import load_playbook
from krise_tui.rules.triage import (
    ACTIONS,
    PRECEDENCE,
    Action,
    Label,
    Triage,
    action_text,
    category_label,
    label_text,
    must_answer,
    triage,
)

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"
PLAYBOOK_FILES = {
    "skole": "alvorlig-hendelse-skole.yaml",
    "flom": "flom-og-skred.yaml",
    "vann": "forurenset-drikkevann.yaml",
    "strom": "strom-og-ekombrudd.yaml",
}

SQ = Label.SERVICE_QUESTION
FE = Label.FACTUAL_ERROR
DS = Label.DISSATISFIED
CR = Label.CRITICISM
RU = Label.RUMOUR
CP = Label.CASE_PROCESSING
AT = Label.ATTACK
IR = Label.IRRELEVANT


@cache
def playbook_keywords(name: str) -> Mapping[str, Sequence[str]]:
    return load_playbook(PLAYBOOKS / PLAYBOOK_FILES[name]).triage_keywords


def run(text: str, playbook: str | None = None) -> Triage:
    return triage(text, keywords=playbook_keywords(playbook) if playbook else None)


def miss(text: str, label: Label, why: str, playbook: str | None = None) -> object:
    """A row the rules get wrong today (strict: it fails loudly once it passes)."""
    return pytest.param(text, label, playbook, marks=pytest.mark.xfail(strict=True, reason=why))


# (post, label the guideline asks for, playbook whose triage_keywords apply)
TABLE: list[object] = [
    # -- service questions: always answered ------------------------------------------------
    ("Når kommer strømmen tilbake på Hattfjelldal sentrum?", SQ, None),
    ("Kva tid kjem straumen att?", SQ, None),
    ("Ka tid kjem straumen tebake te oss?", SQ, None),
    ("When will the power be back on?", SQ, None),
    ("Kan vi drikke vannet fra springen na?", SQ, None),
    ("Må vi koke vatnet før vi drikk det?", SQ, None),
    ("Is the school open tomorrow?", SQ, None),
    ("Hvor er nærmeste tilfluktsrom?", SQ, None),
    ("Hvilke veier er stengt etter raset?", SQ, None),
    ("Kor kan eg hente reint vatn?", SQ, None),
    ("Når blir søppelet henta denne uka?", SQ, None),
    ("Where is the evacuation centre?", SQ, None),
    ("Er barnehagen åpen i morgen?", SQ, None),
    ("Vi har fortsatt ikke vann i Bekkevegen", SQ, None),
    ("Does the boil water notice apply to Varntresk?", SQ, None),
    ("Korleis kjem eg meg til samlingsstaden?", SQ, None),
    ("Hvordan søker man om erstatning for kjelleren?", SQ, None),
    ("Do we need to boil the tap water in Hattfjelldal?", SQ, None),
    ("What is the phone number for the doctor on call?", SQ, None),
    ("nar kjem strommen", SQ, None),
    ("Når kommer strømmmen??", SQ, None),
    ("Får ikke tak i sønnen min, hvor kan jeg hente ham?", SQ, "skole"),
    ("Det er iskaldt her, finnes det en varmestue?", SQ, "strom"),
    ("Jeg er journalist i Helgelendingen, når er pressemøtet?", SQ, "skole"),
    # -- factual errors: always answered, with facts ------------------------------------------
    ("Det dere skriver om kokevarselet er feil, det gjelder ikke Grubben.", FE, None),
    ("Adressen til samlingsstedet på nettsiden er feil", FE, None),
    ("Your map is wrong, the bridge at Laksfors is open.", FE, None),
    ("Det stemmer ikkje, vegen er open no.", FE, None),
    ("Dette er feilinformasjon, skolen er ikke stengt", FE, None),
    ("That's not correct, the shelter is at the school, not the town hall.", FE, None),
    ("Det de skriv på nettsida er feil, brua er ikkje stengd", FE, None),
    ("Vannet er forgiftet, ikke drikk det!", FE, "vann"),
    ("Demningen har brast og hele dalen blir oversvømt", FE, "flom"),
    # -- dissatisfied users: always answered ---------------------------------------------------
    ("Jeg er skikkelig lei av at strømmen går hele tiden", DS, None),
    ("Eg er misnøgd med heimetenesta, dei kom ikkje i dag", DS, None),
    ("Still waiting for someone to answer my email. Not happy.", DS, None),
    ("Tredje gang denne uka vi er uten vann!!", DS, None),
    ("Ingen tar telefonen på servicetorget, så frustrerende", DS, None),
    ("Takk for ingenting.", DS, None),
    ("Thanks for nothing, the bins haven't been emptied in three weeks", DS, None),
    ("Æ e så skuffa, ingen har svart mæ", DS, None),
    ("Ikke bra at veien fortsatt er stengt", DS, None),
    ("I'm not satisfied with the home care my mother gets", DS, None),
    # -- criticism: answered with facts, never hidden -----------------------------------------
    ("Kommunen varslet altfor sent, dette er en skandale", CR, None),
    ("Kommunen har handtert dette dårleg, og informasjonen kom for seint", CR, None),
    ("The council failed us. You should have warned us days ago.", CR, None),
    ("Hvorfor varslet dere ikke før flommen kom?", CR, None),
    ("Jævla dårlig håndtert av kommunen, dere varslet altfor sent!", CR, None),
    ("Dere er noen idioter i kommunen som ikke har gjort noe med veien på ti år", CR, None),
    ("This is a disgrace. Where was the council when the river flooded?", CR, None),
    ("Kriseledelsen sover i timen og vi får null informasjon", CR, None),
    ("What a shitshow. The council's handling of the flood was pathetic.", CR, None),
    miss(
        "Skandalle at dere ikke har varslet noen",
        CR,
        "a typo in a prefix pattern (skandale*) is not forgiven, and 'ikke har varslet' "
        "is not the listed word order 'har ikke varslet'",
    ),
    ("Hvorfor må vi koke vannet?", CR, "vann"),  # the playbook lists "hvorfor" as criticism
    ("Får vi erstatning for alt flaskevannet vi har kjøpt?", CR, "vann"),
    # -- rumours: to the rumour tracker ------------------------------------------------------
    ("Jeg hørte at dammen har brist", RU, None),
    ("De sier at dammen har brist, stemmer det?", RU, None),
    ("Eg høyrde at skulen skal stengje heile veka", RU, None),
    ("Is it true that the water is poisoned?", RU, None),
    ("People are saying the bridge collapsed. Anyone know?", RU, None),
    ("Visstnok skal hele sentrum evakueres i natt", RU, None),
    ("Dammen har brist, ikke sant?", RU, None),
    ("Er det ikke sant at dere har stengt skolen?", RU, None),
    ("horte at vannverket er stengt", RU, None),
    ("Noen sier det var sabotasje mot nettet", RU, "strom"),
    ("Er det flere skoler som er stengt nå?", RU, "skole"),
    # -- case processing: standard reply, to the archive --------------------------------------
    ("Jeg har søkt om refusjon for flaskevann, saksnummer 23/1234. Når får jeg svar?", CP, None),
    ("Jeg vil klage på vedtaket om byggetillatelse på gnr 12 bnr 3", CP, None),
    ("Søknaden min om startlån har lege i tre månader", CP, None),
    ("I want to appeal the decision on my planning permission", CP, None),
    ("Vi krever erstatning for kjelleren som ble oversvømt", CP, None),
    ("Please process my application for a building permit", CP, None),
    ("Hvordan går det med kompensasjon? Jeg sendte søknad for en måned siden", CP, "strom"),
    ("Trenger jeg dispensasjon for å bygge flomvoll?", CP, "flom"),
    # -- attacks: hidden with a reason, never deleted -----------------------------------------
    ("Ordføreren er en idiot og burde gå av", AT, None),
    ("Håper noen tar rådmannen for dette, han er et svin", AT, None),
    ("Svinebonden på Moen trenger hjelp med dyra i flommen", SQ, None),  # not an insult
    ("Jeg skal drepe ordføreren hvis vannet ikke er tilbake i morgen", AT, None),
    ("Eg veit kor du bur, pass deg", AT, None),
    ("Faen ta deg, din jævla drittsekk", AT, None),
    ("Send alle de jævla innvandrerne hjem", AT, None),
    miss(
        "Kill the mayor",
        AT,
        "an imperative threat has no 'I will'/'should' before the verb, which the "
        "threat rule requires so that warnings ('the cold can kill you') are not threats",
    ),
    ("Du er en løgner og en klovn, saksbehandler Hansen", AT, None),
    # -- irrelevant: spam, off-topic, positive chatter ----------------------------------------
    ("Tusen takk til alle som jobber i natt! 👏", IR, None),
    ("Takk for god informasjon, de gjer ein god jobb", IR, None),
    ("Great job everyone, well done!", IR, None),
    ("Tjen penger hjemmefra! Klikk her: https://spam.example", IR, None),
    miss(
        "Noen som har sett katten min? Den er grå og heter Pus",
        IR,
        "an off-topic question is taken for a question to the municipality: a missed "
        "question costs more than an operator's glance, so any question counts",
    ),
    ("Anyone selling a used snowblower? DM me", IR, None),
    ("Flott bilde av fjellet i dag", IR, None),
    ("Heia Hattfjelldal IL! 3-0 i dag", IR, None),
    ("asdf qwerty", IR, None),
    ("", IR, None),
    # -- negation ----------------------------------------------------------------------------
    ("Det er ikke sant at dammen har brist, slutt å spre rykter", IR, None),
    ("Jeg er ikke misfornøyd, bare lurer på når bussen går", SQ, None),
    ("Jeg er ikke fornøyd med brøytinga i år", DS, None),
    ("We are not happy with the way the roads are cleared", DS, None),
    # -- precedence ---------------------------------------------------------------------------
    ("You moron, answer the question! When is the road open?", AT, None),
    ("Din idiot, når kommer strømmen tilbake?", AT, None),
    ("Rådmannen er en inkompetent idiot, kommunen har sviktet oss totalt", AT, None),
    ("Dette er en skandale, jeg vil klage på vedtaket om skoleskyss", CP, None),
    ("Regarding my invoice for water and sewage, the amount is wrong", CP, None),
    ("Jeg er så lei av at ingen sier noe. Stemmer det at dammen har brist?", DS, None),
    ("Hjelp oss, din idiot, vi sitter fast på taket!", SQ, None),
    ("Naboen er savnet etter raset, ring 112!", SQ, "flom"),
    ("Takk for svar, men dette kom altfor sent", CR, None),
    # -- a second batch, written after the rules (see the module docstring) -------------------
    ("Er det trygt å dusje i vannet?", SQ, "vann"),
    ("Har dere noen oversikt over hvilke hus som er uten strøm?", SQ, None),
    ("Går skolebussen som vanlig i morgen", SQ, None),
    ("Kor lenge varer kokevarselet?", SQ, None),
    ("Can I still use the dishwasher?", SQ, None),
    ("Mamma på 89 bor alene uten strøm, kan noen sjekke på henne?", SQ, "strom"),
    ("Kan eg søkje om straumstøtte?", SQ, None),
    miss(
        "Nettsiden sier at brua er åpen, men den er stengt",
        FE,
        "a contradiction of the website without a word for 'wrong' is not recognised",
    ),
    ("Telefonnummeret dere oppga til legevakten er feil", FE, None),
    ("The times you posted for the water tanker are incorrect", FE, None),
    ("Vi har ventet i fire timer på vannkanna som ble lovet", DS, None),
    ("Eg er så lei av dette, tredje straumbrotet denne veka", DS, None),
    ("Very disappointed that nobody from the council has called back", DS, None),
    ("Søpla har ikkje vorte henta på tre veker, elendig", DS, None),
    ("Idiotisk å stenge skolen for litt snø", DS, None),
    ("Kommunen burde ha stengt vannverket mye tidligere. Ansvarsløst!", CR, None),
    ("Beredskapen i denne kommunen er en vits", CR, None),
    ("Why did the council ignore the warnings about the dam?", CR, None),
    ("Dere har sovet i timen, brøytinga har vært elendig hele vinteren", CR, None),
    ("Det går ikkje an å få tak i nokon på kommunen, skandaløst", CR, None),
    miss(
        "Noen på Facebook skriver at politiet har sperret av hele sentrum",
        RU,
        "words between the parts of a hearsay cue ('noen … skriver') break the phrase",
    ),
    ("Stemmer det at flere barn er skadet?", RU, "skole"),
    ("I heard the water treatment plant was sabotaged", RU, None),
    ("Kva er det med ryktet om at brua rasar?", RU, None),
    ("Har dokker hørt at skolen skal stenges resten av veka?", RU, None),
    ("Jeg ønsker å klage på eiendomsskatten min for 2025", CP, None),
    ("Hei, jeg søkte om barnehageplass i mars og har ikke hørt noe", CP, None),
    ("I would like a refund for the water bill this quarter", CP, "vann"),
    ("Kan dere behandle søknaden min om dispensasjon raskt?", CP, "flom"),
    ("Ordfører Nilsen er en feig kødd", AT, None),
    ("Kommunedirektøren burde skytes", AT, None),
    ("Du er ei jævla hore", AT, None),
    ("I hope you die in a fire, you corrupt bastard", AT, None),
    ("Du og dine idioter i kriseledelsen burde skamme dere", AT, None),
    ("Fantastisk innsats av mannskapene i natt!", IR, None),
    ("God helg alle sammen", IR, None),
    ("Selger ved, 50 kr sekken, send pm", IR, None),
    ("Thank you so much to the volunteers", IR, None),
    ("Ingen grunn til panikk, dammen er sjekket og er trygg", IR, None),
    miss("Hvem vant kampen i går?", IR, "an off-topic question (see the lost cat above)"),
    # -- a third batch, written after the second; run once before any change ---------------
    ("Gjelder kokevarselet også for de som har egen brønn?", SQ, "vann"),
    ("Kvar skal vi møte opp viss vi må evakuere?", SQ, "flom"),
    ("Is there a warm shelter open tonight?", SQ, "strom"),
    ("Når åpner skolen igjen etter det som skjedde?", SQ, "skole"),
    ("Hei! Blir det henting av glass og metall på fredag?", SQ, None),
    ("Trenger hjelp med å få tak i medisiner til far, apoteket er stengt", SQ, None),
    ("Kartet dere la ut viser feil område, Bjørnmo er ikke med", FE, None),
    miss(
        "Det står på nettsida at vannposten er ved Coop, men den står ved skolen. Rett opp",
        FE,
        "a contradiction of the website without a word for 'wrong' is not recognised",
    ),
    ("Your post says the road is closed until Friday, that's outdated", FE, None),
    ("Har ringt tre ganger i dag uten svar. Forventer bedre.", DS, None),
    ("Elendig service fra teknisk etat, ingen kom for å se på skaden", DS, None),
    ("Fed up with the constant power cuts here", DS, None),
    ("Kommunen har visst om rasfaren i årevis uten å gjøre noe. Skammelig.", CR, None),
    ("Informasjonen fra kriseledelsen har vært mangelfull og kommer alltid for sent", CR, None),
    ("The municipality's response has been completely inadequate", CR, None),
    miss(
        "Kvifor fekk vi ikkje varsel før vatnet vart stengt?",
        CR,
        "a why-not question is criticism only when it names the municipality ('dere', "
        "'kommunen'); 'vi fekk ikkje varsel' does not",
    ),
    ("Ryktet sier at Coop skal stenge på grunn av vannet", RU, None),
    ("Naboen sa at det er funnet e.coli i hele nettet, er det riktig?", RU, "vann"),
    ("Someone told me the school shooter is still at large??", RU, "skole"),
    ("Angivelig skal strømmen være borte i en uke til", RU, None),
    ("Jeg vil søke om fritak fra kommunale avgifter på grunn av flommen", CP, None),
    ("Vedtaket om tilskudd til meg er feil, jeg påklager det herved", CP, None),
    ("I applied for housing support in January and still have no decision", CP, None),
    ("Rådmann Olsen er en løgner og en feiging", AT, None),
    miss(
        "Noen burde banke vett i den ordføreren",
        AT,
        "an idiom of violence ('banke vett i') is not in the threat lexicon",
    ),
    ("Go back to your country, we don't want you here", AT, None),
    ("Så fint at dere holder oss oppdatert 👍", IR, None),
    ("Vinn et gavekort på 5000 kr! Del og lik", IR, None),
    ("lol", IR, None),
    ("Gratulerer med dagen til alle mødre!", IR, None),
]


@pytest.mark.parametrize(("text", "label", "playbook"), TABLE)
def test_table(text: str, label: Label, playbook: str | None) -> None:
    result = run(text, playbook)
    assert result.label is label, (result.label, result.reasons)
    assert result.action is ACTIONS[label]


def test_the_table_is_large_and_covers_every_label() -> None:
    rows = [row for row in TABLE if not hasattr(row, "marks")]  # xfail rows left out
    assert len(TABLE) >= 60
    assert {label for _, label, _ in rows} == set(Label)
    assert {playbook for _, _, playbook in rows if playbook} == set(PLAYBOOK_FILES)
    for lang_sample in ("Kva", "ikkje", "When", "Jeg"):  # bokmål, nynorsk and English
        assert any(lang_sample in text for text, _, _ in rows)


# -- what a result carries ----------------------------------------------------------------------


def test_reasons_quote_the_words_as_written() -> None:
    result = run("Eg høyrde at skulen skal stengje heile veka")
    assert any("høyrde at" in reason for reason in result.reasons)
    result = run("Kva tid kjem straumen att?")
    assert any("straumen" in reason for reason in result.reasons)


def test_an_attack_keeps_its_question_for_the_batch_answer() -> None:
    result = run("Din idiot, når kommer strømmen tilbake?")
    assert result.action is Action.HIDE_WITH_REASON
    assert result.also == (SQ,)
    assert result.follow_ups == (Action.ANSWER,)
    assert any("precedence" in reason for reason in result.reasons)


def test_rude_criticism_is_never_hidden() -> None:
    result = run("Jævla dårlig håndtert av kommunen, dere varslet altfor sent!")
    assert result.action is Action.ANSWER_FACTS_NEVER_HIDE
    assert AT not in result.also
    assert any("not an attack" in reason for reason in result.reasons)


def test_a_personal_attack_with_criticism_keeps_the_criticism() -> None:
    result = run("Rådmannen er en inkompetent idiot, kommunen har sviktet oss totalt")
    assert result.label is AT
    assert CR in result.also
    assert Action.ANSWER in result.follow_ups


def test_a_rumour_under_another_label_still_goes_to_the_tracker() -> None:
    result = run("Jeg er så lei av at ingen sier noe. Stemmer det at dammen har brist?")
    assert result.label is DS
    assert RU in result.also
    assert result.follow_ups == (Action.TRACK_RUMOUR,)


def test_a_known_rumour_stated_as_fact_is_corrected_and_tracked() -> None:
    result = run("Vannet er forgiftet, ikke drikk det!", "vann")
    assert result.label is FE
    assert Action.TRACK_RUMOUR in result.follow_ups


def test_urgent_posts_are_never_hidden() -> None:
    result = run("Hjelp oss, din idiot, vi sitter fast på taket!")
    assert result.urgent
    assert result.label is SQ
    assert AT in result.also
    assert any("112" in reason for reason in result.reasons)


@pytest.mark.parametrize(
    "text",
    [
        "Vannet kan drepe deg hvis du drikker det ukokt",
        "The cold will kill you if the power stays off",
        "Pass deg for glatte veier i dag",
        "Jeg skal ta deg med til legevakten",
    ],
)
def test_warnings_are_not_threats(text: str) -> None:
    assert run(text).label is not AT


def test_a_negated_emergency_is_not_urgent() -> None:
    assert not run("Ingen er skadet etter raset, men veien er stengt", "flom").urgent


def test_playbook_categories_are_reported() -> None:
    result = run("Naboen er savnet etter raset, ring 112!", "flom")
    assert result.urgent
    assert "akutt" in result.categories
    result = run("Det er iskaldt her, finnes det en varmestue?", "strom")
    assert result.categories == ("varme",)


def test_playbook_keywords_override_the_built_in_meaning() -> None:
    text = "Får vi erstatning for alt flaskevannet vi har kjøpt?"
    assert run(text).label is SQ  # built in: a case word, outweighed by the question
    assert run(text, "vann").label is CR  # the playbook lists it as criticism
    custom = {"kritikk": ["erstatning"]}
    assert triage("Kan vi få erstatning?", keywords=custom).label is CR


def test_a_bare_string_is_one_keyword() -> None:
    assert triage("Hva med skolebussen?", keywords={"kritikk": "skolebuss"}).label is CR
    assert triage("Er det kaldt ute?", keywords={"kritikk": "skolebuss"}).label is SQ


def test_playbook_keywords_extend_the_lexicon_with_inflections() -> None:
    keywords = {"hets": ["hurpe"], "skred": ["jordskred"]}
    assert triage("Ordføreren er ei hurpe", keywords=keywords).label is AT
    result = triage("Jordskredet har tatt vegen", keywords=keywords)
    assert result.label is SQ
    assert result.categories == ("skred",)


def test_case_processing_is_answered_with_the_playbook_reply() -> None:
    result = run("Jeg har søkt om refusjon for flaskevann, saksnummer 23/1234")
    assert result.action is Action.STANDARD_REPLY_AND_ARCHIVE
    reply = load_playbook(PLAYBOOKS / PLAYBOOK_FILES["vann"]).case_processing_reply["nb"]
    assert reply.startswith("Vi takker for henvendelsen.")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Når kommer strømmen tilbake?", "nb"),
        ("Kva tid kjem straumen att, og kvifor er det ikkje vatn?", "nn"),
        ("When will the power be back on?", "en"),
        ("🙂🙂", "und"),
    ],
)
def test_language(text: str, language: str) -> None:
    assert triage(text).language == language


def test_confidence_grows_with_evidence() -> None:
    weak = triage("Vannet er brunt")
    strong = triage("Kommunen varslet altfor sent, dette er en skandale, dere har sviktet")
    assert 0 < weak.confidence < strong.confidence <= 1


# -- labels, actions and their names --------------------------------------------------------------


def test_every_label_has_an_action_and_a_place_in_the_precedence() -> None:
    assert set(ACTIONS) == set(Label)
    assert sorted(PRECEDENCE) == sorted(Label)
    assert PRECEDENCE[0] is AT
    assert PRECEDENCE[-1] is IR


@pytest.mark.parametrize(
    ("label", "answered"),
    [
        (SQ, True),
        (FE, True),
        (DS, True),
        (CR, True),
        (CP, False),
        (RU, False),
        (AT, False),
        (IR, False),
    ],
)
def test_must_answer(label: Label, answered: bool) -> None:
    assert must_answer(label) is answered


def test_names_in_every_language() -> None:
    for lang in ("nb", "nn", "en"):
        assert len({label_text(label, lang) for label in Label}) == len(Label)
        assert len({action_text(action, lang) for action in Action}) == len(Action)
    assert label_text(SQ) == "spørsmål om tjenester"
    assert label_text(SQ, "nn") == "spørsmål om tenester"
    assert label_text(AT, "en") == "attack/offensive"
    assert label_text(CP, "sma") == "saksbehandling"  # no approved South Sami terms yet
    assert label_text(FE, "en-GB") == "factual error"


def test_category_ids_of_the_playbooks_map_to_labels() -> None:
    expected = {"rykte": RU, "saksbehandling": CP, "kritikk": CR}
    for name in PLAYBOOK_FILES:
        for category in playbook_keywords(name):
            assert category_label(category) is expected.get(category, SQ), category
    assert category_label("attack") is AT
    assert category_label("Faktafeil") is FE
    assert category_label("service_question") is SQ
    assert category_label("spam") is IR


# -- properties: never raises, deterministic ------------------------------------------------------

KEYWORDS = st.dictionaries(
    st.text(max_size=12),
    st.lists(st.text(max_size=24), min_size=1, max_size=3),
    max_size=3,
)


def check_invariants(result: Triage) -> None:
    assert result.action is ACTIONS[result.label]
    assert 0.0 <= result.confidence <= 1.0
    assert result.reasons
    assert result.label not in result.also
    assert IR not in result.also
    order = [PRECEDENCE.index(label) for label in result.also]
    assert order == sorted(order)
    if result.urgent:
        assert result.label not in (AT, IR)
    else:
        assert all(PRECEDENCE.index(result.label) < index for index in order)
    assert result.language in ("nb", "nn", "en", "sv", "und")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_triaged_deterministically(text: str) -> None:
    first = triage(text)
    check_invariants(first)
    assert triage(text) == first


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=120), KEYWORDS)
def test_any_keywords_are_accepted(text: str, keywords: dict[str, list[str]]) -> None:
    first = triage(text, keywords=keywords)
    check_invariants(first)
    assert triage(text, keywords=dict(reversed(list(keywords.items())))) == first


SIGNAL_TEXT = (
    "jeg du dere kommunen ikke ikkje not hørte at stemmer det idiot jævla takk vannet "
    "strømmen søknad klage skandale feil ? ! . , ring 112 hjelp oss"
)
SIGNAL_WORDS = tuple(SIGNAL_TEXT.split())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(SIGNAL_WORDS), max_size=25))
def test_word_salad_of_signal_words(tokens: list[str]) -> None:
    text = " ".join(tokens)
    first = triage(text)
    check_invariants(first)
    assert triage(text) == first
