"""``krise demo``: the flood drill playing in a running console, for a first look.

A newcomer runs the console on the embedded defaults and sees the whole system move
within a minute: posts from the public arrive on Facebook, SMS, e-mail and the website
form and are sorted into batches; simulated staff terminals come online and acknowledge
the freeze; the scripted leadership writes, approves and publishes messages, answers the
questions and corrects a rumour; channels deliver to local sinks (nothing leaves the
machine, everything says ``ØVELSE``).

The console owns its runtime; this module gives it two calls::

    plan = plan_demo(settings)                       # the scenario, settings and clock
    runtime = ConsoleRuntime(plan.settings, **plan.runtime_kwargs())
    await runtime.start()
    demo = await start_demo(runtime, plan)           # player, sinks and staff, in the background
    ...                                              # demo.player.pause() / resume() / jump()
    await demo.stop()                                # before runtime.stop()

The drill's clock starts now and runs ``speed`` times faster than the wall clock
(default 10: the scenario's first hour in six minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from krise_tui.config import Settings
from krise_tui.drill.clock import VirtualClock
from krise_tui.drill.player import DrillResult, Player, drill_settings
from krise_tui.drill.scenario import LoadedScenario, load_scenario
from krise_tui.runtime import ConsoleRuntime

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "playbooks" / "scenarios"
"""The sample scenarios in a source checkout."""

DEMO_SCENARIO = "flom-sentrum.yaml"
DEMO_RESPONSE = "god"
DEMO_SPEED = 10.0


@dataclass(frozen=True)
class DemoPlan:
    """What the console needs to start a demo runtime, and what the player will play."""

    loaded: LoadedScenario
    settings: Settings
    clock: VirtualClock
    directory: Path
    response: str | None

    def runtime_kwargs(self) -> dict[str, Any]:
        """``ConsoleRuntime(plan.settings, **plan.runtime_kwargs())``: the drill's clock
        and exercise mode (every outgoing text marked ØVELSE)."""
        return {"clock": self.clock, "exercise": True}


def plan_demo(
    base: Settings | None = None,
    *,
    scenario: Path | None = None,
    response: str | None = DEMO_RESPONSE,
    speed: float = DEMO_SPEED,
    directory: Path | None = None,
    lang: str = "nb",
) -> DemoPlan:
    """Plan a demo: the flood scenario (or ``scenario``), a fresh directory under the
    data directory, and a clock that starts now.

    ``response=None`` leaves the leadership's part to the person at the console.
    Raises :class:`~krise_tui.drill.scenario.ScenarioError` for a broken scenario.
    """
    path = scenario or SCENARIO_DIR / DEMO_SCENARIO
    loaded = load_scenario(path)
    started = datetime.now(UTC)
    now = started.replace(second=0, microsecond=0)
    if directory is None:
        root = base.data_dir if base is not None else Path.cwd()
        directory = fresh_directory(root / "demo", started)
    settings = drill_settings(loaded, directory, lang=lang)
    clock = VirtualClock(now, speed=speed, paused=True)  # the player starts it at T+0
    return DemoPlan(loaded, settings, clock, directory, response)


def fresh_directory(parent: Path, now: datetime) -> Path:
    """A new, empty directory under ``parent`` named for ``now`` (``-2``, ``-3`` … when
    that name is taken), created here so that no other demo can have it.

    Two demos started in the same second (or a demo started again at once after a crash)
    must not share a journal: the second would carry on the first one's incident, with
    its bridges and staff journaled as online, and refuse to start.
    """
    parent.mkdir(parents=True, exist_ok=True)
    stem = now.strftime("%Y%m%dT%H%M%SZ")
    for n in itertools.count(1):
        candidate = parent / (stem if n == 1 else f"{stem}-{n}")
        try:
            candidate.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return candidate
    raise AssertionError("unreachable")


@dataclass
class Demo:
    """A demo playing in the background of a console."""

    player: Player
    task: asyncio.Task[DrillResult]

    @property
    def done(self) -> bool:
        """Whether the player has stopped (finished, failed or stopped)."""
        return self.task.done()

    async def stop(self) -> DrillResult | None:
        """Stop the player, its sinks and staff terminals (call before stopping the
        runtime); the result when the drill got to its end."""
        self.player.stop()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                return await asyncio.wait_for(asyncio.shield(self.task), 30)
            except TimeoutError:
                self.task.cancel()
        return None


async def start_demo(runtime: ConsoleRuntime, plan: DemoPlan) -> Demo:
    """Start the demo's player, sinks and simulated staff beside a running console.

    The runtime must have been made from ``plan`` (its settings and clock) and started.
    Raises :class:`~krise_tui.drill.sinks.DrillRefused` when something could reach a
    real platform (a configured broker, a bridge already online).
    """
    player = Player(
        plan.loaded,
        directory=plan.directory,
        response=plan.response,
        runtime=runtime,
        clock=plan.clock,
    )
    task = asyncio.get_running_loop().create_task(player.run(), name="drill-demo")
    ready = asyncio.ensure_future(_started(player))
    done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()  # raises why it could not start
    return Demo(player, task)


async def _started(player: Player) -> None:
    """Until the player has its staff and bridges up (its first log line)."""
    started = asyncio.Event()
    player.on_log(lambda entry: started.set())
    await started.wait()
