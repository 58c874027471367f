"""Freeze fan-out benchmark: simulated staff terminals on a private mosquitto.

Run as ``python bench/freeze.py [N ...]`` (default: 1000 and 5000 terminals; bounded:
every wait has a deadline). For each N it prints, the baseline measured in the same run:

- ``freeze_fanout_N``: seconds from the console's Freeze command (journal, sign,
  outbox, QoS 1 publish) until every terminal has verified the notice, against a raw
  aiomqtt publish of the very same payload to the same subscribers, until every
  terminal has run the same signature check on it. Target ratio ≤ 1.1.
- ``freeze_rollcall_N``: seconds from the Freeze command until the console's roll-call
  shows every acknowledgement, against the time the last terminal sent its ack
  (terminals ack 3 s after the notice, so the fan-out is measured without their
  traffic): a ratio near 1 means the roll-call keeps up with the acks.

Terminals run in several processes (:mod:`krise_tui.simulate`).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt
from cryptography.hazmat.primitives import serialization

from krise_tui.bus import topics
from krise_tui.bus.broker import Credentials, MosquittoBroker, sim_staff_id
from krise_tui.bus.envelope import Signer
from krise_tui.config import BrokerSettings, Settings
from krise_tui.core.engine import Freeze
from krise_tui.core.rollcall import StaffStatus
from krise_tui.runtime import ConsoleRuntime
from krise_tui.simulate import Report, SimConfig, Simulation, start_simulation

ORG = "bench"
PROCESSES = 4
ACK_DELAY = 3.0
"""Terminals acknowledge this long after the notice, so the fan-out is measured alone."""


def line(name: str, measured: float, baseline: float, unit: str) -> None:
    ratio = measured / baseline if baseline else float("inf")
    print(
        f"{name}: measured={measured:.4g} {unit} baseline={baseline:.4g} {unit} ratio={ratio:.3f}",
        flush=True,
    )


class Collector:
    """Keeps every report from the terminals, so several waits can look at them."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.seen: list[Report] = []

    async def wait(self, kind: str, count: int, *, since: float, timeout: float) -> list[Report]:
        """Wait for ``count`` terminals' reports of ``kind`` stamped at or after ``since``."""
        deadline = time.monotonic() + timeout
        while True:
            got: dict[str, Report] = {}
            for report in self.seen:
                if report.kind == "error":
                    raise RuntimeError(f"{report.staff_id}: {report.detail}")
                if report.kind == kind and report.at >= since:
                    got.setdefault(report.staff_id, report)
            if len(got) >= count:
                return list(got.values())
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(got)}/{count} {kind!r} reports in {timeout:.0f} s")
            self.seen += await asyncio.to_thread(self.sim.reports, 0.2)


async def run(n: int, directory: Path) -> None:
    creds = Credentials.generate(staff_ids=(), bridges=(), simulated=n)
    broker = MosquittoBroker(directory / f"mosquitto-{n}", credentials=creds)
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
    try:
        await console.start()
        assert console.session is not None
        await console.session.wait_connected(10)
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
        await asyncio.sleep(1.0)  # let the console journal the presence burst first

        t0 = time.time()
        await console.submit(Freeze("Benchmark"))
        verified = await reports.wait("freeze", n, since=t0, timeout=120)
        fanout = max(r.at for r in verified) - t0
        deadline = time.monotonic() + 120
        while console.roll_call().count(StaffStatus.ACKED) < n:
            if time.monotonic() > deadline:
                raise TimeoutError("roll-call did not fill in 120 s")
            await asyncio.sleep(0.01)
        rollcall = time.time() - t0
        acks = await reports.wait("acked", n, since=t0, timeout=10)
        last_ack_sent = max(r.at for r in acks) - t0

        payload = next(
            e.payload for e in console.state.effects.values() if e.topic.endswith("/freeze")
        )
        async with aiomqtt.Client(
            broker.host, broker.port, username="console", password=creds.console, identifier="raw"
        ) as raw:
            await asyncio.sleep(0.5)
            t1 = time.time()
            await raw.publish(topics.freeze(ORG), payload, qos=1, retain=True)
            received = await reports.wait("checked", n, since=t1, timeout=120)
        baseline = max(r.at for r in received) - t1

        line(f"freeze_fanout_{n}", fanout, baseline, "s")
        line(f"freeze_rollcall_{n}", rollcall, last_ack_sent, "s")
    finally:
        if sim is not None:
            await asyncio.to_thread(sim.stop)
        await console.stop()
        await broker.stop()


async def main(sizes: list[int]) -> int:
    with tempfile.TemporaryDirectory(prefix="krise-bench-freeze-") as tmp:
        for n in sizes:
            await run(n, Path(tmp))
    return 0


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 5000]
    try:
        raise SystemExit(asyncio.run(main(sizes)))
    except Exception as exc:
        print(f"bench/freeze.py: could not measure: {exc!r}", file=sys.stderr)
        raise SystemExit(1) from exc
