"""Text from outside printed on an operator's terminal: nothing in it acts, nothing
forges a line, and ordinary text is untouched (``krise_tui.printable``; the command-line
tools that print residents' posts, platforms' errors and shared scenarios)."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console

from krise_tui.cli import main
from krise_tui.core.kernel import EventBase
from krise_tui.drill.cli import _print_entry
from krise_tui.drill.player import LogEntry
from krise_tui.drill.report import print_report
from krise_tui.drill.scoring import ChannelFailure, ObjectiveResult, Scorecard, TimelineRow
from krise_tui.journal.store import Journal
from krise_tui.printable import printable
from tests.corekit import NOW, bus, make_ctx, opened, run

HOSTILE = (
    "Hei \x1b]0;PWNED\x07 \x1b[2J\x1b[31mrødt\x1b[0m \x9b31m "
    "\u202eesrever\u202c slutt\n     9  2026-11-27T10:00:00  Melding godkjent av kari"
)
"""A resident's post: a title change, a screen clear, colours (7-bit and C1), a
right-to-left override, and a line break that forges a journal line."""


def test_what_acts_on_a_terminal_is_shown_as_an_escape() -> None:
    shown = printable(HOSTILE)
    assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown
    assert "\u202e" not in shown and "\n" not in shown
    assert "\\x1b]0;PWNED\\x07" in shown and "\\x9b31m" in shown and "\\u202e" in shown
    assert "slutt\\n     9" in shown
    # A document keeps its lines and tabs; the rest is escaped the same way.
    doc = printable("# Rapport\n\tpunkt \x1b[2J\u2028", one_line=False)
    assert doc == "# Rapport\n\tpunkt \\x1b[2J\\u2028"


@pytest.mark.parametrize(
    "text",
    [
        "Blir Strømmen borte i Åsen? Æsj.",
        "Mijjieh daan bïjre soptsestibie",  # South Sami letters
        "kl. 12\u00a000, 3\u202f000 kr",  # no-break and narrow no-break spaces
        "Familien 👨\u200d👩\u200d👧 er trygg ✓",  # an emoji sequence joined with ZWJ
        "C:\\temp \\x1b as typed",  # backslashes in the text itself
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert printable(text) == text


def test_journal_show_prints_a_hostile_post_inert_and_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = make_ctx("bus")
    state = opened(ctx)
    events: list[EventBase] = []
    run(
        state,
        bus("krise/v1/test/channel/sms/in", {"id": "x1", "text": HOSTILE}),
        ctx,
        events=events,
    )
    path = tmp_path / "journal.sqlite3"

    async def write() -> None:
        async with await Journal.open(path) as journal:
            await journal.append(events)

    asyncio.run(write())
    assert main(["journal", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert len(out.splitlines()) == len(events)  # the forged line stays inside the post's
    assert "\\x1b[2J" in out
    # --json was always safe (JSON escapes control characters): the text is as posted.
    assert main(["journal", "show", "--json", str(path)]) == 0
    assert "\\u001b]0;PWNED\\u0007" in capsys.readouterr().out


def rich_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, force_terminal=True, color_system=None), buffer


def test_the_drill_timeline_prints_an_inject_as_text_not_markup() -> None:
    console, buffer = rich_console()
    for text in ("Se [redigert] her", "hei [/b] du", "[link=https://evil.example]klikk[/link]"):
        _print_entry(console, LogEntry(NOW, timedelta(minutes=1), "post", text, ok=False))
    _print_entry(console, LogEntry(NOW, timedelta(minutes=2), "post", HOSTILE, detail="[/dim]"))
    out = buffer.getvalue()
    assert "Se [redigert] her" in out and "hei [/b] du" in out
    assert "[link=https://evil.example]klikk[/link]" in out
    assert "\x1b]" not in out and "\x07" not in out and "\u202e" not in out
    assert "([/dim])" in out


def test_the_after_action_report_prints_residents_and_platforms_texts_as_they_are() -> None:
    card = Scorecard(
        title="Flom [/b] i sentrum",
        scenario_id="flom",
        response="god",
        start=NOW,
        end=timedelta(hours=1),
        timezone="Europe/Oslo",
        objectives=[
            ObjectiveResult("o1", "first_message", "Første [melding]", "met", None, None, "[/x]")
        ],
        messages=[],
        batches=[],
        rumours=[],
        freezes=[],
        failures=[
            ChannelFailure("facebook", timedelta(minutes=5), "500 [/red] \x1b[2J", "melding", True)
        ],
        timeline=[],
        posts=0,
        posts_by_channel={},
        post_counts=[],
        triage_agreement=None,
        rejected_inbound=0,
        refused_actions=[TimelineRow(timedelta(minutes=7), "action", "avvist [/i] \x07", ok=False)],
    )
    console, buffer = rich_console()
    print_report(card, console)
    out = buffer.getvalue()
    for shown in ("Flom [/b] i sentrum", "Første [melding]", "[/x]", "500 [/red] \\x1b[2J"):
        assert shown in out, shown
    assert "avvist [/i] \\x07" in out
    assert "\x1b[2J" not in out and "\x07" not in out


def test_the_log_shows_residents_text_inert_and_on_its_line(tmp_path: Path) -> None:
    """``krise.log`` as the console writes it (a process of its own: logging is global)."""
    script = (
        "import logging\n"
        "from krise_tui.cli import _setup_logging\n"
        "from krise_tui.config import load_settings\n"
        f"_setup_logging(load_settings(data_dir={str(tmp_path)!r}), to_file=True)\n"
        f"logging.getLogger('krise').warning('rejected post: %s', {HOSTILE!r})\n"
        "try:\n"
        "    raise ValueError('bad \\x1b[2J')\n"
        "except ValueError:\n"
        "    logging.getLogger('krise').exception('failed')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    log = (tmp_path / "krise.log").read_text(encoding="utf-8")
    assert "\x1b" not in log and "\x07" not in log and "\u202e" not in log
    lines = log.splitlines()
    assert lines[0].endswith("WARNING krise: rejected post: " + printable(HOSTILE))
    assert "failed" in lines[1] and lines[-1] == "ValueError: bad \\x1b[2J"


def test_the_log_is_rotated_and_every_file_stays_private(tmp_path: Path) -> None:
    """A flood of refusals (each one logged) grew krise.log without end, on the disk the
    journal needs; a rotated file is made by the umask unless told otherwise."""
    script = (
        "import logging, os\n"
        "os.umask(0o022)\n"
        "from krise_tui import cli\n"
        "from krise_tui.config import load_settings\n"
        "cli.LOG_MAX_BYTES, cli.LOG_BACKUPS = 20_000, 2\n"
        f"cli._setup_logging(load_settings(data_dir={str(tmp_path)!r}), to_file=True)\n"
        "for i in range(2000):\n"
        "    logging.getLogger('krise').warning('rejected bus message %d: %s', i, 'x' * 40)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    logs = sorted(tmp_path.glob("krise.log*"))
    assert [p.name for p in logs] == ["krise.log", "krise.log.1", "krise.log.2"]
    assert all(p.stat().st_size <= 20_000 for p in logs)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in logs), [
        oct(p.stat().st_mode) for p in logs
    ]
    assert "rejected bus message 1999:" in logs[0].read_text(encoding="utf-8")
