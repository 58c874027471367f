"""ACL matrix against the real mosquitto running the project's broker/ config.

Under MQTT 3.1.1 a denied publish is still acknowledged and silently dropped, so every
denial is checked from a subscriber's side: a console subscribed to everything sees the
allowed marker message but none of the forbidden ones published before it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import pytest

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker, mosquitto_password_hash, render_mosquitto_conf
from krise_tui.bus.session import connack_code, describe_error
from tests.conftest import client_for

ORG = "test"


async def _published_as(
    broker: MosquittoBroker, user: str, attempts: list[str], marker: str
) -> set[str]:
    """Publish to each topic in ``attempts`` as ``user``, then ``marker``; return what arrived."""
    seen: set[str] = set()
    async with client_for(broker.endpoint, "console", identifier="acl-watch") as watch:
        await watch.subscribe("krise/#", qos=1)
        async with client_for(broker.endpoint, user, identifier=f"acl-{user}") as actor:
            for topic in attempts:
                await actor.publish(topic, b'{"forged": true}', qos=1)
            await actor.publish(marker, b'{"status": "online"}', qos=1)

        async def collect() -> None:
            async for message in watch.messages:
                seen.add(str(message.topic))
                if str(message.topic) == marker:
                    return

        await asyncio.wait_for(collect(), 10)
    return seen


FORBIDDEN_FOR_STAFF = [
    topics.freeze(ORG),
    topics.message_current(ORG),
    topics.channel_out(ORG, "website"),
    topics.channel_out(ORG, "sms"),
    topics.staff_ack(ORG, "ansatt-002"),  # somebody else's ack
    topics.presence(ORG, "staff", "ansatt-002"),
    topics.channel_in(ORG, "facebook"),
]


async def test_staff_cannot_publish_console_topics(mosquitto: MosquittoBroker) -> None:
    marker = topics.staff_ack(ORG, "ansatt-001")  # its own ack is allowed
    seen = await _published_as(mosquitto, "ansatt-001", FORBIDDEN_FOR_STAFF, marker)
    assert marker in seen
    assert seen.isdisjoint(FORBIDDEN_FOR_STAFF), seen & set(FORBIDDEN_FOR_STAFF)


async def test_bridge_cannot_publish_freeze_or_other_channels(mosquitto: MosquittoBroker) -> None:
    forbidden = [
        topics.freeze(ORG),
        topics.message_current(ORG),
        topics.channel_out(ORG, "sms"),
        topics.channel_in(ORG, "facebook"),
        topics.channel_receipt(ORG, "facebook"),
    ]
    marker = topics.channel_in(ORG, "sms")
    seen = await _published_as(mosquitto, "bridge-sms", forbidden, marker)
    assert marker in seen
    assert seen.isdisjoint(forbidden)


async def test_console_may_publish_freeze_and_staff_may_read_it(mosquitto: MosquittoBroker) -> None:
    async with client_for(mosquitto.endpoint, "console", identifier="c1") as console:
        await console.publish(topics.freeze(ORG), b'{"x": 1}', qos=1, retain=True)
    async with client_for(mosquitto.endpoint, "ansatt-003", identifier="s3") as staff:
        await staff.subscribe(topics.freeze(ORG), qos=1)
        message = await asyncio.wait_for(anext(aiter(staff.messages)), 5)
        assert message.retain and message.payload == b'{"x": 1}'


async def test_staff_cannot_read_inbound_posts(mosquitto: MosquittoBroker) -> None:
    async with client_for(mosquitto.endpoint, "ansatt-001", identifier="s1") as staff:
        await staff.subscribe(f"krise/v1/{ORG}/channel/+/in", qos=1)
        await staff.subscribe(topics.freeze(ORG), qos=1)
        async with client_for(mosquitto.endpoint, "console", identifier="c1") as console:
            await console.publish(topics.channel_in(ORG, "sms"), b"{}", qos=1)
            await console.publish(topics.freeze(ORG), b"marker", qos=1)
        message = await asyncio.wait_for(anext(aiter(staff.messages)), 5)
        assert str(message.topic) == topics.freeze(ORG)  # the inbound post never arrived


async def test_anonymous_connections_are_refused(mosquitto: MosquittoBroker) -> None:
    with pytest.raises(aiomqtt.MqttCodeError) as info:
        async with client_for(mosquitto.endpoint, None):
            pass
    assert describe_error(info.value) == "not authorised (check user name, password and ACL)"


async def test_wrong_password_is_refused(mosquitto: MosquittoBroker) -> None:
    client = aiomqtt.Client(
        mosquitto.host, mosquitto.port, username="console", password="wrong", timeout=5
    )
    with pytest.raises(aiomqtt.MqttCodeError) as info:
        async with client:
            pass
    assert connack_code(info.value) in (4, 5, 134, 135)


def test_password_hash_has_mosquitto_format() -> None:
    hashed = mosquitto_password_hash("pw")
    _, alg, iterations, salt, digest = hashed.split("$")
    assert (alg, iterations) == ("7", "101")
    assert len(salt) == 16 and len(digest) == 88


def test_rendered_config_keeps_the_security_settings(tmp_path: Path) -> None:
    from krise_tui.bus.broker import broker_config_dir

    text = render_mosquitto_conf(
        broker_config_dir() / "mosquitto.conf",
        port=12345,
        password_file=tmp_path / "passwd",
        acl_file=tmp_path / "acl",
        data_dir=tmp_path,
        run_as_root=True,
    )
    lines = text.splitlines()
    assert "listener 12345 127.0.0.1" in lines
    assert "allow_anonymous false" in lines
    assert "persistence true" in lines
    assert f"acl_file {tmp_path / 'acl'}" in lines
    assert "user root" in lines
    assert not any(line.startswith("listener 1883") for line in lines)
