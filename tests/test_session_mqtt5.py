"""BusSession speaks MQTT 5, keeps its session, and makes the broker's refusals visible.

Under MQTT 3.1.1 mosquitto acknowledges a publish its ACL denies and drops it; under
MQTT 5 the PUBACK says 0x87 Not authorized, which aiomqtt 2.5 does not pass on, so
:class:`BusSession` reads it itself and raises :class:`PublishRefusedError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import pytest
from aiomqtt import ProtocolVersion
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from krise_tui.bus import topics
from krise_tui.bus.broker import AmqttBroker, MosquittoBroker
from krise_tui.bus.session import (
    BusSession,
    LinkState,
    NotConnectedError,
    PublishRefusedError,
    SessionConfig,
    SubscribeRefusedError,
    check_suback,
)
from tests.conftest import client_for, eventually

ORG = "test"


def staff_config(broker: MosquittoBroker, staff_id: str, **extra: object) -> SessionConfig:
    assert broker.credentials is not None
    fields: dict[str, object] = {
        "host": broker.host,
        "port": broker.port,
        "client_id": f"krise-staff-{ORG}-{staff_id}",
        "username": staff_id,
        "password": broker.credentials.staff[staff_id],
        "subscriptions": topics.staff_subscriptions(ORG, staff_id),
        "presence_topic": topics.presence(ORG, "staff", staff_id),
        "backoff_min": 0.05,
        "backoff_max": 0.2,
        **extra,
    }
    return SessionConfig(**fields)  # type: ignore[arg-type]


async def _noop(topic: str, payload: bytes, retained: bool) -> None:
    return None


@contextlib.asynccontextmanager
async def running(session: BusSession) -> AsyncIterator[BusSession]:
    task = asyncio.create_task(session.run())
    try:
        yield session
    finally:
        await session.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_denied_publish_is_a_visible_failure(mosquitto: MosquittoBroker) -> None:
    async with running(BusSession(staff_config(mosquitto, "ansatt-001"), _noop)) as session:
        await session.wait_connected(10)
        with pytest.raises(PublishRefusedError) as info:
            await session.publish(topics.freeze(ORG), b'{"forged": true}', retain=True)
        assert info.value.reason_code == 0x87
        assert info.value.reason == "Not authorized"
        assert info.value.topic == topics.freeze(ORG)
        assert not isinstance(info.value, NotConnectedError)  # the outbox must not retry it
        # Its own ack is allowed: 0x10 "No matching subscribers" is a success code.
        await session.publish(topics.staff_ack(ORG, "ansatt-001"), b'{"seq": 1}')
        assert session.connected and session.connects == 1


async def test_the_session_is_mqtt5_and_survives_going_offline(
    mosquitto: MosquittoBroker,
) -> None:
    got: list[int] = []

    async def on_message(topic: str, payload: bytes, retained: bool) -> None:
        if topic == topics.staff_remind(ORG, "ansatt-002"):
            got.append(json.loads(payload)["n"])

    config = staff_config(mosquitto, "ansatt-002")
    async with running(BusSession(config, on_message)) as session:
        await session.wait_connected(10)
        assert session.protocol is ProtocolVersion.V5
    # Offline: the broker queues for the session (clean_start=False, session expiry).
    async with client_for(mosquitto.endpoint, "console", identifier="console") as console:
        for n in range(3):
            body = json.dumps({"n": n}).encode()
            await console.publish(topics.staff_remind(ORG, "ansatt-002"), body, qos=1)
    async with running(BusSession(config, on_message)) as session:
        await eventually(lambda: got == [0, 1, 2], what="the three queued reminders")
    log = (mosquitto.data_dir / "mosquitto.log").read_text(errors="replace")
    # "(p5, c0, ...)": protocol 5, clean start off, on every connect of this user.
    connects = [line for line in log.splitlines() if " as ansatt-002 (" in line]
    assert len(connects) == 2
    assert all("(p5, c0," in line for line in connects), connects


async def test_a_refused_presence_fails_the_connect_attempt_visibly(
    mosquitto: MosquittoBroker,
) -> None:
    states: list[tuple[LinkState, str]] = []
    # ansatt-001 announcing itself as ansatt-002: the ACL refuses that presence.
    config = staff_config(
        mosquitto, "ansatt-001", presence_topic=topics.presence(ORG, "staff", "ansatt-002")
    )
    session = BusSession(config, _noop, on_state=lambda s, d: states.append((s, d)))
    async with running(session):
        await eventually(
            lambda: any(s is LinkState.DISCONNECTED for s, _ in states), what="a failed attempt"
        )
        assert not session.connected and session.connects == 0
        assert "refused publish" in session.last_error
        assert "Not authorized" in session.last_error


def test_suback_failures_raise_and_name_the_topic(caplog: pytest.LogCaptureFixture) -> None:
    subs = ["krise/v1/test/freeze", "krise/v1/test/message/current"]
    granted = ReasonCode(PacketTypes.SUBACK, identifier=1)
    refused = ReasonCode(PacketTypes.SUBACK, identifier=0x87)
    check_suback(subs, [granted, granted])
    with pytest.raises(SubscribeRefusedError) as info:
        check_suback(subs, [granted, refused])
    assert info.value.topic == subs[1] and info.value.reason_code == 0x87
    with pytest.raises(SubscribeRefusedError):  # MQTT 3.1.1: a bare 0x80
        check_suback(subs, [1, 0x80])
    with pytest.raises(SubscribeRefusedError):  # one code per topic, or it is broken
        check_suback(subs, [granted])
    with caplog.at_level(logging.WARNING):
        check_suback(subs, [1, 0])  # granted QoS 0: nothing queued while away
    assert "granted QoS 0" in caplog.text


async def test_the_embedded_amqtt_needs_mqtt_3_and_a_v5_attempt_fails_visibly() -> None:
    broker = AmqttBroker()
    await broker.start()
    try:
        config = SessionConfig(
            host=broker.host,
            port=broker.port,
            client_id="krise-staff-test-ansatt-001",
            subscriptions=[topics.freeze(ORG)],
            backoff_min=0.05,
            timeout=1,
        )
        # amqtt 0.12 mis-parses an MQTT 5 CONNECT and never answers: a visible timeout.
        async with running(BusSession(config, _noop)) as session:
            await eventually(lambda: session.state is LinkState.DISCONNECTED, what="failure")
            assert session.last_error == "Operation timed out"
        config.protocol = ProtocolVersion.V311
        async with running(BusSession(config, _noop)) as session:
            await session.wait_connected(10)
            await session.publish(topics.freeze(ORG), b"{}")
    finally:
        await broker.stop()


def test_a_broker_that_refuses_mqtt5_gets_3_1_1_unless_forbidden() -> None:
    refusal = MqttConnectError(ReasonCode(PacketTypes.CONNACK, identifier=0x84))
    session = BusSession(SessionConfig("127.0.0.1", 1, client_id="x"), _noop)
    assert session._fall_back(refusal)
    assert session.protocol is ProtocolVersion.V311
    assert not session._fall_back(refusal)  # once
    strict = BusSession(SessionConfig("127.0.0.1", 1, client_id="x", allow_v311=False), _noop)
    assert not strict._fall_back(refusal)
    assert strict.protocol is ProtocolVersion.V5
    other = MqttConnectError(ReasonCode(PacketTypes.CONNACK, identifier=0x86))
    assert not BusSession(SessionConfig("127.0.0.1", 1, client_id="x"), _noop)._fall_back(other)


async def test_the_client_id_sent_is_the_user_name(mosquitto: MosquittoBroker) -> None:
    session = BusSession(staff_config(mosquitto, "ansatt-003"), _noop)
    client = session._new_client(session.config)
    assert client.identifier == "ansatt-003"
    anonymous = BusSession(SessionConfig("127.0.0.1", 1, client_id="krise-x"), _noop)
    assert anonymous._new_client(anonymous.config).identifier == "krise-x"
