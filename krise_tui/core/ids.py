"""Identifiers and canonical JSON for the core (clocks live in :mod:`krise_tui.clock`)."""

from __future__ import annotations

import uuid

from krise_tui.clock import Clock as Clock
from krise_tui.clock import FixedClock as FixedClock
from krise_tui.clock import SystemClock as SystemClock
from krise_tui.wire.canonical import canonical_json as canonical_json


def new_id() -> str:
    """Return a fresh random identifier (32 hex characters)."""
    return uuid.uuid4().hex
