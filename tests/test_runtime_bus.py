"""The console runtime against a real mosquitto: publish, reconnect, outbox, bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import aiomqtt

from krise_tui.bus import topics
from krise_tui.bus.broker import BrokerKind, MosquittoBroker
from krise_tui.bus.envelope import Signer, Verifier
from krise_tui.bus.session import LinkState
from krise_tui.config import Settings
from krise_tui.core.features.inbound import InboundRejected, PostReceived
from krise_tui.core.features.outbox import OutboxConfirmed
from krise_tui.core.kernel import Rejection
from krise_tui.journal.store import Journal, verify_file
from krise_tui.runtime import ConsoleRuntime
from krise_tui.staff.runtime import StaffRuntime
from tests.conftest import client_for, eventually
from tests.corekit import console_settings, publish_via

ORG = "test"


async def retained_message(broker: MosquittoBroker, user: str = "ansatt-001") -> bytes:
    """What a late-joining staff terminal gets on message/current."""
    async with client_for(broker.endpoint, user, identifier=f"late-{user}") as client:
        await client.subscribe(topics.message_current(ORG), qos=1)
        message = await asyncio.wait_for(anext(aiter(client.messages)), 5)
        assert message.retain
        assert isinstance(message.payload, bytes)
        return message.payload


async def test_published_message_is_retained_signed_and_journaled(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    runtime = ConsoleRuntime(console_settings(make_settings, mosquitto.endpoint), signer=signer)
    await runtime.start()
    try:
        assert runtime.session is not None
        await runtime.session.wait_connected(5)
        decision = await publish_via(runtime, "Rv73 er stengt ved Svenskvollen.")
        assert not isinstance(decision, Rejection)
        await runtime.wait_idle()
    finally:
        await runtime.stop()
    payload = await retained_message(mosquitto)
    result = Verifier([signer.public_key], org=ORG).check(payload)
    assert result.ok, result.reason
    assert result.envelope is not None
    assert result.envelope.body["variants"]["nb"].startswith("Rv73 er stengt ved Svenskvollen.")
    assert verify_file(runtime.settings.journal_path).ok


async def test_broker_restart_reconnects_and_journals_every_message_once(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    runtime = ConsoleRuntime(console_settings(make_settings, mosquitto.endpoint), signer=signer)
    await runtime.start()
    topic = topics.channel_in(ORG, "testchan")

    async def publish(ids: range, *, extra_duplicate: int | None = None) -> None:
        async with client_for(
            mosquitto.endpoint, "bridge-testchan", identifier="bridge-testchan", clean_session=False
        ) as bridge:
            for i in ids:
                body = json.dumps({"id": f"m{i}", "text": f"Spørsmål {i}"})
                await bridge.publish(topic, body, qos=1)
            if extra_duplicate is not None:  # the same post again, as a QoS 1 redelivery would
                body = json.dumps({"id": f"m{extra_duplicate}", "text": "igjen"})
                await bridge.publish(topic, body, qos=1)

    try:
        assert runtime.session is not None
        await runtime.session.wait_connected(5)
        await publish(range(5))
        await eventually(lambda: len(runtime.state.inbound.posts) == 5, what="first 5 posts")

        await mosquitto.stop()  # SIGTERM: mosquitto saves sessions and retained state
        await eventually(lambda: runtime.link_state is LinkState.DISCONNECTED, what="disconnect")
        await mosquitto.start()
        # Published at once after the restart, before the console has (necessarily)
        # reconnected: the broker queues them for the console's persistent session.
        await publish(range(5, 25), extra_duplicate=3)

        await eventually(lambda: len(runtime.state.inbound.posts) == 25, what="all 25 posts")
        assert runtime.session.connects >= 2  # it reconnected on its own
    finally:
        await runtime.stop()

    async with await Journal.open(runtime.settings.journal_path) as journal:
        events = await journal.read_events()
    keys = [e.key for e in events if isinstance(e, PostReceived)]
    assert sorted(keys) == sorted(f"testchan:m{i}" for i in range(25))  # each exactly once
    assert verify_file(runtime.settings.journal_path).ok


async def test_bad_input_on_the_bus_is_journaled_and_the_console_keeps_working(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    runtime = ConsoleRuntime(console_settings(make_settings, mosquitto.endpoint), signer=signer)
    await runtime.start()
    bad = [
        (topics.channel_in(ORG, "testchan"), b"not json at all"),
        (topics.channel_in(ORG, "testchan"), b'{"id": "x", "text": "\xc3\x28"}'),
        (topics.channel_in(ORG, "testchan"), b'{"id": "x", "text": "' + b"a" * 100_000 + b'"}'),
        (topics.channel_in(ORG, "testchan"), b'{"kind": "unknown", "id": 5}'),
        (topics.channel_receipt(ORG, "testchan"), b'{"effect_id": "e", "status": "exploded"}'),
    ]
    try:
        assert runtime.session is not None
        await runtime.session.wait_connected(5)
        async with client_for(mosquitto.endpoint, "bridge-testchan", identifier="b") as bridge:
            for topic, payload in bad:
                await bridge.publish(topic, payload, qos=1)
            await bridge.publish(
                topics.channel_in(ORG, "testchan"), b'{"id": "ok-1", "text": "Gyldig"}', qos=1
            )
        await eventually(lambda: len(runtime.state.inbound.posts) == 1, what="the valid post")
        assert runtime.state.inbound.rejected == len(bad)
        # and the console still publishes
        await publish_via(runtime, "Fortsatt i drift.")
        await runtime.wait_idle()
    finally:
        await runtime.stop()
    async with await Journal.open(runtime.settings.journal_path) as journal:
        rejected = [e for e in await journal.read_events() if isinstance(e, InboundRejected)]
    reasons = [r.reason for r in rejected]
    assert any("payload is not JSON" in r for r in reasons)
    assert any("not valid UTF-8" in r for r in reasons)
    assert any("payload too large" in r for r in reasons)
    assert any("wrong schema" in r and "channel/testchan/in" in r for r in reasons)
    assert any("status" in r and "receipt" in r for r in reasons)


async def test_pending_effects_are_retried_with_their_original_ids_after_a_crash(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    settings = console_settings(make_settings, mosquitto.endpoint)
    # 1st run: the command is journaled (outbox requested) but the process dies before
    # it publishes — here: a runtime with no bus at all.
    crashed = ConsoleRuntime(settings, signer=signer, start_bus=False)
    await crashed.start()
    await publish_via(crashed, "Skolen er stengt i morgen.")
    pending = next(e for e in crashed.state.outbox.pending() if str(e.publish.target) == "message")
    envelope_id = pending.effect_id  # the envelope id is the effect id: always the same
    await crashed.stop()

    # 2nd run: restart = fold the journal; the outbox finishes the job.
    restarted = ConsoleRuntime(settings, signer=signer)
    await restarted.start()
    try:
        assert pending.effect_id in [e.effect_id for e in restarted.state.outbox.pending()]
        await restarted.wait_idle()
    finally:
        await restarted.stop()
    payload = await retained_message(mosquitto)
    assert json.loads(payload)["id"] == envelope_id  # same envelope, same id
    async with await Journal.open(settings.journal_path) as journal:
        events = await journal.read_events()
    confirmations = [e.effect_id for e in events if isinstance(e, OutboxConfirmed)]
    assert confirmations.count(pending.effect_id) == 1


async def test_publish_while_the_broker_is_down_is_delivered_after_it_returns(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    runtime = ConsoleRuntime(console_settings(make_settings, mosquitto.endpoint), signer=signer)
    await runtime.start()
    try:
        assert runtime.session is not None
        await runtime.session.wait_connected(5)
        await mosquitto.stop()
        await eventually(lambda: runtime.link_state is LinkState.DISCONNECTED, what="disconnect")
        await publish_via(runtime, "Vannet er trygt å drikke igjen.")
        assert len(runtime.state.outbox.pending()) == 2  # the website's delivery, the message
        await mosquitto.start()
        await runtime.wait_idle(timeout=20)
    finally:
        await runtime.stop()
    result = Verifier([signer.public_key], org=ORG).check(await retained_message(mosquitto))
    assert result.ok
    assert result.envelope is not None
    assert result.envelope.body["variants"]["nb"].startswith("Vannet er trygt å drikke igjen.")


async def test_embedded_default_serves_a_local_staff_terminal(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """No broker configured: the console starts mosquitto itself; staff find it locally."""
    settings = console_settings(make_settings, None, data_dir=tmp_path / "demo")
    console = ConsoleRuntime(settings)
    await console.start()
    staff = StaffRuntime(settings, "ansatt-001")
    try:
        assert console.broker_info is not None
        assert console.broker_info.kind is BrokerKind.MOSQUITTO
        assert console.broker_info.warning == ""
        assert (settings.keys_path / "console.key").exists()  # created on first run
        await staff.start()
        await publish_via(console, "Møt opp på rådhuset kl. 15.")
        await eventually(
            lambda: (staff.view.current_message or "").startswith("Møt opp på rådhuset kl. 15."),
            what="the staff terminal to show the message",
        )
    finally:
        await staff.stop()
        await console.stop()


async def test_embedded_amqtt_fallback_works_and_says_it_is_weaker(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    from krise_tui.config import BrokerSettings

    settings = console_settings(make_settings, None, data_dir=tmp_path / "amqtt")
    settings = settings.model_copy(update={"broker": BrokerSettings(embedded="amqtt")})
    console = ConsoleRuntime(settings)
    await console.start()
    staff = StaffRuntime(settings, "ansatt-007")
    try:
        assert console.broker_info is not None
        assert console.broker_info.kind is BrokerKind.AMQTT
        assert "QoS 1" in console.broker_info.warning
        await staff.start()
        await publish_via(console, "Øvelse: flom.")
        await eventually(
            lambda: (staff.view.current_message or "").startswith("Øvelse: flom."), what="message"
        )
    finally:
        await staff.stop()
        await console.stop()


async def test_staff_terminal_ignores_forgeries_on_the_real_bus(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    settings = console_settings(make_settings, mosquitto.endpoint)
    console = ConsoleRuntime(settings, signer=signer)
    await console.start()
    staff_settings = make_settings(mosquitto.endpoint, user="ansatt-002")
    staff = StaffRuntime(
        staff_settings, "ansatt-002", verifier=Verifier([signer.public_key], org=ORG)
    )
    try:
        await publish_via(console, "Ekte melding.")
        await console.wait_idle()
        await staff.start()
        real = lambda: (staff.view.current_message or "").startswith("Ekte melding.")  # noqa: E731
        await eventually(real, what="real")
        # Someone with the console's broker password but not its key:
        forger = Signer.generate()
        forged = forger.sign(
            type="message.current",
            org=ORG,
            seq=99,
            body={"version_id": "x", "variants": {"nb": "Falsk melding!"}},
            issued_at=console.clock.now(),
            envelope_id="forged",
        )
        async with aiomqtt.Client(
            mosquitto.host,
            mosquitto.port,
            username="console",
            password=mosquitto.credentials.console,
            identifier="forger",
        ) as client:
            await client.publish(topics.message_current(ORG), forged.to_json(), qos=1, retain=True)
        await eventually(lambda: bool(staff.view.warnings), what="a warning")
        assert "unknown signing key" in staff.view.warnings[-1]
        assert real()
    finally:
        await staff.stop()
        await console.stop()
