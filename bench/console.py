"""Console benchmarks: view keys and redraws with a big incident, and the cold start.

Run as ``python bench/console.py`` (bounded: about 90 s of CPU, one core at a time:
about two minutes on an idle two-core machine, more when it is shared; every wait has a
deadline). ``--profile`` also prints where a loaded console's time goes (cProfile, to
stderr). One line per figure:
``FIGURE: measured=V UNIT baseline=V UNIT ratio=R min=V max=V``; each figure is the
median of :data:`RUNS` runs (min/max: of the measured runs), the baseline the median of
as many runs in the same invocation.

Two journals are prepared once per invocation (not timed), through a real
:class:`ConsoleRuntime` (``start_bus=False``, a fixed clock, deterministic ids) on the
sample organisation and the flood playbook, as ``tests/test_console_snapshots.py``
does: the incident opened from the playbook (with its freeze), the playbook's
anticipated questions seeded, a message approved by a second person and published.

- *loaded*: on top of that, :data:`QUESTIONS` posts from the public arriving over 40
  minutes, each triaged on arrival (the engine's reaction; every one comes out a
  service question) and placed in a batch in the same journal transaction
  (``AssignToBatch``, as the batching service journals it): the seeded batches and
  :data:`TOPICS` more with Zipf-like sizes (the largest 1,235 questions), plus
  :data:`SINGLETONS` questions alone in a batch of their own, 1,307 open batches in
  all; and :data:`STAFF` staff terminals in the roster (staff id -> department), 90 %
  online and 70 % acknowledging the freeze notice (presence and acks as they come off
  the bus). About 31,600 events.
- *empty* (the baseline): the same incident with no posts and only the org file's own
  three staff (no terminal seen).

The batcher's operations are not journaled with the assignments (``op={}``): at start
the console rebuilds its batcher from them, and replaying 10,000 additions would embed
10,000 texts with the neural model in a worker thread during the measurement. So the
console measured here never loads the model (a ``#`` line says whether it did).

The view figures come from one console per journal under ``App.run_test()`` at
:data:`SIZE` (signed in, every view visited once first: the first visit composes the
screen), the loaded one first and then the empty one: a loaded console takes tens of
seconds to start and warm up, too long to start one per run. A run is :data:`CYCLES`
round(s) of the global view keys ``q m s r j o`` plus :data:`REDRAWS` redraw(s) of the
questions view. *Painted* means: the view's screen has been drawn by Textual's
compositor and encoded for the terminal as the real driver would (headless Textual
skips only that last step, so the probe does it), with no message, callback or dirty
widget left on that screen. Milliseconds unless said otherwise:

- ``keypress_p50`` / ``keypress_p95``: per run, the median / 95th percentile (linear
  between the two nearest) of the key presses, each from posting the key event (as the
  terminal driver does) until the target view is refreshed from the state and painted.
  The app coalesces redraws (``mark_dirty()`` and a 0.25 s timer); here
  ``action_view`` is wrapped so that right after its ``switch_mode`` it calls
  ``_maybe_redraw()`` at once. So what is measured is dispatch + ``switch_mode`` +
  ``refresh_view()`` + the repaint, *without* the up-to-0.25 s wait for the timer's
  tick, *with* Textual's own ``delay_update`` of 50 ms on every mode switch and the
  wait for the next frame (60 fps), in both cases. ``pilot.press`` is not used: it
  sleeps in ``wait_for_idle`` twice (at least 40 ms) after every key.
- ``keypress_work_p50`` / ``keypress_work_p95``: the synchronous part of the same
  presses: from posting the key event until ``switch_mode`` and ``refresh_view()``
  have returned (the event loop blocked; no 50 ms delay, no frame).
- ``questions_redraw``: one ``refresh_view()`` of the questions view (its cursor on the
  most urgent batch, whose questions fill the right table), the call alone: what the
  app's 0.25 s timer runs while posts keep arriving.
- ``questions_redraw_painted``: the same call until the view is painted and settled
  (the tables' own work done: the batch cursor's highlight refilling the questions
  table, the tables measuring their new rows on idle).
- ``cold_start``: seconds from spawning ``python -c`` (this interpreter) to the
  console's first frame (its first screen, the overview, painted), on the loaded
  journal; baseline: the same for a minimal Textual app with one Static. Both run
  ``App.run(headless=True, auto_pilot=...)``; the auto pilot exits at the mark.
- ``cold_start_ready``: seconds from spawning to the first frame after the runtime has
  started (journal open, state loaded: the sign-in dialog over the overview), on the
  loaded journal; the same baseline. A ``#`` line gives one such start on the empty
  journal.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from figures import figure
from textual import events
from textual.widgets import DataTable

from krise_tui.bus import topics
from krise_tui.bus.envelope import write_key_pair
from krise_tui.clock import FixedClock
from krise_tui.config import Settings
from krise_tui.console.app import ConsoleApp
from krise_tui.console.screens.questions import QuestionsScreen
from krise_tui.console.screens.start import SignInScreen
from krise_tui.core.engine import ReceiveFromBus
from krise_tui.core.features.messages import (
    DraftSaved,
    DraftVariant,
    MessageApproved,
    PublishVersion,
    SaveDraft,
)
from krise_tui.core.features.questions import BATCHED, AssignToBatch, SeedBatch
from krise_tui.core.kernel import Accepted, Rejection
from krise_tui.runtime import ConsoleRuntime, source_for
from krise_tui.text import embed

ROOT = Path(__file__).resolve().parents[1]
ORG_FILE = ROOT / "playbooks" / "orgs" / "eksempel.yaml"
PLAYBOOK = ROOT / "playbooks" / "flom-og-skred.yaml"
OPENED = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)
NOW = OPENED + timedelta(minutes=42)
QUESTIONS = 10_000
TOPICS = 300
"""Batches that many questions join (besides the playbook's seeded ones)."""
SINGLETONS = 1_000
"""Questions alone in a batch of their own (nothing similar came before or after)."""
STAFF = 1_000
CHUNK = 100
"""Posts per journal transaction while preparing (with their assignments)."""
RUNS = 5
CYCLES = 1
"""Rounds of the six view keys per run."""
KEYS = ("q", "m", "s", "r", "j", "o")
VIEW_OF = {
    "o": "overview",
    "q": "questions",
    "m": "messages",
    "s": "staff",
    "r": "rumours",
    "j": "journal",
}
REDRAWS = 1
"""Questions-view redraws per run."""
SIZE = (120, 40)
"""Terminal columns and rows (a laptop's full-screen terminal)."""
DEPARTMENTS = ("administrasjon", "helse-og-omsorg", "oppvekst", "teknisk")
TIMEOUT = 60.0

PHRASES = (
    "Er drikkevannet trygt å drikke i",
    "Må vi evakuere fra",
    "Når åpner skolen igjen i",
    "Hvor kan jeg hente sandsekker i",
    "Er veien stengt ved",
    "Når kommer strømmen tilbake i",
    "Kan barna gå i barnehagen i",
    "Hvor skal vi møte hvis vi må forlate huset i",
    "Er det fare for nye skred ved",
    "Går bussen som vanlig til",
    "Hvem kan hjelpe oss å pumpe ut kjelleren i",
    "Er legekontoret åpent i",
    "Kan jeg kjøre til jobb gjennom",
    "Hva gjør vi med dyrene i",
    "Får vi hjelp til å flytte eldre naboer i",
)
PLACES = (
    "Sørbyen",
    "Hattfjelldal sentrum",
    "Svenskvollen",
    "Elvebakken",
    "Nordre Moen",
    "Fjellheim",
    "Kirkeby",
    "Storvika",
    "Bakkeby",
    "Lia",
    "Øvre Dal",
    "Strandbyen",
)
ENDINGS = ("?", "? Takk for svar.", "? Haster!", "? Vi lurer på dette hele familien.", " nå?")


def note(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1), linear between the two nearest values."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low = math.floor(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def ids(prefix: str) -> Callable[[], str]:
    """Deterministic 32-character hex ids (a prefix of its own per runtime: the journal
    keeps event ids unique)."""
    counter = itertools.count(1)
    width = 32 - len(prefix)
    return lambda: f"{prefix}{next(counter):0{width}x}"


def staff_roster() -> dict[str, str | None]:
    return {f"ansatt-{i:04d}": DEPARTMENTS[i % len(DEPARTMENTS)] for i in range(1, STAFF + 1)}


# --- preparation (not timed) ------------------------------------------------------------


@dataclass
class Case:
    """A prepared journal and how to start a console on it."""

    name: str
    settings: Settings
    roster: dict[str, str | None] | None
    info: dict[str, Any] = field(default_factory=dict)


def settings_for(directory: Path, keys: Path) -> Settings:
    return Settings(
        data_dir=directory,
        keys_dir=keys,
        org_file=ORG_FILE,
        playbook=PLAYBOOK,
        operator="jon",
        lang="nb",
    )


def question_plan(seeded: Sequence[str]) -> list[tuple[str, int, int]]:
    """``(batch, phrase, place)`` per question in arrival order: the seeded batches and
    :data:`TOPICS` more with Zipf-like sizes, plus :data:`SINGLETONS` alone."""
    rng = random.Random(7)
    topics_ = [*seeded, *(f"t{k}" for k in range(TOPICS))]
    weights = [1 / (rank + 1) ** 0.9 for rank in range(len(topics_))]
    total = QUESTIONS - SINGLETONS
    sizes = [max(1, int(total * w / sum(weights))) for w in weights]
    sizes[0] += total - sum(sizes)
    labels = [t for t, n in zip(topics_, sizes, strict=True) for _ in range(n)]
    labels += [f"s{k}" for k in range(SINGLETONS)]
    rng.shuffle(labels)
    place_of = {t: rng.randrange(len(PLACES)) for t in topics_}
    plan = []
    for label in labels:
        if label.startswith("s"):
            plan.append((label, rng.randrange(len(PHRASES)), rng.randrange(len(PLACES))))
        else:
            plan.append((label, hash_index(label, len(PHRASES)), place_of[label]))
    return plan


def hash_index(text: str, n: int) -> int:
    return sum(text.encode()) % n


async def prepare(case: Case) -> None:
    """Journal the incident through the engine (see the module docstring)."""
    clock = FixedClock(OPENED)
    runtime = ConsoleRuntime(
        case.settings,
        clock=clock,
        start_bus=False,
        roster=case.roster,
        new_id=ids("a"),
    )
    await runtime.start()
    try:
        playbook = runtime.playbook
        assert playbook is not None and runtime.state.is_open, "the incident did not open"
        # The anticipated questions, seeded at once (without the batcher's operation:
        # the batching service would otherwise embed them with the model).
        seeds: list[object] = []
        for q in playbook.questions:
            texts = [str(t) for t in q.question.values() if isinstance(t, str)]
            answer = tuple((k, str(v)) for k, v in q.answer.items() if isinstance(v, str))
            seeds.append(
                SeedBatch(f"q-{q.id}", q.id, str(q.question.get("nb") or texts[0]), answer)
            )
        await runtime.submit_many(seeds, actor="system")
        clock.set(OPENED + timedelta(minutes=1))
        await publish(runtime)
        if case.roster is not None:
            await staff_terminals(runtime, clock, case.roster)
        if case.name == "loaded":
            await questions(runtime, clock)
        st = runtime.state
        labels: dict[str, int] = {}
        for q in st.questions.questions.values():
            labels[q.label] = labels.get(q.label, 0) + 1
        case.info = {
            "events": st.event_count,
            "questions": len(st.questions.questions),
            "batched": sum(q.batch_id is not None for q in st.questions.questions.values()),
            "batches": len(st.questions.open_batches()),
            "largest": max((len(b.members) for b in st.questions.batches.values()), default=0),
            "labels": labels,
            "staff": len(case.roster or {}),
            "acked": len(st.freeze.acks),
            "online": sum(st.inbound.presence.values()),
            "batch_ops": len(st.questions.batch_ops),
        }
    finally:
        await runtime.stop()


async def publish(runtime: ConsoleRuntime) -> None:
    """A message drafted by the operator, approved by a second person, published."""
    body = f"Les mer på {runtime.message_policy().website_url}"
    saved = await runtime.save_draft(
        SaveDraft((DraftVariant("nb", "Rv73 er stengt ved Svenskvollen", body),))
    )
    assert isinstance(saved, Accepted) and isinstance(saved.events[0], DraftSaved), saved
    approved = await runtime.approve(
        saved.events[0].draft_id, approver="siri", passphrase="passord-siri"
    )
    assert isinstance(approved, Accepted), approved
    version = approved.events[0]
    assert isinstance(version, MessageApproved)
    published = await runtime.submit(PublishVersion(version.version_id), actor="siri")
    assert isinstance(published, Accepted), published


async def staff_terminals(
    runtime: ConsoleRuntime, clock: FixedClock, roster: dict[str, str | None]
) -> None:
    """Presence and acks from the terminals, as they come off the bus, in bursts."""
    org = runtime.settings.org
    current = runtime.state.freeze.current
    assert current is not None and current.active, "the playbook's freeze is not active"
    commands: list[object] = []
    for i, staff_id in enumerate(sorted(roster)):
        if i % 10 == 0:
            continue  # offline: never seen
        presence = json.dumps({"status": "online"}).encode()
        commands.append(
            ReceiveFromBus(source_for(topics.presence(org, "staff", staff_id)), presence)
        )
        if i % 10 <= 7:
            ack = json.dumps({"staff_id": staff_id, "seq": current.seq}).encode()
            commands.append(ReceiveFromBus(source_for(topics.staff_ack(org, staff_id)), ack))
    for k in range(0, len(commands), 500):
        clock.set(OPENED + timedelta(minutes=1, seconds=k // 50))
        decisions = await runtime.submit_many(commands[k : k + 500], actor="bus")
        refused = [d for d in decisions if isinstance(d, Rejection)]
        assert not refused, refused[:3]


async def questions(runtime: ConsoleRuntime, clock: FixedClock) -> None:
    """Posts from the public, each with the batch the batching service would journal."""
    org = runtime.settings.org
    seeded = sorted(runtime.state.questions.batches)
    plan = question_plan(seeded)
    channels = ("facebook", "mastodon", "sms")
    opened: dict[str, str] = {b: b for b in seeded}
    started = OPENED + timedelta(minutes=2)
    span = timedelta(minutes=39)
    for k in range(0, len(plan), CHUNK):
        clock.set(started + span * (k / len(plan)))
        commands: list[object] = []
        for i in range(k, min(k + CHUNK, len(plan))):
            label, phrase, place = plan[i]
            channel = channels[i % len(channels)]
            post = {
                "id": f"p{i}",
                "text": f"{PHRASES[phrase]} {PLACES[place]}{ENDINGS[i % len(ENDINGS)]}",
                "author": f"@innbygger{i % 977}",
            }
            topic = topics.channel_in(org, channel)
            commands.append(ReceiveFromBus(source_for(topic), json.dumps(post).encode()))
            new = label not in opened
            if new:
                opened[label] = f"b{len(opened) - len(seeded) + 1}"
            score = 1.0 if new else 0.9
            commands.append(AssignToBatch(f"{channel}:p{i}", opened[label], score, new))
        decisions = await runtime.submit_many(commands, actor="bus")
        refused = [d for d in decisions if isinstance(d, Rejection)]
        assert not refused, refused[:3]


# --- the console under run_test ----------------------------------------------------------


class Probe:
    """Notes when each screen is painted (and encodes the frame as the real driver does:
    headless Textual composes every frame but skips turning it into terminal output)."""

    def __init__(self, app: ConsoleApp) -> None:
        self.app = app
        self.painted: dict[int, float] = {}
        self.acted = 0.0
        self._display = app._display
        app._display = self._hooked  # type: ignore[method-assign]

    def _hooked(self, screen: Any, renderable: Any) -> None:
        self._display(screen, renderable)
        app = self.app
        if renderable is None or app._batch_count:
            return
        render = getattr(renderable, "render_segments", None)
        if render is not None:
            render(app.console)
        self.painted[id(screen)] = time.perf_counter()

    def busy(self) -> bool:
        """Whether the screen in front has anything left to do or to paint."""
        app = self.app
        if app._batch_count or app.message_queue_size:
            return True
        screen = app.screen
        if screen._callbacks or screen._dirty_widgets:
            return True
        for node in screen.walk_children(with_self=True):
            if (
                node.message_queue_size
                or node._layout_required
                or node._repaint_required
                or node._scroll_required
                or node._recompose_required
                or node._refresh_styles_required
            ):
                return True
        return False

    async def settled(self, after: float) -> float:
        """Wait until the screen in front is painted after ``after`` and idle; the time of
        its last paint."""
        deadline = time.perf_counter() + TIMEOUT
        while True:
            await asyncio.sleep(0.001)
            last = self.painted.get(id(self.app.screen), 0.0)
            if last > after and not self.busy():
                return last
            if time.perf_counter() > deadline:
                raise TimeoutError("the console did not settle")


@dataclass
class RunResult:
    """One run: a round of the six view keys, and redraws of the questions view."""

    press: list[float] = field(default_factory=list)
    work: list[float] = field(default_factory=list)
    redraw: list[float] = field(default_factory=list)
    redraw_painted: list[float] = field(default_factory=list)


@dataclass
class SessionResult:
    runs: list[RunResult] = field(default_factory=list)
    by_key: dict[str, list[float]] = field(default_factory=dict)
    rows: tuple[int, int] = (0, 0)
    """Rows of the questions view's two tables (batches, questions of the chosen one)."""


async def until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.perf_counter() + TIMEOUT
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def quiet(runtime: ConsoleRuntime, seconds: float = 0.5) -> None:
    """The runtime's background start is done (batcher rebuilt) and nothing is journaled
    for ``seconds``."""
    batching = runtime.batching
    await until(lambda: batching is None or batching.ready or bool(batching.error), "batching")
    last = [time.perf_counter()]
    runtime.on_state(lambda _s, _e: last.__setitem__(0, time.perf_counter()))
    await until(lambda: time.perf_counter() - last[0] > seconds, "a quiet journal")


async def session(case: Case, prefix: str) -> SessionResult:
    """One console on ``case``'s journal: sign in, every view once, then :data:`RUNS`
    runs of :data:`CYCLES` rounds of the view keys, with questions-view redraws."""
    runtime = ConsoleRuntime(
        case.settings,
        clock=FixedClock(NOW),
        start_bus=False,
        roster=case.roster,
        new_id=ids(prefix),
    )
    app = ConsoleApp(runtime)
    probe = Probe(app)
    result = SessionResult()
    view = app.action_view

    def action_view(name: str) -> None:
        view(name)  # switch_mode + mark_dirty, as the key binding does
        app._maybe_redraw()  # the 0.25 s timer's redraw, at once instead of at its tick
        probe.acted = time.perf_counter()

    app.action_view = action_view  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.started, "the console's start")
        signed = await runtime.sign_in("jon", "passord-jon")
        assert not isinstance(signed, Rejection), signed
        await until(lambda: isinstance(app.screen, SignInScreen), "the sign-in dialog")
        app.screen.dismiss("jon")
        await pilot.pause()
        await quiet(runtime)
        driver = app._driver
        assert driver is not None

        async def press(key: str) -> tuple[float, float]:
            """Milliseconds from the key to the view painted, and to refresh_view's end."""
            # The key of the view in front does nothing: a cycle never starts with it.
            assert app.current_mode != VIEW_OF[key], key
            event = events.Key(key, key)
            event.set_sender(app)
            probe.acted = 0.0
            start = time.perf_counter()
            driver.send_message(event)
            while not probe.acted:
                await asyncio.sleep(0.001)
                if time.perf_counter() - start > TIMEOUT:
                    raise TimeoutError(f"key {key} did nothing")
            acted = probe.acted
            painted = await probe.settled(acted)
            assert app.current_mode == VIEW_OF[key], (key, app.current_mode)
            return (painted - start) * 1e3, (acted - start) * 1e3

        for key in KEYS:  # the first visit composes each view
            await press(key)
            if key == "q":
                screen = app.screen
                assert isinstance(screen, QuestionsScreen)
                batches = screen.query_one("#batches", DataTable)
                if batches.row_count > 1:
                    batches.move_cursor(row=1)  # the most urgent batch, its questions beside
                await probe.settled(0.0)
                posts = screen.query_one("#posts", DataTable)
                result.rows = (batches.row_count, posts.row_count)
        gc.collect()
        for _ in range(RUNS):
            run = RunResult()
            for _ in range(CYCLES):
                for key in KEYS:
                    total, work = await press(key)
                    run.press.append(total)
                    run.work.append(work)
                    result.by_key.setdefault(key, []).append(total)
                    if key != "q" or run.redraw:
                        continue
                    screen = app.screen
                    assert isinstance(screen, QuestionsScreen)
                    for _ in range(REDRAWS):
                        start = time.perf_counter()
                        screen.refresh_view()
                        done = time.perf_counter()
                        painted = await probe.settled(done)
                        run.redraw.append((done - start) * 1e3)
                        run.redraw_painted.append((painted - start) * 1e3)
            result.runs.append(run)
    return result


# --- cold start --------------------------------------------------------------------------

HOOK = """
import json, sys, time
T0 = time.monotonic()
marks = {}
def hook(app, first_only):
    display = app._display
    def hooked(screen, renderable):
        display(screen, renderable)
        if renderable is None or app._batch_count:
            return
        render = getattr(renderable, "render_segments", None)
        if render is not None:
            render(app.console)
        now = time.monotonic()
        marks.setdefault("first", now)
        if not first_only and getattr(app, "started", False):
            marks.setdefault("ready", now)
    app._display = hooked
    async def pilot(_pilot):
        import asyncio
        wanted = "first" if first_only else "ready"
        while wanted not in marks:
            await asyncio.sleep(0.001)
        print(json.dumps(marks), flush=True)
        app.exit()
    return pilot
"""

CONSOLE_CHILD = (
    HOOK
    + """
from datetime import datetime
from pathlib import Path
from krise_tui.clock import FixedClock
from krise_tui.config import Settings
from krise_tui.console.app import ConsoleApp
from krise_tui.runtime import ConsoleRuntime
cfg = json.loads(sys.argv[1])
runtime = ConsoleRuntime(
    Settings(**cfg["settings"]),
    clock=FixedClock(datetime.fromisoformat(cfg["now"])),
    start_bus=False,
    roster=cfg["roster"],
)
app = ConsoleApp(runtime)
app.run(headless=True, size=tuple(cfg["size"]), auto_pilot=hook(app, False))
"""
)

TRIVIAL_CHILD = (
    HOOK
    + """
from textual.app import App
from textual.widgets import Static
class Trivial(App):
    def compose(self):
        yield Static("krise")
cfg = json.loads(sys.argv[1])
app = Trivial()
app.run(headless=True, size=tuple(cfg["size"]), auto_pilot=hook(app, True))
"""
)


def spawn(code: str, cfg: dict[str, Any]) -> dict[str, float]:
    """Seconds from spawning ``python -c code`` to each mark the child printed."""
    start = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=ROOT,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr[-2000:]}")
    return {k: v - start for k, v in json.loads(lines[-1]).items()}


def child_config(case: Case) -> dict[str, Any]:
    s = case.settings
    return {
        "settings": {
            "data_dir": str(s.data_dir),
            "keys_dir": str(s.keys_path),
            "org_file": str(s.org_file),
            "playbook": str(s.playbook),
            "operator": s.operator,
            "lang": s.lang,
        },
        "roster": case.roster,
        "now": NOW.isoformat(),
        "size": list(SIZE),
    }


def bench_cold_start(loaded: Case, empty: Case) -> None:
    first: list[float] = []
    ready: list[float] = []
    trivial: list[float] = []
    for _ in range(RUNS):
        marks = spawn(CONSOLE_CHILD, child_config(loaded))
        first.append(marks["first"])
        ready.append(marks["ready"])
        trivial.append(spawn(TRIVIAL_CHILD, {"size": list(SIZE)})["first"])
    base = statistics.median(trivial)
    figure("cold_start", first, base, "s")
    figure("cold_start_ready", ready, base, "s")
    marks = spawn(CONSOLE_CHILD, child_config(empty))
    note(
        f"one cold start on the empty journal: first frame {marks['first']:.3f} s, ready "
        f"{marks['ready']:.3f} s; minimal app first frame min {min(trivial):.3f} s, "
        f"max {max(trivial):.3f} s"
    )


# --- main ---------------------------------------------------------------------------------


async def bench_views(loaded: Case, empty: Case, profile: bool) -> None:
    gc.collect()
    started = time.perf_counter()
    ours = await session(loaded, "c")
    note(f"loaded console: {time.perf_counter() - started:.1f} s")
    gc.collect()
    started = time.perf_counter()
    base = await session(empty, "d")
    note(f"empty console: {time.perf_counter() - started:.1f} s")

    measures: list[tuple[str, Callable[[RunResult], float]]] = [
        ("keypress_p50", lambda r: percentile(r.press, 0.5)),
        ("keypress_p95", lambda r: percentile(r.press, 0.95)),
        ("keypress_work_p50", lambda r: percentile(r.work, 0.5)),
        ("keypress_work_p95", lambda r: percentile(r.work, 0.95)),
        ("questions_redraw", lambda r: statistics.median(r.redraw)),
        ("questions_redraw_painted", lambda r: statistics.median(r.redraw_painted)),
    ]
    for name, pick in measures:
        mine = [pick(r) for r in ours.runs]
        figure(name, mine, statistics.median(pick(r) for r in base.runs), "ms")
    every = [x for r in ours.runs for x in r.press]
    every_base = [x for r in base.runs for x in r.press]
    note(
        f"all {len(every)} key presses pooled: p50 {percentile(every, 0.5):.0f} ms, p95 "
        f"{percentile(every, 0.95):.0f} ms (empty: {percentile(every_base, 0.5):.0f}, "
        f"{percentile(every_base, 0.95):.0f})"
    )
    for key in KEYS:
        mine, theirs = ours.by_key[key], base.by_key[key]
        note(
            f"key {key} ({VIEW_OF[key]}): median {statistics.median(mine):.0f} ms, "
            f"max {max(mine):.0f} (empty: median {statistics.median(theirs):.0f}, "
            f"max {max(theirs):.0f})"
        )
    note(
        f"questions view rows (batches, questions of the chosen batch): loaded {ours.rows}, "
        f"empty {base.rows}"
    )
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        await session(loaded, "e")
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)


async def prepare_all(directory: Path) -> tuple[Case, Case]:
    keys = directory / "keys"
    write_key_pair(keys)
    loaded = Case("loaded", settings_for(directory / "loaded", keys), staff_roster())
    empty = Case("empty", settings_for(directory / "empty", keys), None)
    for case in (loaded, empty):
        started = time.perf_counter()
        await prepare(case)
        note(f"{case.name}: prepared in {time.perf_counter() - started:.1f} s: {case.info}")
    info = loaded.info
    wanted = {str(label) for label in BATCHED}
    as_questions = sum(n for label, n in info["labels"].items() if label in wanted)
    assert info["questions"] == QUESTIONS and info["batched"] == QUESTIONS, info
    assert as_questions == QUESTIONS, f"not every post was triaged as a question: {info}"
    if info["batch_ops"] or empty.info["batch_ops"]:  # the batching service seeded first
        note("batcher operations were journaled: the consoles load the model at start")
    return loaded, empty


def isolate(directory: Path) -> None:
    """Never read the developer's krise.toml or KRISE_* variables (children inherit it)."""
    for name in list(os.environ):
        if name.startswith("KRISE_"):
            del os.environ[name]
    empty = directory / "empty-krise.toml"
    empty.write_text("", encoding="utf-8")
    os.environ["KRISE_CONFIG"] = str(empty)
    os.environ["XDG_DATA_HOME"] = str(directory / "xdg")


async def main(argv: list[str]) -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="krise-bench-console-") as tmp:
        directory = Path(tmp)
        isolate(directory)
        loaded, empty = await prepare_all(directory)
        await bench_views(loaded, empty, profile="--profile" in argv)
        note(f"embedding model loaded in this process: {embed.backend_info().loaded}")
        bench_cold_start(loaded, empty)
    note(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(asyncio.run(main(sys.argv[1:])))
    except Exception as exc:  # could not measure
        print(f"bench/console.py: could not measure: {exc!r}", file=sys.stderr)
        raise SystemExit(1) from exc
