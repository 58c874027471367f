"""What stands between the internet and the bus: signatures, replay memory, rate limits.

- :func:`webhook_signature` / :func:`signature_matches`: HMAC-SHA256, compared in
  constant time. A krise webhook signs ``"{timestamp}." + body`` (the timestamp is in
  the signed bytes, so an old body cannot be sent again under a new time); Facebook
  signs the body alone (``X-Hub-Signature-256``).
- :class:`SeenMemory`: keys (request signatures, post ids) remembered until they
  expire, kept on disk as an append-only JSON-lines file so a restarted bridge still
  refuses a replay. A key is *reserved* while its request is being published and only
  *remembered* once the broker has the post: a request that failed (503) can be retried.
- :class:`TokenBuckets`: one token bucket per source (a sender's number, a network
  address). The excess is answered 429 with a ``Retry-After`` and counted, never
  dropped without an answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from krise_tui.files import atomic_write

log = logging.getLogger(__name__)

SIGNATURE_PREFIX = "sha256="
"""The scheme prefix of a signature header value (krise webhooks and Facebook alike)."""


def hmac_hex(secret: bytes, data: bytes) -> str:
    """HMAC-SHA256 of ``data`` under ``secret``, lower-case hex."""
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


def webhook_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Krise-Signature`` value of a webhook request: ``sha256=<hex>`` over
    ``"{timestamp}." + body``."""
    return SIGNATURE_PREFIX + hmac_hex(secret, timestamp.encode("ascii") + b"." + body)


def signature_matches(expected: str, header: str | None) -> bool:
    """Whether ``header`` is ``expected`` (constant time; case of the hex ignored)."""
    if header is None:
        return False
    return hmac.compare_digest(expected.encode("ascii"), header.strip().lower().encode("ascii"))


# --------------------------------------------------------------------------- replays


class SeenMemory:
    """Keys remembered until they expire (seconds since the epoch), bounded in number.

    On disk (``path``) as JSON lines ``{"k": key, "x": expiry}``, appended and fsync'd
    as keys are remembered, compacted when more than half the lines are stale. Without
    a path it lives in memory (a restart forgets it).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, float] = OrderedDict()
        self._reserved: set[str] = set()
        self._lines = 0
        self._lock = asyncio.Lock()

    def load(self) -> None:
        """Read the file (a missing one is empty; unreadable lines are skipped)."""
        self._entries.clear()
        self._lines = 0
        if self.path is None:
            return
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("%s: cannot read the replay memory (%s): starting empty", self.path, exc)
            return
        now = self._clock()
        for line in text.splitlines():
            self._lines += 1
            try:
                item = json.loads(line)
                key, expiry = str(item["k"]), float(item["x"])
            except (ValueError, TypeError, KeyError):
                continue  # a line cut short by a crash
            if expiry > now:
                self._entries[key] = expiry
                self._entries.move_to_end(key)
        self._trim()
        if self._lines > 2 * len(self._entries) + 100:
            self._compact()

    def seen(self, key: str) -> bool:
        """Whether ``key`` is remembered (and not expired) or reserved right now."""
        if key in self._reserved:
            return True
        expiry = self._entries.get(key)
        return expiry is not None and expiry > self._clock()

    def reserve(self, key: str) -> bool:
        """Hold ``key`` while its request is carried out; False when it is seen already."""
        if self.seen(key):
            return False
        self._reserved.add(key)
        return True

    def release(self, key: str) -> None:
        """Give a reservation up (the request failed and may be retried)."""
        self._reserved.discard(key)

    async def remember(self, items: Iterable[tuple[str, float]]) -> None:
        """Remember each ``(key, seconds to keep it)``; on disk before this returns."""
        now = self._clock()
        lines = []
        for key, ttl in items:
            self._reserved.discard(key)
            self._entries[key] = now + ttl
            self._entries.move_to_end(key)
            lines.append(json.dumps({"k": key, "x": round(now + ttl, 3)}) + "\n")
        self._trim()
        if self.path is None or not lines:
            return
        async with self._lock:
            try:
                await asyncio.to_thread(self._append, "".join(lines))
            except OSError as exc:
                # The post is on the bus and the console de-duplicates by id: only the
                # refusal of a replay after a restart is lost.
                log.warning("%s: cannot save the replay memory: %s", self.path, exc)

    def _append(self, text: str) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self._lines += text.count("\n")
        if self._lines > 2 * len(self._entries) + 1000:
            self._compact()

    def _compact(self) -> None:
        assert self.path is not None
        text = "".join(
            json.dumps({"k": key, "x": round(expiry, 3)}) + "\n"
            for key, expiry in self._entries.items()
        )
        try:
            atomic_write(self.path, text.encode("utf-8"), mode=0o600)
        except OSError as exc:
            log.warning("%s: cannot compact the replay memory: %s", self.path, exc)
            return
        self._lines = len(self._entries)

    def _trim(self) -> None:
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


# --------------------------------------------------------------------------- rate limits


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """A token bucket per key: ``burst`` tokens, refilled at ``per_minute`` a minute.

    At most ``max_keys`` buckets are kept; the least recently used full ones go first
    (a bucket that is full again holds no information).
    """

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float | None:
        """Take a token for ``key``: None when there was one, else the seconds until
        there will be (for ``Retry-After``)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            self._evict()
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            self._buckets.move_to_end(key)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate

    def _evict(self) -> None:
        if len(self._buckets) <= self.max_keys:
            return
        now = self._clock()
        for key in list(self._buckets):
            if len(self._buckets) <= self.max_keys:
                return
            bucket = self._buckets[key]
            if bucket.tokens + (now - bucket.at) * self.rate >= self.burst:
                del self._buckets[key]
        while len(self._buckets) > self.max_keys:
            # Every bucket is in use: the oldest goes (that source gets a fresh burst).
            self._buckets.popitem(last=False)


def mask(value: str) -> str:
    """``value`` shortened for a log line (a phone number or address is personal data)."""
    return value if len(value) <= 4 else f"{value[:4]}…"
