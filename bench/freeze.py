"""Freeze fan-out benchmark: simulated staff terminals on a private mosquitto.

Run as ``python bench/freeze.py [N ...]`` (default N = 1000; bounded: every wait has a
deadline; about a minute and a half for N = 1000 on two cores, see
:data:`AUTOSAVE_EVERY`). For each N, a freeze and then :data:`RUNS` extensions (each a
new signed notice every terminal verifies and acknowledges; the freeze is a warm-up, see
:data:`WARM_UP`), each figure the median over the extensions; one line each, ``FIGURE:
measured=V UNIT baseline=V UNIT ratio=R min=V max=V`` (min/max of the measured value):

- ``freeze_fanout_N``: seconds from the console's command (decide, journal, sign,
  outbox, QoS 1 publish) until every terminal has verified the notice, against a raw
  aiomqtt publish of the very same payload to the same subscribers, until every
  terminal has run the same signature check on it. Target ratio ≤ 1.1.
- ``freeze_rollcall_lag_N``: seconds from the last acknowledgement a terminal sent until
  the console's roll-call shows every terminal acknowledged (the acks journaled and
  folded), against the seconds from that same last ack until a plain subscriber on the
  ack topics has received every ack: what the console adds on top of the broker.
  Terminals acknowledge :data:`ACK_DELAY` seconds after a notice, so the fan-out is
  measured without their traffic.

Terminals run in several processes (:mod:`krise_tui.simulate`); clocks are the one
wall clock of this machine.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import aiomqtt
from cryptography.hazmat.primitives import serialization
from figures import figure

from krise_tui.bus import topics
from krise_tui.bus.broker import Credentials, MosquittoBroker, sim_staff_id, write_password_file
from krise_tui.bus.envelope import Signer
from krise_tui.config import BrokerSettings, Settings
from krise_tui.core.features.freeze import ExtendFreeze, Freeze, StaffAcknowledged
from krise_tui.core.features.outbox import Target
from krise_tui.core.kernel import EventBase, Rejection
from krise_tui.core.state import IncidentState
from krise_tui.runtime import ConsoleRuntime
from krise_tui.runtime.outbox import envelope_for
from krise_tui.simulate import Report, SimConfig, Simulation, start_simulation

ORG = "bench"
PROCESSES = 4
RUNS = 5
WARM_UP = """The first notice is not counted: the first retained message on the freeze topic
of a fresh broker costs mosquitto seconds of database saves (``autosave_on_changes``)
before it forwards it, whoever publishes it, and the raw baseline never publishes a
first one. Its figures are printed on a ``#`` line."""
ACK_DELAY = 3.0
"""Terminals acknowledge this long after the notice, so the fan-out is measured alone."""
OBSERVER = "observer"
"""A broker user of the benchmark's own, reading the org's topics: the plain subscriber
(a second login as ``console`` would take over the console's session)."""
PROBE = "bench/probe"
"""A topic nobody subscribes to: its PUBACK time shows whether the broker is idle."""


AUTOSAVE_EVERY = 1000
"""Changes between the bench broker's database saves (the shipped config saves after every
change). With 1,000 persistent sessions, each notice and each round of acks is thousands
of changes, and every save writes them all: the broker then spends seconds on a backlog
of saves after each round, which :func:`broker_idle` would wait out twice per notice.
Both sides of every comparison run on this same broker."""


class BenchBroker(MosquittoBroker):
    """The private mosquitto (saving every :data:`AUTOSAVE_EVERY` changes), plus the
    benchmark's observer user."""

    observer_password = secrets.token_urlsafe(18)

    def write_files(self) -> None:
        super().write_files()
        conf = self.conf_path.read_text(encoding="utf-8")
        saving = conf.replace("autosave_interval 1\n", f"autosave_interval {AUTOSAVE_EVERY}\n")
        assert saving != conf, "the shipped mosquitto.conf no longer saves on every change"
        self.conf_path.write_text(saving, encoding="utf-8")
        acl = self.directory / "acl"
        acl.write_text(
            acl.read_text(encoding="utf-8")
            + f"\nuser {OBSERVER}\ntopic read krise/v1/{ORG}/#\n"
            + f"topic write {topics.freeze(ORG)}\ntopic write {PROBE}\n",
            encoding="utf-8",
        )
        users = {**self.credentials.users(), OBSERVER: self.observer_password}
        write_password_file(self.directory / "passwd", users)


async def broker_idle(client: aiomqtt.Client, timeout: float = 120.0) -> float:
    """Wait until the broker answers a probe at once (three times in a row); seconds waited.

    The shipped mosquitto.conf saves its database after every change
    (``autosave_on_changes``, ``autosave_interval 1``), and every QoS 1 message to a
    persistent session is one: after a burst of acks the broker works through a backlog
    of saves for seconds. A notice published into that backlog measures the broker's
    disk, not the console, so both sides of each comparison start from an idle broker.
    """
    start = time.perf_counter()
    calm = 0
    while calm < 3:
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"the broker stayed busy for {timeout:.0f} s")
        sent = time.perf_counter()
        try:
            await client.publish(PROBE, b"", qos=1, timeout=30)
        except aiomqtt.MqttError:  # no PUBACK in time: still busy
            calm = 0
            continue
        calm = calm + 1 if time.perf_counter() - sent < 0.02 else 0
        await asyncio.sleep(0.05)
    return time.perf_counter() - start


async def settle(runtime: ConsoleRuntime, quiet: float = 1.5, timeout: float = 180.0) -> None:
    """Wait until the console's background work after start is done: the question
    batcher loads its neural model and seeds the playbook's questions in a worker thread,
    which would compete with what is measured. Then until nothing is journaled for
    ``quiet`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    batching = getattr(runtime, "batching", None)
    while batching is not None and not batching.ready and loop.time() < deadline:
        await asyncio.sleep(0.1)
    last = [loop.time()]
    runtime.on_state(lambda _state, _events: last.__setitem__(0, loop.time()))
    while loop.time() - last[0] < quiet and loop.time() < deadline:
        await asyncio.sleep(0.1)
    for service in (batching, getattr(runtime, "matching", None)):
        if service is not None:
            await asyncio.wait_for(service.flush(), max(1.0, deadline - loop.time()))


class Collector:
    """Keeps every report from the terminals, so several waits can look at them."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.seen: list[Report] = []

    async def wait(
        self, kind: str, count: int, *, since: float, timeout: float, seq: int | None = None
    ) -> list[Report]:
        """Wait for ``count`` terminals' reports of ``kind`` stamped at or after ``since``."""
        deadline = time.monotonic() + timeout
        while True:
            got: dict[str, Report] = {}
            for report in self.seen:
                if report.kind == "error":
                    raise RuntimeError(f"{report.staff_id}: {report.detail}")
                if report.kind == kind and report.at >= since and seq in (None, report.seq):
                    got.setdefault(report.staff_id, report)
            if len(got) >= count:
                return list(got.values())
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(got)}/{count} {kind!r} reports in {timeout:.0f} s")
            self.seen += await asyncio.to_thread(self.sim.reports, 0.2)


class RollCallWatch:
    """Notes when the console's committed state holds every ack of the current notice."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seq = -1
        self.acked: set[str] = set()
        self.at = 0.0
        self.done = asyncio.Event()

    def expect(self, seq: int) -> None:
        self.seq, self.at = seq, 0.0
        self.acked.clear()
        self.done.clear()

    def __call__(self, _state: IncidentState, events: list[EventBase]) -> None:
        for event in events:
            if isinstance(event, StaffAcknowledged) and event.seq == self.seq:
                self.acked.add(event.staff_id)
        if len(self.acked) >= self.n and not self.done.is_set():
            self.at = time.time()
            self.done.set()


class AckWatch:
    """The plain subscriber: when each terminal's ack for a notice reached the broker's
    other side."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seq = -1
        self.received: dict[str, float] = {}
        self.done = asyncio.Event()

    def expect(self, seq: int) -> None:
        self.seq = seq
        self.received.clear()
        self.done.clear()

    async def run(self, client: aiomqtt.Client) -> None:
        import json

        async for message in client.messages:
            at = time.time()
            try:
                data = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            except ValueError:
                continue
            if data.get("seq") == self.seq:
                self.received.setdefault(str(data.get("staff_id")), at)
                if len(self.received) >= self.n:
                    self.done.set()


async def run(n: int, directory: Path) -> None:
    creds = Credentials.generate(staff_ids=(), bridges=(), simulated=n)
    broker = BenchBroker(directory / f"mosquitto-{n}", credentials=creds, org=ORG)
    await broker.start()
    signer = Signer.generate()
    settings = Settings(
        org=ORG,
        data_dir=directory / f"data-{n}",
        broker=BrokerSettings(
            host=broker.host, port=broker.port, username="console", password=creds.console
        ),
    )
    roster: dict[str, str | None] = dict.fromkeys(creds.sim_ids(), "alle")
    console = ConsoleRuntime(settings, signer=signer, roster=roster)
    sim: Simulation | None = None
    observer: asyncio.Task[None] | None = None
    try:
        await console.start()
        assert console.session is not None
        await console.session.wait_connected(10)
        await settle(console)
        rollcall = RollCallWatch(n)
        console.on_state(rollcall)
        pem = signer.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        sim = start_simulation(
            SimConfig(
                host=broker.host,
                port=broker.port,
                org=ORG,
                public_key_pem=pem,
                staff_ids=tuple(sim_staff_id(i) for i in range(1, n + 1)),
                password=creds.sim_password,
                ack_delay=(ACK_DELAY, ACK_DELAY),
            ),
            processes=PROCESSES,
        )
        reports = Collector(sim)
        await reports.wait("ready", n, since=0, timeout=180)
        acks = AckWatch(n)
        async with aiomqtt.Client(
            broker.host,
            broker.port,
            username=OBSERVER,
            password=broker.observer_password,
            identifier=OBSERVER,
        ) as raw:
            await raw.subscribe(f"krise/v1/{ORG}/staff/+/ack", qos=1)
            observer = asyncio.create_task(acks.run(raw))
            await asyncio.sleep(2.0)  # let the console journal the presence burst first
            await console.flush_inbound()
            fanouts: list[float] = []
            raws: list[float] = []
            lags: list[float] = []
            raw_lags: list[float] = []
            for k in range(RUNS + 1):
                now = console.clock.now()
                command = (
                    Freeze("Benchmark")
                    if k == 0
                    else ExtendFreeze(now + timedelta(hours=k + 1), reason=f"Benchmark {k}")
                )
                await console.wait_idle(10)
                busy = await broker_idle(raw)
                seq = console.state.outbox.next_seq("freeze")
                rollcall.expect(seq)
                acks.expect(seq)
                t0 = time.time()
                decision = await console.submit(command)
                assert not isinstance(decision, Rejection), decision
                verified = await reports.wait("freeze", n, since=t0, timeout=120, seq=seq)
                fanouts.append(max(r.at for r in verified) - t0)

                acked = await reports.wait("acked", n, since=t0, timeout=60, seq=seq)
                last_ack = max(r.at for r in acked)
                await asyncio.wait_for(rollcall.done.wait(), 60)
                await asyncio.wait_for(acks.done.wait(), 60)
                lags.append(rollcall.at - last_ack)
                raw_lags.append(max(acks.received.values()) - last_ack)

                await console.wait_idle(10)
                effect = next(
                    e
                    for e in console.state.outbox.effects.values()
                    if e.publish.target is Target.FREEZE and e.publish.seq == seq
                )
                payload = envelope_for(signer, ORG, effect)
                busy += await broker_idle(raw)
                t1 = time.time()
                await raw.publish(topics.freeze(ORG), payload, qos=1, retain=True)
                received = await reports.wait("checked", n, since=t1, timeout=120)
                raws.append(max(r.at for r in received) - t1)
                print(
                    f"# notice {k + 1}{' (warm-up, not counted)' if k == 0 else ''}: "
                    f"fan-out {fanouts[-1]:.3f} s (raw {raws[-1]:.3f} s), "
                    f"roll-call lag {lags[-1]:.3f} s (plain {raw_lags[-1]:.3f} s); "
                    f"waited {busy:.1f} s for an idle broker",
                    file=sys.stderr,
                )
                if k == 0:  # see WARM_UP
                    fanouts, raws, lags, raw_lags = [], [], [], []
        figure(f"freeze_fanout_{n}", fanouts, statistics.median(raws), "s")
        figure(f"freeze_rollcall_lag_{n}", lags, statistics.median(raw_lags), "s")
        print(
            f"# raw fan-out min={min(raws):.4g} max={max(raws):.4g}; "
            f"plain ack receive lag min={min(raw_lags):.4g} max={max(raw_lags):.4g}",
            file=sys.stderr,
        )
    finally:
        if observer is not None:
            observer.cancel()
        if sim is not None:
            await asyncio.to_thread(sim.stop)
        await console.stop()
        await broker.stop()


async def main(sizes: list[int]) -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="krise-bench-freeze-") as tmp:
        for n in sizes:
            await run(n, Path(tmp))
    print(f"# total {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [1000]
    try:
        raise SystemExit(asyncio.run(main(sizes)))
    except Exception as exc:
        print(f"bench/freeze.py: could not measure: {exc!r}", file=sys.stderr)
        raise SystemExit(1) from exc
