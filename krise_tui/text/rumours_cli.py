"""``krise rumours match``: rank known rumours for each post in a CSV file, from the shell.

    krise rumours match --known KNOWN.csv POSTS.csv [--top K]

``KNOWN.csv`` and ``POSTS.csv`` are UTF-8 CSV files with a header row naming at least
``id`` and ``text`` (other columns are ignored). The output, on stdout, is CSV
``post_id,rank,rumour_id,score`` (rank from 1, at most K rows per post, score with four
decimals), produced by the console's own :class:`~krise_tui.text.rumours.RumourMatcher`
at its default settings. A progress bar goes to stderr for long inputs. Input errors are
one line naming the file and line, exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from krise_tui.files import UnreadableInput, read_text_input
from krise_tui.text import csvtext

if TYPE_CHECKING:
    from krise_tui.text.rumours import Match, RumourMatcher

__all__ = ["InputError", "add_parser", "read_table", "run"]


class InputError(Exception):
    """A problem with an input file, worded for the user (file and line included)."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``rumours`` command (with its ``match`` subcommand) to ``krise``'s parser."""
    p = subparsers.add_parser("rumours", help="match posts against known rumours")
    rsub = p.add_subparsers(dest="rumours_command", metavar="SUBCOMMAND", required=True)
    m = rsub.add_parser(
        "match",
        help="rank the known rumours for each post (CSV post_id,rank,rumour_id,score)",
        description=(
            "Rank the known rumours for each post with the console's matcher at its "
            "default settings. Both files are CSV with a header row naming id and text."
        ),
    )
    m.add_argument("--known", required=True, metavar="KNOWN.csv", help="known rumours: id,text")
    m.add_argument("posts", metavar="POSTS.csv", help="posts to match: id,text")
    m.add_argument("--top", type=int, default=5, metavar="K", help="rumours per post (default 5)")
    m.set_defaults(func=run)


def read_table(path: str | Path) -> list[tuple[str, str]]:
    """``(id, text)`` rows of a CSV file with a header naming ``id`` and ``text``.

    Raises :class:`InputError` naming the file (and the line) for anything wrong: a file
    that is missing or not UTF-8, a header without the columns, an empty id or text, a
    duplicate id, a row with too few fields.
    """
    try:
        name, content = read_text_input(path, kind="CSV file")
    except UnreadableInput as exc:
        raise InputError(str(exc)) from None
    records = csvtext.records(name, content)
    rows: list[tuple[str, str]] = []
    try:
        first = next(records, None)
        if first is None:
            raise InputError(f"{name}: the file is empty (expected a header: id,text)")
        header = first[1]
        columns = [c.strip().lower() for c in header]
        missing = [c for c in ("id", "text") if c not in columns]
        if missing:
            raise InputError(
                f"{name}:1: the header has no {' and no '.join(missing)} column "
                f"(found: {','.join(header)})"
            )
        id_col, text_col = columns.index("id"), columns.index("text")
        seen: set[str] = set()
        for line, record in records:
            if not any(field.strip() for field in record):
                continue  # blank line
            if len(record) <= max(id_col, text_col):
                raise InputError(
                    f"{name}:{line}: expected {len(header)} fields, found {len(record)}"
                )
            row_id, text = record[id_col].strip(), record[text_col]
            if not row_id:
                raise InputError(f"{name}:{line}: the id is empty")
            if not text.strip():
                raise InputError(f"{name}:{line}: the text of {row_id!r} is empty")
            if row_id in seen:
                raise InputError(f"{name}:{line}: duplicate id {row_id!r}")
            seen.add(row_id)
            rows.append((row_id, text))
    except csvtext.CsvProblem as exc:
        raise InputError(str(exc)) from None
    return rows


def run(args: argparse.Namespace) -> int:
    """Run ``krise rumours match``; returns the exit code (0 ok, 2 usage/input error)."""
    # Imported here so that building krise's parser does not load numpy.
    from krise_tui.text.embed import EmbeddingUnavailable
    from krise_tui.text.rumours import RumourMatcher

    if args.top < 1:
        print(f"krise rumours match: --top must be at least 1 (got {args.top})", file=sys.stderr)
        return 2
    try:
        known = read_table(args.known)
        posts = read_table(args.posts)
    except InputError as exc:
        print(f"krise rumours match: {exc}", file=sys.stderr)
        return 2
    if not known:
        print(f"krise rumours match: {args.known}: no known rumours", file=sys.stderr)
        return 2

    matcher = RumourMatcher()
    for line_no, (rumour_id, text) in enumerate(known, start=2):
        try:
            matcher.add(rumour_id, text)
        except ValueError as exc:
            print(f"krise rumours match: {args.known}:{line_no}: {exc}", file=sys.stderr)
            return 2
    texts = [text for _, text in posts]
    try:
        results = _match_with_progress(matcher, texts, args.top)
    except EmbeddingUnavailable as exc:
        print(f"krise rumours match: {exc}", file=sys.stderr)
        return 1

    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["post_id", "rank", "rumour_id", "score"])
    for (post_id, _), matches in zip(posts, results, strict=True):
        for rank, match in enumerate(matches, start=1):
            out.writerow([post_id, rank, match.rumour_id, f"{match.score:.4f}"])
    sys.stdout.flush()
    return 0


def _match_with_progress(
    matcher: RumourMatcher, texts: Sequence[str], top: int
) -> list[list[Match]]:
    """Match ``texts``, with a transient progress bar on stderr when it is a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return matcher.match_many(texts, top)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("matching posts", total=len(texts))
        return matcher.match_many(texts, top, progress=lambda n: bar.advance(task, n))
