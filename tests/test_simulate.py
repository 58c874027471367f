"""The load simulator: simulated terminals in several processes against a real mosquitto."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from krise_tui.bus.broker import Credentials, MosquittoBroker, sim_staff_id
from krise_tui.bus.envelope import Signer
from krise_tui.config import BrokerSettings, Settings
from krise_tui.core.features.freeze import Freeze, LiftFreeze
from krise_tui.core.rollcall import StaffStatus
from krise_tui.runtime import ConsoleRuntime
from krise_tui.simulate import Report, SimConfig, start_simulation
from tests.conftest import eventually

N = 24


async def test_simulated_terminals_acknowledge_and_fill_the_rollcall(tmp_path: Path) -> None:
    creds = Credentials.generate(staff_ids=(), bridges=(), simulated=N)
    broker = MosquittoBroker(tmp_path / "mosquitto", credentials=creds)
    await broker.start()
    signer = Signer.generate()
    roster: dict[str, str | None] = dict.fromkeys(creds.sim_ids(), "alle")
    console = ConsoleRuntime(
        Settings(
            org="test",
            data_dir=tmp_path / "data",
            broker=BrokerSettings(
                host=broker.host, port=broker.port, username="console", password=creds.console
            ),
        ),
        signer=signer,
        roster=roster,
    )
    pem = signer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sim = start_simulation(
        SimConfig(
            host=broker.host,
            port=broker.port,
            org="test",
            public_key_pem=pem,
            staff_ids=tuple(sim_staff_id(i) for i in range(1, N + 1)),
            password=creds.sim_password,
            ack_delay=(0.0, 0.5),
        ),
        processes=2,
    )
    seen: list[Report] = []

    def count(kind: str) -> int:
        return len({r.staff_id for r in seen if r.kind == kind})

    async def wait_count(kind: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while count(kind) < N:
            assert time.monotonic() < deadline, f"only {count(kind)}/{N} {kind!r} reports"
            seen.extend(await asyncio.to_thread(sim.reports, 0.05))
            errors = [r.detail for r in seen if r.kind == "error"]
            assert not errors, errors

    try:
        await console.start()
        await wait_count("ready")
        started = time.time()
        await console.submit(Freeze("Øvelse"))
        await eventually(
            lambda: console.roll_call().count(StaffStatus.ACKED) == N, timeout=30, what="acks"
        )
        await wait_count("freeze")
        assert all(r.at >= started for r in seen if r.kind == "freeze")
        assert len(sim.processes) == 2
        await console.submit(LiftFreeze("Slutt på øvelsen"))
        await wait_count("lifted")
    finally:
        await asyncio.to_thread(sim.stop)
        await console.stop()
        await broker.stop()
