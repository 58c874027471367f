"""Freeze employee posting: engine rules, signed notices on the real bus, roll-call, apps."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer, Verifier
from krise_tui.config import Settings
from krise_tui.core.engine import (
    Accepted,
    Context,
    ExtendFreeze,
    Freeze,
    LiftFreeze,
    OpenIncident,
    PublishCurrentMessage,
    ReceiveFromBus,
    Rejection,
    RemindUnacknowledged,
    decide,
)
from krise_tui.core.events import FreezeChanged, InboundRejected, OutboxRequested
from krise_tui.core.ids import FixedClock
from krise_tui.core.rollcall import StaffStatus, roll_call
from krise_tui.core.state import IncidentState, fold
from krise_tui.journal.store import Journal, verify_file
from krise_tui.runtime import ConsoleRuntime, StaffRuntime
from tests.conftest import eventually

NOW = datetime(2026, 11, 27, 14, 3, tzinfo=UTC)
ROSTER = {"ansatt-001": "helse", "ansatt-002": "helse", "ansatt-003": "skole"}


@pytest.fixture
def ctx(signer: Signer) -> Context:
    return Context(
        org="test", actor="kari", now=NOW, signer=signer, incident_id="inc", roster=ROSTER
    )


def run(state: IncidentState, command: object, ctx: Context) -> Accepted:
    decision = decide(state, command, ctx)  # type: ignore[arg-type]
    assert isinstance(decision, Accepted), decision
    fold(decision.events, state)
    return decision


@pytest.fixture
def opened(ctx: Context) -> IncidentState:
    state = IncidentState()
    run(state, OpenIncident("Flom"), ctx)
    run(state, PublishCurrentMessage("Rv73 er stengt ved Svenskvollen."), ctx)
    return state


def ack(staff_id: str, seq: int) -> ReceiveFromBus:
    body = json.dumps({"staff_id": staff_id, "seq": seq}).encode()
    return ReceiveFromBus(topics.staff_ack("test", staff_id), body)


# --- engine -------------------------------------------------------------------------------


def test_freeze_notice_is_signed_retained_and_carries_the_current_message(
    opened: IncidentState, ctx: Context, signer: Signer
) -> None:
    decision = run(
        opened, Freeze("Flom i sentrum", notice=(("nb", "Vi taler med én stemme."),)), ctx
    )
    changed, outbox = decision.events
    assert isinstance(changed, FreezeChanged) and isinstance(outbox, OutboxRequested)
    assert outbox.topic == "krise/v1/test/freeze" and outbox.retain and outbox.qos == 1
    result = Verifier([signer.public_key], org="test").check(outbox.payload)
    assert result.ok and result.envelope is not None
    body = result.envelope.body
    assert body["active"] is True and body["departments"] == []
    assert body["message"]["variants"]["nb"] == "Rv73 er stengt ved Svenskvollen."
    assert body["notice"] == {"nb": "Vi taler med én stemme."}
    assert opened.freeze is not None and opened.freeze.seq == result.envelope.seq == 1


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (Freeze("  "), "needs a reason"),
        (Freeze("x", departments=("brannvesen",)), "unknown department(s): brannvesen"),
        (Freeze("x", expires_at=NOW - timedelta(minutes=1)), "in the future"),
        (LiftFreeze("slutt"), "not frozen"),
        (ExtendFreeze(None), "not frozen"),
        (RemindUnacknowledged(("ansatt-001",)), "not frozen"),
    ],
)
def test_invalid_freeze_commands_are_rejected(
    opened: IncidentState, ctx: Context, command: object, reason: str
) -> None:
    decision = decide(opened, command, ctx)  # type: ignore[arg-type]
    assert isinstance(decision, Rejection)
    assert reason in decision.reason


def test_freeze_twice_is_rejected_and_lift_needs_a_reason(
    opened: IncidentState, ctx: Context
) -> None:
    run(opened, Freeze("Flom"), ctx)
    assert "already frozen" in decide(opened, Freeze("igjen"), ctx).reason  # type: ignore[union-attr]
    assert "needs a reason" in decide(opened, LiftFreeze(""), ctx).reason  # type: ignore[union-attr]
    run(opened, LiftFreeze("Faren er over"), ctx)
    assert opened.freeze is not None and not opened.freeze.active


def test_a_new_message_while_frozen_reissues_the_notice(
    opened: IncidentState, ctx: Context
) -> None:
    run(opened, Freeze("Flom", departments=("helse",)), ctx)
    decision = run(opened, PublishCurrentMessage("Rv73 er åpnet igjen."), ctx)
    freezes = [e for e in decision.events if isinstance(e, FreezeChanged)]
    assert len(freezes) == 1
    assert freezes[0].message_text == "Rv73 er åpnet igjen."
    assert freezes[0].departments == ["helse"]
    assert opened.freeze is not None and opened.freeze.seq == 2


def test_acks_from_unknown_ids_or_for_stale_seqs_are_rejected(
    opened: IncidentState, ctx: Context
) -> None:
    run(opened, Freeze("Flom"), ctx)
    (rejected,) = run(opened, ack("ansatt-999", 1), ctx).events
    assert isinstance(rejected, InboundRejected) and "unknown staff id" in rejected.reason
    run(opened, ExtendFreeze(NOW + timedelta(hours=2)), ctx)  # new notice: seq 2
    (stale,) = run(opened, ack("ansatt-001", 1), ctx).events
    assert isinstance(stale, InboundRejected) and "stale ack for seq 1" in stale.reason
    run(opened, ack("ansatt-001", 2), ctx)
    assert opened.acks["ansatt-001"].seq == 2


def test_roll_call_counts_per_department(opened: IncidentState, ctx: Context) -> None:
    run(opened, Freeze("Flom", departments=("helse",)), ctx)
    run(
        opened,
        ReceiveFromBus(topics.presence("test", "staff", "ansatt-002"), b'{"status": "online"}'),
        ctx,
    )
    run(opened, ack("ansatt-001", 1), ctx)
    rc = roll_call(opened, ROSTER)
    assert [d.department for d in rc.departments] == ["helse"]  # skole is out of scope
    assert rc.ids(StaffStatus.ACKED) == ["ansatt-001"]
    assert rc.ids(StaffStatus.PENDING) == ["ansatt-002"]
    assert rc.total == 2
    csv_text = rc.to_csv()
    assert "ansatt-001" in csv_text and "kvittert" in csv_text


# --- runtime against the real mosquitto -----------------------------------------------------


async def start_console(
    broker: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer, **kw: object
) -> ConsoleRuntime:
    runtime = ConsoleRuntime(make_settings(broker.endpoint), signer=signer, roster=ROSTER, **kw)  # type: ignore[arg-type]
    await runtime.start()
    assert runtime.session is not None
    await runtime.session.wait_connected(5)
    return runtime


def staff(
    broker: MosquittoBroker,
    make_settings: Callable[..., Settings],
    signer: Signer,
    staff_id: str,
    department: str | None = None,
) -> StaffRuntime:
    return StaffRuntime(
        make_settings(broker.endpoint, user=staff_id),
        staff_id,
        department=department,
        verifier=Verifier([signer.public_key], org="test"),
    )


async def test_freeze_ack_rollcall_and_lift_end_to_end(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    console = await start_console(mosquitto, make_settings, signer)
    one = staff(mosquitto, make_settings, signer, "ansatt-001", "helse")
    three = staff(mosquitto, make_settings, signer, "ansatt-003", "skole")
    try:
        await one.start()
        await three.start()
        await console.submit(PublishCurrentMessage("Hold deg unna elvebredden."))
        await console.submit(Freeze("Flom i sentrum", departments=("helse",)))
        await eventually(lambda: one.view.freeze is not None, what="notice on ansatt-001")
        assert one.view.freeze is not None
        assert one.view.freeze.message == "Hold deg unna elvebredden."
        assert three.view.freeze is None  # skole is not in scope
        await eventually(
            lambda: three.view.current_message == "Hold deg unna elvebredden.", what="message"
        )

        assert await one.acknowledge()
        await eventually(
            lambda: console.roll_call().ids(StaffStatus.ACKED) == ["ansatt-001"], what="ack"
        )
        assert console.roll_call().ids(StaffStatus.OFFLINE) == ["ansatt-002"]

        await console.submit(LiftFreeze("Faren er over"))
        await eventually(lambda: one.view.freeze is None, what="lift clears the notice")
    finally:
        await one.stop()
        await three.stop()
        await console.stop()
    assert verify_file(console.settings.journal_path).ok


async def test_terminal_ignores_forged_tampered_and_replayed_freezes(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    console = await start_console(mosquitto, make_settings, signer)
    term = staff(mosquitto, make_settings, signer, "ansatt-001", "helse")
    try:
        await term.start()
        await console.submit(Freeze("Flom"))
        await eventually(lambda: term.view.freeze is not None, what="real freeze")
        old_freeze = console.state.effects[list(console.state.effects)[-1]].payload
        await console.submit(LiftFreeze("Over"))
        await eventually(lambda: term.view.freeze is None, what="real lift")

        forged = (
            Signer.generate()
            .sign(
                type="freeze",
                org="test",
                seq=50,
                body={"active": True, "reason": "falsk"},
                issued_at=NOW,
            )
            .to_json()
        )
        tampered = json.loads(old_freeze)
        tampered["body"]["reason"] = "endret"
        async with aiomqtt.Client(
            mosquitto.host,
            mosquitto.port,
            username="console",
            password=mosquitto.credentials.console,
            identifier="attacker",
        ) as attacker:  # a leaked console broker password, but not the signing key
            for payload in (forged, json.dumps(tampered), old_freeze):
                await attacker.publish(topics.freeze("test"), payload, qos=1)
        await eventually(lambda: len(term.view.warnings) >= 3, what="three warnings")
        reasons = " | ".join(term.view.warnings)
        assert "unknown signing key" in reasons
        assert "invalid signature" in reasons
        assert "replayed or stale seq 1" in reasons
        assert term.view.freeze is None  # never obeyed
    finally:
        await term.stop()
        await console.stop()


async def test_late_joiner_and_broker_restart_keep_the_freeze(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    console = await start_console(mosquitto, make_settings, signer)
    try:
        await console.submit(Freeze("Strømbrudd"))
        await console.wait_idle()
        await mosquitto.stop()  # persistence: the retained freeze must survive
        await mosquitto.start()
        late = staff(mosquitto, make_settings, signer, "ansatt-002", "helse")
        await late.start()
        try:
            await eventually(lambda: late.view.freeze is not None, what="retained freeze")
            assert late.view.freeze is not None and late.view.freeze.reason == "Strømbrudd"
            assert await late.acknowledge()
            await eventually(  # the console reconnected by itself and the roll-call recovers
                lambda: "ansatt-002" in console.roll_call().ids(StaffStatus.ACKED),
                what="ack after restart",
            )
        finally:
            await late.stop()
    finally:
        await console.stop()


async def test_reminders_reach_unacknowledged_terminals_and_expiry_lifts(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    clock = FixedClock(datetime.now(UTC))
    console = await start_console(
        mosquitto, make_settings, signer, clock=clock, remind_after=timedelta(minutes=5)
    )
    term = staff(mosquitto, make_settings, signer, "ansatt-001", "helse")
    try:
        await term.start()
        await console.submit(Freeze("Flom", expires_at=clock.now() + timedelta(minutes=30)))
        await eventually(lambda: term.view.freeze is not None, what="freeze")
        await console.tick()
        assert console.state.reminders == {}  # not due yet
        clock.set(clock.now() + timedelta(minutes=6))
        await console.tick()
        assert set(console.state.reminders) == {"ansatt-001", "ansatt-002", "ansatt-003"}
        await eventually(lambda: term.view.reminded_at is not None, what="reminder shown")
        clock.set(clock.now() + timedelta(minutes=30))
        await console.tick()
        assert console.state.freeze is not None and not console.state.freeze.active
        await eventually(lambda: term.view.freeze is None, what="expiry lifts")
    finally:
        await term.stop()
        await console.stop()
    async with await Journal.open(console.settings.journal_path) as journal:
        lifts = [e for e in await journal.read_events() if isinstance(e, FreezeChanged)]
    assert [e.action for e in lifts] == ["freeze", "lift"]
    assert lifts[-1].actor == "system"


async def test_ack_sent_while_offline_is_resent_on_reconnect(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    console = await start_console(mosquitto, make_settings, signer)
    term = staff(mosquitto, make_settings, signer, "ansatt-001", "helse")
    try:
        await term.start()
        await console.submit(Freeze("Flom"))
        await eventually(lambda: term.view.freeze is not None, what="freeze")
        await mosquitto.stop()
        await eventually(lambda: not term.session.connected, what="terminal offline")  # type: ignore[union-attr]
        assert not await term.acknowledge()
        assert term.view.ack_pending == 1
        await mosquitto.start()
        await eventually(
            lambda: "ansatt-001" in console.roll_call().ids(StaffStatus.ACKED),
            timeout=20,
            what="resent ack",
        )
        assert term.view.ack_pending is None
    finally:
        await term.stop()
        await console.stop()


async def test_staff_app_shows_notice_and_enter_acknowledges(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    from textual.widgets import Static

    from krise_tui.staff.app import StaffApp

    console = await start_console(mosquitto, make_settings, signer)
    try:
        await console.submit(PublishCurrentMessage("Flomvarsel: Rv73 er stengt."))
        await console.submit(Freeze("Flom i sentrum"))
        app = StaffApp(staff(mosquitto, make_settings, signer, "ansatt-003", "skole"), "Testby")
        async with app.run_test(size=(80, 24)) as pilot:
            notice = lambda: str(app.query_one("#notice", Static).render())  # noqa: E731
            await eventually(lambda: "HAR FRYST PUBLISERING" in notice(), what="notice")
            assert "Flomvarsel: Rv73 er stengt." in notice()
            ackline = lambda: str(app.query_one("#ackline", Static).render())  # noqa: E731
            assert "[ Enter ] Jeg har lest og forstått" in ackline()
            await pilot.press("enter")
            await eventually(lambda: "✓ Kvittert" in ackline(), what="acknowledged")
            await eventually(
                lambda: "ansatt-003" in console.roll_call().ids(StaffStatus.ACKED), what="ack"
            )
            await console.submit(LiftFreeze("Over"))
            await eventually(lambda: "ikke fryst" in notice(), what="lifted")
            await pilot.press("ctrl+q")
    finally:
        await console.stop()


def test_terminal_shows_the_notice_in_the_staff_members_language(
    make_settings: Callable[..., Settings], signer: Signer
) -> None:
    from krise_tui.staff.app import render_notice

    state = IncidentState()
    ctx = Context(org="test", actor="kari", now=NOW, signer=signer, incident_id="inc")
    run(state, OpenIncident("Flom"), ctx)
    run(state, PublishCurrentMessage("Rv73 er stengt."), ctx)
    notice = (("nb", "Kriseledelsen taler for kommunen."), ("en", "The crisis team speaks."))
    decision = run(state, Freeze("Flom", notice=notice), ctx)
    envelope = decision.events[1].payload  # type: ignore[union-attr]
    for lang, expected in (("en", "The crisis team speaks."), ("nb", "Kriseledelsen taler")):
        term = StaffRuntime(
            make_settings(None, lang=lang),
            "ansatt-001",
            verifier=Verifier([signer.public_key], org="test"),
        )
        term.handle(topics.freeze("test"), envelope.encode())
        assert term.view.freeze is not None
        assert term.view.freeze.message == "Rv73 er stengt."  # only bokmål was written
        assert expected in render_notice(term.view, "Testby", lang=lang)
