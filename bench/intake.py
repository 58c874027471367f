"""Intake benchmark: citizens' posts over MQTT into the console's journal, and batched.

Run as ``python bench/intake.py [POSTS]`` (default 10,000; bounded: every wait has a
deadline; about 5 minutes on two cores). A private mosquitto from ``broker/`` on a free
port, as shipped (it saves its database after every change); a bridge user in a process
of its own publishes the posts at QoS 1, 50 awaiting their PUBACK at a time (texts from
``../shared/dev-data/norsk_questions_dev.csv`` when present, else generated). Each
figure is the median of five runs, min and max after it; the baseline is measured in the
same run:

- ``intake_journaled``: posts per second from the first publish until every post is in
  the console's journal and state (parsed, bounded, masked, triaged, de-duplicated,
  hash-chained, acknowledged to the broker only once on disk), against a bare subscriber
  on the same broker that receives the same posts and inserts them into SQLite (one
  transaction per burst, WAL, synchronous=NORMAL). Target (issue 11): ≥ 1,000 posts/s.
  The console has been up a moment (its batcher rebuilt and model loaded) and works as
  in a real storm: questions are batched meanwhile, stepping back while intake is busy.
- ``intake_batched``: posts per second until the batching service has placed every post
  of a smaller burst (``BATCHED`` posts: the multilingual model embeds each one), against
  the same baseline's rate for that burst. Target: ≥ 50 posts/s sustained.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiomqtt
from figures import figure

from krise_tui.bus import topics
from krise_tui.bus.broker import Credentials, MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.config import BrokerSettings, Settings
from krise_tui.core.features.incident import OpenIncident
from krise_tui.runtime import ConsoleRuntime

ORG = "bench"
RUNS = 5
BATCHED = 300
DEV = Path(__file__).resolve().parents[2] / "shared" / "dev-data" / "norsk_questions_dev.csv"
DEADLINE = 300.0


def texts(n: int) -> list[str]:
    """``n`` question texts: the dev set's, repeated with a number, or generated."""
    base: list[str] = []
    if DEV.exists():
        with DEV.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            column = next((c for c in reader.fieldnames or [] if c in ("text", "question")), None)
            if column is not None:
                base = [row[column] for row in reader if row.get(column)]
    if not base:
        base = [
            f"Når kommer strømmen tilbake i {place}?"
            for place in ("sentrum", "Moen", "Elvebakken", "Storgata", "Fossheim")
        ]
    return [f"{base[i % len(base)]} ({i})" for i in range(n)]


class Publisher:
    """A bridge's publisher in a process of its own (publishing must not share the
    measured process's CPU), connected before the clock starts: :meth:`go` starts it."""

    def __init__(self, broker: MosquittoBroker, password: str, posts: list[str], run: int):
        self.args = (broker.host, str(broker.port), password, str(run), str(len(posts)))
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Publisher:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--publish",
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        if (await self.proc.stdout.readline()).strip() != b"ready":
            raise RuntimeError("the publisher did not connect")
        return self

    def go(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        if await self.proc.wait() != 0:
            raise RuntimeError(f"the publisher exited with {self.proc.returncode}")


async def publisher(host: str, port: int, password: str, run: int, n: int) -> None:
    """The publisher process: ``texts(n)``, 50 in flight at a time (each awaits its PUBACK)."""
    posts = texts(n)
    async with aiomqtt.Client(
        host, port, username="bridge-sms", password=password, identifier="bridge-sms"
    ) as client:
        client.pending_calls_threshold = 100  # 50 in flight on purpose: no warnings
        topic = topics.channel_in(ORG, "sms")
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        for start in range(0, len(posts), 50):
            await asyncio.gather(
                *(
                    client.publish(
                        topic, json.dumps({"id": f"r{run}-{start + i}", "text": text}), qos=1
                    )
                    for i, text in enumerate(posts[start : start + 50])
                )
            )


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {DEADLINE:.0f} s")
        await asyncio.sleep(0.01)


async def baseline(
    broker: MosquittoBroker, creds: Credentials, posts: list[str], run: int, db: Path
) -> float:
    """Receive the posts as the console's user and insert them into SQLite: posts/s."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE IF NOT EXISTS posts (topic TEXT, body BLOB)")
    done = 0
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username="console",
        password=creds.console,
        identifier="console",
    ) as client:
        await client.subscribe(f"{topics.ROOT}/{ORG}/channel/+/in", qos=1)
        sender = Publisher(broker, creds.users()["bridge-sms"], posts, run)
        await sender.__aenter__()
        t0 = time.perf_counter()
        sender.go()
        pending: list[tuple[str, bytes]] = []
        async for message in client.messages:
            pending.append((str(message.topic), bytes(message.payload)))  # type: ignore[arg-type]
            if len(pending) >= 200 or done + len(pending) == len(posts):
                con.executemany("INSERT INTO posts VALUES (?, ?)", pending)
                con.commit()
                done += len(pending)
                pending.clear()
            if done == len(posts):
                break
        elapsed = time.perf_counter() - t0
        await sender.__aexit__()
    con.close()
    return len(posts) / elapsed


async def console_run(
    broker: MosquittoBroker,
    creds: Credentials,
    posts: list[str],
    run: int,
    directory: Path,
    *,
    batched: bool,
) -> float:
    """Posts/s until all are journaled (or, with ``batched``, all placed in batches)."""
    settings = Settings(
        org=ORG,
        data_dir=directory / f"console-{run}-{batched}",
        broker=BrokerSettings(
            host=broker.host, port=broker.port, username="console", password=creds.console
        ),
    )
    console = ConsoleRuntime(settings, signer=Signer.generate())
    await console.start()
    try:
        assert console.session is not None
        await console.session.wait_connected(10)
        await console.submit(OpenIncident("Benchmark"))
        # A console that has been up for a moment: the batcher rebuilt, its model loaded.
        await until(lambda: console.batching is not None and console.batching.ready, "model")
        before = len(console.state.inbound.posts)
        want = before + len(posts)
        sender = Publisher(broker, creds.users()["bridge-sms"], posts, run)
        await sender.__aenter__()
        t0 = time.perf_counter()
        sender.go()
        check: Callable[[], bool]
        if batched:
            qs = console.state.questions

            def check() -> bool:
                placed = sum(1 for q in qs.questions.values() if q.batch_id is not None)
                return placed >= len(posts) or (
                    len(console.state.inbound.posts) >= want
                    and console.batching is not None
                    and console.batching.backlog == 0
                    and placed > 0
                )
        else:

            def check() -> bool:
                return len(console.state.inbound.posts) >= want

        await until(check, "batched" if batched else "journaled")
        rate = len(posts) / (time.perf_counter() - t0)
        await sender.__aexit__()
        return rate
    finally:
        await console.stop()


async def measure(
    name: str,
    count: int,
    runner: Callable[[list[str], int], Awaitable[float]],
    base: Callable[[list[str], int], Awaitable[float]],
) -> None:
    measured: list[float] = []
    baselines: list[float] = []
    for run in range(RUNS):
        posts = texts(count)
        baselines.append(await base(posts, run))
        measured.append(await runner(posts, run))
    figure(name, measured, statistics.median(baselines), "posts/s")


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="krise-bench-intake-") as tmp:
        directory = Path(tmp)
        creds = Credentials.generate(staff_ids=(), bridges=("sms",))
        broker = MosquittoBroker(directory / "mosquitto", credentials=creds)
        await broker.start()
        try:

            def base(tag: str) -> Callable[[list[str], int], Awaitable[float]]:
                async def go(posts: list[str], run: int) -> float:
                    return await baseline(
                        broker,
                        creds,
                        posts,
                        100 * run + len(tag),
                        directory / f"{tag}-{run}.sqlite3",
                    )

                return go

            def console(batched: bool) -> Callable[[list[str], int], Awaitable[float]]:
                async def go(posts: list[str], run: int) -> float:
                    return await console_run(broker, creds, posts, run, directory, batched=batched)

                return go

            await measure("intake_journaled", n, console(False), base("j"))
            await measure("intake_batched", min(n, BATCHED), console(True), base("bb"))
        finally:
            await broker.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--publish"]:
        host, port, password, run, n = sys.argv[2:7]
        asyncio.run(publisher(host, int(port), password, int(run), int(n)))
    else:
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
