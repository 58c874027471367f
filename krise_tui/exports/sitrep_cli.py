"""``krise sitrep``: the situation report from the journal, as Markdown or printable HTML.

The journal is opened read-only (a report never writes to the record it reports on, and
it can be made while the console runs). The org file gives the municipality's name,
time zone, departments and operators' names; the playbook gives the deadlines. A broken
org file or playbook does not stop the report (it is most needed when things are going
wrong): the report is made with the defaults and the problem is said on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from krise_tui.config import Settings, load_settings
from krise_tui.core.events import event_from_json
from krise_tui.core.kernel import EventBase
from krise_tui.core.state import IncidentState
from krise_tui.exports.sitrep import (
    DEFAULT_ANSWER_DEADLINE,
    DEFAULT_CORRECTION_DEADLINE,
    LANGS,
    sitrep_html,
    sitrep_markdown,
)
from krise_tui.files import atomic_write
from krise_tui.journal.store import Journal, JournalError
from krise_tui.playbook.loader import PlaybookError, load_org, load_playbook
from krise_tui.playbook.models import Org
from krise_tui.timefmt import DEFAULT_TIMEZONE

HISTORY_TYPES = frozenset({"delivery.receipt", "outbox.attempt_failed"})
"""The journal rows the report's failed-attempt history is made from (only these are
parsed, so a long journal costs one read, not one parse per event)."""


DRILL_RUN_FILE = "drill-run.json"
"""What ``krise drill run`` writes beside a drill's journal (``drill.player.RUN_FILE``;
the exports may not import the drills)."""


@dataclass(frozen=True)
class DrillRun:
    """A drill's journal: the playbook and org file it ran with, and when it ended."""

    playbook: Path | None
    org: Path | None
    end: datetime


def drill_run(journal: Path) -> DrillRun | None:
    """The run file beside ``journal`` when a drill wrote it (None otherwise, or when it
    cannot be read: the report then goes by the configuration and the wall clock)."""
    path = journal.parent / DRILL_RUN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        start = datetime.fromisoformat(str(data["start"]))
        end = start + timedelta(seconds=float(data["duration"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if end.tzinfo is None:
        return None

    def file(key: str) -> Path | None:
        value = data.get(key)
        return Path(value) if isinstance(value, str) and Path(value).is_file() else None

    return DrillRun(playbook=file("playbook"), org=file("org"), end=end)


@dataclass
class ReportContext:
    """What the report needs from the org file and the playbook (defaults without them)."""

    org_name: str
    tz: str = DEFAULT_TIMEZONE
    roster: dict[str, str | None] | None = None
    department_names: dict[str, str] = field(default_factory=dict)
    operators: dict[str, str] = field(default_factory=dict)
    answer_deadline: timedelta = DEFAULT_ANSWER_DEADLINE
    correction_deadline: timedelta = DEFAULT_CORRECTION_DEADLINE
    problems: list[str] = field(default_factory=list)
    """Why a file could not be used (said on stderr; the report is made anyway)."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``krise sitrep`` to ``subparsers`` (``ArgumentParser.add_subparsers()``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sitrep",
        help="situation report of the incident so far (Markdown, or printable HTML)",
        description=(
            "A situation report from the journal (opened read-only): the incident, the "
            "published messages and their deliveries, the freeze and roll-call, questions "
            "and rumours against their deadlines, and failed deliveries. Markdown on "
            "stdout unless --html is given."
        ),
    )
    p.add_argument("--journal", type=Path, help="journal file (default: the configured one)")
    p.add_argument(
        "--html",
        metavar="OUT",
        help="write printable HTML to OUT (readable by you only; - for stdout)",
    )
    p.add_argument(
        "--lang",
        choices=LANGS,
        help="language of the report (default: the configured interface language)",
    )
    p.set_defaults(func=run)
    return p


def context_for(settings: Settings) -> ReportContext:
    """The org file's and the playbook's part of the report, as far as they can be read."""
    ctx = ReportContext(org_name=settings.org_name)
    org: Org | None = None
    if settings.org_file is not None:
        try:
            org = load_org(settings.org_file)
        except (PlaybookError, OSError) as exc:
            ctx.problems.append(f"org file {settings.org_file}: {_first_problem(exc)}")
    if org is not None:
        ctx.org_name = org.name
        ctx.tz = org.timezone
        # The runtime's roster (runtime.roster_from_org), rebuilt here: exports may not
        # import the runtime, and a staff id belongs to the group that lists it.
        roster = {str(sid): g.id for g in org.staff_groups for sid in (g.staff or [])}
        ctx.roster = dict(roster) or None
        ctx.department_names = {g.id: g.name for g in org.staff_groups}
        ctx.operators = {op.id: op.full_name for op in org.operators}
    if settings.playbook is not None:
        try:
            playbook = load_playbook(settings.playbook, org=org)
        except (PlaybookError, OSError) as exc:
            ctx.problems.append(f"playbook {settings.playbook}: {_first_problem(exc)}")
        else:
            ctx.answer_deadline = playbook.deadlines.answer_batch
            ctx.correction_deadline = playbook.deadlines.correct_rumour
    return ctx


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, PlaybookError) and exc.problems:
        more = len(exc.problems) - 1
        return str(exc.problems[0]) + (f" (and {more} more)" if more else "")
    return str(exc)


async def read_journal(path: Path) -> tuple[IncidentState, list[EventBase]]:
    """The state (from the newest snapshot on) and the failed-attempt history, read-only."""
    async with await Journal.open(path, read_only=True) as journal:
        state = await journal.load_state()
        history = [
            event_from_json(row.body) async for row in journal.rows() if row.type in HISTORY_TYPES
        ]
    return state, history


def run(args: argparse.Namespace) -> int:
    """``krise sitrep``: 0 when the report was made, 2 when the journal cannot be read."""
    overrides: dict[str, object] = {}
    if args.journal is not None:
        overrides["journal"] = args.journal
    settings = load_settings(**overrides)
    lang = args.lang or settings.lang
    path = settings.journal_path
    now = datetime.now(UTC)
    drill = drill_run(path)
    if drill is not None:
        # A drill ran on its own clock, with its own playbook and org file: the report
        # is as of the drill's end (not months of "overdue" since), by its deadlines.
        settings = settings.model_copy(
            update={
                "playbook": drill.playbook or settings.playbook,
                "org_file": drill.org or settings.org_file,
            }
        )
        now = drill.end
        print(
            f"krise sitrep: a drill's journal ({DRILL_RUN_FILE} beside it): "
            f"the report is as of the drill's end, {drill.end.isoformat()}",
            file=sys.stderr,
        )
    try:
        state, history = asyncio.run(read_journal(path))
    except JournalError as exc:
        print(f"krise sitrep: {exc}", file=sys.stderr)
        return 2
    ctx = context_for(settings)
    for problem in ctx.problems:
        print(f"krise sitrep: {problem}; using the defaults", file=sys.stderr)
    options: dict[str, Any] = {
        "org_name": ctx.org_name,
        "tz": ctx.tz,
        "lang": lang,
        "now": now,
        "roster": ctx.roster,
        "department_names": ctx.department_names,
        "operators": ctx.operators,
        "answer_deadline": ctx.answer_deadline,
        "correction_deadline": ctx.correction_deadline,
        "history": history,
    }
    if args.html is None:
        sys.stdout.write(sitrep_markdown(state, **options))
        return 0
    html = sitrep_html(state, **options)
    if args.html == "-":
        sys.stdout.write(html)
        return 0
    # Private: the report quotes residents' posts, like the journal it is made from.
    out = Path(args.html)
    atomic_write(out, html.encode("utf-8"), mode=0o600)
    print(f"krise sitrep: wrote {out}", file=sys.stderr)
    return 0
