"""Triage of inbound posts from the public: one label, the reasons, the action (issue 11.2).

Posts reach the console from Facebook, Mastodon, SMS, e-mail and the website's question
form. The municipality's social-media guideline says how each kind of post is handled
(DOMAIN §B, rules 9–15); this module sorts a post into one of those kinds so the console
can start the right action and SLA timer:

==================  ============================  =========================================
label               action                        guideline
==================  ============================  =========================================
service_question    answer                        "Svar alltid når … spørsmål om kommunens
                                                  virksomhet" (same day, rule 9–10)
factual_error       answer                        "Svar alltid når: Innlegg inneholder
                                                  faktafeil" (correct with facts)
dissatisfied        answer                        "… kommer fra en misfornøyd bruker"
criticism           answer_facts_never_hide       "Vi sletter aldri slike innlegg … holder
                                                  oss til fakta … beklager og forteller
                                                  hva kommunen vil gjøre"
rumour              track_rumour                  "Vi kommenterer ikke rykter og
                                                  spekulasjoner" → the rumour register
case_processing     standard_reply_and_archive    "Ikke foreta saksbehandling" → the
                                                  playbook's ``case_processing_reply``
attack              hide_with_reason              "Personangrep og lovstridig innhold
                                                  fjernes" → a journaled hide, never delete
irrelevant          none                          off-topic, spam, positive chatter
                                                  (answering positive posts is optional)
==================  ============================  =========================================

How it works: a lexicon of phrases (bokmål, nynorsk and common dialect forms, English)
is matched against the post after :mod:`krise_tui.text.normalise` has cleaned it,
rewritten nynorsk/dialect to bokmål, stemmed it and folded diacritics, so "Kva tid kjem
straumen?", "strom" and "Strømmen" meet the same entries; words of six letters or more
also match with one typo. Each match is a *signal* with a weight; signals add up to a
score per label, and a label is present from :data:`PRESENT_AT`. The playbook's
``triage_keywords`` (category id → words) extend the lexicon and override a built-in
entry with the same words (:func:`category_label` says how an id maps to a label).

Which label decides when several are present is :data:`PRECEDENCE`, from the guideline;
the others are kept in :attr:`Triage.also`, and :attr:`Triage.follow_ups` says what they
still require (an attack that asks a question is hidden, but its question is answered
in the shared batch answer — DOMAIN rule 4). Mere rudeness is never an attack: only
threats, hate, vulgar abuse and insults aimed at a person are, so criticism with a rude
word stays criticism and is never hidden. A post that mentions an emergency ("ring 112",
the playbook's ``akutt`` words) is :attr:`Triage.urgent` and is never labelled attack or
irrelevant.

Pure and deterministic: no I/O, no model, no clock; the compiled lexicon is cached per
keyword set. A person can always relabel a post; :attr:`Triage.reasons` says which words
led to the label so the choice can be checked.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from functools import lru_cache
from typing import Final, Literal

from krise_tui.text.normalise import Language, clean, fold, guess_language, standardise, stem, words

__all__ = [
    "ACTIONS",
    "PRECEDENCE",
    "PRESENT_AT",
    "Action",
    "Label",
    "Triage",
    "action_for",
    "action_text",
    "category_label",
    "label_text",
    "must_answer",
    "triage",
]


class Label(StrEnum):
    """What kind of post this is, in the guideline's terms."""

    SERVICE_QUESTION = "service_question"
    FACTUAL_ERROR = "factual_error"
    DISSATISFIED = "dissatisfied"
    CRITICISM = "criticism"
    RUMOUR = "rumour"
    CASE_PROCESSING = "case_processing"
    ATTACK = "attack"
    IRRELEVANT = "irrelevant"


class Action(StrEnum):
    """What the guideline requires for a label."""

    ANSWER = "answer"
    """Answer the same day (or a preliminary answer saying when)."""
    ANSWER_FACTS_NEVER_HIDE = "answer_facts_never_hide"
    """Answer with facts, apologise where due, say what will be done; never hide."""
    TRACK_RUMOUR = "track_rumour"
    """Hand to the rumour register; the correction there is the answer."""
    STANDARD_REPLY_AND_ARCHIVE = "standard_reply_and_archive"
    """Reply with the playbook's ``case_processing_reply``; mark as a journal candidate."""
    HIDE_WITH_REASON = "hide_with_reason"
    """No dialogue; hide on channels we control, journaled with the reason; never delete.
    Elsewhere: report to whoever runs the channel."""
    NONE = "none"
    """Nothing required (answering a positive post is optional but encouraged)."""


PRECEDENCE: Final[tuple[Label, ...]] = (
    Label.ATTACK,
    Label.CASE_PROCESSING,
    Label.CRITICISM,
    Label.FACTUAL_ERROR,
    Label.DISSATISFIED,
    Label.RUMOUR,
    Label.SERVICE_QUESTION,
    Label.IRRELEVANT,
)
"""Which present label decides the action, first wins. Why this order (guideline p. 6):

1. attack — "personangrep og lovstridig innhold … går vi ikke i dialog … fjernes": no
   other label may open a dialogue with it. Questions and criticism in it are kept
   (:attr:`Triage.also`) and answered collectively, as the crisis section asks ("samle
   opp kritiske spørsmål og besvare dem samlet").
2. case_processing — "Ikke foreta saksbehandling" and "Ikke gi konkrete svar på kritikk,
   som skal ha formell behandling … henvise til riktig adressat": a post that needs case
   processing gets the standard reply even when it also criticises or asks.
3. criticism — never hidden; its answer (facts, apology, what will be done) covers a
   factual error or dissatisfaction in the same post.
4. factual_error, 5. dissatisfied — "Svar alltid"; a factual error needs facts first.
6. rumour — "Vi kommenterer ikke rykter": the register's correction answers it, so it
   outranks a plain question (an "is it true that …?" is a rumour), but not the labels
   above, whose answer the correction would not give; the rumour still goes to the
   register as a follow-up.
7. service_question — always answered. 8. irrelevant — only when nothing else is.
"""

PRESENT_AT: Final = 1.0
"""A label whose signals add up to this is present (a single ordinary signal does)."""

ACTIONS: Final[Mapping[Label, Action]] = {
    Label.SERVICE_QUESTION: Action.ANSWER,
    Label.FACTUAL_ERROR: Action.ANSWER,
    Label.DISSATISFIED: Action.ANSWER,
    Label.CRITICISM: Action.ANSWER_FACTS_NEVER_HIDE,
    Label.RUMOUR: Action.TRACK_RUMOUR,
    Label.CASE_PROCESSING: Action.STANDARD_REPLY_AND_ARCHIVE,
    Label.ATTACK: Action.HIDE_WITH_REASON,
    Label.IRRELEVANT: Action.NONE,
}
"""The action the guideline requires for each label."""

_MUST_ANSWER: Final = frozenset(
    {Label.SERVICE_QUESTION, Label.FACTUAL_ERROR, Label.DISSATISFIED, Label.CRITICISM}
)


def must_answer(label: Label) -> bool:
    """Whether the guideline says a post with ``label`` is always answered (SLA timer).

    True for questions about services, factual errors and dissatisfied users ("Svar
    alltid når …") and for relevant criticism ("tar vi den på alvor … Når vi svarer").
    Not for case processing, whose standard reply is its own action, nor for rumours,
    which the rumour register's correction answers, nor for attacks (no dialogue).
    """
    return label in _MUST_ANSWER


def action_for(label: Label) -> Action:
    """The action the guideline requires for ``label``."""
    return ACTIONS[label]


# --- names for the UI ------------------------------------------------------------------

_LABEL_NAMES: Final[Mapping[str, Mapping[Label, str]]] = {
    "nb": {
        Label.SERVICE_QUESTION: "spørsmål om tjenester",
        Label.FACTUAL_ERROR: "faktafeil",
        Label.DISSATISFIED: "misfornøyd",
        Label.CRITICISM: "kritikk",
        Label.RUMOUR: "rykte",
        Label.CASE_PROCESSING: "saksbehandling",
        Label.ATTACK: "angrep/krenkende",
        Label.IRRELEVANT: "irrelevant",
    },
    "nn": {
        Label.SERVICE_QUESTION: "spørsmål om tenester",
        Label.FACTUAL_ERROR: "faktafeil",
        Label.DISSATISFIED: "misnøgd",
        Label.CRITICISM: "kritikk",
        Label.RUMOUR: "rykte",
        Label.CASE_PROCESSING: "sakshandsaming",
        Label.ATTACK: "åtak/krenkjande",
        Label.IRRELEVANT: "irrelevant",
    },
    "en": {
        Label.SERVICE_QUESTION: "service question",
        Label.FACTUAL_ERROR: "factual error",
        Label.DISSATISFIED: "dissatisfied",
        Label.CRITICISM: "criticism",
        Label.RUMOUR: "rumour",
        Label.CASE_PROCESSING: "case processing",
        Label.ATTACK: "attack/offensive",
        Label.IRRELEVANT: "irrelevant",
    },
}

_ACTION_NAMES: Final[Mapping[str, Mapping[Action, str]]] = {
    "nb": {
        Action.ANSWER: "svar samme dag",
        Action.ANSWER_FACTS_NEVER_HIDE: "svar med fakta – aldri skjul eller slett",
        Action.TRACK_RUMOUR: "send til ryktesporing",
        Action.STANDARD_REPLY_AND_ARCHIVE: "standardsvar og journalføring",
        Action.HIDE_WITH_REASON: "skjul med begrunnelse (journalført) – aldri slett",
        Action.NONE: "ingen handling",
    },
    "nn": {
        Action.ANSWER: "svar same dag",
        Action.ANSWER_FACTS_NEVER_HIDE: "svar med fakta – aldri skjul eller slett",
        Action.TRACK_RUMOUR: "send til ryktesporing",
        Action.STANDARD_REPLY_AND_ARCHIVE: "standardsvar og journalføring",
        Action.HIDE_WITH_REASON: "skjul med grunngjeving (journalført) – aldri slett",
        Action.NONE: "inga handling",
    },
    "en": {
        Action.ANSWER: "answer the same day",
        Action.ANSWER_FACTS_NEVER_HIDE: "answer with facts – never hide or delete",
        Action.TRACK_RUMOUR: "hand to the rumour tracker",
        Action.STANDARD_REPLY_AND_ARCHIVE: "standard reply and archive",
        Action.HIDE_WITH_REASON: "hide with a reason (journaled) – never delete",
        Action.NONE: "no action",
    },
}


def _ui_language(lang: str) -> str:
    # The municipality's written standard (nb) is the fallback for every other code,
    # South Sami included: there are no approved South Sami names for these terms yet.
    code = lang.strip().casefold().replace("_", "-")
    if code.startswith("nn"):
        return "nn"
    if code.startswith("en"):
        return "en"
    return "nb"


def label_text(label: Label, lang: str = "nb") -> str:
    """The name of ``label`` in ``lang`` (``nb``, ``nn`` or ``en``; others get ``nb``)."""
    return _LABEL_NAMES[_ui_language(lang)][label]


def action_text(action: Action, lang: str = "nb") -> str:
    """The name of ``action`` in ``lang`` (``nb``, ``nn`` or ``en``; others get ``nb``)."""
    return _ACTION_NAMES[_ui_language(lang)][action]


# --- the result --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Triage:
    """The label of one post, why, and what to do about it."""

    label: Label
    """The label that decides the action (:data:`PRECEDENCE`)."""
    confidence: float
    """0–1, from how much evidence the label has (two decimals); low means: look at it."""
    reasons: tuple[str, ...]
    """What matched, in words an operator can check ("rumour: hearsay cue «hørte at»")."""
    action: Action
    """What the guideline requires for :attr:`label`."""
    language: str
    """The post's language: ``nb``, ``nn``, ``en``, ``sv`` or ``und`` (undetermined)."""
    also: tuple[Label, ...] = ()
    """The other labels present, in precedence order (never ``irrelevant``)."""
    categories: tuple[str, ...] = ()
    """The playbook's category ids whose keywords matched, in first-match order."""
    urgent: bool = False
    """Someone may be in danger: show first, point to 112/113/110; never hidden."""

    @property
    def follow_ups(self) -> tuple[Action, ...]:
        """Actions the other labels still require on top of :attr:`action`.

        A hidden attack keeps its question or criticism: it is answered in the shared
        batch answer (not in the thread), and a case in it is still forwarded. A rumour
        under any other label still goes to the rumour register.
        """
        out: list[Action] = []
        if self.label is Label.ATTACK:
            if any(must_answer(label) for label in self.also):
                out.append(Action.ANSWER)
            if Label.CASE_PROCESSING in self.also:
                out.append(Action.STANDARD_REPLY_AND_ARCHIVE)
        if self.label is not Label.RUMOUR and Label.RUMOUR in self.also:
            out.append(Action.TRACK_RUMOUR)
        return tuple(out)


# --- lexicon -------------------------------------------------------------------------------


class _Kind(Enum):
    """What a lexicon entry signals."""

    THREAT = "threat"
    VIOLENCE = "violent word"  # a threat only when aimed at a person or the municipality
    HATE = "hate"
    ABUSE = "abuse"
    INSULT = "insult"  # an attack only when aimed at a person, else rudeness
    RUDE = "rude word"
    CASE_PERSONAL = "own case"
    CASE = "case word"
    HOWTO = "how-to question"
    CRITICISM = "criticism"
    NEGATIVE = "negative"
    DISSATISFIED = "dissatisfaction"
    FACT_ERROR = "says something is wrong"
    RUMOUR_CUE = "hearsay cue"
    RUMOUR_CLAIM = "known rumour claim"
    TOPIC = "service topic"
    QUESTION = "question phrase"
    POSITIVE = "praise"
    SPAM = "spam"
    URGENT = "emergency"


# Built-in lexicon: comma-separated phrases per kind. A phrase is matched word by word
# after normalisation (case, diacritics, nynorsk/dialect → bokmål); "word*" matches any
# word starting with "word", "*word" any word ending with it (compounds), "*word*" any
# word containing it. Other words match exactly, by stem, or (from six letters) with one
# typo. Nynorsk forms that normalise does not rewrite are listed next to the bokmål ones.
_BUILTIN: Final[Mapping[_Kind, str]] = {
    _Kind.THREAT: """
        skal drepe, skal drepa, skal ta livet av, burde drepes, bør drepes, burde skytes,
        bør skytes, burde henges, bør henges, skal henges, fortjener å dø, håper du dør,
        håper dere dør, dø i et hull, vet hvor du bor, vet hvor dere bor, du skal få svi,
        dere skal få svi, brenne ned rådhuset, brenne ned kommunehuset, sprenge rådhuset,
        banke deg, banke opp, få juling, gonna kill you, going to kill you, i will kill,
        ill kill, should be shot, should be hanged, hope you die, deserve to die,
        i know where you live, beat you up, watch your back, you will pay for this
    """,
    _Kind.VIOLENCE: """
        drepe, drepa, drep, skyte, skyta, henge, henga, knivstikke, stikke ned, sprenge,
        kill, stab
    """,
    _Kind.HATE: """
        neger, negre, negrer, nigger*, pakkis*, svarting*, sandneger*, sigøynerpakk,
        innvandrerpakk, utlendingspakk, muslimpakk, jævla muslimer, jævla innvandrere,
        faggot*, untermensch*, subhuman, go back to your country,
        reis hjem til ditt eget land
    """,
    _Kind.ABUSE: """
        fitte*, hore, horer, horeunge*, kukhue*, kuksuger*, pikkhue*, rasshøl*, rævhøl*,
        drittsekk*, søppelmenneske*, avskum, mongo, mongoer, faen ta deg, faen ta dere,
        fuck deg, fuck dere, dra til helvete, gå til helvete, fuck you, fuck off,
        go to hell, stfu, cunt*, bitch*, motherfucker*,
        asshole*, dickhead*, wanker*, scumbag*, piece of shit, retard, retards, retarded
    """,
    _Kind.INSULT: """
        idiot, idioten, idioter, idiotene, idiotar, tulling*, tosk, tosken, tosker, dust,
        dusten, duster, dustar, kødd, køddet, klovn, klovnen, klovner, dumskalle*,
        dumming*, tufs, tåpe, tåper, tomsing, løgnere, løgnaren, drittunge*, svin, svinet,
        kjeltring, kjeltringen, kjeltringer, skurk, skurken, skurker,
        moron*, fool, fools, clown, clowns, imbecile*, dumbass, jerk, jerks, liar, liars,
        hold kjeft, hald kjeft, shut up
    """,
    _Kind.RUDE: """
        faen, faens, jævla, jævlig, jævli, jævel, djevla, helvete, helvetes, hælvete,
        satan, satans, dritt*, drit, piss, shit*, crap, damn*, fucking, fuck, wtf,
        bullshit, tull, tullball, tøv, sprøyt, vrøvl
    """,
    _Kind.CASE_PERSONAL: """
        min søknad, søknaden min, søknaden vår, vår søknad, jeg har søkt, vi har søkt,
        jeg søkte, vi søkte, jeg vil søke, vi vil søke, jeg ønsker å søke, søker herved,
        jeg klager, jeg vil klage, vi vil klage, ønsker å klage, vil gjerne klage,
        jeg klaget, vi klager, klagen min,
        min klage, klaga mi, mi klage, vil påklage, påklager herved, klage på vedtak,
        klage på vedtaket, klager på vedtaket, vedtaket mitt, mitt vedtak, saken min,
        min sak, saka mi, mi sak, saken vår, vår sak, saksnummer, saksnr, saksnr.,
        referansenummer, gnr, bnr, fakturaen min, min faktura, regningen min,
        krav om innsyn, ber om innsyn, begjærer innsyn, jeg krever erstatning,
        vi krever erstatning, erstatningskrav, my application, i applied,
        i have applied, i want to apply, my complaint, i want to complain,
        i would like to complain, i wish to complain, appeal the decision,
        appeal against, my case, case number, reference number, my invoice, my bill,
        i want compensation, claim compensation, freedom of information request
    """,
    _Kind.CASE: """
        søknad, søknaden, søknader, *søknad, *søknaden, klage, klagen, påklage*,
        vedtak, vedtaket, byggesak*, dispensasjon*, refusjon*, skjenkebevilling*,
        innsyn, innsynskrav, erstatning, startlån, bostøtte, sosialhjelp, barnehageplass,
        skolebytte, application, complaint, appeal, refund, permit, planning permission,
        compensation
    """,
    _Kind.HOWTO: """
        hvordan søker, hvordan søke, hvor søker, hvor kan jeg søke, kan man søke,
        hvem kan søke, hvordan klager, hvordan klage, hvor sender, søknadsfrist*,
        klagefrist*, how do i apply, how can i apply, where do i apply, how to apply,
        who can apply, how do i complain, where can i complain
    """,
    _Kind.CRITICISM: """
        for sent, altfor sent, alt for sent, mye for sent, for seint, altfor seint,
        alt for seint, skandale*, skandaløs*, inkompetent*, inkompetanse, ansvarsløs*,
        amatørmessig*, amatører, sviktet, svikta, svikter, svikt, har sovet, sover i timen,
        sov i timen, dekker over, dekke over, mørklegg*, lyver, løy, løgner, løgn,
        skam dere, burde skamme, skammelig, burde ha varslet, skulle ha varslet,
        burde varslet, har ikke varslet, ingen varsling, ingen informasjon,
        null informasjon, dårlig informasjon, dårleg informasjon, mangelfull*,
        kritikkverdig*, dårlig håndtert, dårleg handtert, dårlig håndtering,
        elendig håndtering, håndtert dårlig, ikke godt nok, ikke bra nok, forsømt,
        forsømmelse, neglisjert, feil prioritering, prioritert feil, hvor var kommunen,
        hvor er kommunen, gjør ingenting, gjør ikke noe, gjort ingenting,
        har ikke gjort noe, ikke gjort noe, sparer på, spart på, kuttet i, kaos, kaotisk,
        too late, far too late, failed, failing, failure, incompetent, incompetence,
        irresponsible, disgrace*, scandal*, shameful, shame on, cover up, coverup,
        covering up, lying, lied, should have warned, no information, poorly handled,
        mismanag*, negligen*, neglect*, where was the council, not good enough,
        did nothing, done nothing, do nothing, ignorerte, ignorert, ignored, ignoring
    """,
    _Kind.NEGATIVE: """
        dårlig, dårlige, dårleg, dårlege, elendig, elendige, håpløs*, hopplaus*,
        forferdelig*, forferdeleg*, katastrofal*, uakseptabel*, uakseptabelt, ikke greit,
        latterlig*, idiotisk*, teit, teite, dumt, stupid*, tragisk, pinlig, flaut,
        terrible, awful, horrible, unacceptable, hopeless, useless, pathetic, appalling,
        ridiculous, dumb, poor, embarrassing, en vits, er en vits, a joke, en spøk,
        utilstrekkelig*, inadequate, insufficient
    """,
    _Kind.DISSATISFIED: """
        misfornøyd*, misnøgd*, misnøye, utilfreds*, skuffet, skuffa, skuffende, lei av,
        drittlei, forbanna, forbannet, frustrert*, frustrerende, irritert, irriterende,
        oppgitt, sint, venter fortsatt, venter framleis, har ventet, har venta,
        ingen har svart, ingen svarer, ingen tar telefonen, ikke fått svar,
        fikk ikke svar, aldri fått svar, tredje gang, andre gang, igjen og igjen,
        gang på gang, enda en gang, kom aldri, kom ikke, dårlig service, dårleg service,
        takk for ingenting, takk for null, disappointed, disappointing, unhappy, fed up,
        sick of, tired of, frustrated, frustrating, angry, annoyed, still waiting,
        been waiting, no one answered, nobody answered, no response, no reply,
        never came, didnt come, thanks for nothing, not satisfied, forventer bedre,
        uten svar, expect better
    """,
    _Kind.FACT_ERROR: """
        feil informasjon, feilinformasjon, feilaktig*, det er feil, dette er feil,
        er feil, stemmer ikke, ikke stemmer, ikke riktig, ikke korrekt, ikke sant,
        ikke rett, misvisende, villedende, feil adresse, feil dato, feil tidspunkt,
        feil klokkeslett, feil nummer, viser feil, feil område, feil telefonnummer,
        feil kart, feil sted,
        feil opplysning*, utdatert*, tar feil, wrong, incorrect, not correct, not true,
        isnt true, false information, misinformation, misleading, inaccurate, outdated,
        fake news, that is false, thats false
    """,
    _Kind.RUMOUR_CUE: """
        rykte*, ryktes, hørt at, hørte at, har hørt, hørt noe om, høyrt at, høyrde at,
        har høyrt, sies at, det sies, blir sagt, noen sier, folk sier, de sier, alle sier,
        visstnok, angivelig*, etter sigende, stemmer det, er det sant, er det riktig,
        er det ikke sant at, stemmer det ikke at, leste på facebook, så på facebook,
        står på facebook, deles på facebook, noen skriver, folk skriver,
        ifølge facebook, kan noen bekrefte, kan dere bekrefte, kan dere avkrefte,
        bekrefte eller avkrefte, går historier, rumour*, rumor*, heard that, i heard,
        ive heard, someone told me, fikk høre, people are saying, people say, they say,
        someone said, word is,
        apparently, allegedly, is it true, isnt it true, is it right that,
        can anyone confirm, can you confirm, saw on facebook, going around
    """,
    _Kind.TOPIC: """
        *vann*, kokevarsel*, koke*, kokt, brønn*, kran, kranen, springen, kloakk*,
        avløp*, septik*, renovasjon*, *søppel*, *avfall*, gjenvinning*, *tømming*,
        *strøm*, elektrisitet*, nettselskap*, aggregat*, lyset, varmestue*, fyring*,
        vei, veien, veier, veiene, veg, vegen, vegar, veger, *veien, *vegen, riksvei*,
        fylkesvei*, bru, brua, brui, broen, *brua, ferje*, ferge*, buss, bussen, busser,
        *bussen, skyss*, brøyt*, strøing, strøbil*, omkjøring*, ras, raset, skred*,
        *skred, flom*, oversvøm*, *skole*, *skulen*, barnehage*, sfo, undervisning*,
        tilfluktsrom*, evakuer*, samlingssted*, pårørendesenter*, krisesenter*,
        legevakt*, lege, legen, fastlege*, helsestasjon*, *sykehjem*, omsorg*,
        hjemmetjeneste*, hjemmesykepleie*, trygghetsalarm*, vaksin*, apotek*,
        kriseteam*, bibliotek*, svømmehall*, idrettshall*, brannvesen*, feiing, feier,
        eiendomsskatt*, gebyr*, nødnummer*, mobilnett*, internett*, dekning, bredbånd*,
        water, tap water, drinking water, sewage, sewer, waste, garbage, rubbish, trash,
        bin, bins, recycling, power, electricity, outage*, power cut, road*, bridge*,
        ferry*, bus, buses, school*, kindergarten*, nursery, daycare, shelter*,
        evacuat*, assembly point, doctor*, clinic*, emergency room, nursing home,
        home care, vaccin*, library, swimming pool, heating, boil*, internet,
        mobile network, phone signal, no signal
    """,
    _Kind.QUESTION: """
        lurer på, lurar på, noen som vet, vet noen, spørsmål, spør om, kan noen svare,
        kan dere svare, hvem kan svare, i wonder, wondering, does anyone know,
        anyone know, question, can someone tell, please advise
    """,
    _Kind.POSITIVE: """
        takk, tusen takk, mange takk, takker, flott*, bra, fint, bra jobba, bra jobbet,
        godt jobba,
        godt jobbet, god jobb, strålende, supert, super, fantastisk*, imponert,
        imponerende, heia, hurra, kjempebra, kjempeflott, glad for, glade for, fornøyd,
        nøgd, god informasjon, god info, thank you, thanks, thank, great, great job,
        well done, good job, awesome, amazing, appreciate*, grateful, brilliant, kudos,
        bravo, impressed, happy
    """,
    _Kind.SPAM: """
        klikk her, klikk på lenken, vinn en, du har vunnet, gratis iphone, gavekort*,
        rabattkode*, til salgs, selges, følg meg, sjekk ut profilen, bitcoin*, krypto*,
        crypto*, forex, tjen penger, tjene penger, jobb hjemmefra, casino*, onlyfans,
        viagra, click here, click the link, you have won, you won, free iphone,
        gift card*, promo code, discount code, for sale, follow me, check out my,
        make money, earn money, work from home, dm me
    """,
    _Kind.URGENT: """
        ring 112, ring 113, ring 110, ringe 112, ringe 113, ringe 110, hjelp oss,
        sitter fast, sit fast, innestengt, innestengd, innesperret, bevisstløs,
        medvitslaus, puster ikke, pustar ikke, får ikke puste, call 112, call 113,
        call 110, help us, trapped, unconscious, not breathing, cant breathe
    """,
}

# How much one match of a kind counts towards its label (see _score). Strong evidence
# (a threat, an own case) counts more than a single ambiguous word (a bare case word).
_WEIGHT: Final[Mapping[_Kind, float]] = {
    _Kind.THREAT: 3.0,
    _Kind.VIOLENCE: 3.0,
    _Kind.HATE: 3.0,
    _Kind.ABUSE: 3.0,
    _Kind.INSULT: 2.0,
    _Kind.RUDE: 0.5,
    _Kind.CASE_PERSONAL: 2.0,
    _Kind.CASE: 0.75,
    _Kind.HOWTO: 1.5,
    _Kind.CRITICISM: 1.5,
    _Kind.NEGATIVE: 1.0,
    _Kind.DISSATISFIED: 1.5,
    _Kind.FACT_ERROR: 1.5,
    _Kind.RUMOUR_CUE: 2.0,
    _Kind.RUMOUR_CLAIM: 1.0,
    _Kind.TOPIC: 1.0,
    _Kind.QUESTION: 1.0,
    _Kind.POSITIVE: 1.0,
    _Kind.SPAM: 2.0,
    _Kind.URGENT: 1.0,
}

# A playbook keyword is an explicit decision of the playbook's author: one match makes
# its label present, whatever the built-in weight of the kind.
_PLAYBOOK_WEIGHT: Final = 1.0

# Playbook category ids (folded, without - and _) that mean a label rather than a topic.
# Any other id is a topic of questions about the municipality's services.
_CATEGORY_KINDS: Final[Mapping[str, _Kind]] = {
    **dict.fromkeys(("rykte", "rykter", "rumour", "rumours", "rumor", "rumors"), _Kind.RUMOUR_CUE),
    **dict.fromkeys(
        ("saksbehandling", "sakshandsaming", "casework", "caseprocessing", "case"),
        _Kind.CASE,
    ),
    **dict.fromkeys(("kritikk", "criticism"), _Kind.CRITICISM),
    **dict.fromkeys(
        ("misfornoyd", "misnogd", "misnoye", "klager", "dissatisfied", "complaints"),
        _Kind.DISSATISFIED,
    ),
    **dict.fromkeys(("faktafeil", "feil", "factualerror", "factualerrors"), _Kind.FACT_ERROR),
    **dict.fromkeys(
        (
            "angrep",
            "krenkende",
            "krenkjande",
            "hets",
            "trusler",
            "truslar",
            "attack",
            "attacks",
            "abuse",
            "hate",
        ),
        _Kind.ABUSE,
    ),
    **dict.fromkeys(("spam", "reklame", "irrelevant"), _Kind.SPAM),
    **dict.fromkeys(("positiv", "positive", "ros", "praise"), _Kind.POSITIVE),
    **dict.fromkeys(("akutt", "naud", "nod", "urgent", "emergency"), _Kind.URGENT),
    **dict.fromkeys(("servicequestion", "sporsmal", "questions"), _Kind.TOPIC),
}

_KIND_LABEL: Final[Mapping[_Kind, Label]] = {
    _Kind.THREAT: Label.ATTACK,
    _Kind.VIOLENCE: Label.ATTACK,
    _Kind.HATE: Label.ATTACK,
    _Kind.ABUSE: Label.ATTACK,
    _Kind.INSULT: Label.ATTACK,
    _Kind.RUDE: Label.DISSATISFIED,
    _Kind.CASE_PERSONAL: Label.CASE_PROCESSING,
    _Kind.CASE: Label.CASE_PROCESSING,
    _Kind.HOWTO: Label.SERVICE_QUESTION,
    _Kind.CRITICISM: Label.CRITICISM,
    _Kind.NEGATIVE: Label.DISSATISFIED,
    _Kind.DISSATISFIED: Label.DISSATISFIED,
    _Kind.FACT_ERROR: Label.FACTUAL_ERROR,
    _Kind.RUMOUR_CUE: Label.RUMOUR,
    _Kind.RUMOUR_CLAIM: Label.RUMOUR,
    _Kind.TOPIC: Label.SERVICE_QUESTION,
    _Kind.QUESTION: Label.SERVICE_QUESTION,
    _Kind.POSITIVE: Label.IRRELEVANT,
    _Kind.SPAM: Label.IRRELEVANT,
    _Kind.URGENT: Label.SERVICE_QUESTION,
}


def _category_key(category: str) -> str:
    return re.sub(r"[-_\s]", "", fold(category))


def category_label(category: str) -> Label:
    """The label a playbook ``triage_keywords`` category id stands for.

    ``rykte`` → rumour, ``saksbehandling`` → case processing, ``kritikk`` → criticism,
    ``faktafeil``, ``misfornoyd``, ``angrep``, ``spam``/``irrelevant`` likewise, and a
    label's own id (``attack``, ``service_question`` …) is that label. Every other id
    (``drikkevann``, ``veier``, ``akutt`` …) is a topic of questions about the
    municipality's services; ``akutt``'s words also make a post urgent.
    """
    return _KIND_LABEL[_category_kind(category)]


def _category_kind(category: str) -> _Kind:
    key = _category_key(category)
    direct = {
        Label.SERVICE_QUESTION: _Kind.TOPIC,
        Label.FACTUAL_ERROR: _Kind.FACT_ERROR,
        Label.DISSATISFIED: _Kind.DISSATISFIED,
        Label.CRITICISM: _Kind.CRITICISM,
        Label.RUMOUR: _Kind.RUMOUR_CUE,
        Label.CASE_PROCESSING: _Kind.CASE,
        Label.ATTACK: _Kind.ABUSE,
        Label.IRRELEVANT: _Kind.SPAM,
    }
    for label, kind in direct.items():
        if key == label.value.replace("_", ""):
            return kind
    return _CATEGORY_KINDS.get(key, _Kind.TOPIC)


# --- compiled lexicon ---------------------------------------------------------------------

_Mode = Literal["exact", "prefix", "suffix", "infix", "flex"]

_FUZZY_MIN: Final = 6  # shorter words have too many one-letter neighbours
# Shorter words share stems by accident: "dere"/"der", and "tak" (få tak i) with the
# stem of "takker".
_STEM_MIN: Final = 5


@dataclass(frozen=True, slots=True)
class _Word:
    text: str
    mode: _Mode
    stems: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class _Entry:
    words: tuple[_Word, ...]
    kind: _Kind
    category: str | None  # the playbook category id; None for built-in entries


@dataclass(frozen=True, slots=True)
class _Tok:
    shown: str  # the word as written (casefolded): what a reason quotes
    folded: str
    stem: str


def _deletes(text: str) -> set[str]:
    return {text[:i] + text[i + 1 :] for i in range(len(text))}


def _near(a: str, b: str) -> bool:
    """Optimal string alignment distance of at most one (one typo, swaps included)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]) and a[
            diff[1]
        ] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _stems_of(word: str) -> frozenset[str]:
    # Patterns are not tied to one language: stem both ways and accept either.
    if len(word) < _STEM_MIN:
        return frozenset()
    return frozenset(fold(s) for s in (*stem([word], "no"), *stem([word], "en")))


def _word_matches(word: _Word, tok: _Tok) -> bool:
    text, folded = word.text, tok.folded
    if word.mode == "prefix":
        return folded.startswith(text)
    if word.mode == "suffix":
        return folded.endswith(text)
    if word.mode == "infix":
        return text in folded
    if folded == text or (len(folded) >= _STEM_MIN - 1 and tok.stem in word.stems):
        return True
    if word.mode == "flex" and (
        (len(text) >= 4 and folded.startswith(text)) or (len(text) >= 5 and folded.endswith(text))
    ):
        return True
    return len(text) >= _FUZZY_MIN and len(folded) >= _FUZZY_MIN - 1 and _near(folded, text)


def _wildcard(piece: str) -> _Mode | None:
    """The match mode a ``*`` gives a pattern word, None for a plain word."""
    head, tail = piece.startswith("*"), piece.endswith("*") and len(piece) > 1
    if head and tail:
        return "infix"
    if head:
        return "suffix"
    return "prefix" if tail else None


def _pattern_variants(pattern: str, flex: bool) -> list[tuple[_Word, ...]]:
    """The word sequences a written phrase stands for: as written, and standardised.

    Both forms are kept because a post is standardised only when it is not recognisably
    English: "no signal" must match an English post as written and a mixed one
    standardised ("nå signal").
    """
    pieces: list[tuple[_Mode | None, str]] = []
    for piece in pattern.split():
        core = "".join(words(piece.strip("*")))
        if core:
            pieces.append((_wildcard(piece), core))
    if not pieces:
        return []
    cores = [core for _, core in pieces]
    variants = [cores]
    std = standardise(cores, "no")
    # A rewrite that changes the number of words ("kva tid" → "når") cannot keep the
    # wildcards in place; such a phrase is only used as written.
    if std != cores and (len(std) == len(cores) or all(mode is None for mode, _ in pieces)):
        variants.append(std)
    out: list[tuple[_Word, ...]] = []
    for variant in variants:
        same_shape = len(variant) == len(pieces)
        ws: list[_Word] = []
        for index, core in enumerate(variant):
            wildcard = pieces[index][0] if same_shape else None
            if wildcard is not None:
                ws.append(_Word(fold(core), wildcard))
            else:
                ws.append(_Word(fold(core), "flex" if flex else "exact", _stems_of(core)))
        if tuple(ws) not in out:
            out.append(tuple(ws))
    return out


def _phrases(table: str) -> list[str]:
    return [p.strip() for p in table.replace("\n", " ").split(",") if p.strip()]


@dataclass(frozen=True, slots=True)
class _Lexicon:
    entries: tuple[_Entry, ...]
    by_exact: Mapping[str, tuple[int, ...]]
    by_prefix: Mapping[str, tuple[int, ...]]
    by_suffix: Mapping[str, tuple[int, ...]]
    by_delete: Mapping[str, tuple[int, ...]]
    infix: tuple[int, ...]
    rumour_cue_keys: frozenset[tuple[str, ...]] = field(default_factory=frozenset)
    _seen: dict[tuple[str, str], tuple[int, ...]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def candidates(self, tok: _Tok) -> tuple[int, ...]:
        """Entries whose first word matches ``tok``, in order (the caller checks the rest).

        Remembered per word (a lexicon is immutable, posts repeat their words, and
        whether a word matches depends only on the token's folded form and stem)."""
        key = (tok.folded, tok.stem)
        known = self._seen.get(key)
        if known is None:
            known = tuple(
                i
                for i in sorted(self._candidates(tok))
                if _word_matches(self.entries[i].words[0], tok)
            )
            if len(self._seen) < 1 << 16:
                self._seen[key] = known
        return known

    def _candidates(self, tok: _Tok) -> set[int]:
        found: set[int] = set(self.infix)
        text = tok.folded
        found.update(self.by_exact.get(text, ()))
        found.update(self.by_exact.get(tok.stem, ()))
        for k in range(1, len(text) + 1):
            found.update(self.by_prefix.get(text[:k], ()))
            found.update(self.by_suffix.get(text[-k:], ()))
        if len(text) >= _FUZZY_MIN - 1:
            for key in {text} | _deletes(text):
                found.update(self.by_delete.get(key, ()))
        return found


def _key(words_: tuple[_Word, ...]) -> tuple[str, ...]:
    return tuple(w.text for w in words_)


def _build(entries: list[_Entry], rumour_cue_keys: frozenset[tuple[str, ...]]) -> _Lexicon:
    exact: dict[str, list[int]] = {}
    prefix: dict[str, list[int]] = {}
    suffix: dict[str, list[int]] = {}
    delete: dict[str, list[int]] = {}
    infix: list[int] = []
    for index, entry in enumerate(entries):
        first = entry.words[0]
        if first.mode == "infix":
            infix.append(index)
            continue
        if first.mode == "prefix":
            prefix.setdefault(first.text, []).append(index)
            continue
        if first.mode == "suffix":
            suffix.setdefault(first.text, []).append(index)
            continue
        for key in {first.text} | set(first.stems):
            exact.setdefault(key, []).append(index)
        if first.mode == "flex":
            if len(first.text) >= 4:
                prefix.setdefault(first.text, []).append(index)
            if len(first.text) >= 5:
                suffix.setdefault(first.text, []).append(index)
        if len(first.text) >= _FUZZY_MIN:
            for key in {first.text} | _deletes(first.text):
                delete.setdefault(key, []).append(index)

    def freeze(table: dict[str, list[int]]) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v) for k, v in table.items()}

    return _Lexicon(
        entries=tuple(entries),
        by_exact=freeze(exact),
        by_prefix=freeze(prefix),
        by_suffix=freeze(suffix),
        by_delete=freeze(delete),
        infix=tuple(infix),
        rumour_cue_keys=rumour_cue_keys,
    )


@lru_cache(maxsize=1)
def _builtin_entries() -> tuple[_Entry, ...]:
    out: list[_Entry] = []
    for kind, table in _BUILTIN.items():
        for phrase in _phrases(table):
            out.extend(_Entry(ws, kind, None) for ws in _pattern_variants(phrase, flex=False))
    return tuple(out)


_KeywordsKey = tuple[tuple[str, tuple[str, ...]], ...]


@lru_cache(maxsize=32)
def _lexicon(keywords: _KeywordsKey) -> _Lexicon:
    builtin = _builtin_entries()
    cue_keys = frozenset(_key(e.words) for e in builtin if e.kind is _Kind.RUMOUR_CUE)
    cue_lexicon = _build([e for e in builtin if e.kind is _Kind.RUMOUR_CUE], cue_keys)
    added: list[_Entry] = []
    for category, phrases in keywords:
        kind = _category_kind(category)
        for phrase in phrases:
            for ws in _pattern_variants(phrase, flex=True):
                entry_kind = kind
                # A playbook's rumour list mixes hearsay cues ("hørt at") with the claims
                # of this incident's rumours ("forgiftet", "demningen"): a claim is only
                # a rumour when hedged or asked about; stated as fact it is a factual
                # error (see _score).
                if kind is _Kind.RUMOUR_CUE and not _is_cue(ws, cue_lexicon):
                    entry_kind = _Kind.RUMOUR_CLAIM
                added.append(_Entry(ws, entry_kind, category))
    overridden = {_key(e.words) for e in added}
    kept = [e for e in builtin if _key(e.words) not in overridden]
    return _build(kept + added, cue_keys)


def _is_cue(ws: tuple[_Word, ...], cues: _Lexicon) -> bool:
    """Whether a playbook phrase is (or contains) a built-in hearsay cue."""
    if _key(ws) in cues.rumour_cue_keys:
        return True
    toks = [_Tok(w.text, w.text, fold(stem([w.text], "no")[0])) for w in ws]
    return any(
        _match_at(cues.entries[i], toks, start)
        for start in range(len(toks))
        for i in cues.candidates(toks[start])
    )


def _match_at(entry: _Entry, toks: Sequence[_Tok], start: int) -> int:
    """End index of ``entry`` matched at ``start`` of ``toks``, or 0.

    ``entry`` comes from :meth:`_Lexicon.candidates` of ``toks[start]``: its first word
    matches already, only the words after it are checked."""
    words = entry.words
    end = start + len(words)
    if end > len(toks):
        return 0
    for offset in range(1, len(words)):
        if not _word_matches(words[offset], toks[start + offset]):
            return 0
    return end


# --- reading a post -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sentence:
    toks: tuple[_Tok, ...]
    question: bool


@dataclass(frozen=True, slots=True)
class _Match:
    sentence: int
    start: int
    end: int
    entry: _Entry


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def _rawset(text: str) -> frozenset[str]:
    """Words of a whitespace-separated table (kept as text so tables stay compact)."""
    return frozenset(text.split())


def _wordset(text: str) -> frozenset[str]:
    """Folded words of a whitespace-separated table, to compare with folded tokens."""
    return frozenset(fold(word) for word in _rawset(text))


# Sentence starts that make a question without a question mark. Norwegian verb-first
# sentences count only with a pronoun after the verb: "Har ikke vann" (dropped subject)
# is a complaint, "Har dere vann" a question.
_WH: Final = _wordset(
    "hva hvor når hvordan hvem hvilken hvilke hvilket hvorfor what where when how who which "
    "why whom"
)
_NO_VERBS: Final = _wordset(
    "kan vet er blir går må skal får kommer finnes gjelder trenger bør har stemmer"
)
_NO_PRONOUNS: Final = _wordset("det noen dere vi jeg man du de en")
_EN_AUX: Final = _wordset(
    "is are was were do does did can could will would should shall has have any"
)

_NEGATORS: Final = _wordset(
    "ikke ingen aldri ingenting verken hverken not never no nobody nothing isnt arent wasnt "
    "werent dont doesnt didnt cant cannot couldnt wont wouldnt havent hasnt hadnt shouldnt "
    "neither nor slutt stopp stop"
)
_CLAUSE_BREAK: Final = _wordset("men but")
_NEGATION_WINDOW: Final = 3

# Whom an insult is aimed at. A person (singular "du", a named role) makes an insult a
# personal attack; the municipality as a whole ("dere", "kommunen") makes it rude
# criticism, which is never hidden.
_PERSON_WORDS: Final = _wordset("du deg din ditt dine han hun ham henne you he she him her")
_PERSON_PREFIXES: Final = (
    "ordforer",
    "varaordforer",
    "radmann",
    "radmenn",
    "kommunedirektor",
    "kommunelege",
    "saksbehandler",
    "beredskapsleder",
    "beredskapssjef",
    "informasjonssjef",
    "kommunikasjonssjef",
    "brannsjef",
    "rektor",
    "mayor",
)
# A violent verb is a threat when someone says they will or should do it to a person or
# to the municipality's people: "jeg skal drepe ordføreren", "vi burde henge dem".
# "Vannet kan drepe deg" and "the cold will kill you" are warnings, not threats: "kan"
# and "will" are not among these. Phrases that are also everyday warnings ("pass deg",
# "burn down") are left out of the threat list for the same reason.
_THREAT_MODALS: Final = _wordset("jeg vi skal burde bør i we im ill should")
_THREAT_TARGETS: Final = _wordset("dere dem them everyone alle")
_MUNICIPALITY_WORDS: Final = _wordset("dere deres kommuna officials government you your etaten")
_MUNICIPALITY_PREFIXES: Final = (
    "kommune",
    "radhus",
    "kriseledels",
    "kriseleiing",
    "beredskap",
    "politiker",
    "politikar",
    "administrasjon",
    "myndighet",
    "styresmakt",
    "vannverk",
    "nettsid",
    "hjemmesid",
    "pressemelding",
    "council",  # council, councils, council's (the apostrophe is dropped: "councils")
    "municipal",
    "authorit",
    *_PERSON_PREFIXES,
)
_AIM_WINDOW: Final = 5

# Written nynorsk forms (not dialect) against their bokmål forms: enough to tell which
# written standard a post is in, so the answer can be given in it.
_NYNORSK: Final = _rawset(
    """eg ikkje kva korleis kvifor kven kvar berre frå eit kjem vatn straum dei heile mykje
    skule skulen noko nokon nokre vere vart dykk dykkar òg sjukehus difor saman heime då
    sidan fekk gjekk veit treng ho seier høyrde høyrt dårleg farleg mogleg veke straumen
    vatnet framleis enno"""
)
_BOKMAL: Final = _rawset(
    """jeg ikke hva hvordan hvorfor hvem hvor bare fra et kommer vann strøm hele mye skole
    noe noen være ble dere hun nå fortsatt ennå"""
)


def _post_language(tokens: Sequence[str], guess: Language) -> str:
    if guess == "en":
        return "en"
    if guess == "sv":
        return "sv"
    nn = sum(tok in _NYNORSK for tok in tokens)
    nb = sum(tok in _BOKMAL for tok in tokens)
    if guess == "unknown" and nn == nb == 0:
        return "und"
    return "nn" if nn > nb else "nb"


def _sentences(text: str) -> tuple[list[_Sentence], list[str], Language]:
    raw: list[tuple[list[str], bool]] = []
    for line in text.splitlines():
        for part in _SENTENCE_END.split(clean(line)):
            toks = words(part)
            if toks:
                raw.append((toks, "?" in part))
    every = [tok for toks, _ in raw for tok in toks]
    lang = guess_language(every)
    out: list[_Sentence] = []
    for toks, question in raw:
        std = standardise(toks, lang)
        stems = stem(std, lang)
        shown = _as_written(toks, std, lang)
        made = tuple(
            _Tok(said, fold(word), fold(st))
            for said, word, st in zip(shown, std, stems, strict=True)
        )
        if not made:
            continue
        out.append(_Sentence(made, question or _asks(made, lang)))
    return out, every, lang


@functools.lru_cache(maxsize=1 << 16)
def _standard_word(word: str, lang: Language) -> tuple[str, ...]:
    """:func:`standardise` of one word (remembered: posts repeat their words)."""
    return tuple(standardise([word], lang))


def _as_written(toks: Sequence[str], std: Sequence[str], lang: Language) -> list[str]:
    """For each standardised word, the word(s) as written, so that reasons quote what the
    operator sees in the post ("straumen", not the bokmål "strømen").

    Standardising rewrites word by word, except two-word expressions that become one
    ("kva tid" → "når"); a word that does not line up with its own rewrite is taken as
    such a pair. If the two still do not line up, the standardised words are shown.
    """
    out: list[str] = []
    i = j = 0
    while j < len(std):
        if i >= len(toks):
            return list(std)
        own = _standard_word(toks[i], lang)
        if tuple(std[j : j + len(own)]) == own:
            out.extend([toks[i]] * len(own))
            i, j = i + 1, j + len(own)
        elif i + 1 < len(toks):
            out.append(f"{toks[i]} {toks[i + 1]}")
            i, j = i + 2, j + 1
        else:
            return list(std)
    return out if i == len(toks) else list(std)


def _asks(toks: Sequence[_Tok], lang: Language) -> bool:
    first = toks[0].folded
    if first in _WH or (lang == "en" and first in _EN_AUX):
        return True
    return len(toks) > 1 and first in _NO_VERBS and toks[1].folded in _NO_PRONOUNS


def _is_person(tok: _Tok) -> bool:
    return tok.folded in _PERSON_WORDS or tok.folded.startswith(_PERSON_PREFIXES)


def _is_municipality(tok: _Tok) -> bool:
    return tok.folded in _MUNICIPALITY_WORDS or tok.folded.startswith(_MUNICIPALITY_PREFIXES)


def _find(lex: _Lexicon, sentences: Sequence[_Sentence]) -> list[_Match]:
    found: list[_Match] = []
    for s_index, sentence in enumerate(sentences):
        toks = sentence.toks
        here: list[_Match] = []
        for start, tok in enumerate(toks):
            for e_index in lex.candidates(tok):
                entry = lex.entries[e_index]
                end = _match_at(entry, toks, start)
                if end:
                    here.append(_Match(s_index, start, end, entry))
        # A phrase inside a longer one is part of it: "ikke godt nok" is criticism,
        # not praise for "godt"; "takk for ingenting" is not thanks. Several entries of
        # one kind on the same words ("veien", "*veien") count once.
        seen: set[tuple[int, int, _Kind, str | None]] = set()
        for m in here:
            inside = any(
                o.start <= m.start and m.end <= o.end and (o.end - o.start) > (m.end - m.start)
                for o in here
            )
            key = (m.start, m.end, m.entry.kind, m.entry.category)
            if not inside and key not in seen:
                seen.add(key)
                found.append(m)
    return found


def _negator(sentence: _Sentence, start: int) -> str | None:
    """The negating word in the few words before ``start``, up to a "men"/"but"."""
    for index in range(start - 1, max(-1, start - 1 - _NEGATION_WINDOW), -1):
        tok = sentence.toks[index].folded
        if tok in _CLAUSE_BREAK:
            return None
        if tok in _NEGATORS:
            return sentence.toks[index].shown
    return None


def _aimed_at_person(sentence: _Sentence, m: _Match) -> str | None:
    lo, hi = max(0, m.start - _AIM_WINDOW), min(len(sentence.toks), m.end + _AIM_WINDOW)
    for index in range(lo, hi):
        if m.start <= index < m.end:
            continue
        if _is_person(sentence.toks[index]):
            return sentence.toks[index].shown
    return None


def _threatened(sentence: _Sentence, m: _Match) -> str | None:
    """Whom a violent verb is aimed at, when someone says they will or should do it."""
    before = sentence.toks[max(0, m.start - _NEGATION_WINDOW) : m.start]
    if not any(t.folded in _THREAT_MODALS for t in before):
        return None
    after = sentence.toks[m.end : m.end + _AIM_WINDOW]
    for tok in after:
        if _is_person(tok) or _is_municipality(tok) or tok.folded in _THREAT_TARGETS:
            return tok.shown
    return None


# --- scoring ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Tally:
    scores: dict[Label, float] = field(default_factory=lambda: dict.fromkeys(Label, 0.0))
    reasons: dict[Label, list[str]] = field(default_factory=lambda: {label: [] for label in Label})
    notes: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    urgent: list[str] = field(default_factory=list)

    def add(self, label: Label, weight: float, reason: str) -> None:
        self.scores[label] += weight
        if reason not in self.reasons[label]:
            self.reasons[label].append(reason)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def _quoted(sentence: _Sentence, m: _Match) -> str:
    return "«" + " ".join(t.shown for t in sentence.toks[m.start : m.end]) + "»"


def _describe(m: _Match, sentence: _Sentence) -> str:
    where = f" [playbook: {m.entry.category}]" if m.entry.category else ""
    return f"{m.entry.kind.value} {_quoted(sentence, m)}{where}"


def _weight(m: _Match) -> float:
    return _PLAYBOOK_WEIGHT if m.entry.category else _WEIGHT[m.entry.kind]


def _score(sentences: Sequence[_Sentence], matches: Sequence[_Match]) -> _Tally:
    tally = _Tally()
    refers = any(_is_municipality(t) for s in sentences for t in s.toks)
    by_sentence: dict[int, list[_Match]] = {}
    for m in matches:
        by_sentence.setdefault(m.sentence, []).append(m)
        if m.entry.category and m.entry.category not in tally.categories:
            tally.categories.append(m.entry.category)

    # Denials first: "det er ikke sant at …" is no sighting of the rumour it denies.
    denied: set[int] = set()
    for m in matches:
        sentence = sentences[m.sentence]
        after = sentence.toks[m.end].folded if m.end < len(sentence.toks) else ""
        if m.entry.kind is _Kind.FACT_ERROR and after in ("at", "that"):
            denied.add(m.sentence)

    cues = [
        m
        for m in matches
        if m.entry.kind is _Kind.RUMOUR_CUE
        and (sentences[m.sentence].question or _negator(sentences[m.sentence], m.start) is None)
        and m.sentence not in denied
    ]
    spam = any(m.entry.kind is _Kind.SPAM for m in matches)
    negative_tone = False

    for m in matches:
        sentence = sentences[m.sentence]
        kind = m.entry.kind
        said = _describe(m, sentence)
        weight = _weight(m)
        negated = _negator(sentence, m.start)
        if kind in (_Kind.THREAT, _Kind.HATE, _Kind.ABUSE):
            tally.add(Label.ATTACK, max(weight, 2.0), said)
        elif kind is _Kind.VIOLENCE:
            aim = _threatened(sentence, m)
            if aim is not None:
                tally.add(Label.ATTACK, weight, f"threat: {_quoted(sentence, m)} aimed at «{aim}»")
        elif kind is _Kind.INSULT:
            aim = _aimed_at_person(sentence, m)
            if aim is not None:
                tally.add(
                    Label.ATTACK,
                    weight,
                    f"personal attack: {_quoted(sentence, m)} aimed at «{aim}»",
                )
            else:
                negative_tone = True
                label = Label.CRITICISM if refers else Label.DISSATISFIED
                tally.add(label, 1.0, f"rude word {_quoted(sentence, m)} aimed at no one person")
                tally.note(f"rudeness {_quoted(sentence, m)} is not an attack: never hidden")
        elif kind is _Kind.RUDE:
            negative_tone = True
            tally.add(Label.DISSATISFIED, weight, said)
            tally.note(f"rudeness {_quoted(sentence, m)} is not an attack: never hidden")
        elif kind in (_Kind.CASE_PERSONAL, _Kind.CASE):
            tally.add(Label.CASE_PROCESSING, weight, said)
        elif kind is _Kind.HOWTO:
            tally.add(Label.SERVICE_QUESTION, weight, said)
            tally.scores[Label.CASE_PROCESSING] -= weight
            tally.note(f"{_quoted(sentence, m)} asks how, in general: a question, not a case")
        elif kind in (_Kind.CRITICISM, _Kind.NEGATIVE, _Kind.DISSATISFIED):
            if negated is not None:
                tally.note(f"not counted: {_quoted(sentence, m)} is negated by «{negated}»")
                continue
            negative_tone = True
            if kind is _Kind.CRITICISM:
                tally.add(Label.CRITICISM, weight, said)
            elif kind is _Kind.NEGATIVE and refers:
                tally.add(Label.CRITICISM, weight, f"{said} about the municipality")
            else:
                tally.add(Label.DISSATISFIED, weight, said)
        elif kind is _Kind.FACT_ERROR:
            if sentence.question and m.end == len(sentence.toks):
                # "…, ikke sant?" / "…, er det feil?" asks to have something confirmed
                # (see _tag_questions); it does not say that anything is wrong.
                continue
            if negated is not None:
                tally.note(f"not counted: {_quoted(sentence, m)} is negated by «{negated}»")
            elif m.sentence in denied and sentence.question:
                tally.add(Label.RUMOUR, 2.0, f"negative question {_quoted(sentence, m)} …?")
            elif m.sentence in denied and not refers:
                tally.note(f"{_quoted(sentence, m)} denies a claim: not a rumour sighting")
            elif m.sentence in denied:
                tally.add(Label.FACTUAL_ERROR, weight, f"{said} about what the municipality said")
            else:
                tally.add(Label.FACTUAL_ERROR, weight, said)
        elif kind is _Kind.RUMOUR_CUE:
            if m in cues:
                tally.add(Label.RUMOUR, max(weight, 2.0), said)
            elif m.sentence in denied:
                tally.note(f"{_quoted(sentence, m)} is part of a denial: not a sighting")
            else:
                tally.note(f"not counted: {_quoted(sentence, m)} is negated by «{negated}»")
        elif kind is _Kind.RUMOUR_CLAIM:
            if m.sentence in denied:
                tally.note(f"{_quoted(sentence, m)} is denied: not a sighting")
            elif cues or sentence.question:
                tally.add(Label.RUMOUR, weight, f"{said}, hedged or asked about")
            else:
                tally.add(Label.FACTUAL_ERROR, weight, f"{said}, stated as fact")
                tally.add(Label.RUMOUR, weight, f"{said}, stated as fact")
        elif kind is _Kind.POSITIVE:
            if negated is not None:
                negative_tone = True
                tally.add(
                    Label.DISSATISFIED, 1.0, f"negated praise «{negated}» {_quoted(sentence, m)}"
                )
            else:
                tally.add(Label.IRRELEVANT, weight, said)
        elif kind is _Kind.SPAM:
            tally.add(Label.IRRELEVANT, weight, said)
        elif kind is _Kind.URGENT and negated is None:
            tally.urgent.append(said)
            tally.add(Label.SERVICE_QUESTION, weight, said)

    _questions(sentences, by_sentence, tally, spam=spam, negative_tone=negative_tone)
    _why_not(sentences, tally)
    _tag_questions(sentences, tally)
    tally.scores[Label.CASE_PROCESSING] = max(0.0, tally.scores[Label.CASE_PROCESSING])
    return tally


def _questions(
    sentences: Sequence[_Sentence],
    by_sentence: Mapping[int, Sequence[_Match]],
    tally: _Tally,
    *,
    spam: bool,
    negative_tone: bool,
) -> None:
    """Questions and reports about services: the "always answer" part of a post."""
    praise = tally.scores[Label.IRRELEVANT] > 0 and not negative_tone
    for index, sentence in enumerate(sentences):
        here = by_sentence.get(index, ())
        topics = [m for m in here if m.entry.kind is _Kind.TOPIC]
        asked = sentence.question or any(m.entry.kind is _Kind.QUESTION for m in here)
        about = ", ".join(_describe(m, sentence) for m in topics)
        if asked and topics:
            tally.add(Label.SERVICE_QUESTION, 2.0, f"question about {about}")
        elif asked and not spam:
            shown = " ".join(t.shown for t in sentence.toks[:6])
            tally.add(Label.SERVICE_QUESTION, 1.0, f"question «{shown}…»")
        elif topics and not spam and not praise:
            tally.add(Label.SERVICE_QUESTION, 1.0, f"report about {about}")


def _why_not(sentences: Sequence[_Sentence], tally: _Tally) -> None:
    """ "Hvorfor varslet dere ikke …?" is criticism of the municipality, not only a question."""
    for sentence in sentences:
        folded = [t.folded for t in sentence.toks]
        if not folded or folded[0] not in ("hvorfor", "why"):
            continue
        negated = any(f in _NEGATORS for f in folded)
        aimed = any(_is_municipality(t) for t in sentence.toks)
        if negated and aimed:
            shown = " ".join(t.shown for t in sentence.toks[:8])
            tally.add(Label.CRITICISM, 1.0, f"why-not question to the municipality «{shown}…»")


def _tag_questions(sentences: Sequence[_Sentence], tally: _Tally) -> None:
    """ "Dammen har brist, ikke sant?" asks to have a claim confirmed: a rumour sighting."""
    for sentence in sentences:
        folded = [t.folded for t in sentence.toks]
        if sentence.question and len(folded) > 2 and folded[-2:] == ["ikke", "sant"]:
            tally.add(Label.RUMOUR, 2.0, "hearsay cue «…, ikke sant?» (asks for confirmation)")


# --- the entry point -------------------------------------------------------------------


def _keywords_key(keywords: Mapping[str, Sequence[str]] | None) -> _KeywordsKey:
    if not keywords:
        return ()
    out: list[tuple[str, tuple[str, ...]]] = []
    for category, phrases in keywords.items():
        # A bare string is one phrase, not a sequence of one-letter keywords.
        listed = [phrases] if isinstance(phrases, str) else list(phrases)
        out.append((str(category), tuple(str(p) for p in listed if str(p).strip())))
    # Sorted, so the same keywords in another order share one compiled lexicon.
    return tuple(sorted(out))


def _confidence(score: float, rival: float) -> float:
    # 1 − 2^−score: one ordinary signal gives 0.5, two 0.75. A stronger label that lost
    # on precedence makes the choice less certain.
    value = 1.0 - math.pow(0.5, score)
    if rival > score:
        value *= 0.85
    return round(min(0.99, max(0.05, value)), 2)


def triage(text: str, *, keywords: Mapping[str, Sequence[str]] | None = None) -> Triage:
    """Label one inbound post, with the reasons and the action the guideline requires.

    ``keywords`` is a playbook's ``triage_keywords`` (category id → words and phrases);
    they extend the built-in lexicon and replace a built-in entry with the same words.
    Never raises on any text; the same text and keywords always give the same result.
    """
    lex = _lexicon(_keywords_key(keywords))
    sentences, every, guess = _sentences(text)
    language = _post_language(every, guess)
    tally = _score(sentences, _find(lex, sentences))
    present = [
        label
        for label in PRECEDENCE
        if label is not Label.IRRELEVANT and tally.scores[label] >= PRESENT_AT
    ]
    urgent = bool(tally.urgent)
    if urgent and Label.ATTACK in present:
        # Someone may be in danger: an answer pointing to 112/113 matters more than
        # hiding their language (an urgent post always has a service question present).
        # The attack is kept in `also` for the operator.
        present.remove(Label.ATTACK)
        tally.note("urgent: never hidden; the attack is kept for the operator to judge")
        also = tuple(other for other in PRECEDENCE if other in (*present[1:], Label.ATTACK))
    else:
        also = tuple(present[1:])
    label: Label
    if present:
        label = present[0]
        score = tally.scores[label]
        rival = max(tally.scores[other] for other in also) if also else 0.0
        confidence = _confidence(score, rival)
    else:
        label = Label.IRRELEVANT
        score = tally.scores[Label.IRRELEVANT]
        confidence = _confidence(score, 0.0) if score > 0 else 0.3
        if score == 0:
            tally.note("nothing matched: off-topic or unclear; a person may relabel it")
    reasons = _reasons(label, also, tally)
    return Triage(
        label=label,
        confidence=confidence,
        reasons=reasons,
        action=ACTIONS[label],
        language=language,
        also=also,
        categories=tuple(tally.categories),
        urgent=urgent,
    )


def _reasons(label: Label, also: Iterable[Label], tally: _Tally) -> tuple[str, ...]:
    out = [f"{label.value}: {reason}" for reason in tally.reasons[label]]
    others = list(also)
    for other in others:
        out.extend(f"{other.value}: {reason}" for reason in tally.reasons[other])
    if label is not Label.IRRELEVANT:
        out.extend(f"also: {reason}" for reason in tally.reasons[Label.IRRELEVANT])
    if others:
        kept = ", ".join(other.value for other in others)
        out.append(f"precedence: {label.value} decides the action; kept: {kept}")
    if tally.urgent:
        out.append("urgent: " + "; ".join(tally.urgent) + " (point to 112/113/110)")
    out.extend(tally.notes)
    return tuple(out)
