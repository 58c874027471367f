"""The journal: an append-only, hash-chained SQLite log of every event.

Each row stores the event's JSON and a SHA-256 over the previous row's hash and *every*
column of the row (seq, event id, type, time, incident, active playbook hash, body).
Altering, removing or reordering a row breaks the chain and :func:`verify_file` names
the first bad ``seq``; the columns outside the body are also checked against the body,
so a forged time or type is caught even if someone recomputes nothing. Rows cut off the
end are caught by the signed head (:mod:`krise_tui.journal.head`). Triggers refuse
UPDATE and DELETE so that mistakes fail loudly (a determined attacker can drop them,
which is what the hash chain is for).

The body is the event's JSON as pydantic writes it (fields in model order): the chain
covers the stored text itself, so the text only has to be what was hashed, not a
canonical form of the event.

One :class:`Journal` owns one SQLite connection, used by one worker thread of its own;
every operation is one job on that thread (an append is a single hop: read the head,
chain the batch, insert, commit). Open it with ``async with`` (or ``open``/``close``)
so no thread is left behind at exit. Appends run in a ``BEGIN IMMEDIATE`` transaction
that reads the head inside it, so several writers (even in other processes) keep the
chain valid.

Snapshots hold the state as JSON with the SHA-256 of that very text: a restart checks
the hash of the bytes (cheap) instead of re-serialising the state, and
:func:`verify_file` checks each snapshot against the state folded from the rows. Only
the newest snapshot is kept (each new one replaces the one before, in one transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

import msgspec
import orjson
from pydantic import BaseModel, TypeAdapter

from krise_tui.core.events import EVENT_ADAPTER, EVENT_LIST_ADAPTER
from krise_tui.core.kernel import EventBase
from krise_tui.core.state import IncidentState, apply, fold, state_hash
from krise_tui.files import create_private
from krise_tui.worker import ThreadWorker

GENESIS = "0" * 64
JOURNAL_FILE = "journal.sqlite3"
"""The journal's file name in a data directory (and in a drill's directory)."""
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

INSERT = (
    "INSERT INTO events(seq, event_id, type, ts, incident_id, playbook_hash, body, prev_hash,"
    " hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
"""The body is bound as text: the hashed UTF-8 bytes decoded once (a tenth of what a
``CAST(? AS TEXT)`` of the bytes costs sqlite3)."""
HEAD = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"

SNAPSHOT_EVERY = 5000
"""Events between state snapshots (restart folds at most this many)."""

READ_CHUNK = 5000
"""Rows read, parsed (one validation call) and folded at a time when loading."""
READ_AHEAD = 2
"""Chunks read ahead of the one being parsed (each a few megabytes of JSON at most)."""


@contextlib.contextmanager
def _gc_paused(*, keep: bool = False) -> Iterator[None]:
    """Pause the cyclic GC while building many objects at once (it would rescan them all).

    ``keep``: what was built lives on (a restarted state). Moved straight to the oldest
    generation, it is not traversed three times over by the collections that would
    otherwise age it there just after the restart (hundreds of milliseconds for a large
    state). ``freeze`` then ``unfreeze`` is that move, in constant time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if keep:
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()


SNAPSHOT_CODEC: TypeAdapter[IncidentState] = TypeAdapter(IncidentState)
"""The state's codec (pydantic over the dataclasses: every field of every slice)."""
_SNAPSHOT_DECODER = msgspec.json.Decoder(IncidentState)
"""The same dataclasses read back by msgspec: what pydantic writes, parsed in C straight
into the state's objects (a restart's largest cost, about half of pydantic's)."""


def encode_state(state: IncidentState) -> bytes:
    """The state as snapshot JSON: fields at their defaults are left out (they come back
    as the defaults), which makes a large state's text a fifth shorter and quicker to
    parse at restart."""
    return SNAPSHOT_CODEC.dump_json(state, exclude_defaults=True)


def decode_state(data: bytes | str) -> IncidentState:
    """Parse :func:`encode_state` output (also a snapshot written in full, or canonical);
    raises ``ValueError`` when it is not a state.

    A large state is hundreds of thousands of objects: with the collector running, it
    would traverse the growing heap over and over while they are made (several times the
    cost of the parse itself).
    """
    with _gc_paused(keep=True):
        try:
            return _SNAPSHOT_DECODER.decode(data)
        except msgspec.DecodeError as exc:  # also msgspec.ValidationError
            raise ValueError(f"not a snapshot of this state: {exc}") from exc


T = TypeVar("T")
Row = tuple[str, str, str, str, str | None, bytes]
"""An event ready to be chained: id, type, time, incident, playbook hash, body (UTF-8 JSON)."""


def row_hash(
    prev_hash: str,
    seq: int,
    event_id: str,
    type_: str,
    ts: str,
    incident_id: str,
    playbook_hash: str | None,
    body: str | bytes,
) -> str:
    """The chain hash of one row: the previous hash and every column of this one.

    SHA-256 over the columns, each followed by a unit separator (0x1F), then the body,
    all UTF-8. It runs for every row appended or verified: the columns are one f-string,
    and a body already in bytes (as the append has it) is hashed without a copy.
    """
    head = f"{prev_hash}\x1f{seq}\x1f{event_id}\x1f{type_}\x1f{ts}\x1f{incident_id}\x1f"
    digest = hashlib.sha256(f"{head}{playbook_hash or ''}\x1f".encode())
    digest.update(body if isinstance(body, bytes) else body.encode("utf-8"))
    return digest.hexdigest()


_JSON_OPTIONS: Final = orjson.OPT_UTC_Z


def _nested(value: object) -> object:
    """orjson's hook: a model inside an event is written as its fields; nothing else."""
    if isinstance(value, BaseModel):
        return value.__dict__
    raise TypeError(type(value).__name__)


def event_json(event: EventBase) -> bytes:
    """The event's JSON as journaled: the text pydantic's serialiser writes, byte for byte.

    orjson writes the model's fields (in model order, a UTC time as ``…Z``, nested models
    through :func:`_nested`) in well under half the time pydantic's serialiser takes, which
    is most of what a row costs beyond sqlite3. Anything orjson does not write the same way
    (a set, a timedelta, an int beyond 64 bits, a key that is not a string) raises, and
    pydantic's own serialiser writes that event. A test holds the two to the same bytes
    for every kind of event; the chain hashes the stored text, so it need not be
    canonical, only stored as hashed.
    """
    try:
        return orjson.dumps(event.__dict__, default=_nested, option=_JSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError included
        return event.__pydantic_serializer__.to_json(event)


def event_rows(events: Iterable[EventBase], playbook_hash: str | None) -> list[Row]:
    """The columns of each event as journaled (all but its place in the chain).

    The body is :func:`event_json`. The time column is ``ts.isoformat()``, read off the
    body where the two agree (``isoformat`` itself is a fifth of the cost of a row): the
    body writes a UTC time as ``…Z`` where isoformat writes ``…+00:00``, and is otherwise
    the same text. Events decided together share their time (one context's ``now``: a
    whole burst from the bus), so the text is made once for each time in a row.
    """
    rows: list[Row] = []
    last_ts: object = None
    ts_text = ""
    dumps, options = orjson.dumps, _JSON_OPTIONS
    for event in events:
        fields = event.__dict__
        try:  # event_json, inlined (this loop runs for every event journaled)
            body = dumps(fields, default=_nested, option=options)
        except TypeError:
            body = event.__pydantic_serializer__.to_json(event)
        ts = fields["ts"]
        if ts is not last_ts:
            ts_text = _ts_text(body) or ts.isoformat()
            last_ts = ts
        type_ = fields.get("type") or type(event).__name__
        rows.append((fields["id"], type_, ts_text, fields["incident_id"], playbook_hash, body))
    return rows


_TS_KEY: Final = b'"ts":"'


def _ts_text(body: bytes) -> str | None:
    """``ts.isoformat()`` of a UTC event, from its JSON body; None when not UTC.

    The fields before ``ts`` (:class:`EventBase`: id, org, incident_id, actor) are
    strings, in which a JSON quote is always escaped: the first ``"ts":"`` is the key.
    """
    start = body.find(_TS_KEY)
    if start < 0:
        return None
    start += len(_TS_KEY)
    end = body.find(b'"', start)
    if end < 0 or body[end - 1] != 0x5A:  # "Z": UTC (an offset is written out)
        return None
    return f"{body[start : end - 1].decode('ascii')}+00:00"


def state_digest(body: bytes) -> str:
    """The hash a snapshot is stored with: SHA-256 (hex) of its JSON text."""
    return hashlib.sha256(body).hexdigest()


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


UNAVAILABLE: Final = (
    "SQLITE_FULL",
    "SQLITE_IOERR",
    "SQLITE_READONLY",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_CANTOPEN",
    "SQLITE_PROTOCOL",
)
"""SQLite's (extended) error names that mean the machine refuses the write now."""


class JournalUnavailable(OSError):
    """The journal cannot be written now (the disk is full, a read-only or failing file
    system, a lock held too long): nothing was written, and writing may work again
    later. An OSError: it is the machine's condition, not a fault in krise."""


def directory_problem(path: Path) -> str | None:
    """What is wrong when ``path`` (given as a journal) is a directory; None otherwise."""
    if not path.is_dir():
        return None
    inside = path / JOURNAL_FILE
    hint = f": give its journal, {inside}" if inside.is_file() else ", not a journal"
    return f"{path} is a directory{hint}"


# --- work done on the journal's own thread --------------------------------------------


def _open(path: Path, read_only: bool) -> sqlite3.Connection:
    if read_only:
        if not path.exists():
            raise JournalError(f"{path}: no such journal")
        if (problem := directory_problem(path)) is not None:
            raise JournalError(problem)
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    else:
        create_private(path)
        con = sqlite3.connect(path, isolation_level=None)
    try:
        if read_only:
            row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None or row[0] != SCHEMA_VERSION:
                found = "no schema" if row is None else f"schema {row[0]}"
                raise JournalError(
                    f"{path}: {found} is not supported (this krise reads {SCHEMA_VERSION})"
                )
            return con
        con.execute("PRAGMA busy_timeout = 10000")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        con.executescript(SCHEMA)
        row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            con.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,)
            )
        elif row[0] != SCHEMA_VERSION:
            raise JournalError(
                f"{path}: journal schema {row[0]} is not supported "
                f"(this krise writes {SCHEMA_VERSION})"
            )
    except sqlite3.DatabaseError as exc:
        con.close()
        raise JournalError(f"{path}: not a krise journal ({exc})") from exc
    except BaseException:
        con.close()
        raise
    return con


def _append(con: sqlite3.Connection, rows: list[Row]) -> list[int]:
    """Chain ``rows`` onto the head and commit them: one transaction, one fsync.

    ``BEGIN IMMEDIATE`` takes the write lock before the head is read, so another writer
    (another connection, another process) cannot slip a row in between: the chain stays
    linear. Nothing is acknowledged before the COMMIT returns (``synchronous=FULL``).
    """
    con.execute("BEGIN IMMEDIATE")
    try:
        head = con.execute(HEAD).fetchone()
        seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
        first = seq + 1
        chained = []
        sha256 = hashlib.sha256
        for event_id, type_, ts, incident_id, playbook_hash, body in rows:
            seq += 1
            # row_hash, inlined (this loop runs for every row appended): the same text
            digest = sha256(
                f"{prev}\x1f{seq}\x1f{event_id}\x1f{type_}\x1f{ts}\x1f{incident_id}\x1f"
                f"{playbook_hash or ''}\x1f".encode()
            )
            digest.update(body)
            text, row_digest = body.decode(), digest.hexdigest()
            chained.append(
                (seq, event_id, type_, ts, incident_id, playbook_hash, text, prev, row_digest)
            )
            prev = row_digest
        con.executemany(INSERT, chained)
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    return list(range(first, seq + 1))


def _save_snapshot(con: sqlite3.Connection, seq: int, body: bytes) -> None:
    """Store the snapshot at ``seq`` and drop the older ones, in one transaction.

    Only the newest snapshot is ever loaded (:meth:`Journal.load_state`), and each one
    holds the whole state: kept, they would grow the file with the square of the
    incident (at 100,000 events, 19 snapshots took 171 MB beside 39 MB of events). The
    record is the chain of events; a snapshot is a cache of its fold. The pages freed
    are reused by the next snapshot, so the file stops growing by a state each time.
    If the insert fails, nothing is deleted: the previous snapshot stays in use.
    """
    con.execute("BEGIN IMMEDIATE")
    try:
        row = con.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            raise JournalError(f"cannot snapshot at seq {seq}: no such row")
        con.execute(
            "INSERT OR REPLACE INTO snapshots(seq, chain_hash, state, state_hash)"
            " VALUES (?, ?, ?, ?)",
            (seq, row[0], body.decode("utf-8"), state_digest(body)),
        )
        # Another writer may have stored a newer one meanwhile: the newest is kept.
        con.execute("DELETE FROM snapshots WHERE seq < (SELECT MAX(seq) FROM snapshots)")
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


def _newest_snapshot(con: sqlite3.Connection) -> tuple[int, bytes, str] | None:
    """The newest snapshot that belongs to this chain: seq, its JSON, its stored hash."""
    row = con.execute(
        "SELECT s.seq, CAST(s.state AS BLOB), s.state_hash FROM snapshots s JOIN events e"
        " ON e.seq = s.seq AND e.hash = s.chain_hash ORDER BY s.seq DESC LIMIT 1"
    ).fetchone()
    return None if row is None else (int(row[0]), bytes(row[1]), str(row[2]))


_CHUNK_SQL: Final = (
    "SELECT count(*), group_concat(seq), CAST('[' || group_concat(body, ',') || ']' AS BLOB)"
    " FROM (SELECT seq, body FROM events WHERE seq > ? AND seq <= ? ORDER BY seq)"
)


def _read_range(con: sqlite3.Connection, after: int, upto: int) -> bytes | None:
    """The bodies with ``after < seq <= upto`` as one JSON array (None when there are none).

    SQLite builds the array itself, in one step during which it lets go of the
    interpreter lock, so the next chunk is read while this one is parsed (fetched row by
    row, the reading thread took the lock back for every row, and waited for the parser
    each time). The rows come in seq order (a range of the primary key, read in order);
    the seqs that come with them are checked, as a journal folded in another order would
    be another state.
    """
    count, seqs, blob = con.execute(_CHUNK_SQL, (after, upto)).fetchone()
    if not count:
        return None
    order = [int(seq) for seq in seqs.split(",")]
    if order != sorted(order):
        raise JournalError(f"the rows after seq {after} were read out of order")
    return bytes(blob)


def _top_seq(con: sqlite3.Connection) -> int:
    return int(con.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])


def _fetch(con: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    return con.execute(sql, params).fetchall()


def _close(con: sqlite3.Connection) -> None:
    con.close()


class Journal:
    """Async, append-only event store on one SQLite file."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._con: sqlite3.Connection | None = None
        self._worker: ThreadWorker | None = None

    @classmethod
    async def open(cls, path: Path, *, read_only: bool = False) -> Journal:
        """Open (creating if needed, unless ``read_only``) the journal at ``path``."""
        journal = cls(path, read_only=read_only)
        await journal._connect()
        return journal

    async def __aenter__(self) -> Journal:
        if self._con is None:
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
        # One worker thread owns the connection (sqlite3 objects stay on their thread);
        # jobs run in the order they are submitted, so each one sees the ones before it.
        worker = ThreadWorker("krise-journal")
        try:
            self._con = await worker.submit(_open, self.path, self.read_only)
        except sqlite3.DatabaseError as exc:
            worker.shutdown(wait=False)
            raise JournalError(f"{self.path}: not a krise journal ({exc})") from exc
        except BaseException:
            worker.shutdown(wait=False)
            raise
        self._worker = worker

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` on the journal's thread."""
        con, worker = self._con, self._worker
        if con is None or worker is None:
            raise JournalError("the journal is not open")
        return await worker.submit(fn, con, *args)

    async def close(self) -> None:
        """Close the connection and end its thread (idempotent)."""
        worker = self._worker
        if worker is None:
            return
        try:
            await self._call(_close)
        finally:
            self._con = self._worker = None
            worker.shutdown(wait=True)  # its last job has run: the thread ends at once

    async def rows(self, *, after_seq: int = 0, chunk: int = 5000) -> AsyncIterator[JournalRow]:
        """Every row after ``after_seq``, oldest first, read in chunks (any journal size)."""
        last = after_seq
        while True:
            rows = await self._call(
                _fetch,
                "SELECT seq, event_id, type, ts, playbook_hash, body, hash FROM events"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, chunk),
            )
            if not rows:
                return
            for r in rows:
                yield JournalRow(*r)
            last = int(rows[-1][0])

    async def append(
        self, events: Sequence[EventBase], *, playbook_hash: str | None = None
    ) -> list[int]:
        """Append ``events`` atomically (one transaction); return their sequence numbers.

        Returns only once the transaction is committed to disk: a caller may fold and
        acknowledge what it appended as soon as this returns, never before.
        """
        if not events:
            return []
        rows = event_rows(events, playbook_hash)
        try:
            return await self._call(_append, rows)
        except sqlite3.OperationalError as exc:  # rolled back: nothing of it is on disk
            if getattr(exc, "sqlite_errorname", "").startswith(UNAVAILABLE):
                raise JournalUnavailable(str(exc)) from exc
            raise

    async def save_snapshot(self, state: IncidentState, seq: int) -> None:
        """Store ``state`` as folded up to ``seq`` so a restart need not fold everything.

        The snapshot is tied to the chain hash at ``seq``; a snapshot that does not
        match the chain is ignored at load, and ``verify_file`` re-folds to check it.
        The state is serialised here, before the first await: later events cannot leak
        into it.
        """
        body = encode_state(state)
        await self._call(_save_snapshot, seq, body)

    async def latest_snapshot_seq(self) -> int:
        """Seq of the newest snapshot (0 when none)."""
        rows = await self._call(_fetch, "SELECT COALESCE(MAX(seq), 0) FROM snapshots", ())
        return int(rows[0][0]) if rows else 0

    async def read_events(self, *, after_seq: int = 0) -> list[EventBase]:
        """All events after ``after_seq``, in order."""
        events: list[EventBase] = []
        async for chunk in self._chunks(after_seq):
            events += chunk
        return events

    async def _chunks(self, after_seq: int) -> AsyncIterator[list[EventBase]]:
        """The events after ``after_seq``, one parsed chunk at a time.

        The next :data:`READ_AHEAD` chunks are read on the journal's thread while this one
        is parsed and folded here. Rows appended meanwhile come after the last chunk.
        """
        after = after_seq
        while (top := await self._call(_top_seq)) > after:
            ranges = deque((lo, min(lo + READ_CHUNK, top)) for lo in range(after, top, READ_CHUNK))
            reads: deque[asyncio.Future[bytes | None]] = deque()
            try:
                while ranges or reads:
                    while ranges and len(reads) <= READ_AHEAD:
                        reads.append(
                            asyncio.ensure_future(self._call(_read_range, *ranges.popleft()))
                        )
                    blob = await reads.popleft()
                    if blob is not None:
                        yield EVENT_LIST_ADAPTER.validate_json(blob)
            finally:
                for read in reads:
                    read.cancel()
            after = top

    async def load_state(self, *, use_snapshot: bool = True) -> IncidentState:
        """Restart = open and fold: the state exactly as it was.

        Starts from the newest snapshot that matches the chain, then folds the rest.
        """
        with _gc_paused(keep=True):
            state, after = IncidentState(), 0
            if use_snapshot:
                state, after = await self._snapshot_start()
            async for events in self._chunks(after):
                fold(events, state)
            return state

    async def _snapshot_start(self) -> tuple[IncidentState, int]:
        found = await self._call(_newest_snapshot)
        if found is None:
            return IncidentState(), 0
        seq, body, stored = found
        # hashlib lets go of the interpreter lock on large inputs: the hash is computed
        # on the journal's thread while the state is parsed here, and only used if they
        # agree (a damaged or edited snapshot is ignored: fold from the start).
        digest = asyncio.ensure_future(self._call(lambda _con: state_digest(body)))
        try:
            state: IncidentState | None = decode_state(body)
        except ValueError:
            state = None  # a snapshot of an older shape: fold from the start
        if state is None:
            return IncidentState(), 0
        if await digest != stored and state_hash(state) != stored:
            # Neither the hash of the text nor (as older krise stored it) of the state.
            return IncidentState(), 0
        return state, seq

    async def tail(self, limit: int = 50) -> list[JournalRow]:
        """The newest ``limit`` rows, oldest first."""
        rows = await self._call(
            _fetch,
            "SELECT seq, event_id, type, ts, playbook_hash, body, hash FROM events"
            " ORDER BY seq DESC LIMIT ?",
            (limit,),
        )
        return [JournalRow(*r) for r in reversed(rows)]

    async def count(self) -> int:
        """Number of rows."""
        rows = await self._call(_fetch, "SELECT COUNT(*) FROM events", ())
        return int(rows[0][0]) if rows else 0

    async def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the newest row (``(0, GENESIS)`` when empty)."""
        rows = await self._call(_fetch, HEAD, ())
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of checking a journal's chain."""

    ok: bool
    rows: int
    head_hash: str
    bad_seq: int | None = None
    reason: str = ""


VERIFY_CHUNK = 2000
"""Rows read and chain-checked per step."""


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
            return _verify(con, expect_head)
    except sqlite3.DatabaseError as exc:
        return VerifyReport(False, 0, GENESIS, None, f"{path}: not a krise journal ({exc})")
    finally:
        con.close()


def _all_text(*values: object) -> bool:
    return all(isinstance(v, str) for v in values)


def _parse_each(bodies: list[str]) -> tuple[list[EventBase], int, str]:
    """Parse one body at a time: the events before the first bad one, its index, why."""
    events: list[EventBase] = []
    for i, body in enumerate(bodies):
        try:
            events.append(EVENT_ADAPTER.validate_json(body))
        except ValueError as exc:
            return events, i, str(exc)
    return events, len(bodies), ""


def _verify(con: sqlite3.Connection, expect_head: str | None) -> VerifyReport:
    snapshots = dict(con.execute("SELECT seq, state_hash FROM snapshots").fetchall())
    cur = con.execute(
        "SELECT seq, event_id, type, ts, incident_id, playbook_hash, body, prev_hash, hash"
        " FROM events ORDER BY seq"
    )
    prev = GENESIS
    expected_seq = 0
    state = IncidentState()
    while rows := cur.fetchmany(VERIFY_CHUNK):
        # The chain first, row by row, up to the first break; then the bodies of the rows
        # before it; then each of those rows in order (its columns, the fold,
        # a snapshot at it). The first problem reported is the first row that has one.
        chain_prev = prev
        broken: VerifyReport | None = None
        good = 0
        for seq, event_id, type_, ts, incident_id, playbook_hash, body, prev_hash, digest in rows:
            expected = expected_seq + good + 1
            if seq != expected:
                broken = VerifyReport(
                    False, seq, chain_prev, expected, f"seq {expected} is missing"
                )
            elif prev_hash != chain_prev:
                broken = VerifyReport(
                    False, seq, chain_prev, seq, f"seq {seq}: previous-hash link is broken"
                )
            elif not _all_text(event_id, type_, ts, incident_id, body) or not (
                playbook_hash is None or isinstance(playbook_hash, str)
            ):
                # krise writes text only; a BLOB or a number was put there by hand.
                broken = VerifyReport(
                    False, seq, chain_prev, seq, f"seq {seq}: a column holds something not text"
                )
            elif (
                row_hash(chain_prev, seq, event_id, type_, ts, incident_id, playbook_hash, body)
                != digest
            ):
                broken = VerifyReport(
                    False, seq, chain_prev, seq, f"seq {seq}: content does not match its hash"
                )
            if broken is not None:
                break
            chain_prev = digest
            good += 1
        # Each body is parsed on its own: joined into one array, a body such as
        # ``{…},{…}`` (two events) next to a broken one could shift events onto other rows.
        events, bad, why = _parse_each([r[6] for r in rows[:good]])
        for row, event in zip(rows[:bad], events, strict=True):
            seq, event_id, type_, ts, incident_id = row[:5]
            columns = (
                event.id,
                getattr(event, "type", ""),
                event.ts.isoformat(),
                event.incident_id,
            )
            if columns != (event_id, type_, ts, incident_id):
                return VerifyReport(
                    False, seq, prev, seq, f"seq {seq}: its columns do not match its event"
                )
            apply(state, event)
            if seq in snapshots and not _snapshot_matches(con, seq, snapshots[seq], state):
                return VerifyReport(
                    False, seq, prev, seq, f"snapshot at seq {seq} does not match the journal"
                )
            prev = row[8]
            expected_seq = seq
        if bad < good:
            seq = rows[bad][0]
            return VerifyReport(False, seq, prev, seq, f"seq {seq}: not a valid event ({why})")
        if broken is not None:
            return broken
    if expect_head is not None and prev != expect_head:
        return VerifyReport(
            False,
            expected_seq,
            prev,
            expected_seq + 1,
            f"head hash {prev[:12]}… is not the expected {expect_head[:12]}… (rows cut off?)",
        )
    return VerifyReport(True, expected_seq, prev)


def _snapshot_matches(
    con: sqlite3.Connection, seq: int, stored_hash: str, state: IncidentState
) -> bool:
    """Whether the snapshot at ``seq`` is the state folded from the rows (compared as
    values, whatever the key order) and its stored hash is that of its text, or (as older
    krise stored it) that of the folded state."""
    row = con.execute("SELECT CAST(state AS BLOB) FROM snapshots WHERE seq = ?", (seq,)).fetchone()
    body = bytes(row[0])
    try:
        if decode_state(body) != state:
            return False
    except ValueError:
        return False
    return state_digest(body) == stored_hash or state_hash(state) == stored_hash


def row_hash_at(path: Path, seq: int) -> str | None:
    """The chain hash of row ``seq`` (None when there is no such row)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
    finally:
        con.close()
    return None if row is None else str(row[0])
