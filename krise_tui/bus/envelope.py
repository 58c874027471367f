"""Signed envelopes: what the console says on the bus, and how receivers check it.

An envelope is JSON ``{v, id, type, org, issued_at, seq, body, key_id, sig}``. ``sig``
is Ed25519 over the canonical JSON of every other field. Receivers hold only the public
key; with a :class:`SeqTracker` they also reject replays (an old ``seq`` on a stream),
so a leaked broker password is not enough to forge a freeze or a message.

Verification is over the canonical bytes of what was *received* (parsed with hard
bounds), and the envelope is then parsed strictly: a ``seq`` of ``"5"``, a ``v`` of
``true`` or a Unix-time ``issued_at`` is refused, not coerced. Signing is deterministic:
the caller gives the envelope id (the outbox uses its effect id), and Ed25519 gives the
same signature for the same bytes, so a retry sends exactly the same envelope.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, ValidationError

from krise_tui.wire.canonical import canonical_json
from krise_tui.wire.safejson import UnsafeJson, loads_object

ENVELOPE_VERSION = 1
MAX_ENVELOPE_BYTES = 256 * 1024


class Envelope(BaseModel):
    """A signed bus message."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    v: int
    id: str
    type: str
    org: str
    issued_at: datetime
    seq: int
    body: dict[str, Any]
    key_id: str
    sig: str

    def signed_part(self) -> bytes:
        """The bytes the signature covers (canonical JSON of all fields but ``sig``)."""
        data = self.model_dump(mode="json", exclude={"sig"})
        return canonical_json(data)

    def to_json(self) -> str:
        """The wire form."""
        return self.model_dump_json()


def key_id_for(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key: first 16 hex chars of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class Signer:
    """Holds the console's private key and signs envelopes."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id_for(self.public_key)

    def sign_bytes(self, data: bytes) -> bytes:
        """A raw Ed25519 signature over ``data`` (the journal's signed head)."""
        return self._key.sign(data)

    @classmethod
    def generate(cls) -> Signer:
        """A signer with a fresh key pair (tests, demos)."""
        return cls(Ed25519PrivateKey.generate())

    def sign(
        self,
        *,
        type: str,
        org: str,
        seq: int,
        body: dict[str, Any],
        issued_at: datetime,
        envelope_id: str,
    ) -> Envelope:
        """Build and sign an envelope (the same inputs give the same bytes)."""
        unsigned = {
            "v": ENVELOPE_VERSION,
            "id": envelope_id,
            "type": type,
            "org": org,
            "issued_at": issued_at,
            "seq": seq,
            "body": body,
            "key_id": self.key_id,
            "sig": "",
        }
        draft = Envelope.model_validate(unsigned, strict=False)
        sig = self._key.sign(draft.signed_part())
        return draft.model_copy(update={"sig": base64.urlsafe_b64encode(sig).decode("ascii")})


class VerifyStatus(StrEnum):
    """Outcome of checking an envelope."""

    OK = "ok"
    DUPLICATE = "duplicate"
    """Same envelope seen before (a retained message re-sent): harmless, ignore."""
    REJECTED = "rejected"


@dataclass(frozen=True)
class VerifyResult:
    """What :meth:`Verifier.check` found."""

    status: VerifyStatus
    reason: str = ""
    envelope: Envelope | None = None

    @property
    def ok(self) -> bool:
        """True only for a new, valid envelope."""
        return self.status is VerifyStatus.OK


@dataclass
class SeqTracker:
    """Remembers the last ``seq`` (and envelope id) per ``(key_id, type)`` stream."""

    last: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)

    def classify(self, env: Envelope) -> VerifyResult:
        """Decide whether ``env`` is new, a duplicate, or a replay, without recording it."""
        seen = self.last.get((env.key_id, env.type))
        if seen is None or env.seq > seen[0]:
            return VerifyResult(VerifyStatus.OK, envelope=env)
        if env.seq == seen[0] and env.id == seen[1]:
            return VerifyResult(VerifyStatus.DUPLICATE, "already seen", env)
        return VerifyResult(
            VerifyStatus.REJECTED,
            f"replayed or stale seq {env.seq} on stream {env.type!r} (last accepted {seen[0]})",
            env,
        )

    def record(self, env: Envelope) -> None:
        """Remember ``env`` as the newest on its stream."""
        self.last[(env.key_id, env.type)] = (env.seq, env.id)

    def to_json(self) -> dict[str, Any]:
        """Serialisable form (for a state file kept across restarts)."""
        return {
            "last": [[key, kind, seq, env_id] for (key, kind), (seq, env_id) in self.last.items()]
        }

    @classmethod
    def from_json(cls, data: object) -> Self:
        """Parse :meth:`to_json` output (raises ValueError when it is not that)."""
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        tracker = cls()
        try:
            for key, kind, seq, env_id in data.get("last", []):
                tracker.last[(str(key), str(kind))] = (int(seq), str(env_id))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"unexpected entry: {exc}") from None
        return tracker


class Verifier:
    """Checks envelopes against trusted public keys and a replay tracker."""

    def __init__(
        self,
        public_keys: list[Ed25519PublicKey],
        *,
        org: str | None = None,
        tracker: SeqTracker | None = None,
    ) -> None:
        self._keys = {key_id_for(k): k for k in public_keys}
        self._org = org
        self.tracker = tracker or SeqTracker()

    def check(self, payload: bytes | str, *, record: bool = True) -> VerifyResult:
        """Parse, verify the signature, the org and the ``seq`` of one payload."""
        raw = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        try:
            data = loads_object(raw, max_bytes=MAX_ENVELOPE_BYTES)
        except UnsafeJson as exc:
            return VerifyResult(VerifyStatus.REJECTED, f"not a valid envelope: {exc}")
        try:
            env = _strict(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "envelope"
            return VerifyResult(
                VerifyStatus.REJECTED, f"not a valid envelope: {where}: {first['msg']}"
            )
        if env.v != ENVELOPE_VERSION:
            return VerifyResult(VerifyStatus.REJECTED, f"unsupported envelope version {env.v}", env)
        key = self._keys.get(env.key_id)
        if key is None:
            return VerifyResult(VerifyStatus.REJECTED, f"unknown signing key {env.key_id}", env)
        unsigned = {k: v for k, v in data.items() if k != "sig"}
        try:
            sig = base64.urlsafe_b64decode(env.sig.encode("ascii"))
            key.verify(sig, canonical_json(unsigned))
        except (InvalidSignature, ValueError):
            return VerifyResult(VerifyStatus.REJECTED, "invalid signature", env)
        if self._org is not None and env.org != self._org:
            return VerifyResult(VerifyStatus.REJECTED, f"envelope for org {env.org!r}", env)
        result = self.tracker.classify(env)
        if result.ok and record:
            self.tracker.record(env)
        return result


def _strict(raw: bytes) -> Envelope:
    """The envelope parsed strictly from its JSON (no coercion of any field)."""
    return Envelope.model_validate_json(raw, strict=True)


# --- key files -------------------------------------------------------------------------


class KeyFileError(Exception):
    """A key file is missing, unreadable or too open."""


def write_key_pair(directory: Path, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``console.key`` (0600, PEM PKCS8) and ``console.pub`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    priv_path = directory / "console.key"
    pub_path = directory / "console.pub"
    if priv_path.exists() and not overwrite:
        raise KeyFileError(f"{priv_path} exists; refusing to overwrite (use --force)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(priv_path, 0o600)
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pub_path.write_bytes(pub)
    return priv_path, pub_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Load a private key, refusing one that others can read."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise KeyFileError(f"{path}: no such key file (run `krise keys init`)") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path}: private key is readable by others (chmod 600 it)")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Load a public key (PEM)."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError as exc:
        raise KeyFileError(f"{path}: no such public key file") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 public key")
    return key
