"""Validation of what arrives from the bus (pure; no I/O).

Anything can arrive on a topic: broken JSON, invalid UTF-8, huge payloads, the wrong
shape. :func:`classify` turns raw bytes into either an accepted, typed body or a
rejection with a reason that names the topic and what was expected. Nothing is dropped
silently: rejections are journaled with an excerpt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from krise_tui.bus import topics
from krise_tui.core.events import InboundKind

MAX_INBOUND_BYTES = 64 * 1024
EXCERPT_BYTES = 200


class InboundPost(BaseModel):
    """A post from the public (or a drill inject) brought in by a bridge."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    text: str = Field(max_length=20_000)
    author: str | None = Field(default=None, max_length=500)
    received_at: datetime | None = None
    reply_to: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class DeliveryReceipt(BaseModel):
    """A bridge's word on one delivery."""

    model_config = ConfigDict(extra="forbid")

    effect_id: str = Field(min_length=1, max_length=200)
    status: Literal["sent", "delivered", "failed"]
    reason: str | None = Field(default=None, max_length=2000)
    remote_id: str | None = None
    retry_after: float | None = Field(default=None, ge=0)
    permanent: bool = False
    attempt: int = Field(default=0, ge=0)
    at: datetime | None = None


class StaffAck(BaseModel):
    """A staff terminal acknowledging a freeze ``seq``."""

    model_config = ConfigDict(extra="forbid")

    staff_id: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=0)
    at: datetime | None = None


class Presence(BaseModel):
    """Online/offline (retained, and the last will)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["online", "offline"]
    at: datetime | None = None


@dataclass(frozen=True)
class Accepted:
    """A valid inbound message."""

    kind: InboundKind | Literal["presence"]
    key: str
    body: dict[str, Any]
    channel: str | None = None
    member_id: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class Rejected:
    """An invalid inbound message and why."""

    reason: str
    size: int
    excerpt: str


def excerpt(raw: bytes, limit: int = EXCERPT_BYTES) -> str:
    """First bytes of ``raw`` as readable text; undecodable bytes become ``\\xNN``."""
    return raw[:limit].decode("utf-8", errors="backslashreplace")


def _reject(topic: str, raw: bytes, why: str) -> Rejected:
    return Rejected(reason=f"{topic}: {why}", size=len(raw), excerpt=excerpt(raw))


def classify(topic: str, raw: bytes, *, org: str) -> Accepted | Rejected:
    """Validate one inbound message on ``topic``."""
    parsed = topics.parse(topic)
    if parsed is None:
        return _reject(topic, raw, "not a krise topic")
    if parsed.org != org:
        return _reject(topic, raw, f"topic is for org {parsed.org!r}, this console is {org!r}")
    if len(raw) > MAX_INBOUND_BYTES:
        return _reject(topic, raw, f"payload too large ({len(raw)} > {MAX_INBOUND_BYTES} bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _reject(topic, raw, f"payload is not valid UTF-8 (byte {exc.start})")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return _reject(topic, raw, f"payload is not JSON ({exc.msg} at line {exc.lineno})")
    if not isinstance(data, dict):
        return _reject(topic, raw, f"expected a JSON object, got {type(data).__name__}")
    try:
        match parsed.kind:
            case "channel.in":
                post = InboundPost.model_validate(data)
                return Accepted(
                    InboundKind.POST,
                    f"post:{parsed.channel}:{post.id}",
                    post.model_dump(mode="json"),
                    channel=parsed.channel,
                )
            case "channel.receipt":
                receipt = DeliveryReceipt.model_validate(data)
                return Accepted(
                    InboundKind.RECEIPT,
                    f"receipt:{parsed.channel}:{receipt.effect_id}:{receipt.status}:"
                    f"{receipt.attempt}",
                    receipt.model_dump(mode="json"),
                    channel=parsed.channel,
                )
            case "staff.ack":
                ack = StaffAck.model_validate(data)
                if ack.staff_id != parsed.member_id:
                    return _reject(
                        topic, raw, f"ack names staff {ack.staff_id!r} on another's topic"
                    )
                return Accepted(
                    InboundKind.ACK,
                    f"ack:{ack.staff_id}:{ack.seq}",
                    ack.model_dump(mode="json"),
                    member_id=ack.staff_id,
                )
            case "presence":
                pres = Presence.model_validate(data)
                return Accepted(
                    "presence",
                    f"presence:{parsed.role}:{parsed.member_id}",
                    pres.model_dump(mode="json"),
                    member_id=parsed.member_id,
                    role=parsed.role,
                )
            case _:
                return _reject(topic, raw, f"the console does not accept {parsed.kind} messages")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        return _reject(topic, raw, f"wrong schema: {problems}")
