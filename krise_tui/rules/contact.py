"""Phone numbers and e-mail addresses in a message, checked against an allow-list (pure).

DOMAIN rule 17: phone numbers and e-mail addresses of private persons get a warning;
the municipality's own numbers and addresses, and the emergency numbers, are allowed.

Phone numbers are Norwegian 8-digit numbers, first digit 2–9, with an optional ``+47``
or ``0047`` prefix, written in one of the usual ways:

- ``41234567``, ``412 34 567`` (3-2-3, mobile style), ``41 23 45 67`` (2-2-2-2);
- with a prefix: ``+47 41234567``, ``+4741234567``, ``0047 412 34 567``.

Judgement calls, to keep dates, times, years, postcodes and amounts out:

- Only white space separates groups. Dots and dashes are how dates (``21.01.2026``,
  ``2026-01-21``) and times (``12.30``) are written, not phone numbers.
- The groups must be the whole run of digit groups: ``12 34 56 78 90`` is not a phone
  number, nor is one glued to letters or to other digits by ``.``, ``,``, ``:`` or ``-``
  (a slash is fine: ``412 34 567/22 33 44 55`` is two numbers).
- Groupings 4-4 (``2025 2026``, ``Postboks 2026 8624 Mo``) and 2-3-3 (``22 345 678``,
  an amount) are not accepted.
- Eight digits that read as a date (``20260121``, ``21012026``) are not a phone number,
  nor is a number right after ``kr``/``NOK`` or right before ``kr``/``kroner``/``,-``.
- Short numbers (emergency numbers 110, 112, 113, 116 117; 4- and 5-digit service
  numbers) and postcodes (``0123 Oslo``) are never reported: they cannot be told apart
  from years and amounts, and they are not private persons' numbers.
- Foreign numbers (``+46 …``) are not recognised.
- Anything that overlaps an ID number is left to the ID-number rule, so an 11-digit ID
  number is never reported twice and its digits never appear in a contact finding.

Normalising a number written by a person (an allow-list entry, an org file's own
numbers) is :func:`normalize_phone`, the one place that does it, with Google's
``phonenumbers`` metadata (region ``NO`` unless told otherwise): ``+47 75 18 00 00``,
``0047 75180000``, ``75.18.00.00`` and ``75-18-00-00`` are all ``75180000``; a foreign
number is kept in E.164 (``+468123456``); the emergency and short numbers (``112``,
``116 117``, ``1881``) are their digits. Finding numbers *in message text* stays stricter
(the rules above), because there dots and dashes are dates and times.

E-mail addresses: ``local@domain.tld``. Allow-list entries are whole addresses,
compared without regard to case; an entry that starts with ``@`` allows every address
at exactly that domain (``@hattfjelldal.kommune.no``).

Findings show the number or address as written (the operator has to find it), so they
are personal data as much as the message text itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import phonenumbers
from phonenumbers import shortnumberinfo

from krise_tui.rules.idnumbers import find_id_numbers, line_of

EMERGENCY_NUMBERS = ("110", "112", "113", "116117")
"""Always allowed: fire, police, ambulance, out-of-hours medical service."""

DEFAULT_REGION = "NO"
"""Numbers without a country code are read as Norwegian."""

_PHONE_CHARS = re.compile(r"^\+?[0-9 \t\u00a0\u2007\u2009\u202f.()/-]+$")
"""What a person writes in a phone number: digits, a leading ``+``, spaces, ``. - ( ) /``.
Letters are refused even though ``phonenumbers`` would read them as keypad digits
(``1-800-FLOWERS``): in an org file they are typos."""

_MAX_PHONE_CHARS = 40

PHONE_GROUPINGS = ((8,), (3, 2, 3), (2, 2, 2, 2))
"""Accepted digit groupings of an 8-digit Norwegian number (after any +47 prefix)."""

_SPACE = "[ \t\u00a0\u2007\u2009\u202f]"
_PHONE_GAP = re.compile(f"{_SPACE}+")
_DIGIT_RUN = re.compile(r"[0-9]+")
_GLUE = ".,:-"
_CURRENCY_BEFORE = re.compile(rf"(?:\bkr\.?|\bNOK){_SPACE}*$", re.IGNORECASE)
_CURRENCY_AFTER = re.compile(rf"^{_SPACE}*(?:kr\b|kroner\b|NOK\b|,-)", re.IGNORECASE)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}(?![\w-])")


class ContactKind(StrEnum):
    """What a contact finding is."""

    PHONE = "phone"
    EMAIL = "email"


@dataclass(frozen=True)
class ContactFinding:
    """A phone number or e-mail address found in a text."""

    kind: ContactKind
    start: int
    end: int
    line: int
    """1-based line number of ``start``."""
    shown: str
    """As written, with runs of white space made single spaces (``+47 412 34 567``)."""
    normalized: str
    """The 8-digit national number, or the address in lower case."""
    allowed: bool
    """On the allow-list (own numbers and addresses, emergency numbers)."""


class InvalidPhoneNumber(ValueError):
    """A text that is not a valid phone number; the message says why, in English."""


def normalize_phone(number: str, region: str = DEFAULT_REGION) -> str:
    """The one canonical form of a phone number, for comparing allow-lists with findings.

    - a number in ``region``'s own country: its national digits, ``"75180000"``
      (``+47 75 18 00 00``, ``0047 75180000``, ``75.18.00.00``, ``75-18-00-00``);
    - a number in another country: E.164, ``"+468123456"`` (``+46 8 123 456``,
      ``0046 8 123 456``);
    - an emergency or short number of ``region``, written without a country code: its
      digits, ``"112"``, ``"116117"`` (``116 117``), ``"1881"``.

    The result normalises to itself. Raises :class:`InvalidPhoneNumber` (a ValueError)
    for text with letters or other characters, an extension, or digits that the
    ``phonenumbers`` metadata does not know as a valid number (``12 34 56 78``: no
    Norwegian number starts with 1).
    """
    text = number.strip()
    if not text or len(text) > _MAX_PHONE_CHARS or not _PHONE_CHARS.match(text):
        raise InvalidPhoneNumber(
            f"{number[:_MAX_PHONE_CHARS]!r} is not a phone number: write digits, with "
            "spaces if you like (75 18 00 00, +47 75 18 00 00)"
        )
    digits = "".join(ch for ch in text if ch.isdigit())
    # Short numbers exist only inside their country and are dialled without a prefix.
    # EMERGENCY_NUMBERS is checked by itself too: the rule that they are always allowed
    # must not depend on the metadata's version.
    if not text.startswith(("+", "00")) and len(digits) <= 6:
        if digits in EMERGENCY_NUMBERS:
            return digits
        try:
            short = phonenumbers.parse(digits, region)
        except phonenumbers.NumberParseException:
            short = None
        if short is not None and shortnumberinfo.is_valid_short_number_for_region(short, region):
            return digits
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber(f"{text!r} is not a phone number") from None
    if parsed.extension:
        raise InvalidPhoneNumber(f"{text!r} has an extension: write the number alone")
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(
            f"{text!r} is not a valid phone number (check the digits and the country code)"
        )
    if parsed.country_code == phonenumbers.country_code_for_region(region):
        return phonenumbers.national_significant_number(parsed)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_phone_number(number: str, region: str = DEFAULT_REGION) -> bool:
    """True when :func:`normalize_phone` accepts ``number``."""
    try:
        normalize_phone(number, region)
    except InvalidPhoneNumber:
        return False
    return True


def _allowed_phones(numbers: Iterable[str]) -> set[str]:
    """The normalised allow-list plus the emergency numbers.

    An entry that is not a valid number cannot equal any finding (findings are valid
    Norwegian numbers), so it is skipped rather than failing the whole lint; org files
    are checked at load time and report such entries with their position.
    """
    allowed = set(EMERGENCY_NUMBERS)
    for number in numbers:
        try:
            allowed.add(normalize_phone(number))
        except InvalidPhoneNumber:
            continue
    return allowed


def _glued(text: str, start: int, end: int) -> bool:
    """Glued to a letter or digit, or to a digit through ``. , : -`` (``1990-41234567``)."""
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    if before.isalnum() or after.isalnum():
        return True
    if before and before in _GLUE and start > 1 and text[start - 2].isdigit():
        return True
    return bool(after and after in _GLUE and end + 1 < len(text) and text[end + 1].isdigit())


def _reads_as_date(digits: str) -> bool:
    for year, month, day in (
        (digits[0:4], digits[4:6], digits[6:8]),
        (digits[4:8], digits[2:4], digits[0:2]),
    ):
        if not 1900 <= int(year) <= 2099:
            continue
        try:
            date(int(year), int(month), int(day))
        except ValueError:
            continue
        return True
    return False


def _phone_chains(text: str) -> list[list[re.Match[str]]]:
    chains: list[list[re.Match[str]]] = []
    previous: re.Match[str] | None = None
    for run in _DIGIT_RUN.finditer(text):
        if previous is not None and _PHONE_GAP.fullmatch(text[previous.end() : run.start()]):
            chains[-1].append(run)
        else:
            chains.append([run])
        previous = run
    return chains


def _phone_span(text: str, chain: list[re.Match[str]]) -> tuple[int, int, str] | None:
    """``(start, end, national digits)`` when the whole chain is one phone number."""
    start, end = chain[0].start(), chain[-1].end()
    groups = [run.group() for run in chain]
    has_prefix = False
    if start > 0 and text[start - 1] == "+":
        if not groups[0].startswith("47"):
            return None
        groups[0] = groups[0][2:]
        start -= 1
        has_prefix = True
    elif groups[0].startswith("0047"):
        groups[0] = groups[0][4:]
        has_prefix = True
    groups = [g for g in groups if g]
    if tuple(len(g) for g in groups) not in PHONE_GROUPINGS:
        return None
    national = "".join(groups)
    if national[0] in "01" or _glued(text, start, end):
        return None
    if len(chain) == 1 and not has_prefix and _reads_as_date(national):
        return None
    if _CURRENCY_BEFORE.search(text, max(0, start - 12), start) or _CURRENCY_AFTER.match(
        text[end : end + 12]
    ):
        return None
    return start, end, national


def _overlaps(start: int, end: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(start < other_end and other_start < end for other_start, other_end in spans)


def find_contacts(
    text: str,
    *,
    allowed_phones: Iterable[str] = (),
    allowed_emails: Iterable[str] = (),
) -> list[ContactFinding]:
    """Every phone number and e-mail address in ``text``, each marked allowed or not.

    ``allowed_phones`` may be written in any format (``+47 75 18 21 00``); the emergency
    numbers are always allowed. ``allowed_emails`` are addresses or ``@domain`` entries.
    """
    phones_ok = _allowed_phones(allowed_phones)
    emails_ok = {e.strip().lower() for e in allowed_emails}
    id_spans = [(f.start, f.end) for f in find_id_numbers(text)]
    findings: list[ContactFinding] = []
    for chain in _phone_chains(text):
        span = _phone_span(text, chain)
        if span is None or _overlaps(span[0], span[1], id_spans):
            continue
        # ``national`` is already normalize_phone's form for a Norwegian number (its eight
        # national digits), so it compares directly with the normalised allow-list.
        start, end, national = span
        findings.append(
            ContactFinding(
                kind=ContactKind.PHONE,
                start=start,
                end=end,
                line=line_of(text, start),
                shown=" ".join(text[start:end].split()),
                normalized=national,
                allowed=national in phones_ok,
            )
        )
    for match in _EMAIL.finditer(text):
        start, end = match.span()
        if _overlaps(start, end, id_spans):
            continue
        address = match.group().lower()
        domain = "@" + address.rsplit("@", 1)[1]
        findings.append(
            ContactFinding(
                kind=ContactKind.EMAIL,
                start=start,
                end=end,
                line=line_of(text, start),
                shown=match.group(),
                normalized=address,
                allowed=address in emails_ok or domain in emails_ok,
            )
        )
    findings.sort(key=lambda f: (f.start, f.end))
    return findings
