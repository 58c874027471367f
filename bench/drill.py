"""Drill player benchmark: the flood scenario at ``--speed max`` against a bare replay.

Run as ``python bench/drill.py [SCENARIO]`` (default ``playbooks/scenarios/flom-sentrum.yaml``;
bounded: every drill has its own deadlines, about three minutes on two cores). One
unmeasured drill first fills the embedding cache, so that what is measured is the
console and the drill, not the text model; then :data:`RUNS` drills and :data:`RUNS`
bare replays, alternating, each in a fresh directory with its own private mosquitto.
Two figures, the median over the runs, one line each,
``NAME: measured=V UNIT baseline=V UNIT ratio=R min=V max=V`` (min/max of the measured
value):

- ``drill_speed``: simulated hours per wall-clock second of the whole drill (start,
  every inject through the bus, simulated staff, world events, the console's timers, the
  wait at every step until the console has dealt with it, the end), against the same
  measure for a bare replay of the same posts onto the bus. The drill plays the
  scenario's injects without a scripted response, so both do the same work on posts.
- ``drill_overhead``: wall seconds of the drill against wall seconds of the bare
  replay: the ratio is what stepping the clock and waiting for the console costs.

The bare replay starts the same console (same settings, exercise mode, the same private
broker), publishes every post of the scenario as ``bridge-drill`` as fast as the broker
takes them, and waits until each is journaled, triaged, batched and matched; no sinks,
no staff, no clock.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from figures import figure

from krise_tui.bus import topics
from krise_tui.bus.login import resolve_login
from krise_tui.bus.session import BusSession, SessionConfig
from krise_tui.clock import FixedClock
from krise_tui.drill.player import Player, drill_settings
from krise_tui.drill.scenario import DEFAULT_VIA, LoadedScenario, load_scenario
from krise_tui.runtime import ConsoleRuntime
from krise_tui.wire.inbound import InboundPost

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "playbooks" / "scenarios" / "flom-sentrum.yaml"
RUNS = 5
DEADLINE = 300.0
"""Seconds a bare replay may wait for the console before it gives up."""


async def drill(loaded: LoadedScenario, directory: Path, cache: Path) -> float:
    """Wall seconds of one drill (no scripted response)."""
    started = time.perf_counter()
    await Player(loaded, directory=directory, cache_dir=cache).run()
    return time.perf_counter() - started


async def _noop(topic: str, payload: bytes, retained: bool) -> None:
    return None


async def bare(loaded: LoadedScenario, directory: Path, cache: Path) -> float:
    """Wall seconds of the same posts published straight onto a console's bus."""
    from krise_tui.drill.player import _seed_caches

    directory.mkdir(parents=True)
    _seed_caches(cache, directory)
    started = time.perf_counter()
    settings = drill_settings(loaded, directory)
    runtime = ConsoleRuntime(
        settings, clock=FixedClock(loaded.scenario.start), exercise=True, timer_interval=10**9
    )
    await runtime.start()
    try:
        assert runtime.session is not None
        # A fresh broker queues nothing for a console that has not subscribed yet.
        await runtime.session.wait_connected(30)
        login = resolve_login(runtime.settings, "bridge", "drill", for_console=True)
        session = BusSession(
            SessionConfig(
                host=login.host,
                port=login.port,
                client_id="krise-bench-drill",
                username=login.username,
                password=login.password,
                protocol=login.protocol,
            ),
            _noop,
        )
        task = asyncio.create_task(session.run())
        await session.wait_connected(30)
        org = loaded.org
        keys = set()
        for _, post, _ in loaded.scenario.posts():
            kind = org.channel(post.channel).kind.value
            wire = InboundPost(
                id=post.id,
                text=post.text,
                author=post.author,
                kind=post.via or DEFAULT_VIA.get(kind, "post"),
                meta=dict(post.meta),
            )
            keys.add(f"{post.channel}:{post.id}")
            await session.publish(
                topics.channel_in(org.slug, post.channel), wire.model_dump_json(), qos=1
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while not keys <= set(runtime.state.inbound.posts):
            if loop.time() > deadline:
                raise TimeoutError("the console did not journal every post")
            await runtime.flush_inbound()
            await asyncio.sleep(0.01)  # the bus has no signal for "delivered"
        for service in (runtime.batching, runtime.matching):
            if service is not None and service.error is None:
                await asyncio.wait_for(service.flush(), DEADLINE)
        await runtime.flush_inbound()
        await session.stop()
        task.cancel()
    finally:
        await runtime.stop()
    return time.perf_counter() - started


async def main(path: Path) -> None:
    loaded = load_scenario(path)
    hours = loaded.scenario.duration.total_seconds() / 3600
    posts = sum(1 for _ in loaded.scenario.posts())
    root = Path(tempfile.mkdtemp(prefix="krise-bench-drill-"))
    cache = root / "cache"
    try:
        warm = await drill(loaded, root / "warm", cache)
        print(f"# {loaded.scenario.id}: {posts} posts over {hours:g} h; warm-up {warm:.1f} s")
        drills: list[float] = []
        bares: list[float] = []
        for n in range(RUNS):
            drills.append(await drill(loaded, root / f"drill-{n}", cache))
            bares.append(await bare(loaded, root / f"bare-{n}", cache))
            print(f"# run {n + 1}: drill {drills[-1]:.2f} s, bare replay {bares[-1]:.2f} s")
        figure("drill_speed", [hours / s for s in drills], hours / statistics.median(bares), "h/s")
        figure("drill_overhead", drills, statistics.median(bares), "s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    for noisy in ("mqtt", "krise_tui.bus.session", "krise_tui.bridge"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCENARIO
    started = time.perf_counter()
    try:
        asyncio.run(main(target))
    except Exception as exc:
        print(f"bench/drill.py: could not measure: {exc!r}", file=sys.stderr)
        raise SystemExit(1) from exc
    print(f"# total {time.perf_counter() - started:.1f} s", file=sys.stderr)
