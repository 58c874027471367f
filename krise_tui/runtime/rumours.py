"""The rumour matching service: every inbound post against the known rumours.

The matcher (:mod:`krise_tui.text.rumours`) embeds text with a small neural model, so it
runs here in one worker thread, never in the engine and never on the event loop; while
intake is in a storm it steps back (:mod:`krise_tui.runtime.pacing`). A
confident match is journaled as a sighting (:class:`RecordSighting`); a sighting of a
rumour whose correction is already published is a *recurrence*, which the engine turns
into an alert. "Maybe" matches are kept here, in memory, for the operator to confirm
with one key (they are a suggestion, not a fact).

The matcher is rebuilt from the state at start (each rumour's claim and its published
correction), with the embeddings cached on disk by text.

A rumour is usually registered after it has been going round for a while: when one is
registered, the posts that came before it (the newest :data:`BACKFILL_POSTS`) are matched
against it too, so its sightings, its spread per hour and its channels start where the
rumour did, not where the operator noticed it. Each post's sighting is dated when the
post arrived.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from krise_tui.core.features.inbound import PostReceived
from krise_tui.core.features.rumours import (
    CorrectionLinked,
    RecordSighting,
    RumourCorrected,
    RumourRegistered,
)
from krise_tui.core.kernel import EventBase
from krise_tui.core.state import IncidentState
from krise_tui.runtime.embedding import EmbeddingCache
from krise_tui.runtime.outbox import Submit
from krise_tui.runtime.pacing import IntakeGauge

log = logging.getLogger(__name__)

MAYBES_KEPT = 200
CHUNK = 64
"""Posts matched at once when many are waiting (bulk embedding is ~2x faster)."""
BACKFILL_POSTS = 5000
"""Earlier posts matched against a newly registered rumour (the newest first)."""
BACKFILL_CHUNK = 256
"""Earlier posts matched at a time (intake may pause the backfill between chunks)."""


@dataclass(frozen=True)
class Maybe:
    """A post that might repeat a rumour (for the operator to confirm or dismiss)."""

    rumour_id: str
    post_key: str
    score: float


class MatchingService:
    """Matches posts against known rumours in one worker thread; journals sightings."""

    def __init__(
        self,
        *,
        state: Callable[[], IncidentState],
        submit: Submit,
        cache_path: Path | None = None,
        matcher_factory: Callable[..., Any] | None = None,
        gauge: IntakeGauge | None = None,
    ) -> None:
        self._state = state
        self._submit = submit
        self._cache_path = cache_path
        self._factory = matcher_factory
        self._gauge = gauge
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rumours")
        self._posts: asyncio.Queue[str] = asyncio.Queue()
        self._texts: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._backfill: asyncio.Queue[str] = asyncio.Queue()
        self._matcher: Any = None
        self._added: set[tuple[str, str]] = set()
        self._cache: EmbeddingCache | None = None
        self.maybes: deque[Maybe] = deque(maxlen=MAYBES_KEPT)
        self.error: str | None = None

    @property
    def backlog(self) -> int:
        """Posts waiting to be matched."""
        return self._posts.qsize()

    def on_events(self, state: IncidentState, events: list[EventBase]) -> None:
        """Queue new posts and new rumour texts (a state listener: never blocks)."""
        for event in events:
            if isinstance(event, PostReceived):
                self._posts.put_nowait(event.key)
            elif isinstance(event, RumourRegistered):
                self._texts.put_nowait((event.rumour_id, event.claim))
                self._backfill.put_nowait(event.rumour_id)
            elif isinstance(event, RumourCorrected):
                version = state.messages.versions.get(event.version_id)
                if version is not None:
                    for v in version.variants:
                        text = f"{v.get('headline', '')}\n{v.get('body', '')}".strip()
                        if text:
                            self._texts.put_nowait((event.rumour_id, text))
            elif isinstance(event, CorrectionLinked):
                pass  # the correction counts once it is published

    async def _in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _build(self, texts: list[tuple[str, str]]) -> Any:
        from krise_tui.text import embed
        from krise_tui.text.rumours import RumourMatcher

        if self._cache_path is not None and self._cache is None:
            self._cache = EmbeddingCache(self._cache_path, lambda t: embed.encode(t))
        factory = self._factory or RumourMatcher
        self._matcher = factory(embedder=self._cache) if self._cache is not None else factory()
        self._added.clear()
        for rumour_id, text in texts:
            self._add(rumour_id, text)
        return self._matcher

    def _known_texts(self) -> list[tuple[str, str]]:
        state = self._state()
        texts: list[tuple[str, str]] = []
        for r in state.rumours.rumours.values():
            texts.append((r.rumour_id, r.claim))
            version = state.messages.versions.get(r.correction_version or "")
            if version is not None:
                for v in version.variants:
                    text = f"{v.get('headline', '')}\n{v.get('body', '')}".strip()
                    if text:
                        texts.append((r.rumour_id, text))
        return texts

    async def run(self) -> None:
        """Rebuild, then match each post as it comes (never blocking intake or the UI)."""
        try:
            self._matcher = await self._in_worker(self._build, self._known_texts())
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("rumour matching is unavailable: %s", self.error)
            raise
        while True:
            await self._take_new_texts()
            await self._backfill_new_rumours()
            try:
                first = await asyncio.wait_for(self._posts.get(), 1.0)
            except TimeoutError:
                continue
            keys = [first]
            try:
                if self._gauge is not None and self._state().rumours.rumours:
                    await self._gauge.calm()  # a storm of posts: let intake have the cores
                while len(keys) < CHUNK and not self._posts.empty():
                    keys.append(self._posts.get_nowait())
                await self._take_new_texts()  # a rumour registered just before these posts
                await self._match(keys)
            finally:
                for _ in keys:
                    self._posts.task_done()

    async def _take_new_texts(self) -> None:
        while not self._texts.empty():
            rumour_id, text = self._texts.get_nowait()
            await self._in_worker(self._add, rumour_id, text)

    def _add(self, rumour_id: str, text: str) -> None:
        # A text queued while the matcher was being rebuilt may already be in it.
        if (rumour_id, text) in self._added:
            return
        self._added.add((rumour_id, text))
        try:
            self._matcher.add(rumour_id, text)
        except ValueError as exc:  # a text with no words: keep the others
            log.warning("rumour %s: %s", rumour_id, exc)

    async def _backfill_new_rumours(self) -> None:
        while not self._backfill.empty():
            rumour_id = self._backfill.get_nowait()
            try:
                await self._backfill_one(rumour_id)
            except Exception:  # matching is advice: a failure here must not stop the rest
                log.exception("rumour %s: matching the earlier posts failed", rumour_id)
            finally:
                self._backfill.task_done()

    async def _backfill_one(self, rumour_id: str) -> None:
        """Match the posts that came before ``rumour_id`` was registered against it."""
        state = self._state()
        rumour = state.rumours.rumours.get(rumour_id)
        if rumour is None or self._matcher is None:
            return
        seen = {s.post_key for s in rumour.sightings}
        posts = sorted(
            (p for p in state.inbound.posts.values() if p.key not in seen and p.text.strip()),
            key=lambda p: p.received_at,
        )[-BACKFILL_POSTS:]
        if not posts:
            return
        top = min(3, max(1, len(state.rumours.rumours)))
        results: list[Any] = []
        for start in range(0, len(posts), BACKFILL_CHUNK):
            # Thousands of posts are minutes of model work: a chunk at a time, each after
            # intake has calmed down (a rumour is often registered in the middle of a storm).
            if self._gauge is not None:
                await self._gauge.calm()
            chunk = [p.text for p in posts[start : start + BACKFILL_CHUNK]]
            results += await self._in_worker(self._matcher.match_many, chunk, top)
        found = 0
        for post, matches in zip(posts, results, strict=True):
            for match in matches:
                if match.rumour_id != rumour_id:
                    continue
                if match.decision == "sighting":
                    found += 1
                    await self._submit(
                        RecordSighting(rumour_id, post.key, float(match.score)), actor="matching"
                    )
                elif match.decision == "maybe":
                    self.maybes.append(Maybe(rumour_id, post.key, float(match.score)))
        log.info("rumour %s: %d of %d earlier posts repeat it", rumour_id, found, len(posts))

    async def _match(self, keys: list[str]) -> None:
        """Match posts (many at once in a storm: bulk embedding is about twice as fast)."""
        state = self._state()
        if not state.rumours.rumours or self._matcher is None:
            return
        posts = [p for p in (state.inbound.posts.get(key) for key in keys) if p is not None]
        if not posts:
            return
        results = await self._in_worker(self._matcher.match_many, [p.text for p in posts], 3)
        for post, matches in zip(posts, results, strict=True):
            for match in matches:
                if match.decision == "sighting":
                    await self._submit(
                        RecordSighting(match.rumour_id, post.key, float(match.score)),
                        actor="matching",
                    )
                elif match.decision == "maybe":
                    self.maybes.append(Maybe(match.rumour_id, post.key, float(match.score)))

    async def flush(self) -> None:
        """Wait until every queued post is matched, and every earlier post against every
        newly registered rumour."""
        await self._posts.join()
        await self._backfill.join()

    async def stop(self) -> None:
        """Stop the worker."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._cache is not None:
            self._cache.close()
