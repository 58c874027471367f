"""Channel bridges: MQTT clients that carry approved messages to one platform each.

A bridge runs inside the console process (the embedded default) or on its own
(``krise bridge CHANNEL``), close to the internet. Either way it is only an MQTT client
with the broker user ``bridge-<channel>``, which the ACL lets read its channel's ``out``
topic and write its ``receipt``/``in`` topics and its presence — nothing else.

The wire contract:

- The console publishes to ``krise/v1/{org}/channel/{ch}/out`` (QoS 1, not retained) a
  signed envelope (:mod:`krise_tui.bus.envelope`) of type ``channel.deliver`` with a
  per-channel monotonic ``seq`` and the body ``{effect_id, channel, idempotency_key,
  message, previous_remote_id}`` (``message`` is an
  :class:`~krise_tui.channels.base.ApprovedMessage` as JSON).
- A console *retry* (an operator's re-send) re-publishes the same envelope (same id and
  seq), even when newer envelopes have arrived since (:class:`DeliveryTracker`), or sets
  ``resend`` in a new one. The bridge then delivers with ``recheck``: the adapter answers
  from its ledger, or asks the platform whether it already has the version (by the
  marker every post carries) and answers ``delivered`` with the existing post's id, and
  sends only when the platform does not have it. Envelopes with a bad signature, an
  unknown key, another org or channel, or a stale ``seq`` under a new id are ignored,
  counted and logged; they are never delivered.
- The bridge answers on ``krise/v1/{org}/channel/{ch}/receipt`` (QoS 1, plain JSON,
  :class:`Receipt`): ``sent`` when an attempt starts, then ``delivered`` or ``failed``.
  A retryable failure is retried by the bridge itself with capped exponential backoff
  and jitter, never sooner than the platform's ``Retry-After``, up to
  :attr:`RetryPolicy.max_attempts` attempts; a permanent failure stops at once. Every
  attempt's outcome is a receipt.
- Deliveries of different effects run concurrently, so one hanging endpoint never holds
  up another message; the same effect is never delivered twice at the same time (a
  retry that arrives while it is in progress cuts the wait before its next attempt).
- Nothing is lost or posted twice by a crash. An accepted delivery is written to the
  bridge's state database (:class:`BridgeStore`, beside
  :attr:`BridgeRuntime.state_file`, fsync'd), with the replay tracker, before its first
  attempt and removed when it ends (delivered, or a final failure); a restarted bridge
  resumes every pending delivery. :meth:`BridgeRuntime.stop` returns only once every
  write is done, so the next start (in this process or another) neither resumes what
  had ended nor has its state overwritten by an older write. The adapters write each
  attempt ahead in their own ledger (:func:`~krise_tui.channels.base.deliver_once`), so
  the resumed attempt of one that was cut short looks on the platform before it sends
  again.

Besides deliveries, the console sends (signed the same way, checked the same way, with
their own ``seq`` stream per envelope type):

- ``channel.reply`` (:class:`~krise_tui.wire.delivery.ReplyRequest`): one approved
  answer to one asker, where they asked (a status reply, a comment reply, a Messenger
  message, an SMS, an e-mail in their thread) through the adapter's ``reply``;
- ``channel.hide`` (:class:`~krise_tui.wire.delivery.HideRequest`): hide (never delete)
  one post through the adapter's ``hide`` (Facebook comments);
- ``channel.qa`` (:class:`~krise_tui.channels.website.QaRequest`, proposed for the wire
  package): one answered batch onto the website's questions-and-answers page.

They run exactly like deliveries: pending in the state database, attempts written ahead
in the adapter's ledger under the request's idempotency key, reconciliation where the
platform can be asked, retries, and receipts with the request's ``effect_id``. A
channel whose adapter cannot do it answers with a permanent failure; an exercise reply
to a channel that is not a drill sandbox is refused by the adapter (``exercise: true``
in the org file).

Posts from the public come the other way (:attr:`BridgeRuntime.intake`, from
:mod:`krise_tui.intake`): the intake — an HTTP server for signed webhooks and the
Facebook page webhook, or a Mastodon mention poller — hands each post to
:meth:`BridgeRuntime.publish_inbound`, which publishes it on
``krise/v1/{org}/channel/{ch}/in`` (QoS 1) and returns once the broker has it. The
intake starts and stops with the bridge.

Receipts are queued and published in order by one task, so a broker outage delays them
but does not lose them while the bridge runs. The session is persistent (fixed client
id ``krise-bridge-{org}-{channel}``, ``clean_session=False``): envelopes published while
the bridge is offline are queued by the broker and delivered when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO, runtime_checkable

import httpx
from aiomqtt import ProtocolVersion
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from krise_tui.backoff import backoff_delay
from krise_tui.bus import topics
from krise_tui.bus.envelope import Envelope, SeqTracker, Verifier, VerifyResult, VerifyStatus
from krise_tui.bus.session import (
    BrokerAddress,
    BusSession,
    LinkState,
    NotConnectedError,
    PublishRefusedError,
    SessionConfig,
    cancel_and_wait,
)
from krise_tui.channels.base import (
    Channel,
    DeliveryResult,
    Hider,
    HttpChannel,
    Replier,
    format_seconds,
)
from krise_tui.channels.website import QA_TYPE, QaRequest
from krise_tui.clock import Clock, SystemClock
from krise_tui.files import create_private
from krise_tui.signals import stop_on_signals
from krise_tui.wire.delivery import (
    DELIVER_TYPE,
    HIDE_TYPE,
    REPLY_TYPE,
    DeliveryRequest,
    HideRequest,
    Receipt,
    ReceiptStatus,
    ReplyRequest,
)
from krise_tui.wire.inbound import (
    MAX_TROUBLE_SOURCE,
    MAX_TROUBLE_TEXT,
    MAX_TROUBLES,
    InboundPost,
)
from krise_tui.worker import ThreadWorker

if TYPE_CHECKING:
    from krise_tui.config import Settings
    from krise_tui.playbook.models import ChannelDef

log = logging.getLogger(__name__)

RECEIPT_HISTORY = 1000
"""Receipts kept in :attr:`BridgeRuntime.receipts` (the newest)."""

ACCEPTED_MEMORY = 10_000
"""Envelope ids a :class:`DeliveryTracker` remembers for console retries."""

DROP_DELAY = 0.5
"""Seconds within which the end of a request is written when nothing else is."""
STORE_SUFFIX = ".db"
"""The bridge's state database is its state file with this suffix (``sms.seq.json`` →
``sms.seq.db``)."""
PENDING_SUFFIX = ".pending.json"
"""Before :class:`BridgeStore`, the pending deliveries were the state file with this
suffix (``sms.seq.pending.json``), the tracker the state file itself; both are moved in."""

WorkRequest = DeliveryRequest | ReplyRequest | HideRequest | QaRequest
"""Everything the console asks a bridge to carry out."""

REQUEST_TYPES: dict[str, type[WorkRequest]] = {
    DELIVER_TYPE: DeliveryRequest,
    REPLY_TYPE: ReplyRequest,
    HIDE_TYPE: HideRequest,
    QA_TYPE: QaRequest,
}
"""Envelope type -> the body's model."""

_WHAT: dict[str, str] = {
    DELIVER_TYPE: "delivery",
    REPLY_TYPE: "reply",
    HIDE_TYPE: "hide",
    QA_TYPE: "Q&A",
}


def request_type(request: WorkRequest) -> str:
    """The envelope type that carries ``request``."""
    for kind, model in REQUEST_TYPES.items():
        if isinstance(request, model):
            return kind
    raise TypeError(f"not a bridge request: {type(request).__name__}")


@runtime_checkable
class QaPublisher(Protocol):
    """A channel that can put answered batches on a questions-and-answers page."""

    async def publish_qa(self, request: QaRequest, *, recheck: bool = False) -> DeliveryResult:
        """Put ``request.entry`` on the page; never raises for platform errors."""
        ...


InboundSink = Callable[[InboundPost], Awaitable[None]]
"""Publishes one inbound post; returns once the broker has it."""


class IntakePart(Protocol):
    """The optional intake of a bridge (:mod:`krise_tui.intake`): started and stopped
    with it, handing every post from the public to the sink it is started with."""

    async def start(self, sink: InboundSink) -> None:
        """Start taking posts in (in the background); posts go to ``sink``."""
        ...

    async def stop(self) -> None:
        """Stop taking posts in."""
        ...

    def on_trouble(self, listener: Callable[[str, str | None], None]) -> None:
        """Call ``listener(source, problem | None)`` when a source's trouble starts,
        changes or is over."""
        ...


IntakeFactory = Callable[["ChannelDef", Path], IntakePart | None]
"""Builds a channel's intake from its org-file definition and the bridge's state
directory (:func:`krise_tui.intake.intake_from_def`); None when it has none."""


# --------------------------------------------------------------------------- replay


@dataclass
class DeliveryTracker(SeqTracker):
    """A :class:`SeqTracker` that also remembers accepted envelopes by id.

    The console retries a delivery by publishing the *same* envelope again. With only
    the newest ``seq`` per stream, a retry of an older effect after a newer one would
    look like a replay; this tracker answers ``DUPLICATE`` for any envelope id it
    accepted with that ``seq`` (the signature was checked before, and it covers id and
    seq). A new id with an old ``seq`` is still a replay.
    """

    accepted: OrderedDict[str, int] = field(default_factory=OrderedDict)
    """Envelope id -> seq of accepted envelopes, oldest first."""
    limit: int = ACCEPTED_MEMORY
    """How many ids to remember."""

    def classify(self, env: Envelope) -> VerifyResult:
        """New, duplicate (also of an older accepted envelope) or replay."""
        if self.accepted.get(env.id) == env.seq:
            return VerifyResult(VerifyStatus.DUPLICATE, "already seen", env)
        return super().classify(env)

    def record(self, env: Envelope) -> None:
        """Remember ``env`` as the newest on its stream and by its id."""
        super().record(env)
        self.accepted[env.id] = env.seq
        self.accepted.move_to_end(env.id)
        while len(self.accepted) > self.limit:
            self.accepted.popitem(last=False)

    def to_json(self) -> dict[str, Any]:
        """Serialisable form (for the bridge's state file)."""
        return {
            "last": [[key, kind, seq, env_id] for (key, kind), (seq, env_id) in self.last.items()],
            "accepted": [[env_id, seq] for env_id, seq in self.accepted.items()],
        }

    @classmethod
    def from_json(cls, data: object) -> DeliveryTracker:
        """Parse :meth:`to_json` output (raises ValueError when it is not that)."""
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        tracker = cls()
        try:
            for key, kind, seq, env_id in data.get("last", []):
                tracker.last[(str(key), str(kind))] = (int(seq), str(env_id))
            for env_id, seq in data.get("accepted", []):
                tracker.accepted[str(env_id)] = int(seq)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"unexpected entry: {exc}") from None
        return tracker


# --------------------------------------------------------------------------- state


@dataclass
class PendingDelivery:
    """A request (delivery, reply, hide, Q&A) the bridge accepted and has not finished."""

    request: WorkRequest
    attempts: int = 0
    """Attempts made so far (receipts keep counting after a restart)."""


_STORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    effect_id TEXT PRIMARY KEY,
    type      TEXT NOT NULL,
    request   TEXT NOT NULL,
    attempts  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class BridgeStore:
    """What a bridge keeps on disk: its replay tracker and the requests it has accepted
    and not finished, in one SQLite file (``sms.seq.json`` → ``sms.seq.db``, mode 0600,
    WAL, ``synchronous=FULL``); in memory only when ``state_file`` is None.

    A change is one small transaction and one fsync. Before, the tracker and the
    pending deliveries were two JSON files rewritten whole (temp file, fsync, rename,
    directory fsync) on every change: four fsyncs before each attempt, and with many
    replies in flight every change rewrote all of them. The tracker is written with the
    next pending change (:meth:`tracker_changed`), which comes before the attempt of the
    delivery it accepted, or by :meth:`flush`.

    All database work runs on one thread of the store's own, in the order it is asked
    for: a write, once asked for, runs to its end even when the coroutine that asked is
    cancelled (a bridge stopping mid-save), and :meth:`flush` waits for every write asked
    for so far. Files of a bridge before this store (``.seq.json`` and
    ``.seq.pending.json``) are read when there is no database yet and moved in by the
    first write (then renamed ``….migrated``).
    """

    def __init__(self, state_file: Path | None) -> None:
        self.state_file = state_file
        self.path = None if state_file is None else state_file.with_suffix(STORE_SUFFIX)
        self._entries: dict[str, PendingDelivery] = {}
        self._tracker: str | None = None
        """The newest tracker (JSON text) not yet asked to be written."""
        self._con: sqlite3.Connection | None = None
        self._worker: ThreadWorker | None = None
        self._legacy: tuple[str | None, list[tuple[str, str, str, object]]] | None = None
        """What the old JSON files held, to move into a new database."""
        self._readable: bool | None = None
        """Whether the database holds the state (checked once, before any write)."""
        self._dropped: set[str] = set()
        """Requests that ended, not yet deleted on disk."""
        self._drop_timer: asyncio.TimerHandle | None = None
        self._drop_tasks: set[asyncio.Future[None]] = set()

    # --- reading (at construction and start, before any write) ---

    def load_tracker(self) -> DeliveryTracker:
        """The saved tracker; an empty one when there is none or it is unreadable."""
        text = self._read_meta("tracker") if self._exists() else self._legacy_files()[0]
        if text is None:
            return DeliveryTracker()
        try:
            return DeliveryTracker.from_json(json.loads(text))
        except ValueError as exc:
            log.warning("%s: cannot read the replay tracker (%s); starting afresh", self.path, exc)
            return DeliveryTracker()

    def load_pending(self) -> dict[str, PendingDelivery]:
        """The requests in progress when the bridge last stopped (an unreadable one is
        skipped, logged)."""
        self._entries = {}
        if self.path is None:
            return {}
        rows: list[tuple[str, str, str, object]]
        rows = list(self._read_rows()) if self._exists() else self._legacy_files()[1]
        for effect_id, kind, request, attempts in rows:
            try:
                model = REQUEST_TYPES[kind]
                data = json.loads(request)
                count = int(attempts) if isinstance(attempts, int | str) else 0
                self._entries[effect_id] = PendingDelivery(model.model_validate(data), count)
            except (KeyError, TypeError, ValueError, ValidationError) as exc:
                where = self.path if self._exists() else self.state_file
                log.error("%s: pending %s is not understood (%s): skipped", where, effect_id, exc)
        return dict(self._entries)

    def _exists(self) -> bool:
        """Whether the database holds the state (else the old files, if any, do)."""
        if self._readable is None:
            self._readable = self._check_database()
        return self._readable

    def _check_database(self) -> bool:
        if self.path is None or not self.path.exists():
            return False
        try:
            with contextlib.closing(self._read_only()) as con:
                row = con.execute("SELECT 1 FROM meta WHERE key = 'moved_in'").fetchone()
        except sqlite3.Error as exc:
            if "no such table" not in str(exc):  # else: made by a run that died at once
                log.error(
                    "%s: cannot read the bridge state (%s): the replay tracker starts afresh "
                    "and nothing is resumed; the adapters' ledgers still stop a second post",
                    self.path,
                    exc,
                )
            return False
        return row is not None

    def _read_meta(self, key: str) -> str | None:
        try:
            with contextlib.closing(self._read_only()) as con:
                row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            log.error("%s: cannot read the bridge state (%s)", self.path, exc)
            return None
        return None if row is None else str(row[0])

    def _read_rows(self) -> list[tuple[str, str, str, int]]:
        try:
            with contextlib.closing(self._read_only()) as con:
                rows = con.execute(
                    "SELECT effect_id, type, request, attempts FROM pending ORDER BY rowid"
                ).fetchall()
        except sqlite3.Error as exc:
            log.error("%s: cannot read the pending deliveries (%s): not resumed", self.path, exc)
            return []
        return [(str(a), str(b), str(c), int(d)) for a, b, c, d in rows]

    def _read_only(self) -> sqlite3.Connection:
        assert self.path is not None
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    def _legacy_files(self) -> tuple[str | None, list[tuple[str, str, str, object]]]:
        """The old tracker file's text, and the old pending file's entries as rows of the
        ``pending`` table (read once; an entry without a request is skipped, logged)."""
        if self._legacy is None:
            tracker: str | None = None
            pending: dict[str, Any] = {}
            if self.state_file is not None:
                try:
                    tracker = self.state_file.read_text(encoding="utf-8")
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("%s: cannot read the replay tracker (%s)", self.state_file, exc)
                old = self.state_file.with_suffix(PENDING_SUFFIX)
                try:
                    data = json.loads(old.read_text(encoding="utf-8"))
                    if isinstance(data, dict):
                        pending = data
                    else:
                        log.error("%s: not a JSON object: pending deliveries not resumed", old)
                except FileNotFoundError:
                    pass
                except (OSError, ValueError) as exc:
                    log.error("%s: cannot read the pending deliveries (%s): not resumed", old, exc)
            rows: list[tuple[str, str, str, object]] = []
            for effect_id, value in pending.items():
                if not isinstance(value, dict) or not isinstance(value.get("request"), dict):
                    log.error("%s: pending %s has no request: skipped", self.state_file, effect_id)
                    continue
                # Entries written before replies existed have no type: deliveries.
                kind = str(value.get("type", DELIVER_TYPE))
                request = json.dumps(value["request"], ensure_ascii=False)
                rows.append((str(effect_id), kind, request, value.get("attempts", 0)))
            self._legacy = (tracker, rows)
        return self._legacy

    # --- writing ---

    def tracker_changed(self, tracker: DeliveryTracker) -> None:
        """Note the tracker's new state: written with the next change, or by :meth:`flush`."""
        self._tracker = json.dumps(tracker.to_json())

    async def put(self, effect_id: str, request: WorkRequest, attempts: int) -> None:
        """Record (or update) a request in progress; on disk (with the newest tracker and
        the ends not yet written) before this returns. A failed write is logged: the
        adapters' ledgers still stop a second post; only resumption is lost."""
        self._entries[effect_id] = PendingDelivery(request, attempts)
        self._dropped.discard(effect_id)  # a re-send of what had ended
        row = (effect_id, request_type(request), request.model_dump_json(), attempts)
        await self._write(row)

    def drop(self, effect_id: str) -> None:
        """A request ended: forget it, on disk with the next write or within
        :data:`DROP_DELAY` seconds.

        Not written at once: its receipt is out, and the writes that other deliveries
        are waiting for (before their attempts, after their answers) go first. A crash
        before the entry is gone resumes the request, which the adapter's ledger
        answers as delivered without posting again.
        """
        if self._entries.pop(effect_id, None) is None or self.path is None:
            return
        self._dropped.add(effect_id)
        if self._drop_timer is None:
            loop = asyncio.get_running_loop()
            self._drop_timer = loop.call_later(DROP_DELAY, self._write_drops)

    def _write_drops(self) -> None:
        self._drop_timer = None
        if self._dropped:
            task = asyncio.ensure_future(self._write(None))
            self._drop_tasks.add(task)
            task.add_done_callback(self._drop_tasks.discard)

    async def flush(self) -> None:
        """Write the tracker and the ends of requests not yet written, and wait until
        every write asked for so far has ended."""
        if self._tracker is not None or self._dropped:
            await self._write(None)
        elif self._worker is not None:
            await self._submit(lambda: None)

    def close(self) -> None:
        """Close the database (after :meth:`flush`); a later write opens it again."""
        if self._drop_timer is not None:
            self._drop_timer.cancel()
            self._drop_timer = None
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.post(self._close_connection)
            worker.shutdown(wait=True)

    async def _write(self, put: tuple[str, str, str, int] | None) -> None:
        if self.path is None:
            self._tracker = None
            return
        tracker, self._tracker = self._tracker, None
        drops, self._dropped = sorted(self._dropped), set()
        await self._submit(lambda: self._write_now(put, drops, tracker))

    async def _submit(self, job: Callable[[], None]) -> None:
        if self._worker is None:
            self._worker = ThreadWorker("krise-bridge-state")
        future = self._worker.submit(job)
        # Shielded: the caller's cancellation must not cut a write short or leave it unseen.
        await asyncio.shield(future)

    def _write_now(
        self, put: tuple[str, str, str, int] | None, drops: list[str], tracker: str | None
    ) -> None:
        try:
            con = self._connection()
            with con:  # one transaction: one fsync
                con.execute("BEGIN IMMEDIATE")
                if tracker is not None:
                    con.execute(
                        "INSERT OR REPLACE INTO meta(key, value) VALUES ('tracker', ?)", (tracker,)
                    )
                con.executemany("DELETE FROM pending WHERE effect_id = ?", [(d,) for d in drops])
                if put is not None:
                    con.execute("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?)", put)
        except (OSError, sqlite3.Error) as exc:
            log.warning("%s: cannot save the bridge state: %s", self.path, exc)

    def _connection(self) -> sqlite3.Connection:
        if self._con is not None:
            return self._con
        assert self.path is not None and self.state_file is not None
        create_private(self.path)
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            con.execute("PRAGMA busy_timeout = 5000")  # a reader (krise, a person) waits
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = FULL")
            con.executescript(_STORE_SCHEMA)
            moved = con.execute("SELECT 1 FROM meta WHERE key = 'moved_in'").fetchone()
            if moved is None:
                self._move_in(con)
        except BaseException:
            con.close()
            raise
        self._con = con
        for old in (self.state_file, self.state_file.with_suffix(PENDING_SUFFIX)):
            if old.exists():  # moved in (also by a run that stopped before renaming)
                old.replace(old.with_name(old.name + ".migrated"))
        return con

    def _move_in(self, con: sqlite3.Connection) -> None:
        """Copy the old JSON files into the new database: one transaction, with the mark
        that it is done (the old files are read as they were before any write)."""
        tracker, rows = self._legacy_files()
        with con:
            con.execute("BEGIN IMMEDIATE")
            if tracker is not None:
                con.execute("INSERT OR IGNORE INTO meta VALUES ('tracker', ?)", (tracker,))
            con.executemany("INSERT OR IGNORE INTO pending VALUES (?, ?, ?, ?)", rows)
            con.execute("INSERT INTO meta VALUES ('moved_in', ?)", (str(len(rows)),))

    def _close_connection(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class RetryPolicy:
    """How the bridge retries a retryable failure."""

    backoff_min: float = 1.0
    """Seconds before the second attempt, before jitter (which may halve it)."""
    backoff_max: float = 60.0
    """The longest wait between attempts (unless the platform's ``Retry-After`` asks
    for longer)."""
    max_attempts: int = 8
    """Attempts per delivery request; then the bridge gives up until the console retries."""
    retry_after_max: float = 900.0
    """The longest ``Retry-After`` honoured (a platform asking for hours is capped)."""
    attempt_timeout: float = 120.0
    """An attempt that has not ended after this many seconds fails (retryable): a safety
    net over the adapters' own timeouts."""

    def delay(self, failures: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after the ``failures``-th failed attempt: the project's one
        backoff rule (:func:`~krise_tui.backoff.backoff_delay`), never sooner than the
        platform's ``Retry-After`` (up to :attr:`retry_after_max`)."""
        wait = backoff_delay(failures, base=self.backoff_min, cap=self.backoff_max, rng=rng)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.retry_after_max))
        return wait


# --------------------------------------------------------------------------- runtime


@dataclass
class _Job:
    """One effect being carried out (delivered, replied, hidden, put on the Q&A page)."""

    request: WorkRequest
    recheck: bool = False
    """The next attempt asks the platform first (an operator's re-send)."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


ReceiptListener = Callable[[Receipt], object]
LinkListener = Callable[[LinkState, str], object]


@dataclass
class BridgeRuntime:
    """One channel's bridge: verify what the console sends, deliver it, report receipts."""

    host: str
    """Broker host."""
    port: int
    """Broker port."""
    org: str
    """Organisation slug (topic segment)."""
    channel_id: str
    """The channel id from the org file (topic segment; broker user ``bridge-<id>``)."""
    channel: Channel
    """The adapter that carries messages to the platform."""
    username: str | None = None
    """Broker user (normally ``bridge-<channel id>``)."""
    password: str | None = None
    """Broker password."""
    public_keys: Sequence[Ed25519PublicKey] = ()
    """The console's public key(s); ignored when :attr:`verifier` is given."""
    verifier: Verifier | None = None
    """A ready verifier (its tracker is upgraded to a :class:`DeliveryTracker`)."""
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    """Retry timing."""
    state_file: Path | None = None
    """Names the bridge's state across restarts (``sms.seq.json``): the replay tracker and
    the pending deliveries live in the database beside it (:class:`BridgeStore`,
    ``sms.seq.db``); None: memory only."""
    client_id: str | None = None
    """MQTT client id; default ``krise-bridge-{org}-{channel}`` (must be stable)."""
    keepalive: int = 30
    """MQTT keep-alive in seconds."""
    reconnect_min: float = 0.2
    """Seconds before the first reconnect attempt (doubles up to :attr:`reconnect_max`)."""
    reconnect_max: float = 10.0
    """The longest wait between reconnect attempts."""
    protocol: ProtocolVersion = ProtocolVersion.V5
    """MQTT 5 (refusals are visible); 3.1.1 for the embedded amqtt."""
    resolve: Callable[[], BrokerAddress] | None = None
    """Where the broker is now, asked before every connect attempt (a restarted local
    broker may listen elsewhere with new passwords)."""
    on_receipt: ReceiptListener | None = None
    """Called with every receipt as it is made (before it is published)."""
    on_link: LinkListener | None = None
    """Called on every connection state change."""
    intake: IntakePart | None = None
    """Takes posts from the public in (:mod:`krise_tui.intake`); started and stopped
    with the bridge. None: the channel is outbound only."""
    clock: Clock = field(default_factory=SystemClock)
    """What stamps the receipts (a drill's bridges run on the drill's clock)."""

    def __post_init__(self) -> None:
        self._store = BridgeStore(self.state_file)
        self._http: httpx.AsyncClient | None = None
        self.out_topic = topics.channel_out(self.org, self.channel_id)
        self.in_topic = topics.channel_in(self.org, self.channel_id)
        self.receipt_topic = topics.channel_receipt(self.org, self.channel_id)
        self.presence_topic = topics.presence(self.org, "bridge", f"bridge-{self.channel_id}")
        if self.verifier is None:
            if not self.public_keys:
                raise ValueError(
                    f"bridge {self.channel_id!r}: needs the console's public key (or a Verifier)"
                )
            tracker = self._store.load_tracker()
            self.verifier = Verifier(list(self.public_keys), org=self.org, tracker=tracker)
        elif not isinstance(self.verifier.tracker, DeliveryTracker):
            self.verifier.tracker = DeliveryTracker(last=dict(self.verifier.tracker.last))
        self.session: BusSession | None = None
        self.link_state = LinkState.CONNECTING
        self.link_detail = ""
        self.disconnects = 0
        """Times the connection went down (or a connect attempt failed)."""
        self.delivered = 0
        """Successful attempts."""
        self.failed = 0
        """Failed attempts (each one is a ``failed`` receipt)."""
        self.rejected = 0
        """Envelopes ignored: forged, replayed, malformed, for another channel."""
        self.redeliveries = 0
        """Duplicate envelopes (console retries) delivered again."""
        self.existing = 0
        """Deliveries answered without sending: the ledger or the platform had them."""
        self.resumed = 0
        """Deliveries resumed at start (pending when the bridge last stopped or died)."""
        self.last_reason: str | None = None
        """The reason of the newest failed attempt."""
        self.last_rejection: str | None = None
        """Why the newest ignored envelope was ignored."""
        self.receipts: list[Receipt] = []
        """The newest receipts made (up to :data:`RECEIPT_HISTORY`), oldest first."""
        self.published = 0
        """Receipts the broker has acknowledged."""
        self.refused_receipts = 0
        """Receipts the broker refused (its ACL): logged at ERROR, not retried."""
        self.inbound_published = 0
        """Posts from the public the broker has acknowledged on the ``in`` topic."""
        self._jobs: dict[str, _Job] = {}
        self._job_tasks: set[asyncio.Task[None]] = set()
        """Every job's task until it has ended, also while it drops its pending entry
        after its last attempt (it has left :attr:`_jobs` by then)."""
        self._attempts: dict[str, int] = {}
        self._outbox: asyncio.Queue[Receipt] = asyncio.Queue()
        self.intake_trouble: dict[str, str] = {}
        """What is wrong with the intake now (source -> problem), said to the console in
        the bridge's retained presence (at most :data:`MAX_TROUBLES` sources)."""
        self._trouble_changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._rng = random.Random()

    # ------------------------------------------------------------------ lifecycle

    @property
    def user(self) -> str:
        """The broker user this bridge is meant to log in as."""
        return f"bridge-{self.channel_id}"

    @property
    def in_flight(self) -> set[str]:
        """Effect ids being delivered (or waiting for their next attempt) right now."""
        return set(self._jobs)

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up."""
        return self.session is not None and self.session.connected

    async def start(self) -> None:
        """Connect (in the background) and start delivering."""
        if self.session is not None:
            raise RuntimeError(f"bridge {self.channel_id!r} is already started")
        resume = await asyncio.to_thread(self._store.load_pending)
        if isinstance(self.channel, HttpChannel):
            # HTTP adapters built without a client open a fresh one per delivery, which
            # costs a TLS context each time; the bridge lends them one pooled client.
            pooled = httpx.AsyncClient(follow_redirects=False)
            if self.channel.lend_client(pooled):
                self._http = pooled
            else:
                await pooled.aclose()
        self.session = BusSession(
            SessionConfig(
                host=self.host,
                port=self.port,
                client_id=self.client_id or f"krise-bridge-{self.org}-{self.channel_id}",
                username=self.username,
                password=self.password,
                subscriptions=[self.out_topic],
                presence_topic=self.presence_topic,
                keepalive=self.keepalive,
                backoff_min=self.reconnect_min,
                backoff_max=self.reconnect_max,
                protocol=self.protocol,
                resolve=self.resolve,
            ),
            self._on_message,
            on_state=self._on_state,
        )
        self._tasks = [
            asyncio.create_task(self.session.run(), name=f"bridge-{self.channel_id}-session"),
            asyncio.create_task(self._publisher(), name=f"bridge-{self.channel_id}-receipts"),
            asyncio.create_task(self._say_trouble(), name=f"bridge-{self.channel_id}-trouble"),
        ]
        if self.intake is not None:
            self.intake.on_trouble(self._intake_trouble)
        for effect_id, pending in resume.items():
            # Cut short by a crash or a stop: the adapter's ledger knows whether the last
            # attempt may have reached the platform and checks there before sending.
            log.info("bridge %s: resuming %s", self.channel_id, effect_id)
            self.resumed += 1
            self._attempts[effect_id] = max(self._attempts.get(effect_id, 0), pending.attempts)
            self._schedule(pending.request)
        if self.intake is not None:
            await self.intake.start(self.publish_inbound)

    def _intake_trouble(self, source: str, problem: str | None) -> None:
        name = source[:MAX_TROUBLE_SOURCE]  # within what the console's presence accepts
        if problem is None:
            self.intake_trouble.pop(name, None)
        else:
            self.intake_trouble[name] = problem[:MAX_TROUBLE_TEXT]
        self._trouble_changed.set()

    async def _say_trouble(self) -> None:
        """Put the intake's trouble into the retained presence, newest state only."""
        while True:
            await self._trouble_changed.wait()
            self._trouble_changed.clear()
            session = self.session
            if session is None:
                continue
            said = dict(list(self.intake_trouble.items())[:MAX_TROUBLES])
            try:
                await session.set_trouble(said)
            except NotConnectedError:
                pass  # kept: said in the presence of the next connection
            except Exception:
                log.exception("bridge %s: saying the intake's trouble failed", self.channel_id)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait for a live broker connection (raises ``TimeoutError``)."""
        if self.session is None:
            raise RuntimeError("start() first")
        await self.session.wait_connected(timeout)

    async def stop(self, *, flush_timeout: float = 2.0) -> None:
        """Stop the intake, cancel deliveries in progress, publish queued receipts
        (briefly), disconnect."""
        if self.intake is not None:
            await self.intake.stop()
        # Also the jobs that have ended and are still dropping their pending entry.
        await cancel_and_wait(*self._job_tasks)
        self._jobs.clear()
        if self.connected and not self._outbox.empty():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.join(), flush_timeout)
        if self.session is not None:
            await self.session.stop()
        if self._http is not None:
            if isinstance(self.channel, HttpChannel):
                self.channel.lend_client(None)  # lent, now returned
            await self._http.aclose()
            self._http = None
        await cancel_and_wait(*self._tasks)
        self._tasks.clear()
        # A write cut short by the cancellations above still runs in its thread: wait for
        # it, or the next start could read an older tracker or pending deliveries (and
        # resume deliveries that ended), and this bridge's write could land after the
        # next one's. The tracker, if it changed since the last write, is written here.
        await self._store.flush()
        await asyncio.to_thread(self._store.close)

    async def publish_inbound(self, post: InboundPost) -> None:
        """Publish one post from the public on the ``in`` topic (QoS 1, not retained).

        Waits for the broker connection and returns once the broker has acknowledged the
        post; the caller bounds the wait (a webhook answers 503 so the platform retries,
        a poller keeps its cursor). Raises :class:`PublishRefusedError` when the ACL
        refuses it, and :class:`NotConnectedError` before :meth:`start`.
        """
        session = self.session
        if session is None:
            raise NotConnectedError(f"bridge {self.channel_id!r} is not started")
        payload = post.model_dump_json().encode("utf-8")
        while True:
            await session.wait_connected()
            try:
                await session.publish(self.in_topic, payload, qos=1, timeout=10)
            except NotConnectedError as exc:
                log.info("bridge %s: inbound post waits: %s", self.channel_id, exc)
                await asyncio.sleep(0.1)  # until the session notices the outage
                continue
            self.inbound_published += 1
            return

    def _on_state(self, state: LinkState, detail: str) -> None:
        if state is LinkState.DISCONNECTED:
            self.disconnects += 1
        self.link_state = state
        self.link_detail = detail
        if self.on_link is not None:
            try:
                self.on_link(state, detail)
            except Exception:
                log.exception("bridge link listener failed")

    # ------------------------------------------------------------------ inbound

    async def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        if topic != self.out_topic:
            self._reject(f"message on unexpected topic {topic}")
            return
        await self.handle(payload)

    async def handle(self, payload: bytes | str) -> None:
        """Verify one ``out`` payload and start (or restart) its delivery."""
        assert self.verifier is not None
        result = self.verifier.check(payload, record=False)
        if result.status is VerifyStatus.REJECTED or result.envelope is None:
            self._reject(result.reason)
            return
        env = result.envelope
        model = REQUEST_TYPES.get(env.type)
        if model is None:
            known = ", ".join(repr(kind) for kind in REQUEST_TYPES)
            self._reject(f"unexpected envelope type {env.type!r} (expected {known})")
            return
        try:
            request = model.model_validate(env.body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            reason = f"malformed {_WHAT[env.type]} request: {where}: {first['msg']}"
            self._reject(reason)
            effect_id = env.body.get("effect_id")
            if isinstance(effect_id, str) and effect_id:
                # A signed request the bridge cannot carry out: tell the console.
                self._emit(
                    effect_id,
                    ReceiptStatus.FAILED,
                    attempt=self._attempts.get(effect_id, 0),
                    reason=reason,
                    permanent=True,
                    final=True,
                )
            return
        if request.channel != self.channel_id:
            # Checked before recording: another channel's seq must not advance ours.
            self._reject(f"envelope for channel {request.channel!r} on {self.channel_id!r}'s topic")
            return
        recheck = isinstance(request, DeliveryRequest) and request.resend
        if result.ok:
            self.verifier.tracker.record(env)
            if isinstance(self.verifier.tracker, DeliveryTracker):
                # On disk with the pending entry, before the delivery's first attempt.
                self._store.tracker_changed(self.verifier.tracker)
        else:
            # The console sends the same envelope again only when the operator re-sends
            # (after a final failure): the platform may have the post all the same.
            self.redeliveries += 1
            recheck = True
            log.info("bridge %s: console retry of %s", self.channel_id, request.effect_id)
        self._schedule(request, recheck=recheck)

    def _reject(self, reason: str) -> None:
        self.rejected += 1
        self.last_rejection = reason
        log.warning("bridge %s: ignored an envelope: %s", self.channel_id, reason)

    # ------------------------------------------------------------------ delivery

    def _schedule(self, request: WorkRequest, *, recheck: bool = False) -> None:
        job = self._jobs.get(request.effect_id)
        if job is not None:
            # Never two deliveries of one effect at once: cut the wait before the next try.
            job.recheck = job.recheck or recheck
            job.wake.set()
            return
        job = _Job(request, recheck=recheck)
        self._jobs[request.effect_id] = job
        job.task = asyncio.create_task(
            self._run(job), name=f"bridge-{self.channel_id}-{request.effect_id}"
        )
        self._job_tasks.add(job.task)
        job.task.add_done_callback(self._job_tasks.discard)

    async def _run(self, job: _Job) -> None:
        effect_id = job.request.effect_id
        ended = False
        try:
            for number in range(1, self.policy.max_attempts + 1):
                attempt = self._attempts.get(effect_id, 0) + 1
                self._attempts[effect_id] = attempt
                await self._store.put(effect_id, job.request, attempt)
                self._emit(effect_id, ReceiptStatus.SENT, attempt=attempt)
                recheck, job.recheck = job.recheck, False
                result = await self._attempt(job.request, recheck=recheck)
                if result.ok:
                    self.delivered += 1
                    if result.existing:
                        self.existing += 1
                    self._emit(
                        effect_id,
                        ReceiptStatus.DELIVERED,
                        attempt=attempt,
                        remote_id=result.remote_id,
                        reason=result.reason,
                    )
                    ended = True
                    return
                self.failed += 1
                reason = result.reason or "failed"
                self.last_reason = reason
                last = result.permanent or number == self.policy.max_attempts
                if last and not result.permanent:
                    reason += f" (gave up after {number} attempts)"
                if last and result.uncertain:
                    reason += (
                        "; the last attempt may have reached the platform (a re-send checks "
                        "first, or repeats the same key)"
                    )
                self._emit(
                    effect_id,
                    ReceiptStatus.FAILED,
                    attempt=attempt,
                    reason=reason,
                    retry_after=result.retry_after,
                    permanent=result.permanent,
                    final=last,
                )
                log.warning(
                    "bridge %s: %s attempt %d failed: %s",
                    self.channel_id,
                    effect_id,
                    attempt,
                    reason,
                )
                if last:
                    ended = True
                    return
                await self._pause(job, number, result.retry_after)
        finally:
            if self._jobs.get(effect_id) is job:
                del self._jobs[effect_id]
            if ended:
                # Not in a finally of its own: a cancelled job (the bridge stops) stays
                # pending and is resumed at the next start.
                self._store.drop(effect_id)

    async def _attempt(self, request: WorkRequest, *, recheck: bool) -> DeliveryResult:
        timeout = self.policy.attempt_timeout
        try:
            return await asyncio.wait_for(self._carry_out(request, recheck=recheck), timeout)
        except TimeoutError:
            # The adapter was cut off mid-attempt; its ledger still says "in flight".
            return DeliveryResult.failed(
                f"no answer within {format_seconds(timeout)}", uncertain=True
            )
        except Exception as exc:  # an adapter bug: retrying the same bug cannot help
            log.exception("bridge %s: the %s adapter failed", self.channel_id, self.channel.kind)
            return DeliveryResult.failed(
                f"internal error in the {self.channel.kind} adapter: {type(exc).__name__}: {exc}",
                permanent=True,
            )

    async def _carry_out(self, request: WorkRequest, *, recheck: bool) -> DeliveryResult:
        """One attempt of ``request`` by the adapter that can do it."""
        channel = self.channel
        if isinstance(request, DeliveryRequest):
            return await channel.deliver(
                request.message,
                idempotency_key=request.idempotency_key,
                previous_remote_id=request.previous_remote_id,
                recheck=recheck,
            )
        if isinstance(request, ReplyRequest) and isinstance(channel, Replier):
            return await channel.reply(request, recheck=recheck)
        if isinstance(request, HideRequest) and isinstance(channel, Hider):
            return await channel.hide(request, recheck=recheck)
        if isinstance(request, QaRequest) and isinstance(channel, QaPublisher):
            return await channel.publish_qa(request, recheck=recheck)
        what = _WHAT[request_type(request)]
        return DeliveryResult.failed(
            f"the {channel.kind} channel {self.channel_id!r} cannot carry out a {what} request",
            permanent=True,
        )

    async def _pause(self, job: _Job, failures: int, retry_after: float | None) -> None:
        """Back off before the next attempt; a console retry cuts it short (not Retry-After)."""
        loop = asyncio.get_running_loop()
        honoured = min(retry_after, self.policy.retry_after_max) if retry_after else 0.0
        not_before = loop.time() + honoured
        delay = self.policy.delay(failures, retry_after, self._rng)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.wake.wait(), delay)
        job.wake.clear()
        remaining = not_before - loop.time()
        if remaining > 0:
            await asyncio.sleep(remaining)

    # ------------------------------------------------------------------ receipts

    def _emit(
        self,
        effect_id: str,
        status: ReceiptStatus,
        *,
        attempt: int,
        reason: str | None = None,
        remote_id: str | None = None,
        retry_after: float | None = None,
        permanent: bool = False,
        final: bool = False,
    ) -> None:
        receipt = Receipt(
            effect_id=effect_id,
            status=status,
            reason=reason[:2000] if reason else reason,
            remote_id=remote_id[:500] if remote_id else remote_id,
            retry_after=None if retry_after is None else min(retry_after, 86_400),
            permanent=permanent,
            final=final or permanent,
            attempt=attempt,
            at=self.clock.now(),
        )
        self.receipts.append(receipt)
        del self.receipts[:-RECEIPT_HISTORY]
        if self.on_receipt is not None:
            try:
                self.on_receipt(receipt)
            except Exception:
                log.exception("bridge receipt listener failed")
        self._outbox.put_nowait(receipt)

    async def _publisher(self) -> None:
        """Publish receipts in order; wait out broker outages without dropping any."""
        while True:
            receipt = await self._outbox.get()
            payload = receipt.to_wire()
            try:
                while True:
                    session = self.session
                    assert session is not None
                    await session.wait_connected()
                    try:
                        await session.publish(self.receipt_topic, payload, qos=1, timeout=10)
                    except NotConnectedError as exc:
                        log.info("bridge %s: receipt waits: %s", self.channel_id, exc)
                        await asyncio.sleep(0.1)  # until the session notices the outage
                        continue
                    except PublishRefusedError as exc:
                        # The ACL refuses this bridge its receipt topic: retrying cannot
                        # help, and one refusal must not hold up every later receipt.
                        self.refused_receipts += 1
                        log.error("bridge %s: receipt refused: %s", self.channel_id, exc)
                        break
                    self.published += 1
                    break
            finally:
                self._outbox.task_done()


# --------------------------------------------------------------------------- CLI


def describe_receipt(channel_id: str, receipt: Receipt) -> str:
    """One line for a person: ``13:05:02 mastodon eff-1 failed #1: 503 … (retry in 7 s)``."""
    at = (receipt.at or datetime.now(UTC)).astimezone()
    head = (
        f"{at:%H:%M:%S} {channel_id} {receipt.effect_id} {receipt.status.value} #{receipt.attempt}"
    )
    if receipt.status is ReceiptStatus.DELIVERED:
        tail = f": {receipt.remote_id}" if receipt.remote_id else ""
        if receipt.reason:
            tail += f" ({receipt.reason})"
        return head + tail
    if receipt.status is ReceiptStatus.FAILED:
        tail = f": {receipt.reason or 'failed'}"
        if receipt.permanent:
            tail += " [permanent]"
        elif receipt.retry_after is not None:
            tail += f" (platform asks to wait {format_seconds(receipt.retry_after)})"
        return head + tail
    return head


async def run_bridge_cli(
    settings: Settings,
    channel_id: str,
    *,
    stop: asyncio.Event | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    intake_factory: IntakeFactory | None = None,
) -> int:
    """``krise bridge CHANNEL``: run one channel's bridge until SIGINT/SIGTERM (or ``stop``).

    Loads the org file (``settings.org_file``, required) and the channel's definition,
    logs in to the configured broker, or to the local embedded one
    (``{data_dir}/broker/endpoint.json``) as ``bridge-<channel>``, checks envelopes
    against the console's public key (``settings.public_key_path``) and prints one line
    per receipt on ``out``. With ``intake_factory`` (the caller passes
    :func:`krise_tui.intake.intake_from_def`: the intake is a sibling layer the bridge
    does not import), a channel with an ``inbound:`` section also runs its intake.
    Ledgers, the replay tracker and the intake's memory live in ``{data_dir}/bridges/``.

    Returns:
        0 after a clean stop; 2 when the configuration is wrong (the reason is printed).
    """
    from krise_tui.bus.broker import BrokerError
    from krise_tui.bus.envelope import KeyFileError, load_public_key
    from krise_tui.bus.login import resolve_login
    from krise_tui.channels.from_org import channel_from_def
    from krise_tui.playbook.loader import PlaybookError, load_org

    out = out or sys.stdout
    err = err or sys.stderr

    def fail(text: str) -> int:
        print(f"krise bridge {channel_id}: {text}", file=err, flush=True)
        return 2

    if settings.org_file is None:
        return fail("no organisation file: set org_file in krise.toml or KRISE_ORG_FILE")
    try:
        org = load_org(settings.org_file)
    except PlaybookError as exc:
        return fail(f"the organisation file is invalid:\n{exc}")
    except OSError as exc:
        return fail(f"cannot read the organisation file: {exc}")
    defn = next((c for c in org.channels if c.id == channel_id), None)
    if defn is None:
        known = ", ".join(c.id for c in org.channels if c.kind.value != "staff")
        return fail(f"{org.slug} has no channel {channel_id!r} (bridges: {known})")
    state_dir = settings.data_dir / "bridges"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        adapter = channel_from_def(defn, state_dir=state_dir, website_url=str(org.website))
        intake = None if intake_factory is None else intake_factory(defn, state_dir)
        login = resolve_login(settings, "bridge", channel_id)
        key = load_public_key(settings.public_key_path)
    except (ValueError, BrokerError, KeyFileError, OSError) as exc:
        return fail(str(exc))

    def print_receipt(receipt: Receipt) -> None:
        print(describe_receipt(channel_id, receipt), file=out, flush=True)

    def print_link(state: LinkState, detail: str) -> None:
        if state in (LinkState.CONNECTED, LinkState.DISCONNECTED):
            suffix = f": {detail}" if detail and state is LinkState.DISCONNECTED else ""
            print(f"krise bridge {channel_id}: {state.value}{suffix}", file=err, flush=True)

    bridge = BridgeRuntime(
        host=login.host,
        port=login.port,
        org=org.slug,
        channel_id=channel_id,
        channel=adapter,
        username=login.username,
        password=login.password,
        public_keys=[key],
        state_file=state_dir / f"{channel_id}.seq.json",
        keepalive=settings.broker.keepalive,
        on_receipt=print_receipt,
        on_link=print_link,
        protocol=login.protocol,
        resolve=lambda: resolve_login(settings, "bridge", channel_id),
        intake=intake,
    )
    stop = stop or asyncio.Event()
    print(
        f"krise bridge {channel_id} ({defn.kind.value}) for {org.slug}: "
        f"{login.host}:{login.port} as {login.username or 'anonymous'}",
        file=err,
        flush=True,
    )
    if intake is not None and defn.inbound is not None:
        where = (
            f"listening on {defn.inbound.listen}{defn.inbound.path}"
            if defn.inbound.listen
            else f"polling mentions every {defn.inbound.poll_interval.total_seconds():g} s"
        )
        print(f"krise bridge {channel_id}: intake {where}", file=err, flush=True)
    with stop_on_signals(stop):
        try:
            await bridge.start()
            await stop.wait()
        finally:
            await bridge.stop()
    return 0
