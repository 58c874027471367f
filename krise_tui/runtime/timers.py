"""What is due now: an expired freeze, reminders, deliveries with no receipt, and
retained notices to sign again before terminals would find them too old.

:meth:`Timers.tick` looks at the state and the clock (the wall clock, or a drill's
virtual one) and submits the commands that are due. It is pure in what it decides —
the engine checks each command again — and cheap enough to run every second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from krise_tui.clock import Clock
from krise_tui.core.features.freeze import LiftFreeze, ReassertFreeze, RemindUnacknowledged
from krise_tui.core.features.messages import (
    DeliveryStatus,
    MarkDeliveryOverdue,
    RefreshCurrentMessage,
)
from krise_tui.core.policy import MessagePolicy
from krise_tui.core.state import IncidentState
from krise_tui.runtime.outbox import Submit
from krise_tui.wire.staff import NOTICE_MAX_AGE_HOURS

log = logging.getLogger(__name__)

REFRESH_AFTER = timedelta(hours=NOTICE_MAX_AGE_HOURS) / 3
"""Retained notices are signed again this long after their last change: terminals refuse
notices older than ``NOTICE_MAX_AGE_HOURS``, and a flood or a boil-water notice can last
longer (every terminal starting later would otherwise show no freeze and no message)."""


class Timers:
    """Submits what is due (freeze expiry, reminders, overdue deliveries)."""

    def __init__(
        self,
        *,
        clock: Clock,
        state: Callable[[], IncidentState],
        policy: Callable[[], MessagePolicy],
        unacknowledged: Callable[[], list[str]],
        submit: Submit,
        interval: float = 1.0,
    ) -> None:
        self.clock = clock
        self._state = state
        self._policy = policy
        self._unacknowledged = unacknowledged
        self._submit = submit
        self.interval = interval

    async def run(self) -> None:
        """Tick every :attr:`interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            await self.tick()

    async def tick(self) -> None:
        """Act on what is due now."""
        state, policy, now = self._state(), self._policy(), self.clock.now()
        freeze = state.freeze.current
        if freeze is not None and now - freeze.changed_at >= REFRESH_AFTER:
            await self._submit(ReassertFreeze(), actor="system")
            freeze = self._state().freeze.current
        current = state.messages.current
        if current is not None and now - (current.refreshed_at or current.set_at) >= REFRESH_AFTER:
            await self._submit(RefreshCurrentMessage(), actor="system")
        if freeze is not None and freeze.active:
            if freeze.expires_at is not None and now >= freeze.expires_at:
                await self._submit(LiftFreeze("Utløpt / expired"), actor="system")
            elif now - freeze.changed_at >= policy.remind_after:
                due = [i for i in self._unacknowledged() if i not in state.freeze.reminders]
                if due:
                    await self._submit(RemindUnacknowledged(tuple(due)), actor="system")
        for delivery in list(state.messages.deliveries.values()):
            if delivery.status not in (DeliveryStatus.QUEUED, DeliveryStatus.HANDED):
                continue
            since = delivery.updated_at or delivery.requested_at
            if now - since >= policy.receipt_deadline:
                await self._submit(MarkDeliveryOverdue(delivery.effect_id), actor="system")
