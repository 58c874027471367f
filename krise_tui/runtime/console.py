"""The console's runtime: a composition of small services, one job each.

============================  =============================================================
service                       job
============================  =============================================================
:class:`JournalWriter`        decide → journal → fold → notify; bus bursts in group commits
:class:`OutboxScheduler`      sign and publish what the core asked for, in order; confirm
:class:`BrokerSupervisor`     the private broker of a demo or drill room; logins
:class:`PlaybookService`      the playbook in force, watched on disk; the engine's rules
:class:`BridgeHost`           in-process channel bridges; which channels can deliver
:class:`Timers`               freeze expiry, reminders, deliveries with no receipt
:class:`OperatorIdentity`     who is at the console; approvers' passphrases
:class:`Supervisor`           every long-lived loop: crash → ERROR + banner → restart
:class:`Concerns`             what needs attention now: the banners' words
:class:`FreezeNoticeGuard`    the broker's retained freeze notice is the newest
============================  =============================================================

:class:`ConsoleRuntime` wires them and is what the Textual console (and
``krise console --headless``) talks to: :meth:`submit` a command, read :attr:`state`,
listen with :meth:`on_state`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from krise_tui.bus import topics
from krise_tui.bus.envelope import Signer, Verifier, load_private_key, write_key_pair
from krise_tui.bus.login import BrokerInfo, Login
from krise_tui.bus.session import BusSession, LinkState, SessionConfig
from krise_tui.config import Settings
from krise_tui.core.engine import ReceiveFromBus
from krise_tui.core.features.incident import ActivatePlaybook, OpenIncident, SignIn
from krise_tui.core.features.messages import (
    ApproveDraft,
    DraftVariant,
    RecordApprovalBlock,
    SaveDraft,
    lint_draft,
)
from krise_tui.core.features.questions import ApproveAnswer
from krise_tui.core.ids import Clock, SystemClock, new_id
from krise_tui.core.kernel import BusSource, Context, Decision, EventBase, Rejection
from krise_tui.core.policy import MessagePolicy
from krise_tui.core.rollcall import RollCall, StaffStatus, roll_call
from krise_tui.core.state import IncidentState
from krise_tui.journal.head import head_path
from krise_tui.journal.store import Journal, JournalError, JournalUnavailable
from krise_tui.playbook.loader import Problem, load_org
from krise_tui.playbook.models import Org, Playbook
from krise_tui.runtime.bridges import BridgeHost, Readiness
from krise_tui.runtime.brokers import BrokerSupervisor
from krise_tui.runtime.concerns import ConcernListener, Concerns
from krise_tui.runtime.freezeguard import FreezeNoticeGuard
from krise_tui.runtime.identity import OperatorIdentity
from krise_tui.runtime.outbox import OutboxScheduler
from krise_tui.runtime.pacing import IntakeGauge
from krise_tui.runtime.playbooks import PlaybookService, freeze_from_playbook
from krise_tui.runtime.questions import BatchingService
from krise_tui.runtime.rumours import MatchingService
from krise_tui.runtime.supervisor import Supervisor
from krise_tui.runtime.timers import Timers
from krise_tui.runtime.writer import HeadKeeper, JournalWriter, StateListener

log = logging.getLogger(__name__)

LinkListener = Callable[[LinkState, str], object]


def roster_from_org(org: Org) -> dict[str, str | None] | None:
    """Staff id -> staff-group id from the org file (``None`` when it lists nobody)."""
    roster: dict[str, str | None] = {}
    for group in org.staff_groups:
        for staff_id in group.staff or []:
            roster[str(staff_id)] = group.id
    return roster or None


def ensure_signer(settings: Settings) -> Signer:
    """Load the console's signing key, creating a key pair on the very first run."""
    key_path = settings.keys_path / "console.key"
    if not key_path.exists():
        write_key_pair(settings.keys_path)
        log.warning("created a new signing key pair in %s", settings.keys_path)
    return Signer(load_private_key(key_path))


def source_for(topic: str) -> BusSource:
    """What a topic says about where a message came from."""
    parsed = topics.parse(topic)
    if parsed is None:
        return BusSource(topic=topic, kind="unknown")
    return BusSource(
        topic=topic,
        kind=parsed.kind,
        org=parsed.org,
        channel=parsed.channel,
        member_id=parsed.member_id,
        role=parsed.role,
    )


@dataclass
class ConsoleRuntime:
    """The console's engine room (see the module docstring for its services)."""

    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    signer: Signer | None = None
    start_bus: bool = True
    roster: Mapping[str, str | None] | None = None
    """Staff id -> department (from the org file). ``None``: accept any staff id (demo)."""
    timer_interval: float = 1.0
    new_id: Callable[[], str] = new_id
    """The id source of every event (drills use a deterministic one)."""
    exercise: bool = False
    """A drill: every outgoing text is marked as an exercise."""
    open_without_playbook: bool = False
    """Open the incident even when the playbook has problems (the operator chose to)."""
    auto_open: bool = True
    """Open the incident at start (headless, drills). The console asks instead: who is
    at the console, which playbook, what title and level."""

    def __post_init__(self) -> None:
        self.org: Org | None = None
        self.identity = OperatorIdentity(None)
        self.playbooks = PlaybookService(None, None, self._playbook_valid)
        self.brokers = BrokerSupervisor(self.settings)
        self.bridge_host = BridgeHost(None, self.settings.data_dir, in_process=False)
        self.attention = Concerns()
        """What needs attention now (loop crashes, a waiting playbook…): the banners."""
        self.supervisor = Supervisor(
            on_crash=self.attention.loop_crashed,
            on_fatal=self._fatal,
            transient=(JournalUnavailable,),
        )
        self.writer: JournalWriter | None = None
        self.head: HeadKeeper | None = None
        self.intake_gauge: IntakeGauge | None = None
        self.batching: BatchingService | None = None
        self.proven_operator: str | None = None
        """Who signed in with their passphrase (the configured operator is only a guess)."""
        self.matching: MatchingService | None = None
        self.outbox: OutboxScheduler | None = None
        self.timers: Timers | None = None
        self.session: BusSession | None = None
        self.link_state = LinkState.CONNECTING
        self.link_detail = ""
        self.freeze_guard: FreezeNoticeGuard | None = None
        self.stopped = asyncio.Event()
        """Set when the runtime asks to be stopped (a loop that keeps crashing)."""
        self._state_listeners: list[StateListener] = []
        self._link_listeners: list[LinkListener] = []
        self._empty = IncidentState()

    # --- views' access ----------------------------------------------------------------

    @property
    def state(self) -> IncidentState:
        """The committed state (only journaled events)."""
        return self.writer.state if self.writer is not None else self._empty

    @property
    def journal(self) -> Journal | None:
        """The open journal."""
        return self.writer.journal if self.writer is not None else None

    @property
    def playbook(self) -> Playbook | None:
        """The playbook in force (the last valid version)."""
        return self.playbooks.playbook

    @property
    def playbook_hash(self) -> str | None:
        """SHA-256 of the playbook in force."""
        return self.playbooks.hash

    @property
    def playbook_problems(self) -> list[Problem]:
        """Problems of the playbook file as it is now (``[]`` when valid)."""
        return self.playbooks.problems

    @property
    def broker_info(self) -> BrokerInfo | None:
        """The broker in use."""
        return self.brokers.info

    @property
    def bridges(self) -> Mapping[str, object]:
        """In-process bridges by channel id."""
        return self.bridge_host.bridges

    @property
    def bridge_errors(self) -> dict[str, str]:
        """Channel id -> why its bridge could not start."""
        return self.bridge_host.errors

    @property
    def operator(self) -> str:
        """Who is at the console (the actor of its commands)."""
        return self.identity.actor

    @property
    def remind_after(self) -> timedelta:
        """How long after a freeze notice the unacknowledged are reminded."""
        return self.message_policy().remind_after

    def message_policy(self) -> MessagePolicy:
        """The engine's rules (org file + playbook in force)."""
        return self.playbooks.policy(exercise=self.exercise)

    def on_state(self, listener: StateListener) -> None:
        """Call ``listener(state, new_events)`` after every journaled change."""
        self._state_listeners.append(listener)
        if self.writer is not None:
            self.writer.on_state(listener)

    def on_link(self, listener: LinkListener) -> None:
        """Call ``listener(link_state, detail)`` when the broker connection changes."""
        self._link_listeners.append(listener)

    def on_playbook(self, listener: Callable[[list[Problem]], object]) -> None:
        """Call ``listener(problems)`` when the playbook is reloaded (``[]`` if valid)."""
        self.playbooks.on_problems(listener)

    def on_concern(self, listener: ConcernListener) -> None:
        """Call ``listener(concern, text | None)`` when something needs attention."""
        self.attention.on_change(listener)

    @property
    def concerns(self) -> Mapping[str, str]:
        """What needs attention now, in bokmål (see :class:`Concerns`)."""
        return self.attention.now

    def concern(self, name: str, lang: str = "nb") -> str | None:
        """What concern ``name`` says now, in ``lang`` (bokmål when it has no English)."""
        return self.attention.text(name, lang)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Load org and playbook, open the journal, start broker, bus, outbox and timers."""
        s = self.settings
        if s.org_file is not None:
            self.org = load_org(s.org_file)  # a broken org file stops the start, clearly
            s = self.settings = s.model_copy(
                update={"org": self.org.slug, "org_name": self.org.name}
            )
            if self.roster is None:
                self.roster = roster_from_org(self.org)
        # An unknown configured operator is an error here, never replaced by someone else.
        self.identity = OperatorIdentity(self.org, s.operator)
        if self.signer is None:
            self.signer = ensure_signer(s)
        self.playbooks = PlaybookService(s.playbook, self.org, self._playbook_valid)
        bridges = tuple(c.id for c in self.org.channels) if self.org is not None else ()
        self.brokers = BrokerSupervisor(s, bridges=bridges)
        self.bridge_host = BridgeHost(self.org, s.data_dir, in_process=s.bridges_in_process)
        journal = await Journal.open(s.journal_path)
        try:
            state = await journal.load_state()
            last_snapshot = await journal.latest_snapshot_seq()
            if state.incident.exercise and not self.exercise:
                # What this console sends is not marked as an exercise, and it may reach
                # the public: it does not carry on a drill's incident (nor its journal).
                raise JournalError(
                    f"{s.journal_path}: this journal is a drill's (its incident was opened "
                    "as an exercise); a console that publishes for real does not continue "
                    "it: start with another data directory or --journal"
                )
        except BaseException:
            await journal.close()
            raise
        self.writer = JournalWriter(
            journal, state, self.context, lambda: self.playbooks.hash, last_snapshot=last_snapshot
        )
        for listener in self._state_listeners:
            self.writer.on_state(listener)
        self.writer.on_state(self._after_events)
        self.writer.on_state(self.attention.after_events)
        self.writer.on_trouble(self.attention.journal_trouble)
        self.attention.show_intake_trouble(state)  # as the journal left it; bridges update it
        self.head = HeadKeeper(
            journal,
            sign=self.signer.sign_bytes,
            key_id=self.signer.key_id,
            paths=[head_path(s.journal_path), *s.journal_head_copies],
            clock=self.clock,
            on_trouble=self.attention.head_trouble,
        )
        self.writer.on_state(self.head.touch)
        self.supervisor.spawn("journal-head", self.head.run)
        self.intake_gauge = IntakeGauge()
        self.writer.on_state(self.intake_gauge.on_events)
        self.batching = BatchingService(
            state=lambda: self.state,
            submit=self.submit,
            submit_many=self.submit_many,
            cache_path=s.data_dir / "embeddings-questions.sqlite3",
            gauge=self.intake_gauge,
        )
        self.writer.on_state(self.batching.on_events)
        self.matching = MatchingService(
            state=lambda: self.state,
            submit=self.submit,
            cache_path=s.data_dir / "embeddings-rumours.sqlite3",
            gauge=self.intake_gauge,
        )
        self.writer.on_state(self.matching.on_events)
        await self.playbooks.load()  # activation (and opening) happens in _playbook_valid
        await self._open_if_needed()
        if s.playbook is not None:
            self.supervisor.spawn("playbook-watcher", self.playbooks.run)
        if self.playbooks.playbook is not None:
            self.batching.request_seed(self.playbooks.playbook)
        # The console works without batching (a missing model is shown, not fatal).
        self.supervisor.spawn("question-batching", self.batching.run, essential=False)
        self.supervisor.spawn("rumour-matching", self.matching.run, essential=False)
        self.timers = Timers(
            clock=self.clock,
            state=lambda: self.state,
            policy=self.message_policy,
            unacknowledged=self.unacknowledged,
            submit=self.submit,
            interval=self.timer_interval,
        )
        if not self.start_bus:
            return
        login = await self.brokers.start()
        if self.brokers.embedded:
            # A demo or drill room: simulated terminals are not in the org file.
            self.settings = s = s.model_copy(update={"strict_roster": False})
        self.freeze_guard = FreezeNoticeGuard(
            state=lambda: self.state,
            submit=self.submit,
            verifier=Verifier([self.signer.public_key], org=s.org),
        )
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
                protocol=login.protocol,
                manual_ack=True,
            ),
            self._on_bus_message,
            on_state=self._on_link_state,
        )
        self.outbox = OutboxScheduler(
            org=s.org,
            signer=self.signer,
            state=lambda: self.state,
            submit=self.submit,
            session=lambda: self.session,
        )
        sup = self.supervisor
        sup.spawn("journal-writer", self.writer.run_inbound)
        sup.spawn("bus-session", self.session.run)
        sup.spawn("outbox", self.outbox.run)
        sup.spawn("timers", self.timers.run)
        await self.bridge_host.start(
            org_slug=s.org,
            broker=login,
            login_for=self.brokers.login,
            public_key=self.signer.public_key,
            keepalive=s.broker.keepalive,
        )

    async def stop(self) -> None:
        """Stop cleanly: presence offline, loops ended, bridges and broker stopped."""
        if self.freeze_guard is not None:
            self.freeze_guard.stop()
        self.attention.close()
        await self.bridge_host.stop()
        if self.session is not None:
            await self.session.stop()
        if self.writer is not None:
            try:
                await asyncio.wait_for(self.writer.flush(), 5)
            except TimeoutError:
                log.warning("%d bus messages were not journaled at stop", self.writer.backlog)
        await self.supervisor.stop()
        if self.batching is not None:
            await self.batching.stop()
        if self.matching is not None:
            await self.matching.stop()
        await self.brokers.stop()
        if self.writer is not None:
            if self.head is not None:
                try:
                    await self.head.write()  # the final head covers every row
                except Exception:
                    log.exception("writing the journal head at stop failed")
            await self.writer.journal.close()

    def _fatal(self, reason: str) -> None:
        self.attention.set("fatal", reason)
        self.stopped.set()

    # --- incident and playbook -----------------------------------------------------------

    async def _open_if_needed(self) -> None:
        """Open the incident at start, unless the playbook is broken (9.13)."""
        if self.state.is_open or not self.auto_open:
            return
        s = self.settings
        playbook = self.playbooks.playbook
        if s.playbook is not None and playbook is None and not self.open_without_playbook:
            self.attention.set(
                "playbook-wait",
                "Dreieboka har feil: hendelsen åpnes når den er rettet, eller når dere velger "
                "å åpne uten dreiebok.",
                "The playbook has errors: the incident opens when it is fixed, or when you "
                "choose to open without a playbook.",
            )
            log.error("the playbook has problems: the incident is not opened until it is fixed")
            return
        await self.open_incident(
            str(playbook.title.get("nb") or s.incident_title) if playbook else s.incident_title
        )

    async def open_incident(self, title: str, level: int = 1) -> Decision:
        """Open the incident (and follow the playbook in force, if there is one)."""
        decision = await self.submit(OpenIncident(title=title, level=level), actor=self.operator)
        if isinstance(decision, Rejection):
            return decision
        self.attention.set("playbook-wait", None)
        await self._follow_playbook(first=True)
        return decision

    async def _playbook_valid(self, playbook: Playbook, digest: str) -> None:
        if self.writer is None:
            return  # at start-up: handled once the journal is open
        if not self.state.is_open and not self.auto_open:
            return  # the console's start screen opens it
        if not self.state.is_open:
            await self.open_incident(str(playbook.title.get("nb") or playbook.id))
            return
        await self._follow_playbook(first=self.state.incident.playbook_hash is None)

    async def _follow_playbook(self, *, first: bool) -> None:
        """Journal the playbook version in force; on the first one, apply its freeze."""
        pb, digest = self.playbooks.playbook, self.playbooks.hash
        if pb is None or digest is None or self.settings.playbook is None:
            return
        title = pb.title.get("nb") or pb.id
        await self.submit(
            ActivatePlaybook(pb.id, str(title), digest, str(self.settings.playbook)),
            actor="system",
        )
        if first and pb.freeze.on_activation and not self.state.freeze.active:
            await self.submit(freeze_from_playbook(pb), actor="system")
        if self.batching is not None:
            self.batching.request_seed(pb)

    # --- commands ----------------------------------------------------------------------

    def context(self, actor: str | None = None) -> Context:
        """The engine context for a command issued now."""
        return Context(
            org=self.settings.org,
            actor=actor or self.operator,
            now=self.clock.now(),
            incident_id=self.state.incident.incident_id or self.new_id(),
            new_id=self.new_id,
            roster=self.roster if self.settings.strict_roster else None,
            org_name=self.settings.org_name,
            policy=self.message_policy(),
        )

    async def submit(self, command: object, *, actor: str | None = None) -> Decision:
        """Decide, journal, fold, notify — one command at a time."""
        if self.writer is None:
            raise RuntimeError("the console runtime is not started")
        return await self.writer.submit(command, actor=actor)

    async def submit_many(self, commands: list[object], *, actor: str) -> list[Decision]:
        """Several commands in one journal transaction."""
        if self.writer is None:
            raise RuntimeError("the console runtime is not started")
        return await self.writer.submit_many(commands, actor=actor)

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
        refused = await self.identity.verify(approver, passphrase)
        if refused is not None:
            return refused
        decision = await self.submit(
            ApproveDraft(draft_id, approver, overrides, break_glass_reason), actor=approver
        )
        draft = self.state.messages.drafts.get(draft_id)
        if isinstance(decision, Rejection) and draft is not None:
            variants = [DraftVariant.from_json(v) for v in draft.variants]
            report = lint_draft(variants, self.message_policy())
            if report.hard_blocked:  # the journal records that a block happened
                codes = tuple(f.code for f in report.blocks)
                await self.submit(RecordApprovalBlock(draft_id, approver, codes), actor=approver)
        return decision

    async def sign_in(self, operator: str, passphrase: str) -> Decision:
        """Who is at this console from now on: proven with their passphrase, journaled."""
        refused = await self.identity.verify(operator, passphrase)
        if refused is not None:
            return refused
        decision = await self.submit(SignIn(operator), actor=operator)
        if not isinstance(decision, Rejection):
            self.identity.sign_in(operator)
            self.proven_operator = operator
        return decision

    @property
    def signed_in(self) -> bool:
        """Whether somebody has signed in at this console with their passphrase."""
        return self.proven_operator is not None

    async def approve_answer(
        self,
        answer_id: str,
        *,
        approver: str,
        passphrase: str,
        overrides: tuple[tuple[str, str, str], ...] = (),
        break_glass_reason: str | None = None,
    ) -> Decision:
        """Approve a batch's answer as ``approver``, identified by their passphrase."""
        refused = await self.identity.verify(approver, passphrase)
        if refused is not None:
            return refused
        return await self.submit(
            ApproveAnswer(answer_id, approver, overrides, break_glass_reason), actor=approver
        )

    def readiness(self) -> list[Readiness]:
        """Per channel: will a publish now be delivered, and why not."""
        return self.bridge_host.readiness(self.message_policy(), self.state)

    def roll_call(self) -> RollCall:
        """The roll-call for the current freeze."""
        roster = self.roster
        if roster is not None and not self.settings.strict_roster:
            presence = self.state.inbound.presence
            seen = {k.split("/", 1)[1] for k in presence if k.startswith("staff/")}
            extra = (seen | set(self.state.freeze.acks)) - set(roster)
            roster = {**roster, **dict.fromkeys(sorted(extra))}
        return roll_call(self.state, roster)

    def unacknowledged(self) -> list[str]:
        """Staff in scope who have not acknowledged the current freeze notice."""
        rc = self.roll_call()
        return rc.ids(StaffStatus.PENDING) + rc.ids(StaffStatus.OFFLINE)

    async def tick(self) -> None:
        """Act on what is due now (tests and drills call it directly)."""
        if self.timers is not None:
            await self.timers.tick()

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no outbox entry is pending (tests, clean shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.state.outbox.pending():
            if loop.time() > deadline:
                raise TimeoutError(f"{len(self.state.outbox.pending())} outbox entries pending")
            await asyncio.sleep(0.02)

    async def flush_inbound(self) -> None:
        """Wait until every message taken off the bus is journaled."""
        if self.writer is not None:
            await self.writer.flush()

    # --- bus -----------------------------------------------------------------------------

    def _after_events(self, state: IncidentState, events: list[EventBase]) -> None:
        if self.outbox is not None:
            self.outbox.wake()

    async def _on_bus_message(self, topic: str, payload: bytes, retained: bool) -> None:
        source = source_for(topic)
        if source.kind == "freeze":
            if self.freeze_guard is not None:
                self.freeze_guard.retained(payload)
            return
        if source.kind in ("message", "channel.out", "staff.remind"):
            return  # our own publishes, seen through the console's wide subscription
        # Hand over at once: the writer journals bursts in one transaction each, and
        # only then is the message acknowledged to the broker (a crash before that, and
        # the broker sends it again; the journal counts it once).
        if self.writer is not None:
            ack = self.session.defer_ack() if self.session is not None else None
            self.writer.put(ReceiveFromBus(source, payload), ack)

    def _on_link_state(self, state: LinkState, detail: str) -> None:
        self.link_state = state
        self.link_detail = detail
        if state is LinkState.CONNECTED:
            if self.outbox is not None:
                self.outbox.wake()
            if self.freeze_guard is not None:
                self.freeze_guard.connected()
        for listener in list(self._link_listeners):
            try:
                listener(state, detail)
            except Exception:
                log.exception("link listener failed")


__all__ = ["ConsoleRuntime", "Login", "ensure_signer", "roster_from_org", "source_for"]
