"""Stop a long-running command on SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[list[signal.Signals]]:
    """While inside, SIGINT and SIGTERM set ``stop``; yields the signals that are handled.

    asyncio can install signal handlers only in the main thread of a process on a
    platform with Unix signals; elsewhere ``add_signal_handler`` raises
    NotImplementedError (no Unix signals), RuntimeError or ValueError (not the main
    thread, e.g. a test running the command in a worker thread). Then nothing is handled
    and the caller stops by setting ``stop`` itself.
    """
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in STOP_SIGNALS:
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            break  # the same reason holds for the other signal
        handled.append(signum)
    try:
        yield handled
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
