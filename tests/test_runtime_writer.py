"""The writer's group commits and the outbox's pipelined streams, without a broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from krise_tui.bus.envelope import Signer
from krise_tui.bus.session import NotConnectedError
from krise_tui.core.engine import decide
from krise_tui.core.features.incident import OpenIncident
from krise_tui.core.features.messages import DraftSaved, DraftVariant, SaveDraft
from krise_tui.core.features.outbox import ConfirmEffect, FailEffectAttempt
from krise_tui.core.kernel import Accepted, Context, Decision, EventBase, Rejection
from krise_tui.core.policy import ChannelSpec, MessagePolicy
from krise_tui.core.state import IncidentState, fold, state_hash
from krise_tui.journal.store import Journal, verify_file
from krise_tui.runtime.outbox import OutboxScheduler
from krise_tui.runtime.writer import JournalWriter
from tests.conftest import disk_full, eventually
from tests.corekit import POLICY, WEB, make_ctx, opened, publish_text

CHANNELS = MessagePolicy(
    org_name=POLICY.org_name,
    website_url=WEB,
    channels=(
        ChannelSpec("nettside", "website"),
        ChannelSpec("sms", "webhook"),
        ChannelSpec("facebook", "facebook"),
    ),
    operators=POLICY.operators,
)


def context(actor: str | None = None) -> Context:
    return make_ctx(actor or "ola")


class CountingJournal(Journal):
    """A journal that counts its transactions and can be told to fail the next one."""

    appends: list[int]
    fail_next: BaseException | None

    async def append(
        self, events: Sequence[EventBase], *, playbook_hash: str | None = None
    ) -> list[int]:
        self.appends.append(len(events))
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        return await super().append(events, playbook_hash=playbook_hash)


async def open_writer(path: Path) -> tuple[CountingJournal, JournalWriter]:
    journal = CountingJournal(path)
    journal.appends, journal.fail_next = [], None
    await journal.__aenter__()
    state = await journal.load_state()
    return journal, JournalWriter(journal, state, context, lambda: "pb")


def draft(n: int) -> SaveDraft:
    return SaveDraft((DraftVariant("nb", f"Melding {n}", f"Les mer på {WEB}"),))


async def loop_turns(n: int = 50) -> None:
    """Let the event loop run every ready callback ``n`` times over (no wall-clock wait:
    what could happen next without a timer or I/O has happened)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_commands_submitted_together_are_one_transaction_each_answered(
    tmp_path: Path,
) -> None:
    journal, writer = await open_writer(tmp_path / "j.sqlite3")
    seen: list[list[EventBase]] = []
    writer.on_state(lambda _state, events: seen.append(events))
    try:
        assert isinstance(await writer.submit(OpenIncident("Flom")), Accepted)
        commands: list[object] = [draft(1), draft(2), OpenIncident("Igjen"), draft(3)]
        decisions = await asyncio.gather(*(writer.submit(c) for c in commands))
        assert journal.appends == [1, 3]  # the incident alone, then the group together
        assert isinstance(decisions[2], Rejection)  # refused, and the others still pass
        drafts = [d.events[0] for d in decisions if isinstance(d, Accepted)]
        assert all(isinstance(e, DraftSaved) for e in drafts)
        assert [e.variants[0]["headline"] for e in drafts] == [  # type: ignore[attr-defined]
            "Melding 1",
            "Melding 2",
            "Melding 3",
        ]
        assert [len(events) for events in seen] == [1, 3]  # listeners hear once per group
        assert writer.state.event_count == 4
        restarted = await journal.load_state()
        assert state_hash(restarted) == state_hash(writer.state)
    finally:
        await journal.close()
    assert verify_file(tmp_path / "j.sqlite3").ok


async def test_a_group_that_cannot_be_journaled_fails_for_every_caller_and_folds_nothing(
    tmp_path: Path,
) -> None:
    journal, writer = await open_writer(tmp_path / "j.sqlite3")
    try:
        await writer.submit(OpenIncident("Flom"))
        journal.fail_next = OSError("disk full")
        outcomes = await asyncio.gather(
            *(writer.submit(draft(n)) for n in range(3)), return_exceptions=True
        )
        assert all(isinstance(o, OSError) for o in outcomes)
        assert writer.state.event_count == 1
        assert writer.state.messages.drafts == {}
        # The next command is decided against what is on disk, and journaled.
        assert isinstance(await writer.submit(draft(9)), Accepted)
        assert len(writer.state.messages.drafts) == 1
        assert state_hash(await journal.load_state()) == state_hash(writer.state)
    finally:
        await journal.close()


async def test_a_cancelled_caller_does_not_cancel_the_others_of_its_group(
    tmp_path: Path,
) -> None:
    """The caller leading a group may be cancelled while it is journaled: the group is
    journaled and heard all the same, and the other callers get their decisions."""
    journal, writer = await open_writer(tmp_path / "j.sqlite3")
    gate = asyncio.Event()
    entered = asyncio.Event()
    plain_append = journal.append

    async def held_append(
        events: Sequence[EventBase], *, playbook_hash: str | None = None
    ) -> list[int]:
        entered.set()
        await gate.wait()
        return await plain_append(events, playbook_hash=playbook_hash)

    seen: list[list[EventBase]] = []
    writer.on_state(lambda _state, events: seen.append(events))
    try:
        await writer.submit(OpenIncident("Flom"))
        journal.append = held_append  # type: ignore[method-assign]
        leader = asyncio.create_task(writer.submit(draft(1)))
        other = asyncio.create_task(writer.submit(draft(2)))
        await asyncio.wait_for(entered.wait(), 5)
        leader.cancel()
        await loop_turns()  # a task sees its cancellation on its next turn
        assert not leader.done()  # it waits for its group, holding the writer's lock
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await leader
        assert isinstance(await asyncio.wait_for(other, 5), Accepted)
        assert len(writer.state.messages.drafts) == 2
        assert [len(events) for events in seen] == [1, 2]
        assert state_hash(await journal.load_state()) == state_hash(writer.state)
    finally:
        await journal.close()


async def test_a_bus_burst_decides_each_message_against_the_ones_before_it(
    tmp_path: Path,
) -> None:
    """A burst needs the working copy; after a failed burst it is made afresh."""
    journal, writer = await open_writer(tmp_path / "j.sqlite3")
    try:
        journal.fail_next = OSError("disk full")
        with pytest.raises(OSError):
            await writer.submit_many([OpenIncident("Flom"), draft(1)], actor="ola")
        assert writer.state.event_count == 0
        decisions = await writer.submit_many(
            [OpenIncident("Flom"), OpenIncident("Igjen"), draft(1)], actor="ola"
        )
        assert [type(d) for d in decisions] == [Accepted, Rejection, Accepted]
        assert journal.appends[-1] == 2
        assert state_hash(await journal.load_state()) == state_hash(writer.state)
        assert isinstance(await writer.submit(draft(2)), Accepted)  # the copy keeps in step
        decisions = await writer.submit_many([draft(3), draft(4)], actor="ola")
        assert all(isinstance(d, Accepted) for d in decisions)
        assert state_hash(await journal.load_state()) == state_hash(writer.state)
    finally:
        await journal.close()


async def test_a_snapshot_that_cannot_be_written_fails_no_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up: small rows still fit, the snapshot (the largest write there
    is) does not. The command that crossed the snapshot interval was committed, yet its
    caller got the error and nobody heard of its events (the outbox would not have sent
    what it asked for until a restart). Now only the snapshot is missing."""

    from krise_tui.runtime import writer as writer_module

    monkeypatch.setattr(writer_module, "SNAPSHOT_EVERY", 10)
    journal, writer = await open_writer(tmp_path / "j.sqlite3")
    heard: list[EventBase] = []
    writer.on_state(lambda _state, events: heard.extend(events))
    try:
        await writer.submit(OpenIncident("Flom"))
        for n in range(5):  # a state larger than a few rows
            body = f"Melding {n}: " + "Rv73 er stengt ved Svenskvollen. " * 100 + WEB
            assert isinstance(
                await writer.submit(SaveDraft((DraftVariant("nb", f"Lang {n}", body),))),
                Accepted,
            )

        await journal._call(lambda con: disk_full(con, spare_pages=3))  # rows, no snapshot
        before = writer.state.event_count
        for n in range(8):  # crosses seq 10: a snapshot is due, and cannot be written
            assert isinstance(await writer.submit(draft(n)), Accepted)
        assert writer.state.event_count == before + 8
        assert sum(isinstance(e, DraftSaved) for e in heard) == 5 + 8
        assert await journal.latest_snapshot_seq() == 0
        assert writer.trouble is None  # the journal itself is written
        assert state_hash(await journal.load_state()) == state_hash(writer.state)
    finally:
        await journal.close()


class HeldPublisher:
    """A bus session whose PUBACKs come only when the test says so."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []
        self.acked = asyncio.Event()
        self.fail: set[int] = set()
        """Seqs whose publish fails (once each)."""

    @property
    def connected(self) -> bool:
        return True

    async def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float | None = None,
    ) -> None:
        seq = int(json.loads(payload)["seq"])
        self.sent.append((topic, seq))  # on the wire: before this call first waits
        await self.acked.wait()
        if seq in self.fail:
            self.fail.discard(seq)
            raise NotConnectedError("connection lost before the PUBACK")


def outbox_for(
    state: IncidentState, publisher: HeldPublisher
) -> tuple[OutboxScheduler, list[object]]:
    submitted: list[object] = []

    async def submit(command: object, *, actor: str | None = None) -> Decision:
        submitted.append(command)
        decision = decide(state, command, make_ctx(actor or "outbox"))
        if isinstance(decision, Accepted):
            fold(decision.events, state)
        return decision

    scheduler = OutboxScheduler(
        org="test",
        signer=Signer.generate(),
        state=lambda: state,
        submit=submit,
        session=lambda: publisher,
        backoff_min=0.2,
        backoff_max=0.2,
    )
    return scheduler, submitted


def out_seqs(state: IncidentState) -> list[int]:
    return sorted(e.publish.seq for e in state.outbox.pending() if e.publish.stream == "out")


async def test_a_stream_is_put_on_the_wire_in_order_without_waiting_for_each_puback() -> None:
    state = opened()
    publish_text(state, "Første", policy=CHANNELS)
    publish_text(state, "Andre", policy=CHANNELS)  # the same three channels again
    first, second = out_seqs(state)[:3], out_seqs(state)[3:]
    publisher = HeldPublisher()
    scheduler, submitted = outbox_for(state, publisher)
    task = asyncio.create_task(scheduler.run())
    try:
        await eventually(lambda: len(publisher.sent) == 3, what="three publishes in flight")
        assert [seq for _, seq in publisher.sent] == first  # in seq order, none acked yet
        assert len({topic for topic, _ in publisher.sent}) == 3
        await loop_turns()  # every task that could publish has run
        assert len(publisher.sent) == 3  # a topic's next effect waits for the one before
        publisher.acked.set()
        await eventually(lambda: not state.outbox.pending(), what="every effect confirmed")
        assert [seq for _, seq in publisher.sent] == first + second
        assert all(isinstance(c, ConfirmEffect) for c in submitted)
        assert len(submitted) == 6
    finally:
        task.cancel()


async def test_a_failed_publish_holds_its_stream_back_and_is_retried_first() -> None:
    state = opened()
    publish_text(state, "Første", policy=CHANNELS)
    seqs = out_seqs(state)
    publisher = HeldPublisher()
    publisher.fail = {seqs[0]}
    publisher.acked.set()
    scheduler, submitted = outbox_for(state, publisher)
    task = asyncio.create_task(scheduler.run())
    try:
        await eventually(lambda: len(submitted) == 3, what="the first outcomes")
        assert isinstance(submitted[0], FailEffectAttempt)  # journaled, in seq order
        assert [type(c) for c in submitted[1:]] == [ConfirmEffect, ConfirmEffect]
        assert out_seqs(state) == seqs[:1]
        held_until = scheduler._not_before.get("out", 0.0)
        assert held_until > asyncio.get_running_loop().time()  # a backoff, not a busy retry
        await loop_turns()
        assert len(publisher.sent) == 3  # the backoff holds the stream
        await eventually(lambda: not state.outbox.pending(), what="the retry")
        assert publisher.sent[-1][1] == seqs[0]
        failed = state.outbox.effects[submitted[0].effect_id]  # type: ignore[attr-defined]
        assert failed.attempts == 2
    finally:
        task.cancel()
