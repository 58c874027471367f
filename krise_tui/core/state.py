"""Incident state: a pure fold of events.

``fold(events)`` gives the same state for the same events, every time, on every
machine; ``state_hash`` turns a state into a short fingerprint for replay tests.
The state is a plain mutable dataclass so that folding 100,000 events stays cheap;
treat a state you did not fold yourself as read-only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from krise_tui.core.events import (
    ApprovalBlocked,
    CurrentMessageSet,
    DeliveryRetried,
    DraftSaved,
    EventBase,
    FreezeAction,
    FreezeChanged,
    InboundKind,
    InboundReceived,
    InboundRejected,
    IncidentOpened,
    MessageApproved,
    MessagePublished,
    OutboxAttemptFailed,
    OutboxConfirmed,
    OutboxRequested,
    PlaybookActivated,
    PresenceChanged,
    RemindersSent,
)
from krise_tui.core.ids import canonical_json


class EffectStatus(StrEnum):
    """Where an outbox entry is."""

    PENDING = "pending"
    CONFIRMED = "confirmed"


@dataclass
class Effect:
    """One outbox entry, as known from the journal."""

    effect_id: str
    topic: str
    payload: str
    qos: int
    retain: bool
    requested_at: datetime
    status: EffectStatus = EffectStatus.PENDING
    attempts: int = 0
    last_error: str | None = None


@dataclass
class CurrentMessage:
    """The currently approved message."""

    version_id: str
    text: str
    set_at: datetime
    set_by: str


@dataclass
class FreezeState:
    """The freeze as the console last published it."""

    active: bool
    seq: int
    departments: list[str]
    reason: str
    since: datetime
    """When this freeze was first activated (unchanged by extend/update)."""
    changed_at: datetime
    by: str
    expires_at: datetime | None = None
    message_version_id: str | None = None
    message_text: str | None = None
    notice: dict[str, str] = field(default_factory=dict)

    def covers(self, department: str | None) -> bool:
        """Whether a staff member of ``department`` is in scope."""
        return not self.departments or (department is not None and department in self.departments)


@dataclass
class Ack:
    """A staff terminal's acknowledgement of a freeze notice."""

    seq: int
    at: datetime


class DeliveryStatus(StrEnum):
    """One channel's delivery of one version (the ledger)."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass
class Delivery:
    """A ledger row: version × channel."""

    effect_id: str
    version_id: str
    channel: str
    status: DeliveryStatus = DeliveryStatus.QUEUED
    reason: str | None = None
    remote_id: str | None = None
    attempts: int = 0
    permanent: bool = False
    updated_at: datetime | None = None


@dataclass
class Draft:
    """A message being written."""

    draft_id: str
    author: str
    variants: list[dict[str, Any]]
    channels: list[str]
    saved_at: datetime
    template_id: str | None = None
    status: str = "published"
    supersedes: str | None = None
    approved_version: str | None = None


@dataclass
class Version:
    """An approved, immutable message version."""

    version_id: str
    draft_id: str
    author: str
    approver: str
    variants: list[dict[str, Any]]
    channels: list[str]
    signature: str
    approved_at: datetime
    status: str = "published"
    supersedes: str | None = None
    break_glass_reason: str | None = None
    published_at: datetime | None = None


@dataclass
class IncidentState:
    """Everything the console knows about one incident."""

    org: str = ""
    incident_id: str = ""
    title: str = ""
    level: int = 0
    opened_at: datetime | None = None
    current_message: CurrentMessage | None = None
    effects: dict[str, Effect] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)
    """Last signed ``seq`` issued per stream (never goes back, survives restart)."""
    inbound_keys: set[str] = field(default_factory=set)
    inbound_count: int = 0
    rejected_count: int = 0
    presence: dict[str, bool] = field(default_factory=dict)
    """``role/id`` -> online."""
    presence_at: dict[str, datetime] = field(default_factory=dict)
    """``role/id`` -> when its presence last changed."""
    freeze: FreezeState | None = None
    acks: dict[str, Ack] = field(default_factory=dict)
    """staff id -> newest acknowledgement."""
    reminders: dict[str, datetime] = field(default_factory=dict)
    """staff id -> when the last reminder for the current freeze went out."""
    playbook_id: str | None = None
    playbook_hash: str | None = None
    playbook_title: str | None = None
    drafts: dict[str, Draft] = field(default_factory=dict)
    versions: dict[str, Version] = field(default_factory=dict)
    published_version: str | None = None
    """The version most recently published to the channels."""
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    """effect id -> ledger row."""

    def ledger(self, version_id: str | None = None) -> list[Delivery]:
        """The deliveries of ``version_id`` (default: the published one), in order."""
        wanted = version_id or self.published_version
        return [d for d in self.deliveries.values() if d.version_id == wanted]

    event_count: int = 0
    last_event_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        """Whether an incident has been opened."""
        return self.opened_at is not None

    def pending_effects(self) -> list[Effect]:
        """Outbox entries not yet confirmed, oldest first."""
        return [e for e in self.effects.values() if e.status is EffectStatus.PENDING]

    def next_seq(self, stream: str) -> int:
        """The ``seq`` the next signed envelope on ``stream`` must carry."""
        return self.seqs.get(stream, 0) + 1

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready, order-independent view of the state (for hashing and export)."""
        return {
            "org": self.org,
            "incident_id": self.incident_id,
            "title": self.title,
            "level": self.level,
            "opened_at": _iso(self.opened_at),
            "current_message": None
            if self.current_message is None
            else {
                "version_id": self.current_message.version_id,
                "text": self.current_message.text,
                "set_at": _iso(self.current_message.set_at),
                "set_by": self.current_message.set_by,
            },
            "effects": {
                k: {
                    "topic": e.topic,
                    "payload": e.payload,
                    "qos": e.qos,
                    "retain": e.retain,
                    "requested_at": _iso(e.requested_at),
                    "status": str(e.status),
                    "attempts": e.attempts,
                    "last_error": e.last_error,
                }
                for k, e in self.effects.items()
            },
            "seqs": self.seqs,
            "inbound_keys": sorted(self.inbound_keys),
            "inbound_count": self.inbound_count,
            "rejected_count": self.rejected_count,
            "presence": self.presence,
            "presence_at": {k: _iso(v) for k, v in self.presence_at.items()},
            "freeze": None
            if self.freeze is None
            else {
                "active": self.freeze.active,
                "seq": self.freeze.seq,
                "departments": self.freeze.departments,
                "reason": self.freeze.reason,
                "since": _iso(self.freeze.since),
                "changed_at": _iso(self.freeze.changed_at),
                "by": self.freeze.by,
                "expires_at": _iso(self.freeze.expires_at),
                "message_version_id": self.freeze.message_version_id,
                "message_text": self.freeze.message_text,
                "notice": self.freeze.notice,
            },
            "acks": {k: {"seq": a.seq, "at": _iso(a.at)} for k, a in self.acks.items()},
            "reminders": {k: _iso(v) for k, v in self.reminders.items()},
            "playbook": [self.playbook_id, self.playbook_hash, self.playbook_title],
            "drafts": {k: _plain(d) for k, d in self.drafts.items()},
            "versions": {k: _plain(v) for k, v in self.versions.items()},
            "published_version": self.published_version,
            "deliveries": {k: _plain(d) for k, d in self.deliveries.items()},
            "event_count": self.event_count,
            "last_event_at": _iso(self.last_event_at),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IncidentState:
        """Rebuild a state from :meth:`to_json` output (journal snapshots)."""
        msg = data["current_message"]
        return cls(
            org=data["org"],
            incident_id=data["incident_id"],
            title=data["title"],
            level=data["level"],
            opened_at=_dt(data["opened_at"]),
            current_message=None
            if msg is None
            else CurrentMessage(
                version_id=msg["version_id"],
                text=msg["text"],
                set_at=_dt_required(msg["set_at"]),
                set_by=msg["set_by"],
            ),
            effects={
                k: Effect(
                    effect_id=k,
                    topic=e["topic"],
                    payload=e["payload"],
                    qos=e["qos"],
                    retain=e["retain"],
                    requested_at=_dt_required(e["requested_at"]),
                    status=EffectStatus(e["status"]),
                    attempts=e["attempts"],
                    last_error=e["last_error"],
                )
                for k, e in data["effects"].items()
            },
            seqs=dict(data["seqs"]),
            inbound_keys=set(data["inbound_keys"]),
            inbound_count=data["inbound_count"],
            rejected_count=data["rejected_count"],
            presence=dict(data["presence"]),
            presence_at={k: _dt_required(v) for k, v in data["presence_at"].items()},
            freeze=None
            if data["freeze"] is None
            else FreezeState(
                active=data["freeze"]["active"],
                seq=data["freeze"]["seq"],
                departments=list(data["freeze"]["departments"]),
                reason=data["freeze"]["reason"],
                since=_dt_required(data["freeze"]["since"]),
                changed_at=_dt_required(data["freeze"]["changed_at"]),
                by=data["freeze"]["by"],
                expires_at=_dt(data["freeze"]["expires_at"]),
                message_version_id=data["freeze"]["message_version_id"],
                message_text=data["freeze"]["message_text"],
                notice=dict(data["freeze"]["notice"]),
            ),
            acks={k: Ack(seq=a["seq"], at=_dt_required(a["at"])) for k, a in data["acks"].items()},
            reminders={k: _dt_required(v) for k, v in data["reminders"].items()},
            playbook_id=data["playbook"][0],
            playbook_hash=data["playbook"][1],
            playbook_title=data["playbook"][2],
            drafts={k: Draft(**_revive(d, Draft)) for k, d in data["drafts"].items()},
            versions={k: Version(**_revive(v, Version)) for k, v in data["versions"].items()},
            published_version=data["published_version"],
            deliveries={k: Delivery(**_revive(d, Delivery)) for k, d in data["deliveries"].items()},
            event_count=data["event_count"],
            last_event_at=_dt(data["last_event_at"]),
        )


_DATETIME_FIELDS = {"saved_at", "approved_at", "published_at", "updated_at"}


def _plain(obj: Any) -> dict[str, Any]:
    """A dataclass as JSON-ready dict (datetimes as ISO text, enums as values)."""
    out: dict[str, Any] = {}
    for key, value in obj.__dict__.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, StrEnum):
            out[key] = str(value)
        else:
            out[key] = value
    return out


def _revive(data: dict[str, Any], cls: type) -> dict[str, Any]:
    out = dict(data)
    for key in _DATETIME_FIELDS & out.keys():
        out[key] = _dt(out[key])
    if cls is Delivery:
        out["status"] = DeliveryStatus(out["status"])
    return out


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _dt_required(value: str) -> datetime:
    return datetime.fromisoformat(value)


def apply(state: IncidentState, event: EventBase) -> IncidentState:
    """Apply one event to ``state`` in place and return it."""
    state.event_count += 1
    state.last_event_at = event.ts
    if not state.org:
        state.org = event.org
    match event:
        case IncidentOpened():
            state.incident_id = event.incident_id
            state.title = event.title
            state.level = event.level
            state.opened_at = event.ts
        case CurrentMessageSet():
            state.current_message = CurrentMessage(
                version_id=event.version_id, text=event.text, set_at=event.ts, set_by=event.actor
            )
        case DraftSaved():
            state.drafts[event.draft_id] = Draft(
                draft_id=event.draft_id,
                author=event.actor,
                variants=list(event.variants),
                channels=list(event.channels),
                saved_at=event.ts,
                template_id=event.template_id,
                status=event.status,
                supersedes=event.supersedes,
            )
        case MessageApproved():
            state.versions[event.version_id] = Version(
                version_id=event.version_id,
                draft_id=event.draft_id,
                author=event.author,
                approver=event.approver,
                variants=list(event.variants),
                channels=list(event.channels),
                signature=event.signature,
                approved_at=event.ts,
                status=event.status,
                supersedes=event.supersedes,
                break_glass_reason=event.break_glass_reason,
            )
            draft = state.drafts.get(event.draft_id)
            if draft is not None:
                draft.approved_version = event.version_id
        case ApprovalBlocked():
            pass  # journaled for the record; the draft stays as it was
        case MessagePublished():
            state.published_version = event.version_id
            version = state.versions.get(event.version_id)
            if version is not None:
                version.published_at = event.ts
        case DeliveryRetried():
            effect = state.effects.get(event.effect_id)
            if effect is not None:
                effect.status = EffectStatus.PENDING
            delivery = state.deliveries.get(event.effect_id)
            if delivery is not None:
                delivery.status = DeliveryStatus.QUEUED
                delivery.reason = None
                delivery.permanent = False
                delivery.updated_at = event.ts
        case OutboxRequested():
            if event.channel is not None and event.version_id is not None:
                state.deliveries[event.effect_id] = Delivery(
                    effect_id=event.effect_id,
                    version_id=event.version_id,
                    channel=event.channel,
                    updated_at=event.ts,
                )
            state.effects[event.effect_id] = Effect(
                effect_id=event.effect_id,
                topic=event.topic,
                payload=event.payload,
                qos=event.qos,
                retain=event.retain,
                requested_at=event.ts,
            )
            if event.stream is not None and event.seq is not None:
                state.seqs[event.stream] = max(state.seqs.get(event.stream, 0), event.seq)
        case OutboxConfirmed():
            effect = state.effects.get(event.effect_id)
            if effect is not None:
                effect.status = EffectStatus.CONFIRMED
                effect.attempts += 1
            delivery = state.deliveries.get(event.effect_id)
            if delivery is not None and delivery.status is DeliveryStatus.QUEUED:
                # The staff channel is the retained message itself: the broker's
                # PUBACK is its delivery. Bridges report theirs in receipts.
                staff = effect is not None and effect.topic.endswith("/message/current")
                delivery.status = DeliveryStatus.DELIVERED if staff else DeliveryStatus.SENT
                delivery.updated_at = event.ts
        case OutboxAttemptFailed():
            effect = state.effects.get(event.effect_id)
            if effect is not None:
                effect.attempts = max(effect.attempts, event.attempt)
                effect.last_error = event.reason
        case FreezeChanged():
            previous = state.freeze
            fresh = event.action is FreezeAction.FREEZE or previous is None
            state.freeze = FreezeState(
                active=event.active,
                seq=event.seq,
                departments=list(event.departments),
                reason=event.reason,
                since=event.ts if fresh or previous is None else previous.since,
                changed_at=event.ts,
                by=event.actor,
                expires_at=event.expires_at,
                message_version_id=event.message_version_id,
                message_text=event.message_text,
                notice=dict(event.notice),
            )
            state.reminders.clear()
        case PlaybookActivated():
            state.playbook_id = event.playbook_id
            state.playbook_hash = event.hash
            state.playbook_title = event.title
        case RemindersSent():
            for staff_id in event.staff_ids:
                state.reminders[staff_id] = event.ts
        case InboundReceived():
            state.inbound_keys.add(event.key)
            state.inbound_count += 1
            if event.kind is InboundKind.ACK:
                staff_id = str(event.body["staff_id"])
                state.acks[staff_id] = Ack(seq=int(event.body["seq"]), at=event.ts)
            elif event.kind is InboundKind.RECEIPT:
                _apply_receipt(state, event)
        case InboundRejected():
            state.rejected_count += 1
        case PresenceChanged():
            key = f"{event.role}/{event.member_id}"
            state.presence[key] = event.online
            state.presence_at[key] = event.ts
        case _:  # pragma: no cover - the union is closed; new events must be added above
            raise TypeError(f"state.apply does not know event type {type(event).__name__}")
    return state


_RECEIPT_STATUS = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "failed": DeliveryStatus.FAILED,
}


def _apply_receipt(state: IncidentState, event: InboundReceived) -> None:
    body = event.body
    delivery = state.deliveries.get(str(body.get("effect_id")))
    if delivery is None or delivery.channel != event.channel:
        return  # a receipt for something this console did not send: kept in the journal
    status = _RECEIPT_STATUS[str(body["status"])]
    if delivery.status is DeliveryStatus.DELIVERED and status is not DeliveryStatus.DELIVERED:
        return  # late or reordered receipts never undo a delivery
    delivery.status = status
    delivery.attempts = max(delivery.attempts, int(body.get("attempt") or 0))
    delivery.updated_at = event.ts
    if status is DeliveryStatus.DELIVERED:
        delivery.remote_id = body.get("remote_id") or delivery.remote_id
        delivery.reason = None
        delivery.permanent = False
    elif status is DeliveryStatus.FAILED:
        delivery.reason = body.get("reason") or "ukjent feil"
        delivery.permanent = bool(body.get("permanent"))


def fold(events: Iterable[EventBase], state: IncidentState | None = None) -> IncidentState:
    """Fold ``events`` into a state (a new one unless ``state`` is given)."""
    current = state if state is not None else IncidentState()
    for event in events:
        apply(current, event)
    return current


def state_hash(state: IncidentState) -> str:
    """SHA-256 (hex) of the state's canonical JSON."""
    return hashlib.sha256(canonical_json(state.to_json())).hexdigest()
