"""The console under hostile input and faults, against a real mosquitto.

Poison on the bus never stalls intake; stale retained notices are superseded or
re-asserted; a crashed loop is reported and restarted; a denied publish is visible.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer, Verifier
from krise_tui.bus.session import LinkState
from krise_tui.config import Settings
from krise_tui.core.features.freeze import (
    Freeze,
    FreezeChanged,
    LiftFreeze,
    RemindUnacknowledged,
)
from krise_tui.core.features.inbound import InboundRejected, PostReceived
from krise_tui.core.features.outbox import OutboxSuperseded
from krise_tui.journal.store import Journal, JournalUnavailable
from krise_tui.runtime import ConsoleRuntime
from krise_tui.staff.runtime import StaffRuntime
from tests.conftest import (
    client_for,
    disk_full,
    disk_room,
    eventually,
    writes_allowed,
    writes_refused,
)
from tests.corekit import console_settings, signed

ORG = "test"


async def started(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer, **kw: object
) -> ConsoleRuntime:
    runtime = ConsoleRuntime(
        console_settings(make_settings, mosquitto.endpoint), signer=signer, **kw
    )  # type: ignore[arg-type]
    await runtime.start()
    assert runtime.session is not None
    await runtime.session.wait_connected(5)
    return runtime


async def retained(broker: MosquittoBroker, topic: str) -> bytes:
    async with client_for(broker.endpoint, "ansatt-003") as client:
        await client.subscribe(topic, qos=1)
        message = await asyncio.wait_for(anext(aiter(client.messages)), 5)
        assert isinstance(message.payload, bytes)
        return message.payload


async def test_poison_never_stalls_intake_and_every_canary_is_journaled(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    runtime = await started(mosquitto, make_settings, signer)
    poison = [
        b'{"staff_id":"ansatt-001","seq":' + b"9" * 5000 + b"}",
        b"[" * 30_000 + b"]" * 30_000,
        b'{"id":"x","text":"y","meta":' + b'{"a":' * 900 + b"1" + b"}" * 901,
    ]
    try:
        async with (
            client_for(mosquitto.endpoint, "ansatt-001") as staff,
            client_for(mosquitto.endpoint, "bridge-testchan") as bridge,
        ):
            for round_ in range(3):
                for payload in poison:  # any staff password can do this on its own topic
                    await staff.publish(topics.staff_ack(ORG, "ansatt-001"), payload, qos=1)
                for i in range(5):
                    body = json.dumps({"id": f"canary-{round_}-{i}", "text": f"Spørsmål {i}"})
                    await bridge.publish(topics.channel_in(ORG, "testchan"), body, qos=1)
        await eventually(lambda: len(runtime.state.inbound.posts) == 15, what="15 canaries")
        await eventually(lambda: runtime.state.inbound.rejected == 9, what="9 rejections")
        assert runtime.writer is not None and runtime.writer.backlog == 0
    finally:
        await runtime.stop()
    async with await Journal.open(runtime.settings.journal_path) as journal:
        events = await journal.read_events()
    canaries = [e.post.id for e in events if isinstance(e, PostReceived)]
    assert sorted(canaries) == sorted(f"canary-{r}-{i}" for r in range(3) for i in range(5))
    reasons = [e.reason for e in events if isinstance(e, InboundRejected)]
    assert sum("a number has 5000" in r for r in reasons) == 3
    assert all("staff/ansatt-001/ack" in r or "channel" in r for r in reasons)


async def test_id_numbers_disguised_in_posts_from_the_bus_are_never_journaled(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    """A bridge password publishing posts with a fødselsnummer typed with letters, or
    written apart from the birth date: the journal and the state only ever hold them
    masked."""
    runtime = await started(mosquitto, make_settings, signer)
    texts = {
        "letters": "Mitt fnr er 17O5723488l, ring meg",
        "apart": "Født 17.05.72, personnummer 34881. Hjelp!",
    }
    try:
        async with client_for(mosquitto.endpoint, "bridge-testchan") as bridge:
            for key, text in texts.items():
                body = json.dumps({"id": key, "text": text})
                await bridge.publish(topics.channel_in(ORG, "testchan"), body, qos=1)
        await eventually(lambda: len(runtime.state.inbound.posts) == 2, what="both posts")
    finally:
        await runtime.stop()
    path = runtime.settings.journal_path
    raw = b"".join(p.read_bytes() for p in (path, path.with_name(f"{path.name}-wal")) if p.exists())
    for secret in (b"17O5723488l", b"34881"):
        assert secret not in raw
    async with await Journal.open(runtime.settings.journal_path) as journal:
        posts = {e.post.id: e for e in await journal.read_events() if isinstance(e, PostReceived)}
    assert posts["letters"].post.text == "Mitt fnr er 170572*****, ring meg"
    assert posts["apart"].post.text == "Født 17.05.72, personnummer *****. Hjelp!"
    assert posts["letters"].masked == posts["apart"].masked == 1


async def test_after_an_outage_only_the_newest_retained_notice_goes_out(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    runtime = await started(mosquitto, make_settings, signer)
    try:
        await mosquitto.stop()
        await eventually(lambda: runtime.link_state is LinkState.DISCONNECTED, what="offline")
        await runtime.submit(Freeze("Flom"))
        await runtime.submit(LiftFreeze("Falsk alarm"))
        await mosquitto.start()
        await runtime.wait_idle(timeout=20)
    finally:
        await runtime.stop()
    result = Verifier([signer.public_key], org=ORG).check(
        await retained(mosquitto, topics.freeze(ORG))
    )
    assert result.ok and result.envelope is not None
    assert result.envelope.body["active"] is False  # the lift, never the stale freeze
    assert result.envelope.seq == 2
    async with await Journal.open(runtime.settings.journal_path) as journal:
        events = await journal.read_events()
    (superseded,) = [e for e in events if isinstance(e, OutboxSuperseded)]
    freeze = next(e for e in events if isinstance(e, FreezeChanged) and e.active)
    assert superseded.effect_id != freeze.id


async def test_an_older_notice_found_on_the_broker_is_reasserted(
    mosquitto: MosquittoBroker,
    make_settings: Callable[..., Settings],
    signer: Signer,
    tmp_path: object,
) -> None:
    runtime = await started(mosquitto, make_settings, signer)
    try:
        await runtime.submit(Freeze("Flom"))
        old = next(
            e for e in runtime.state.outbox.effects.values() if str(e.publish.target) == "freeze"
        )
        captured = signed(signer, old)  # a genuine, signed, but old notice
        await runtime.submit(LiftFreeze("Over"))
        await runtime.wait_idle()
        async with client_for(mosquitto.endpoint, "console") as attacker:
            await attacker.publish(topics.freeze(ORG), captured, qos=1, retain=True)
        await eventually(
            lambda: (
                runtime.state.freeze.current is not None and runtime.state.freeze.current.seq == 3
            ),
            what="re-asserted",
        )
        await runtime.wait_idle()
    finally:
        await runtime.stop()
    result = Verifier([signer.public_key], org=ORG).check(
        await retained(mosquitto, topics.freeze(ORG))
    )
    assert result.envelope is not None and result.envelope.seq == 3
    assert result.envelope.body["active"] is False and result.envelope.body["action"] == "reassert"


async def test_a_restarted_terminal_does_not_take_a_replayed_lift(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    runtime = await started(mosquitto, make_settings, signer)
    settings = make_settings(mosquitto.endpoint, user="ansatt-001")
    keys = [signer.public_key]
    try:
        await runtime.submit(Freeze("Flom"))
        await runtime.submit(LiftFreeze("Over"))
        notices = [
            e for e in runtime.state.outbox.effects.values() if str(e.publish.target) == "freeze"
        ]
        captured_lift = signed(signer, notices[-1])
        await runtime.submit(Freeze("Flom igjen"))
        await runtime.wait_idle()
        term = StaffRuntime(settings, "ansatt-001", public_keys=keys)
        await term.start()
        await eventually(lambda: term.view.freeze is not None, what="the freeze")
        await term.stop()
        # Restarted: the replay tracker comes back from disk, so the old lift is a replay.
        again = StaffRuntime(settings, "ansatt-001", public_keys=keys)
        again.handle(topics.freeze(ORG), captured_lift.encode())
        assert again.view.warnings and "replayed or stale" in again.view.warnings[-1]
        fresh = StaffRuntime(settings, "ansatt-009", public_keys=keys)  # never saw anything
        fresh.handle(topics.freeze(ORG), captured_lift.encode())
        assert fresh.view.freeze is None  # it may show the lift, but the console...
        await eventually(  # ...re-asserts if such an old notice is ever retained
            lambda: runtime.state.freeze.active, what="still frozen in the console"
        )
    finally:
        await runtime.stop()


async def test_a_crashing_loop_is_reported_and_restarted(
    mosquitto: MosquittoBroker,
    make_settings: Callable[..., Settings],
    signer: Signer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = await started(mosquitto, make_settings, signer, timer_interval=0.05)
    concerns: list[tuple[str, str | None]] = []
    runtime.on_concern(lambda name, text: concerns.append((name, text)))
    calls = 0
    assert runtime.timers is not None
    real_tick = runtime.timers.tick

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk on fire")
        await real_tick()

    runtime.timers.tick = flaky  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.ERROR):
            await eventually(lambda: calls >= 4, what="the timers loop restarted")
        assert ("loop:timers", "timers: RuntimeError: disk on fire") in concerns
        assert any(
            "timers crashed" in r.getMessage() and r.levelno == logging.ERROR
            for r in caplog.records
        )
        assert "loop:timers" in runtime.concerns
    finally:
        await runtime.stop()


async def test_a_publish_the_broker_refuses_is_a_visible_failure(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    """The broker's ACL refuses one topic: the effect is failed, refused and kept."""
    runtime = await started(mosquitto, make_settings, signer)
    try:
        await runtime.submit(Freeze("Flom"))
        await runtime.wait_idle()
        acl = mosquitto.directory / "acl"
        lines = acl.read_text().splitlines()
        kept = [line for line in lines if not line.endswith("/staff/+/remind")]
        assert len(kept) < len(lines)
        acl.write_text("\n".join(kept) + "\n")
        assert mosquitto.process is not None
        mosquitto.process.send_signal(signal.SIGHUP)  # mosquitto reloads its ACL
        # mosquitto reloads in its main loop: a full connect round trip after the
        # signal means the loop has come round, so the new ACL is in force.
        for _ in range(2):
            async with client_for(mosquitto.endpoint, "ansatt-003"):
                pass
        await runtime.submit(RemindUnacknowledged(("ansatt-001",)))
        remind = next(
            e
            for e in runtime.state.outbox.effects.values()
            if str(e.publish.target) == "staff_remind"
        )
        await eventually(
            lambda: runtime.state.outbox.effects[remind.effect_id].refused, what="refused"
        )
        effect = runtime.state.outbox.effects[remind.effect_id]
        assert "authori" in (effect.last_error or "").lower()
        assert effect in runtime.state.outbox.pending()  # never marked done
    finally:
        await runtime.stop()


async def test_a_real_console_does_not_carry_on_a_drill_s_journal(
    make_settings: Callable[..., Settings], signer: Signer
) -> None:
    """A drill's incident was opened as an exercise and everything it sent said so; a
    console that publishes for real refuses its journal (and leaves it as it was)."""
    from krise_tui.journal.store import JournalError

    settings = console_settings(make_settings, None)
    drill = ConsoleRuntime(settings, signer=signer, start_bus=False, exercise=True)
    await drill.start()
    try:
        assert drill.state.incident.exercise
        count = drill.state.event_count
    finally:
        await drill.stop()
    real = ConsoleRuntime(settings, signer=signer, start_bus=False)
    with pytest.raises(JournalError, match="this journal is a drill's"):
        await real.start()
    await real.stop()  # as the console does on its way out: nothing to stop, no error
    async with await Journal.open(settings.journal_path, read_only=True) as journal:
        assert await journal.count() == count  # nothing added, and the file is free again
    again = ConsoleRuntime(settings, signer=signer, start_bus=False, exercise=True)
    await again.start()  # the drill itself carries on
    await again.stop()


async def test_a_full_journal_is_said_nothing_is_lost_and_intake_resumes(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    """The disk fills up in the middle of an incident (SQLite's page limit stands in for
    the disk: the same SQLITE_FULL error). Posts stopped being journaled and nobody at
    the console could tell: the writer only logged and retried. Now the banner says so
    while it lasts; nothing is acknowledged meanwhile, so every post comes in once it
    can be written, exactly once."""
    runtime = await started(mosquitto, make_settings, signer)
    assert runtime.journal is not None

    try:
        async with client_for(mosquitto.endpoint, "bridge-testchan") as bridge:
            await bridge.publish(
                topics.channel_in(ORG, "testchan"), json.dumps({"id": "før", "text": "x"}), qos=1
            )
            await eventually(lambda: "testchan:før" in runtime.state.inbound.posts, what="post")
            await runtime.journal._call(disk_full)  # the disk is full from now on
            for i in range(40):
                # Longer than a page: a post never fits in room left in a page already there.
                body = json.dumps({"id": f"under-{i}", "text": "Er vannet trygt? " * 300})
                await bridge.publish(topics.channel_in(ORG, "testchan"), body, qos=1)
            await eventually(lambda: "journal" in runtime.concerns, what="the banner")
            said = runtime.concerns["journal"]
            assert "Journalen kan ikke skrives (database or disk is full)" in said
            english = runtime.concern("journal", "en") or ""
            assert english.startswith("! The journal cannot be written (database or disk")
            assert not any(k.startswith("testchan:under-") for k in runtime.state.inbound.posts)
            with pytest.raises(JournalUnavailable, match="full"):
                await runtime.submit(Freeze("Flom"))  # the operator's command fails loudly
            assert runtime.state.freeze.current is None
            await runtime.journal._call(disk_room)  # space again
            await eventually(
                lambda: (
                    sum(k.startswith("testchan:under-") for k in runtime.state.inbound.posts) == 40
                ),
                what="every post journaled",
                timeout=30,
            )
            await eventually(lambda: "journal" not in runtime.concerns, what="banner cleared")
    finally:
        await runtime.stop()
    async with await Journal.open(runtime.settings.journal_path) as journal:
        events = await journal.read_events()
    ids = [e.post.id for e in events if isinstance(e, PostReceived)]
    assert sorted(ids) == sorted(["før", *(f"under-{i}" for i in range(40))])  # once each


async def test_a_long_full_disk_does_not_stop_the_console(
    mosquitto: MosquittoBroker,
    make_settings: Callable[..., Settings],
    signer: Signer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the journal unwritable (a full disk; here writes are refused outright, so
    that not even a reminder's small row slips into a page already there), every loop
    that journals something (the timers' reminders, the outbox's confirmations) failed,
    and a loop that keeps failing is given up on: after five failures in a minute the
    console stopped itself, in the middle of the incident, for a disk that would have
    room again in a moment. A loop that fails because the journal cannot be written now
    waits for it instead."""
    from krise_tui.clock import FixedClock
    from tests.corekit import NOW

    clock = FixedClock(NOW)
    runtime = await started(mosquitto, make_settings, signer, timer_interval=0.05, clock=clock)
    runtime.supervisor.max_crashes = 2  # gives up at once on a loop that really fails
    assert runtime.journal is not None

    caplog.set_level(logging.WARNING)
    try:
        await runtime.submit(Freeze("Flom"))
        await runtime.journal._call(writes_refused)  # the disk refuses writes from now on
        clock.set(NOW + timedelta(hours=1))  # reminders are due: the timers must journal
        await eventually(lambda: "journal" in runtime.concerns, what="the journal's banner")
        waits = lambda: sum("timers waits" in r.getMessage() for r in caplog.records)  # noqa: E731
        await eventually(lambda: waits() >= 3, what="three failed tries", timeout=30)
        assert not runtime.stopped.is_set(), runtime.concerns.get("fatal")
        assert not any(name.startswith("loop:") for name in runtime.concerns)
        await runtime.journal._call(writes_allowed)  # writable again
        await eventually(  # the timers wait between tries, up to 10 s: not a hot spin
            lambda: bool(runtime.state.freeze.reminders), what="the reminders", timeout=30
        )
        await eventually(lambda: "journal" not in runtime.concerns, what="the banner cleared")
    finally:
        await runtime.stop()


async def test_a_head_copy_that_cannot_be_written_does_not_stop_the_console(
    mosquitto: MosquittoBroker,
    make_settings: Callable[..., Settings],
    signer: Signer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A copy of the signed head kept elsewhere (a removed USB stick, a full share) made
    the head's loop fail at every write, and the console gave up on it and stopped."""
    gone = tmp_path / "usb" / "journal.head"
    (tmp_path / "usb").write_text("not a directory")  # the copy cannot be written there
    runtime = ConsoleRuntime(
        console_settings(make_settings, mosquitto.endpoint, journal_head_copies=[gone]),
        signer=signer,
    )
    runtime.supervisor.max_crashes = 2  # a loop that really fails is given up at once
    await runtime.start()
    assert runtime.head is not None
    writes = 0
    write = runtime.head.write

    async def counted() -> object:  # the real write, counted
        nonlocal writes
        writes += 1
        return await write()

    runtime.head.write = counted  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.WARNING):
            await runtime.submit(Freeze("Flom"))
            # Tried again and again: given up after two failures, it would stop here.
            await eventually(lambda: writes >= 3, what="three writes of the head")
        assert not runtime.stopped.is_set(), runtime.concerns.get("fatal")
        assert any("journal.head" in r.getMessage() for r in caplog.records)
        said = runtime.concerns["journal-head"]
        assert said.startswith(f"Journalens signerte hode kan ikke skrives til {gone} (")
        beside = runtime.settings.journal_path.with_name("journal.sqlite3.head")
        assert beside.exists()  # the head beside the journal is written all the same
        (tmp_path / "usb").unlink()  # the stick is back: the next head goes there too
        await runtime.submit(LiftFreeze("Over"))
        await eventually(lambda: gone.exists(), what="the head copy")
        await eventually(lambda: "journal-head" not in runtime.concerns, what="cleared")
    finally:
        await runtime.stop()
