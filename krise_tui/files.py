"""Files other processes read, written so that a reader never sees half of one.

Write to a temporary file beside the target, fsync, rename: a reader sees the old file
or the new one, never an empty or partial one. Files that hold secrets or citizens'
posts are created readable by their owner only.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> bool:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename, directory fsync).

    Readers see the old file or the new one, never a truncated one; the file has its
    final ``mode`` before it has a name, so a secret is never readable by others, not even
    for a moment. Returns False without touching the file when it already holds exactly
    ``data``, so an idempotent re-delivery leaves files (and their mtimes) as they were.
    """
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_directory(path.parent)
    return True


def fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory is on disk too (best effort: some
    # file systems refuse to open a directory for this).
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def create_private(path: Path) -> None:
    """Create ``path`` (and its directory) readable by its owner only, if it is new.

    Journals hold citizens' posts: the file, and the WAL files SQLite makes beside it with
    the same permissions, are 0600; so is the log.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class UnreadableInput(ValueError):
    """A file (or stdin) given to a command cannot be read as text; the message names it
    and says why."""


INPUT_LIMIT = 256 * 1024 * 1024
"""The most a command-line input file may hold (bytes): a device or a wrong file that
never ends (``/dev/zero``, a growing log) is refused instead of filling the memory."""


def read_text_input(
    path: str | Path | None,
    *,
    kind: str = "text file",
    stdin_name: str = "stdin",
    limit: int = INPUT_LIMIT,
) -> tuple[str, str]:
    """``(name, text)`` of the file ``path`` given on a command line (None or ``-``:
    standard input), read as UTF-8 (a byte-order mark dropped).

    Raises :class:`UnreadableInput` saying what is wrong: no such file, a directory (not
    a ``kind``), unreadable, larger than ``limit`` bytes, or not UTF-8 (the reason and
    the byte).
    """
    stdin = path is None or str(path) == "-"
    name = stdin_name if stdin else str(path)
    try:
        if stdin:
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(str(path)).open("rb") as handle:
                data = handle.read(limit + 1)
    except FileNotFoundError:
        raise UnreadableInput(f"{name}: no such file") from None
    except IsADirectoryError:
        raise UnreadableInput(f"{name}: is a directory, not a {kind}") from None
    except OSError as exc:
        raise UnreadableInput(f"{name}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise UnreadableInput(f"{name}: more than {_size(limit)}: not a {kind}?")
    try:
        return name, data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableInput(
            f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None


def _size(n: int) -> str:
    """``16 MB`` (binary megabytes, as the limits are set)."""
    return f"{n / (1024 * 1024):g} MB" if n >= 1024 * 1024 else f"{n} bytes"
