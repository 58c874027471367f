"""Freeze employee posting: engine rules, signed notices on the real bus, roll-call, apps."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import aiomqtt
import pytest

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer, Verifier
from krise_tui.bus.session import LinkState
from krise_tui.config import Settings
from krise_tui.core.features.freeze import (
    ExtendFreeze,
    Freeze,
    FreezeChanged,
    LiftFreeze,
    ReassertFreeze,
    RemindUnacknowledged,
)
from krise_tui.core.features.inbound import InboundRejected
from krise_tui.core.features.outbox import OutboxRequested
from krise_tui.core.ids import FixedClock
from krise_tui.core.rollcall import StaffStatus, roll_call
from krise_tui.core.state import IncidentState
from krise_tui.journal.store import Journal, verify_file
from krise_tui.runtime import ConsoleRuntime
from krise_tui.staff.runtime import StaffRuntime
from tests.conftest import eventually
from tests.corekit import (
    NOW,
    bus,
    console_settings,
    make_ctx,
    opened,
    publish_text,
    publish_via,
    refused,
    run,
    signed,
)

ROSTER: dict[str, str | None] = {
    "ansatt-001": "helse",
    "ansatt-002": "helse",
    "ansatt-003": "skole",
}
TEXT = "Rv73 er stengt ved Svenskvollen."


def ctx() -> object:
    return make_ctx("kari", roster=ROSTER)


@pytest.fixture
def state() -> IncidentState:
    s = opened()
    publish_text(s, TEXT)
    return s


def ack(staff_id: str, seq: int, *, topic_id: str | None = None) -> object:
    return bus(topics.staff_ack("test", topic_id or staff_id), {"staff_id": staff_id, "seq": seq})


# --- engine -------------------------------------------------------------------------------


def test_freeze_notice_is_signed_retained_and_carries_the_current_message(
    state: IncidentState, signer: Signer
) -> None:
    decision = run(
        state, Freeze("Flom i sentrum", notice=(("nb", "Vi taler med én stemme."),)), ctx()
    )  # type: ignore[arg-type]
    changed, request = decision.events
    assert isinstance(changed, FreezeChanged) and isinstance(request, OutboxRequested)
    assert request.publish.retain and str(request.publish.target) == "freeze"
    effect = state.outbox.effects[request.effect_id]
    payload = signed(signer, effect)
    assert payload == signed(signer, effect)  # the same bytes on every attempt
    result = Verifier([signer.public_key], org="test").check(payload)
    assert result.ok and result.envelope is not None
    body = result.envelope.body
    assert body["active"] is True and body["departments"] == []
    assert body["message"]["variants"]["nb"].startswith(TEXT)
    assert body["notice"] == {"nb": "Vi taler med én stemme."}
    current = state.freeze.current
    assert current is not None and current.seq == result.envelope.seq == 1


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
    state: IncidentState, command: object, reason: str
) -> None:
    assert reason in refused(state, command, ctx()).reason  # type: ignore[arg-type]


def test_freeze_twice_is_rejected_and_lift_needs_a_reason(state: IncidentState) -> None:
    run(state, Freeze("Flom"), ctx())  # type: ignore[arg-type]
    assert "already frozen" in refused(state, Freeze("igjen"), ctx()).reason  # type: ignore[arg-type]
    assert "needs a reason" in refused(state, LiftFreeze(""), ctx()).reason  # type: ignore[arg-type]
    run(state, LiftFreeze("Faren er over"), ctx())  # type: ignore[arg-type]
    assert state.freeze.current is not None and not state.freeze.active


def test_a_new_message_while_frozen_reissues_the_notice(state: IncidentState) -> None:
    run(state, Freeze("Flom", departments=("helse",)), ctx())  # type: ignore[arg-type]
    before = len(state.outbox.effects)
    publish_text(state, "Rv73 er åpnet igjen.")
    freezes = [
        e for e in list(state.outbox.effects.values())[before:] if str(e.publish.target) == "freeze"
    ]
    assert len(freezes) == 1
    current = state.freeze.current
    assert current is not None and current.seq == 2
    assert (current.message_text or "").startswith("Rv73 er åpnet igjen.")
    assert current.departments == ["helse"]


def test_acks_from_unknown_ids_or_for_stale_seqs_are_rejected(state: IncidentState) -> None:
    run(state, Freeze("Flom"), ctx())  # type: ignore[arg-type]
    (rejected,) = run(state, ack("ansatt-999", 1), ctx()).events  # type: ignore[arg-type]
    assert isinstance(rejected, InboundRejected) and "unknown staff id" in rejected.reason
    run(state, ExtendFreeze(NOW + timedelta(hours=2)), ctx())  # type: ignore[arg-type]
    (stale,) = run(state, ack("ansatt-001", 1), ctx()).events  # type: ignore[arg-type]
    assert isinstance(stale, InboundRejected) and "stale ack for seq 1" in stale.reason
    run(state, ack("ansatt-001", 2), ctx())  # type: ignore[arg-type]
    assert state.freeze.acks["ansatt-001"].seq == 2
    assert run(state, ack("ansatt-001", 2), ctx()).events == []  # type: ignore[arg-type]
    (other,) = run(state, ack("ansatt-002", 2, topic_id="ansatt-001"), ctx()).events  # type: ignore[arg-type]
    assert isinstance(other, InboundRejected) and "another's topic" in other.reason


def test_a_reassertion_keeps_the_acknowledgements_a_change_does_not(
    state: IncidentState,
) -> None:
    run(state, Freeze("Flom"), ctx())  # type: ignore[arg-type]
    run(state, ack("ansatt-001", 1), ctx())  # type: ignore[arg-type]
    run(state, ReassertFreeze(), make_ctx("system", roster=ROSTER))
    current = state.freeze.current
    assert current is not None and current.seq == 2 and current.ack_from == 1
    # the same notice again: whoever acknowledged it still has, and a late ack of the
    # notice it repeats still counts
    assert roll_call(state, ROSTER).ids(StaffStatus.ACKED) == ["ansatt-001"]
    run(state, ack("ansatt-002", 1), ctx())  # type: ignore[arg-type]
    run(state, ReassertFreeze(), make_ctx("system", roster=ROSTER))
    assert roll_call(state, ROSTER).ids(StaffStatus.ACKED) == ["ansatt-001", "ansatt-002"]
    # a real change (a new end time) must be read again
    run(state, ExtendFreeze(NOW + timedelta(hours=2)), ctx())  # type: ignore[arg-type]
    assert roll_call(state, ROSTER).ids(StaffStatus.ACKED) == []
    (stale,) = run(state, ack("ansatt-001", 3), ctx()).events  # type: ignore[arg-type]
    assert isinstance(stale, InboundRejected) and "stale ack for seq 3" in stale.reason
    notice = [e for e in state.outbox.effects.values() if str(e.publish.target) == "freeze"]
    bodies = [e.publish.body for e in notice]
    assert [b.get("ack_from") for b in bodies] == [None, 1, 1, None]


def test_roll_call_counts_per_department(state: IncidentState) -> None:
    run(state, Freeze("Flom", departments=("helse",)), ctx())  # type: ignore[arg-type]
    run(state, bus(topics.presence("test", "staff", "ansatt-002"), {"status": "online"}), ctx())  # type: ignore[arg-type]
    run(state, ack("ansatt-001", 1), ctx())  # type: ignore[arg-type]
    rc = roll_call(state, ROSTER)
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
    settings = console_settings(make_settings, broker.endpoint)
    runtime = ConsoleRuntime(settings, signer=signer, **kw)  # type: ignore[arg-type]
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
        await publish_via(console, "Hold deg unna elvebredden.")
        await console.submit(Freeze("Flom i sentrum", departments=("helse",)))
        await eventually(lambda: one.view.freeze is not None, what="notice on ansatt-001")
        assert one.view.freeze is not None
        assert (one.view.freeze.message or "").startswith("Hold deg unna elvebredden.")
        assert three.view.freeze is None  # skole is not in scope
        await eventually(
            lambda: (three.view.current_message or "").startswith("Hold deg unna"),
            what="message",
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
        effects = [
            e for e in console.state.outbox.effects.values() if str(e.publish.target) == "freeze"
        ]
        old_freeze = signed(signer, effects[-1])
        await console.submit(LiftFreeze("Over"))
        await eventually(lambda: term.view.freeze is None, what="real lift")

        forged = (
            Signer.generate()
            .sign(
                type="freeze",
                org="test",
                seq=50,
                body={"active": True, "reason": "falsk"},
                issued_at=datetime.now(UTC),
                envelope_id="forged",
            )
            .to_json()
        )
        tampered = json.loads(old_freeze)
        tampered["body"]["reason"] = "endret"
        coerced = json.loads(old_freeze)
        coerced["seq"] = str(coerced["seq"] + 10)  # "11": a string, never coerced
        async with aiomqtt.Client(
            mosquitto.host,
            mosquitto.port,
            username="console",
            password=mosquitto.credentials.console,
            identifier="console",
        ) as attacker:  # a leaked console broker password, but not the signing key
            for payload in (forged, json.dumps(tampered), old_freeze, json.dumps(coerced)):
                await attacker.publish(topics.freeze("test"), payload, qos=1)
        await eventually(lambda: len(term.view.warnings) >= 4, what="four warnings")
        reasons = " | ".join(term.view.warnings)
        assert "unknown signing key" in reasons
        assert "invalid signature" in reasons
        assert "replayed or stale seq 1" in reasons
        assert "seq: Input should be a valid integer" in reasons
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
    console = await start_console(mosquitto, make_settings, signer, clock=clock)
    term = staff(mosquitto, make_settings, signer, "ansatt-001", "helse")
    try:
        await term.start()
        await console.submit(Freeze("Flom", expires_at=clock.now() + timedelta(minutes=30)))
        await eventually(lambda: term.view.freeze is not None, what="freeze")
        await console.tick()
        assert console.state.freeze.reminders == {}  # not due yet
        clock.set(clock.now() + console.remind_after + timedelta(seconds=1))
        await console.tick()
        assert set(console.state.freeze.reminders) == {"ansatt-001", "ansatt-002", "ansatt-003"}
        await eventually(lambda: term.view.reminded_at is not None, what="reminder shown")
        clock.set(clock.now() + timedelta(minutes=30))
        await console.tick()
        assert not console.state.freeze.active
        await eventually(lambda: term.view.freeze is None, what="expiry lifts")
    finally:
        await term.stop()
        await console.stop()
    async with await Journal.open(console.settings.journal_path) as journal:
        lifts = [e for e in await journal.read_events() if isinstance(e, FreezeChanged)]
    assert [e.action for e in lifts] == ["freeze", "lift"]
    assert lifts[-1].actor == "system"


async def test_a_long_crisis_keeps_its_notices_fresh_for_terminals_that_start_late(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    """Terminals refuse notices older than 72 h; a boil-water notice can last a week."""
    start = datetime.now(UTC)
    clock = FixedClock(start)
    console = await start_console(mosquitto, make_settings, signer, clock=clock)
    early = staff(mosquitto, make_settings, signer, "ansatt-001", "helse")
    early.clock = clock
    try:
        await publish_via(console, TEXT)
        await console.submit(Freeze("Kokevarsel"))
        await early.start()
        await eventually(lambda: early.view.freeze is not None, what="freeze shown")
        assert await early.acknowledge()
        await eventually(
            lambda: console.roll_call().ids(StaffStatus.ACKED) == ["ansatt-001"], what="ack"
        )
        seqs = (console.state.freeze.current.seq, console.state.messages.current.set_at)  # type: ignore[union-attr]
        for hours in (10, 25, 50, 75):
            clock.set(start + timedelta(hours=hours))
            await console.tick()
        await console.wait_idle()
        current = console.state.freeze.current
        assert current is not None and current.seq > seqs[0]  # signed again, more than once
        assert console.state.messages.current is not None
        refreshed = console.state.messages.current.refreshed_at
        assert refreshed is not None and refreshed > seqs[1]
        # the acknowledgement stands: on the console and on the terminal that gave it
        assert console.roll_call().ids(StaffStatus.ACKED) == ["ansatt-001"]
        await eventually(lambda: early.view.freeze.seq == current.seq, what="reassert seen")  # type: ignore[union-attr]
        assert not early.view.needs_ack

        # a terminal started on day four sees the freeze and the message, no warning
        late = staff(mosquitto, make_settings, signer, "ansatt-002", "helse")
        late.clock = FixedClock(start + timedelta(hours=76))
        await late.start()
        try:
            await eventually(lambda: late.view.freeze is not None, what="late freeze")
            await eventually(lambda: late.view.current_message is not None, what="late message")
            assert TEXT in (late.view.current_message or "")
            assert late.view.warnings == [] and late.view.needs_ack
        finally:
            await late.stop()
    finally:
        await early.stop()
        await console.stop()


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
        await publish_via(console, "Flomvarsel: Rv73 er stengt.")
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
    make_settings: Callable[..., Settings], signer: Signer, tmp_path: object
) -> None:
    from krise_tui.staff.app import render_notice

    state = opened()
    publish_text(state, "Rv73 er stengt.", "Omkjøring via Fv. 240.")
    notice = (("nb", "Kriseledelsen taler for kommunen."), ("en", "The crisis team speaks."))
    decision = run(state, Freeze("Flom", notice=notice), ctx())  # type: ignore[arg-type]
    request = decision.events[1]
    assert isinstance(request, OutboxRequested)
    envelope = signed(signer, state.outbox.effects[request.effect_id])
    for lang, expected in (("en", "The crisis team speaks."), ("nb", "Kriseledelsen taler")):
        term = StaffRuntime(
            make_settings(None, lang=lang),
            "ansatt-001",
            verifier=Verifier([signer.public_key], org="test"),
            clock=FixedClock(NOW),
        )
        term.handle(topics.freeze("test"), envelope.encode())
        assert term.view.freeze is not None
        assert term.view.freeze.message == "Rv73 er stengt.\nOmkjøring via Fv. 240."
        assert expected in render_notice(term.view, "Testby", lang=lang)


def test_terminal_shows_times_in_the_municipality_zone_not_the_machines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A terminal on a machine set to UTC (a server, a container) showed a freeze "since
    08:20" that the console, in the org's zone, showed as 09:20."""
    import time

    from krise_tui.staff.app import render_ack, render_notice, render_status
    from krise_tui.staff.runtime import ShownFreeze, StaffView

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        for at, oslo in (
            (datetime(2026, 12, 3, 8, 20, tzinfo=UTC), "09:20"),  # CET
            (datetime(2026, 6, 3, 8, 20, tzinfo=UTC), "10:20"),  # CEST
        ):
            view = StaffView(
                freeze=ShownFreeze(
                    seq=1,
                    reason="Flom",
                    since=at,
                    expires_at=at + timedelta(hours=2),
                    departments=[],
                    message=None,
                    message_version=None,
                    notice={},
                    issued_at=at,
                ),
                acked_seq=1,
                acked_at=at,
                last_update=at,
            )
            notice = render_notice(view, "Testby")
            assert f"siden {oslo} " in notice
            until = f"{(at + timedelta(hours=2)).astimezone(ZoneInfo('Europe/Oslo')):%d.%m %H:%M}"
            assert f"varer til {until}" in notice
            assert render_ack(view) == f"✓ Kvittert {oslo} – takk."
            status = render_status(view, LinkState.CONNECTED, "ansatt-001", "nb", "Europe/Oslo")
            assert f"sist oppdatert {oslo}" in status
            assert "08:20" not in notice + render_ack(view) + status
            # Another municipality's zone, from its org file.
            assert f"since {at:%H:%M} " in render_notice(view, "X", lang="en", tz="UTC")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_terminal_speaks_english_with_lang_en() -> None:
    """``--lang en`` gave the leadership's English notice inside Norwegian words."""
    from krise_tui.staff.app import render_ack, render_notice, render_status
    from krise_tui.staff.runtime import ShownFreeze, StaffView

    view = StaffView(
        freeze=ShownFreeze(
            seq=2,
            reason="Flood",
            since=NOW,
            expires_at=None,
            departments=["skole"],
            message="Rv73 is closed.",
            message_version="abc",
            notice={"en": "The crisis team speaks."},
            issued_at=NOW,
        ),
        reminded_at=NOW,
    )
    notice = render_notice(view, "Testby", "https://www.testby.kommune.no", lang="en")
    assert "TESTBY – THE CRISIS LEADERSHIP HAS FROZEN POSTING" in notice
    assert "applies to: skole" in notice
    assert "Reason: Flood" in notice
    assert "«Rv73 is closed.»" in notice
    assert "Refer them to https://www.testby.kommune.no" in notice
    ack = render_ack(view, "en")
    assert ack.startswith("REMINDER:") and ack.endswith("[ Enter ] I have read and understood")
    status = render_status(view, LinkState.DISCONNECTED, "ansatt-001", "en", "Europe/Oslo")
    assert status == "no message · DISCONNECTED – retrying · ansatt-001"
    for norwegian in ("FRYST", "gjelder", "Grunn", "Henvis", "ytringsfrihet", "PÅMINNELSE"):
        assert norwegian not in notice + ack + status
    lifted = StaffView(current_message="Rv73 is open again.", message_issued_at=NOW)
    assert "Posting is not frozen" in render_notice(lifted, "Testby", lang="en")
    assert "Publisering er ikke fryst" in render_notice(lifted, "Testby")


async def test_staff_app_in_english_acknowledges_and_warns_in_english(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    from textual.widgets import Static

    from krise_tui.staff.app import StaffApp

    console = await start_console(mosquitto, make_settings, signer)
    try:
        await console.submit(Freeze("Flood in the centre"))
        runtime = StaffRuntime(
            make_settings(mosquitto.endpoint, user="ansatt-001", lang="en"),
            "ansatt-001",
            verifier=Verifier([signer.public_key], org="test"),
        )
        app = StaffApp(runtime, "Testby")
        async with app.run_test(size=(100, 24)) as pilot:
            text = lambda sel: str(app.query_one(sel, Static).render())  # noqa: E731
            await eventually(lambda: "HAS FROZEN POSTING" in text("#notice"), what="notice")
            assert "[ Enter ] I have read and understood" in text("#ackline")
            assert "signed by the crisis leadership ✓" in text("#statusline")
            described = {a.binding.description for a in app.screen.active_bindings.values()}
            assert {"acknowledge", "quit"} <= described, described
            await pilot.press("enter")
            await eventually(lambda: "✓ Acknowledged" in text("#ackline"), what="acknowledged")
            runtime.handle(topics.freeze("test"), b'{"not": "signed"}')
            await pilot.pause()
            assert text("#warning").startswith("Invalid message on krise/v1/test/")
            await pilot.press("ctrl+q")
    finally:
        await console.stop()
