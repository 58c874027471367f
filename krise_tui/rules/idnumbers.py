"""Norwegian national identity numbers in free text, and the bank-account override (pure).

DOMAIN rule 16: a message that contains a national identity number is blocked before
approval. :func:`find_id_numbers` finds every 11-digit candidate in a text and keeps the
ones that pass the control digits; :func:`classify` says which kind a number is;
:func:`mask_id_numbers` hides the individual number of every one it finds.

Numbers reach the console disguised, by accident (copy-paste from a word processor, a
phone keyboard) or on purpose, so the text is normalised before matching. One character
of the original text at a time:

- Unicode NFKC (full-width ``１``, mathematical ``𝟏``, circled ``①`` and superscript
  ``¹`` become ASCII digits; ``…`` becomes dots).
- Every decimal digit (category Nd: Arabic-Indic ``١``, Persian ``۱``, Devanagari ``१``,
  …) becomes its ASCII digit.
- Invisible characters are dropped: format characters (category Cf: zero-width space
  and joiners, word joiner, BOM, soft hyphen, bidi marks), combining marks (category M:
  a keycap ``1️⃣`` or a strike-through drawn over a digit is still that digit), control
  characters that are not white space, and the Hangul fillers (letters that render as
  nothing). The reader sees the digits glued together, so they are glued together.
- Separators: white space of every kind (no-break, thin, ideographic, line breaks),
  dashes (category Pd, and the minus sign), connector punctuation (``_``, category Pc),
  dots (``.``, ``·``, ``•``, ``∙``, ``⋅``, ``・``, ``。``), slashes (``/``, ``\\``,
  ``⁄``, ``∕``) and the blank braille pattern. Any run of them between digit groups
  counts as one separator. Commas and colons are not separators: they separate list
  items (``12, 34``) and clock times (``12:30``).
- Everything else (letters, ``+``, ``,``, ``(``, a character with a number inside such
  as ``½`` or ``⑴``) ends a group and a chain of groups.
- Letters that pass for digits, as typists have always used them: ``O`` and ``o`` for 0,
  ``l``, ``I`` and ``|`` for 1, in Latin, Greek and Cyrillic (``О``, ``Ο``, ``І``, ``Ӏ``)
  and full width. A second pass reads them as those digits, but only where they touch a
  digit (directly, or through other such letters that do): ``17O57234881`` and
  ``l7057234881`` are the number a reader sees, ``Oslo`` or ``I 2 uker`` are words. A
  candidate read this way needs at least :data:`MIN_REAL_DIGITS` real digits, and is
  a disguise, so it can never be overridden as a bank account number.

What counts as a candidate:

- 11 digits, written together (``01019012480``) or in digit groups joined by
  separators (``010190 12480``, ``010190-12480``, ``01.01.90 124 80``,
  ``170572 / 34881``, ``1705\\n7234881``). The grouping is free: any run of whole groups
  that adds up to 11 digits is a candidate. Groups are never split, so 11 digits inside
  a longer run (``010190124801``, also with a zero-width space inside) are not a
  candidate: the reader sees a 12-digit number.
- Letters next to the number do not matter (``fnr01019012480``, ``nr.01019012480x``):
  a glued prefix is a common way to get a number past a reviewer, so the control
  digits decide, not the neighbours.

The personnummer written apart from the birth date is joined to it when the text says
what the five digits are: a date (``17.05.72``, ``17/5/1972``, ``170572``,
``17. mai 1972``), then within a few words ``personnummer``, ``pnr``, ``pers.nr`` or
``individnummer`` and five digits, or the other way round (``pnr 34881, født
17.05.72``). Together they must pass as below; only the five digits are masked.

Which candidates are ID numbers (first match wins, so each number has one kind):

- ``FH-nummer``: first digit 8 or 9 (no date inside).
- ``syntetisk``: month + 80 (Skatteetaten's Tenor and NAV test data) or month + 65
  (used by some test-data generators). Test numbers stand in for real people in
  drills, so they are blocked like real ones. Ranges 81–92 and 66–77 clash with
  nothing else, so accepting both costs little.
- ``D-nummer``: first digit 4–7 (day + 40).
- ``H-nummer``: month + 40 (41–52).
- ``fødselsnummer``: a real calendar date DDMMYY. The century is not derived from the
  individual number (that encoding changes with the 2032 scheme), so 29 February is
  accepted whenever YY is divisible by four.

The special kinds need no valid calendar date, but every kind needs the control digits:
with weights k1 = 3 7 6 1 8 9 4 5 2 and k2 = 5 4 3 2 7 6 5 4 3 2,
r1 = (Σ k1·d[0:9] + d[9]) mod 11 and r2 = (Σ k2·d[0:10] + d[10]) mod 11. The classic
rule is r1 = 0 and r2 = 0; numbers issued from 2032 may have r1 ∈ {1, 2, 3}.

A finding never carries the number: it holds the span in the original text, the line,
the kind and a redacted form (``010190 *****``, always ASCII digits), so it can be
shown and journaled as it is. Read the digits with :meth:`IdNumberFinding.digits` when
you need them (e.g. for :func:`override_allowed`).

Bank account numbers use the k2 weights with a single control digit, so every ID number
is also a valid account number by mod 11. An override therefore also looks at how the
number is written (4.2.5 groups, ``1503.12.34567``, is how account numbers are written).
Only a plainly written number qualifies (ASCII digits; spaces, dots or dashes between
the groups): a disguised number is a hard block.

Matching is linear in the length of the text: one pass to normalise, one regex pass
over the normalised text, and at most 11 groups examined per starting group.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from calendar import monthrange
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
ACCOUNT_WEIGHTS = K2_WEIGHTS
ID_LENGTH = 11
SYNTHETIC_MONTH_OFFSETS = (80, 65)
H_MONTH_OFFSET = 40
MIN_REASON_CHARS = 5
ACCOUNT_LAYOUT = (4, 2, 5)
KEPT_DIGITS = 6
"""Digits a redacted or masked number keeps: the date part (DDMMYY)."""
MASK = "*"
MIN_REAL_DIGITS = 8
"""Real digits a candidate with letters read as digits must have (at most three letters)."""

# How account numbers are written (the override only accepts this plain layout).
_SPACE = "[ \t\u00a0\u2007\u2009\u202f]"
_ID_SEPARATOR = re.compile(rf"{_SPACE}*[-.\u2010\u2011\u2013]{_SPACE}*|{_SPACE}+")
_DIGIT_RUN = re.compile(r"[0-9]+")
_NON_DIGIT_SEPARATOR = re.compile(rf"[-.\u2010\u2011\u2013]|{_SPACE}")

# --- normalisation ------------------------------------------------------------------------

# Each character of the original text folds to one token of the normalised text: its
# ASCII digit(s), _SEP, _OTHER, or nothing (invisible). Digits of one number therefore
# map back to whole characters, and a span in the normalised text to a span in the
# original.
_SEP = " "
_OTHER = "x"
# Letters with no glyph (default-ignorable): invisible, so dropped like format characters.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
_SEPARATOR_MARKS = frozenset(
    "./\\"
    "\u00b7\u2027\u2219\u22c5\u30fb\u2022\u3002"  # · ‧ ∙ ⋅ ・ • 。
    "\u2044\u2215"  # ⁄ ∕
    "\u2212\u2043"  # − ⁃
    "\u2800"  # the blank braille pattern renders as a space
)
_SEPARATOR_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Pd", "Pc"})


def _normalised_class(c: str) -> str:
    """The token for one character after NFKC: an ASCII digit, _SEP, _OTHER or ''."""
    category = unicodedata.category(c)
    if category == "Cf" or category[0] == "M" or c in _INVISIBLE_LETTERS:
        return ""
    if category == "Cc" and not c.isspace():
        return ""
    digit = unicodedata.decimal(c, None)
    if digit is not None:
        return str(digit)
    if c.isspace() or category in _SEPARATOR_CATEGORIES or c in _SEPARATOR_MARKS:
        return _SEP
    return _OTHER


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    """What ``ch`` stands for in a number: ASCII digits, _SEP, _OTHER or '' (invisible).

    A character whose NFKC form is only digits (``１``, ``①``, ``⑪``) is those digits;
    one that mixes a digit with something else (``½``, ``⑴``, ``⒈``) is a symbol, not a
    digit of a written number, so it is _OTHER. Keeping every character either all
    digits or none is what lets a candidate's span start and end on whole characters.
    """
    tokens = [_normalised_class(c) for c in unicodedata.normalize("NFKC", ch)]
    tokens = [t for t in tokens if t]
    if not tokens:
        return ""
    if all(t.isdigit() for t in tokens):
        return "".join(tokens)
    if all(t == _SEP for t in tokens):
        return _SEP
    return _OTHER


# ASCII text is the common case: a table lookup instead of NFKC per character.
_ASCII_FOLD = {chr(i): _fold_char(chr(i)) for i in range(128)}

# Letters that pass for digits (compared after NFKC, so full-width forms count too).
_LOOKALIKE_DIGITS = {
    "O": "0",
    "o": "0",
    "\u039f": "0",  # Greek capital omicron
    "\u03bf": "0",  # Greek small omicron
    "\u041e": "0",  # Cyrillic capital O
    "\u043e": "0",  # Cyrillic small o
    "l": "1",
    "I": "1",
    "|": "1",
    "\u0399": "1",  # Greek capital iota
    "\u0406": "1",  # Cyrillic capital Byelorussian-Ukrainian I
    "\u04c0": "1",  # Cyrillic palochka
    "\u04cf": "1",  # Cyrillic small palochka
}


@lru_cache(maxsize=1024)
def _lookalike_digit(ch: str) -> str | None:
    """The digit ``ch`` passes for (``O`` → ``0``, ``l`` → ``1``), or None."""
    return _LOOKALIKE_DIGITS.get(unicodedata.normalize("NFKC", ch))


@dataclass(frozen=True)
class _Folded:
    """A text normalised for number matching, with the way back to the original."""

    text: str
    """Only ASCII digits, _SEP and _OTHER."""
    origin: Sequence[int]
    """``origin[k]``: the index in the original text of the character ``text[k]`` came from."""


def _fold(text: str) -> _Folded:
    folded: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        cached = _ASCII_FOLD.get(ch)
        token = _fold_char(ch) if cached is None else cached
        if token:
            folded.append(token)
            origin.extend([i] * len(token))
    return _Folded("".join(folded), origin)


def _digits_of(text: str) -> str:
    """The decimal digits of ``text`` as ASCII, in order, as the matcher reads them
    (a letter passing for a digit included: only ever called on a finding's span)."""
    out: list[str] = []
    for ch in text:
        token = _fold_char(ch)
        if token.isdigit():
            out.append(token)
        elif token == _OTHER and (digit := _lookalike_digit(ch)) is not None:
            out.append(digit)
    return "".join(out)


_NEAR_DIGIT = re.compile(rf"{_OTHER}+(?=[0-9])|(?<=[0-9]){_OTHER}+")


def _read_lookalikes(text: str, folded: _Folded) -> str | None:
    """``folded.text`` with the letters that pass for digits and touch a digit read as
    those digits (see the module's notes); None when there are none.

    Each letter is one _OTHER token of the folded text, so positions (and the way back
    to the original text) stay as they are. From each side of a run of _OTHER tokens
    that touches a digit, letters are taken while they pass for digits.
    """
    folded_text = folded.text
    found: dict[int, str] = {}
    for run in _NEAR_DIGIT.finditer(folded_text):
        start, end = run.span()
        if end < len(folded_text) and folded_text[end].isdigit():
            for k in range(end - 1, start - 1, -1):
                if (digit := _lookalike_digit(text[folded.origin[k]])) is None:
                    break
                found[k] = digit
        if start > 0 and folded_text[start - 1].isdigit():
            for k in range(start, end):
                if (digit := _lookalike_digit(text[folded.origin[k]])) is None:
                    break
                found[k] = digit
    if not found:
        return None
    chars = list(folded_text)
    for k, digit in found.items():
        chars[k] = digit
    return "".join(chars)


# --- kinds and control digits -------------------------------------------------------------


class IdKind(StrEnum):
    """The kinds of national identity number (the Norwegian names users expect)."""

    FODSELSNUMMER = "fødselsnummer"
    D_NUMMER = "D-nummer"
    H_NUMMER = "H-nummer"
    FH_NUMMER = "FH-nummer"
    SYNTETISK = "syntetisk"

    def label(self, lang: str = "nb") -> str:
        """What to call this kind in a sentence, in ``lang`` (``nb`` or ``en``)."""
        if lang == "en":
            return _EN_LABELS[self]
        return _NB_LABELS[self]


_NB_LABELS = {
    IdKind.FODSELSNUMMER: "fødselsnummer",
    IdKind.D_NUMMER: "D-nummer",
    IdKind.H_NUMMER: "H-nummer",
    IdKind.FH_NUMMER: "FH-nummer",
    IdKind.SYNTETISK: "syntetisk testnummer",
}
_EN_LABELS = {
    IdKind.FODSELSNUMMER: "national identity number",
    IdKind.D_NUMMER: "D number",
    IdKind.H_NUMMER: "H number",
    IdKind.FH_NUMMER: "FH number",
    IdKind.SYNTETISK: "synthetic test identity number",
}


class ControlRule(StrEnum):
    """Which control-digit rule a number passes."""

    CLASSIC = "classic"
    """r1 = 0 and r2 = 0: every number issued before 2032."""
    FROM_2032 = "2032"
    """r1 ∈ {1, 2, 3} and r2 = 0: only possible for numbers issued from 2032."""


@dataclass(frozen=True)
class IdNumberFinding:
    """An ID number found in a text. Holds no digits beyond the redacted form."""

    start: int
    """Index of the first digit in the original text."""
    end: int
    """Index just past the last digit and any combining marks on it, in the original text
    (``text[start:end]`` is the number as written, disguises included)."""
    line: int
    """1-based line number of ``start``."""
    kind: IdKind
    rule: ControlRule
    redacted: str
    """The first six digits (ASCII) and five stars, e.g. ``010190 *****``."""
    account_layout: bool
    """Written plainly in 4.2.5 groups, as bank account numbers are (``1503.12.34567``)."""
    apart: bool = False
    """The personnummer (the last five digits) written apart from the birth date, named
    as such (``født 17.05.72, personnummer 34881``): the span is those five digits only,
    and :meth:`digits` gives only them (so it can never be overridden)."""

    def digits(self, text: str) -> str:
        """The 11 digits (ASCII) of this finding, read from the ``text`` it was found in
        (the five of a personnummer written :attr:`apart`)."""
        return _digits_of(text[self.start : self.end])


def control_rule(digits: str) -> ControlRule | None:
    """The control-digit rule ``digits`` (11 ASCII digits) passes, or None."""
    if len(digits) != ID_LENGTH or not digits.isascii() or not digits.isdigit():
        return None
    d = [int(ch) for ch in digits]
    # r2 first: it rules out ten candidates in eleven, so most never need r1.
    r2 = (sum(w * x for w, x in zip(K2_WEIGHTS, d, strict=False)) + d[10]) % 11
    if r2 != 0:
        return None
    r1 = (sum(w * x for w, x in zip(K1_WEIGHTS, d, strict=False)) + d[9]) % 11
    if r1 == 0:
        return ControlRule.CLASSIC
    if r1 <= 3:
        return ControlRule.FROM_2032
    return None


def _is_calendar_date(day: int, month: int, yy: int) -> bool:
    if not 1 <= month <= 12 or day < 1:
        return False
    # Any century: 2000 was a leap year, so YY % 4 == 0 allows 29 February.
    leap_year = 2000 + yy
    return day <= monthrange(leap_year, month)[1]


def kind_of(digits: str) -> IdKind | None:
    """The kind ``digits`` would be from its date part alone (control digits not checked)."""
    if len(digits) != ID_LENGTH or not digits.isascii() or not digits.isdigit():
        return None
    first = int(digits[0])
    day, month, yy = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    if first >= 8:
        return IdKind.FH_NUMMER
    if any(offset < month <= offset + 12 for offset in SYNTHETIC_MONTH_OFFSETS):
        return IdKind.SYNTETISK
    if first >= 4:
        return IdKind.D_NUMMER
    if H_MONTH_OFFSET < month <= H_MONTH_OFFSET + 12:
        return IdKind.H_NUMMER
    if _is_calendar_date(day, month, yy):
        return IdKind.FODSELSNUMMER
    return None


def classify(digits: str) -> IdKind | None:
    """The kind of ID number ``digits`` (11 ASCII digits) is, or None when it is not one."""
    if control_rule(digits) is None:
        return None
    return kind_of(digits)


def is_id_number(digits: str) -> bool:
    """True when ``digits`` (11 ASCII digits) is a national identity number of any kind."""
    return classify(digits) is not None


def redact(digits: str) -> str:
    """The redacted form shown and journaled instead of the number: ``010190 *****``."""
    return f"{digits[:KEPT_DIGITS]} {MASK * (ID_LENGTH - KEPT_DIGITS)}"


def line_of(text: str, index: int) -> int:
    """The 1-based line number of ``text[index]``."""
    return text.count("\n", 0, index) + 1


# --- finding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Group:
    """A maximal run of digits in the normalised text."""

    start: int
    end: int
    digits: str


def _chains(folded: str) -> list[list[_Group]]:
    """Runs of digits in ``folded``, grouped into chains joined by separators only."""
    chains: list[list[_Group]] = []
    previous_end = -1
    for run in _DIGIT_RUN.finditer(folded):
        group = _Group(run.start(), run.end(), run.group())
        # Runs are maximal, so the gap is never empty; one _OTHER in it breaks the chain.
        if chains and _OTHER not in folded[previous_end : run.start()]:
            chains[-1].append(group)
        else:
            chains.append([group])
        previous_end = run.end()
    return chains


def _candidates(chain: list[_Group]) -> list[tuple[int, int]]:
    """``(i, j)`` for every run of whole groups ``chain[i..j]`` holding exactly 11 digits.

    A sliding window: every group has at least one digit, so each start has at most one
    end, and both ends only move forward (linear in the number of groups).
    """
    found: list[tuple[int, int]] = []
    j = 0
    total = 0  # digits in chain[i:j]
    for i in range(len(chain)):
        while j < len(chain) and total < ID_LENGTH:
            total += len(chain[j].digits)
            j += 1
        if total == ID_LENGTH:
            found.append((i, j - 1))
        elif total < ID_LENGTH:
            break  # the rest of the chain is too short
        total -= len(chain[i].digits)
    return found


def _end_with_marks(text: str, end: int) -> int:
    """``end`` moved past combining marks drawn on the last digit (keycap, strike-through).

    They belong to the digit's glyph: masking must replace them with it.
    """
    while end < len(text) and unicodedata.category(text[end])[0] == "M":
        end += 1
    return end


def find_id_numbers(text: str) -> list[IdNumberFinding]:
    """Every national identity number in ``text``, in order of position.

    Spans are in ``text`` as given (not the normalised form). Overlapping candidates are
    each reported (a run of short groups can hold two); a number that appears twice is
    reported twice.
    """
    folded = _fold(text)
    newlines = [i for i, ch in enumerate(text) if ch == "\n"] if "\n" in text else []
    findings: list[IdNumberFinding] = []
    spans: set[tuple[int, int]] = set()
    passes = [folded.text]
    if (read := _read_lookalikes(text, folded)) is not None:
        passes.append(read)
    for n, folded_text in enumerate(passes):
        for chain in _chains(folded_text):
            for i, j in _candidates(chain):
                first, last = chain[i].start, chain[j].end
                if n and (
                    (first, last) in spans
                    or sum(c.isdigit() for c in folded.text[first:last]) < MIN_REAL_DIGITS
                ):
                    continue  # found plainly, or mostly letters
                finding = _finding(text, folded, chain[i : j + 1], newlines)
                if finding is not None:
                    findings.append(finding)
                    spans.add((first, last))
    findings += [
        f
        for f in _apart(text, newlines)
        if not any(f.start < g.end and g.start < f.end for g in findings)
    ]
    findings.sort(key=lambda f: (f.start, f.end))
    return findings


_MONTHS = {
    "januar": 1, "jan": 1, "februar": 2, "feb": 2, "mars": 3, "mar": 3, "april": 4,
    "apr": 4, "mai": 5, "juni": 6, "jun": 6, "juli": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "oktober": 10, "okt": 10, "november": 11,
    "nov": 11, "desember": 12, "des": 12,
}  # fmt: skip
_DATE = (
    r"(?<![0-9])(?:(?P<d1>[0-9]{1,2})[./-](?P<m1>[0-9]{1,2})[./-](?P<y1>[0-9]{4}|[0-9]{2})"
    r"|(?P<d2>[0-9]{1,2})\.?\s*(?P<month>"
    + "|".join(sorted(_MONTHS, key=len, reverse=True))
    + r")\.?\s*(?P<y2>[0-9]{4}|[0-9]{2})"
    r"|(?P<d3>[0-9]{2})(?P<m3>[0-9]{2})(?P<y3>[0-9]{2}))(?![0-9])"
)
_PERSONNUMMER = (
    r"\b(?:personnummer(?:et)?|personnr|pers\.?\s?nr|p\.?nr|individnummer(?:et)?|individnr)"
    r"\.?[\s:=-]*(?:er\s+)?(?<![0-9])(?P<five>[0-9]{5})(?![0-9])"
)
_GAP = r"[^0-9]{0,40}?"
_APART = (
    re.compile(_DATE + _GAP + _PERSONNUMMER, re.IGNORECASE),
    re.compile(_PERSONNUMMER + _GAP + _DATE, re.IGNORECASE),
)


def _apart(text: str, newlines: list[int]) -> list[IdNumberFinding]:
    """Personnummer written apart from the birth date (see the module's notes)."""
    lowered = text.lower()  # every name for it has "nr" or "nummer" in it: most texts have none
    if ("nr" not in lowered and "nummer" not in lowered) or not any(c.isdigit() for c in text):
        return []
    found: list[IdNumberFinding] = []
    for pattern in _APART:
        for match in pattern.finditer(text):
            day = match["d1"] or match["d2"] or match["d3"]
            month_name = match["month"]
            month = _MONTHS[month_name.lower()] if month_name else int(match["m1"] or match["m3"])
            year = match["y1"] or match["y2"] or match["y3"]
            digits = f"{int(day):02}{month:02}{year[-2:]}{match['five']}"
            start, end = match.span("five")
            if any(f.start == start for f in found):
                continue  # dated before and after: one number
            finding = _id_finding(digits, start, end, newlines, account_layout=False, apart=True)
            if finding is not None:
                found.append(finding)
    return found


def _finding(
    text: str, folded: _Folded, groups: list[_Group], newlines: list[int]
) -> IdNumberFinding | None:
    """The ID number ``groups`` (11 digits) make, if they make one."""
    start = folded.origin[groups[0].start]
    end = _end_with_marks(text, folded.origin[groups[-1].end - 1] + 1)
    digits = "".join(group.digits for group in groups)
    layout = has_account_layout(text[start:end])
    return _id_finding(digits, start, end, newlines, account_layout=layout)


def _id_finding(
    digits: str,
    start: int,
    end: int,
    newlines: list[int],
    *,
    account_layout: bool,
    apart: bool = False,
) -> IdNumberFinding | None:
    """The finding at ``start:end`` if ``digits`` (11) are an ID number, else None."""
    rule = control_rule(digits)
    kind = kind_of(digits) if rule is not None else None
    if rule is None or kind is None:
        return None
    return IdNumberFinding(
        start=start,
        end=end,
        line=bisect_right(newlines, start - 1) + 1,
        kind=kind,
        rule=rule,
        redacted=redact(digits),
        account_layout=account_layout,
        apart=apart,
    )


def mask_id_numbers(text: str) -> tuple[str, int]:
    """``text`` with every ID number masked in place, and how many places were masked.

    Each number as written (its whole original span, disguises and separators included)
    becomes its first six digits in ASCII and five stars: ``Ola 17057234881 ringte`` →
    ``Ola 170572***** ringte``; ``1705\\u200b72 / 348 81`` → ``170572*****``. The date
    part stays so that staff can still tell posts apart; the individual number and
    control digits, which make it a number, go. Numbers written as bank accounts are
    masked too: inbound text has no override.

    Overlapping candidates (``47 01.01.90 124 80`` holds two) are masked as one place:
    the first six digits of the whole place are kept and every other digit is starred,
    so neither number's last five digits survive.
    """
    found = find_id_numbers(text)
    if not found:
        return text, 0
    places: list[tuple[int, int, bool]] = []  # start, end, only a personnummer apart
    for finding in found:  # sorted by start
        if places and finding.start < places[-1][1]:
            start, end, apart = places[-1]
            places[-1] = (start, max(end, finding.end), apart and finding.apart)
        else:
            places.append((finding.start, finding.end, finding.apart))
    out: list[str] = []
    pos = 0
    for start, end, apart in places:
        digits = _digits_of(text[start:end])
        kept = 0 if apart else KEPT_DIGITS  # the date is written apart: it stays there
        out.append(text[pos:start])
        out.append(digits[:kept] + MASK * (len(digits) - kept))
        pos = end
    out.append(text[pos:])
    return "".join(out), len(places)


# --- bank accounts and the override -------------------------------------------------------
def _compact(number: str) -> str | None:
    """``number`` without separators when only digits and separators remain, else None."""
    digits = _NON_DIGIT_SEPARATOR.sub("", number)
    if not digits.isascii() or not digits.isdigit():
        return None
    return digits


def is_valid_account_number(digits: str) -> bool:
    """True when ``digits`` is a Norwegian bank account number by its mod-11 control digit.

    11 digits (separators ``.``, ``-`` and spaces are ignored); the control digit is
    11 − (Σ w·d mod 11) over the first ten with weights 5 4 3 2 7 6 5 4 3 2; 11 → 0, and
    a remainder that would need control digit 10 is never issued.
    """
    compact = _compact(digits)
    if compact is None or len(compact) != ID_LENGTH:
        return False
    total = sum(w * int(ch) for w, ch in zip(ACCOUNT_WEIGHTS, compact, strict=False))
    control = 11 - total % 11
    if control == 11:
        control = 0
    return control != 10 and control == int(compact[10])


def has_account_layout(written: str) -> bool:
    """True when ``written`` is 11 digits in 4.2.5 groups (``1503.12.34567``)."""
    runs = _DIGIT_RUN.findall(written)
    gaps = _DIGIT_RUN.split(written)
    if tuple(len(run) for run in runs) != ACCOUNT_LAYOUT:
        return False
    return gaps[0] == "" and gaps[-1] == "" and all(_ID_SEPARATOR.fullmatch(g) for g in gaps[1:-1])


def override_allowed(
    digits: str, reason: str, *, written: str | None = None, lang: str = "nb"
) -> tuple[bool, str]:
    """May a blocked 11-digit number be overridden? ``(allowed, why)`` in ``lang``.

    DOMAIN rule 16: only with a reason (at least :data:`MIN_REASON_CHARS` characters
    besides white space) and when the number is a valid bank account number. Because
    every ID number also passes the account check, pass ``written`` (the number as it
    appears in the message) to require the account-number layout 4.2.5 as well. The
    answer never contains the number, so it can be journaled.
    """
    en = lang == "en"
    compact = _compact(digits)
    if compact is None or len(compact) != ID_LENGTH:
        return False, ("expects an 11-digit number" if en else "forventer et 11-sifret nummer")
    if not is_valid_account_number(compact):
        return False, (
            "not a valid bank account number – cannot be overridden; remove the number"
            if en
            else "ikke et gyldig kontonummer – kan ikke overstyres; fjern nummeret"
        )
    if written is not None and not has_account_layout(written):
        return False, (
            "not written as an account number (1234.56.78903) – cannot be overridden"
            if en
            else "ikke skrevet som kontonummer (1234.56.78903) – kan ikke overstyres"
        )
    if len("".join(reason.split())) < MIN_REASON_CHARS:
        return False, ("an override needs a reason" if en else "overstyring krever en begrunnelse")
    return True, (
        "override allowed: valid bank account number; the reason is journaled"
        if en
        else "overstyring tillatt: gyldig kontonummer; begrunnelsen journalføres"
    )
