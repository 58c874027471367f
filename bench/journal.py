"""Journal benchmarks: appends as the runtime makes them, restart, and a full fold.

Run as ``python bench/journal.py`` (bounded: no loop waits on anything; most of the time
goes to making the 100,000 events through the engine, see :func:`pure_rules_memoised`,
and writing them once; on a two-core machine shared with other work it took over six
minutes). Every figure is the median of several runs,
baseline measured in the same run, alternating with ours so both see the same noise;
one line each: ``FIGURE: measured=V UNIT baseline=V UNIT ratio=R min=V max=V``
(min/max of the measured value). The events are what the engine decides for a
realistic mix (posts from the public, presence, staff acks, and every 50 bus messages an
approved version published to four channels with its confirmations and receipts).

- ``journal_append_burst``: microseconds per event appended through
  :meth:`Journal.append` in bursts of :data:`BURST` events, one transaction each (the
  inbound path: :meth:`JournalWriter.submit_many` commits what the bus delivered in
  one group), against plain ``sqlite3`` inserting the very same rows (every column,
  copied from the journal) into the same schema, with the same pragmas (WAL,
  ``synchronous=FULL``) and the same transaction sizes, the two taking turns one
  transaction at a time (both see the same disk), which goes first alternating (see
  :func:`paired_append`). Target ratio ≤ 1.5.
- ``journal_append_single``: the same, one event per transaction (a command from the
  console): the fsync of each commit dominates both.
- ``journal_restart_worst_tail``: seconds to restart a journal of 100,000 events written
  with the runtime's snapshot rule and cut where the tail is longest:
  :data:`SNAPSHOT_EVERY` − 1 events after the newest snapshot. A restart is what
  ``ConsoleRuntime.start`` does with the journal before it serves anything: open, load
  the newest snapshot, fold the rest, make the writer. Baseline: reading that snapshot
  row and those tail rows with ``sqlite3`` and ``json.loads`` on each. Target: under
  0.3 s.
- ``journal_full_fold_100k``: seconds to fold all 100,000 events from the start (read,
  parse, fold: what a lost snapshot costs), against reading the same rows and
  ``json.loads`` on each. Target: under 1 s.

For the appends, ``#`` lines on stderr give the process CPU time per event of each side
during the paired runs (ours on two threads; what the wall time adds to it is waiting:
the disk, and a thread woken from idle), and split the burst's per-event cost beyond
plain sqlite3 into its parts, each timed alone on the same events, a burst at a time:
the body and the row tuple (:func:`event_rows`), the chain hash, and one round trip to
the journal's thread. Timed alone, with warm caches, the parts add up to less than the
difference they explain: inside a paired run, each burst finds its events and its
memory cold.

For the restart and the fold, ``#`` lines on stderr also give the process CPU time (on a
busy machine the wall time is mostly waiting for a core), and what the first burst of
bus messages after a restart pays once (the writer's working copy of the state), and
what the journal of 100,000 events takes on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from figures import figure

from krise_tui.core.engine import ReceiveFromBus, decide
from krise_tui.core.features.freeze import Freeze
from krise_tui.core.features.incident import ActivatePlaybook, OpenIncident
from krise_tui.core.features.messages import (
    ApproveDraft,
    DraftSaved,
    DraftVariant,
    MessageApproved,
    PublishVersion,
    SaveDraft,
)
from krise_tui.core.features.outbox import ConfirmEffect
from krise_tui.core.kernel import Accepted, Context, EventBase
from krise_tui.core.policy import ChannelSpec, MessagePolicy, OperatorInfo
from krise_tui.core.state import IncidentState, fold, state_hash
from krise_tui.journal.store import GENESIS, SCHEMA, SNAPSHOT_EVERY, Journal, event_rows, row_hash
from krise_tui.runtime import source_for
from krise_tui.runtime.writer import JournalWriter

FOLD_N = 100_000
BURST = 100
"""Events per transaction on the inbound path (the writer takes up to 500 at once)."""
BURST_EVENTS = 3000
SINGLE_EVENTS = 200
RUNS = 7
FOLD_RUNS = 5
STAFF = 3000
ORG = "bench"
WEB = "https://www.bench.kommune.no"
PLAYBOOK_HASH = "b" * 64
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
POLICY = MessagePolicy(
    org_name="Bench kommune",
    website_url=WEB,
    channels=(
        ChannelSpec("nettside", "website"),
        ChannelSpec("sms", "webhook"),
        ChannelSpec("facebook", "facebook"),
        ChannelSpec("ansatte", "staff"),
    ),
    operators={
        "ola": OperatorInfo("Ola Hansen", "informasjonsmedarbeider", may_approve=False),
        "kari": OperatorInfo("Kari Nordmann", "kriseleder", may_approve=True),
    },
)


@contextlib.contextmanager
def pure_rules_memoised() -> Iterator[None]:
    """Triage and ID-number masking remembered per text while the events are made.

    Both are pure functions of the text (the same text, the same result), and they are
    most of what deciding a post costs: remembered, the 100,000 events take a fraction of
    the time, and they are still exactly the events the engine decides.
    """
    import krise_tui.core.features.inbound as inbound
    import krise_tui.core.features.questions as questions

    triage, mask = questions.triage, inbound.mask_id_numbers
    remembered = functools.lru_cache(maxsize=None)(triage)

    def triage_once(text: str, *, keywords: object = None) -> object:
        assert not keywords  # the bench's playbook adds none
        return remembered(text)

    questions.triage = triage_once  # type: ignore[assignment]
    inbound.mask_id_numbers = functools.lru_cache(maxsize=None)(mask)
    try:
        yield
    finally:
        questions.triage, inbound.mask_id_numbers = triage, mask


def make_events(n: int) -> list[EventBase]:
    """``n`` events as the engine decides them for a busy incident."""
    with pure_rules_memoised():
        return _make_events(n)


def _make_events(n: int) -> list[EventBase]:
    state = IncidentState()
    events: list[EventBase] = []
    clock = [T0]

    def run(command: object, actor: str = "bus") -> Accepted:
        clock[0] += timedelta(milliseconds=250)
        ctx = Context(
            org=ORG,
            actor=actor,
            now=clock[0],
            incident_id="inc-bench",
            org_name=POLICY.org_name,
            policy=POLICY,
        )
        decision = decide(state, command, ctx)
        assert isinstance(decision, Accepted), decision
        fold(decision.events, state)
        events.extend(decision.events)
        return decision

    def bus(topic: str, data: dict[str, object]) -> None:
        run(ReceiveFromBus(source_for(topic), json.dumps(data).encode()))

    run(OpenIncident("Flom i sentrum", 2), "ola")
    run(ActivatePlaybook("flom", "Flom og skred", PLAYBOOK_HASH, "playbooks/flom.yaml"), "system")
    run(Freeze("Flom i sentrum", notice=(("nb", "Vi taler med én stemme."),)), "kari")
    i = 0
    while len(events) < n:
        i += 1
        if i % 50 == 0:
            text = f"Oppdatering {i}: Rv73 er fortsatt stengt ved Svenskvollen. Les mer på {WEB}"
            saved = run(SaveDraft((DraftVariant("nb", "Flom i sentrum", text),)), "ola")
            draft = saved.events[0]
            assert isinstance(draft, DraftSaved)
            approved = run(ApproveDraft(draft.draft_id, "kari"), "kari")
            version = approved.events[0]
            assert isinstance(version, MessageApproved)
            run(PublishVersion(version.version_id), "kari")
            for effect in state.outbox.pending():
                run(ConfirmEffect(effect.effect_id), "outbox")
            for d in state.messages.ledger():
                if d.staff:
                    continue
                topic = f"krise/v1/{ORG}/channel/{d.channel}/receipt"
                for status in ("sent", "delivered"):
                    receipt = {
                        "effect_id": d.effect_id,
                        "status": status,
                        "attempt": 1,
                        "remote_id": f"{d.channel}-{i}" if status == "delivered" else None,
                    }
                    bus(topic, receipt)
            continue
        kind = i % 10
        staff = f"ansatt-{i % STAFF:04d}"
        if kind < 6:
            post = {  # 97 texts: many people ask the same
                "id": f"p{i}",
                "text": f"Er drikkevannet trygt i Hattfjelldal? Vi bor i Sørbyen ({i % 97})",
                "author": f"@innbygger{i % 977}",
            }
            bus(f"krise/v1/{ORG}/channel/facebook/in", post)
        elif kind < 8:
            online = state.inbound.presence.get(f"staff/{staff}") is not True
            bus(
                f"krise/v1/{ORG}/presence/staff/{staff}",
                {"status": "online" if online else "offline"},
            )
        else:
            current = state.freeze.current
            assert current is not None
            bus(f"krise/v1/{ORG}/staff/{staff}/ack", {"staff_id": staff, "seq": current.seq})
    return events[:n]


def plain_connection(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with the journal's pragmas and schema."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = FULL")
    con.executescript(SCHEMA)
    return con


INSERT = (
    "INSERT INTO events(seq, event_id, type, ts, incident_id, playbook_hash, body,"
    " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


ROW_COLUMNS = "seq, event_id, type, ts, incident_id, playbook_hash, body, prev_hash, hash"


async def journal_rows(events: list[EventBase], size: int, path: Path) -> list[tuple[object, ...]]:
    """The rows Journal.append stores for ``events`` from an empty journal, ``size`` at a
    time (written once, not timed: the chain makes them the same every time)."""
    async with await Journal.open(path) as journal:
        for k in range(0, len(events), size):
            await journal.append(events[k : k + size], playbook_hash=PLAYBOOK_HASH)
    with contextlib.closing(sqlite3.connect(path)) as con:
        return con.execute(f"SELECT {ROW_COLUMNS} FROM events ORDER BY seq").fetchall()


@dataclass
class Paired:
    """Per event, in seconds: wall and process CPU (every thread) of each side."""

    ours: float
    plain: float
    ours_cpu: float
    plain_cpu: float


async def paired_append(
    events: list[EventBase], size: int, ours_path: Path, plain_path: Path
) -> Paired:
    """Seconds per event through Journal.append (``size`` events per call), and for plain
    sqlite3 inserting the very rows each call stores, in a transaction of the same size;
    the process CPU time of each side too (ours on two threads: the caller's and the
    journal's).

    The two take turns, one transaction each, so that both see the same disk: on a shared
    machine the time an fsync takes changes from one second to the next. Which of the two
    goes first alternates from one pair to the next: whichever runs second finds the
    machine awake (on this VM a thread woken after a few idle milliseconds pays up to a
    tenth of a millisecond more), so a fixed order would favour one side. The rows plain
    sqlite3 inserts are written beforehand by Journal.append itself, and every timed append
    is checked to have stored exactly them.
    """
    rows = await journal_rows(events, size, ours_path.with_suffix(".rows"))
    plain = plain_connection(plain_path)
    ours_s = plain_s = ours_cpu = plain_cpu = 0.0

    def plain_insert(batch: list[tuple[object, ...]]) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        plain.execute("BEGIN IMMEDIATE")
        plain.executemany(INSERT, batch)
        plain.execute("COMMIT")
        return time.perf_counter() - start, time.process_time() - cpu

    async with await Journal.open(ours_path) as journal:
        stored = sqlite3.connect(ours_path)  # reads back what was stored (not timed)
        try:
            for pair, k in enumerate(range(0, len(events), size)):
                batch = rows[k : k + size]
                if pair % 2:
                    wall, cpu = plain_insert(batch)
                    plain_s, plain_cpu = plain_s + wall, plain_cpu + cpu
                start, cpu = time.perf_counter(), time.process_time()
                seqs = await journal.append(events[k : k + size], playbook_hash=PLAYBOOK_HASH)
                ours_s += time.perf_counter() - start
                ours_cpu += time.process_time() - cpu
                if not pair % 2:
                    wall, cpu = plain_insert(batch)
                    plain_s, plain_cpu = plain_s + wall, plain_cpu + cpu
                got = stored.execute(
                    f"SELECT {ROW_COLUMNS} FROM events WHERE seq >= ? ORDER BY seq", (seqs[0],)
                ).fetchall()
                assert got == batch, f"the journal stored other rows at {seqs[0]}"
        finally:
            stored.close()
            plain.close()
    n = len(events)
    return Paired(ours_s / n, plain_s / n, ours_cpu / n, plain_cpu / n)


async def bench_append(
    name: str, events: list[EventBase], size: int, directory: Path, runs: int
) -> None:
    pairs = [
        await paired_append(
            events, size, directory / f"{name}-{r}.sqlite3", directory / f"{name}-{r}-plain.sqlite3"
        )
        for r in range(runs)
    ]
    plain = [p.plain * 1e6 for p in pairs]
    figure(name, [p.ours * 1e6 for p in pairs], statistics.median(plain), "us/event")
    print(
        f"# {name}: plain sqlite3 min={min(plain):.4g} max={max(plain):.4g} us/event; "
        "process CPU per event (medians): "
        f"ours {statistics.median(p.ours_cpu for p in pairs) * 1e6:.3g} us, "
        f"plain {statistics.median(p.plain_cpu for p in pairs) * 1e6:.3g} us",
        file=sys.stderr,
    )


async def append_breakdown(events: list[EventBase], directory: Path) -> None:
    """Print (not a figure) what Journal.append does beyond plain sqlite3, per event."""
    chunks = [events[k : k + BURST] for k in range(0, len(events), BURST)]
    rows_us: list[float] = []
    chain_us: list[float] = []
    hop_us: list[float] = []
    async with await Journal.open(directory / "breakdown.sqlite3") as journal:
        for _ in range(RUNS):
            rows_s = chain_s = 0.0
            for chunk in chunks:  # one burst's rows alive at a time, as in an append
                start = time.perf_counter()
                chunk_rows = event_rows(chunk, PLAYBOOK_HASH)
                made = time.perf_counter()
                prev = GENESIS
                for seq, (event_id, type_, ts, incident, pb, body) in enumerate(chunk_rows, 1):
                    prev = row_hash(prev, seq, event_id, type_, ts, incident, pb, body)
                chain_s += time.perf_counter() - made
                rows_s += made - start
            rows_us.append(rows_s / len(events) * 1e6)
            chain_us.append(chain_s / len(events) * 1e6)
            start = time.perf_counter()
            for _chunk in chunks:
                await journal.head()  # one cheap job on the journal's thread: the hop
            hop_us.append((time.perf_counter() - start) / len(events) * 1e6)
    print(
        "# journal_append_burst beyond plain, per event: "
        f"serialise {statistics.median(rows_us):.2f} us, "
        f"chain hash {statistics.median(chain_us):.2f} us, "
        f"thread round trip (no disk) {statistics.median(hop_us):.2f} us",
        file=sys.stderr,
    )


async def write_journal(events: list[EventBase], path: Path) -> str:
    """Journal ``events`` in bursts with the runtime's snapshot rule; the live state's hash.

    The first event goes alone (as the console opens the incident), so the snapshots land
    at 5,001, 10,001 … and the last one at 95,001: the tail after it is
    ``SNAPSHOT_EVERY - 1`` events, the longest a restart ever folds.
    """
    state = IncidentState()
    last_snapshot = 0
    async with await Journal.open(path) as journal:
        chunks = [events[:1]] + [events[k : k + BURST] for k in range(1, len(events), BURST)]
        for chunk in chunks:
            seqs = await journal.append(chunk, playbook_hash=PLAYBOOK_HASH)
            fold(chunk, state)
            if seqs[-1] - last_snapshot >= SNAPSHOT_EVERY:  # JournalWriter._maybe_snapshot
                await journal.save_snapshot(state, seqs[-1])
                last_snapshot = seqs[-1]
        tail = await journal.count() - await journal.latest_snapshot_seq()
    assert tail == SNAPSHOT_EVERY - 1, tail
    return state_hash(state)


async def restart(path: Path) -> tuple[float, float, IncidentState]:
    """What ConsoleRuntime.start does with the journal before it serves anything: open,
    load, find the newest snapshot, make the writer. Wall and process-CPU seconds."""
    start, cpu = time.perf_counter(), time.process_time()
    journal = await Journal.open(path)
    try:
        state = await journal.load_state()
        last = await journal.latest_snapshot_seq()
        JournalWriter(journal, state, context, lambda: PLAYBOOK_HASH, last_snapshot=last)
    finally:
        await journal.close()
    return time.perf_counter() - start, time.process_time() - cpu, state


def context(actor: str | None = None) -> Context:
    return Context(org=ORG, actor=actor or "bus", now=T0, incident_id="inc-bench")


async def full_fold(path: Path) -> tuple[float, float, IncidentState]:
    start, cpu = time.perf_counter(), time.process_time()
    async with await Journal.open(path) as journal:
        state = await journal.load_state(use_snapshot=False)
    return time.perf_counter() - start, time.process_time() - cpu, state


def raw_read(path: Path, *, tail_only: bool) -> float:
    """Read the rows a restart needs (or all of them) and json.loads each."""
    start = time.perf_counter()
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    after = 0
    parsed = []
    if tail_only:
        seq, body = con.execute(
            "SELECT seq, state FROM snapshots ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        parsed.append(json.loads(body))
        after = seq
    for (body,) in con.execute("SELECT body FROM events WHERE seq > ? ORDER BY seq", (after,)):
        parsed.append(json.loads(body))
    con.close()
    elapsed = time.perf_counter() - start
    assert parsed
    return elapsed


def timed(fn: Callable[[], float]) -> tuple[float, float]:
    gc.collect()
    cpu = time.process_time()
    return fn(), time.process_time() - cpu


async def bench_restart(events: list[EventBase], directory: Path) -> None:
    path = directory / "fold.sqlite3"
    live_hash = await write_journal(events, path)
    print_size(path, len(events))
    for name, load, tail_only in (
        ("journal_restart_worst_tail", restart, True),
        (f"journal_full_fold_{len(events) // 1000}k", full_fold, False),
    ):
        ours: list[float] = []
        ours_cpu: list[float] = []
        base: list[float] = []
        base_cpu: list[float] = []
        for _ in range(FOLD_RUNS):
            gc.collect()
            seconds, cpu, state = await load(path)
            assert state_hash(state) == live_hash
            ours.append(seconds)
            ours_cpu.append(cpu)
            seconds, cpu = timed(lambda tail_only=tail_only: raw_read(path, tail_only=tail_only))
            base.append(seconds)
            base_cpu.append(cpu)
        figure(name, ours, statistics.median(base), "s")
        print(
            f"# {name}: process CPU {statistics.median(ours_cpu):.3f} s "
            f"(baseline {statistics.median(base_cpu):.3f} s)",
            file=sys.stderr,
        )
    await first_burst_after_restart(path)


def print_size(path: Path, n: int) -> None:
    """Print (not a figure) what the journal of ``n`` events takes on disk, and of that
    the events' text and the snapshots (only the newest is kept)."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        size = pages * con.execute("PRAGMA page_size").fetchone()[0]
        bodies = con.execute("SELECT sum(length(body)) FROM events").fetchone()[0]
        kept, states = con.execute("SELECT count(*), sum(length(state)) FROM snapshots").fetchone()
    print(
        f"# journal of {n} events: {size / 1e6:.0f} MB on disk, of which event bodies "
        f"{bodies / 1e6:.0f} MB and {kept} snapshot(s) {states / 1e6:.0f} MB",
        file=sys.stderr,
    )


async def first_burst_after_restart(path: Path) -> None:
    """Print (not a figure) what the first burst of bus messages after a restart pays once:
    the writer's working copy of the state, made when first needed."""
    async with await Journal.open(path) as journal:
        state = await journal.load_state()
        writer = JournalWriter(journal, state, context, lambda: PLAYBOOK_HASH)
        make = getattr(writer, "_working_copy", None)
        if make is None:
            return  # an older writer makes it in its constructor (part of the restart)
        start = time.perf_counter()
        make()
        print(
            f"# the first burst after a restart also copies the state once: "
            f"{time.perf_counter() - start:.3f} s",
            file=sys.stderr,
        )


async def main() -> int:
    started = time.perf_counter()
    events = make_events(FOLD_N)
    print(f"# {len(events)} events made in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="krise-bench-journal-") as tmp:
        directory = Path(tmp)
        await bench_append("journal_append_burst", events[:BURST_EVENTS], BURST, directory, RUNS)
        await append_breakdown(events[:BURST_EVENTS], directory)
        await bench_append("journal_append_single", events[:SINGLE_EVENTS], 1, directory, RUNS)
        await bench_restart(events, directory)
    print(f"# total {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(asyncio.run(main()))
    except Exception as exc:  # could not measure
        print(f"bench/journal.py: could not measure: {exc!r}", file=sys.stderr)
        raise SystemExit(1) from exc
