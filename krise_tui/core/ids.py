"""Identifiers, clocks and canonical JSON shared by every part of krise."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol


def new_id() -> str:
    """Return a fresh random identifier (32 hex characters)."""
    return uuid.uuid4().hex


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` deterministically: sorted keys, no spaces, UTF-8.

    Hashes and signatures are computed over these bytes, so two processes that agree
    on a value always agree on its hash.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


class Clock(Protocol):
    """Something that tells the time (the real clock, or a drill's virtual one)."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to (tests and drills)."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        """Return the clock's current time."""
        return self._now

    def set(self, when: datetime) -> None:
        """Move the clock to ``when``."""
        self._now = when
