"""The batching service: puts each question into a batch, off the event loop.

The batcher (:mod:`krise_tui.text.batching`) embeds text with a small neural model, so
it is neither pure nor instant: it runs here, in one worker thread, never in the engine
and never on the event loop. Each decision is journaled as a command with the
batcher's own operation (:class:`~krise_tui.core.features.questions.AssignToBatch`),
and at start the batcher is rebuilt by replaying those operations from the state, so a
restart (or a drill replay) shows exactly the batches the operators saw.

Posts arrive faster than the model in a storm: they wait in a queue whose length is
the *backlog* the console shows; intake and the screen never wait for the batcher,
and while intake is in a storm the batcher steps back (:mod:`krise_tui.runtime.pacing`).
Embeddings are cached on disk by text, so a rebuild after a restart does not embed
every question again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from krise_tui.core.features.questions import (
    BATCHED,
    AssignToBatch,
    MergeBatches,
    MoveQuestion,
    PostTriaged,
    SeedBatch,
    SplitBatch,
    post_of,
)
from krise_tui.core.kernel import Accepted, Decision, EventBase, Rejection
from krise_tui.core.state import IncidentState
from krise_tui.playbook.models import Playbook
from krise_tui.rules.triage import Label
from krise_tui.runtime.embedding import EmbeddingCache
from krise_tui.runtime.outbox import Submit
from krise_tui.runtime.pacing import IntakeGauge

log = logging.getLogger(__name__)

CHUNK = 64
"""Questions given to the model at once when many are waiting (bulk is ~2x faster)."""


class BatchingService:
    """Runs the batcher in one worker thread and journals what it decides."""

    def __init__(
        self,
        *,
        state: Callable[[], IncidentState],
        submit: Submit,
        submit_many: Callable[..., Any],
        cache_path: Path | None = None,
        batcher_factory: Callable[..., Any] | None = None,
        gauge: IntakeGauge | None = None,
    ) -> None:
        self._state = state
        self._submit = submit
        self._submit_many = submit_many
        self._cache_path = cache_path
        self._factory = batcher_factory
        self._gauge = gauge
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batching")
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._batcher: Any = None
        self._cache: EmbeddingCache | None = None
        self._ready = asyncio.Event()
        self._seed_wanted: Playbook | None = None
        self.error: str | None = None
        """Why batching does not work (the model is missing…), shown by the console."""

    @property
    def backlog(self) -> int:
        """Questions waiting for the batcher."""
        return self._queue.qsize()

    @property
    def ready(self) -> bool:
        """Whether the batcher has been rebuilt and takes questions."""
        return self._ready.is_set()

    def on_events(self, state: IncidentState, events: list[EventBase]) -> None:
        """Queue every newly triaged question (a state listener: never blocks)."""
        for event in events:
            if isinstance(event, PostTriaged) and Label(event.label) in BATCHED:
                q = state.questions.questions.get(event.key)
                if q is not None and q.batch_id is None and event.key not in self._queued:
                    self._queued.add(event.key)
                    self._queue.put_nowait(event.key)

    async def _in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _build(self, ops: list[dict[str, Any]]) -> Any:
        from krise_tui.text import batching, embed

        if self._cache_path is not None and self._cache is None:
            self._cache = EmbeddingCache(self._cache_path, lambda t: embed.encode(t))
        kwargs: dict[str, Any] = {}
        if self._cache is not None:
            kwargs["encoder"] = self._cache
        if self._factory is not None:
            return self._factory(ops, **kwargs)
        if ops:
            operations = [batching.operation_from_dict(op) for op in ops]
            return batching.Batcher.replay(operations, **kwargs)
        return batching.Batcher(**kwargs)

    async def start(self) -> None:
        """Rebuild the batcher from the journaled operations (in the worker)."""
        state = self._state()
        try:
            self._batcher = await self._in_worker(self._build, list(state.questions.batch_ops))
        except Exception as exc:  # the model package missing or broken: say so, keep going
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("question batching is unavailable: %s", self.error)
            raise
        self._ready.set()
        for q in state.questions.questions.values():  # triaged before a crash, not batched
            waiting = Label(q.label) in BATCHED and q.batch_id is None and not q.hidden
            if waiting and q.key not in self._queued:
                self._queued.add(q.key)
                self._queue.put_nowait(q.key)

    def request_seed(self, playbook: Playbook) -> None:
        """Seed the playbook's anticipated questions as soon as the batcher is ready."""
        self._seed_wanted = playbook

    async def seed(self, playbook: Playbook) -> None:
        """Open a batch for each anticipated question the playbook has (once each)."""
        await self._ready.wait()
        seeded = {b.seed_question_id for b in self._state().questions.batches.values()}
        for question in playbook.questions:
            if question.id in seeded:
                continue
            batch_id = f"q-{question.id}"
            texts = [str(t) for t in question.question.values() if isinstance(t, str)]
            op = {"kind": "seed", "batch_id": batch_id, "texts": texts}
            suggested = tuple(
                (lang, str(text)) for lang, text in question.answer.items() if isinstance(text, str)
            )
            title = str(question.question.get("nb") or texts[0])
            decision = await self._submit(
                SeedBatch(batch_id, question.id, title, suggested, op), actor="system"
            )
            if isinstance(decision, Accepted) and decision.events:
                await self._in_worker(self._batcher.seed, batch_id, texts)

    async def run(self) -> None:
        """Rebuild, seed, then batch questions as they come (many at once in a storm)."""
        if not self._ready.is_set():
            await self.start()
        while True:
            if self._seed_wanted is not None:
                playbook, self._seed_wanted = self._seed_wanted, None
                await self.seed(playbook)
            try:
                first = await asyncio.wait_for(self._queue.get(), 1.0)
            except TimeoutError:
                continue
            if self._gauge is not None:  # a storm of posts: let intake have the cores
                await self._gauge.calm()
            keys = [first]
            while len(keys) < CHUNK and not self._queue.empty():
                keys.append(self._queue.get_nowait())
            state = self._state()
            posts = []
            for key in keys:
                q = state.questions.questions.get(key)
                if q is not None and q.batch_id is None:
                    posts.append((key, post_of(state, q).text))
            try:
                if posts:
                    placed = await self._in_worker(self._add, posts)
                    commands: list[object] = [
                        AssignToBatch(key, batch_id, score, new, op)
                        for key, batch_id, score, new, op in placed
                    ]
                    decisions = await self._submit_many(commands, actor="batching")
                    if any(isinstance(d, Rejection) for d in decisions):
                        log.error("a batching decision was refused: rebuilding the batcher")
                        ops = list(self._state().questions.batch_ops)
                        self._batcher = await self._in_worker(self._build, ops)
            finally:
                for key in keys:
                    self._queued.discard(key)
                    self._queue.task_done()

    def _add(
        self, posts: list[tuple[str, str]]
    ) -> list[tuple[str, str, float, bool, dict[str, Any]]]:
        """In the worker: place the posts and return what to journal for each."""
        assignments = self._batcher.add_many(posts)
        ops = self._batcher.operations[-len(assignments) :]
        return [
            (a.post_id, a.batch_id, float(a.score), bool(a.new), op.to_dict())
            for a, op in zip(assignments, ops, strict=True)
        ]

    async def flush(self) -> None:
        """Wait until every queued question is batched."""
        await self._queue.join()

    # --- operators ---------------------------------------------------------------------

    async def _operate(self, command: object, op: dict[str, Any]) -> Decision:
        """Journal an operator's change first; the batcher follows only if accepted."""
        from krise_tui.text.batching import operation_from_dict

        decision = await self._submit(command)
        if isinstance(decision, Accepted) and decision.events and self._batcher is not None:
            await self._in_worker(self._batcher.apply, operation_from_dict(op))
        return decision

    async def merge(self, kept: str, absorbed: str) -> Decision:
        """Merge two batches (later questions go to the merged one)."""
        op = {"kind": "merge", "kept": kept, "absorbed": absorbed}
        return await self._operate(MergeBatches(kept, absorbed, op), op)

    async def move(self, key: str, batch_id: str) -> Decision:
        """Move a question to another batch."""
        op = {"kind": "move", "post_id": key, "batch_id": batch_id}
        return await self._operate(MoveQuestion(key, batch_id, op), op)

    async def split(self, keys: Sequence[str], new_batch_id: str) -> Decision:
        """Split questions out into a new batch."""
        op = {"kind": "split", "post_ids": list(keys), "batch_id": new_batch_id}
        return await self._operate(SplitBatch(tuple(keys), new_batch_id, op), op)

    async def stop(self) -> None:
        """Stop the worker (what is queued stays journaled; it is batched at next start)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._cache is not None:
            self._cache.close()
