"""``krise journal verify``: the chain, every row's columns, the snapshots and the head.

The chain and the columns are checked by :func:`krise_tui.journal.store.verify_file`;
this adds the signed head (:mod:`krise_tui.journal.head`): it must exist, be signed by
the console's key, and not be newer than the journal (rows cut off the end), and the row
it names must have the hash it names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from krise_tui.bus.envelope import KeyFileError, load_public_key
from krise_tui.journal.head import check_head as signed_by
from krise_tui.journal.head import head_path, read_head
from krise_tui.journal.store import VerifyReport, row_hash_at, verify_file


@dataclass(frozen=True)
class FullReport:
    """The chain's report, and what was found about the head(s)."""

    report: VerifyReport
    ok: bool
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    unchecked: bool = False
    """The chain is sound but the signed head could not be checked (no usable key):
    not proven intact, and not shown broken either."""


def public_key_for(journal: Path, default: Path) -> Path:
    """The key to check ``journal``'s signed head with when none is given: the one in the
    ``keys`` folder beside it (a data directory, a drill's directory, one copied whole),
    else ``default`` (this machine's console's). A key kept with the journal proves only
    as much as that folder's protection does: callers print which key they used."""
    beside = Path(journal).parent / "keys" / default.name
    return beside if beside.exists() else default


def verify_with_head(
    path: Path,
    *,
    public_key: Path | None,
    extra_heads: list[Path] | None = None,
    expect_head: str | None = None,
    with_head: bool = True,
) -> FullReport:
    """Verify ``path`` and its signed head(s)."""
    report = verify_file(path, expect_head=expect_head)
    if not report.ok:
        where = f"first bad seq {report.bad_seq}: " if report.bad_seq is not None else ""
        return FullReport(report, False, f"{where}{report.reason}")
    if not with_head:
        return FullReport(report, True, notes=["signed head not checked (--no-head)"])
    if public_key is None:
        return FullReport(
            report, False, "no public key to check the signed head with", unchecked=True
        )
    try:
        key = load_public_key(public_key)
    except KeyFileError as exc:
        return FullReport(report, False, f"cannot check the signed head: {exc}", unchecked=True)
    notes: list[str] = []
    for hp in [head_path(path), *(extra_heads or [])]:
        problem = _check_one(path, hp, report, key, public_key)
        if problem:
            return FullReport(report, False, problem)
        notes.append(f"signed head {hp}: OK (key {public_key})")
    return FullReport(report, True, notes=notes)


def _check_one(
    path: Path, hp: Path, report: VerifyReport, key: Ed25519PublicKey, key_file: Path
) -> str:
    try:
        head = read_head(hp)
    except FileNotFoundError:
        return f"the signed head {hp} is missing (rows may have been cut off)"
    except (OSError, ValueError) as exc:
        return f"the signed head {hp} cannot be read: {exc}"
    if not signed_by(head, key):
        return f"the signed head {hp} is not signed by the console's key ({key_file})"
    if head.seq > report.rows:
        return (
            f"the signed head {hp} names seq {head.seq}, but the journal ends at "
            f"{report.rows}: rows were cut off"
        )
    if head.seq > 0 and row_hash_at(path, head.seq) != head.hash:
        return f"row {head.seq} does not have the hash the signed head {hp} names"
    return ""
