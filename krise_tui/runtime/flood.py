"""A flood of refused bus messages: said in the console, so someone blocks its sender.

Every message the console refuses is journaled with its topic and reason (nothing is
dropped). A staff or bridge password in the wrong hands can send refusals as fast as the
broker carries them, and the journal, the log and the disk grow with each; when the disk
is full, real posts wait at the broker until its queue for the console overflows. The
console cannot stop it (only the broker can, by blocking the user), but it can say so
at once: more than :data:`THRESHOLD` refusals on one topic within :data:`WINDOW`
seconds raise a concern naming the topic, cleared once a window passes below it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

THRESHOLD = 100
"""Refusals on one topic within :data:`WINDOW` that make a flood (a person's mistakes
or a broken bridge stay far below: a refusal is rare)."""
WINDOW = 60.0
"""Seconds the count looks back."""


class FloodWatch:
    """Counts refused messages per topic over the last :data:`WINDOW` seconds."""

    def __init__(
        self,
        *,
        threshold: int = THRESHOLD,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.window = window
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    def refused(self, topic: str) -> None:
        """A message on ``topic`` was refused now."""
        self._seen.setdefault(topic, deque()).append(self._clock())

    def flooding(self) -> list[tuple[str, int]]:
        """The topics at or above the threshold now, with their counts, most first."""
        cutoff = self._clock() - self.window
        out = []
        for topic in list(self._seen):
            times = self._seen[topic]
            while times and times[0] <= cutoff:
                times.popleft()
            if not times:
                del self._seen[topic]
            elif len(times) >= self.threshold:
                out.append((topic, len(times)))
        return sorted(out, key=lambda item: (-item[1], item[0]))


def flood_text(flooding: list[tuple[str, int]], window: float = WINDOW) -> tuple[str, str]:
    """The concern in bokmål and English for what :meth:`FloodWatch.flooding` found."""
    topic, count = flooding[0]
    more_nb = f" (og {len(flooding) - 1} emne(r) til)" if len(flooding) > 1 else ""
    more_en = f" (and {len(flooding) - 1} more topic(s))" if len(flooding) > 1 else ""
    span = f"{window / 60:g} min" if window >= 60 else f"{window:g} s"
    return (
        f"! {count} ugyldige meldinger siste {span} på {topic}{more_nb}: et passord i gale "
        "hender? Sperr brukeren i megleren. Alt journalføres, og journalen vokser.",
        f"! {count} invalid messages in the last {span} on {topic}{more_en}: a password "
        "in the wrong hands? Block the user in the broker. Everything is journaled, and "
        "the journal grows.",
    )
