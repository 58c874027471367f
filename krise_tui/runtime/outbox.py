"""The outbox scheduler: publishes what the core asked for, in order, exactly as journaled.

For each pending :class:`~krise_tui.core.features.outbox.Effect` it maps the target to a
topic, signs the body with the effect's id and request time (so every retry sends the
same bytes), publishes with QoS 1 and journals the broker's answer:

- a success reason code confirms the effect;
- a lost connection is a failed attempt, retried with backoff;
- a failure reason code (the broker's ACL refused it) is a failed attempt marked
  *refused*, retried slowly and shown to the operator: it will not fix itself.

Each signed stream goes out strictly in ``seq`` order (a stream waits behind its oldest
pending effect); for a retained topic only the newest pending notice is published and
the older ones are journaled as superseded, so after an outage a broker never ends up
holding an older freeze than the console.

A stream's pending effects for different topics are put on the wire together, in
``seq`` order, and their PUBACKs awaited together; the outcomes are journaled together
too (one group commit). One approved version to eight channels is eight effects on the
``out`` stream: waiting for each PUBACK and journaling each confirmation before sending
the next made the eighth channel start tens of milliseconds after the first. A failure
holds the stream back as before (with a backoff); effects on the same topic are never in
flight together, so no subscriber can see a newer one overtake an older one that failed
(a subscriber of *every* channel's topic may, after a failure, see a higher ``seq``
first).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

from krise_tui.backoff import backoff_delay
from krise_tui.bus import topics
from krise_tui.bus.envelope import Signer
from krise_tui.bus.session import NotConnectedError
from krise_tui.core.features.outbox import (
    ConfirmEffect,
    Effect,
    FailEffectAttempt,
    Publish,
    SupersedeEffect,
    Target,
)
from krise_tui.core.kernel import Decision
from krise_tui.core.state import IncidentState

log = logging.getLogger(__name__)

PIPELINE = 16
"""At most this many publishes of one stream in flight at once (below the broker's
receive maximum: mosquitto's default is 20)."""


class Publisher(Protocol):
    """What the scheduler needs of a bus session."""

    @property
    def connected(self) -> bool: ...

    async def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float | None = None,
    ) -> None: ...


class Submit(Protocol):
    async def __call__(self, command: object, *, actor: str | None = None) -> Decision: ...


def topic_for(org: str, publish: Publish) -> str:
    """The topic a publish goes to."""
    match publish.target:
        case Target.FREEZE:
            return topics.freeze(org)
        case Target.MESSAGE:
            return topics.message_current(org)
        case Target.CHANNEL_OUT:
            return topics.channel_out(org, publish.channel or "")
        case Target.STAFF_REMIND:
            return topics.staff_remind(org, publish.staff_id or "")
    raise ValueError(f"unknown target {publish.target!r}")  # pragma: no cover


def envelope_for(signer: Signer, org: str, effect: Effect) -> str:
    """The signed envelope of an effect: the same bytes on every attempt."""
    p = effect.publish
    return signer.sign(
        type=p.envelope_type,
        org=org,
        seq=p.seq,
        body=p.body,
        issued_at=effect.requested_at,
        envelope_id=effect.effect_id,
    ).to_json()


def refusal_of(exc: BaseException) -> str | None:
    """The broker's refusal reason when ``exc`` says it refused a publish (not a lost link)."""
    if isinstance(exc, NotConnectedError):
        return None
    code = getattr(exc, "reason_code", None)
    if code is None:
        return None
    return str(getattr(exc, "reason", "") or f"refused (reason code {code})")


class OutboxScheduler:
    """Publishes pending effects per stream, in order, and journals the outcome."""

    def __init__(
        self,
        *,
        org: str,
        signer: Signer,
        state: Callable[[], IncidentState],
        submit: Submit,
        session: Callable[[], Publisher | None],
        publish_timeout: float = 10.0,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
        refused_backoff: float = 60.0,
    ) -> None:
        self.org = org
        self.signer = signer
        self._state = state
        self._submit = submit
        self._session = session
        self.publish_timeout = publish_timeout
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.refused_backoff = refused_backoff
        self._wake = asyncio.Event()
        self._failures: dict[str, int] = defaultdict(int)
        """Stream -> consecutive failures of its head."""
        self._not_before: dict[str, float] = {}
        """Stream -> loop time before which its head is not tried again."""

    def wake(self) -> None:
        """Something changed (new effects, a connection): look again now."""
        self._wake.set()

    async def run(self) -> None:
        """Publish until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            waits: list[float] = []
            session = self._session()
            if session is not None and session.connected:
                await self._supersede_stale()
                now = loop.time()
                streams = self._streams()
                due = [s for s in streams if self._not_before.get(s, 0.0) <= now]
                waits = [self._not_before[s] - now for s in streams if s not in due]
                if due:
                    await asyncio.gather(*(self._drain(s, streams[s], session) for s in due))
                    continue  # new effects may have been requested meanwhile
            timeout = min(waits) if waits else None
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    def _streams(self) -> dict[str, list[Effect]]:
        by_stream: dict[str, list[Effect]] = defaultdict(list)
        for effect in self._state().outbox.pending():
            by_stream[effect.publish.stream].append(effect)
        for effects in by_stream.values():
            effects.sort(key=lambda e: e.publish.seq)
        return by_stream

    async def _supersede_stale(self) -> None:
        """Only the newest pending notice per retained topic goes out."""
        newest: dict[tuple[str, str | None, str | None], Effect] = {}
        stale: list[tuple[Effect, Effect]] = []
        for effect in sorted(self._state().outbox.pending(), key=lambda e: e.publish.seq):
            if not effect.publish.retain:
                continue
            slot = effect.publish.slot
            older = newest.get(slot)
            if older is not None:
                stale.append((older, effect))
            newest[slot] = effect
        await asyncio.gather(  # one group commit (JournalWriter.submit)
            *(
                self._submit(SupersedeEffect(old.effect_id, new.effect_id), actor="outbox")
                for old, new in stale
            )
        )

    async def _drain(self, stream: str, effects: list[Effect], session: Publisher) -> None:
        """Publish a stream's next effects (in ``seq`` order, several in flight) and
        journal the outcomes; a failure holds the stream back (with a backoff)."""
        loop = asyncio.get_running_loop()
        window = in_flight_together(effects)
        # gather starts one task per effect, in seq order, and each task's first step
        # (signing, then the PUBLISH handed to the client) runs before any of them waits:
        # the broker receives them in seq order. Only the PUBACKs are awaited together.
        outcomes = await asyncio.gather(
            *(self._publish(effect, session) for effect in window), return_exceptions=True
        )
        commands: list[object] = []
        first_refused: bool | None = None  # how the oldest failure failed (None: none did)
        for effect, outcome in zip(window, outcomes, strict=True):
            if outcome is None:
                commands.append(ConfirmEffect(effect.effect_id))
                continue
            # Every failure is a journaled attempt, never a crash.
            refused = refusal_of(outcome)
            reason = refused or (str(outcome) or type(outcome).__name__)
            if refused is not None:
                log.error("broker refused %s (%s): %s", effect.effect_id, stream, reason)
            commands.append(
                FailEffectAttempt(
                    effect.effect_id, effect.attempts + 1, reason, refused is not None
                )
            )
            if first_refused is None:
                first_refused = refused is not None
        if first_refused is None:
            self._failures.pop(stream, None)
            self._not_before.pop(stream, None)
        else:
            self._failures[stream] += 1
            delay = (
                self.refused_backoff
                if first_refused
                else backoff_delay(
                    self._failures[stream], base=self.backoff_min, cap=self.backoff_max
                )
            )
            self._not_before[stream] = loop.time() + delay
        # Submitted together, they are journaled as one group (JournalWriter.submit).
        await asyncio.gather(*(self._submit(command, actor="outbox") for command in commands))

    async def _publish(self, effect: Effect, session: Publisher) -> None:
        payload = envelope_for(self.signer, self.org, effect)
        await session.publish(
            topic_for(self.org, effect.publish),
            payload,
            qos=1,
            retain=effect.publish.retain,
            timeout=self.publish_timeout,
        )


def in_flight_together(effects: list[Effect]) -> list[Effect]:
    """The oldest effects of a stream (in ``seq`` order) that may be in flight together:
    up to the first one for a topic already among them, at most :data:`PIPELINE`."""
    window: list[Effect] = []
    slots: set[tuple[str, str | None, str | None]] = set()
    for effect in effects[:PIPELINE]:
        slot = effect.publish.slot
        if slot in slots:
            break
        slots.add(slot)
        window.append(effect)
    return window
