"""Checks on every free text that leaves the console, and masking of what comes in.

Message variants go through the full approval lint (:mod:`krise_tui.rules.lint`); the
other texts that reach the public or the staff — freeze and lift reasons, notices, CAP
texts, answers, corrections — are checked with :func:`~krise_tui.rules.lint.lint_free_text`
for national identity numbers, a hard block everywhere, and those that go out for
control characters. Inbound posts are stored with any ID number masked
(:func:`~krise_tui.rules.idnumbers.mask_id_numbers`), so a number can never be
re-published by quoting.
"""

from __future__ import annotations

from krise_tui.core.kernel import Rejection
from krise_tui.rules.idnumbers import mask_id_numbers as mask_id_numbers
from krise_tui.rules.lint import lint_free_text


def free_text_block(
    text: str, *, field: str, field_nb: str | None = None, field_en: str | None = None
) -> Rejection | None:
    """A rejection naming the field when ``text`` holds a national identity number.

    ``field`` is a key of :data:`krise_tui.rules.lint.FREE_TEXT_FIELDS`. The rejection
    shows only the redacted form (first six digits), never the number. There is no
    override here: a free text with an ID number is rewritten, never sent.
    """
    findings = lint_free_text(text, field=field, field_nb=field_nb, field_en=field_en)
    if not findings:
        return None
    first = findings[0]
    return Rejection(f"blocked: {first.message('en')}", f"stoppet: {first.message('nb')}")


def first_block(*checks: tuple[str, str] | tuple[str, str, str, str]) -> Rejection | None:
    """The first block among ``(text, field)`` or ``(text, field, field_nb, field_en)``."""
    for check in checks:
        text, field = check[0], check[1]
        names = (check[2], check[3]) if len(check) == 4 else (None, None)
        block = free_text_block(text, field=field, field_nb=names[0], field_en=names[1])
        if block is not None:
            return block
    return None
