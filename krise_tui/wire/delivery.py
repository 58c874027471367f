"""Console ↔ bridge: the delivery request (signed, on ``…/channel/{ch}/out``) and the receipt."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from krise_tui.wire.message import LANG_PATTERN, ApprovedMessage

DELIVER_TYPE = "channel.deliver"
"""The envelope type of a delivery request."""


class DeliveryRequest(BaseModel):
    """The body of a ``channel.deliver`` envelope: one approved version for one channel."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    effect_id: Annotated[str, Field(min_length=1, max_length=200)]
    """The console's effect id: receipts name it."""
    channel: Annotated[str, Field(min_length=1, max_length=64)]
    """The channel id; must be the bridge's own channel."""
    idempotency_key: Annotated[str, Field(min_length=1, max_length=300)]
    """``"{version_id}:{channel}"``: the same on every retry, so nothing posts twice."""
    message: ApprovedMessage
    """The approved version to deliver."""
    previous_remote_id: Annotated[str, Field(max_length=500)] | None = None
    """The remote id of the superseded version on this channel, when known."""
    resend: bool = False
    """The operator asked for this after a final failure: the bridge reconciles with the
    platform first and refuses when the platform already has the version."""


class ReceiptStatus(StrEnum):
    """What a receipt reports."""

    SENT = "sent"
    """An attempt starts now (the bridge has the request)."""
    DELIVERED = "delivered"
    """The platform accepted the message (``remote_id`` is its id for it)."""
    FAILED = "failed"
    """The attempt failed (``reason``); ``final`` when the bridge will not try again."""


class Receipt(BaseModel):
    """A bridge's word on one delivery, published on ``…/channel/{ch}/receipt``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    effect_id: Annotated[str, Field(min_length=1, max_length=200)]
    """The console's effect (outbox entry) this receipt is about."""
    status: ReceiptStatus
    """``sent``, ``delivered`` or ``failed``."""
    reason: Annotated[str, Field(max_length=2000)] | None = None
    """Why it failed, in words an operator understands."""
    remote_id: Annotated[str, Field(max_length=500)] | None = None
    """The platform's id for the post (status id, post id, page URL, Message-ID)."""
    retry_after: Annotated[float, Field(ge=0, le=86_400)] | None = None
    """Seconds the platform asked us to wait (``Retry-After``), when it did."""
    permanent: bool = False
    """Retrying the same request cannot help (bad token, rejected content, bad config)."""
    final: bool = False
    """The bridge will not try again on its own (permanent, or its last attempt): only
    an operator's re-send can."""
    attempt: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    """The attempt number for this effect on this bridge (1, 2, …; 0: none was made)."""
    at: AwareDatetime | None = None
    """When (UTC)."""

    def to_wire(self) -> bytes:
        """The JSON payload."""
        return self.model_dump_json().encode("utf-8")


REPLY_TYPE = "channel.reply"
"""The envelope type of a reply to one post (a batch's shared answer, a correction)."""
HIDE_TYPE = "channel.hide"
"""The envelope type of a request to hide one post on a channel the municipality runs."""


class PostRef(BaseModel):
    """How to reach the author of one inbound post again (from its InboundPost)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    post_id: Annotated[str, Field(min_length=1, max_length=200)]
    """The platform's id of the post being answered."""
    author: Annotated[str, Field(max_length=500)] | None = None
    kind: str = "post"
    """``post``, ``comment``, ``message``, ``sms``, ``email`` or ``form``."""
    meta: dict[str, str | int | bool | None] = Field(default_factory=dict)
    """What the platform needs to reply (thread ids, phone number, e-mail address,
    Message-ID), exactly as the bridge put it in the InboundPost."""


class ReplyRequest(BaseModel):
    """The body of a ``channel.reply`` envelope: one approved text to one asker."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    effect_id: Annotated[str, Field(min_length=1, max_length=200)]
    channel: Annotated[str, Field(min_length=1, max_length=64)]
    idempotency_key: Annotated[str, Field(min_length=1, max_length=300)]
    """``"{answer id}:{channel}:{post id}"``: the same on every retry, never two replies."""
    to: PostRef
    text: Annotated[str, Field(min_length=1, max_length=20_000)]
    """The approved text (already linted and approved by two people)."""
    lang: str = "nb"
    website_url: str
    """The municipality's page with the full answer (every reply links to it)."""
    signature: str
    """Full name and title of the approver, as on every message."""
    exercise: bool = False
    """A drill: the reply is labelled as an exercise and never reaches a platform."""


class HideRequest(BaseModel):
    """The body of a ``channel.hide`` envelope: hide (never delete) one post."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    effect_id: Annotated[str, Field(min_length=1, max_length=200)]
    channel: Annotated[str, Field(min_length=1, max_length=64)]
    post_id: Annotated[str, Field(min_length=1, max_length=200)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    """Why (a personal attack, unlawful content…): journaled with the hide."""
    exercise: bool = False
    """A drill: the hide never reaches a real platform (only a channel the org file marks
    ``exercise: true``), so a drill cannot hide a real resident's post."""


QA_TYPE = "channel.qa"
"""The envelope type of a :class:`QaRequest`."""

BATCH_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
"""A batch id: safe as a file name and an HTML id."""


class QaEntry(BaseModel):
    """One answered batch of questions as the website's Q&A page shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_id: Annotated[str, Field(pattern=BATCH_ID_PATTERN)]
    """The batch's id: one entry per batch on the page (its anchor ``#q-<batch_id>``)."""
    revision: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    """The answer's revision: a higher one replaces the entry, a lower one is ignored."""
    question: Annotated[str, Field(min_length=1, max_length=2000)]
    """The batch's question as approved for publication: never an asker's own words,
    name or number."""
    answer: Annotated[str, Field(min_length=1, max_length=20_000)]
    """The approved answer, plain text; blank lines separate paragraphs."""
    lang: Annotated[str, Field(pattern=LANG_PATTERN)] = "nb"
    """The language of question and answer."""
    answered_at: AwareDatetime
    """When the answer was approved."""
    signature: Annotated[str, Field(min_length=1, max_length=500)]
    """Full name and title of the approver (DOMAIN rule 14)."""
    exercise: bool = False
    """A drill's answer: labelled ØVELSE, and refused by a website not marked exercise."""
    withdrawn: bool = False
    """The answer is withdrawn: it leaves the page (its record stays in ``qa/``)."""


class QaRequest(BaseModel):
    """The body of a ``channel.qa`` envelope: put one answered batch on the Q&A page."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    effect_id: Annotated[str, Field(min_length=1, max_length=200)]
    """The console's effect id: receipts name it."""
    channel: Annotated[str, Field(min_length=1, max_length=64)]
    """The website channel's id."""
    idempotency_key: Annotated[str, Field(min_length=1, max_length=300)]
    """``"{answer id}:{revision}:{channel}"``: the same on every retry."""
    org_name: Annotated[str, Field(min_length=1, max_length=200)]
    """The municipality's name, for the page's title."""
    entry: QaEntry
    """The answered batch."""
