"""Events: the only truth in krise.

Every change to an incident is an event. Events are immutable pydantic models in a
discriminated union on ``type``; the journal stores their canonical JSON, the state is a
fold over them, and a drill recording is just a list of them.

Adding a feature means adding event classes here, a branch in ``state.apply`` and a
command in ``engine``: nothing else needs to know.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class EventBase(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    """Unique event id (hex)."""
    org: str
    """Organisation slug, e.g. ``hattfjelldal``."""
    incident_id: str
    """The incident this event belongs to."""
    actor: str
    """Who caused it: an operator id, ``system``, ``bus`` or ``drill``."""
    ts: datetime
    """When it happened (timezone-aware)."""


class IncidentOpened(EventBase):
    """The crisis leadership opened an incident."""

    type: Literal["incident.opened"] = "incident.opened"
    title: str
    level: int = 1


class CurrentMessageSet(EventBase):
    """A message became the currently approved message (the one voice outward)."""

    type: Literal["message.current_set"] = "message.current_set"
    version_id: str
    """SHA-256 over the message's canonical content: every channel carries this id."""
    text: str


class OutboxRequested(EventBase):
    """An effect (an MQTT publish now; channel deliveries later) was requested.

    Journaled *before* it is attempted, so a crash never loses it; the same
    ``effect_id`` and the same bytes are used for every retry.
    """

    type: Literal["outbox.requested"] = "outbox.requested"
    effect_id: str
    kind: Literal["mqtt.publish"] = "mqtt.publish"
    topic: str
    payload: str
    """The exact payload (a signed envelope as JSON text)."""
    qos: int = 1
    retain: bool = False
    stream: str | None = None
    """Signed stream this publish advances (``freeze``, ``message``…), if any."""
    seq: int | None = None
    """The envelope's sequence number on that stream."""
    channel: str | None = None
    """For a message delivery: the channel it goes to."""
    version_id: str | None = None
    """For a message delivery: the approved version it carries."""


class OutboxConfirmed(EventBase):
    """The effect was confirmed (QoS 1 PUBACK, or the channel's receipt)."""

    type: Literal["outbox.confirmed"] = "outbox.confirmed"
    effect_id: str


class OutboxAttemptFailed(EventBase):
    """One attempt at an effect failed; it stays pending and will be retried."""

    type: Literal["outbox.attempt_failed"] = "outbox.attempt_failed"
    effect_id: str
    attempt: int
    reason: str


class InboundKind(StrEnum):
    """What an accepted inbound bus message was."""

    POST = "post"
    ACK = "ack"
    RECEIPT = "receipt"


class InboundReceived(EventBase):
    """A message from the bus was accepted (validated) and journaled."""

    type: Literal["inbound.received"] = "inbound.received"
    topic: str
    kind: InboundKind
    key: str
    """Deduplication key (e.g. ``channel:post-id``): the same key is journaled once."""
    channel: str | None = None
    body: dict[str, Any]


class InboundRejected(EventBase):
    """A message from the bus was malformed; kept (excerpt) with the reason, never lost."""

    type: Literal["inbound.rejected"] = "inbound.rejected"
    topic: str
    reason: str
    size: int
    excerpt: str
    """The first bytes of the payload, hex-escaped where not printable."""


class PresenceChanged(EventBase):
    """A participant (staff terminal, bridge, console) went online or offline."""

    type: Literal["presence.changed"] = "presence.changed"
    role: str
    member_id: str
    online: bool


class FreezeAction(StrEnum):
    """What a freeze change did."""

    FREEZE = "freeze"
    EXTEND = "extend"
    UPDATE = "update"
    """The current message changed while frozen: the notice carries the new one."""
    LIFT = "lift"


class FreezeChanged(EventBase):
    """Employee posting was frozen, extended, updated or lifted (signed, retained notice)."""

    type: Literal["freeze.changed"] = "freeze.changed"
    action: FreezeAction
    active: bool
    departments: list[str] = Field(default_factory=list)
    """Departments in scope; empty means all staff."""
    reason: str
    expires_at: datetime | None = None
    message_version_id: str | None = None
    message_text: str | None = None
    notice: dict[str, str] = Field(default_factory=dict)
    """The playbook's notice text per language."""
    seq: int
    """The notice's envelope ``seq`` on the ``freeze`` stream: acks must name it."""


class RemindersSent(EventBase):
    """Reminders went to staff terminals that had not acknowledged the freeze."""

    type: Literal["freeze.reminders_sent"] = "freeze.reminders_sent"
    freeze_seq: int
    staff_ids: list[str]


class DraftSaved(EventBase):
    """A message draft was written or changed (author = actor)."""

    type: Literal["message.draft_saved"] = "message.draft_saved"
    draft_id: str
    variants: list[dict[str, Any]]
    """``{lang, headline, body, awaiting_translation}`` per language."""
    channels: list[str]
    template_id: str | None = None
    status: str = "published"
    """``published``, ``updated`` (supersedes a version) or ``retracted``."""
    supersedes: str | None = None


class MessageApproved(EventBase):
    """A second person approved a draft: an immutable version (actor = approver)."""

    type: Literal["message.approved"] = "message.approved"
    version_id: str
    draft_id: str
    author: str
    approver: str
    variants: list[dict[str, Any]]
    channels: list[str]
    status: str = "published"
    supersedes: str | None = None
    signature: str
    """The author's full name and title, appended on every channel."""
    findings: list[str] = Field(default_factory=list)
    """Lint codes seen at approval (never the text found: no ID number is journaled)."""
    overrides: list[dict[str, str]] = Field(default_factory=list)
    """``{code, lang, reason}`` for every finding approved with a reason."""
    break_glass_reason: str | None = None
    """Set when the author approved alone (break-glass, where the playbook allows it)."""


class ApprovalBlocked(EventBase):
    """An approval was refused by the lint (actor = the would-be approver).

    Records that a block happened and which rules fired — never the text found, so no
    national identity number ever reaches the journal.
    """

    type: Literal["message.approval_blocked"] = "message.approval_blocked"
    draft_id: str
    codes: list[str]


class MessagePublished(EventBase):
    """An approved version went out to its channels (one outbox entry each)."""

    type: Literal["message.published"] = "message.published"
    version_id: str
    channels: list[str]


class DeliveryRetried(EventBase):
    """An operator asked one channel's delivery to be sent again (same envelope)."""

    type: Literal["delivery.retried"] = "delivery.retried"
    effect_id: str


class PlaybookActivated(EventBase):
    """A playbook (version) became the one the console follows."""

    type: Literal["playbook.activated"] = "playbook.activated"
    playbook_id: str
    title: str
    hash: str
    """SHA-256 of the playbook file: every later journal row records it too."""
    path: str


Event = Annotated[
    IncidentOpened
    | PlaybookActivated
    | DraftSaved
    | MessageApproved
    | ApprovalBlocked
    | MessagePublished
    | DeliveryRetried
    | CurrentMessageSet
    | FreezeChanged
    | RemindersSent
    | OutboxRequested
    | OutboxConfirmed
    | OutboxAttemptFailed
    | InboundReceived
    | InboundRejected
    | PresenceChanged,
    Field(discriminator="type"),
]
"""Any event (discriminated on ``type``)."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_LIST_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


def event_to_json(event: EventBase) -> dict[str, Any]:
    """Return the JSON-ready dict of an event (the journal's stored form)."""
    return event.model_dump(mode="json")


def event_from_json(data: str | bytes) -> Event:
    """Parse one event from its JSON text."""
    return EVENT_ADAPTER.validate_json(data)
