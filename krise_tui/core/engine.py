"""The engine: turns a command into events, after checking it against the state.

``decide`` is pure: given the same state, command and context it returns the same
events (the context carries the clock, the id source and the signing key). A command
that is not allowed returns a :class:`Rejection` with a reason a person can read; the
engine never raises for a refused command.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from krise_tui.bus import topics
from krise_tui.bus.envelope import Signer
from krise_tui.core import inbound
from krise_tui.core.events import (
    CurrentMessageSet,
    EventBase,
    InboundReceived,
    InboundRejected,
    IncidentOpened,
    OutboxAttemptFailed,
    OutboxConfirmed,
    OutboxRequested,
    PresenceChanged,
)
from krise_tui.core.ids import canonical_json, new_id
from krise_tui.core.state import EffectStatus, IncidentState

MAX_MESSAGE_CHARS = 20_000

# --- commands ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenIncident:
    """Open the incident (once)."""

    title: str
    level: int = 1


@dataclass(frozen=True)
class PublishCurrentMessage:
    """Make ``text`` the currently approved message and publish it (retained, signed)."""

    text: str


@dataclass(frozen=True)
class ReceiveFromBus:
    """Something arrived on a subscribed topic."""

    topic: str
    payload: bytes


@dataclass(frozen=True)
class ConfirmEffect:
    """The broker (or channel) confirmed an outbox entry."""

    effect_id: str


@dataclass(frozen=True)
class FailEffectAttempt:
    """An attempt at an outbox entry failed."""

    effect_id: str
    attempt: int
    reason: str


Command = OpenIncident | PublishCurrentMessage | ReceiveFromBus | ConfirmEffect | FailEffectAttempt


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """The command was valid; these events record it (possibly none: a no-op)."""

    events: list[EventBase] = field(default_factory=list)


@dataclass(frozen=True)
class Rejection:
    """The command was refused."""

    reason: str


Decision = Accepted | Rejection


@dataclass(frozen=True)
class Context:
    """Everything ``decide`` needs from outside: who, when, which org, how to sign."""

    org: str
    actor: str
    now: datetime
    signer: Signer
    incident_id: str
    new_id: Callable[[], str] = new_id


def message_version_id(variants: dict[str, str]) -> str:
    """SHA-256 over the canonical JSON of all language variants: the version id."""
    return hashlib.sha256(canonical_json(variants)).hexdigest()


def _base(ctx: Context, state: IncidentState) -> dict[str, Any]:
    return {
        "id": ctx.new_id(),
        "org": ctx.org,
        "incident_id": state.incident_id or ctx.incident_id,
        "actor": ctx.actor,
        "ts": ctx.now,
    }


def decide(state: IncidentState, command: Command, ctx: Context) -> Decision:
    """Validate ``command`` against ``state`` and return the events it produces."""
    match command:
        case OpenIncident():
            return _open_incident(state, command, ctx)
        case PublishCurrentMessage():
            return _publish_current(state, command, ctx)
        case ReceiveFromBus():
            return _receive(state, command, ctx)
        case ConfirmEffect():
            effect = state.effects.get(command.effect_id)
            if effect is None:
                return Rejection(f"unknown outbox entry {command.effect_id}")
            if effect.status is EffectStatus.CONFIRMED:
                return Accepted([])
            return Accepted([OutboxConfirmed(**_base(ctx, state), effect_id=command.effect_id)])
        case FailEffectAttempt():
            if command.effect_id not in state.effects:
                return Rejection(f"unknown outbox entry {command.effect_id}")
            return Accepted(
                [
                    OutboxAttemptFailed(
                        **_base(ctx, state),
                        effect_id=command.effect_id,
                        attempt=command.attempt,
                        reason=command.reason[:2000],
                    )
                ]
            )
    return Rejection(f"unknown command {type(command).__name__}")  # pragma: no cover


def _open_incident(state: IncidentState, cmd: OpenIncident, ctx: Context) -> Decision:
    if state.is_open:
        return Rejection(f"incident {state.incident_id} is already open")
    title = cmd.title.strip()
    if not title:
        return Rejection("an incident needs a title")
    if not 1 <= cmd.level <= 5:
        return Rejection(f"level must be 1-5, not {cmd.level}")
    base = _base(ctx, state)
    base["incident_id"] = ctx.incident_id
    return Accepted([IncidentOpened(**base, title=title, level=cmd.level)])


def _publish_current(state: IncidentState, cmd: PublishCurrentMessage, ctx: Context) -> Decision:
    text = cmd.text.strip()
    if not text:
        return Rejection("the message is empty")
    if len(text) > MAX_MESSAGE_CHARS:
        return Rejection(f"the message is too long ({len(text)} > {MAX_MESSAGE_CHARS} characters)")
    if not state.is_open:
        return Rejection("open an incident first")
    version_id = message_version_id({"nb": text})
    if state.current_message is not None and state.current_message.version_id == version_id:
        return Rejection("this exact message is already the current message")
    seq = state.next_seq("message")
    envelope = ctx.signer.sign(
        type="message.current",
        org=ctx.org,
        seq=seq,
        body={"version_id": version_id, "variants": {"nb": text}, "incident_id": state.incident_id},
        issued_at=ctx.now,
    )
    return Accepted(
        [
            CurrentMessageSet(**_base(ctx, state), version_id=version_id, text=text),
            OutboxRequested(
                **_base(ctx, state),
                effect_id=ctx.new_id(),
                topic=topics.message_current(ctx.org),
                payload=envelope.to_json(),
                qos=1,
                retain=True,
                stream="message",
                seq=seq,
            ),
        ]
    )


def _receive(state: IncidentState, cmd: ReceiveFromBus, ctx: Context) -> Decision:
    result = inbound.classify(cmd.topic, cmd.payload, org=ctx.org)
    if isinstance(result, inbound.Rejected):
        return Accepted(
            [
                InboundRejected(
                    **_base(ctx, state),
                    topic=cmd.topic[:500],
                    reason=result.reason,
                    size=result.size,
                    excerpt=result.excerpt,
                )
            ]
        )
    if result.kind == "presence":
        online = result.body["status"] == "online"
        key = f"{result.role}/{result.member_id}"
        if state.presence.get(key) is online:
            return Accepted([])
        return Accepted(
            [
                PresenceChanged(
                    **_base(ctx, state),
                    role=str(result.role),
                    member_id=str(result.member_id),
                    online=online,
                )
            ]
        )
    if result.key in state.inbound_keys:
        return Accepted([])  # a QoS 1 redelivery: journaled once already
    return Accepted(
        [
            InboundReceived(
                **_base(ctx, state),
                topic=cmd.topic,
                kind=result.kind,
                key=result.key,
                channel=result.channel,
                body=result.body,
            )
        ]
    )
