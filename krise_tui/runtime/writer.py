"""The journal writer: every command goes decide → journal → fold → notify.

Two states are kept: :attr:`JournalWriter.state` is what everyone reads (views, timers,
the outbox) and only ever holds journaled events; a working copy is what commands are
decided against while a group of bus messages is being decided, so a burst can be
journaled in one transaction (a group commit) without memory getting ahead of the disk.
If the write fails, the working copy is rebuilt from the committed state and the burst
is tried again; nothing is folded that is not on disk, and no message is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from krise_tui.backoff import backoff_delay
from krise_tui.clock import Clock
from krise_tui.core.engine import ReceiveFromBus, decide
from krise_tui.core.features.inbound import InboundRejected
from krise_tui.core.kernel import Accepted, Context, Decision, EventBase, Rejection
from krise_tui.core.state import IncidentState, fold, state_from_json, state_to_json
from krise_tui.journal.head import HEAD_INTERVAL, SignedHead, make_head, write_head
from krise_tui.journal.store import SNAPSHOT_EVERY, Journal

log = logging.getLogger(__name__)

INBOUND_BATCH = 500
"""At most this many bus messages per journal transaction."""

StateListener = Callable[[IncidentState, list[EventBase]], object]
ContextFactory = Callable[[str | None], Context]
Ack = Callable[[], object]
"""Acknowledge a bus message to the broker (called once it is journaled)."""


@dataclass(frozen=True)
class Inbound:
    """A bus message waiting to be journaled, and how to acknowledge it afterwards."""

    command: ReceiveFromBus
    ack: Ack | None = None


def copy_state(state: IncidentState) -> IncidentState:
    """A deep copy through the state codec."""
    return state_from_json(state_to_json(state))


class JournalWriter:
    """Decides, journals and folds commands; drains the bus into the journal."""

    def __init__(
        self,
        journal: Journal,
        state: IncidentState,
        context: ContextFactory,
        playbook_hash: Callable[[], str | None],
        *,
        last_snapshot: int = 0,
    ) -> None:
        self.journal = journal
        self.state = state
        """The committed state: only journaled events are folded into it."""
        self._working = copy_state(state)
        self._context = context
        self._playbook_hash = playbook_hash
        self._lock = asyncio.Lock()
        self._listeners: list[StateListener] = []
        self._queue: asyncio.Queue[Inbound] = asyncio.Queue()
        self._last_snapshot = last_snapshot
        self.rejected_inbound = 0

    def on_state(self, listener: StateListener) -> None:
        """Call ``listener(state, new_events)`` after every journaled change."""
        self._listeners.append(listener)

    async def submit(self, command: object, *, actor: str | None = None) -> Decision:
        """Decide, journal, fold, notify — one command."""
        async with self._lock:
            decision = decide(self._working, command, self._context(actor))
            if isinstance(decision, Rejection) or not decision.events:
                return decision
            await self._commit(decision.events)
        self._notify(decision.events)
        return decision

    async def submit_many(self, commands: list[object], *, actor: str) -> list[Decision]:
        """Several commands in one journal transaction (a group commit for bus bursts).

        Each command is decided against the working state including the ones before it;
        the committed state gets the events only after they are on disk.
        """
        decisions: list[Decision] = []
        events: list[EventBase] = []
        async with self._lock:
            ctx = self._context(actor)
            for command in commands:
                decision = decide(self._working, command, ctx)
                decisions.append(decision)
                if isinstance(decision, Accepted) and decision.events:
                    fold(decision.events, self._working)
                    events += decision.events
            if events:
                await self._commit(events, folded=True)
        if events:
            self._notify(events)
        return decisions

    async def _commit(self, events: list[EventBase], *, folded: bool = False) -> None:
        """Append, then fold into the committed state (and the working one, if needed)."""
        try:
            seqs = await self.journal.append(events, playbook_hash=self._playbook_hash())
        except BaseException:
            if folded:  # the working copy is ahead of the disk: take it back
                self._working = copy_state(self.state)
            raise
        fold(events, self.state)
        if not folded:
            fold(events, self._working)
        await self._maybe_snapshot(seqs[-1])

    async def _maybe_snapshot(self, seq: int) -> None:
        """Snapshot now and then so a restart folds only the newest events."""
        if seq - self._last_snapshot < SNAPSHOT_EVERY or self.state.event_count != seq:
            return  # not due, or another writer shares this journal: its fold is not ours
        await self.journal.save_snapshot(self.state, seq)
        self._last_snapshot = seq

    def _notify(self, events: list[EventBase]) -> None:
        for listener in list(self._listeners):
            try:
                listener(self.state, events)
            except Exception:
                log.exception("state listener failed")

    # --- the bus ----------------------------------------------------------------------

    def put(self, command: ReceiveFromBus, ack: Ack | None = None) -> None:
        """Queue a bus message for the next group commit (never blocks)."""
        self._queue.put_nowait(Inbound(command, ack))

    @property
    def backlog(self) -> int:
        """Bus messages waiting to be journaled."""
        return self._queue.qsize()

    async def flush(self) -> None:
        """Wait until every queued bus message is journaled."""
        await self._queue.join()

    async def run_inbound(self) -> None:
        """Drain the bus into the journal: everything waiting, one transaction at a time.

        A failed write keeps the burst and tries again with a backoff (the broker has
        not been acknowledged for it, so even a crash now loses nothing).
        """
        failures = 0
        while True:
            batch = [await self._queue.get()]
            while len(batch) < INBOUND_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            while True:
                try:
                    decisions = await self.submit_many([i.command for i in batch], actor="bus")
                except Exception:
                    failures += 1
                    delay = backoff_delay(failures, base=0.2, cap=5.0)
                    log.exception(
                        "journaling %d bus messages failed; retrying in %.1f s", len(batch), delay
                    )
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                break
            for item in batch:
                if item.ack is not None:
                    try:
                        item.ack()
                    except Exception:
                        log.exception("acknowledging a bus message failed")
                self._queue.task_done()
            for decision in decisions:
                if isinstance(decision, Accepted):
                    for event in decision.events:
                        if isinstance(event, InboundRejected):
                            self.rejected_inbound += 1
                            log.warning("rejected bus message: %s", event.reason)


class HeadKeeper:
    """Keeps the journal's signed head current: after commits, at most every interval."""

    def __init__(
        self,
        journal: Journal,
        *,
        sign: Callable[[bytes], bytes],
        key_id: str,
        paths: list[Path],
        clock: Clock,
        interval: float = HEAD_INTERVAL,
    ) -> None:
        self.journal = journal
        self._sign = sign
        self._key_id = key_id
        self.paths = paths
        self._clock = clock
        self.interval = interval
        self._dirty = asyncio.Event()
        self.written: SignedHead | None = None

    def touch(self, *_: object) -> None:
        """Something was committed: write a new head soon."""
        self._dirty.set()

    async def write(self) -> SignedHead:
        """Sign and write the head now."""
        seq, digest = await self.journal.head()
        head = make_head(
            seq=seq,
            hash=digest,
            at=self._clock.now().isoformat(),
            key_id=self._key_id,
            sign=self._sign,
        )
        await asyncio.to_thread(write_head, head, self.paths)
        self.written = head
        return head

    async def run(self) -> None:
        """Write the head after commits until cancelled."""
        await self.write()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self.write()
            await asyncio.sleep(self.interval)
