"""Norwegian national identity numbers in free text, and the bank-account override (pure).

DOMAIN rule 16: a message that contains a national identity number is blocked before
approval. :func:`find_id_numbers` finds every 11-digit candidate in a text and keeps the
ones that pass the control digits; :func:`classify` says which kind a number is.

What counts as a candidate:

- 11 digits, written together (``01019012480``) or in digit groups separated by ``-``,
  ``.`` or horizontal white space (``010190 12480``, ``010190-12480``,
  ``01.01.90 124 80``). No-break and thin spaces count as spaces, and ``‐ ‑ –`` as
  dashes, because word processors put them there. The grouping is free: any run of
  whole groups that adds up to 11 digits is a candidate. Groups are never split, so
  11 digits inside a longer run (``010190124801``) are not a candidate.
- Not glued to a letter on either side: ``ABC01019012480`` is a reference code.

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

A finding never carries the number: it holds the span, the line, the kind and a redacted
form (``010190 *****``), so it can be shown and journaled as it is. Read the digits with
:meth:`IdNumberFinding.digits` when you need them (e.g. for :func:`override_allowed`).

Bank account numbers use the k2 weights with a single control digit, so every ID number
is also a valid account number by mod 11. An override therefore also looks at how the
number is written (4.2.5 groups, ``1503.12.34567``, is how account numbers are written).
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from enum import StrEnum

K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
ACCOUNT_WEIGHTS = K2_WEIGHTS
ID_LENGTH = 11
SYNTHETIC_MONTH_OFFSETS = (80, 65)
H_MONTH_OFFSET = 40
MIN_REASON_CHARS = 5
ACCOUNT_LAYOUT = (4, 2, 5)

_SPACE = "[ \t\u00a0\u2007\u2009\u202f]"
_ID_SEPARATOR = re.compile(rf"{_SPACE}*[-.\u2010\u2011\u2013]{_SPACE}*|{_SPACE}+")
_DIGIT_RUN = re.compile(r"[0-9]+")
_NON_DIGIT_SEPARATOR = re.compile(rf"[-.\u2010\u2011\u2013]|{_SPACE}")


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
    """Index of the first digit in the text."""
    end: int
    """Index just past the last digit (``text[start:end]`` is the number as written)."""
    line: int
    """1-based line number of ``start``."""
    kind: IdKind
    rule: ControlRule
    redacted: str
    """The first six digits and five stars, e.g. ``010190 *****``."""
    account_layout: bool
    """Written in 4.2.5 groups, as bank account numbers are (``1503.12.34567``)."""

    def digits(self, text: str) -> str:
        """The 11 digits of this finding, read from the ``text`` it was found in."""
        return "".join(ch for ch in text[self.start : self.end] if ch.isdigit())


def control_rule(digits: str) -> ControlRule | None:
    """The control-digit rule ``digits`` (11 ASCII digits) passes, or None."""
    if len(digits) != ID_LENGTH or not digits.isascii() or not digits.isdigit():
        return None
    d = [int(ch) for ch in digits]
    r1 = (sum(w * x for w, x in zip(K1_WEIGHTS, d, strict=False)) + d[9]) % 11
    r2 = (sum(w * x for w, x in zip(K2_WEIGHTS, d, strict=False)) + d[10]) % 11
    if r2 != 0:
        return None
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
    return f"{digits[:6]} *****"


def line_of(text: str, index: int) -> int:
    """The 1-based line number of ``text[index]``."""
    return text.count("\n", 0, index) + 1


def _chains(text: str) -> list[list[re.Match[str]]]:
    """Runs of ASCII digits, grouped into chains joined by ID-number separators."""
    chains: list[list[re.Match[str]]] = []
    previous: re.Match[str] | None = None
    for run in _DIGIT_RUN.finditer(text):
        gap = text[previous.end() : run.start()] if previous is not None else None
        if gap is not None and chains and _ID_SEPARATOR.fullmatch(gap):
            chains[-1].append(run)
        else:
            chains.append([run])
        previous = run
    return chains


def _glued_to_letter(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    return before.isalpha() or after.isalpha()


def find_id_numbers(text: str) -> list[IdNumberFinding]:
    """Every national identity number in ``text``, in order of position.

    Overlapping candidates are each reported (a run of short groups can hold two); a
    number that appears twice is reported twice.
    """
    findings: list[IdNumberFinding] = []
    for chain in _chains(text):
        for i, first in enumerate(chain):
            count = 0
            for j in range(i, len(chain)):
                count += len(chain[j].group())
                if count > ID_LENGTH:
                    break
                if count < ID_LENGTH:
                    continue
                start, end = first.start(), chain[j].end()
                if _glued_to_letter(text, start, end):
                    break
                digits = "".join(run.group() for run in chain[i : j + 1])
                rule = control_rule(digits)
                kind = kind_of(digits) if rule is not None else None
                if rule is None or kind is None:
                    break
                layout = tuple(len(run.group()) for run in chain[i : j + 1])
                findings.append(
                    IdNumberFinding(
                        start=start,
                        end=end,
                        line=line_of(text, start),
                        kind=kind,
                        rule=rule,
                        redacted=redact(digits),
                        account_layout=layout == ACCOUNT_LAYOUT,
                    )
                )
                break
    findings.sort(key=lambda f: (f.start, f.end))
    return findings


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
