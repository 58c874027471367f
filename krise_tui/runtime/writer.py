"""The journal writer: every command goes decide → journal → fold → notify.

Two states are kept: :attr:`JournalWriter.state` is what everyone reads (views, timers,
the outbox) and only ever holds journaled events; a working copy is what commands are
decided against while a group of bus messages is being decided, so a burst can be
journaled in one transaction (a group commit) without memory getting ahead of the disk.
The working copy is made the first time a burst needs it (copying a large state costs
as much as loading it, which a restart should not pay twice) and then kept in step. If
the write fails, the working copy is dropped (made again from the committed state when
next needed) and the burst is tried again; nothing is folded that is not on disk, and
no message is dropped.
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
from krise_tui.core.kernel import Accepted, Context, Decision, EventBase
from krise_tui.core.state import IncidentState, fold
from krise_tui.journal.head import HEAD_INTERVAL, SignedHead, make_head, write_head
from krise_tui.journal.store import SNAPSHOT_EVERY, Journal, decode_state, encode_state

log = logging.getLogger(__name__)

INBOUND_BATCH = 500
"""At most this many bus messages per journal transaction."""

StateListener = Callable[[IncidentState, list[EventBase]], object]
TroubleListener = Callable[[str | None], object]
"""Told why the journal cannot be written (a full disk…), and ``None`` once it can."""
ContextFactory = Callable[[str | None], Context]
Ack = Callable[[], object]
"""Acknowledge a bus message to the broker (called once it is journaled)."""


@dataclass(frozen=True)
class Inbound:
    """A bus message waiting to be journaled, and how to acknowledge it afterwards."""

    command: ReceiveFromBus
    ack: Ack | None = None


def copy_state(state: IncidentState) -> IncidentState:
    """A deep copy through the snapshot codec (JSON text: the codec's fastest round trip)."""
    return decode_state(encode_state(state))


@dataclass
class _Waiting:
    """A command submitted and not yet answered."""

    command: object
    actor: str | None
    future: asyncio.Future[Decision]


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
        self._working: IncidentState | None = None
        """The committed state's copy that bursts are decided against (made when first
        needed; between commands it equals :attr:`state`)."""
        self._context = context
        self._playbook_hash = playbook_hash
        self._lock = asyncio.Lock()
        self._waiting: list[_Waiting] = []
        """Commands submitted and not yet taken into a group, oldest first."""
        self._listeners: list[StateListener] = []
        self._queue: asyncio.Queue[Inbound] = asyncio.Queue()
        self._last_snapshot = last_snapshot
        self.rejected_inbound = 0
        self.trouble: str | None = None
        """Why the last write failed, until one succeeds (None: writing works)."""
        self._trouble_listeners: list[TroubleListener] = []

    def on_state(self, listener: StateListener) -> None:
        """Call ``listener(state, new_events)`` after every journaled change."""
        self._listeners.append(listener)

    def on_trouble(self, listener: TroubleListener) -> None:
        """Call ``listener(why)`` when writing the journal starts failing (a full disk, a
        read-only file system…) and ``listener(None)`` when it works again: nothing is
        lost meanwhile (the broker keeps what is not acknowledged), but nothing new is
        recorded or acted on either, and the people at the console must know."""
        self._trouble_listeners.append(listener)

    def _set_trouble(self, why: str | None) -> None:
        if why == self.trouble:
            return
        self.trouble = why
        for listener in list(self._trouble_listeners):
            try:
                listener(why)
            except Exception:
                log.exception("journal trouble listener failed")

    async def submit(self, command: object, *, actor: str | None = None) -> Decision:
        """Decide, journal, fold, notify — one command.

        Commands submitted while others are being journaled are journaled together, as
        one group (one transaction, one fsync: the outbox confirms a whole burst of
        publishes this way). Each is still decided in order against the state including
        the ones before it, and each caller gets its own decision.
        """
        waiting = _Waiting(command, actor, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        try:
            async with self._lock:
                if not waiting.future.done():  # not journaled by an earlier group: lead one
                    await asyncio.sleep(0)  # commands submitted together (gather) join in
                    group, self._waiting = self._waiting, []
                    await self._lead(group)
        except BaseException:
            if waiting in self._waiting:  # never taken into a group: it will not run
                self._waiting.remove(waiting)
            raise
        return waiting.future.result()

    async def _lead(self, group: list[_Waiting]) -> None:
        """Run ``group`` to its end, then notify, even if this caller is cancelled
        meanwhile: the other callers of the group wait for their answers, and what was
        journaled must be folded and heard. The cancellation is passed on afterwards."""
        task = asyncio.ensure_future(self._run_group(group))
        cancelled = False
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.cancelled():
                    raise
                cancelled = True
        events = task.result()
        if events:
            self._notify(events)
        if cancelled:
            raise asyncio.CancelledError

    async def _run_group(self, group: list[_Waiting]) -> list[EventBase]:
        """Decide every command of ``group`` in order, journal the events in one
        transaction, then answer each caller; the events journaled."""
        outcomes: list[Decision | Exception] = []
        events: list[EventBase] = []
        ahead: IncidentState | None = None  # the working copy, with `events` folded in
        for waiting in group:
            if events and ahead is None:
                ahead = self._working_copy()
                fold(events, ahead)
            try:
                decision = decide(
                    self.state if ahead is None else ahead,
                    waiting.command,
                    self._context(waiting.actor),
                )
            except Exception as exc:  # that caller's error, not the others'
                outcomes.append(exc)
                continue
            outcomes.append(decision)
            if isinstance(decision, Accepted) and decision.events:
                if ahead is not None:
                    fold(decision.events, ahead)
                events += decision.events
        try:
            if events:
                await self._commit(events, ahead=ahead is not None)
        except asyncio.CancelledError:
            for waiting in group:
                waiting.future.cancel()
            raise
        except Exception as exc:  # not journaled: every caller of the group gets the error
            for waiting in group:
                waiting.future.set_exception(exc)
            return []
        for waiting, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, Exception):
                waiting.future.set_exception(outcome)
            else:
                waiting.future.set_result(outcome)
        return events

    async def submit_many(self, commands: list[object], *, actor: str) -> list[Decision]:
        """Several commands in one journal transaction (a group commit for bus bursts).

        Each command is decided against the state including the ones before it (the
        working copy, from the first command that follows an accepted one); the
        committed state gets the events only after they are on disk.
        """
        decisions: list[Decision] = []
        events: list[EventBase] = []
        async with self._lock:
            ctx = self._context(actor)
            ahead: IncidentState | None = None  # the working copy, with `events` folded in
            for command in commands:
                if events and ahead is None:
                    ahead = self._working_copy()
                    fold(events, ahead)
                decision = decide(self.state if ahead is None else ahead, command, ctx)
                decisions.append(decision)
                if isinstance(decision, Accepted) and decision.events:
                    if ahead is not None:
                        fold(decision.events, ahead)
                    events += decision.events
            if events:
                await self._commit(events, ahead=ahead is not None)
        if events:
            self._notify(events)
        return decisions

    def _working_copy(self) -> IncidentState:
        """The working copy, equal to the committed state (made on first use)."""
        if self._working is None:
            self._working = copy_state(self.state)
        return self._working

    async def _commit(self, events: list[EventBase], *, ahead: bool = False) -> None:
        """Append, then fold into the committed state (and the working copy, unless it is
        ``ahead``: already holding them)."""
        try:
            seqs = await self.journal.append(events, playbook_hash=self._playbook_hash())
        except BaseException as exc:
            if ahead:  # the working copy is ahead of the disk: drop it
                self._working = None
            if isinstance(exc, Exception):
                self._set_trouble(f"{exc}" or type(exc).__name__)
            raise
        self._set_trouble(None)
        fold(events, self.state)
        if not ahead and self._working is not None:
            fold(events, self._working)
        await self._maybe_snapshot(seqs[-1])

    async def _maybe_snapshot(self, seq: int) -> None:
        """Snapshot now and then so a restart folds only the newest events.

        A snapshot that cannot be written (the disk is full: a snapshot is the largest
        write there is, so it is the first to fail) costs a slower restart, nothing else:
        the events it would cover are committed, and the command that happened to cross
        the interval has succeeded. It is logged and tried again an interval later.
        """
        if seq - self._last_snapshot < SNAPSHOT_EVERY or self.state.event_count != seq:
            return  # not due, or another writer shares this journal: its fold is not ours
        try:
            await self.journal.save_snapshot(self.state, seq)
        except Exception:
            log.exception("snapshot at seq %d not written (the journal itself is intact)", seq)
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
        on_trouble: TroubleListener | None = None,
    ) -> None:
        self.journal = journal
        self._sign = sign
        self._key_id = key_id
        self.paths = paths
        self._clock = clock
        self.interval = interval
        self._dirty = asyncio.Event()
        self.written: SignedHead | None = None
        self._on_trouble = on_trouble
        self.trouble: str | None = None
        """The places the last head could not be written to, and why (None: all)."""

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
        failed = []
        for path in self.paths:  # each on its own: a copy that fails stops no other
            try:
                await asyncio.to_thread(write_head, head, [path])
            except OSError as exc:
                failed.append(f"{path} ({exc.strerror or exc})")
        trouble = "; ".join(failed) or None
        if trouble is not None:
            # Tried again at the next commit; the journal itself is written (a head that
            # lags behind is what `krise journal verify` reports, not a broken chain).
            self._dirty.set()
        if trouble != self.trouble:
            self.trouble = trouble
            if trouble is not None:
                log.warning("the journal's signed head could not be written to %s", trouble)
            if self._on_trouble is not None:
                self._on_trouble(trouble)
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
