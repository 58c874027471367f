"""The one-thread worker the journal and the bridge state store run their SQLite on."""

from __future__ import annotations

import asyncio
import threading

import pytest

from krise_tui.worker import ThreadWorker, WorkerStopped


async def test_jobs_run_in_order_on_one_thread_of_their_own() -> None:
    worker = ThreadWorker("test-worker")
    seen: list[tuple[int, str]] = []

    def job(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        return i * i

    try:
        results = await asyncio.gather(*(worker.submit(job, i) for i in range(50)))
    finally:
        worker.shutdown()
    assert results == [i * i for i in range(50)]
    assert [i for i, _ in seen] == list(range(50))
    assert {name for _, name in seen} == {"test-worker"}
    assert threading.current_thread().name != "test-worker"


async def test_an_error_reaches_its_caller_and_the_next_job_still_runs() -> None:
    worker = ThreadWorker("test-worker")

    def fails() -> None:
        raise ValueError("disk says no")

    def stops() -> None:
        raise StopIteration  # a future cannot hold this one

    try:
        with pytest.raises(ValueError, match="disk says no"):
            await worker.submit(fails)
        with pytest.raises(RuntimeError, match="StopIteration"):
            await worker.submit(stops)
        assert await worker.submit(lambda: "after") == "after"
    finally:
        worker.shutdown()


async def test_a_cancelled_caller_loses_only_its_result() -> None:
    worker = ThreadWorker("test-worker")
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def slow() -> str:
        started.set()
        release.wait(5)
        ran.append("slow")
        return "slow"

    try:
        first = worker.submit(slow)
        queued = worker.submit(lambda: ran.append("queued"))
        await asyncio.to_thread(started.wait, 5)
        first.cancel()
        queued.cancel()
        release.set()
        # Once submitted a job runs (a write is never half-done by a cancellation).
        assert await worker.submit(lambda: list(ran)) == ["slow", "queued"]
        assert first.cancelled() and queued.cancelled()
    finally:
        worker.shutdown()


async def test_shutdown_runs_what_was_given_then_refuses_more() -> None:
    worker = ThreadWorker("test-worker")
    done: list[int] = []
    for i in range(5):
        worker.post(done.append, i)
    worker.post(lambda: 1 / 0)  # logged, not fatal to the jobs after it
    worker.post(done.append, 5)
    worker.shutdown()
    worker.shutdown()  # idempotent
    assert done == [0, 1, 2, 3, 4, 5]
    assert worker.stopped
    with pytest.raises(WorkerStopped):
        worker.submit(int)
    with pytest.raises(WorkerStopped):
        worker.post(int)
