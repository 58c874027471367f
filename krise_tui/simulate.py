"""Load simulator: many headless staff terminals, spread over several processes.

Each simulated terminal is a real :class:`BusSession` (own MQTT connection, persistent
session, retained presence with last will) with a real :class:`Verifier`: it takes a
verified freeze notice in its scope, acknowledges it after a random delay, and reports
what it saw (wall-clock times) to the parent through a queue. Drills and benchmarks
use it for hundreds or thousands of terminals; ``krise staff --simulate N`` runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import random
import resource
import time
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from typing import Any

from aiomqtt import ProtocolVersion
from cryptography.hazmat.primitives import serialization

from krise_tui.bus import topics
from krise_tui.bus.envelope import Verifier, VerifyStatus
from krise_tui.bus.session import BusSession, SessionConfig


@dataclass(frozen=True)
class SimConfig:
    """What every simulated terminal needs."""

    host: str
    port: int
    org: str
    public_key_pem: bytes
    staff_ids: tuple[str, ...]
    password: str | None = None
    """Shared password of the simulated users (``None``: anonymous, e.g. amqtt)."""
    ack_delay: tuple[float, float] = (0.0, 0.0)
    """Acknowledge after a uniform random delay in this range (seconds)."""
    department: str | None = None
    protocol: ProtocolVersion = ProtocolVersion.V5
    """MQTT 3.1.1 for the embedded amqtt, 5 otherwise."""


@dataclass
class Report:
    """One thing a simulated terminal saw, sent to the parent."""

    kind: str
    """``ready``, ``raw`` (any payload on the freeze topic, before verification),
    ``checked`` (the same, after signature and replay checks, whatever the outcome),
    ``freeze`` (a new, verified notice in scope), ``acked``, ``lifted`` or ``error``."""
    staff_id: str
    at: float
    seq: int | None = None
    detail: str = ""


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    del soft


async def _terminal(cfg: SimConfig, staff_id: str, out: Queue[Any], stop: asyncio.Event) -> None:
    public_key = serialization.load_pem_public_key(cfg.public_key_pem)
    verifier = Verifier([public_key], org=cfg.org)  # type: ignore[list-item]
    freeze_topic = topics.freeze(cfg.org)
    session: BusSession

    async def ack_later(seq: int) -> None:
        low, high = cfg.ack_delay
        if high > 0:
            await asyncio.sleep(random.uniform(low, high))
        body = json.dumps({"staff_id": staff_id, "seq": seq})
        for _ in range(50):
            try:
                await session.publish(topics.staff_ack(cfg.org, staff_id), body, qos=1)
            except Exception:
                await asyncio.sleep(0.2)
                continue
            out.put(Report("acked", staff_id, time.time(), seq))
            return

    async def on_message(topic: str, payload: bytes, retained: bool) -> None:
        if topic != freeze_topic:
            return
        out.put(Report("raw", staff_id, time.time()))
        result = verifier.check(payload)
        out.put(Report("checked", staff_id, time.time(), detail=str(result.status)))
        if result.status is VerifyStatus.DUPLICATE or not result.ok or result.envelope is None:
            return
        env = result.envelope
        departments = env.body.get("departments") or []
        if not env.body.get("active"):
            out.put(Report("lifted", staff_id, time.time(), env.seq))
            return
        if departments and cfg.department not in departments:
            return
        out.put(Report("freeze", staff_id, time.time(), env.seq))
        asyncio.get_running_loop().create_task(ack_later(env.seq))

    session = BusSession(
        SessionConfig(
            host=cfg.host,
            port=cfg.port,
            client_id=f"krise-sim-{cfg.org}-{staff_id}",
            username=staff_id if cfg.password is not None else None,
            password=cfg.password,
            subscriptions=[freeze_topic],
            presence_topic=topics.presence(cfg.org, "staff", staff_id),
            keepalive=60,
            backoff_max=5.0,
            protocol=cfg.protocol,
        ),
        on_message,
    )
    task = asyncio.create_task(session.run())
    try:
        await session.wait_connected(60)
        out.put(Report("ready", staff_id, time.time()))
    except TimeoutError:
        out.put(Report("error", staff_id, time.time(), detail=session.last_error))
    await stop.wait()
    await session.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def _process_main(cfg: SimConfig, out: Queue[Any], stop_flag: Any) -> None:
    stop = asyncio.Event()
    terminals = []
    for i, staff_id in enumerate(cfg.staff_ids):
        terminals.append(asyncio.create_task(_terminal(cfg, staff_id, out, stop)))
        if i % 50 == 49:
            await asyncio.sleep(0.01)  # pace the connects a little
    await asyncio.to_thread(stop_flag.wait)  # a process-shared flag: wait in a thread
    stop.set()
    await asyncio.gather(*terminals, return_exceptions=True)


def _child(cfg: SimConfig, out: Queue[Any], stop_flag: Any) -> None:
    _raise_fd_limit()
    asyncio.run(_process_main(cfg, out, stop_flag))


@dataclass
class Simulation:
    """A running simulation: child processes and the report queue."""

    processes: list[Any] = field(default_factory=list)
    queue: Any = None
    stop_flag: Any = None

    def reports(self, timeout: float = 0.0) -> list[Report]:
        """Drain the reports received so far (waiting up to ``timeout`` for the first)."""
        items: list[Report] = []
        try:
            items.append(self.queue.get(timeout=timeout) if timeout else self.queue.get_nowait())
            while True:
                items.append(self.queue.get_nowait())
        except Exception:  # queue.Empty, from either call
            pass
        return items

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every terminal (each says offline) and join the processes."""
        self.stop_flag.set()
        deadline = time.monotonic() + timeout
        for proc in self.processes:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
                proc.join(2)


def start_simulation(cfg: SimConfig, *, processes: int = 2) -> Simulation:
    """Start ``len(cfg.staff_ids)`` terminals split over ``processes`` processes."""
    _raise_fd_limit()
    ctx = mp.get_context("spawn")  # never fork a process that runs an event loop
    queue = ctx.Queue()
    stop_flag = ctx.Event()
    sim = Simulation(queue=queue, stop_flag=stop_flag)
    ids = list(cfg.staff_ids)
    chunk = max(1, -(-len(ids) // max(1, processes)))
    for k in range(0, len(ids), chunk):
        part = SimConfig(**{**cfg.__dict__, "staff_ids": tuple(ids[k : k + chunk])})
        proc = ctx.Process(target=_child, args=(part, queue, stop_flag), daemon=True)
        proc.start()
        sim.processes.append(proc)
    return sim
