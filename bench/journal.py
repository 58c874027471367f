"""Journal benchmarks: append throughput and restart fold time.

Run as ``python bench/journal.py`` (bounded: well under two minutes). Prints one line
per figure, ``FIGURE: measured=V UNIT baseline=V UNIT ratio=R``, the baseline measured
in the same run:

- ``journal_append``: events/s appended one transaction each through the hash-chained
  journal, against plain ``sqlite3`` inserts of the same rows, one transaction each,
  with the same pragmas (WAL, synchronous=FULL).
- ``journal_append_vs_unchained``: the same appends against aiosqlite inserts of the
  same serialised rows without the hash chain (isolates what the chain costs).
- ``journal_restart_100k``: seconds to restart (open, load the newest snapshot, fold
  the rest) a journal of 100,000 events written with the runtime's snapshots (target:
  well under 1 s), against just reading every row and ``json.loads`` on each.
- ``journal_full_fold_100k``: events/s for a restart that folds all 100,000 events from
  the start (no snapshot: what ``journal verify`` and a lost snapshot cost), against the
  same raw read.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from krise_tui.bus.envelope import Signer
from krise_tui.core.engine import (
    Accepted,
    ConfirmEffect,
    Context,
    OpenIncident,
    PublishCurrentMessage,
    ReceiveFromBus,
    decide,
)
from krise_tui.core.events import EventBase
from krise_tui.core.ids import canonical_json
from krise_tui.core.state import IncidentState, fold, state_hash
from krise_tui.journal.store import SNAPSHOT_EVERY, Journal

APPEND_N = 1500
FOLD_N = 100_000
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def make_events(n: int) -> list[EventBase]:
    """A realistic mix: mostly inbound posts, a publish (+ confirm) every 50 events."""
    signer = Signer.generate()
    state = IncidentState()
    events: list[EventBase] = []
    i = 0

    def run(command: object) -> None:
        ctx = Context("bench", "kari", T0 + timedelta(seconds=i), signer, "inc-bench")
        decision = decide(state, command, ctx)  # type: ignore[arg-type]
        assert isinstance(decision, Accepted), decision
        fold(decision.events, state)
        events.extend(decision.events)

    run(OpenIncident("Flom i sentrum", 2))
    while len(events) < n:
        i += 1
        if i % 50 == 0:
            run(
                PublishCurrentMessage(f"Oppdatering {i}: Rv73 er fortsatt stengt ved Svenskvollen.")
            )
            run(ConfirmEffect(state.pending_effects()[-1].effect_id))
        else:
            post = {"id": f"p{i}", "text": f"Er drikkevannet trygt i Hattfjelldal? ({i})"}
            run(ReceiveFromBus("krise/v1/bench/channel/facebook/in", json.dumps(post).encode()))
    return events[:n]


def line(name: str, measured: float, baseline: float, unit: str, ratio: float) -> None:
    print(
        f"{name}: measured={measured:.4g} {unit} baseline={baseline:.4g} {unit} ratio={ratio:.3f}",
        flush=True,
    )


async def bench_unchained_aiosqlite(events: list[EventBase], directory: Path) -> float:
    """The same rows through aiosqlite, one statement each, no hash chain."""
    import aiosqlite

    async with aiosqlite.connect(directory / "unchained.sqlite3", isolation_level=None) as db:
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = FULL")
        await db.execute(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT, type TEXT, body TEXT)"
        )
        start = time.perf_counter()
        for e in events:
            body = canonical_json(e.model_dump(mode="json")).decode()
            await db.execute_insert(
                "INSERT INTO events(event_id, type, body) VALUES (?, ?, ?)",
                (e.id, getattr(e, "type", ""), body),
            )
        return len(events) / (time.perf_counter() - start)


async def bench_append(events: list[EventBase], directory: Path) -> tuple[float, float]:
    path = directory / "append.sqlite3"
    async with await Journal.open(path) as journal:
        start = time.perf_counter()
        for event in events:
            await journal.append([event])
        ours = len(events) / (time.perf_counter() - start)

    con = sqlite3.connect(directory / "plain.sqlite3", isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = FULL")
    con.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT, type TEXT, body TEXT)"
    )
    rows = [
        (e.id, getattr(e, "type", ""), canonical_json(e.model_dump(mode="json")).decode())
        for e in events
    ]
    start = time.perf_counter()
    for row in rows:
        con.execute("BEGIN")
        con.execute("INSERT INTO events(event_id, type, body) VALUES (?, ?, ?)", row)
        con.execute("COMMIT")
    plain = len(rows) / (time.perf_counter() - start)
    con.close()
    return ours, plain


async def bench_fold(events: list[EventBase], directory: Path) -> tuple[float, float, float]:
    """Restart with the runtime's snapshots, restart folding everything, and raw reading."""
    path = directory / "fold.sqlite3"
    state = IncidentState()
    async with await Journal.open(path) as journal:
        for k in range(0, len(events), 1000):
            chunk = events[k : k + 1000]
            seqs = await journal.append(chunk)
            fold(chunk, state)
            if seqs[-1] % SNAPSHOT_EVERY == 0:  # what ConsoleRuntime does as it goes
                await journal.save_snapshot(state, seqs[-1])
    live_hash = state_hash(state)

    start = time.perf_counter()
    async with await Journal.open(path) as journal:
        restarted = await journal.load_state()
    restart = time.perf_counter() - start
    assert state_hash(restarted) == live_hash

    start = time.perf_counter()
    async with await Journal.open(path) as journal:
        full = await journal.load_state(use_snapshot=False)
    full_fold = time.perf_counter() - start
    assert state_hash(full) == live_hash

    start = time.perf_counter()
    con = sqlite3.connect(path)
    parsed = [json.loads(body) for (body,) in con.execute("SELECT body FROM events ORDER BY seq")]
    con.close()
    baseline = time.perf_counter() - start
    assert len(parsed) == len(events)
    return restart, full_fold, baseline


async def main() -> int:
    started = time.perf_counter()
    events = make_events(FOLD_N)
    with tempfile.TemporaryDirectory(prefix="krise-bench-") as tmp:
        directory = Path(tmp)
        ours, plain = await bench_append(events[:APPEND_N], directory)
        line("journal_append", ours, plain, "events/s", ours / plain)
        unchained = await bench_unchained_aiosqlite(events[:APPEND_N], directory)
        line("journal_append_vs_unchained", ours, unchained, "events/s", ours / unchained)
        restart_s, full_s, read_s = await bench_fold(events, directory)
        line("journal_restart_100k", restart_s, read_s, "s", restart_s / read_s)
        line(
            "journal_full_fold_100k",
            FOLD_N / full_s,
            FOLD_N / read_s,
            "events/s",
            (FOLD_N / full_s) / (FOLD_N / read_s),
        )
    print(f"# total {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(asyncio.run(main()))
    except Exception as exc:  # could not measure
        print(f"bench/journal.py: could not measure: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
