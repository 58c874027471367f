"""One backoff rule for every retry loop (broker reconnects, the outbox, bridges, services).

Capped exponential growth with jitter, so that many clients that lost the same broker do
not all come back in the same millisecond. A dependency (stamina, tenacity) would bring
decorators and policies we do not need for one formula used by four loops.
"""

from __future__ import annotations

import random

_RNG = random.Random()


def backoff_delay(
    failures: int,
    *,
    base: float,
    cap: float,
    jitter: float = 0.5,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after the ``failures``-th consecutive failure (1, 2, …).

    ``base · 2^(failures−1)``, at most ``cap``, then scaled by a random factor in
    ``[1 − jitter, 1]``.
    """
    raw = min(cap, base * 2.0 ** max(0, failures - 1))
    return raw * (1.0 - jitter * (rng or _RNG).random())
