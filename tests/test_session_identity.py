"""A client id is bound to its user: a leaked staff password cannot take the console's session.

mosquitto replaces every client id with the user name (``use_username_as_clientid``),
so whatever id an intruder sends, the session it gets is its own user's. Without that,
connecting as ``ansatt-001`` with the console's client id kicks the console off and
inherits its persistent session: the console's queued messages are then offered to
the intruder (and dropped by the read ACL), so the console never gets them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.session import BusSession, SessionConfig
from tests.conftest import client_for, eventually

ORG = "test"
CONSOLE_CLIENT_IDS = (f"krise-console-{ORG}", "console")
"""The id the console used to send, and its user name (what the broker binds it to)."""


def console_config(broker: MosquittoBroker) -> SessionConfig:
    assert broker.credentials is not None
    return SessionConfig(
        host=broker.host,
        port=broker.port,
        client_id=f"krise-console-{ORG}",
        username="console",
        password=broker.credentials.console,
        subscriptions=topics.console_subscriptions(ORG),
        presence_topic=topics.presence(ORG, "console", "console"),
        backoff_min=0.1,
        backoff_max=0.5,
    )


async def test_intruder_with_a_staff_password_cannot_kick_the_console(
    mosquitto: MosquittoBroker,
) -> None:
    acks: list[str] = []

    async def on_message(topic: str, payload: bytes, retained: bool) -> None:
        if topic.endswith("/ack"):
            acks.append(json.loads(payload)["n"])

    console = BusSession(console_config(mosquitto), on_message)
    task = asyncio.create_task(console.run())
    try:
        await console.wait_connected(10)
        for n, client_id in enumerate(CONSOLE_CLIENT_IDS):
            async with client_for(
                mosquitto.endpoint, "ansatt-001", identifier=client_id, clean_session=False
            ) as intruder:
                body = json.dumps({"n": str(n)}).encode()
                await intruder.publish(topics.staff_ack(ORG, "ansatt-001"), body, qos=1)
            # The ack travels through the console's own connection: when it arrives, the
            # broker had long processed the intruder's CONNECT (which would have kicked it).
            await eventually(lambda n=n: str(n) in acks, what=f"the console to get ack {n}")
            assert console.connects == 1, f"client id {client_id!r} kicked the console off"
            assert console.connected
    finally:
        await console.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_intruder_cannot_take_the_consoles_queued_messages(
    mosquitto: MosquittoBroker,
) -> None:
    acks: list[str] = []

    async def on_message(topic: str, payload: bytes, retained: bool) -> None:
        if topic.endswith("/ack"):
            acks.append(json.loads(payload)["n"])

    # Once online so the broker has the console's persistent session, then offline.
    first = BusSession(console_config(mosquitto), on_message)
    task = asyncio.create_task(first.run())
    await first.wait_connected(10)
    # Retained and readable by staff: it reaches an intruder after anything a taken-over
    # session would replay, so it marks the end of what there was to get.
    await first.publish(topics.freeze(ORG), b'{"marker": 1}', retain=True)
    await first.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    queued = [str(i) for i in range(10)]
    async with client_for(mosquitto.endpoint, "ansatt-002", identifier="s2") as staff:
        for n in queued:
            body = json.dumps({"n": n}).encode()
            await staff.publish(topics.staff_ack(ORG, "ansatt-002"), body, qos=1)

    for client_id in CONSOLE_CLIENT_IDS:
        async with client_for(
            mosquitto.endpoint, "ansatt-001", identifier=client_id, clean_session=False
        ) as intruder:
            await intruder.subscribe(topics.freeze(ORG), qos=1)
            stolen: list[str] = []
            async for message in intruder.messages:
                if str(message.topic) == topics.freeze(ORG):
                    break
                stolen.append(str(message.topic))
            assert stolen == []

    second = BusSession(console_config(mosquitto), on_message)
    task = asyncio.create_task(second.run())
    try:
        await eventually(lambda: sorted(acks) == queued, what="all queued acks for the console")
    finally:
        await second.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
