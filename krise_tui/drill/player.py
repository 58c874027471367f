"""The drill player: a scenario's timeline against a real console, on a virtual clock.

:class:`Player` starts (or joins) a :class:`~krise_tui.runtime.ConsoleRuntime` in
exercise mode on its own private broker and plays the scenario:

- **posts** go on ``krise/v1/{org}/channel/{ch}/in`` as the ``bridge-drill`` broker user,
  exactly as a channel's bridge sends them (the console cannot tell a drill post from a
  real one, which is the point);
- **world events** take a channel's platform down and up again
  (:mod:`krise_tui.drill.sinks`), restart the broker, or go into the timeline;
- **staff terminals** connect, disconnect and acknowledge (:mod:`krise_tui.drill.staff`);
- a **scripted response**, when chosen, carries out the leadership's actions
  (:mod:`krise_tui.drill.actions`).

Every channel ends in a local sink and every outgoing text is marked ``ØVELSE``
(exercise); the player refuses to start while anything could reach a real platform
(:func:`krise_tui.drill.sinks.refusals`).

**Speed.** ``speed=None`` (``--speed max``) runs stepped: the clock moves from one
timeline step to the next, and before it moves again the player waits until the console
has dealt with everything the step caused — posts journaled, triaged, batched and
matched, the outbox published, every channel's receipt journaled, every terminal's
acknowledgement in. Nothing then depends on how fast the machine is: the same scenario
gives the same journal and the same final state hash (printed at the end), which is what
makes a recorded incident a regression test. A number (``speed=10``) runs live: the
clock runs with the wall clock, ``speed`` times faster; :meth:`Player.pause`,
:meth:`Player.resume`, :meth:`Player.jump` and :meth:`Player.set_speed` steer it (the
console's drill controls).

The console's own timers (freeze expiry, reminders, overdue deliveries) are ticked by
the player on the drill's clock, every :data:`TICK` of drill time and at every step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from krise_tui.bus import topics
from krise_tui.bus.broker import BrokerKind, MosquittoBroker
from krise_tui.bus.envelope import write_key_pair
from krise_tui.bus.login import resolve_login
from krise_tui.bus.session import BusSession, LinkState, SessionConfig
from krise_tui.config import BrokerSettings, Settings
from krise_tui.core.features.freeze import StaffAcknowledged
from krise_tui.core.features.inbound import InboundRejected, PostReceived
from krise_tui.core.features.messages import DeliveryReceipt
from krise_tui.core.features.outbox import OutboxConfirmed, Target
from krise_tui.core.kernel import Context, EventBase
from krise_tui.core.state import IncidentState, state_hash
from krise_tui.drill.actions import ActionResult, Script
from krise_tui.drill.clock import ActorIds, VirtualClock
from krise_tui.drill.scenario import (
    DEFAULT_VIA,
    Action,
    LoadedScenario,
    PostInject,
    StaffInject,
    WorldEvent,
)
from krise_tui.drill.sinks import (
    DEFAULT_OUTAGE,
    DrillBridges,
    DrillRefused,
    SinkItem,
    locality,
    refusals,
)
from krise_tui.drill.staff import StaffFleet, unit
from krise_tui.journal.store import JOURNAL_FILE
from krise_tui.playbook.models import ChannelKind
from krise_tui.runtime import ConsoleRuntime
from krise_tui.wire.delivery import ReceiptStatus
from krise_tui.wire.inbound import InboundPost

log = logging.getLogger(__name__)

TICK = timedelta(seconds=30)
"""The console's timers are ticked at least this often (drill time)."""

SETTLE_TIMEOUT = 120.0
"""Wall seconds the player waits for the console to deal with one step before it gives
up and says what it was waiting for."""

RUN_FILE = "drill-run.json"
"""Beside the journal: what was played (the recorder reads it)."""

LOG_FILE = "drill-log.json"
"""Beside the journal: the drill's own timeline (world events, actions, staff)."""

EMBEDDING_CACHES = ("embeddings-questions.sqlite3", "embeddings-rumours.sqlite3")
"""The console's embedding caches in its data directory (ConsoleRuntime's file names):
a drill reuses vectors of earlier runs so a replay does not embed every post again."""

DRILL_TASK = "drill"
"""The name of the task the player runs in (for logs and tracebacks)."""

_ORDER = {"world": 0, "action": 1, "staff": 2, "post": 3}
"""Within one step: the world changes first, then the leadership acts, then staff come
and go, then the public posts."""


@dataclass
class DrillConsole(ConsoleRuntime):
    """The console runtime of a drill: every command's events get ids from the id source
    of the actor they are decided for (:class:`~krise_tui.drill.clock.ActorIds`), so a
    replay journals the same ids whoever leads a group commit."""

    ids: ActorIds | None = None

    def context(self, actor: str | None = None) -> Context:
        """The engine context, with the actor's own deterministic id source."""
        ctx = super().context(actor)
        if self.ids is None:
            return ctx
        return replace(ctx, new_id=self.ids.source(ctx.actor))


class DrillStuck(Exception):
    """The console did not finish a step in time; the message says what was missing."""


@dataclass(frozen=True)
class LogEntry:
    """One line of the drill's own timeline."""

    at: datetime
    offset: timedelta
    kind: str
    """``world``, ``action``, ``staff``, ``posts``, ``broker`` or ``note``."""
    text: str
    ok: bool = True
    detail: str = ""
    world: dict[str, Any] | None = None
    """A world event as the scenario wrote it (the recorder replays it)."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        out = {
            "at": self.at.isoformat(),
            "offset": self.offset.total_seconds(),
            "kind": self.kind,
            "text": self.text,
            "ok": self.ok,
            "detail": self.detail,
        }
        if self.world is not None:
            out["world"] = self.world
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogEntry:
        """Parse :meth:`to_json`."""
        return cls(
            datetime.fromisoformat(str(data["at"])),
            timedelta(seconds=float(data["offset"])),
            str(data["kind"]),
            str(data["text"]),
            bool(data.get("ok", True)),
            str(data.get("detail", "")),
            data.get("world"),
        )


@dataclass
class DrillResult:
    """What a finished drill leaves behind."""

    loaded: LoadedScenario
    response: str | None
    directory: Path
    journal: Path
    start: datetime
    end: datetime
    state_hash: str
    event_count: int
    log: list[LogEntry]
    actions: list[ActionResult]
    sinks: dict[str, list[SinkItem]]
    wall_seconds: float


@dataclass(order=True)
class _Item:
    offset: timedelta
    order: int
    index: int
    kind: str = field(compare=False)
    payload: Any = field(compare=False)


def drill_settings(
    loaded: LoadedScenario, directory: Path, *, broker: str = "auto", lang: str = "nb"
) -> Settings:
    """Console settings for a drill: everything in ``directory``, a private broker, the
    scenario's org file and playbook, bridges run by the drill (its sinks).

    Every path is given here, so a ``krise.toml`` or ``KRISE_*`` variable of a real
    console (its journal, its broker) cannot leak into a drill.
    """
    org = loaded.org
    return Settings(
        org=org.slug,
        org_name=org.name,
        data_dir=directory,
        journal=directory / JOURNAL_FILE,
        keys_dir=directory / "keys",
        public_key=directory / "keys" / "console.pub",
        operator=None,
        incident_title=loaded.scenario.title,
        lang=lang,
        org_file=loaded.org_path,
        playbook=loaded.playbook_path,
        bridges_in_process=False,
        strict_roster=False,
        journal_head_copies=[],
        broker=BrokerSettings(host=None, embedded=broker),
    )


def default_cache_dir() -> Path:
    """Where drills keep embeddings between runs (``$XDG_CACHE_HOME/krise/drill``)."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "krise" / "drill"


def _seed_caches(cache_dir: Path, directory: Path) -> None:
    for name in EMBEDDING_CACHES:
        source = cache_dir / name
        if source.exists():
            shutil.copyfile(source, directory / name)


def _merge_caches(cache_dir: Path, directory: Path) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name in EMBEDDING_CACHES:
        fresh = directory / name
        if not fresh.exists():
            continue
        target = cache_dir / name
        with contextlib.closing(sqlite3.connect(target)) as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, v BLOB)")
            db.execute("ATTACH DATABASE ? AS run", (str(fresh),))
            db.execute("INSERT OR IGNORE INTO vectors SELECT key, v FROM run.vectors")
            db.commit()
            db.execute("DETACH DATABASE run")


class Player:
    """Plays a scenario against a console (see the module docstring).

    ``runtime``: join a console that is already running (the demo, a drill started
    from the console); it must be in exercise mode and run on the ``clock`` given.
    Without one the player starts its own in ``directory``, which must be new or empty.
    """

    def __init__(
        self,
        loaded: LoadedScenario,
        *,
        directory: Path,
        response: str | None = None,
        speed: float | None = None,
        runtime: ConsoleRuntime | None = None,
        clock: VirtualClock | None = None,
        cache_dir: Path | None = None,
        broker: str = "auto",
        simulate_staff: bool = True,
        settle_timeout: float = SETTLE_TIMEOUT,
    ) -> None:
        scenario = loaded.scenario
        if response is not None and response not in scenario.responses:
            known = ", ".join(scenario.responses) or "none"
            raise ValueError(f"scenario {scenario.id} has no response {response!r} ({known})")
        self.loaded = loaded
        self.scenario = scenario
        self.directory = Path(directory)
        self.response = response
        self.clock = clock or VirtualClock(scenario.start, speed=speed, paused=True)
        self.start = self.clock.start
        """T+0 (the scenario's start, or the clock's when one is given: a demo starts now)."""
        self.runtime = runtime
        self._own_runtime = runtime is None
        self.cache_dir = cache_dir
        self.broker_kind = broker
        self.simulate_staff = simulate_staff and scenario.staff.simulate
        self.settle_timeout = settle_timeout
        self.log: list[LogEntry] = []
        self.bridges = DrillBridges()
        self.fleet: StaffFleet | None = None
        self.script: Script | None = None
        self.injector: BusSession | None = None
        self.finished = asyncio.Event()
        """Set when the player has stopped and its result is ready."""
        self.ended = asyncio.Event()
        """Set when the timeline is played to its end (a joined console keeps running)."""
        self.result: DrillResult | None = None
        self._listeners: list[Callable[[LogEntry], object]] = []
        self._changed = asyncio.Event()
        self._control = asyncio.Event()
        self._jump_to: timedelta | None = None
        self._stop = False
        self._stopped = asyncio.Event()
        self._held = False
        """Paused by :meth:`pause` (not only held while the console starts)."""
        self._timeline_started = False
        self._injector_task: asyncio.Task[None] | None = None
        # What the console still has to journal, tracked from its events.
        self._pending_posts: dict[str, deque[str]] = {}
        self._pending_acks: dict[str, int] = {}
        self._presence: dict[str, bool] = {}
        self._handed: dict[str, int] = {}
        self._finals: dict[str, int] = {}
        self.posts_published = 0

    # --- control (the console's drill keys) -------------------------------------------------

    @property
    def offset(self) -> timedelta:
        """How far into the drill the clock is."""
        return self.clock.offset

    @property
    def paused(self) -> bool:
        """Whether the drill stands still (paused, or the console is still starting)."""
        return self.clock.paused

    def on_log(self, listener: Callable[[LogEntry], object]) -> None:
        """Call ``listener(entry)`` for every line of the drill's timeline, as it happens."""
        self._listeners.append(listener)

    def pause(self) -> None:
        """Stop the drill's clock (nothing more is played until :meth:`resume`)."""
        self._held = True
        self.clock.pause()
        self._control.set()

    def resume(self) -> None:
        """Let the drill's clock run again."""
        self._held = False
        if self._timeline_started:
            self.clock.resume()
        self._control.set()

    def set_speed(self, speed: float | None) -> None:
        """Run live at ``speed`` × the wall clock, or stepped as fast as possible (``None``)."""
        if speed is None:
            self.clock.set_stepped()
        else:
            self.clock.set_speed(speed)
        self._control.set()

    def jump(self, offset: timedelta) -> None:
        """Play everything up to ``offset`` at once, then go on from there."""
        if offset < self.offset:
            raise ValueError("a drill cannot go back: what happened is journaled")
        self._jump_to = min(offset, self.scenario.duration)
        self._control.set()

    def stop(self) -> None:
        """End the drill at the next step (what was played stays journaled)."""
        self._stop = True
        self._stopped.set()
        self._control.set()

    # --- running ------------------------------------------------------------------------

    async def run(self) -> DrillResult:
        """Play the whole scenario; the result carries the final state hash."""
        task = asyncio.create_task(self._main(), name=DRILL_TASK)
        try:
            return await task
        except asyncio.CancelledError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise

    async def _main(self) -> DrillResult:
        wall = time.monotonic()
        runtime = await self._start()
        try:
            await self._setup(runtime)
            await self._timeline(runtime)
            await self._settle("the end")
            digest = state_hash(runtime.state)
            events = runtime.state.event_count
            end = self.clock.now()
            self._note("note", f"Øvelsen er slutt. Tilstand {digest[:12]}")
            self.ended.set()
            if not self._own_runtime:
                # A console the drill joined keeps its bridges and staff until told.
                await self._stopped.wait()
        finally:
            await self._shutdown()
        sinks = {name: list(sink.items) for name, sink in self.bridges.sinks.items()}
        result = DrillResult(
            loaded=self.loaded,
            response=self.response,
            directory=self.directory,
            journal=runtime.settings.journal_path,
            start=self.start,
            end=end,
            state_hash=digest,
            event_count=events,
            log=list(self.log),
            actions=list(self.script.results) if self.script else [],
            sinks=sinks,
            wall_seconds=time.monotonic() - wall,
        )
        self._write_files(result)
        self.result = result
        self.finished.set()
        return result

    async def _start(self) -> ConsoleRuntime:
        overrides = {k: v.endpoint for k, v in self.scenario.channels.items()}
        if self.runtime is not None:
            runtime = self.runtime
            if not runtime.exercise:
                raise DrillRefused(["the console is not in exercise mode (exercise=True)"])
            reasons = refusals(runtime, overrides=overrides, base=runtime.settings.data_dir)
            if reasons:
                raise DrillRefused(reasons)
            self.directory.mkdir(parents=True, exist_ok=True)
            runtime.on_state(self._on_state)
            return runtime
        directory = self.directory
        if directory.exists() and any(directory.iterdir()):
            raise FileExistsError(
                f"{directory} is not empty: a drill starts from an empty journal (choose a "
                "new directory)"
            )
        reasons = [
            f"channel {channel_id}: {why}"
            for channel_id, endpoint in overrides.items()
            if (why := locality(endpoint, kind=self._kind(channel_id), base=directory))
        ]
        if reasons:
            raise DrillRefused(reasons)
        directory.mkdir(parents=True, exist_ok=True)
        if self.cache_dir is not None:
            await asyncio.to_thread(_seed_caches, self.cache_dir, directory)
        settings = drill_settings(self.loaded, directory, broker=self.broker_kind)
        # The drill's own signing keys, made for this run (a real console's first start
        # warns when it makes them, since its terminals need the new key: not news here).
        await asyncio.to_thread(write_key_pair, settings.keys_path)
        ids = ActorIds(f"krise-drill:{self.scenario.seed}")
        runtime = DrillConsole(
            settings,
            clock=self.clock,
            new_id=ids,
            ids=ids,
            exercise=True,
            # The player ticks the timers on the drill's clock; their own loop must not.
            timer_interval=10**9 if self.clock.stepped else 1.0,
        )
        runtime.on_state(self._on_state)
        self.runtime = runtime
        try:
            await runtime.start()
        except BaseException:
            await runtime.stop()
            raise
        return runtime

    def _kind(self, channel_id: str) -> ChannelKind:
        try:
            return self.loaded.org.channel(channel_id).kind
        except KeyError:
            return ChannelKind.WEBHOOK

    async def _setup(self, runtime: ConsoleRuntime) -> None:
        """Bridges, injector, staff terminals; wait until the console has seen them all."""
        if runtime.session is None or runtime.signer is None:
            raise RuntimeError("the drill needs the console's bus (start_bus=True)")
        await runtime.session.wait_connected(30)
        self._presence["console/console"] = True
        # A channel whose bridge is online already is someone else's: it may be real.
        online = [
            k.split("/", 1)[1].removeprefix("bridge-")
            for k, up in runtime.state.inbound.presence.items()
            if up and k.startswith("bridge/") and k != "bridge/bridge-drill"
        ]
        foreign = [c for c in online if c not in runtime.bridges]
        if foreign:
            raise DrillRefused(
                [f"channel {c} already has a bridge online (krise bridge {c}?)" for c in foreign]
            )
        overrides = {k: v.endpoint for k, v in self.scenario.channels.items()}
        await self.bridges.start(
            runtime,
            clock=self.clock,
            directory=self.directory,
            overrides=overrides,
            on_receipt=lambda _r: self._changed.set(),
        )
        await self.bridges.wait_connected()
        for channel in self.bridges.bridges:
            self._presence[f"bridge/bridge-{channel}"] = True
        self.injector = self._injector(runtime)
        self._injector_task = asyncio.create_task(self.injector.run(), name="drill-injector")
        await self.injector.wait_connected(30)
        self.fleet = self._fleet(runtime)
        await self._staff_at_start(self.fleet)
        if self.response is not None:
            self.script = Script(runtime, self.loaded)
        await self._seeded(runtime)
        await self._settle("the start")
        self._note("note", f"Øvelsen starter: {self.scenario.title}")

    def _injector(self, runtime: ConsoleRuntime) -> BusSession:
        settings = runtime.settings

        def login() -> Any:
            return resolve_login(settings, "bridge", "drill", for_console=True)

        first = login()
        return BusSession(
            SessionConfig(
                host=first.host,
                port=first.port,
                client_id=f"krise-drill-{settings.org}",
                username=first.username,
                password=first.password,
                keepalive=30,
                backoff_max=2.0,
                protocol=first.protocol,
                resolve=login,
            ),
            _ignore,
        )

    def _fleet(self, runtime: ConsoleRuntime) -> StaffFleet:
        settings = runtime.settings
        org = self.loaded.org
        departments: dict[str, str | None] = {
            str(s): g.id for g in org.staff_groups for s in g.staff or []
        }
        setup = self.scenario.staff
        assert runtime.signer is not None
        return StaffFleet(
            org=settings.org,
            public_key=runtime.signer.public_key,
            login_for=lambda staff_id: resolve_login(settings, "staff", staff_id),
            clock=self.clock,
            seed=f"krise-drill:{self.scenario.seed}",
            ack_within=(setup.ack_within[0], setup.ack_within[1]),
            simulate=self.simulate_staff,
            departments=departments,
            on_change=self._changed.set,
            grid=(self.start, TICK),
        )

    def staff_ids(self) -> list[str]:
        """The simulated terminals: the org's staff first, then ``sim-00001``…"""
        from krise_tui.bus.broker import sim_staff_id
        from krise_tui.drill.scenario import staff_login_problem

        org = self.loaded.org
        roster = [str(s) for g in org.staff_groups for s in g.staff or []]
        ids = [s for s in roster if staff_login_problem(s, set(roster)) is None]
        n = 1
        while len(ids) < self.scenario.staff.terminals:
            ids.append(sim_staff_id(n))
            n += 1
        return ids[: self.scenario.staff.terminals]

    async def _staff_at_start(self, fleet: StaffFleet) -> None:
        setup = self.scenario.staff
        ids = self.staff_ids()
        if not ids:
            return
        seed = f"krise-drill:{self.scenario.seed}"
        ranked = sorted(ids, key=lambda s: unit(seed, "role", s))
        offline = ranked[: setup.offline]
        never = ranked[setup.offline : setup.offline + setup.never_ack]
        fleet.never_acknowledge(never)
        await fleet.connect(ids)
        for staff_id in ids:
            self._presence[f"staff/{staff_id}"] = True
        if offline:
            # They were there and dropped off: the roll-call shows them as offline.
            await self._settle("staff online")
            await fleet.disconnect(offline)
            for staff_id in offline:
                self._presence[f"staff/{staff_id}"] = False
        self._note("staff", f"{len(ids) - len(offline)} ansatte pålogget, {len(offline)} frakoblet")

    async def _seeded(self, runtime: ConsoleRuntime) -> None:
        """Wait until the playbook's anticipated questions are seeded (or batching is off)."""
        batching = runtime.batching
        wanted = {q.id for q in self.loaded.playbook.questions}

        def ready() -> bool:
            if batching is None or batching.error is not None:
                return True
            seeded = {b.seed_question_id for b in runtime.state.questions.batches.values()}
            return batching.ready and wanted <= seeded

        await self._until(ready, "the playbook's questions to be seeded")

    # --- the timeline -----------------------------------------------------------------------------

    def _items(self) -> list[_Item]:
        items: list[_Item] = []
        for index, inject in enumerate(self.scenario.timeline):
            kind = "post" if inject.post else "world" if inject.world else "staff"
            items.append(_Item(inject.at, _ORDER[kind], index, kind, inject))
        if self.response is not None:
            for index, action in enumerate(self.scenario.responses[self.response].actions):
                items.append(_Item(action.at, _ORDER["action"], index, "action", action))
        return sorted(items)

    async def _timeline(self, runtime: ConsoleRuntime) -> None:
        self._timeline_started = True
        if not self._held:
            self.clock.resume()  # a live clock was held at T+0 while the console started
        items = deque(self._items())
        end = self.scenario.duration
        start = self.start
        done: timedelta | None = None
        while not self._stop:
            candidates = [end]
            if items:
                candidates.append(items[0].offset)
            assert self.fleet is not None
            due = self.fleet.next_due()
            if due is not None:
                candidates.append(max(due - start, done or timedelta(0)))
            if done is None:
                candidates.append(timedelta(0))
            else:
                candidates.append((done // TICK + 1) * TICK)
            step = min(candidates)
            await self._advance(step)
            if self._stop:
                break
            batch: list[_Item] = []
            while items and items[0].offset <= step:
                batch.append(items.popleft())
            await self._step(runtime, batch)
            done = step
            if step >= end:
                break

    async def _advance(self, step: timedelta) -> None:
        """Move the clock to ``step`` (stepped), or wait until it gets there (live)."""
        target = self.start + step
        while not self._stop:
            self._control.clear()
            if self.clock.paused:
                await self._control.wait()
                continue
            jump = self._jump_to
            if self.clock.stepped or (jump is not None and jump >= step):
                if self.clock.now() < target:
                    self.clock.set(target)
                return
            if jump is not None:  # passed the jump target: go on live from there
                self._jump_to = None
                jump_at = self.start + jump
                if self.clock.now() < jump_at:
                    self.clock.set(jump_at)
            wait = self.clock.wall_seconds_until(target)
            if wait <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._control.wait(), min(wait, 3600.0))

    async def _step(self, runtime: ConsoleRuntime, batch: list[_Item]) -> None:
        """One step: the world, the leadership, staff, the public; acks due; timers."""
        strict = self.clock.stepped
        posts: list[PostInject] = []
        for item in batch:
            if item.kind == "world":
                await self._world(runtime, item.payload.world)
            elif item.kind == "action":
                await self._act(item.payload)
                if strict:
                    await self._settle(f"the action at {_t(item.offset)}")
            elif item.kind == "staff":
                await self._staff(item.payload.staff)
            elif item.kind == "post":
                posts.append(item.payload.post)
        if posts:
            await self._publish_posts(posts)
        if strict:
            # Live, the public does not wait for the console: only a stepped drill does.
            await self._settle(f"the step at {_t(self.clock.offset)}")
        await self._due_acks()
        await runtime.tick()
        if strict:
            await self._settle(f"the timers at {_t(self.clock.offset)}")

    async def _world(self, runtime: ConsoleRuntime, world: WorldEvent) -> None:
        text = (world.text or {}).get("nb") or ""
        data = world.model_dump(mode="json", exclude_none=True)
        if world.event == "channel_down":
            assert world.channel is not None
            reason = world.reason or DEFAULT_OUTAGE
            self.bridges.set_down(world.channel, reason)
            self._note("world", text or f"{world.channel} er nede", detail=reason, world=data)
        elif world.event == "channel_up":
            assert world.channel is not None
            self.bridges.set_down(world.channel, None)
            self._note("world", text or f"{world.channel} virker igjen", world=data)
        elif world.event == "broker_restart":
            await self._restart_broker(runtime, text, data)
        else:
            detail = f"kilde: {world.source}" if world.source else ""
            self._note("world", text, detail=detail, world=data)

    async def _restart_broker(
        self, runtime: ConsoleRuntime, text: str, data: dict[str, Any]
    ) -> None:
        broker = runtime.brokers.broker
        if not isinstance(broker, MosquittoBroker):
            kind = BrokerKind.AMQTT if broker is not None else "none"
            self._note(
                "broker",
                text or "Megleren startes på nytt",
                ok=False,
                detail=f"not restarted: the {kind} broker keeps no state across a restart",
                world=data,
            )
            return
        await self._settle("the broker restart")
        self._note("broker", text or "Megleren startes på nytt", world=data)
        await broker.stop()
        await broker.start()
        assert runtime.session is not None
        await runtime.session.wait_connected(60)
        await self.bridges.wait_connected(60)
        assert self.injector is not None
        await self.injector.wait_connected(60)
        assert self.fleet is not None

        def back() -> bool:
            assert self.fleet is not None
            return runtime.link_state is LinkState.CONNECTED and not self.fleet.disconnected()

        await self._until(back, "everyone to be back on the broker")
        await self._settle("the broker restart")

    async def _act(self, action: Action) -> None:
        assert self.script is not None
        now = self.clock.now()
        for result in await self.script.perform(action, now):
            self._note("action", f"{result.by}: {result.verb}", ok=result.ok, detail=result.detail)

    async def _staff(self, staff: StaffInject) -> None:
        fleet = self.fleet
        assert fleet is not None
        ids = list(staff.ids)
        if staff.count is not None:
            online = fleet.online_ids()
            if staff.go == "offline":
                ids = online[-staff.count :]
            else:
                known = [s for s in self.staff_ids() if s not in online]
                ids = known[: staff.count]
        if staff.go == "online":
            await fleet.connect(ids)
            for staff_id in ids:
                self._presence[f"staff/{staff_id}"] = True
            self._note("staff", f"{len(ids)} ansatte kobler til", detail=", ".join(ids[:10]))
        elif staff.go == "offline":
            await fleet.disconnect(ids)
            for staff_id in ids:
                self._presence[f"staff/{staff_id}"] = False
            self._note("staff", f"{len(ids)} ansatte kobler fra", detail=", ".join(ids[:10]))
        if staff.ack:
            for staff_id in ids:
                await self._acknowledge(staff_id, staff.seq)

    async def _acknowledge(self, staff_id: str, seq: int | None) -> None:
        assert self.fleet is not None
        chosen = self.fleet.to_acknowledge(staff_id, seq)
        if chosen is not None:
            # Expected before it is sent: the console may journal it before the PUBACK.
            self._pending_acks[staff_id] = chosen
            await self.fleet.acknowledge(staff_id, chosen)

    async def _due_acks(self) -> None:
        fleet = self.fleet
        assert fleet is not None
        for _ in range(100):  # an acknowledgement can bring the next one due at once
            due = fleet.due(self.clock.now())
            if not due:
                return
            for staff_id in due:
                await self._acknowledge(staff_id, None)
            if self.clock.stepped:
                await self._settle(f"acknowledgements at {_t(self.clock.offset)}")

    async def _publish_posts(self, posts: list[PostInject]) -> None:
        assert self.injector is not None
        org = self.loaded.org.slug
        now = self.clock.now()
        for post in posts:
            kind = self._kind(post.channel).value
            wire = InboundPost(
                id=post.id,
                text=post.text,
                author=post.author,
                received_at=now,
                reply_to=post.reply_to,
                kind=post.via or DEFAULT_VIA.get(kind, "post"),
                meta=dict(post.meta),
            )
            key = f"{post.channel}:{post.id}"
            self._pending_posts.setdefault(post.channel, deque()).append(key)
            await self.injector.publish(
                topics.channel_in(org, post.channel), wire.model_dump_json(), qos=1
            )
            self.posts_published += 1
        channels = sorted({p.channel for p in posts})
        self._note("posts", f"{len(posts)} innlegg", detail=", ".join(channels))

    # --- waiting for the console -------------------------------------------------------------

    def _on_state(self, state: IncidentState, events: list[EventBase]) -> None:
        """Follow what the console journals (a state listener: cheap, never blocks)."""
        for event in events:
            if isinstance(event, PostReceived):
                pending = self._pending_posts.get(event.channel)
                if pending and event.key in pending:
                    pending.remove(event.key)
            elif isinstance(event, StaffAcknowledged):
                if self._pending_acks.get(event.staff_id) == event.seq:
                    del self._pending_acks[event.staff_id]
            elif isinstance(event, InboundRejected):
                self._rejected(event)
            elif isinstance(event, OutboxConfirmed):
                effect = state.outbox.effects.get(event.effect_id)
                if effect is not None and effect.publish.target is Target.CHANNEL_OUT:
                    self._handed[event.effect_id] = self._handed.get(event.effect_id, 0) + 1
            elif isinstance(event, DeliveryReceipt):
                receipt = event.receipt
                final = receipt.status is ReceiptStatus.DELIVERED or (
                    receipt.status is ReceiptStatus.FAILED and (receipt.final or receipt.permanent)
                )
                if final:
                    self._finals[event.effect_id] = self._finals.get(event.effect_id, 0) + 1
        self._changed.set()

    def _rejected(self, event: InboundRejected) -> None:
        parsed = topics.parse(event.topic)
        if parsed is None:
            return
        if parsed.kind == "channel.in" and parsed.channel:
            pending = self._pending_posts.get(parsed.channel)
            if pending:
                key = pending.popleft()  # the broker keeps one publisher's order
                self._note("posts", f"innlegg {key} avvist", ok=False, detail=event.reason)
        elif parsed.kind == "staff.ack" and parsed.member_id:
            self._pending_acks.pop(parsed.member_id, None)
            self._note(
                "staff", f"kvittering fra {parsed.member_id} avvist", ok=False, detail=event.reason
            )

    def _waiting(self) -> list[str]:
        """What the console has not dealt with yet (empty: the step is done)."""
        runtime = self.runtime
        assert runtime is not None
        state = runtime.state
        out: list[str] = []
        writer = runtime.writer
        if writer is not None and writer.backlog:
            out.append(f"{writer.backlog} bus messages to be journaled")
        posts = sum(len(q) for q in self._pending_posts.values())
        if posts:
            out.append(f"{posts} posts to arrive")
        if self._pending_acks:
            out.append(f"acknowledgements from {', '.join(sorted(self._pending_acks)[:5])}")
        presence = state.inbound.presence
        wrong = [k for k, up in self._presence.items() if presence.get(k, False) is not up]
        if wrong:
            out.append(f"presence of {', '.join(sorted(wrong)[:5])}")
        pending = state.outbox.pending()
        if pending:
            out.append(f"{len(pending)} outbox entries to be published")
        bridged = set(self.bridges.bridges) | set(runtime.bridges)
        unfinished = [
            effect_id
            for effect_id, handed in self._handed.items()
            if handed > self._finals.get(effect_id, 0)
            and (effect := state.outbox.effects.get(effect_id)) is not None
            and effect.publish.channel in bridged
        ]
        if unfinished:
            out.append(f"receipts for {len(unfinished)} deliveries")
        current = state.freeze.current
        fleet = self.fleet
        if (
            current is not None
            and fleet is not None
            and not any(e.publish.target is Target.FREEZE for e in pending)
        ):
            lagging = fleet.lagging(current.seq)
            if lagging:
                out.append(f"freeze notice {current.seq} on {len(lagging)} staff terminals")
        return out

    async def _settle(self, what: str) -> None:
        """Wait until the console has dealt with everything so far (see the docstring)."""
        runtime = self.runtime
        assert runtime is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settle_timeout
        while True:
            if runtime.stopped.is_set():
                raise DrillStuck(f"the console stopped: {runtime.concerns.get('fatal', '?')}")
            await self._until(
                lambda: not self._waiting(), f"the console to finish {what}", deadline=deadline
            )
            count = runtime.state.event_count
            await self._flush_services(runtime, deadline)
            if not self._waiting() and runtime.state.event_count == count:
                return

    async def _flush_services(self, runtime: ConsoleRuntime, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        for service in (runtime.batching, runtime.matching):
            if service is None or service.error is not None:
                continue  # not running (its model is missing): nothing will come from it
            remaining = max(0.1, deadline - loop.time())
            try:
                await asyncio.wait_for(service.flush(), remaining)
            except TimeoutError:
                raise DrillStuck(
                    f"{type(service).__name__} did not finish its queue in time"
                ) from None
        if runtime.writer is not None:
            await asyncio.wait_for(runtime.flush_inbound(), max(0.1, deadline - loop.time()))

    async def _until(
        self, predicate: Callable[[], bool], what: str, *, deadline: float | None = None
    ) -> None:
        """Wait (on the console's and the drill's own change signals) until ``predicate``."""
        loop = asyncio.get_running_loop()
        end = deadline if deadline is not None else loop.time() + self.settle_timeout
        while not predicate():
            self._changed.clear()
            if predicate():
                return
            remaining = end - loop.time()
            if remaining <= 0:
                missing = "; ".join(self._waiting()) or "?"
                raise DrillStuck(f"waited {self.settle_timeout:.0f} s for {what} ({missing})")
            with contextlib.suppress(TimeoutError):
                # The bus gives no signal when a connection comes back: look again soon.
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))

    # --- the end -------------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        """Stop the console first (nothing after the end is journaled), then the rest."""
        runtime = self.runtime
        if self._own_runtime and runtime is not None and runtime.session is not None:
            await runtime.session.stop()  # from here on the console journals nothing new
        await self.bridges.stop()
        if self.fleet is not None:
            await self.fleet.stop()
        if self.injector is not None:
            await self.injector.stop()  # ends its task too
        if self._own_runtime and runtime is not None:
            await runtime.stop()
        if self._own_runtime and self.cache_dir is not None:
            try:
                await asyncio.to_thread(_merge_caches, self.cache_dir, self.directory)
            except (OSError, sqlite3.Error) as exc:
                log.warning("could not keep the drill's embeddings in %s: %s", self.cache_dir, exc)

    def _write_files(self, result: DrillResult) -> None:
        scenario = self.scenario
        run = {
            "scenario": str(self.loaded.path.resolve()),
            "scenario_id": scenario.id,
            "response": self.response,
            "playbook": str(self.loaded.playbook_path),
            "org": str(self.loaded.org_path),
            "start": self.start.isoformat(),
            "duration": scenario.duration.total_seconds(),
            "seed": scenario.seed,
            "staff": scenario.staff.model_dump(mode="json"),
            "state_hash": result.state_hash,
            "event_count": result.event_count,
        }
        (self.directory / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
        (self.directory / LOG_FILE).write_text(
            json.dumps([e.to_json() for e in result.log], indent=1, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )

    def _note(
        self,
        kind: str,
        text: str,
        *,
        ok: bool = True,
        detail: str = "",
        world: dict[str, Any] | None = None,
    ) -> None:
        entry = LogEntry(self.clock.now(), self.clock.offset, kind, text, ok, detail, world)
        self.log.append(entry)
        for listener in list(self._listeners):
            try:
                listener(entry)
            except Exception:
                log.exception("drill log listener failed")


async def _ignore(topic: str, payload: bytes, retained: bool) -> None:
    """The injector subscribes to nothing."""


def _t(offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    return f"T+{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
