"""Supervision of the runtime's long-lived loops: nothing dies silently.

Every loop (bus session, journal writer, outbox, timers, playbook watcher…) runs under a
:class:`Supervisor`. A loop that raises is logged at ERROR with its traceback, reported
to the views (the console's banner), and restarted after a backoff; a loop that keeps
crashing is given up on and the runtime is asked to stop cleanly. :meth:`stop` cancels
every loop and waits until each has really ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from krise_tui.backoff import backoff_delay
from krise_tui.bus.session import cancel_and_wait

log = logging.getLogger(__name__)

CrashListener = Callable[[str, str | None], object]
"""``(loop name, error text or None when it recovered)``."""


@dataclass
class _Loop:
    name: str
    factory: Callable[[], Awaitable[None]]
    restart: bool
    essential: bool = True
    crashes: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    """When it last failed transiently (within the window): its backoff grows with them."""
    task: asyncio.Task[None] | None = None


class Supervisor:
    """Runs named loops; restarts a crashed one, gives up on one that keeps crashing."""

    def __init__(
        self,
        *,
        max_crashes: int = 5,
        window: float = 60.0,
        on_crash: CrashListener | None = None,
        on_fatal: Callable[[str], object] | None = None,
        transient: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.transient = transient
        """Failures of the machine, not of the loop (the journal cannot be written while
        the disk is full): the loop waits and tries again for as long as they last, and
        they never count toward giving it up; their cause is reported elsewhere."""
        self.max_crashes = max_crashes
        """Crashes within :attr:`window` seconds after which a loop is given up on."""
        self.window = window
        self.on_crash = on_crash
        self.on_fatal = on_fatal
        """Called once with a reason when a loop is given up on (the runtime stops)."""
        self.errors: dict[str, str] = {}
        """Loop name -> its last error, while it is down or restarting."""
        self._loops: dict[str, _Loop] = {}
        self._stopping = False

    def spawn(
        self,
        name: str,
        factory: Callable[[], Awaitable[None]],
        *,
        restart: bool = True,
        essential: bool = True,
    ) -> None:
        """Run ``factory()`` as the loop ``name`` (restarted after a crash if ``restart``).

        A loop that is not ``essential`` (question batching: the console works without
        it) is given up on alone, reported, without stopping the runtime.
        """
        if name in self._loops:
            raise ValueError(f"a loop named {name!r} is already running")
        loop = _Loop(name, factory, restart, essential)
        self._loops[name] = loop
        loop.task = asyncio.create_task(self._guard(loop), name=name)

    @property
    def running(self) -> list[str]:
        """Names of loops whose task is alive."""
        return [n for n, lp in self._loops.items() if lp.task is not None and not lp.task.done()]

    async def _guard(self, loop: _Loop) -> None:
        while not self._stopping:
            started = time.monotonic()
            try:
                await loop.factory()
            except asyncio.CancelledError:
                raise
            except self.transient as exc:
                log.warning("%s waits: %s: %s", loop.name, type(exc).__name__, exc)
                now = time.monotonic()
                loop.waits = [t for t in loop.waits if now - t < self.window] + [now]
                await asyncio.sleep(backoff_delay(len(loop.waits), base=0.5, cap=10.0))
                continue
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}"
                log.error("%s crashed: %s", loop.name, text, exc_info=exc)
                self.errors[loop.name] = text
                self._tell(loop.name, text)
                now = time.monotonic()
                loop.crashes = [t for t in loop.crashes if now - t < self.window] + [now]
                if not loop.restart or len(loop.crashes) >= self.max_crashes:
                    reason = f"{loop.name} stopped after {len(loop.crashes)} crash(es): {text}"
                    log.error("giving up: %s", reason)
                    if loop.essential and self.on_fatal is not None:
                        self.on_fatal(reason)
                    return
                await asyncio.sleep(backoff_delay(len(loop.crashes), base=0.5, cap=10.0))
                continue
            if not loop.restart or self._stopping:
                return
            # A loop that returns on its own is restarted too, but not in a hot spin.
            if time.monotonic() - started < 1.0:
                await asyncio.sleep(1.0)
            if self.errors.pop(loop.name, None) is not None:
                self._tell(loop.name, None)

    def recovered(self, name: str) -> None:
        """A loop reports it works again (clears its line in the views)."""
        if self.errors.pop(name, None) is not None:
            self._tell(name, None)

    def _tell(self, name: str, error: str | None) -> None:
        if self.on_crash is None:
            return
        try:
            self.on_crash(name, error)
        except Exception:
            log.exception("crash listener failed")

    async def stop(self) -> None:
        """Cancel every loop and wait until each has ended."""
        self._stopping = True
        tasks = [lp.task for lp in self._loops.values() if lp.task is not None]
        await cancel_and_wait(*tasks)
        self._loops.clear()
