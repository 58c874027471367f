"""A staff terminal's engine: verify what arrives, keep the view, never obey forgeries.

Headless (no textual import here): :class:`StaffRuntime` is used by the terminal's
Textual app and by tests. It holds only the console's public key; a notice that is
forged, altered, replayed (an older ``seq`` than one already seen, remembered on disk
across restarts) or older than the maximum age is ignored with a warning and never
replaces what is shown. It knows nothing of the console beyond the wire formats.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from krise_tui.bus import topics
from krise_tui.bus.envelope import (
    Envelope,
    KeyFileError,
    SeqTracker,
    Verifier,
    VerifyStatus,
    load_public_key,
)
from krise_tui.bus.login import resolve_login
from krise_tui.bus.session import (
    BusSession,
    LinkState,
    NotConnectedError,
    PublishRefusedError,
    SessionConfig,
    cancel_and_wait,
)
from krise_tui.clock import Clock, SystemClock
from krise_tui.config import Settings
from krise_tui.files import atomic_write
from krise_tui.timefmt import DEFAULT_TIMEZONE, format_datetime
from krise_tui.wire.staff import (
    FREEZE_TYPE,
    MESSAGE_TYPE,
    NOTICE_MAX_AGE_HOURS,
    REMINDER_TYPE,
    CurrentMessage,
    FreezeNotice,
    Reminder,
    StaffAck,
)

log = logging.getLogger(__name__)

MAX_AGE = timedelta(hours=NOTICE_MAX_AGE_HOURS)


@dataclass
class ShownFreeze:
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
    ack_from: int | None = None
    """A re-asserted notice: an acknowledgement from this seq on still counts."""

    def acknowledged_by(self, seq: int | None) -> bool:
        """Whether this terminal's acknowledgement of ``seq`` covers the notice shown."""
        return seq is not None and (self.ack_from or self.seq) <= seq <= self.seq


@dataclass
class StaffView:
    """What a staff terminal shows (verified content only)."""

    current_message: str | None = None
    message_version: str | None = None
    message_issued_at: datetime | None = None
    freeze: ShownFreeze | None = None
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
        return self.freeze is not None and not self.freeze.acknowledged_by(self.acked_seq)


def load_tracker(path: Path | None) -> SeqTracker:
    """The replay tracker saved at ``path`` (an empty one when there is none)."""
    if path is None:
        return SeqTracker()
    try:
        return SeqTracker.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return SeqTracker()
    except (OSError, ValueError) as exc:
        log.warning("%s: cannot read the replay tracker (%s); starting afresh", path, exc)
        return SeqTracker()


@dataclass
class StaffRuntime:
    """A staff terminal's engine (see the module docstring)."""

    settings: Settings
    staff_id: str
    department: str | None = None
    clock: Clock = field(default_factory=SystemClock)
    verifier: Verifier | None = None
    public_keys: list[Ed25519PublicKey] | None = None
    """The console's public key(s); default: read from ``settings.public_key_path``."""
    state_file: Path | None = None
    """Where the replay tracker is kept across restarts (default: under the data dir)."""
    timezone: str = DEFAULT_TIMEZONE
    """The municipality's time zone (the org file's ``timezone``): every time this
    terminal shows is wall time there, as on the console, whatever the machine's zone."""

    def __post_init__(self) -> None:
        self.view = StaffView()
        self.session: BusSession | None = None
        self.link_state = LinkState.CONNECTING
        self.link_detail = ""
        self._listeners: list[Callable[[StaffView], object]] = []
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        if self.state_file is None:
            self.state_file = self.settings.data_dir / "staff" / f"{self.staff_id}.seq.json"
        if self.verifier is None and self.public_keys is not None:
            tracker = load_tracker(self.state_file)
            self.verifier = Verifier(self.public_keys, org=self.settings.org, tracker=tracker)

    async def start(self) -> None:
        """Load the public key and the replay tracker, connect, subscribe."""
        s = self.settings
        topics.staff_ack(s.org, self.staff_id)  # validates the id early, with a clear error
        if self.verifier is None:
            try:
                key = load_public_key(s.public_key_path)
            except KeyFileError as exc:
                raise KeyFileError(f"{exc} (copy the console's console.pub here)") from exc
            self.verifier = Verifier([key], org=s.org, tracker=load_tracker(self.state_file))
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
                protocol=login.protocol,
                # Found again before every connect: a restarted console's broker may
                # listen elsewhere with new passwords.
                resolve=lambda: resolve_login(s, "staff", self.staff_id),
            ),
            self._on_message,
            on_state=self._on_link,
        )
        self._task = asyncio.create_task(self.session.run(), name="staff-bus-session")

    async def stop(self) -> None:
        """Disconnect cleanly."""
        if self.session is not None:
            await self.session.stop()
        await cancel_and_wait(*(t for t in (self._task, *self._tasks) if t is not None))

    def on_change(self, listener: Callable[[StaffView], object]) -> None:
        """Call ``listener(view)`` whenever the view changes."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self.view)
            except Exception:
                log.exception("staff view listener failed")

    def _spawn(self, coro: Coroutine[object, object, object], name: str) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task[object]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", name, exc_info=t.exception())

        task.add_done_callback(done)

    def _on_link(self, state: LinkState, detail: str) -> None:
        self.link_state = state
        self.link_detail = detail
        if state is LinkState.CONNECTED and self.view.ack_pending is not None:
            self._spawn(self.acknowledge(), "staff-resend-ack")
        self._changed()

    async def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        self.handle(topic, payload)

    def handle(self, topic: str, payload: bytes) -> None:
        """Verify and apply one message (public so tests can feed it directly)."""
        assert self.verifier is not None
        parsed = topics.parse(topic)
        result = self.verifier.check(payload, record=False)
        if result.status is VerifyStatus.DUPLICATE:
            return
        if not result.ok or result.envelope is None:
            self._warn(
                f"Ugyldig melding på {topic} – ignorert ({result.reason})",
                f"Invalid message on {topic} – ignored ({result.reason})",
            )
            return
        env = result.envelope
        age = self.clock.now() - env.issued_at
        if age > MAX_AGE:
            issued = format_datetime(env.issued_at, self.timezone, self.settings.lang)
            self._warn(
                f"For gammel melding på {topic} (utstedt {issued}) – ignorert",
                f"Message too old on {topic} (issued {issued}) – ignored",
            )
            return
        kind = parsed.kind if parsed is not None else ""
        try:
            if kind == "message" and env.type == MESSAGE_TYPE:
                self._apply_message(env, CurrentMessage.model_validate(env.body))
            elif kind == "freeze" and env.type == FREEZE_TYPE:
                self._apply_freeze(env, FreezeNotice.model_validate(env.body))
            elif kind == "staff.remind" and env.type == REMINDER_TYPE:
                self._apply_reminder(env, Reminder.model_validate(env.body))
            else:
                self._warn(
                    f"Uventet meldingstype {env.type!r} på {topic} – ignorert",
                    f"Unexpected message type {env.type!r} on {topic} – ignored",
                )
                return
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"]
            self._warn(
                f"Signert melding på {topic} har feil innhold – ignorert ({problem})",
                f"Signed message on {topic} has invalid content – ignored ({problem})",
            )
            return
        self.verifier.tracker.record(env)
        self._save_tracker()

    def _save_tracker(self) -> None:
        if self.state_file is None or self.verifier is None:
            return
        data = json.dumps(self.verifier.tracker.to_json()).encode("utf-8")
        try:
            atomic_write(self.state_file, data, mode=0o600)
        except OSError as exc:
            log.warning("cannot save %s: %s", self.state_file, exc)

    def _apply_message(self, env: Envelope, body: CurrentMessage) -> None:
        text = self._in_my_language(body.variants)
        if text is None:
            self._warn(
                "Gjeldende budskap mangler norsk tekst – ignorert",
                "The current message has no Norwegian text – ignored",
            )
            return
        self.view.current_message = text
        self.view.message_version = body.version_id
        self.view.message_issued_at = env.issued_at
        self.view.last_update = self.clock.now()
        self._changed()

    def _apply_freeze(self, env: Envelope, body: FreezeNotice) -> None:
        in_scope = not body.departments or (self.department in body.departments)
        if not body.active or not in_scope:
            self.view.freeze = None
        else:
            message = body.message
            self.view.freeze = ShownFreeze(
                seq=env.seq,
                reason=body.reason,
                since=body.since,
                expires_at=body.expires_at,
                departments=list(body.departments),
                message=None if message is None else self._in_my_language(message.variants),
                message_version=None if message is None else message.version_id,
                notice=dict(body.notice),
                issued_at=env.issued_at,
                ack_from=body.ack_from,
            )
            if self.view.freeze.message is not None:
                self.view.current_message = self.view.freeze.message
                self.view.message_version = self.view.freeze.message_version
        self.view.reminded_at = None
        self.view.last_update = self.clock.now()
        self._changed()

    def _in_my_language(self, texts: dict[str, str]) -> str | None:
        """The staff member's language when the leadership wrote it, else bokmål."""
        for lang in (self.settings.lang, "nb"):
            if lang in texts:
                return texts[lang]
        return None

    def _apply_reminder(self, env: Envelope, body: Reminder) -> None:
        freeze = self.view.freeze
        if freeze is None or body.freeze_seq != freeze.seq or body.staff_id != self.staff_id:
            return  # a reminder for a notice that is no longer current
        self.view.reminded_at = env.issued_at
        self._changed()

    async def acknowledge(self) -> bool:
        """Acknowledge the shown freeze notice (QoS 1); kept and resent if offline."""
        freeze = self.view.freeze
        seq = self.view.ack_pending
        if freeze is not None and not freeze.acknowledged_by(self.view.acked_seq):
            seq = freeze.seq
        if seq is None or self.session is None:
            return False
        now = self.clock.now()
        body = StaffAck(staff_id=self.staff_id, seq=seq, at=now).model_dump_json()
        try:
            await self.session.publish(
                topics.staff_ack(self.settings.org, self.staff_id), body, qos=1
            )
        except NotConnectedError:
            self.view.ack_pending = seq
            self._changed()
            return False
        except PublishRefusedError as exc:
            self._warn(
                f"Megleren avviste kvitteringen ({exc.reason}) – kontakt IT",
                f"The broker refused the acknowledgement ({exc.reason}) – contact IT",
            )
            return False
        self.view.ack_pending = None
        self.view.acked_seq = seq
        self.view.acked_at = now
        self._changed()
        return True

    def _warn(self, nb: str, en: str) -> None:
        """Warn on the terminal in its language (bokmål unless ``--lang en``), and log."""
        text = en if self.settings.lang == "en" else nb
        log.warning(text)
        self.view.warnings.append(text)
        del self.view.warnings[:-20]
        self._changed()
