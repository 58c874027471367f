"""Text from outside, made safe to print on an operator's terminal.

Residents' posts, platforms' error texts and shared drill scenarios reach the command
line tools (``krise journal show``, ``krise drill run``, ``krise sitrep``). Printed as
they are, an escape sequence in a post acts on the operator's terminal (clears it, sets
its title, on some terminals writes the clipboard), a bidirectional override reorders
what the line seems to say, and a line break in a one-line listing forges a line of its
own (a fake "approved" entry in the journal's listing). :func:`printable` shows each of
these characters as an escape (``\\x1b``, ``\\u202e``, ``\\n``) instead: nothing is
hidden and nothing acts. The stored text is never changed; only what is printed.

Ordinary text passes untouched, Norwegian and Sami letters, emoji and no-break spaces
included. Textual's widgets need none of this (Rich drops control codes there); Rich
*markup* strings do: see :func:`krise_tui.drill.report.plain`.
"""

from __future__ import annotations

import re

_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
"""Arabic letter mark, LRM/RLM, embeddings and overrides, isolates."""
_ACTING = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_BIDI_CONTROLS}]")
"""Control characters (C0 but tab and line feed, DEL, C1), the Unicode line and
paragraph separators, and the bidirectional controls."""
_ACTING_ONE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI_CONTROLS}]")
"""The same, and tab and line feed: a one-line listing keeps each entry on its line."""


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if (named := _NAMED.get(char)) is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, one_line: bool = True) -> str:
    """``text`` with every character that would act on a terminal shown as an escape.

    With ``one_line`` (a listing: one entry per line), line feeds and tabs too; without
    it (a document such as the situation report), those two are kept.
    """
    pattern = _ACTING_ONE_LINE if one_line else _ACTING
    return pattern.sub(_escape, text)
