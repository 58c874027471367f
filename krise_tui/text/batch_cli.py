"""``krise batch FILE``: group a file of questions into batches, as the console would.

Input is CSV with a header row naming (at least) ``id`` and ``text``, or JSON Lines with
an object per line carrying ``id`` and ``text``; JSON Lines is recognised by the
extension ``.jsonl``/``.ndjson`` or by the first non-blank character being ``{``. Rows
are taken as arrival order. ``-`` reads standard input.

Output is CSV ``id,batch`` (with header) on standard output, one row per input row in
input order, from the same :class:`~krise_tui.text.batching.Batcher` with the same
default settings as the console. A progress bar goes to standard error when it is a
terminal or the file is long.

Exit codes: 0 done; 2 usage or input error (one line naming file and line); 1 when the
embedding model cannot be loaded.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from krise_tui.files import UnreadableInput, read_text_input
from krise_tui.text import csvtext

__all__ = ["InputError", "Post", "Subparsers", "add_parser", "read_posts", "run"]

# Show a progress bar on a non-terminal stderr only for files at least this long.
_LONG_FILE = 500


class InputError(ValueError):
    """Bad input; the message names the file and line."""


@dataclass(frozen=True)
class Post:
    """One input row: its id, text and line number (for error messages)."""

    id: str
    text: str
    line: int


class Subparsers(Protocol):
    """What ``ArgumentParser.add_subparsers()`` returns, as far as it is used here."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def add_parser(subparsers: Subparsers) -> None:
    """Register ``batch`` on an ``argparse`` subparsers object (``add_subparsers()``)."""
    p = subparsers.add_parser(
        "batch",
        help="group questions that ask the same thing (CSV/JSONL in, CSV id,batch out)",
        description=(
            "Read questions (CSV with header id,text, or JSON Lines with keys id and text) "
            "in arrival order and write CSV id,batch to standard output, batching them "
            "exactly as the console does."
        ),
    )
    p.add_argument("file", metavar="FILE", help="CSV or JSONL file of questions, or - for stdin")
    p.set_defaults(func=run)


def _is_jsonl(name: str, content: str) -> bool:
    if name.lower().endswith((".jsonl", ".ndjson")):
        return True
    if name.lower().endswith(".csv"):
        return False
    return content.lstrip().startswith("{")


def _field(value: object, what: str, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and what == "id":
        return str(value)  # numeric ids in JSON are common; keep them as written
    raise InputError(f"{where}: {what} must be a string, got {type(value).__name__}")


def _read_jsonl(name: str, content: str) -> Iterator[Post]:
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{name}:{number}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{where}: expected a JSON object with keys id and text")
        missing = [key for key in ("id", "text") if key not in obj]
        if missing:
            raise InputError(f"{where}: missing key {', '.join(missing)}")
        yield Post(_field(obj["id"], "id", where), _field(obj["text"], "text", where), number)


def _read_csv(name: str, content: str) -> Iterator[Post]:
    rows = csvtext.records(name, content)
    try:
        first = next(rows, None)
        if first is None:
            raise InputError(f"{name}:1: empty file (expected a header row id,text)")
        header = first[1]
        columns = [h.strip().lower() for h in header]
        missing = [c for c in ("id", "text") if c not in columns]
        if missing:
            raise InputError(
                f"{name}:1: header lacks column {', '.join(missing)} (found: {','.join(header)})"
            )
        id_col, text_col = columns.index("id"), columns.index("text")
        for start, row in rows:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(id_col, text_col):
                raise InputError(f"{name}:{start}: expected {len(header)} fields, got {len(row)}")
            yield Post(row[id_col], row[text_col], start)
    except csvtext.CsvProblem as exc:
        raise InputError(str(exc)) from None


def read_posts(name: str, content: str) -> list[Post]:
    """Parse ``content`` (from file ``name``) into posts; raises :class:`InputError`."""
    reader = _read_jsonl if _is_jsonl(name, content) else _read_csv
    posts: list[Post] = []
    first_line: dict[str, int] = {}
    for post in reader(name, content):
        if not post.id.strip():
            raise InputError(f"{name}:{post.line}: empty id")
        if post.id in first_line:
            raise InputError(
                f"{name}:{post.line}: duplicate id {post.id!r} (first on line "
                f"{first_line[post.id]})"
            )
        first_line[post.id] = post.line
        posts.append(post)
    return posts


def _load(path: str) -> tuple[str, str]:
    try:
        return read_text_input(path, kind="CSV or JSONL file", stdin_name="<stdin>")
    except UnreadableInput as exc:
        raise InputError(str(exc)) from None


def _write(out: TextIO, rows: list[tuple[str, str]]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("id", "batch"))
    writer.writerows(rows)


def run(args: argparse.Namespace) -> int:
    """Run ``krise batch`` with parsed ``args`` (``args.file``); returns the exit code."""
    # Imported here so that ``krise --help`` does not pay for numpy.
    from krise_tui.text import embed
    from krise_tui.text.batching import Batcher

    try:
        name, content = _load(str(args.file))
        posts = read_posts(name, content)
    except InputError as exc:
        print(f"krise batch: {exc}", file=sys.stderr)
        return 2

    batcher = Batcher()
    pairs = [(p.id, p.text) for p in posts]
    try:
        if sys.stderr.isatty() or len(posts) >= _LONG_FILE:
            from rich.console import Console
            from rich.progress import Progress

            with Progress(console=Console(stderr=True), transient=True) as progress:
                task = progress.add_task("batching", total=len(posts))
                assignments = batcher.add_many(
                    pairs, progress=lambda done: progress.update(task, completed=done)
                )
        else:
            assignments = batcher.add_many(pairs)
    except embed.EmbeddingUnavailable as exc:
        print(f"krise batch: {exc}", file=sys.stderr)
        return 1

    _write(sys.stdout, [(a.post_id, a.batch_id) for a in assignments])
    return 0
