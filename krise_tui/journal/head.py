"""The journal's signed head: the newest row's seq and hash, signed by the console.

A hash chain shows that no row was altered, removed from the middle or reordered, but
not that the newest rows were not simply cut off. So the console signs ``(seq, hash)``
of its newest row with its Ed25519 key and keeps the result beside the journal
(``journal.sqlite3.head``) and, if configured, in other places (another disk, a
network share). ``krise journal verify`` checks the chain *and* the head: a missing
head, a bad signature, or a head newer than the journal (rows cut off) is an error.

The head is written after commits, at most every :data:`HEAD_INTERVAL` seconds and at
stop; rows newer than the last written head are covered by the next one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from krise_tui.files import atomic_write
from krise_tui.wire.canonical import canonical_json

HEAD_INTERVAL = 0.5
"""Seconds between head writes while events are being journaled."""


@dataclass(frozen=True)
class SignedHead:
    """``(seq, hash)`` of a journal's newest row, signed by the console."""

    seq: int
    hash: str
    at: str
    """When it was signed (ISO 8601, UTC)."""
    key_id: str
    sig: str

    def signed_part(self) -> bytes:
        """The bytes the signature covers."""
        return canonical_json(
            {"seq": self.seq, "hash": self.hash, "at": self.at, "key_id": self.key_id}
        )


def head_path(journal: Path) -> Path:
    """Where the head of ``journal`` is kept beside it."""
    return journal.with_name(journal.name + ".head")


def make_head(
    *, seq: int, hash: str, at: str, key_id: str, sign: Callable[[bytes], bytes]
) -> SignedHead:
    """Sign ``(seq, hash)``; ``sign(data) -> bytes`` is the console's Ed25519 signer."""
    unsigned = SignedHead(seq, hash, at, key_id, "")
    signature = sign(unsigned.signed_part())
    return SignedHead(seq, hash, at, key_id, base64.urlsafe_b64encode(signature).decode("ascii"))


def write_head(head: SignedHead, paths: list[Path]) -> None:
    """Write the head (atomically, 0600) to every path."""
    data = (json.dumps(asdict(head), indent=1) + "\n").encode("utf-8")
    for path in paths:
        atomic_write(path, data, mode=0o600)


def read_head(path: Path) -> SignedHead:
    """Read a head file (raises ``FileNotFoundError`` or ``ValueError``)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a journal head")
    try:
        return SignedHead(
            seq=int(data["seq"]),
            hash=str(data["hash"]),
            at=str(data["at"]),
            key_id=str(data["key_id"]),
            sig=str(data["sig"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a journal head ({exc})") from None


def check_head(head: SignedHead, public_key: Ed25519PublicKey) -> bool:
    """Whether the head's signature is the console's."""
    try:
        public_key.verify(base64.urlsafe_b64decode(head.sig.encode("ascii")), head.signed_part())
    except (InvalidSignature, ValueError):
        return False
    return True
