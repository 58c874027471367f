"""What arrives from the bus: posts from the public, presence, and everything rejected.

The engine parses every inbound payload with hard bounds and hands it to the feature
that accepts its kind (:meth:`Feature.accepts`): posts and presence here, staff acks in
the freeze feature, delivery receipts in the messages feature. A payload that any step
refuses becomes an :class:`InboundRejected` with the topic and the reason — journaled,
counted, never lost and never able to stop the messages after it.

Posts are stored with any national identity number masked (first six digits kept) and
flagged, so a number is never re-published by quoting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError

from krise_tui.core.kernel import (
    Accepted,
    BusEvent,
    BusSource,
    Context,
    Decision,
    EventBase,
    Rejection,
)
from krise_tui.core.registry import Feature
from krise_tui.core.textcheck import mask_id_numbers
from krise_tui.wire.inbound import InboundPost, Presence
from krise_tui.wire.safejson import validate_strict

if TYPE_CHECKING:
    from krise_tui.core.state import IncidentState

feature = Feature("inbound")


# --- state ---------------------------------------------------------------------------


@dataclass
class Post:
    """One post from the public, as journaled (ID numbers masked)."""

    key: str
    """``{channel}:{platform id}``: the de-duplication key."""
    channel: str
    post_id: str
    text: str
    received_at: datetime
    author: str | None = None
    kind: str = "post"
    reply_to: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    masked: int = 0
    """How many ID numbers were masked in the text."""


@dataclass
class InboundSlice:
    """Posts by key, presence of every participant, and what was rejected."""

    posts: dict[str, Post] = field(default_factory=dict)
    rejected: int = 0
    last_rejection: str | None = None
    presence: dict[str, bool] = field(default_factory=dict)
    """``role/id`` -> online."""
    presence_at: dict[str, datetime] = field(default_factory=dict)
    """``role/id`` -> when its presence last changed."""
    trouble: dict[str, dict[str, str]] = field(default_factory=dict)
    """``role/id`` -> what a bridge says is wrong with its intake now (source ->
    problem); only while it is online and something is wrong."""

    def online(self, role: str) -> list[str]:
        """Ids of ``role`` that are online now."""
        prefix = f"{role}/"
        return sorted(
            k[len(prefix) :] for k, up in self.presence.items() if up and k.startswith(prefix)
        )


# --- events --------------------------------------------------------------------------


@feature.event
class PostReceived(BusEvent):
    """A post from the public arrived on a channel (journaled before anything else)."""

    type: Literal["inbound.post"] = "inbound.post"
    key: str
    channel: str
    post: InboundPost
    """The post as the bridge sent it, its text with any ID number masked."""
    masked: int = 0


@feature.event
class InboundRejected(EventBase):
    """A bus message was refused; kept (an excerpt) with the topic and the reason."""

    type: Literal["inbound.rejected"] = "inbound.rejected"
    topic: str
    reason: str
    size: int
    excerpt: str
    """The first bytes of the payload, hex-escaped where not printable, ID numbers masked."""


@feature.event
class PresenceChanged(BusEvent):
    """A participant (staff terminal, bridge, console) went online or offline, or a
    bridge's intake trouble changed."""

    type: Literal["presence.changed"] = "presence.changed"
    role: str
    member_id: str
    online: bool
    trouble: dict[str, str] = Field(default_factory=dict)
    """What is wrong with the bridge's intake now (source -> problem), as it said."""


# --- accept --------------------------------------------------------------------------


def rejected(
    state: IncidentState, ctx: Context, *, topic: str, reason: str, payload: bytes
) -> InboundRejected:
    """The event recording a refused payload (reason and excerpt masked and bounded)."""
    excerpt, _ = mask_id_numbers(payload[:200].decode("utf-8", errors="backslashreplace"))
    safe_reason, _ = mask_id_numbers(reason)
    return InboundRejected(
        **ctx.base(state),
        topic=topic[:500],
        reason=safe_reason[:2000],
        size=len(payload),
        excerpt=excerpt,
    )


def _schema_problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
        for err in exc.errors()[:5]
    )


@feature.accepts("channel.in")
def accept_post(
    state: IncidentState, source: BusSource, data: dict[str, Any], ctx: Context
) -> Decision:
    """A post on a channel's ``in`` topic: validated, de-duplicated, masked."""
    try:
        post = validate_strict(InboundPost, data)
    except ValidationError as exc:
        return Rejection(f"wrong schema: {_schema_problems(exc)}")
    channel = source.channel or "?"
    key = f"{channel}:{post.id}"
    if key in state.inbound.posts:
        return Accepted([])  # a QoS 1 redelivery or the platform sending it twice
    text, masked = mask_id_numbers(post.text)
    if masked:
        post = post.model_copy(update={"text": text})
    return Accepted(
        [
            PostReceived(
                **ctx.base(state),
                topic=source.topic,
                key=key,
                channel=channel,
                post=post,
                masked=masked,
            )
        ]
    )


@feature.accepts("presence")
def accept_presence(
    state: IncidentState, source: BusSource, data: dict[str, Any], ctx: Context
) -> Decision:
    """A retained presence message (or a last will)."""
    try:
        presence = validate_strict(Presence, data)
    except ValidationError as exc:
        return Rejection(f"wrong schema: {_schema_problems(exc)}")
    role, member = source.role or "?", source.member_id or "?"
    online = presence.status == "online"
    key = f"{role}/{member}"
    # A server's words may quote what it could not read: ID numbers masked, as in posts.
    trouble = (
        {source: mask_id_numbers(text)[0] for source, text in sorted(presence.trouble.items())}
        if online
        else {}
    )
    if state.inbound.presence.get(key) is online and state.inbound.trouble.get(key, {}) == trouble:
        return Accepted([])
    return Accepted(
        [
            PresenceChanged(
                **ctx.base(state),
                topic=source.topic,
                role=role,
                member_id=member,
                online=online,
                trouble=trouble,
            )
        ]
    )


# --- fold ----------------------------------------------------------------------------


@feature.applies(PostReceived)
def _post(state: IncidentState, event: PostReceived) -> None:
    p = event.post
    state.inbound.posts[event.key] = Post(
        key=event.key,
        channel=event.channel,
        post_id=p.id,
        text=p.text,
        received_at=event.ts,
        author=p.author,
        kind=p.kind,
        reply_to=p.reply_to,
        meta=dict(p.meta),
        masked=event.masked,
    )


@feature.applies(InboundRejected)
def _rejected(state: IncidentState, event: InboundRejected) -> None:
    state.inbound.rejected += 1
    state.inbound.last_rejection = event.reason


@feature.applies(PresenceChanged)
def _presence(state: IncidentState, event: PresenceChanged) -> None:
    key = f"{event.role}/{event.member_id}"
    state.inbound.presence[key] = event.online
    state.inbound.presence_at[key] = event.ts
    if event.trouble:
        state.inbound.trouble[key] = dict(event.trouble)
    else:
        state.inbound.trouble.pop(key, None)


# --- describe ------------------------------------------------------------------------


@feature.describes(PostReceived)
def _d_post(event: PostReceived, lang: str) -> str:
    text = " ".join(event.post.text.split())
    text = text if len(text) <= 60 else text[:59] + "…"
    flag = (" [ID masked]" if lang == "en" else " [fnr. maskert]") if event.masked else ""
    head = "Post" if lang == "en" else "Innlegg"
    return f"{head} ({event.channel}){flag}: {text}"


@feature.describes(InboundRejected)
def _d_rejected(event: InboundRejected, lang: str) -> str:
    return f"{'Rejected' if lang == 'en' else 'Avvist'}: {event.reason[:90]}"


@feature.describes(PresenceChanged)
def _d_presence(event: PresenceChanged, lang: str) -> str:
    if lang == "en":
        word = "online" if event.online else "offline"
    else:
        word = "tilkoblet" if event.online else "frakoblet"
    said = f"{event.role} {event.member_id}: {word}"
    if event.trouble:
        problems = "; ".join(event.trouble.values())
        said += f" – {'trouble' if lang == 'en' else 'problem'}: {problems[:120]}"
    return said
