"""CSV files of texts (``id,text``) as the command-line tools read them.

Strict: a quote that opens a field and is never closed would otherwise swallow every
line after it into one text, silently (``2,"Er vannet trygt?`` followed by a thousand
questions reads as one question); a stray character after a closing quote would be glued
to the text. Readers use ``csv.reader(lines, strict=True)``, which refuses both, and
:func:`problem` says what is wrong, so the caller can name the line.
Quotes inside an unquoted text (``Han sa "nei"``) and doubled quotes inside a quoted
one are ordinary CSV and read as ever.
"""

from __future__ import annotations

import csv


def problem(exc: csv.Error, *, start: int, end: int) -> str:
    """What a :class:`csv.Error` from ``csv.reader(..., strict=True)`` means, for a person
    fixing the file, about the record from line ``start`` to line ``end`` (the reader's
    ``line_num`` when it failed); the caller names the file and ``start``."""
    text = str(exc)
    if "unexpected end of data" in text:
        return "a quoted text starts on this line and is never closed (a quote missing?)"
    if "expected after" in text:
        if end > start:  # the quote that "closed" it belongs to a later line
            return f"a quoted text starts on this line and runs on to line {end} (a quote missing?)"
        return 'text after a closing quote (inside a quoted text, write a quote as "")'
    return f"not valid CSV ({text})"
