"""The console's words for its own actions, in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from krise_tui.console.i18n import ACTIONS, action_failed

CONSOLE = Path(__file__).resolve().parents[1] / "krise_tui" / "console"


def test_every_action_the_console_runs_has_words_in_both_languages() -> None:
    """A failed action is shown in the banner by its name: an internal id ("✗ approve:
    …") until it had words. A new action without them fails here."""
    names = {
        name
        for path in CONSOLE.rglob("*.py")
        for name in re.findall(r'@work\(\s*name="([^"]+)"', path.read_text(encoding="utf-8"))
    }
    assert len(names) >= 15  # the pattern still finds them
    assert names <= set(ACTIONS), sorted(names - set(ACTIONS))


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("nb", "✗ Godkjenningen feilet: database or disk is full"),
        ("en", "✗ The approval failed: database or disk is full"),
    ],
)
def test_a_failed_action_is_said_in_the_console_s_language(lang: str, said: str) -> None:
    assert action_failed("approve", "database or disk is full", lang) == said
    assert action_failed("ny-ting", "x", lang).startswith("✗ ny-ting ")  # at least its name
