"""Clients find a restarted private broker again: same port when free, else re-resolved.

A console restart starts a new private broker (new passwords). It keeps the port it
used last time (``{broker_dir}/port``) unless that is taken, and a session whose
``SessionConfig.resolve`` re-reads ``endpoint.json`` before every connect attempt
follows it anywhere — the same session object, never recreated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from krise_tui.bus import topics
from krise_tui.bus.broker import (
    ENDPOINT_FILE,
    AmqttBroker,
    BrokerError,
    Credentials,
    MosquittoBroker,
    free_port,
    local_login,
    read_endpoint,
)
from krise_tui.bus.session import BusSession, LinkState, SessionConfig
from tests.conftest import client_for, eventually

ORG = "test"
STAFF = ("ansatt-001",)


def new_broker(directory: Path, credentials: Credentials | None = None) -> MosquittoBroker:
    return MosquittoBroker(
        directory,
        credentials=credentials or Credentials.generate(staff_ids=STAFF, bridges=()),
        org=ORG,
    )


@contextlib.contextmanager
def occupied(port: int) -> Iterator[None]:
    """Something else listens on ``port`` (as after a crash, another program took it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


@contextlib.asynccontextmanager
async def running(session: BusSession) -> AsyncIterator[BusSession]:
    task = asyncio.create_task(session.run())
    try:
        yield session
    finally:
        await session.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_restarted_broker_keeps_its_port_unless_it_is_taken(tmp_path: Path) -> None:
    first = new_broker(tmp_path)
    await first.start()
    port = first.port
    await first.stop()

    second = new_broker(tmp_path)  # a console restart: a new broker object
    assert second.port == port
    await second.start()
    assert second.port == port
    await second.stop()

    with occupied(port):
        third = new_broker(tmp_path)
        await third.start()
        try:
            assert third.port != port
        finally:
            await third.stop()
    assert (tmp_path / "port").read_text().strip() == str(third.port)


async def test_port_taken_between_construction_and_start(tmp_path: Path) -> None:
    broker = new_broker(tmp_path)
    chosen = broker.port
    with occupied(chosen):
        await broker.start()
        try:
            assert broker.port != chosen
        finally:
            await broker.stop()


async def test_an_explicit_port_is_kept_or_the_start_fails(tmp_path: Path) -> None:
    port = free_port()
    with occupied(port):
        broker = MosquittoBroker(tmp_path, port=port, org=ORG)
        with pytest.raises(BrokerError, match=f"port {port} on 127.0.0.1 is in use"):
            await broker.start()
    assert not (tmp_path / ENDPOINT_FILE).exists()


async def test_a_connected_session_follows_the_broker_to_a_new_port(tmp_path: Path) -> None:
    """Restart with new passwords on another port: the session re-reads endpoint.json."""
    states: list[LinkState] = []
    freezes: list[bytes] = []

    async def on_message(topic: str, payload: bytes, retained: bool) -> None:
        freezes.append(payload)

    first = new_broker(tmp_path)
    await first.start()
    endpoint_file = tmp_path / ENDPOINT_FILE
    config = SessionConfig(
        host="unused",  # resolve() decides
        port=1,
        client_id="krise-staff-test-ansatt-001",
        subscriptions=topics.staff_subscriptions(ORG, "ansatt-001"),
        presence_topic=topics.presence(ORG, "staff", "ansatt-001"),
        backoff_min=0.05,
        backoff_max=0.2,
        resolve=lambda: local_login(endpoint_file, "staff", "ansatt-001"),
    )
    session = BusSession(config, on_message, on_state=lambda s, _: states.append(s))
    second: MosquittoBroker | None = None
    try:
        async with running(session):
            await session.wait_connected(10)
            assert session.port == first.port and session.connects == 1
            old_port = first.port
            await first.stop()  # withdraws endpoint.json: nothing to find for a while
            await eventually(lambda: LinkState.DISCONNECTED in states, what="the outage")
            with occupied(old_port):
                second = new_broker(tmp_path)  # new passwords, and it must move
                await second.start()
                assert second.port != old_port
                await eventually(lambda: session.connects == 2, what="the reconnect")
                assert session.connected and session.port == second.port
                async with client_for(second.endpoint, "console", identifier="c") as console:
                    await console.publish(topics.freeze(ORG), b'{"n": 1}', qos=1, retain=True)
                await eventually(lambda: b'{"n": 1}' in freezes, what="a freeze via the new broker")
    finally:
        if second is not None:
            await second.stop()
        await first.stop()


async def test_a_failing_resolve_is_a_failed_attempt_not_a_crash(tmp_path: Path) -> None:
    config = SessionConfig(
        host="unused",
        port=1,
        client_id="x",
        backoff_min=0.05,
        backoff_max=0.1,
        resolve=lambda: local_login(tmp_path / ENDPOINT_FILE, "staff", "ansatt-001"),
    )
    session = BusSession(config, _noop)
    async with running(session):
        await eventually(lambda: session.state is LinkState.DISCONNECTED, what="a failure")
        assert "cannot find the broker" in session.last_error
        assert "no running krise broker" in session.last_error
        broker = new_broker(tmp_path)
        await broker.start()  # the endpoint appears: the same session connects
        try:
            await session.wait_connected(10)
            assert session.connects == 1
            written = json.loads((tmp_path / ENDPOINT_FILE).read_text())
            assert session.port == written["port"]
        finally:
            await broker.stop()


async def _noop(topic: str, payload: bytes, retained: bool) -> None:
    return None


async def test_the_embedded_amqtt_keeps_its_port_and_endpoint_too(tmp_path: Path) -> None:
    first = AmqttBroker(directory=tmp_path)
    await first.start()
    port = first.port
    assert read_endpoint(tmp_path / ENDPOINT_FILE).port == port
    await first.stop()
    assert not (tmp_path / ENDPOINT_FILE).exists()
    second = AmqttBroker(directory=tmp_path)
    await second.start()
    try:
        assert second.port == port
    finally:
        await second.stop()


async def test_a_message_the_console_has_not_made_safe_is_sent_again(
    mosquitto: MosquittoBroker,
) -> None:
    """Manual acknowledgement: the broker keeps what the handler has not acknowledged."""
    endpoint = mosquitto.endpoint
    creds = endpoint.credentials
    assert creds is not None
    config = SessionConfig(
        host=endpoint.host,
        port=endpoint.port,
        client_id="console",
        username="console",
        password=creds.users()["console"],
        subscriptions=topics.console_subscriptions(ORG),
        backoff_min=0.05,
        manual_ack=True,
    )
    ack_topic = topics.staff_ack(ORG, "ansatt-001")

    async def send(*seqs: int) -> list[bytes]:
        bodies = [json.dumps({"staff_id": "ansatt-001", "seq": n}).encode() for n in seqs]
        async with client_for(endpoint, "ansatt-001") as staff:
            for body in bodies:
                await staff.publish(ack_topic, body, qos=1)
        return bodies

    got: list[bytes] = []
    held: dict[bytes, object] = {}
    sessions: list[BusSession] = []

    async def take(topic: str, payload: bytes, retained: bool) -> None:
        got.append(payload)
        held[payload] = sessions[0].defer_ack()  # "journaled later"

    sessions.append(BusSession(config, take))
    async with running(sessions[0]) as first:
        await first.wait_connected(10)
        one, two = await send(1, 2)
        await eventually(lambda: got == [one, two], what="both received")
        ack = held[one]
        assert callable(ack)
        ack()  # the first is on disk; the console stops before the second is

    again: list[bytes] = []

    async def count(topic: str, payload: bytes, retained: bool) -> None:
        again.append(payload)  # not deferred: acknowledged when this returns

    # A marker sent after the reconnect arrives after anything the broker still held.
    async with running(BusSession(config, count)) as second:
        await second.wait_connected(10)
        (marker,) = await send(3)
        await eventually(lambda: marker in again, what="the marker")
        assert again == [two, marker]  # the unacknowledged one again, and only that one
    async with running(BusSession(config, count)) as third:
        await third.wait_connected(10)
        (marker2,) = await send(4)
        await eventually(lambda: marker2 in again, what="the second marker")
        assert again == [two, marker, marker2]  # acknowledged by the handler's return
