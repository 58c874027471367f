"""SIGINT/SIGTERM stop the long-running commands; off the main thread nothing is installed."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

from krise_tui.signals import stop_on_signals


async def test_a_real_sigterm_sets_stop_and_the_handlers_go_afterwards() -> None:
    stop = asyncio.Event()
    with stop_on_signals(stop) as handled:
        assert handled == [signal.SIGINT, signal.SIGTERM]
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 5)
    loop = asyncio.get_running_loop()
    assert not loop.remove_signal_handler(signal.SIGTERM)  # already removed


def test_off_the_main_thread_nothing_is_handled() -> None:
    seen: list[list[signal.Signals]] = []

    async def run() -> None:
        with stop_on_signals(asyncio.Event()) as handled:
            seen.append(list(handled))

    worker = threading.Thread(target=lambda: asyncio.run(run()))
    worker.start()
    worker.join(10)
    assert seen == [[]]
