"""CSV files of texts (``id,text``) as the command-line tools read them.

Strict: a quote that opens a field and is never closed would otherwise swallow every
line after it into one text, silently (``2,"Er vannet trygt?`` followed by a thousand
questions reads as one question); a stray character after a closing quote would be glued
to the text. :func:`records` refuses both, saying what is wrong and on which line the
record starts.
Quotes inside an unquoted text (``Han sa "nei"``) and doubled quotes inside a quoted
one are ordinary CSV and read as ever.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator


class CsvProblem(ValueError):
    """A malformed record: ``NAME:LINE: what is wrong`` (LINE where the record starts)."""


def records(name: str, content: str) -> Iterator[tuple[int, list[str]]]:
    """Every record of the CSV text ``content`` (from file ``name``) with the line it
    starts on (a quoted text may span lines), the header first, a blank line as an empty
    record; raises :class:`CsvProblem` for a malformed one."""
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            why = problem(exc, start=start, end=reader.line_num)
            raise CsvProblem(f"{name}:{start}: {why}") from None
        yield start, record


def problem(exc: csv.Error, *, start: int, end: int) -> str:
    """What a :class:`csv.Error` from a strict reader means, for a person fixing the file,
    about the record from line ``start`` to line ``end`` (the reader's ``line_num`` when
    it failed)."""
    text = str(exc)
    if "unexpected end of data" in text:
        return "a quoted text starts on this line and is never closed (a quote missing?)"
    if "expected after" in text:
        if end > start:  # the quote that "closed" it belongs to a later line
            return f"a quoted text starts on this line and runs on to line {end} (a quote missing?)"
        return 'text after a closing quote (inside a quoted text, write a quote as "")'
    return f"not valid CSV ({text})"
