"""Normalisation and tokenisation of short citizen posts, shared by batching and rumour matching.

Posts arrive in Norwegian bokmål, nynorsk and dialect spellings, English and sometimes
Swedish, typed on phones: mixed case, missing or spurious diacritics ("strom", "strømm"),
emoji, URLs and handles. Everything here is pure, deterministic and cheap (no model), so
both the question batcher and the rumour matcher can call it on every post.

The layers, from raw to most reduced:

* :func:`clean` — Unicode NFKC, case folding, URLs/handles/emoji removed, whitespace
  collapsed. Letters keep their diacritics. Use it for anything shown or embedded.
* :func:`words` — the word tokens of :func:`clean` text.
* :func:`guess_language` — a crude function-word vote: ``"no"``, ``"en"``, ``"sv"`` or
  ``"unknown"``. Good enough to decide whether Norwegian rules apply; not a classifier.
* :func:`standardise` / :func:`standard_text` — nynorsk and common dialect spellings
  rewritten to bokmål ("kva tid kjem straumen att" → "hva tid kommer strømmen igjen"),
  only when the post is not recognisably English or Swedish. Feeding the standardised
  text to the embedding model helps because the model knows bokmål far better than
  nynorsk or dialect.
* :func:`terms` — content terms: standardised, stop words dropped, Snowball-stemmed
  (Norwegian, English or Swedish by the language guess) and diacritic-folded, so that
  "Strømmen", "strøm" and "strom" give the same term.
* :func:`char_ngrams` — character n-grams of folded words, robust to typos and compounds
  ("fryseboksen" shares most n-grams with "fryser").
* :func:`fold` — ASCII-like folding of diacritics (æ→ae, ø→o, å→a, ä→a, ö→o, é→e).

The function signatures are a stable API: other modules build on them.
"""

from __future__ import annotations

import functools
import importlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Final, Literal, Protocol

Language = Literal["no", "en", "sv", "unknown"]

__all__ = [
    "STOPWORDS",
    "Language",
    "char_ngrams",
    "clean",
    "fold",
    "guess_language",
    "standard_text",
    "standardise",
    "stem",
    "terms",
    "words",
]

_URL = re.compile(r"(?:https?://|www\.)\S+")
_HANDLE = re.compile(r"(?<!\w)[@#](\w+)")
# A word is a run of letters/digits; an inner apostrophe, hyphen or dot is dropped so
# that "e-coli", "e.coli" and "ecoli" become one token and "113" stays a token.
_WORD = re.compile(r"[^\W_]+(?:[-.'’][^\W_]+)*")
_JOINERS = re.compile(r"[-.'’]")
_SPACE = re.compile(r"\s+")


def _wordset(text: str) -> frozenset[str]:
    """Words of a whitespace-separated table (kept as text so the tables stay compact)."""
    return frozenset(text.split())


def _pairs(text: str) -> dict[str, str]:
    """``old:new`` pairs of a whitespace-separated table; ``#`` lines are comments and
    ``_`` in a value stands for a space ("idag:i_dag")."""
    table: dict[str, str] = {}
    for line in text.splitlines():
        for pair in line.split("#", 1)[0].split():
            old, new = pair.split(":")
            table[old] = new.replace("_", " ")
    return table


# Letters that NFKD does not decompose but that people type without: ø as o, æ as ae.
_FOLD_TABLE: Final = str.maketrans({"ø": "o", "æ": "ae", "ð": "d", "þ": "th", "ß": "ss"})


def clean(text: str) -> str:
    """Return ``text`` NFKC-normalised, case-folded, without URLs, handles' markers or emoji.

    Hashtags and handles keep their word ("#strømbrudd" → "strømbrudd"). Punctuation is
    kept (a question mark is a signal for some uses); whitespace is collapsed.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _URL.sub(" ", text)
    text = _HANDLE.sub(r"\1", text)
    # Emoji and other symbols (Unicode category S*) carry tone, not content.
    text = text.translate(_SYMBOLS_TO_SPACE)
    return _SPACE.sub(" ", text).strip()


class _SymbolsToSpace(dict[int, str]):
    """A :meth:`str.translate` table: symbols (Unicode category S*) to a space, every
    other character to itself; filled in as characters are first seen, so the loop over
    a text runs in C (this is on the path of every inbound post)."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        out = " " if unicodedata.category(ch).startswith("S") else ch
        self[code] = out
        return out


_SYMBOLS_TO_SPACE: Final = _SymbolsToSpace()


@functools.lru_cache(maxsize=1 << 16)
def fold(text: str) -> str:
    """Fold diacritics to plain letters: "Strømbrudd på Ås" → "strombrudd pa as".

    Case-folds too. Used for matching only, never for display: it merges words that
    differ only by diacritics, which is what typists without a Norwegian keyboard do.
    """
    text = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD_TABLE))
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """Word tokens of :func:`clean` ``text`` (diacritics kept, inner -.' removed)."""
    return [_JOINERS.sub("", w) for w in _WORD.findall(clean(text))]


def keyword_hits(text: str, keywords: Sequence[str]) -> list[str]:
    """The ``keywords`` (words or phrases, as a playbook lists them) found in ``text``.

    Case and diacritics are folded; a keyword word of four letters or more also matches
    as the start of a word ("evakuering" in "evakueringen", "kjeller" in "kjelleren"),
    a shorter one only whole ("bo" is not in "bor"); a phrase's words are found in order
    with at most one other word between two of them ("leave home" in "leave our home").
    Each keyword is returned once, in the order given.
    """
    tokens = [fold(w) for w in words(text)]
    found: list[str] = []
    for keyword in keywords:
        wanted = [fold(w) for w in words(keyword)]
        if wanted and keyword not in found and _phrase_at(tokens, wanted):
            found.append(keyword)
    return found


def _matches(token: str, want: str) -> bool:
    return token == want or (len(want) >= 4 and token.startswith(want))


def _phrase_at(tokens: Sequence[str], wanted: Sequence[str]) -> bool:
    """``wanted`` in ``tokens``: its first word anywhere, each next one right after the
    previous match or one word later."""
    for start, token in enumerate(tokens):
        if not _matches(token, wanted[0]):
            continue
        at = start
        for want in wanted[1:]:
            nxt = next(
                (i for i in (at + 1, at + 2) if i < len(tokens) and _matches(tokens[i], want)),
                None,
            )
            if nxt is None:
                break
            at = nxt
        else:
            return True
    return False


# --- language guess -------------------------------------------------------------------

# Frequent function words that are (nearly) unique to one language in this setting.
_MARKERS: Final[dict[Language, frozenset[str]]] = {
    # Not "i" or "no": they are also Norwegian words ("i morgen", nynorsk "no" = nå);
    # "at", "to", "be" are too ("hørte at …", "to personer", "be om hjelp"): half a vote.
    "en": _wordset(
        "the is are was were been can could will would we my our you your it its which "
        "this that there any what when where who how why do does did should shall with "
        "from about still after before have has not of and or in on get "
        "water power phone safe"
    ),
    # Norwegian and Swedish share many function words (det, som, med, kan, om, får,
    # blir, på, vi): only words that tell them apart vote.
    "no": _wordset(
        "er og jeg eg æ hva kva ka hvor kor hvordan korleis hvem kven kem når ikke ikkje "
        "ikkj itte til te fra frå noe noko noen nokon hvis viss være vere blei vart igjen "
        "att også òg sånn dere dokker dykk ein eit berre bare hjelp vatn vann strøm ble "
        "straum nå må skal kjem meg deg seg ved etter mye dette å"
    ),
    "sv": _wordset(
        "är och jag vad hur inte att också mig dig ska finns någon något några vara "
        "vilka vilket vilken när från mycket hos sverige kunna måste"
    ),
}


_HALF_ENGLISH: Final = frozenset({"at", "to", "be"})
"""English words that are Norwegian words too: they tip the vote, never outweigh a
Norwegian marker ("Hørte at demningen ved Storvatnet har brast" is Norwegian)."""


def guess_language(tokens: Sequence[str]) -> Language:
    """Guess the language of already :func:`words`-split ``tokens`` by function words.

    Returns ``"unknown"`` when no marker word is present or the vote is tied between
    English and a Scandinavian language. Norwegian wins ties with Swedish: the console
    serves Norwegian municipalities and the two share many words.
    """
    votes: dict[Language, float] = {"en": 0, "no": 0, "sv": 0}
    for tok in tokens:
        for lang in ("en", "no", "sv"):
            if tok in _MARKERS[lang]:
                votes[lang] += 1
        if tok in _HALF_ENGLISH:
            votes["en"] += 0.5
    best = max(votes.values())
    if best == 0:
        return "unknown"
    if votes["no"] == best:
        return "unknown" if votes["en"] == best else "no"
    if votes["en"] == best:
        return "unknown" if votes["sv"] == best else "en"
    return "sv"


# --- nynorsk / dialect → bokmål ---------------------------------------------------------

# Whole-word rewrites: nynorsk forms and common dialect spellings of frequent words to
# bokmål. General vocabulary, not tied to any incident; add words, do not remove them.
_STANDARD_WORDS: Final[dict[str, str]] = _pairs(
    """
    # pronouns
    eg:jeg æ:jeg e:er me:vi dokker:dere dokk:dere dykk:dere dykkar:deres ho:hun dei:de
    deira:deres ein:en eit:et nokon:noen noko:noe nokre:noen inkje:ingenting
    # question words
    kva:hva ka:hva kå:hva kor:hvor kvar:hvor kven:hvem kem:hvem kvem:hvem
    korleis:hvordan kordan:hvordan koss:hvordan kossen:hvordan korsen:hvordan
    åssen:hvordan kvifor:hvorfor kvorfor:hvorfor koffor:hvorfor kofor:hvorfor
    åffer:hvorfor kvi:hvorfor kortid:når katid:når kåtid:når
    # negation, adverbs, conjunctions
    ikkje:ikke ikkj:ikke itte:ikke ente:ikke berre:bare bære:bare no:nå att:igjen
    atter:igjen tebake:tilbake attende:tilbake atende:tilbake tilbakers:tilbake te:til
    tel:til frå:fra ifrå:fra heile:hele mykje:mye mykkje:mye òg:også ogso:også viss:hvis
    dersom:hvis då:da sidan:siden elle:eller ælle:eller framleis:fortsatt enno:ennå
    difor:derfor saman:sammen stad:sted staden:stedet heime:hjemme heim:hjem idag:i_dag
    imorgon:i_morgen imorgen:i_morgen imorra:i_morgen morgon:morgen morra:morgen
    ikveld:i_kveld inatt:i_natt
    # verbs
    kjem:kommer kome:komme kjeme:kommer kjæm:kommer gjer:gjør gjere:gjøre treng:trenger
    trenge:trenger veit:vet seier:sier seie:si sjå:se vere:være vera:være vore:vært
    vart:ble verte:bli vert:blir blei:ble bu:bo bur:bor fekk:fikk gjekk:gikk søkje:søke
    søkja:søke kjøpa:kjøpe drikka:drikke drekk:drikke drekke:drikke eta:spise ete:spise
    kokar:koker koka:koke vaska:vaske pussa:pusse henta:hente lada:lade ladar:lader
    bruka:bruke brukar:bruker ringja:ringe melda:melde fiksa:fikset verkar:virker
    verke:virke fungera:fungere lure:lurer skjønar:skjønner byrjar:begynner
    byrje:begynne
    # nouns and adjectives that differ between the written standards
    sjuk:syk sjuke:syke sjukehus:sykehus sjukehuset:sykehuset lækjar:lege lækjaren:legen
    skule:skole skulen:skolen kyrkja:kirken kyrkje:kirke mjølk:melk veke:uke veker:uker
    veka:uken dagar:dager timar:timer gong:gang gongen:gangen augo:øyne auge:øye
    reint:rent rein:ren farleg:farlig vanleg:vanlig mogleg:mulig mogeleg:mulig
    eigen:egen eige:eget eigne:egne lengje:lenge krana:kranen krane:kran
    springet:springen frysar:fryser frysaren:fryseren kjøleskåpet:kjøleskapet
    kjøleskåp:kjøleskap tenna:tennene ungane:ungene ungan:ungene borna:barna born:barn
    straumbrot:strømbrudd straumbrotet:strømbruddet brot:brudd brotet:bruddet
    """
)

# Two-word expressions whose word-by-word rewrite would be wrong ("kva tid" is "når",
# not "hva tid").
_STANDARD_BIGRAMS: Final[dict[tuple[str, str], str]] = {
    (first, second): "når"
    for first in ("kva", "ka", "kå", "kor", "hva", "hvilken")
    for second in ("tid", "tid's", "tidspunkt")
}

# Stem rewrites applied inside words (compounds): nynorsk/dialect roots to bokmål roots.
_STANDARD_ROOTS: Final[tuple[tuple[str, str], ...]] = (
    ("straum", "strøm"),
    ("vatn", "vann"),
    ("sjukepleiar", "sykepleier"),
    ("heimeteneste", "hjemmetjeneste"),
    ("heimesjuke", "hjemmesyke"),
)


def standardise(tokens: Sequence[str], language: Language | None = None) -> list[str]:
    """Rewrite nynorsk and dialect ``tokens`` to bokmål; other languages pass unchanged.

    ``language`` defaults to :func:`guess_language` of ``tokens``. English and Swedish
    posts are returned as they are, because several dialect forms ("no", "me", "att")
    are ordinary English or Swedish words.
    """
    lang = guess_language(tokens) if language is None else language
    if lang in ("en", "sv"):
        return list(tokens)
    out: list[str] = []
    pending = list(tokens)
    while pending:
        tok = pending.pop(0)
        if pending and (tok, pending[0]) in _STANDARD_BIGRAMS:
            out.append(_STANDARD_BIGRAMS[tok, pending.pop(0)])
            continue
        std = _STANDARD_WORDS.get(tok)
        if std is None:
            std = tok
            for old, new in _STANDARD_ROOTS:
                if old in std:
                    std = std.replace(old, new)
        out.extend(std.split())
    return out


def standard_text(text: str) -> str:
    """Return ``text`` cleaned and (for Norwegian) standardised to bokmål, as one string.

    Punctuation is dropped; this is the form to give an embedding model.
    """
    return " ".join(standardise(words(text)))


# --- stop words and stems -----------------------------------------------------------------

# Function words of bokmål (after standardise), English and Swedish. Question words are
# stop words too: "when" vs "where" matters, but it is the embedding's job to weigh it;
# lexical overlap should come from content words.
STOPWORDS: Final[frozenset[str]] = _wordset(
    # Norwegian (bokmål forms; nynorsk forms are standardised first)
    "og i jeg det at en et den til er som på de med han av ikke der så var meg seg men "
    "ett har om vi min mitt ha hadde hun nå over da ved fra du ut sin dem oss opp man kan "
    "hans hvor eller hva skal selv sjøl her alle vil bli ble blitt kunne inn når være "
    "kom noen noe ville dere deres kun ja etter ned skulle denne for deg si sine sitt mot "
    "å meget hvorfor dette disse uten hvordan ingen din ditt blir samme hvilken hvilke "
    "sånn inni mellom vår hver hvem vors hvis både bare enn fordi før mange også slik "
    "vært båe begge siden dykk dykkar dei deira deim eg ein eit eitt elles honom hjå ho "
    "hoe henne hennar hennes hoss hossen ikkje ingi inkje korleis korso kva kvar kvarhelst "
    "kven kvi kvifor me medan mi mine mykje no nokon noka nokor noko nokre si sia sidan "
    "so somt somme um upp vere vore verte vort varte vart må får gjør gjøre finnes går "
    "mye hei hallo takk lurer lure vet noen nok fortsatt ennå igjen ok også enda "
    # English
    "a an the and or but if of at by for with about against between into through during "
    "to from in out on off over under again further then once here there when where why "
    "how all any both each few more most other some such no nor not only own same so than "
    "too very can will just should now i me my myself we our ours you your he him his she "
    "her it its they them their what which who whom this that these those am is are was "
    "were be been being have has had having do does did doing would could shall may might "
    "must get got still anyone hi hello please thanks "
    # Swedish
    "och att det som en på är av för med till den har de inte om ett han men var jag sig "
    "från vi så kan man när år säger hon under också efter eller nu sin där vid mot ska "
    "skulle kommer ut får finns vad hur vilka vilket vilken någon något några mig dig"
)

_STEMMERS: Final[dict[str, str]] = {"no": "norwegian", "en": "english", "sv": "swedish"}


class _Snowball(Protocol):
    """The part of PyStemmer's ``Stemmer.Stemmer`` used here (PyStemmer has no stubs)."""

    def stemWords(self, words: list[str]) -> list[str]: ...


@lru_cache(maxsize=8)
def _stemmer(algorithm: str) -> _Snowball:
    # PyStemmer (module "Stemmer") ships no type information: import it by name and
    # give the one method used a typed face.
    module = importlib.import_module("Stemmer")
    stemmer: _Snowball = module.Stemmer(algorithm)
    return stemmer


_DOUBLE_END = re.compile(r"([bdfgklmnprstv])\1$")


def stem(tokens: Iterable[str], language: Language = "no") -> list[str]:
    """Snowball-stem ``tokens`` for ``language`` (``"unknown"`` uses Norwegian).

    For Norwegian and Swedish a doubled final consonant is undoubled afterwards, so
    "strømmen" and "strøm" share the stem "strøm" (Snowball leaves "strømm").
    """
    algorithm = _STEMMERS.get(language, "norwegian")
    stems = _stemmer(algorithm).stemWords(list(tokens))
    if algorithm == "english":
        return list(stems)
    return [_DOUBLE_END.sub(r"\1", s) if len(s) > 3 else s for s in stems]


def terms(text: str) -> list[str]:
    """Content terms of ``text``: standardised, stop words removed, stemmed, folded.

    Order follows the text; duplicates are kept (callers count them if they want tf).
    """
    toks = words(text)
    lang = guess_language(toks)
    std = [t for t in standardise(toks, lang) if t not in STOPWORDS]
    return [fold(s) for s in stem(std, lang) if s]


def char_ngrams(text: str, n_min: int = 3, n_max: int = 5) -> list[str]:
    """Character n-grams (``n_min``..``n_max``) of each folded, standardised word.

    Each word is padded with spaces (" strom ") so that word starts and ends are
    distinct n-grams; n-grams never span two words. Words shorter than ``n_min`` after
    padding yield no n-gram.
    """
    grams: list[str] = []
    for word in standardise(words(text)):
        padded = f" {fold(word)} "
        for n in range(n_min, n_max + 1):
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams
