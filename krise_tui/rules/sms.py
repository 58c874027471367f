"""SMS length: GSM-7 or UCS-2 encoding, characters and segments (pure, no I/O).

An SMS is sent in the GSM 03.38 7-bit alphabet (GSM-7) when every character is in its
basic table or its extension table; one character outside both forces the whole message
into UCS-2 (16 bits per character). South Sami text does that: ``ï`` is not in GSM-7,
while æ ø å Æ Ø Å ä ö ü é are.

Limits (3GPP TS 23.038 / 23.040):

- GSM-7: 160 septets in one SMS, 153 per segment when split (the rest of each segment
  carries the concatenation header). Extension-table characters (``€ [ ] { } ^ ~ \\ |``
  and form feed) take two septets (an escape plus the character) and are never split
  across two segments.
- UCS-2: 70 UTF-16 code units in one SMS, 67 per segment when split. Characters outside
  the Basic Multilingual Plane (emoji) take two code units and are never split either.

An empty text has 0 characters and 0 segments: there is nothing to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 basic table (127 characters; the 128th code is the escape to the
extension table)."""

GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
"""The GSM 03.38 extension table: each costs two septets (escape + character)."""

GSM7_SINGLE = 160
"""Septets in a single GSM-7 SMS."""
GSM7_MULTI = 153
"""Septets per segment of a concatenated GSM-7 SMS."""
UCS2_SINGLE = 70
"""UTF-16 code units in a single UCS-2 SMS."""
UCS2_MULTI = 67
"""UTF-16 code units per segment of a concatenated UCS-2 SMS."""

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True, slots=True)
class SmsInfo:
    """How a text goes out as SMS."""

    encoding: Encoding
    """``GSM-7`` when every character is in the GSM 03.38 tables, else ``UCS-2``."""
    chars: int
    """Length in the encoding's units: septets for GSM-7 (extension characters count 2),
    UTF-16 code units for UCS-2."""
    segments: int
    """Number of SMS the text is split into (0 for an empty text)."""
    non_gsm: str = ""
    """The distinct characters that forced UCS-2, in order of first appearance."""

    @property
    def limit(self) -> int:
        """Units that fit in the current number of segments (for "N of M" displays)."""
        if self.encoding == "GSM-7":
            return GSM7_SINGLE if self.segments <= 1 else GSM7_MULTI * self.segments
        return UCS2_SINGLE if self.segments <= 1 else UCS2_MULTI * self.segments


def is_gsm7(text: str) -> bool:
    """True when ``text`` can be sent in the GSM-7 alphabet."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def non_gsm_chars(text: str) -> str:
    """The distinct characters of ``text`` outside GSM-7, in order of first appearance."""
    seen: dict[str, None] = {}
    for ch in text:
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION:
            seen.setdefault(ch, None)
    return "".join(seen)


def _count_segments(costs: list[int], single: int, multi: int) -> int:
    """Segments for units that cost 1 or 2 and must not be split across segments."""
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            segments += 1
            used = 0
        used += cost
    return segments


def sms_info(text: str) -> SmsInfo:
    """Encoding, length and number of segments of ``text`` sent as one SMS message."""
    forced = non_gsm_chars(text)
    if not forced:
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return SmsInfo("GSM-7", sum(costs), _count_segments(costs, GSM7_SINGLE, GSM7_MULTI))
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return SmsInfo(
        "UCS-2", sum(costs), _count_segments(costs, UCS2_SINGLE, UCS2_MULTI), non_gsm=forced
    )
