"""The intake of one bridge: its sources, supervised, and the HTTP server they share.

An :class:`Intake` runs one or more :class:`Source` loops (an HTTP server for a webhook,
a Mastodon poller) in the bridge's event loop. A source that dies — a bug, a port
already taken, anything it did not handle itself — is logged at ERROR with its
traceback, counted in :attr:`Intake.restarts`, and started again after a capped,
jittered backoff: an intake never stops silently while its bridge runs.

What is wrong with an intake *now* is also said to whoever watches it
(:meth:`Intake.on_trouble`; the console shows it in its banner): a source that died, and
a poller's own trouble (:class:`Trouble`: a mailbox that refuses the login, an instance
that does not answer, a message that cannot be read), each cleared when it is over.

:func:`serve` runs an :mod:`aiohttp.web` application on ``host:port`` until cancelled.
aiohttp parses HTTP (no hand-written parsing), bounds the body (``client_max_size``,
answered 413) and runs in the bridge's own event loop, started and stopped by the
bridge, without installing signal handlers or owning the loop as uvicorn does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiohttp import web

from krise_tui.backoff import backoff_delay
from krise_tui.intake.guard import mask
from krise_tui.wire.inbound import InboundPost

log = logging.getLogger(__name__)

InboundSink = Callable[[InboundPost], Awaitable[None]]
"""Publishes one post on the channel's ``in`` topic; returns once the broker has it."""

HEALTHY_AFTER = 60.0
"""Seconds a restarted source must run before its backoff starts from the bottom again."""


class Source(Protocol):
    """One way posts come in: runs until cancelled, raises when it dies."""

    @property
    def name(self) -> str:
        """What it is, for logs: ``webhook 127.0.0.1:8471``, ``mastodon mentions``."""
        ...

    async def run(self, sink: InboundSink) -> None:
        """Take posts in and hand each to ``sink`` until cancelled."""
        ...


TroubleListener = Callable[[str, str | None], None]
"""``(source name, what is wrong, or None when it is over)``."""


class Trouble:
    """What is wrong with one source now, as the source itself sees it: a poller calls it
    with a problem when a poll fails and with None when one succeeds. Repeats are not
    passed on; the intake that runs the source listens (:meth:`Intake.on_trouble`)."""

    def __init__(self) -> None:
        self.problem: str | None = None
        self._listeners: list[Callable[[str | None], None]] = []

    def __call__(self, problem: str | None) -> None:
        if problem == self.problem:
            return
        self.problem = problem
        for listener in list(self._listeners):
            listener(problem)

    def listen(self, listener: Callable[[str | None], None]) -> None:
        """Pass every change to ``listener``; the current problem, if any, at once."""
        self._listeners.append(listener)
        if self.problem is not None:
            listener(self.problem)


class Intake:
    """A bridge's intake: its sources, each supervised (logged at ERROR and restarted
    when it dies), and what is wrong with them now (:attr:`trouble`)."""

    def __init__(
        self,
        channel_id: str,
        sources: Sequence[Source],
        *,
        restart_min: float = 0.5,
        restart_max: float = 30.0,
        healthy_after: float = HEALTHY_AFTER,
    ) -> None:
        self.channel_id = channel_id
        self.sources = list(sources)
        self.restart_min = restart_min
        self.restart_max = restart_max
        self.healthy_after = healthy_after
        self.restarts = 0
        """Times a source died and was started again."""
        self.last_error: str | None = None
        """Why the newest death happened."""
        self.trouble: dict[str, str] = {}
        """Source name -> what is wrong with it now (a death, or the source's own
        :class:`Trouble`); empty when all is well."""
        self._trouble_listeners: list[TroubleListener] = []
        self._deaths: dict[str, int] = {}
        self._timers: list[asyncio.TimerHandle] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._rng = random.Random()
        for source in self.sources:
            own = getattr(source, "trouble", None)
            if isinstance(own, Trouble):
                own.listen(functools.partial(self._report, source.name))

    def on_trouble(self, listener: TroubleListener) -> None:
        """Call ``listener(source, problem | None)`` when a source's trouble starts,
        changes or is over (what is wrong already is passed at once)."""
        self._trouble_listeners.append(listener)
        for name, problem in list(self.trouble.items()):
            listener(name, problem)

    def _report(self, source: str, problem: str | None) -> None:
        if self.trouble.get(source) == problem:
            return
        if problem is None:
            self.trouble.pop(source, None)
        else:
            self.trouble[source] = problem
        for listener in list(self._trouble_listeners):
            try:
                listener(source, problem)
            except Exception:
                log.exception("intake %s: a trouble listener failed", self.channel_id)

    def _healthy_again(self, source: str, death: int) -> None:
        """A restarted source has run :attr:`healthy_after` seconds without dying again."""
        if self._deaths.get(source) == death:
            self._report(source, None)

    @property
    def running(self) -> bool:
        """Whether the intake was started and not stopped."""
        return bool(self._tasks)

    async def start(self, sink: InboundSink) -> None:
        """Start every source in the background (never raises for a source's trouble)."""
        if self._tasks:
            raise RuntimeError(f"the intake of {self.channel_id!r} is already started")
        self._tasks = [
            asyncio.create_task(
                self._supervise(source, sink), name=f"intake-{self.channel_id}-{source.name}"
            )
            for source in self.sources
        ]

    async def stop(self) -> None:
        """Stop every source and wait for it."""
        tasks, self._tasks = self._tasks, []
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _supervise(self, source: Source, sink: InboundSink) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            started = loop.time()
            if source.name in self._deaths:  # clears the death's trouble if it lasts
                death = self._deaths[source.name]
                self._timers = [t for t in self._timers if not t.cancelled()]
                self._timers.append(
                    loop.call_later(self.healthy_after, self._healthy_again, source.name, death)
                )
            try:
                await source.run(sink)
                raise RuntimeError("the source returned (it should run until stopped)")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if loop.time() - started >= self.healthy_after:
                    failures = 0
                failures += 1
                self.restarts += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = backoff_delay(
                    failures, base=self.restart_min, cap=self.restart_max, rng=self._rng
                )
                log.error(
                    "intake %s: %s died (%s); restarting in %.1f s",
                    self.channel_id,
                    source.name,
                    self.last_error,
                    delay,
                    exc_info=exc,
                )
                self._deaths[source.name] = self._deaths.get(source.name, 0) + 1
                self._report(
                    source.name, f"stopped ({self.last_error}); started again in {delay:.0f} s"
                )
            # A restart timer, not synchronisation: wait before trying again.
            await asyncio.sleep(delay)


# --------------------------------------------------------------------------- pollers

STOP_GRACE = 5.0
"""Seconds a stop waits for the post being published (the bridge stops its intake
before it leaves the broker)."""


class UncutSteps:
    """A poller's "publish one post, then move its cursor" steps, which a stop does not cut
    in two: a cancelled poller leaves the step running, and :meth:`finish` (in the
    poller's ``finally``) lets it end, at most :data:`STOP_GRACE` seconds. Cut in two, the
    post would be on the broker with the cursor still before it: published again at the
    next start."""

    def __init__(self) -> None:
        self._step: asyncio.Task[None] | None = None

    async def run(self, step: Awaitable[None]) -> None:
        """Run one step to its end, even if the caller is cancelled meanwhile."""
        self._step = asyncio.ensure_future(step)
        await asyncio.shield(self._step)
        self._step = None

    async def finish(self) -> None:
        """Let a step that a stop interrupted end (the broker away: it comes again)."""
        step = self._step
        if step is not None and not step.done():
            try:
                await asyncio.wait_for(asyncio.shield(step), STOP_GRACE)
            except Exception:
                step.cancel()


# --------------------------------------------------------------------------- HTTP


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Serve ``app`` on ``host:port`` until cancelled (raises ``OSError`` when it cannot
    listen). ``on_listening`` gets the bound port (useful with port 0)."""
    # No access log: request lines would put senders' addresses into logs for nothing.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host.strip("[]"), port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        log.info("intake listening on %s:%s", host, bound)
        if on_listening is not None:
            on_listening(int(bound))
        await asyncio.Event().wait()  # until cancelled
    finally:
        await runner.cleanup()


def refusal(status: int, reason: str, *, retry_after: float | None = None) -> web.Response:
    """A JSON refusal ``{"status": "refused", "reason": …}`` (with ``Retry-After``)."""
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    body = {"status": "refused", "reason": reason}
    return web.json_response(body, status=status, headers=headers)


def remote_address(request: web.Request) -> str:
    """The peer's address (a reverse proxy in front is that proxy)."""
    return request.remote or "unknown"


TROUBLE_OUTCOMES: dict[str, str] = {
    "bad_signature": "requests are refused: the signature does not match (is the sender's "
    "secret the one in the org file?)",
    "unsigned": "requests are refused: they are not signed",
    "stale": "requests are refused: their time is outside the accepted window (a clock off?)",
    "bad_verification": "the platform's verification is refused: the verify token does not "
    "match the org file's",
}
"""Refusals that usually mean a setup fault (the sender's secret, its clock), not noise:
said to the console (one fixed text each, so a flood of them is one change) until a
post is taken again."""

OK_OUTCOMES = frozenset({"accepted", "verified"})
"""Outcomes that show the intake works: they clear the trouble."""


class Outcomes:
    """Counts of what the intake answered, rate-limited warnings about refusals, and the
    intake's :class:`Trouble` when refusals look like a setup fault."""

    WARN_EVERY = 60.0
    """Seconds between two warnings about the same kind of refusal from one source."""

    def __init__(self, channel_id: str) -> None:
        self.channel_id = channel_id
        self.counts: Counter[str] = Counter()
        self.trouble = Trouble()
        self._warned: dict[tuple[str, str], float] = {}

    def count(self, outcome: str, source: str | None = None, detail: str = "") -> None:
        """Count ``outcome``; warn about a refusal (at most once a minute per source)."""
        self.counts[outcome] += 1
        if outcome in TROUBLE_OUTCOMES:
            self.trouble(TROUBLE_OUTCOMES[outcome])
        elif outcome in OK_OUTCOMES:
            self.trouble(None)
        if source is None:
            return
        now = time.monotonic()
        key = (outcome, source)
        last = self._warned.get(key)
        if last is not None and now - last < self.WARN_EVERY:
            return
        if len(self._warned) > 10_000:
            self._warned.clear()
        self._warned[key] = now
        log.warning(
            "intake %s: %s from %s%s (%d so far)",
            self.channel_id,
            outcome.replace("_", " "),
            mask(source),
            f": {detail}" if detail else "",
            self.counts[outcome],
        )
