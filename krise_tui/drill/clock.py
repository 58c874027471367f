"""The drill's virtual clock and its deterministic id source.

:class:`VirtualClock` is what the console runtime reads as "now" during a drill. It
starts at the scenario's ``start`` (T+0) and runs in one of two ways:

- **stepped** (``speed=None``, the player's ``--speed max``): time moves only when the
  player sets it, one timeline step at a time, and stands still while the console works
  through what that step caused. Every event of a step carries the same time, so a
  replay gives the same journal times however fast the machine is;
- **live** (``speed`` > 0): time runs with the wall clock, ``speed`` times faster, and
  can be paused, resumed and moved forward. A person at the console sees a clock that
  moves; what they do gets a realistic time.

:class:`ActorIds` gives every event a deterministic id. The console's services decide
concurrently (the bus writer, question batching, rumour matching, the outbox): one
counter shared by all of them would hand out ids in whatever order the scheduler
happened to run them. Each actor therefore counts on its own, and an id is a hash of
(seed, actor, count): the same scenario gives the same ids, run after run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta


class VirtualClock:
    """T+0 at ``start``; stepped (``speed=None``) or live at ``speed`` × the wall clock."""

    def __init__(
        self,
        start: datetime,
        *,
        speed: float | None = None,
        paused: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``paused``: a live clock that stands at ``start`` until :meth:`resume` (the
        player holds it while the console starts, so T+0 is when the drill begins)."""
        if start.tzinfo is None:
            raise ValueError("the drill's start time needs a time zone")
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be above 0, not {speed}")
        self.start = start
        self._speed = speed
        self._monotonic = monotonic
        self._at = start
        """Virtual time at the anchor."""
        self._anchor = monotonic()
        """Wall (monotonic) time of the anchor."""
        self._paused = paused and speed is not None

    # --- reading ------------------------------------------------------------------------

    def now(self) -> datetime:
        """The virtual time now (timezone-aware, the start's zone)."""
        if self._speed is None or self._paused:
            return self._at
        elapsed = (self._monotonic() - self._anchor) * self._speed
        return self._at + timedelta(seconds=elapsed)

    @property
    def offset(self) -> timedelta:
        """How far into the drill we are (``T+…``)."""
        return self.now() - self.start

    @property
    def stepped(self) -> bool:
        """Whether time moves only when :meth:`set` is called."""
        return self._speed is None

    @property
    def speed(self) -> float | None:
        """Virtual seconds per wall second (``None``: stepped, as fast as possible)."""
        return self._speed

    @property
    def paused(self) -> bool:
        """Whether a live clock stands still."""
        return self._paused

    def wall_seconds_until(self, when: datetime) -> float:
        """Wall seconds until the virtual time reaches ``when`` (0 if past, inf if paused)."""
        ahead = (when - self.now()).total_seconds()
        if ahead <= 0:
            return 0.0
        if self._speed is None or self._paused:
            return float("inf")
        return ahead / self._speed

    # --- moving -------------------------------------------------------------------------

    def set(self, when: datetime) -> None:
        """Move to ``when`` (never backwards: journaled events keep their order)."""
        current = self.now()
        if when < current:
            raise ValueError(
                f"the drill clock cannot go back from {current.isoformat()} to {when.isoformat()}"
            )
        self._at = when
        self._anchor = self._monotonic()

    def pause(self) -> None:
        """Stop a live clock where it is."""
        if not self._paused:
            self._at = self.now()
            self._anchor = self._monotonic()
            self._paused = True

    def resume(self) -> None:
        """Let a paused live clock run again from where it stood."""
        if self._paused:
            self._anchor = self._monotonic()
            self._paused = False

    def set_stepped(self) -> None:
        """From now on, move only when :meth:`set` is called (``--speed max``)."""
        self._at = self.now()
        self._anchor = self._monotonic()
        self._speed = None
        self._paused = False

    def set_speed(self, speed: float) -> None:
        """Run live at ``speed`` × the wall clock from now on."""
        if speed <= 0:
            raise ValueError(f"speed must be above 0, not {speed}")
        self._at = self.now()
        self._anchor = self._monotonic()
        self._speed = speed


class ActorIds:
    """Deterministic event ids: per actor, a counter hashed with the seed.

    Ids are 32 hex characters like :func:`krise_tui.core.ids.new_id`. The console decides
    commands from several services at once, and groups those submitted together into
    one transaction decided by whichever caller leads the group: the order in which
    *different* services' commands are decided depends on the scheduler. Each actor's
    own commands (an operator's actions, the batching service's placements, the
    system's timers) come in a fixed order, so each actor counts on its own and the
    ids are the same run after run.
    """

    def __init__(self, seed: str) -> None:
        self.seed = seed
        self._counts: dict[str, int] = {}

    def next(self, actor: str) -> str:
        """The next id for ``actor``."""
        count = self._counts.get(actor, 0) + 1
        self._counts[actor] = count
        return hashlib.sha256(f"{self.seed}\0{actor}\0{count}".encode()).hexdigest()[:32]

    def source(self, actor: str) -> Callable[[], str]:
        """An id source for commands decided for ``actor``."""
        return lambda: self.next(actor)

    def __call__(self) -> str:
        """An id outside any actor's command (the runtime's own uses)."""
        return self.next("-")
