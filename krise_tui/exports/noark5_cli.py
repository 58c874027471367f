"""``krise journal export PATH --noark5 DIR``: the incident for the Noark 5 archive.

The journal is verified first (the chain and every row's columns, and the signed head
when the console's public key is at hand): a record that fails is not exported unless
the operator says ``--allow-broken``, and then the problem is written into the export's
description. The journal is opened read-only, so an export can be made while the console
runs. The org file gives the municipality's name and number, operators' names and channel
names; without it the export uses the configured name and says so on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from krise_tui.config import load_settings
from krise_tui.core.events import event_from_json
from krise_tui.core.kernel import EventBase
from krise_tui.core.state import IncidentState
from krise_tui.exports.noark5 import (
    ArchiveContext,
    ExportError,
    build_noark5,
    event_line,
    write_noark5,
)
from krise_tui.journal.store import Journal, JournalError, directory_problem
from krise_tui.journal.verify import public_key_for, verify_with_head
from krise_tui.playbook.loader import PlaybookError, load_org


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``krise journal export`` (added to the journal subcommands)."""
    p.add_argument("path", type=Path, help="the journal file")
    p.add_argument(
        "--noark5",
        metavar="DIR",
        type=Path,
        required=True,
        help="write arkivstruktur.xml, endringslogg.xml and the documents to DIR (new)",
    )
    p.add_argument(
        "--saksnummer",
        metavar="YYYY/N",
        help="the case number the archive gave the incident (default: the year it opened/1)",
    )
    p.add_argument(
        "--public-key", help="the console's public key (default: {data_dir}/keys/console.pub)"
    )
    p.add_argument(
        "--without-journal",
        action="store_true",
        help="leave out the journal itself (every event as JSON lines)",
    )
    p.add_argument(
        "--allow-broken",
        action="store_true",
        help="export even when the journal fails verification (said in the export)",
    )


async def read_for_export(
    path: Path,
) -> tuple[IncidentState, list[tuple[int, EventBase]], list[str]]:
    """The state, every ``(seq, event)`` and every event as a JSON line, read-only."""
    async with await Journal.open(path, read_only=True) as journal:
        state = await journal.load_state()
        rows: list[tuple[int, EventBase]] = []
        lines: list[str] = []
        async for row in journal.rows():
            rows.append((row.seq, event_from_json(row.body)))
            lines.append(event_line(row.seq, json.loads(row.body)))
    return state, rows, lines


def _case_number(text: str | None) -> tuple[int | None, int]:
    if not text:
        return None, 1
    year, sep, number = text.partition("/")
    if not sep or not (year.isdigit() and len(year) == 4 and number.isdigit()):
        raise ValueError(f"--saksnummer {text!r}: expected YYYY/N, e.g. 2026/1234")
    return int(year), int(number)


def run(args: argparse.Namespace) -> int:
    """0 when exported; 1 when the journal fails verification; 2 when it cannot be used."""
    path: Path = args.path
    if not path.exists():
        print(f"krise journal export: {path}: no such file", file=sys.stderr)
        return 2
    if (problem := directory_problem(path)) is not None:
        print(f"krise journal export: {problem}", file=sys.stderr)
        return 2
    try:
        year, number = _case_number(args.saksnummer)
    except ValueError as exc:
        print(f"krise journal export: {exc}", file=sys.stderr)
        return 2
    settings = load_settings()
    key = (
        Path(args.public_key) if args.public_key else public_key_for(path, settings.public_key_path)
    )
    check = verify_with_head(path, public_key=key if key.exists() else None, with_head=key.exists())
    if check.ok:
        chain = (
            f"Hash-kjeden er kontrollert: {check.report.rows} hendelser, "
            f"siste hash {check.report.head_hash}"
            + (
                ", signert topp kontrollert."
                if key.exists()
                else ", signert topp ikke kontrollert."
            )
        )
    elif args.allow_broken:
        chain = f"ADVARSEL: journalen besto ikke kontrollen: {check.reason}."
        print(
            f"krise journal export: {path}: BROKEN: {check.reason} (exported anyway)",
            file=sys.stderr,
        )
    else:
        print(f"krise journal export: {path}: BROKEN: {check.reason}", file=sys.stderr)
        print(
            "  nothing exported; --allow-broken exports it with the problem stated", file=sys.stderr
        )
        return 1
    ctx_args: dict[str, Any] = {
        "org_name": settings.org_name,
        "case_year": year,
        "case_number": number,
        "journal_name": path.name,
        "chain_note": chain,
    }
    if settings.org_file is not None:
        try:
            org = load_org(settings.org_file)
        except (PlaybookError, OSError) as exc:
            print(
                f"krise journal export: org file {settings.org_file}: {exc}; "
                "using the configured name, operators by id",
                file=sys.stderr,
            )
        else:
            ctx_args.update(
                org_name=org.name,
                municipality_number=org.municipality_number,
                tz=org.timezone,
                operators={op.id: op.full_name for op in org.operators},
                channel_names={c.id: c.name or c.id for c in org.channels},
            )
    try:
        state, rows, lines = asyncio.run(read_for_export(path))
        export = build_noark5(
            state,
            rows,
            ArchiveContext(**ctx_args),
            now=datetime.now(UTC),
            journal_lines=() if args.without_journal else lines,
        )
        write_noark5(export, args.noark5)
    except (JournalError, ExportError, FileExistsError) as exc:
        print(f"krise journal export: {exc}", file=sys.stderr)
        return 2
    print(
        f"krise journal export: {export.registrations} registreringer, "
        f"{export.documents} dokumenter -> {args.noark5}/arkivstruktur.xml"
    )
    return 0
