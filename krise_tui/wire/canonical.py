"""Canonical JSON: the one byte form that hashes and signatures are computed over."""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` deterministically: sorted keys, no spaces, UTF-8.

    Hashes and signatures are computed over these bytes, so two processes that agree
    on a value always agree on its hash.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
