"""Pseudonyms for personal data in a recorded incident, the same for the same person.

A recorded incident becomes a drill other municipalities can run, so the people in it
must not be recognisable. :class:`Pseudonymiser` replaces, consistently within one
recording (the same name, handle, number or address always gets the same pseudonym):

- **names**: post authors, and names in free text — every known author's name and its
  parts, and any "Firstname Lastname" whose first name is a common Norwegian one;
- **handles**: ``@kari_n`` (not e-mail addresses);
- **phone numbers** (Norwegian numbers as :mod:`krise_tui.rules.contact` finds them),
  except the emergency numbers and the municipality's own;
- **e-mail addresses**, except the municipality's own domain;
- **national identity numbers**, masked or not (:mod:`krise_tui.rules.idnumbers`).

Pseudonyms are made up (Norwegian first and last names, ``+47 4000 0…`` numbers,
``….invalid`` addresses), assigned in order of first appearance from a list shuffled
with a salt, and never one of the original names or their parts. They say nothing about
the original. Limits: a name written in lower case, a nickname alone, or a person
described without a name ("naboen min på Elvebakken 3") is not recognised; review a
recording before sharing it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

from krise_tui.rules.contact import EMERGENCY_NUMBERS, ContactKind, find_contacts
from krise_tui.rules.idnumbers import find_id_numbers


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "Ada Agnes Anders Anna Anne Arne Astrid Aud Berit Bjørn Bodil Cecilie Dag Eirik Elin "
    "Elisabeth Emil Emma Erik Eva Even Frida Geir Gro Gunnar Guri Hanne Hans Harald "
    "Heidi Helge Henrik Hilde Ida Inger Ingrid Ivar Jan Jens Johanne Jon Jonas Karin "
    "Kari Karl Kjell Knut Kristin Lars Leif Lene Line Linn Liv Magnus Maria Marit Marte "
    "Martin Mona Morten Nils Nina Nora Odd Ola Ole Oskar Per Petter Ragnhild Randi Rune "
    "Sara Sigrid Silje Simen Siri Solveig Sondre Stein Stian Svein Synnøve Terje Thea "
    "Thomas Tone Tor Tove Trine Trond Turid Vegard Vera Vidar Åse Øystein"
)
"""Common Norwegian first names: a capitalised word after one of them is taken for a
last name in free text."""

LAST_NAMES = _words(
    "Aas Bakke Berg Bråten Dahl Eide Fjeld Haugen Hagen Holm Jensen Johansen Karlsen "
    "Kristiansen Larsen Lie Lund Moen Myhre Nilsen Nygård Olsen Pedersen Rønning Sandvik "
    "Solberg Strand Sæther Tangen Vik Viken Aune Brekke Foss Hauge Lien Moe Rustad"
)

_HANDLE = re.compile(r"(?<![\w.@+-])@([A-Za-z0-9_][A-Za-z0-9_.]{1,29})(?![\w@])")
_MASKED_ID = re.compile(r"\b[0-9]{6}\*{5}")
_CAPITALISED = r"[A-ZÆØÅ][a-zæøåé]+(?:-[A-ZÆØÅ][a-zæøåé]+)?"
_FULL_NAME = re.compile(
    rf"\b(?:{'|'.join(sorted(FIRST_NAMES, key=len, reverse=True))})"
    rf"(?:\s{_CAPITALISED})?\s{_CAPITALISED}\b"
)
_EMAIL_ONLY = re.compile(r"^[\w.+-]+@[\w-]+(?:\.[\w-]+)+$")
_PHONE_ONLY = re.compile(r"^\+?[0-9 ().-]{8,20}$")
ID_REPLACEMENT = "[fødselsnummer fjernet]"


class Pseudonymiser:
    """Consistent pseudonyms for one recording (see the module docstring).

    ``own_phones`` and ``own_domains`` are the municipality's (kept as they are);
    ``keep`` are words that are never replaced (operator names of the org file, place
    names the scenario needs).
    """

    def __init__(
        self,
        *,
        salt: str = "",
        own_phones: Iterable[str] = (),
        own_domains: Iterable[str] = (),
        keep: Iterable[str] = (),
    ) -> None:
        rng = random.Random(salt)
        self._firsts = list(FIRST_NAMES)
        self._lasts = list(LAST_NAMES)
        rng.shuffle(self._firsts)
        rng.shuffle(self._lasts)
        self.own_phones = [*own_phones, *EMERGENCY_NUMBERS]
        self.own_domains = {d.lower().lstrip("@") for d in own_domains}
        self.keep = set(keep)
        self.names: dict[str, str] = {}
        self.handles: dict[str, str] = {}
        self.phones: dict[str, str] = {}
        self.emails: dict[str, str] = {}
        self._taken: set[str] = set()
        self._avoid: set[str] = set()
        self._next = 0

    # --- learning who is there ----------------------------------------------------------

    def learn(self, texts: Iterable[str], authors: Iterable[str]) -> None:
        """See every original first, so that no pseudonym is one of them (or a part)."""
        for author in authors:
            for word in re.findall(r"[\wæøåÆØÅ]+", author):
                self._avoid.add(word.lower())
        for text in texts:
            for match in _FULL_NAME.finditer(text):
                for word in match.group().split():
                    self._avoid.add(word.lower())
            for match in _HANDLE.finditer(text):
                self._avoid.add(match.group(1).lower())

    def _pseudonym(self) -> str:
        while True:
            n = self._next
            self._next += 1
            first = self._firsts[n % len(self._firsts)]
            last = self._lasts[(n // len(self._firsts) + n) % len(self._lasts)]
            name = f"{first} {last}"
            if first.lower() in self._avoid or last.lower() in self._avoid or name in self._taken:
                if n > 20 * len(self._firsts) * len(self._lasts):
                    return f"Innbygger {n}"  # every combination is someone's: a number
                continue
            self._taken.add(name)
            return name

    # --- one thing at a time --------------------------------------------------------------

    def person(self, name: str) -> str:
        """A pseudonym for a person's name."""
        key = " ".join(name.split())
        if key in self.keep:
            return key
        if key not in self.names:
            self.names[key] = self._pseudonym()
        return self.names[key]

    def handle(self, handle: str) -> str:
        """A pseudonym for ``@handle`` (with the ``@``)."""
        key = handle.lstrip("@").lower()
        if key not in self.handles:
            first, last = self._pseudonym().split(" ", 1)
            self.handles[key] = f"{first.lower()}_{last[0].lower()}{len(self.handles) + 1}"
        return f"@{self.handles[key]}"

    def phone(self, number: str) -> str:
        """A made-up Norwegian number (``+47 4000 0NNN``)."""
        key = re.sub(r"[^0-9]", "", number)[-8:]
        if key not in self.phones:
            self.phones[key] = f"+47 4000 {len(self.phones) + 1:04d}"
        return self.phones[key]

    def email(self, address: str) -> str:
        """A made-up address under ``.invalid`` (reserved: it can never be delivered)."""
        key = address.lower()
        if key.rsplit("@", 1)[-1] in self.own_domains:
            return address
        if key not in self.emails:
            self.emails[key] = f"innbygger{len(self.emails) + 1:03d}@eksempel.invalid"
        return self.emails[key]

    def author(self, author: str | None) -> str | None:
        """A post's author: a handle, a number, an address or a name."""
        if author is None or not author.strip():
            return author
        text = author.strip()
        if text.startswith("@") and " " not in text:
            return self.handle(text)
        if _EMAIL_ONLY.match(text):
            return self.email(text)
        if _PHONE_ONLY.match(text) and sum(c.isdigit() for c in text) >= 8:
            return self.phone(text)
        return self.person(text)

    def value(self, value: str | int | bool | None) -> str | int | bool | None:
        """A platform detail (``meta``): numbers, addresses and text."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if _EMAIL_ONLY.match(text):
            return self.email(text)
        if _PHONE_ONLY.match(text) and sum(c.isdigit() for c in text) >= 8:
            return self.phone(text)
        return self.text(value)

    # --- free text ----------------------------------------------------------------------------

    def text(self, text: str) -> str:
        """``text`` with every name, handle, number, address and ID number replaced."""
        spans: list[tuple[int, int, str]] = []
        for finding in find_id_numbers(text):
            spans.append((finding.start, finding.end, ID_REPLACEMENT))
        for match in _MASKED_ID.finditer(text):
            spans.append((match.start(), match.end(), ID_REPLACEMENT))
        own_emails = [f"@{d}" for d in self.own_domains]
        for contact in find_contacts(
            text, allowed_phones=self.own_phones, allowed_emails=own_emails
        ):
            if contact.allowed:
                continue
            shown = text[contact.start : contact.end]
            new = self.phone(shown) if contact.kind is ContactKind.PHONE else self.email(shown)
            spans.append((contact.start, contact.end, new))
        for match in _HANDLE.finditer(text):
            spans.append((match.start(), match.end(), self.handle(match.group())))
        for match in _FULL_NAME.finditer(text):
            if match.group() not in self.keep:
                spans.append((match.start(), match.end(), self.person(match.group())))
        for original, pseudonym in list(self.names.items()):
            # Known people by their full name, and by each part of it on its own.
            for part_original, part_new in _parts(original, pseudonym):
                if part_original in self.keep:
                    continue
                rx = re.compile(rf"(?<![\wæøåÆØÅ]){re.escape(part_original)}(?![\wæøåÆØÅ])")
                for match in rx.finditer(text):
                    spans.append((match.start(), match.end(), part_new))
        return _apply(text, spans)


def _parts(original: str, pseudonym: str) -> list[tuple[str, str]]:
    """``("Kari Nordmann", "Marit Solberg")`` → the full name, then ``Kari``→``Marit``,
    ``Nordmann``→``Solberg`` (short words and lower-case ones are left alone)."""
    pairs = [(original, pseudonym)]
    old, new = original.split(), pseudonym.split()
    if len(old) >= 2 and len(new) >= 2:
        candidates = [(old[0], new[0]), (old[-1], new[-1])]
        pairs += [(o, n) for o, n in candidates if len(o) >= 3 and o[:1].isupper()]
    return pairs


def _apply(text: str, spans: list[tuple[int, int, str]]) -> str:
    """Replace non-overlapping spans, the earliest (and longest) first."""
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    out: list[str] = []
    pos = 0
    for start, end, new in spans:
        if start < pos:
            continue  # inside a replacement already made
        out.append(text[pos:start])
        out.append(new)
        pos = end
    out.append(text[pos:])
    return "".join(out)
