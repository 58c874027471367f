"""Model work steps back while a storm of posts is being journaled.

Batching and rumour matching run a neural model over every question and post. That work
is advice; getting every post onto disk (and acknowledged to the broker) is not. On a
small machine the two compete for the same cores, and the model loses nothing by
waiting a moment while intake is busy: its backlog is shown in the console, and it
catches up as soon as the storm eases.

Measured with ``bench/intake.py`` on two cores: with the batcher embedding questions as
fast as it can during a storm of 10,000 posts, journaled intake fell from about 1,200 to
about 700 posts/s, whether the model ran in a thread or in a process at lower priority
(the MQTT round trips that intake is made of are delayed by *any* busy core). Pausing
the model while intake runs above :data:`BUSY_RATE` keeps intake near its own speed.

A pause never lasts longer than :data:`MAX_PAUSE` at a time, so in a storm that does not end
the model still moves (one chunk per pause), and the backlog still shrinks between
storms. The clock here is the real one (CPU time is real even in a drill).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from krise_tui.core.features.inbound import PostReceived
from krise_tui.core.kernel import EventBase
from krise_tui.core.state import IncidentState

BUSY_RATE = 200.0
"""Posts journaled per second above which intake counts as busy."""
WINDOW = 1.0
"""Seconds over which the intake rate is measured."""
MAX_PAUSE = 5.0
"""The longest a model waits for intake to calm down before doing one chunk anyway."""


class IntakeGauge:
    """Posts journaled per second over the last :data:`WINDOW` seconds.

    A state listener (:meth:`on_events`); the model services ask :meth:`calm` before
    each piece of work.
    """

    def __init__(
        self,
        *,
        busy_rate: float = BUSY_RATE,
        window: float = WINDOW,
        max_pause: float = MAX_PAUSE,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.busy_rate = busy_rate
        self.window = window
        self.max_pause = max_pause
        self._now = now
        self._arrivals: deque[tuple[float, int]] = deque()
        self._count = 0
        self.paused = 0.0
        """Seconds the model services have waited for intake, in total."""

    def on_events(self, state: IncidentState, events: list[EventBase]) -> None:
        """Count newly journaled posts (never blocks)."""
        n = sum(1 for e in events if isinstance(e, PostReceived))
        if n:
            self._arrivals.append((self._now(), n))
            self._count += n

    def rate(self) -> float:
        """Posts journaled per second over the last window."""
        horizon = self._now() - self.window
        while self._arrivals and self._arrivals[0][0] < horizon:
            self._count -= self._arrivals.popleft()[1]
        return self._count / self.window

    @property
    def busy(self) -> bool:
        """Whether intake is in a storm right now."""
        return self.rate() >= self.busy_rate

    async def calm(self, max_wait: float | None = None, *, step: float = 0.05) -> float:
        """Wait until intake is not busy, at most ``max_wait`` seconds (default
        :attr:`max_pause`); the time waited."""
        max_wait = self.max_pause if max_wait is None else max_wait
        started = self._now()
        waited = 0.0
        while self.busy and waited < max_wait:
            await asyncio.sleep(step)
            waited = self._now() - started
        self.paused += waited
        return waited
