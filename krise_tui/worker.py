"""One thread that runs blocking jobs in order and hands each result to the event loop.

The journal and each bridge's state store keep one SQLite connection on a thread of
their own: every operation is a job on it, run in the order submitted, so each sees the
ones before it. ``loop.run_in_executor`` on a one-thread ``ThreadPoolExecutor`` does the
same, but wraps every job in a ``concurrent.futures.Future`` chained to an asyncio one
(a lock, callbacks and a second hop per job): on this two-core machine a round trip cost
30 µs against 15 µs here, and a commit (the thread waits for the disk meanwhile) 80 µs
more, which is most of what a one-event journal append costs beyond its fsync.

A job once submitted runs: a caller cancelled while its job waits or runs only loses the
result (as with an executor's job that has started). Callers that must not lose track of
a write shield the future, or commit nothing they cannot see (the journal's writer folds
only what :meth:`Journal.append` returned).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_Job = tuple[
    asyncio.AbstractEventLoop | None,
    "asyncio.Future[Any] | None",
    Callable[..., Any],
    tuple[Any, ...],
]
"""The loop and future to answer on (None for :meth:`ThreadWorker.post`), the job."""


class WorkerStopped(RuntimeError):
    """A job was submitted to a worker that has been shut down."""


class ThreadWorker:
    """A thread of its own, running the jobs given to it one at a time, in order."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._stopped = False
        # A daemon: a program that forgets to shut it down still exits (SQLite, its only
        # user, is crash-safe: a commit cut short by exit is rolled back at the next open).
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``fn(*args)`` on the thread after the jobs before it; its result (or
        exception) comes back in the returned future, on the running loop."""
        if self._stopped:
            raise WorkerStopped(f"{self._thread.name}: the worker has been shut down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, fn, args))
        return future

    def post(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on the thread after the jobs before it, with no result
        (from sync code; an error is logged)."""
        if self._stopped:
            raise WorkerStopped(f"{self._thread.name}: the worker has been shut down")
        self._jobs.put((None, None, fn, args))

    def shutdown(self, *, wait: bool = True) -> None:
        """Run the jobs already given, then end the thread (idempotent)."""
        if not self._stopped:
            self._stopped = True
            self._jobs.put(None)
        if wait and self._thread is not threading.current_thread():
            self._thread.join()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, fn, args = job
            try:
                result = fn(*args)
            except BaseException as exc:
                if future is None:
                    log.exception("%s: a job failed", self._thread.name)
                else:
                    _deliver(loop, future, None, exc)
                continue
            if future is not None:
                _deliver(loop, future, result, None)


def _deliver(
    loop: asyncio.AbstractEventLoop | None,
    future: asyncio.Future[Any],
    result: object,
    exc: BaseException | None,
) -> None:
    assert loop is not None
    try:
        loop.call_soon_threadsafe(_settle, future, result, exc)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass


def _settle(future: asyncio.Future[Any], result: object, exc: BaseException | None) -> None:
    if future.done():  # cancelled by its caller meanwhile
        return
    if isinstance(exc, StopIteration):  # a future cannot hold one (PEP 479)
        exc = RuntimeError(f"a job raised StopIteration: {exc!r}")
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
