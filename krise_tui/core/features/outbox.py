"""The outbox: what the console has asked to publish, and whether the broker took it.

A feature that wants something sent (a freeze notice, the current message, a channel
delivery, a reminder) adds an :class:`OutboxRequested` to its events through
:class:`Requests`. The event says *what* to publish — a target, an envelope type, the
body and the stream ``seq`` — never a topic or a signature: the runtime's outbox maps
the target to a topic and signs with the event's id and time, so every retry sends the
very same bytes (Ed25519 signatures are deterministic).

An effect is pending until the broker confirms it (QoS 1 PUBACK with a success reason
code); a retained notice that a newer one replaces before it went out is *superseded*
(journaled, never published), so a broker never keeps a stale freeze.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import ConfigDict

from krise_tui.core.kernel import Accepted, Context, Decision, EventBase, Rejection
from krise_tui.core.registry import Feature

if TYPE_CHECKING:
    from krise_tui.core.state import IncidentState

feature = Feature("outbox")


class Target(StrEnum):
    """Where a publish goes (the runtime knows the topic)."""

    FREEZE = "freeze"
    """The retained, signed freeze notice."""
    MESSAGE = "message"
    """The retained, signed current message."""
    CHANNEL_OUT = "channel_out"
    """One channel's bridge (``channel``)."""
    STAFF_REMIND = "staff_remind"
    """One staff terminal (``staff_id``)."""


RETAINED_TARGETS = frozenset({Target.FREEZE, Target.MESSAGE})


@dataclass(frozen=True, kw_only=True)
class Publish:
    """What to publish: the runtime turns it into a topic and a signed envelope."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    target: Target
    channel: str | None = None
    staff_id: str | None = None
    envelope_type: str
    stream: str
    """The signed stream this publish advances (``freeze``, ``message``, ``out``…)."""
    seq: int
    body: dict[str, Any]
    retain: bool = False

    @property
    def slot(self) -> tuple[str, str | None, str | None]:
        """The destination: two publishes with one slot go to the same topic."""
        return (str(self.target), self.channel, self.staff_id)


class EffectStatus(StrEnum):
    """Where an outbox entry is."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    SUPERSEDED = "superseded"
    """A newer retained notice for the same topic was requested before this went out."""


@dataclass
class Effect:
    """One outbox entry, as known from the journal."""

    effect_id: str
    publish: Publish
    requested_at: datetime
    status: EffectStatus = EffectStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    refused: bool = False
    """The broker refused it (ACL): retrying does not help until someone fixes access."""


@dataclass
class OutboxSlice:
    """Every outbox entry, and the last ``seq`` issued per signed stream."""

    effects: dict[str, Effect] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)

    def pending(self) -> list[Effect]:
        """Entries not yet confirmed nor superseded, oldest first."""
        return [e for e in self.effects.values() if e.status is EffectStatus.PENDING]

    def next_seq(self, stream: str) -> int:
        """The ``seq`` the next envelope on ``stream`` must carry."""
        return self.seqs.get(stream, 0) + 1


# --- events --------------------------------------------------------------------------


@feature.event
class OutboxRequested(EventBase):
    """A publish was requested: journaled *before* it is attempted."""

    type: Literal["outbox.requested"] = "outbox.requested"
    effect_id: str
    publish: Publish
    channel: str | None = None
    """For a message delivery: the channel it goes to."""
    version_id: str | None = None
    """For a message delivery: the approved version it carries."""


@feature.event
class OutboxConfirmed(EventBase):
    """The broker confirmed the publish (QoS 1 PUBACK, success reason code)."""

    type: Literal["outbox.confirmed"] = "outbox.confirmed"
    effect_id: str


@feature.event
class OutboxAttemptFailed(EventBase):
    """One attempt failed; the entry stays pending and is retried."""

    type: Literal["outbox.attempt_failed"] = "outbox.attempt_failed"
    effect_id: str
    attempt: int
    reason: str
    refused: bool = False
    """The broker answered with a failure reason code (e.g. not authorised)."""


@feature.event
class OutboxRequeued(EventBase):
    """Send a confirmed entry again, byte for byte (an operator's re-send)."""

    type: Literal["outbox.requeued"] = "outbox.requeued"
    effect_id: str


@feature.event
class OutboxSuperseded(EventBase):
    """A retained notice was replaced by a newer one before it went out: not sent."""

    type: Literal["outbox.superseded"] = "outbox.superseded"
    effect_id: str
    by: str
    """The newer effect on the same topic."""


# --- commands ------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfirmEffect:
    """The broker confirmed an outbox entry."""

    effect_id: str


@dataclass(frozen=True)
class FailEffectAttempt:
    """An attempt at an outbox entry failed."""

    effect_id: str
    attempt: int
    reason: str
    refused: bool = False


@dataclass(frozen=True)
class SupersedeEffect:
    """Do not send ``effect_id``: ``by`` (newer, same retained topic) replaces it."""

    effect_id: str
    by: str


class Requests:
    """Builds :class:`OutboxRequested` events for one decision, numbering each stream."""

    def __init__(self, state: IncidentState, ctx: Context) -> None:
        self._state = state
        self._ctx = ctx
        self._next: dict[str, int] = {}

    def seq(self, stream: str) -> int:
        """Reserve the next ``seq`` on ``stream``."""
        seq = self._next.get(stream) or self._state.outbox.next_seq(stream)
        self._next[stream] = seq + 1
        return seq

    def publish(
        self,
        target: Target,
        *,
        envelope_type: str,
        stream: str,
        body: dict[str, Any],
        retain: bool = False,
        channel: str | None = None,
        staff_id: str | None = None,
        version_id: str | None = None,
        effect_id: str | None = None,
    ) -> OutboxRequested:
        """One publish request (the next ``seq`` on ``stream``)."""
        effect_id = effect_id or self._ctx.new_id()
        return OutboxRequested(
            **self._ctx.base(self._state),
            effect_id=effect_id,
            publish=Publish(
                target=target,
                channel=channel,
                staff_id=staff_id,
                envelope_type=envelope_type,
                stream=stream,
                seq=self.seq(stream),
                body=body,
                retain=retain,
            ),
            channel=channel if target is Target.CHANNEL_OUT else None,
            version_id=version_id,
        )


@feature.decides(ConfirmEffect)
def confirm(state: IncidentState, cmd: ConfirmEffect, ctx: Context) -> Decision:
    """Mark an entry done (a second confirmation is a no-op)."""
    effect = _effect(state, cmd.effect_id)
    if effect is None:
        return Rejection(f"unknown outbox entry {cmd.effect_id}")
    if effect.status is not EffectStatus.PENDING:
        return Accepted([])
    return Accepted([OutboxConfirmed(**ctx.base(state), effect_id=cmd.effect_id)])


@feature.decides(FailEffectAttempt)
def fail_attempt(state: IncidentState, cmd: FailEffectAttempt, ctx: Context) -> Decision:
    """Record a failed attempt (the entry stays pending)."""
    effect = _effect(state, cmd.effect_id)
    if effect is None:
        return Rejection(f"unknown outbox entry {cmd.effect_id}")
    if effect.status is not EffectStatus.PENDING:
        return Accepted([])
    return Accepted(
        [
            OutboxAttemptFailed(
                **ctx.base(state),
                effect_id=cmd.effect_id,
                attempt=cmd.attempt,
                reason=cmd.reason[:2000],
                refused=cmd.refused,
            )
        ]
    )


@feature.decides(SupersedeEffect)
def supersede(state: IncidentState, cmd: SupersedeEffect, ctx: Context) -> Decision:
    """Drop a pending retained publish that a newer one on the same topic replaces."""
    old, new = _effect(state, cmd.effect_id), _effect(state, cmd.by)
    if old is None or new is None:
        return Rejection(f"unknown outbox entry {cmd.effect_id if old is None else cmd.by}")
    if old.status is not EffectStatus.PENDING:
        return Accepted([])
    if old.publish.slot != new.publish.slot or not old.publish.retain:
        return Rejection("only a retained notice on the same topic can supersede another")
    if (new.publish.stream, new.publish.seq) <= (old.publish.stream, old.publish.seq):
        return Rejection("only a newer notice can supersede an older one")
    return Accepted([OutboxSuperseded(**ctx.base(state), effect_id=cmd.effect_id, by=cmd.by)])


def _effect(state: IncidentState, effect_id: str) -> Effect | None:
    return state.outbox.effects.get(effect_id)


# --- fold ----------------------------------------------------------------------------


@feature.applies(OutboxRequested)
def _requested(state: IncidentState, event: OutboxRequested) -> None:
    box = state.outbox
    box.effects[event.effect_id] = Effect(event.effect_id, event.publish, event.ts)
    stream = event.publish.stream
    box.seqs[stream] = max(box.seqs.get(stream, 0), event.publish.seq)


@feature.applies(OutboxConfirmed)
def _confirmed(state: IncidentState, event: OutboxConfirmed) -> None:
    effect = _effect(state, event.effect_id)
    if effect is not None:
        effect.status = EffectStatus.CONFIRMED
        effect.attempts += 1
        effect.refused = False


@feature.applies(OutboxAttemptFailed)
def _failed(state: IncidentState, event: OutboxAttemptFailed) -> None:
    effect = _effect(state, event.effect_id)
    if effect is not None:
        effect.attempts = max(effect.attempts, event.attempt)
        effect.last_error = event.reason
        effect.refused = event.refused


@feature.applies(OutboxRequeued)
def _requeued(state: IncidentState, event: OutboxRequeued) -> None:
    effect = _effect(state, event.effect_id)
    if effect is not None:
        effect.status = EffectStatus.PENDING
        effect.last_error = None


@feature.applies(OutboxSuperseded)
def _superseded(state: IncidentState, event: OutboxSuperseded) -> None:
    effect = _effect(state, event.effect_id)
    if effect is not None:
        effect.status = EffectStatus.SUPERSEDED


# --- describe ------------------------------------------------------------------------

_TARGET_WORDS = {
    Target.FREEZE: ("frysmelding til ansatte", "freeze notice to staff"),
    Target.MESSAGE: ("gjeldende budskap til ansatte", "current message to staff"),
    Target.CHANNEL_OUT: ("levering til kanal", "delivery to channel"),
    Target.STAFF_REMIND: ("påminnelse til ansatt", "reminder to staff member"),
}


def target_words(publish: Publish, lang: str) -> str:
    """``levering til kanal sms`` / ``freeze notice to staff`` …"""
    nb, en = _TARGET_WORDS[publish.target]
    words = en if lang == "en" else nb
    extra = publish.channel or publish.staff_id
    return f"{words} {extra}" if extra else words


@feature.describes(OutboxRequested)
def _d_requested(event: OutboxRequested, lang: str) -> str:
    head = "Queued" if lang == "en" else "Lagt i kø"
    return f"{head}: {target_words(event.publish, lang)} (nr. {event.publish.seq})"


@feature.describes(OutboxConfirmed)
def _d_confirmed(event: OutboxConfirmed, lang: str) -> str:
    if lang == "en":
        return f"Broker confirmed ({event.effect_id[:8]})"
    return f"Megleren bekreftet ({event.effect_id[:8]})"


@feature.describes(OutboxAttemptFailed)
def _d_failed(event: OutboxAttemptFailed, lang: str) -> str:
    if lang == "en":
        word = "refused by the broker" if event.refused else "failed"
        return f"Attempt {event.attempt} {word}: {event.reason}"
    word = "avvist av megleren" if event.refused else "feilet"
    return f"Forsøk {event.attempt} {word}: {event.reason}"


@feature.describes(OutboxRequeued)
def _d_requeued(event: OutboxRequeued, lang: str) -> str:
    if lang == "en":
        return f"Queued again ({event.effect_id[:8]})"
    return f"Lagt i kø på nytt ({event.effect_id[:8]})"


@feature.describes(OutboxSuperseded)
def _d_superseded(event: OutboxSuperseded, lang: str) -> str:
    if lang == "en":
        return f"Not sent: replaced by a newer notice ({event.by[:8]})"
    return f"Ikke sendt: erstattet av en nyere melding ({event.by[:8]})"
