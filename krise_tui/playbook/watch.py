"""Reload a playbook when its file changes (polling, no extra dependencies).

:class:`PlaybookWatcher` reads the file every ``interval`` seconds and compares the
SHA-256 of its bytes with the last one seen. On a change it validates exactly those
bytes (no race between hashing and parsing) and calls ``on_change(playbook, hash)`` or
``on_error(problems)``. The last good playbook stays in :attr:`PlaybookWatcher.playbook`
while the file is broken, so the console keeps working from it. A file that stays
broken is reported once, not on every poll. Callbacks may be plain functions or
coroutine functions; an exception in one is logged and the watcher keeps going.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
from collections.abc import Callable
from pathlib import Path

from krise_tui.playbook.loader import Problem, read_limited, validate_bytes
from krise_tui.playbook.models import Org, Playbook

log = logging.getLogger(__name__)


class PlaybookWatcher:
    """Poll a playbook file and report valid and broken versions."""

    def __init__(
        self,
        path: Path | str,
        org: Org | None,
        on_change: Callable[[Playbook, str], object],
        on_error: Callable[[list[Problem]], object],
        interval: float = 1.0,
    ) -> None:
        self.path = Path(path)
        """The watched file."""
        self.org = org
        """The org the playbook is checked against (None: no org checks)."""
        self.on_change = on_change
        """Called with a new valid playbook and the SHA-256 of its file."""
        self.on_error = on_error
        """Called with the problems of a new broken version (or an unreadable file)."""
        self.interval = interval
        """Seconds between polls."""
        self.playbook: Playbook | None = None
        """The last valid playbook (kept while the file is broken)."""
        self.hash: str | None = None
        """SHA-256 of the last valid version."""
        self.problems: list[Problem] = []
        """Problems of the current version (empty when it is valid)."""
        self._seen: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def poll(self) -> bool:
        """Check the file once; True when something was reported."""
        file = str(self.path)
        try:
            data = await asyncio.to_thread(read_limited, self.path)
        except OSError as exc:
            state = f"unreadable:{exc.errno}"
            if state == self._seen:
                return False
            self._seen = state
            self.problems = [Problem(file, 1, 1, f"cannot read: {exc.strerror or exc}")]
            await self._call(self.on_error, self.problems)
            return True
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._seen:
            return False
        self._seen = digest
        playbook, problems = await asyncio.to_thread(validate_bytes, data, file=file, org=self.org)
        self.problems = problems
        if playbook is None:
            await self._call(self.on_error, problems)
            return True
        self.playbook, self.hash = playbook, digest
        await self._call(self.on_change, playbook, digest)
        return True

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await self.poll()
            await asyncio.sleep(self.interval)

    def start(self) -> asyncio.Task[None]:
        """Run :meth:`run` as a task (one at a time)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"playbook-watch:{self.path}")
        return self._task

    async def stop(self) -> None:
        """Cancel the task started by :meth:`start` and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> PlaybookWatcher:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _call(self, callback: Callable[..., object], *args: object) -> None:
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("playbook watcher callback failed for %s", self.path)
