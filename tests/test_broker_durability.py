"""What mosquitto has acknowledged survives ``kill -9``, as shipped (broker/mosquitto.conf).

mosquitto keeps everything in memory and writes its persistence file on a schedule; the
shipped ``autosave_on_changes true`` / ``autosave_interval 1`` writes it after every
change, at the end of the event-loop pass that made it — milliseconds *after* the PUBACK
went out (mosquitto sends the PUBACK first). With a timed interval, QoS 1 messages
queued for an offline terminal since the last save die with the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker, broker_config_dir, render_mosquitto_conf
from krise_tui.bus.session import BusSession, SessionConfig
from tests.conftest import client_for, eventually

ORG = "test"
SAVED_WITHIN = 0.5
"""Seconds from a PUBACK to the message being in mosquitto's database file (measured:
1-10 ms). A timed ``autosave_interval`` of 1 s or more cannot meet it twice in a row."""


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:  # not written yet
        return b""


def staff_config(broker: MosquittoBroker, staff_id: str) -> SessionConfig:
    assert broker.credentials is not None
    return SessionConfig(
        host=broker.host,
        port=broker.port,
        client_id=f"krise-staff-{ORG}-{staff_id}",
        username=staff_id,
        password=broker.credentials.staff[staff_id],
        subscriptions=[topics.staff_remind(ORG, staff_id)],
        backoff_min=0.05,
        backoff_max=0.2,
    )


async def test_queued_messages_survive_kill_9_of_the_broker(mosquitto: MosquittoBroker) -> None:
    got: list[int] = []

    async def on_message(topic: str, payload: bytes, retained: bool) -> None:
        got.append(json.loads(payload)["n"])

    # The terminal's persistent session exists (subscribed), then it goes offline.
    terminal = BusSession(staff_config(mosquitto, "ansatt-001"), on_message)
    task = asyncio.create_task(terminal.run())
    await terminal.wait_connected(10)
    await terminal.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    database = mosquitto.data_dir / "mosquitto.db"
    sent = list(range(10))
    async with client_for(mosquitto.endpoint, "console", identifier="console") as console:
        for n in sent:
            body = json.dumps({"n": n, "marker": f"queued-{n:02d}"}).encode()
            await console.publish(topics.staff_remind(ORG, "ansatt-001"), body, qos=1)
            # Acknowledged; on disk within one save (the payload is stored verbatim).
            await eventually(
                lambda n=n: f"queued-{n:02d}".encode() in _read(database),
                timeout=SAVED_WITHIN,
                what=f"message {n} in the persistence file",
            )
    await mosquitto.stop(kill=True)  # no clean shutdown, no final save
    await mosquitto.start()  # same port, same data directory

    terminal = BusSession(staff_config(mosquitto, "ansatt-001"), on_message)
    task = asyncio.create_task(terminal.run())
    try:
        await eventually(lambda: sorted(got) == sent, what="all 10 queued messages")
    finally:
        await terminal.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_private_instances_promise_what_the_shipped_config_promises(tmp_path: Path) -> None:
    shipped = (broker_config_dir() / "mosquitto.conf").read_text(encoding="utf-8")
    rendered = render_mosquitto_conf(
        broker_config_dir() / "mosquitto.conf",
        port=1234,
        password_file=tmp_path / "passwd",
        acl_file=tmp_path / "acl",
        data_dir=tmp_path,
    )

    def durability(text: str) -> list[str]:
        keys = ("persistence ", "autosave_", "use_username_as_clientid")
        return [line for line in text.splitlines() if line.startswith(keys)]

    assert durability(rendered) == durability(shipped)
    assert "autosave_on_changes true" in durability(shipped)
    assert "autosave_interval 1" in durability(shipped)
    assert "use_username_as_clientid true" in durability(shipped)
