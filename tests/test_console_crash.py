"""A console killed (-9) in the middle of a storm of posts loses none and journals none
twice: a post is acknowledged to the broker only once it is on disk, so the broker keeps
whatever the dead console had received but not journaled, and hands it (with everything
published meanwhile) to the console that starts next on the same journal, which journals
each post once (de-duplicated by key)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.journal.store import verify_file
from tests.conftest import eventually

ORG = "test"
POSTS = 2000
KILL_AFTER = 300
"""Journaled posts before the kill: the storm is well under way, far from over."""


def console(tmp_path: Path, broker: MosquittoBroker, name: str) -> subprocess.Popen[bytes]:
    """``krise console --headless`` on ``broker`` with the journal in ``tmp_path/data``."""
    creds = broker.credentials
    assert creds is not None
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KRISE_")},
        "HOME": str(tmp_path / "home"),
        "KRISE_DATA_DIR": str(tmp_path / "data"),
        "KRISE_ORG": ORG,
        "KRISE_BROKER__HOST": broker.host,
        "KRISE_BROKER__PORT": str(broker.port),
        "KRISE_BROKER__USERNAME": "console",
        "KRISE_BROKER__PASSWORD": creds.users()["console"],
    }
    with (tmp_path / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "krise_tui", "console", "--headless"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def journaled(journal: Path, type_: str) -> list[dict[str, object]]:
    """The bodies of the events of ``type_`` journaled so far (read-only, while the
    console writes)."""
    if not journal.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as con:
        made = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
        if con.execute(made).fetchone() is None:
            return []  # the console is creating the file
        rows = con.execute("SELECT body FROM events WHERE type = ? ORDER BY seq", (type_,))
        return [json.loads(body) for (body,) in rows]


def console_online(journal: Path) -> bool:
    """Whether the console has heard its own presence: it is subscribed."""
    return any(
        body["role"] == "console" and body["online"]
        for body in journaled(journal, "presence.changed")
    )


async def publish_storm(broker: MosquittoBroker, texts: list[str]) -> None:
    """The SMS bridge publishes every post at QoS 1, 50 awaiting their PUBACK at a time."""
    creds = broker.credentials
    assert creds is not None
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username="bridge-sms",
        password=creds.users()["bridge-sms"],
        identifier="bridge-sms",
    ) as client:
        client.pending_calls_threshold = 100  # 50 in flight on purpose
        topic = topics.channel_in(ORG, "sms")
        for start in range(0, len(texts), 50):
            await asyncio.gather(
                *(
                    client.publish(topic, json.dumps({"id": f"p{start + i}", "text": text}), qos=1)
                    for i, text in enumerate(texts[start : start + 50])
                )
            )


@pytest.mark.timeout(240)  # the waits below, on a slow machine; ~15 s here
async def test_a_console_killed_mid_storm_loses_no_post_and_journals_none_twice(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    journal = tmp_path / "data" / "journal.sqlite3"
    texts = [f"Er vannet trygt å drikke i Storgata {i}?" for i in range(POSTS)]
    first = console(tmp_path, mosquitto, "first")
    second: subprocess.Popen[bytes] | None = None
    try:
        await eventually(lambda: console_online(journal), timeout=60, what="the console online")
        storm = asyncio.create_task(publish_storm(mosquitto, texts))
        await eventually(
            lambda: len(journaled(journal, "inbound.post")) >= KILL_AFTER or storm.done(),
            timeout=60,
            what=f"{KILL_AFTER} posts journaled",
        )
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        at_kill = len(journaled(journal, "inbound.post"))
        assert at_kill < POSTS, "the storm was over before the kill: nothing was tested"
        await storm  # the rest reaches the broker while no console runs

        second = console(tmp_path, mosquitto, "second")
        await eventually(
            lambda: len(journaled(journal, "inbound.post")) >= POSTS,
            timeout=90,
            what=f"all {POSTS} posts journaled after the restart",
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0, (tmp_path / "second.log").read_text()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    posts = journaled(journal, "inbound.post")
    keys = [body["key"] for body in posts]
    assert len(keys) == len(set(keys)) == POSTS, f"{len(keys)} journaled, {len(set(keys))} keys"
    sent = {f"sms:p{i}": text for i, text in enumerate(texts)}
    assert {body["key"]: body["post"]["text"] for body in posts} == sent  # type: ignore[index]
    report = verify_file(journal)
    assert report.ok, report
