"""The broker's retained freeze notice is always the console's newest one.

Staff terminals that connect get the retained notice first, so it must be the current
freeze (or lift). After an outage the broker may hold an older notice (its database was
restored, a publish was lost with it) or a foreign one, or none at all: the guard looks
at what the broker hands back on the console's own subscription, and a while after
every connect, and asks the core to publish the current notice again
(:class:`~krise_tui.core.features.freeze.ReassertFreeze`: journaled, signed and sent by
the outbox like any other publish).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from krise_tui.bus.envelope import Verifier, VerifyStatus
from krise_tui.core.features.freeze import ReassertFreeze
from krise_tui.core.features.outbox import Target
from krise_tui.core.kernel import Decision
from krise_tui.core.state import IncidentState

log = logging.getLogger(__name__)

REASSERT_AFTER_CONNECT = 3.0
"""Seconds after connecting to check that the broker holds our newest freeze notice."""


class FreezeNoticeGuard:
    """Re-asserts the current freeze notice when the broker holds an older one or none."""

    def __init__(
        self,
        *,
        state: Callable[[], IncidentState],
        submit: Callable[..., Coroutine[Any, Any, Decision]],
        verifier: Verifier,
        after_connect: float = REASSERT_AFTER_CONNECT,
    ) -> None:
        self._state = state
        self._submit = submit
        self._verifier = verifier
        self._after_connect = after_connect
        self._seen = False
        self._check: asyncio.TimerHandle | None = None

    def connected(self) -> None:
        """The bus (re)connected: the retained notice comes again; look a while later."""
        self._seen = False
        if self._check is not None:
            self._check.cancel()
        self._check = asyncio.get_running_loop().call_later(self._after_connect, self._look)

    def retained(self, payload: bytes) -> None:
        """The broker handed back a freeze notice: re-assert ours if it is older or not ours."""
        self._seen = True
        current = self._state().freeze.current
        if current is None:
            return
        result = self._verifier.check(payload, record=False)
        env, status = result.envelope, result.status
        if env is not None and status is not VerifyStatus.REJECTED and env.seq >= current.seq:
            return
        self._reassert("found an older or foreign freeze notice on the broker")

    def stop(self) -> None:
        if self._check is not None:
            self._check.cancel()
            self._check = None

    def _look(self) -> None:
        self._check = None
        if not self._seen and self._state().freeze.current is not None:
            self._reassert("the broker holds no freeze notice")

    def _reassert(self, why: str) -> None:
        state = self._state()
        if any(e.publish.target is Target.FREEZE for e in state.outbox.pending()):
            return  # the newest notice is on its way already
        log.warning("freeze notice: %s; publishing the current one again", why)
        task = asyncio.get_running_loop().create_task(
            self._submit(ReassertFreeze(), actor="system"), name="reassert-freeze"
        )
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed", task.get_name(), exc_info=task.exception())
