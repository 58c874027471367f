"""Runtimes: the headless processes behind the console and the staff terminal.

:class:`ConsoleRuntime` wires journal, engine, outbox and bus: every command goes
``decide → journal.append → fold → listeners → outbox``. The Textual apps are thin views
that call :meth:`ConsoleRuntime.submit` and redraw when a listener fires, so everything
here is testable without a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from krise_tui.bus import topics
from krise_tui.bus.broker import (
    WEAK_BROKER_WARNING,
    BrokerError,
    BrokerKind,
    EmbeddedBroker,
    Endpoint,
    choose_embedded,
    read_endpoint,
    write_endpoint,
)
from krise_tui.bus.envelope import (
    Envelope,
    KeyFileError,
    Signer,
    Verifier,
    VerifyStatus,
    load_private_key,
    load_public_key,
    write_key_pair,
)
from krise_tui.bus.session import (
    BusSession,
    LinkState,
    NotConnectedError,
    SessionConfig,
    cancel_and_wait,
)
from krise_tui.config import Settings
from krise_tui.core.engine import (
    Accepted,
    ActivatePlaybook,
    ApproveDraft,
    Command,
    ConfirmEffect,
    Context,
    Decision,
    FailEffectAttempt,
    Freeze,
    LiftFreeze,
    OpenIncident,
    ReceiveFromBus,
    RecordApprovalBlock,
    Rejection,
    RemindUnacknowledged,
    SaveDraft,
    decide,
)
from krise_tui.core.events import EventBase, InboundRejected
from krise_tui.core.ids import Clock, SystemClock, new_id
from krise_tui.core.messaging import (
    ChannelSpec,
    DraftVariant,
    MessagePolicy,
    OperatorInfo,
    lint_draft,
)
from krise_tui.core.rollcall import RollCall, StaffStatus, roll_call
from krise_tui.core.state import Effect, IncidentState, fold
from krise_tui.journal.store import SNAPSHOT_EVERY, Journal
from krise_tui.playbook.loader import Problem, load_org
from krise_tui.playbook.models import Org, Playbook
from krise_tui.playbook.watch import PlaybookWatcher


def roster_from_org(org: Org) -> dict[str, str | None] | None:
    """Staff id -> staff-group id from the org file (``None`` when it lists nobody)."""
    roster: dict[str, str | None] = {}
    for group in org.staff_groups:
        for staff_id in group.staff or []:
            roster[str(staff_id)] = group.id
    return roster or None


log = logging.getLogger(__name__)

INBOUND_BATCH = 500
"""At most this many bus messages per journal transaction."""

StateListener = Callable[[IncidentState, list[EventBase]], object]
LinkListener = Callable[[LinkState, str], object]


@dataclass
class BrokerInfo:
    """What the views show about the broker."""

    kind: BrokerKind
    host: str
    port: int
    warning: str = ""

    @property
    def label(self) -> str:
        """E.g. ``mosquitto 127.0.0.1:41234``."""
        return f"{self.kind} {self.host}:{self.port}"


@dataclass
class Login:
    """Resolved broker address and credentials for one participant."""

    host: str
    port: int
    username: str | None
    password: str | None
    kind: BrokerKind


def resolve_login(settings: Settings, role: str, member_id: str | None = None) -> Login:
    """Where and as whom to connect: the configured broker, else the local embedded one."""
    b = settings.broker
    if b.host:
        return Login(b.host, b.port, b.username, b.secret(), BrokerKind.EXTERNAL)
    endpoint = read_endpoint(settings.broker_dir / "endpoint.json")
    user, password = endpoint.login(role, member_id)
    return Login(endpoint.host, endpoint.port, user, password, endpoint.kind)


def ensure_signer(settings: Settings) -> Signer:
    """Load the console's signing key, creating a key pair on the very first run."""
    key_path = settings.keys_path / "console.key"
    if not key_path.exists():
        write_key_pair(settings.keys_path)
        log.warning("created a new signing key pair in %s", settings.keys_path)
    return Signer(load_private_key(key_path))


@dataclass
class OutboxPolicy:
    """Retry timing for outbox entries."""

    backoff_min: float = 0.5
    backoff_max: float = 30.0
    publish_timeout: float = 10.0


@dataclass
class ConsoleRuntime:
    """The console's engine room."""

    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    signer: Signer | None = None
    outbox_policy: OutboxPolicy = field(default_factory=OutboxPolicy)
    start_bus: bool = True
    roster: Mapping[str, str | None] | None = None
    """Staff id -> department (from the org file). ``None``: accept any staff id (demo)."""
    remind_after: timedelta = timedelta(minutes=10)
    """Remind unacknowledged terminals this long after a freeze notice (playbook-set)."""
    timer_interval: float = 1.0

    def __post_init__(self) -> None:
        self.state = IncidentState()
        self.org: Org | None = None
        self.playbook: Playbook | None = None
        self.playbook_hash: str | None = None
        self.playbook_problems: list[Problem] = []
        self._watcher: PlaybookWatcher | None = None
        self._playbook_listeners: list[Callable[[list[Problem]], object]] = []
        self._policy_cache: tuple[object, MessagePolicy | None] | None = None
        self.bridges: dict[str, Any] = {}
        """Channel id -> in-process BridgeRuntime."""
        self.bridge_errors: dict[str, str] = {}
        """Channel id -> why its bridge could not start (shown in the console)."""
        self.journal: Journal | None = None
        self.session: BusSession | None = None
        self.broker: EmbeddedBroker | None = None
        self.broker_info: BrokerInfo | None = None
        self.link_state = LinkState.CONNECTING
        self.link_detail = ""
        self._state_listeners: list[StateListener] = []
        self._link_listeners: list[LinkListener] = []
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._outbox_wake = asyncio.Event()
        self._attempts: dict[str, int] = {}
        self._in_flight: set[str] = set()
        self._next_try: dict[str, float] = {}
        self._last_snapshot = 0
        self._inbound: asyncio.Queue[Command] = asyncio.Queue()

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the journal, fold it, start (or find) the broker, connect, resume the outbox."""
        s = self.settings
        if s.org_file is not None:
            self.org = load_org(s.org_file)  # a broken org file stops the start, clearly
            s = self.settings = s.model_copy(
                update={"org": self.org.slug, "org_name": self.org.name}
            )
            if self.roster is None:
                self.roster = roster_from_org(self.org)
            if s.operator not in {op.id for op in self.org.operators}:
                # Who is at this console: by default the first one who drafts but does
                # not approve (the information officer), so four eyes is the norm.
                drafter = next(
                    (o for o in self.org.operators if o.role.may_draft and not o.role.may_approve),
                    self.org.operators[0],
                )
                s = self.settings = s.model_copy(update={"operator": drafter.id})
        if self.signer is None:
            self.signer = ensure_signer(s)
        if s.playbook is not None:
            self._watcher = PlaybookWatcher(
                s.playbook, self.org, self._playbook_changed, self._playbook_broken
            )
            await self._watcher.poll()  # the first load: valid, or errors on screen
        self.journal = await Journal.open(s.journal_path)
        self.state = await self.journal.load_state()
        self._last_snapshot = await self.journal.latest_snapshot_seq()
        opened_now = not self.state.is_open
        if opened_now:
            title = s.incident_title
            if self.playbook is not None:
                title = self.playbook.title.get("nb") or s.incident_title
            await self.submit(OpenIncident(title=str(title)))
        await self._activate_playbook()
        if opened_now and self.playbook is not None and self.playbook.freeze.on_activation:
            await self.submit(self._freeze_from_playbook(self.playbook), actor="system")
        if self._watcher is not None:
            self._watcher.start()
        if not self.start_bus:
            return
        login = await self._broker_login()
        self.session = BusSession(
            SessionConfig(
                host=login.host,
                port=login.port,
                client_id=s.broker.client_id or f"krise-console-{s.org}",
                username=login.username,
                password=login.password,
                subscriptions=topics.console_subscriptions(s.org),
                presence_topic=topics.presence(s.org, "console", "console"),
                keepalive=s.broker.keepalive,
            ),
            self._on_bus_message,
            on_state=self._on_link_state,
        )
        self._tasks.append(asyncio.create_task(self._inbound_writer(), name="inbound-writer"))
        self._tasks.append(asyncio.create_task(self.session.run(), name="bus-session"))
        self._tasks.append(asyncio.create_task(self._outbox_loop(), name="outbox"))
        self._tasks.append(asyncio.create_task(self._timer_loop(), name="timers"))
        if s.bridges_in_process and self.org is not None:
            await self._start_bridges(login)

    # --- bridges -------------------------------------------------------------------------

    async def _start_bridges(self, console_login: Login) -> None:
        """Run each channel's bridge in this process (the embedded default)."""
        from krise_tui.bridge import BridgeRuntime
        from krise_tui.channels.from_org import channel_from_def

        assert self.org is not None and self.signer is not None
        state_dir = self.settings.data_dir / "bridges"
        state_dir.mkdir(parents=True, exist_ok=True)
        for defn in self.org.channels:
            if str(defn.kind) == "staff":
                continue  # staff terminals are served by the console itself
            try:
                adapter = channel_from_def(
                    defn,
                    state_dir=state_dir,
                    website_url=str(self.org.website),
                    base_dir=self.settings.data_dir,
                )
                if self.settings.broker.host:
                    user, password = self.settings.broker.username, self.settings.broker.secret()
                else:
                    endpoint = read_endpoint(self.settings.broker_dir / "endpoint.json")
                    user, password = endpoint.login("bridge", defn.id)
            except (ValueError, BrokerError, OSError) as exc:
                self.bridge_errors[defn.id] = str(exc)
                log.warning("bridge %s not started: %s", defn.id, exc)
                continue
            bridge = BridgeRuntime(
                host=console_login.host,
                port=console_login.port,
                org=self.settings.org,
                channel_id=defn.id,
                channel=adapter,
                username=user,
                password=password,
                public_keys=(self.signer.public_key,),
                state_file=state_dir / f"{defn.id}.seq.json",
            )
            await bridge.start()
            self.bridges[defn.id] = bridge

    # --- playbook ----------------------------------------------------------------------

    async def _playbook_changed(self, playbook: Playbook, digest: str) -> None:
        self.playbook, self.playbook_hash, self.playbook_problems = playbook, digest, []
        self.remind_after = playbook.freeze.remind_after
        if self.journal is not None:  # at start-up the journal is not open yet
            await self._activate_playbook()
        self._playbook_notify()

    def _playbook_broken(self, problems: list[Problem]) -> None:
        self.playbook_problems = list(problems)
        for problem in problems[:5]:
            log.warning("playbook: %s", problem)
        self._playbook_notify()

    def _playbook_notify(self) -> None:
        for listener in list(self._playbook_listeners):
            try:
                listener(self.playbook_problems)
            except Exception:
                log.exception("playbook listener failed")

    def on_playbook(self, listener: Callable[[list[Problem]], object]) -> None:
        """Call ``listener(problems)`` when the playbook is reloaded (problems: [] if valid)."""
        self._playbook_listeners.append(listener)

    async def _activate_playbook(self) -> None:
        pb, digest = self.playbook, self.playbook_hash
        if pb is None or digest is None or self.settings.playbook is None:
            return
        title = pb.title.get("nb") or pb.id
        await self.submit(
            ActivatePlaybook(pb.id, str(title), digest, str(self.settings.playbook)),
            actor="system",
        )

    @staticmethod
    def _freeze_from_playbook(playbook: Playbook) -> Freeze:
        policy = playbook.freeze
        departments = () if policy.scope == "all" else tuple(policy.scope)
        notice = tuple(
            (lang, text) for lang, text in policy.notice.items() if isinstance(text, str)
        )
        title = playbook.title.get("nb") or playbook.id
        return Freeze(reason=str(title), departments=departments, notice=notice)

    async def _broker_login(self) -> Login:
        s = self.settings
        if s.broker.host:
            self.broker_info = BrokerInfo(BrokerKind.EXTERNAL, s.broker.host, s.broker.port)
            return resolve_login(s, "console")
        bridges = tuple(c.id for c in self.org.channels) if self.org is not None else ()
        self.broker = choose_embedded(s.broker.embedded, s.broker_dir, bridges=bridges)
        endpoint: Endpoint = await self.broker.start()
        write_endpoint(s.broker_dir / "endpoint.json", endpoint)
        warning = WEAK_BROKER_WARNING if endpoint.kind is BrokerKind.AMQTT else ""
        # A demo or drill room: simulated terminals are not in the org file.
        self.settings = s = s.model_copy(update={"strict_roster": False})
        self.broker_info = BrokerInfo(endpoint.kind, endpoint.host, endpoint.port, warning)
        log.info("broker in use: %s", self.broker_info.label)
        user, password = endpoint.login("console")
        return Login(endpoint.host, endpoint.port, user, password, endpoint.kind)

    async def stop(self) -> None:
        """Stop cleanly: presence offline, tasks ended, broker stopped, journal closed."""
        if self._watcher is not None:
            await self._watcher.stop()
        for bridge in self.bridges.values():
            with contextlib.suppress(Exception):
                await bridge.stop()
        self.bridges.clear()
        if self.session is not None:
            await self.session.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush_inbound(), 5)
        await cancel_and_wait(*self._tasks)
        self._tasks.clear()
        if self.broker is not None:
            await self.broker.stop()
            endpoint_file = self.settings.broker_dir / "endpoint.json"
            with contextlib.suppress(FileNotFoundError):
                endpoint_file.unlink()
            self.broker = None
        if self.journal is not None:
            await self.journal.close()
            self.journal = None

    # --- commands ----------------------------------------------------------------------

    def message_policy(self) -> MessagePolicy | None:
        """The message rules from the org file and playbook (``None`` without an org)."""
        key = (id(self.org), self.playbook_hash)
        if self._policy_cache is None or self._policy_cache[0] != key:
            self._policy_cache = (key, self._build_policy())
        return self._policy_cache[1]

    def _build_policy(self) -> MessagePolicy | None:
        org = self.org
        if org is None:
            return None
        playbook = self.playbook
        wanted = list(playbook.channels) if playbook is not None else [c.id for c in org.channels]
        website = org.website_channel().id
        if website not in wanted:
            wanted.insert(0, website)
        specs = []
        for channel_id in wanted:
            with contextlib.suppress(KeyError):
                specs.append(ChannelSpec(channel_id, str(org.channel(channel_id).kind)))
        return MessagePolicy(
            org_name=org.name,
            website_url=str(org.website),
            required_languages=tuple(org.required_languages),
            allowed_phones=tuple(sorted(org.phone_allowlist())),
            channels=tuple(specs),
            operators={
                op.id: OperatorInfo(op.full_name, op.title, op.role.may_approve, op.role.may_draft)
                for op in org.operators
            },
            break_glass_allowed=bool(playbook and playbook.approval.break_glass_allowed),
            sms_max_segments=playbook.sms_max_segments if playbook is not None else 3,
        )

    async def save_draft(self, command: SaveDraft) -> Decision:
        """Save a draft; a refused one (an ID number in it) is journaled as a block."""
        decision = await self.submit(command)
        if isinstance(decision, Rejection) and decision.reason.startswith("blocked:"):
            await self.submit(RecordApprovalBlock(command.draft_id or "", "", ("id-number",)))
        return decision

    async def approve(
        self,
        draft_id: str,
        *,
        approver: str,
        passphrase: str,
        overrides: tuple[tuple[str, str, str], ...] = (),
        break_glass_reason: str | None = None,
    ) -> Decision:
        """Approve a draft as ``approver``, identified by their passphrase (org file)."""
        if self.org is None:
            return Rejection("approval needs an org file with operators (org_file)")
        try:
            operator = self.org.operator(approver)
        except KeyError:
            return Rejection(f"{approver!r} is not an operator in the org file")
        ok = await asyncio.to_thread(operator.verify, passphrase)  # scrypt: off the loop
        if not ok:
            log.warning("approval refused: wrong passphrase for %s", approver)
            return Rejection(f"wrong passphrase for {operator.full_name}")
        decision = await self.submit(
            ApproveDraft(draft_id, approver, overrides, break_glass_reason), actor=approver
        )
        policy = self.message_policy()
        draft = self.state.drafts.get(draft_id)
        if isinstance(decision, Rejection) and policy is not None and draft is not None:
            report = lint_draft([DraftVariant.from_json(v) for v in draft.variants], policy)
            if report.hard_blocked:  # the journal records that a block happened
                codes = tuple(f.code for f in report.blocks)
                await self.submit(RecordApprovalBlock(draft_id, approver, codes), actor=approver)
        return decision

    def context(self, actor: str | None = None) -> Context:
        """The engine context for a command issued now."""
        assert self.signer is not None, "start() first"
        return Context(
            org=self.settings.org,
            actor=actor or self.settings.operator,
            now=self.clock.now(),
            signer=self.signer,
            incident_id=self.state.incident_id or new_id(),
            roster=self.roster if self.settings.strict_roster else None,
            org_name=self.settings.org_name,
            policy=self.message_policy(),
        )

    async def submit(self, command: Command, *, actor: str | None = None) -> Decision:
        """Decide, journal, fold, notify — one command at a time."""
        if self.journal is None:
            raise RuntimeError("the console runtime is not started")
        async with self._lock:
            decision = decide(self.state, command, self.context(actor))
            if isinstance(decision, Rejection) or not decision.events:
                return decision
            seqs = await self.journal.append(decision.events, playbook_hash=self.playbook_hash)
            fold(decision.events, self.state)
            await self._maybe_snapshot(seqs[-1])
        self._notify(decision)
        return decision

    async def submit_many(self, commands: list[Command], *, actor: str) -> list[Decision]:
        """Several commands in one journal transaction (a group commit for bus bursts).

        Each command is decided against the state including the ones before it, so it
        is folded before the batch is written; if the write fails the state is
        reloaded from the journal, which stays the truth.
        """
        if self.journal is None:
            raise RuntimeError("the console runtime is not started")
        decisions: list[Decision] = []
        events: list[EventBase] = []
        async with self._lock:
            for command in commands:
                decision = decide(self.state, command, self.context(actor))
                decisions.append(decision)
                if isinstance(decision, Accepted) and decision.events:
                    fold(decision.events, self.state)
                    events += decision.events
            if not events:
                return decisions
            try:
                seqs = await self.journal.append(events, playbook_hash=self.playbook_hash)
            except BaseException:
                self.state = await self.journal.load_state()
                raise
            await self._maybe_snapshot(seqs[-1])
        self._notify(Accepted(events))
        return decisions

    async def _maybe_snapshot(self, seq: int) -> None:
        """Snapshot now and then so a restart folds only the newest events."""
        assert self.journal is not None
        if seq - self._last_snapshot < SNAPSHOT_EVERY or self.state.event_count != seq:
            return  # not due, or another writer shares this journal: its fold is not ours
        await self.journal.save_snapshot(self.state, seq)
        self._last_snapshot = seq

    def _notify(self, decision: Accepted) -> None:
        for listener in list(self._state_listeners):
            try:
                listener(self.state, decision.events)
            except Exception:
                log.exception("state listener failed")
        self._outbox_wake.set()

    def on_state(self, listener: StateListener) -> None:
        """Call ``listener(state, new_events)`` after every accepted command."""
        self._state_listeners.append(listener)

    def on_link(self, listener: LinkListener) -> None:
        """Call ``listener(link_state, detail)`` when the broker connection changes."""
        self._link_listeners.append(listener)

    # --- bus -----------------------------------------------------------------------------

    async def _on_bus_message(self, topic: str, payload: bytes, retained: bool) -> None:
        # Hand over at once: the writer journals bursts in one transaction each.
        self._inbound.put_nowait(ReceiveFromBus(topic, payload))

    async def _inbound_writer(self) -> None:
        """Drain the bus into the journal fast: everything waiting, one transaction."""
        while True:
            batch: list[Command] = [await self._inbound.get()]
            while len(batch) < INBOUND_BATCH and not self._inbound.empty():
                batch.append(self._inbound.get_nowait())
            try:
                decisions = await self.submit_many(batch, actor="bus")
            except Exception:
                log.exception("journaling %d bus messages failed; retrying", len(batch))
                for command in batch:  # keep them: nothing is lost
                    self._inbound.put_nowait(command)
                await asyncio.sleep(1.0)
                continue
            finally:
                for _ in batch:
                    self._inbound.task_done()
            for decision in decisions:
                if isinstance(decision, Accepted):
                    for event in decision.events:
                        if isinstance(event, InboundRejected):
                            log.warning("rejected bus message: %s", event.reason)

    async def flush_inbound(self) -> None:
        """Wait until every message taken off the bus is journaled."""
        await self._inbound.join()

    def _on_link_state(self, state: LinkState, detail: str) -> None:
        self.link_state = state
        self.link_detail = detail
        if state is LinkState.CONNECTED:
            self._outbox_wake.set()
        for listener in list(self._link_listeners):
            try:
                listener(state, detail)
            except Exception:
                log.exception("link listener failed")

    # --- outbox ---------------------------------------------------------------------------

    async def _outbox_loop(self) -> None:
        """Deliver pending effects; retry with capped backoff; never post one twice at once."""
        loop = asyncio.get_running_loop()
        while True:
            self._outbox_wake.clear()
            now = loop.time()
            waits: list[float] = []
            session = self.session
            if session is not None and session.connected:
                for effect in self.state.pending_effects():
                    if effect.effect_id in self._in_flight:
                        continue
                    due = self._next_try.get(effect.effect_id, 0.0)
                    if due > now:
                        waits.append(due - now)
                        continue
                    self._in_flight.add(effect.effect_id)
                    self._tasks.append(
                        asyncio.create_task(
                            self._attempt(effect), name=f"outbox-{effect.effect_id}"
                        )
                    )
            self._tasks = [t for t in self._tasks if not t.done()]
            timeout = min(waits) if waits else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox_wake.wait(), timeout)

    async def _attempt(self, effect: Effect) -> None:
        assert self.session is not None
        attempt = self._attempts.get(effect.effect_id, effect.attempts) + 1
        self._attempts[effect.effect_id] = attempt
        try:
            await self.session.publish(
                effect.topic,
                effect.payload,
                qos=effect.qos,
                retain=effect.retain,
                timeout=self.outbox_policy.publish_timeout,
            )
        except NotConnectedError as exc:
            p = self.outbox_policy
            delay = min(p.backoff_max, p.backoff_min * 2 ** (attempt - 1))
            self._next_try[effect.effect_id] = asyncio.get_running_loop().time() + delay * (
                0.5 + random.random() / 2
            )
            await self.submit(
                FailEffectAttempt(effect.effect_id, attempt, str(exc)), actor="outbox"
            )
        else:
            await self.submit(ConfirmEffect(effect.effect_id), actor="outbox")
        finally:
            self._in_flight.discard(effect.effect_id)
            self._outbox_wake.set()

    # --- timers: freeze expiry and reminders ---------------------------------------------

    async def _timer_loop(self) -> None:
        while True:
            await asyncio.sleep(self.timer_interval)
            try:
                await self.tick()
            except Exception:
                log.exception("timer tick failed")

    async def tick(self) -> None:
        """Act on what is due now: lift an expired freeze, remind the unacknowledged."""
        freeze = self.state.freeze
        if freeze is None or not freeze.active:
            return
        now = self.clock.now()
        if freeze.expires_at is not None and now >= freeze.expires_at:
            await self.submit(LiftFreeze("Utløpt / expired"), actor="system")
            return
        if now - freeze.changed_at >= self.remind_after:
            due = [i for i in self.unacknowledged() if i not in self.state.reminders]
            if due:
                await self.submit(RemindUnacknowledged(tuple(due)), actor="system")

    def roll_call(self) -> RollCall:
        """The roll-call for the current freeze."""
        roster = self.roster
        if roster is not None and not self.settings.strict_roster:
            seen = {k.split("/", 1)[1] for k in self.state.presence if k.startswith("staff/")}
            extra = (seen | set(self.state.acks)) - set(roster)
            roster = {**roster, **dict.fromkeys(sorted(extra))}
        return roll_call(self.state, roster)

    def unacknowledged(self) -> list[str]:
        """Staff in scope who have not acknowledged the current freeze notice."""
        rc = self.roll_call()
        return rc.ids(StaffStatus.PENDING) + rc.ids(StaffStatus.OFFLINE)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no outbox entry is pending (tests, clean shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.state.pending_effects():
            if loop.time() > deadline:
                raise TimeoutError(f"{len(self.state.pending_effects())} outbox entries pending")
            await asyncio.sleep(0.02)


# --- staff terminal -----------------------------------------------------------------------


@dataclass
class FreezeNotice:
    """A verified freeze notice as the staff terminal shows it."""

    seq: int
    reason: str
    since: datetime | None
    expires_at: datetime | None
    departments: list[str]
    message: str | None
    message_version: str | None
    notice: dict[str, str]
    issued_at: datetime


@dataclass
class StaffView:
    """What a staff terminal shows (verified content only)."""

    current_message: str | None = None
    message_version: str | None = None
    message_issued_at: datetime | None = None
    freeze: FreezeNotice | None = None
    """The active freeze in this terminal's scope (``None``: not frozen)."""
    acked_seq: int | None = None
    ack_pending: int | None = None
    """An acknowledgement waiting for the connection to come back."""
    acked_at: datetime | None = None
    reminded_at: datetime | None = None
    warnings: list[str] = field(default_factory=list)
    last_update: datetime | None = None

    @property
    def needs_ack(self) -> bool:
        """A freeze is shown and this terminal has not acknowledged it yet."""
        return self.freeze is not None and self.acked_seq != self.freeze.seq


def _parse_dt(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass
class StaffRuntime:
    """A staff terminal's engine: verify what arrives, keep the view, never obey forgeries."""

    settings: Settings
    staff_id: str
    department: str | None = None
    clock: Clock = field(default_factory=SystemClock)
    verifier: Verifier | None = None

    def __post_init__(self) -> None:
        self.view = StaffView()
        self.session: BusSession | None = None
        self.link_state = LinkState.CONNECTING
        self.link_detail = ""
        self._listeners: list[Callable[[StaffView], object]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load the public key, connect, subscribe (retained state arrives at once)."""
        s = self.settings
        topics.staff_ack(s.org, self.staff_id)  # validates the id early, with a clear error
        if self.verifier is None:
            try:
                key = load_public_key(s.public_key_path)
            except KeyFileError as exc:
                raise KeyFileError(f"{exc} (copy the console's console.pub here)") from exc
            self.verifier = Verifier([key], org=s.org)
        login = resolve_login(s, "staff", self.staff_id)
        self.session = BusSession(
            SessionConfig(
                host=login.host,
                port=login.port,
                client_id=f"krise-staff-{s.org}-{self.staff_id}",
                username=login.username,
                password=login.password,
                subscriptions=topics.staff_subscriptions(s.org, self.staff_id),
                presence_topic=topics.presence(s.org, "staff", self.staff_id),
                keepalive=s.broker.keepalive,
            ),
            self._on_message,
            on_state=self._on_link,
        )
        self._task = asyncio.create_task(self.session.run(), name="staff-bus-session")

    async def stop(self) -> None:
        """Disconnect cleanly."""
        if self.session is not None:
            await self.session.stop()
        if self._task is not None:
            await cancel_and_wait(self._task)

    def on_change(self, listener: Callable[[StaffView], object]) -> None:
        """Call ``listener(view)`` whenever the view changes."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self.view)
            except Exception:
                log.exception("staff view listener failed")

    def _on_link(self, state: LinkState, detail: str) -> None:
        self.link_state = state
        self.link_detail = detail
        if state is LinkState.CONNECTED and self.view.ack_pending is not None:
            # Sent from the session's own task: the connection is up right now.
            asyncio.get_running_loop().create_task(self.acknowledge(), name="staff-resend-ack")
        self._changed()

    async def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        self.handle(topic, payload)

    def handle(self, topic: str, payload: bytes) -> None:
        """Verify and apply one message (public so tests can feed it directly)."""
        assert self.verifier is not None
        parsed = topics.parse(topic)
        result = self.verifier.check(payload)
        if result.status is VerifyStatus.DUPLICATE:
            return
        if not result.ok or result.envelope is None:
            self._warn(f"Ugyldig melding på {topic} – ignorert ({result.reason})")
            return
        env = result.envelope
        kind = parsed.kind if parsed is not None else ""
        if kind == "message" and env.type == "message.current":
            self._apply_message(env)
        elif kind == "freeze" and env.type == "freeze":
            self._apply_freeze(env)
        elif kind == "staff.remind" and env.type == "freeze.reminder":
            self._apply_reminder(env)
        else:
            self._warn(f"Uventet meldingstype {env.type!r} på {topic} – ignorert")

    def _apply_message(self, env: Envelope) -> None:
        variants = env.body.get("variants")
        text = self._in_my_language(variants)
        if text is None:
            self._warn("Gjeldende budskap mangler norsk tekst – ignorert")
            return
        self.view.current_message = text
        self.view.message_version = str(env.body.get("version_id", ""))
        self.view.message_issued_at = env.issued_at
        self.view.last_update = self.clock.now()
        self._changed()

    def _apply_freeze(self, env: Envelope) -> None:
        body = env.body
        departments = [str(d) for d in body.get("departments") or []]
        in_scope = not departments or (self.department in departments)
        if not body.get("active") or not in_scope:
            self.view.freeze = None
        else:
            message = body.get("message") or {}
            variants = message.get("variants") or {}
            notice = body.get("notice") or {}
            self.view.freeze = FreezeNotice(
                seq=env.seq,
                reason=str(body.get("reason", "")),
                since=_parse_dt(body.get("since")),
                expires_at=_parse_dt(body.get("expires_at")),
                departments=departments,
                message=self._in_my_language(variants),
                message_version=message.get("version_id"),
                notice={str(k): str(v) for k, v in notice.items() if isinstance(v, str)},
                issued_at=env.issued_at,
            )
            if self.view.freeze.message is not None:
                self.view.current_message = self.view.freeze.message
                self.view.message_version = self.view.freeze.message_version
        self.view.reminded_at = None
        self.view.last_update = self.clock.now()
        self._changed()

    def _in_my_language(self, texts: object) -> str | None:
        """The staff member's language when the leadership wrote it, else bokmål."""
        if not isinstance(texts, dict):
            return None
        for lang in (self.settings.lang, "nb"):
            if isinstance(texts.get(lang), str):
                return str(texts[lang])
        return None

    def _apply_reminder(self, env: Envelope) -> None:
        freeze = self.view.freeze
        if freeze is None or env.body.get("freeze_seq") != freeze.seq:
            return  # a reminder for a notice that is no longer current
        self.view.reminded_at = env.issued_at
        self._changed()

    async def acknowledge(self) -> bool:
        """Acknowledge the shown freeze notice (QoS 1); kept and resent if offline."""
        freeze = self.view.freeze
        seq = self.view.ack_pending if self.view.ack_pending is not None else None
        if freeze is not None and self.view.acked_seq != freeze.seq:
            seq = freeze.seq
        if seq is None or self.session is None:
            return False
        now = self.clock.now()
        body = json.dumps({"staff_id": self.staff_id, "seq": seq, "at": now.isoformat()})
        try:
            await self.session.publish(
                topics.staff_ack(self.settings.org, self.staff_id), body, qos=1
            )
        except NotConnectedError:
            self.view.ack_pending = seq
            self._changed()
            return False
        self.view.ack_pending = None
        self.view.acked_seq = seq
        self.view.acked_at = now
        self._changed()
        return True

    def _warn(self, text: str) -> None:
        log.warning(text)
        self.view.warnings.append(text)
        del self.view.warnings[:-20]
        self._changed()
