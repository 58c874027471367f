"""The journal: an append-only, hash-chained SQLite log of every event.

Each row stores the event's canonical JSON and a SHA-256 over the previous row's hash and
*every* column of the row (seq, event id, type, time, incident, active playbook hash,
body). Altering, removing or reordering a row breaks the chain and :func:`verify_file`
names the first bad ``seq``; the columns outside the body are also checked against the
body, so a forged time or type is caught even if someone recomputes nothing. Rows cut
off the end are caught by the signed head (:mod:`krise_tui.journal.head`).
Triggers refuse UPDATE and DELETE so that mistakes fail loudly (a determined attacker
can drop them, which is what the hash chain is for).

One :class:`Journal` owns one aiosqlite connection; open it with ``async with`` (or
``open``/``close``) so no thread is left behind at exit. Appends run in a
``BEGIN IMMEDIATE`` transaction, so several writers (even in other processes) keep the
chain valid.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import aiosqlite

from krise_tui.core.events import EVENT_ADAPTER, EVENT_LIST_ADAPTER
from krise_tui.core.ids import canonical_json
from krise_tui.core.kernel import EventBase
from krise_tui.core.state import (
    IncidentState,
    apply,
    fold,
    state_from_json,
    state_hash,
    state_to_json,
)
from krise_tui.files import create_private

GENESIS = "0" * 64
SCHEMA_VERSION = "2"

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq           INTEGER PRIMARY KEY,
    event_id      TEXT NOT NULL UNIQUE,
    type          TEXT NOT NULL,
    ts            TEXT NOT NULL,
    incident_id   TEXT NOT NULL,
    playbook_hash TEXT,
    body          TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    seq        INTEGER PRIMARY KEY,
    chain_hash TEXT NOT NULL,
    state      TEXT NOT NULL,
    state_hash TEXT NOT NULL
);
"""

# One statement reads the head and inserts the next row: SQLite takes the write lock
# before the statement reads, so concurrent writers (other connections, other
# processes) are serialised and the chain stays linear. The hash is computed by the
# same Python function verify uses, registered as an SQL function.
INSERT_NEXT = """
INSERT INTO events(seq, event_id, type, ts, incident_id, playbook_hash, body, prev_hash, hash)
SELECT h.seq + 1, ?1, ?2, ?3, ?4, ?5, ?6, h.hash,
       krise_row_hash(h.hash, h.seq + 1, ?1, ?2, ?3, ?4, ?5, ?6)
FROM (
    SELECT COALESCE(MAX(seq), 0) AS seq,
           COALESCE((SELECT hash FROM events ORDER BY seq DESC LIMIT 1), ?7) AS hash
    FROM events
) AS h
"""

SNAPSHOT_EVERY = 5000
"""Events between state snapshots (restart folds at most this many)."""


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building many objects at once (it would rescan them all)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _sql_row_hash(
    prev_hash: str,
    seq: int,
    event_id: str,
    type_: str,
    ts: str,
    incident_id: str,
    playbook_hash: str | None,
    body: str,
) -> str:
    return row_hash(prev_hash, int(seq), event_id, type_, ts, incident_id, playbook_hash, body)


def row_hash(
    prev_hash: str,
    seq: int,
    event_id: str,
    type_: str,
    ts: str,
    incident_id: str,
    playbook_hash: str | None,
    body: str,
) -> str:
    """The chain hash of one row: the previous hash and every column of this one."""
    h = hashlib.sha256()
    for part in (prev_hash, str(seq), event_id, type_, ts, incident_id, playbook_hash or ""):
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    h.update(body.encode("utf-8"))
    return h.hexdigest()


@dataclass(frozen=True)
class JournalRow:
    """One stored event with its chain position."""

    seq: int
    event_id: str
    type: str
    ts: str
    playbook_hash: str | None
    body: str
    hash: str


class JournalError(Exception):
    """The journal file cannot be used (wrong format, newer schema, unreadable)."""


class Journal:
    """Async, append-only event store on one SQLite file."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, *, read_only: bool = False) -> Journal:
        """Open (creating if needed, unless ``read_only``) the journal at ``path``."""
        journal = cls(path, read_only=read_only)
        await journal._connect()
        return journal

    async def __aenter__(self) -> Journal:
        if self._db is None:
            await self._connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _connect(self) -> None:
        if self.read_only:
            await self._connect_read_only()
            return
        create_private(self.path)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await db.execute("PRAGMA busy_timeout = 10000")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = FULL")
            await db.executescript(SCHEMA)
            await db.create_function("krise_row_hash", 8, _sql_row_hash, deterministic=True)
            async with db.execute("SELECT value FROM meta WHERE key = 'schema'") as cur:
                row = await cur.fetchone()
            if row is None:
                await db.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,)
                )
            elif row[0] != SCHEMA_VERSION:
                raise JournalError(
                    f"{self.path}: journal schema {row[0]} is not supported "
                    f"(this krise writes {SCHEMA_VERSION})"
                )
        except sqlite3.DatabaseError as exc:
            await db.close()
            raise JournalError(f"{self.path}: not a krise journal ({exc})") from exc
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def _connect_read_only(self) -> None:
        if not self.path.exists():
            raise JournalError(f"{self.path}: no such journal")
        db = await aiosqlite.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        try:
            async with db.execute("SELECT value FROM meta WHERE key = 'schema'") as cur:
                row = await cur.fetchone()
        except sqlite3.DatabaseError as exc:
            await db.close()
            raise JournalError(f"{self.path}: not a krise journal ({exc})") from exc
        if row is None or row[0] != SCHEMA_VERSION:
            await db.close()
            found = "no schema" if row is None else f"schema {row[0]}"
            raise JournalError(
                f"{self.path}: {found} is not supported (this krise reads {SCHEMA_VERSION})"
            )
        self._db = db

    async def rows(self, *, after_seq: int = 0, chunk: int = 5000) -> AsyncIterator[JournalRow]:
        """Every row after ``after_seq``, oldest first, read in chunks (any journal size)."""
        last = after_seq
        while True:
            async with self.db.execute(
                "SELECT seq, event_id, type, ts, playbook_hash, body, hash FROM events"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, chunk),
            ) as cur:
                rows = list(await cur.fetchall())
            if not rows:
                return
            for r in rows:
                yield JournalRow(*r)
            last = int(rows[-1][0])

    @property
    def db(self) -> aiosqlite.Connection:
        """The open connection (raises if closed)."""
        if self._db is None:
            raise JournalError("the journal is not open")
        return self._db

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def append(
        self, events: Sequence[EventBase], *, playbook_hash: str | None = None
    ) -> list[int]:
        """Append ``events`` atomically; return their sequence numbers."""
        if not events:
            return []
        rows = [
            (
                event.id,
                getattr(event, "type", type(event).__name__),
                event.ts.isoformat(),
                event.incident_id,
                playbook_hash,
                canonical_json(event.model_dump(mode="json")).decode("utf-8"),
                GENESIS,
            )
            for event in events
        ]
        async with self._lock:
            db = self.db
            if len(rows) == 1:  # the common case: one thread hop, atomic on its own
                inserted = await db.execute_insert(INSERT_NEXT, rows[0])
                return [int(inserted[0])] if inserted else []
            await db.execute("BEGIN IMMEDIATE")
            try:
                # One statement per row, each chaining onto the row before it; the
                # transaction makes the batch atomic (a group commit: one fsync).
                await db.executemany(INSERT_NEXT, rows)
                async with db.execute("SELECT MAX(seq) FROM events") as cur:
                    head = await cur.fetchone()
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise
        last = int(head[0]) if head and head[0] is not None else 0
        return list(range(last - len(rows) + 1, last + 1))

    async def save_snapshot(self, state: IncidentState, seq: int) -> None:
        """Store ``state`` as folded up to ``seq`` so a restart need not fold everything.

        The snapshot is tied to the chain hash at ``seq``; a snapshot that does not
        match the chain is ignored at load, and ``verify_file`` re-folds to check it.
        """
        async with self._lock:
            async with self.db.execute("SELECT hash FROM events WHERE seq = ?", (seq,)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise JournalError(f"cannot snapshot at seq {seq}: no such row")
            body = canonical_json(state_to_json(state)).decode("utf-8")
            await self.db.execute(
                "INSERT OR REPLACE INTO snapshots(seq, chain_hash, state, state_hash)"
                " VALUES (?, ?, ?, ?)",
                (seq, row[0], body, state_hash(state)),
            )

    async def latest_snapshot_seq(self) -> int:
        """Seq of the newest snapshot (0 when none)."""
        async with self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM snapshots") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def read_events(self, *, after_seq: int = 0) -> list[EventBase]:
        """All events after ``after_seq``, in order (parsed in one pass for speed)."""
        async with self.db.execute(
            "SELECT body FROM events WHERE seq > ? ORDER BY seq", (after_seq,)
        ) as cur:
            rows = await cur.fetchall()
        if not rows:
            return []
        return EVENT_LIST_ADAPTER.validate_json("[" + ",".join(r[0] for r in rows) + "]")

    async def load_state(self, *, use_snapshot: bool = True) -> IncidentState:
        """Restart = open and fold: the state exactly as it was.

        Starts from the newest snapshot that matches the chain, then folds the rest.
        """
        with _gc_paused():
            state, after = IncidentState(), 0
            if use_snapshot:
                state, after = await self._snapshot_start()
            return fold(await self.read_events(after_seq=after), state)

    async def _snapshot_start(self) -> tuple[IncidentState, int]:
        async with self.db.execute(
            "SELECT s.seq, s.state, s.state_hash FROM snapshots s JOIN events e"
            " ON e.seq = s.seq AND e.hash = s.chain_hash ORDER BY s.seq DESC LIMIT 1"
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return IncidentState(), 0
        try:
            state = state_from_json(json.loads(row[1]))
        except ValueError:
            return IncidentState(), 0  # a snapshot of an older shape: fold from the start
        if state_hash(state) != row[2]:
            return IncidentState(), 0
        return state, int(row[0])

    async def tail(self, limit: int = 50) -> list[JournalRow]:
        """The newest ``limit`` rows, oldest first."""
        async with self.db.execute(
            "SELECT seq, event_id, type, ts, playbook_hash, body, hash FROM events"
            " ORDER BY seq DESC LIMIT ?",
            (limit,),
        ) as cur:
            rows = await cur.fetchall()
        return [JournalRow(*r) for r in reversed(list(rows))]

    async def count(self) -> int:
        """Number of rows."""
        async with self.db.execute("SELECT COUNT(*) FROM events") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the newest row (``(0, GENESIS)`` when empty)."""
        async with self.db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1") as cur:
            row = await cur.fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of checking a journal's chain."""

    ok: bool
    rows: int
    head_hash: str
    bad_seq: int | None = None
    reason: str = ""


def verify_file(path: Path, *, expect_head: str | None = None) -> VerifyReport:
    """Check the whole hash chain of the journal at ``path`` (read-only).

    Every row must link to the previous one and match its hash, and every row must be a
    valid event; every snapshot must equal the state folded from the rows up to it.
    ``expect_head`` (a hash noted elsewhere, e.g. in the archive export) also detects
    rows cut off the end, which a chain alone cannot.
    """
    if not Path(path).exists():
        return VerifyReport(False, 0, GENESIS, None, f"{path}: no such file")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return VerifyReport(False, 0, GENESIS, None, f"{path}: cannot open ({exc})")
    try:
        with _gc_paused():
            return _verify(con, path, expect_head)
    except sqlite3.DatabaseError as exc:
        return VerifyReport(False, 0, GENESIS, None, f"{path}: not a krise journal ({exc})")
    finally:
        con.close()


def _verify(con: sqlite3.Connection, path: Path, expect_head: str | None) -> VerifyReport:
    snapshots = dict(con.execute("SELECT seq, state_hash FROM snapshots").fetchall())
    cur = con.execute(
        "SELECT seq, event_id, type, ts, incident_id, playbook_hash, body, prev_hash, hash"
        " FROM events ORDER BY seq"
    )
    prev = GENESIS
    expected_seq = 0
    state = IncidentState()
    for seq, event_id, type_, ts, incident_id, playbook_hash, body, prev_hash, digest in cur:
        expected_seq += 1
        if seq != expected_seq:
            return VerifyReport(False, seq, prev, expected_seq, f"seq {expected_seq} is missing")
        if prev_hash != prev:
            return VerifyReport(False, seq, prev, seq, f"seq {seq}: previous-hash link is broken")
        if row_hash(prev, seq, event_id, type_, ts, incident_id, playbook_hash, body) != digest:
            return VerifyReport(
                False, seq, prev, seq, f"seq {seq}: content does not match its hash"
            )
        try:
            event = EVENT_ADAPTER.validate_json(body)
        except ValueError as exc:
            return VerifyReport(False, seq, prev, seq, f"seq {seq}: not a valid event ({exc})")
        columns = (event.id, getattr(event, "type", ""), event.ts.isoformat(), event.incident_id)
        if columns != (event_id, type_, ts, incident_id):
            return VerifyReport(
                False, seq, prev, seq, f"seq {seq}: its columns do not match its event"
            )
        apply(state, event)
        if seq in snapshots and snapshots[seq] != state_hash(state):
            return VerifyReport(
                False, seq, prev, seq, f"snapshot at seq {seq} does not match the journal"
            )
        prev = digest
    if expect_head is not None and prev != expect_head:
        return VerifyReport(
            False,
            expected_seq,
            prev,
            expected_seq + 1,
            f"head hash {prev[:12]}… is not the expected {expect_head[:12]}… (rows cut off?)",
        )
    return VerifyReport(True, expected_seq, prev)


def row_hash_at(path: Path, seq: int) -> str | None:
    """The chain hash of row ``seq`` (None when there is no such row)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
    finally:
        con.close()
    return None if row is None else str(row[0])
