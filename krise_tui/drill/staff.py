"""Simulated staff terminals on the drill's clock.

Each terminal is a real MQTT client (:class:`~krise_tui.bus.session.BusSession`) logged
in as its own staff user, with retained presence and a last will, and a real
:class:`~krise_tui.bus.envelope.Verifier` holding only the console's public key: it
takes a freeze notice only when the signature and the ``seq`` are good, as a staff
terminal does. What a person would do is simulated on the drill's virtual clock: a
terminal that sees a new notice in its scope acknowledges it after its own delay
(deterministic from the scenario's seed), or never (``never_ack``). A recorded drill
turns the simulation off and acknowledges exactly when the recording says.

:class:`StaffFleet` knows which acknowledgements are due at a virtual time; the player
publishes them in its step, so the console journals each one at the time it happened
in the scenario, however fast the drill runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from krise_tui.bus import topics
from krise_tui.bus.envelope import Verifier
from krise_tui.bus.login import Login
from krise_tui.bus.session import BusSession, SessionConfig, cancel_and_wait
from krise_tui.clock import Clock
from krise_tui.wire.staff import FREEZE_TYPE

log = logging.getLogger(__name__)

LoginFor = Callable[[str], Login]
"""A staff id's broker login (asked before every connect: a restarted broker)."""


def unit(seed: str, *parts: object) -> float:
    """A number in [0, 1) from a hash: the same arguments give the same number."""
    text = "\0".join([seed, *map(str, parts)])
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:13], 16) / 16**13


@dataclass
class Terminal:
    """One simulated staff terminal."""

    staff_id: str
    department: str | None
    verifier: Verifier
    acks: bool = True
    """Whether this person acknowledges notices at all."""
    session: BusSession | None = None
    task: asyncio.Task[None] | None = None
    seen_seq: int = 0
    """The newest verified freeze notice (any, lifted ones too)."""
    notice_seq: int | None = None
    """The newest active notice in this terminal's scope (what it shows)."""
    notices: int = 0
    """Active notices in scope seen so far (varies the delay from notice to notice)."""
    due: datetime | None = None
    """When the person acknowledges what the terminal shows (simulated)."""
    acked: set[int] = field(default_factory=set)

    @property
    def online(self) -> bool:
        """Whether the terminal is running (connected or reconnecting)."""
        return self.session is not None

    @property
    def connected(self) -> bool:
        """Whether its connection is up."""
        return self.session is not None and self.session.connected


class StaffFleet:
    """The drill's staff terminals (see the module docstring)."""

    def __init__(
        self,
        *,
        org: str,
        public_key: Ed25519PublicKey,
        login_for: LoginFor,
        clock: Clock,
        seed: str,
        ack_within: tuple[timedelta, timedelta] = (timedelta(minutes=1), timedelta(minutes=10)),
        simulate: bool = True,
        departments: dict[str, str | None] | None = None,
        on_change: Callable[[], object] | None = None,
        grid: tuple[datetime, timedelta] | None = None,
    ) -> None:
        self.org = org
        self.public_key = public_key
        self.login_for = login_for
        self.clock = clock
        self.seed = seed
        self.ack_within = ack_within
        self.simulate = simulate
        self.departments = departments or {}
        self.on_change = on_change
        self.grid = grid
        """``(origin, step)``: acknowledgements fall on this grid (the player's ticks), so
        a drill of many terminals does not take a step for every one of them."""
        self.terminals: dict[str, Terminal] = {}
        self.published_acks = 0
        self.freeze_topic = topics.freeze(org)

    # --- who ------------------------------------------------------------------------------

    def terminal(self, staff_id: str) -> Terminal:
        """The terminal for ``staff_id`` (created on first use, offline)."""
        terminal = self.terminals.get(staff_id)
        if terminal is None:
            terminal = Terminal(
                staff_id,
                self.departments.get(staff_id),
                Verifier([self.public_key], org=self.org),
            )
            self.terminals[staff_id] = terminal
        return terminal

    def online_ids(self) -> list[str]:
        """Terminals running now, in the order they were created."""
        return [t.staff_id for t in self.terminals.values() if t.online]

    def never_acknowledge(self, ids: Iterable[str]) -> None:
        """These people never acknowledge."""
        for staff_id in ids:
            self.terminal(staff_id).acks = False

    # --- coming and going ------------------------------------------------------------------

    async def connect(self, ids: Sequence[str], *, timeout: float = 30.0) -> None:
        """Start these terminals and wait until each is connected (and subscribed)."""
        started = []
        for staff_id in ids:
            terminal = self.terminal(staff_id)
            if terminal.online:
                continue
            terminal.session = self._session(terminal)
            terminal.task = asyncio.create_task(
                terminal.session.run(), name=f"drill-staff-{staff_id}"
            )
            started.append(terminal)
        for terminal in started:
            assert terminal.session is not None
            await terminal.session.wait_connected(timeout)

    async def disconnect(self, ids: Sequence[str]) -> None:
        """Stop these terminals (each says offline, as a closed terminal does)."""
        for staff_id in ids:
            terminal = self.terminals.get(staff_id)
            if terminal is None or terminal.session is None:
                continue
            session, terminal.session = terminal.session, None
            await session.stop()
            if terminal.task is not None:
                await cancel_and_wait(terminal.task)
                terminal.task = None
            terminal.due = None
        self._changed()

    async def stop(self) -> None:
        """Stop every terminal."""
        await self.disconnect(list(self.terminals))

    def _session(self, terminal: Terminal) -> BusSession:
        staff_id = terminal.staff_id
        first = self.login_for(staff_id)

        async def on_message(topic: str, payload: bytes, retained: bool) -> None:
            self._on_message(terminal, topic, payload)

        return BusSession(
            SessionConfig(
                host=first.host,
                port=first.port,
                client_id=f"krise-drill-{self.org}-{staff_id}",
                username=first.username,
                password=first.password,
                subscriptions=[self.freeze_topic],
                presence_topic=topics.presence(self.org, "staff", staff_id),
                keepalive=60,
                backoff_max=2.0,
                protocol=first.protocol,
                resolve=lambda: self.login_for(staff_id),
            ),
            on_message,
        )

    # --- notices ---------------------------------------------------------------------------

    def _on_message(self, terminal: Terminal, topic: str, payload: bytes) -> None:
        if topic != self.freeze_topic:
            return
        result = terminal.verifier.check(payload)
        env = result.envelope
        if not result.ok or env is None or env.type != FREEZE_TYPE:
            if result.reason and env is not None and env.seq > terminal.seen_seq:
                log.warning("drill staff %s ignored a notice: %s", terminal.staff_id, result.reason)
            return
        terminal.seen_seq = max(terminal.seen_seq, env.seq)
        body = env.body
        departments = body.get("departments") or []
        in_scope = not departments or terminal.department in departments
        if not body.get("active") or not in_scope:
            terminal.notice_seq = None
            terminal.due = None
        else:
            terminal.notice_seq = env.seq
            terminal.notices += 1
            if self.simulate and terminal.acks and terminal.due is None:
                terminal.due = self._on_grid(self.clock.now() + self.delay(terminal))
        self._changed()

    def delay(self, terminal: Terminal) -> timedelta:
        """How long this person takes to acknowledge this notice (skewed early: most
        look soon, a few late)."""
        low, high = self.ack_within
        u = unit(self.seed, "ack", terminal.staff_id, terminal.notices)
        seconds = low.total_seconds() + (high - low).total_seconds() * u * u
        return timedelta(seconds=round(seconds))

    def _on_grid(self, when: datetime) -> datetime:
        if self.grid is None:
            return when
        origin, step = self.grid
        steps = -(-(when - origin) // step)  # rounded up: never before the person looked
        return origin + step * steps

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # --- acknowledging ---------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """The earliest simulated acknowledgement still to come."""
        dues = [t.due for t in self.terminals.values() if t.due is not None and t.online]
        return min(dues) if dues else None

    def due(self, now: datetime) -> list[str]:
        """Terminals whose simulated acknowledgement is due at ``now``."""
        return sorted(
            t.staff_id
            for t in self.terminals.values()
            if t.due is not None and t.due <= now and t.online
        )

    def to_acknowledge(self, staff_id: str, seq: int | None = None) -> int | None:
        """The seq ``staff_id`` would acknowledge now (``seq``, or what it shows);
        ``None`` when there is nothing to acknowledge or the terminal is offline."""
        terminal = self.terminal(staff_id)
        terminal.due = None
        chosen = seq if seq is not None else terminal.notice_seq
        if chosen is None or terminal.session is None:
            return None
        return chosen

    async def acknowledge(self, staff_id: str, seq: int) -> None:
        """Publish ``staff_id``'s acknowledgement of ``seq`` (see :meth:`to_acknowledge`)."""
        terminal = self.terminal(staff_id)
        if terminal.session is None:
            raise RuntimeError(f"staff terminal {staff_id} is offline")
        chosen = seq
        body = json.dumps({"staff_id": staff_id, "seq": chosen})
        await terminal.session.wait_connected(30)
        await terminal.session.publish(topics.staff_ack(self.org, staff_id), body, qos=1)
        terminal.acked.add(chosen)
        self.published_acks += 1

    # --- waiting -----------------------------------------------------------------------------

    def lagging(self, seq: int) -> list[str]:
        """Running terminals that have not yet seen the freeze notice ``seq``."""
        return [t.staff_id for t in self.terminals.values() if t.online and t.seen_seq < seq]

    def disconnected(self) -> list[str]:
        """Running terminals whose connection is down (after a broker restart)."""
        return [t.staff_id for t in self.terminals.values() if t.online and not t.connected]
