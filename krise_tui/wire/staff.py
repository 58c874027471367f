"""Console ↔ staff terminals: the freeze notice, the current message, reminders and acks.

The first three travel in signed envelopes (:mod:`krise_tui.bus.envelope`); an ack is
plain JSON on the terminal's own topic (the ACL lets only that user write it).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

FREEZE_TYPE = "freeze"
MESSAGE_TYPE = "message.current"
REMINDER_TYPE = "freeze.reminder"

NOTICE_MAX_AGE_HOURS = 72
"""A freeze notice older than this is shown as stale: the console re-asserts the
current notice far more often (every change, and at start)."""


class NoticeMessage(BaseModel):
    """The approved message a notice carries, per language (headline and body as text)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version_id: str
    variants: dict[str, str]
    """Language -> text. ``nb`` is always there."""


class FreezeNotice(BaseModel):
    """The body of a signed, retained ``freeze`` envelope."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    active: bool
    action: str
    """``freeze``, ``extend``, ``update``, ``lift`` or ``reassert``."""
    departments: list[str] = Field(default_factory=list)
    """Departments in scope; empty: all staff."""
    reason: str
    since: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    notice: dict[str, str] = Field(default_factory=dict)
    """The playbook's notice text per language."""
    message: NoticeMessage | None = None
    """The currently approved message (the one staff may share)."""
    incident_id: str = ""
    org_name: str = ""
    ack_from: int | None = None
    """A re-assertion repeats an earlier notice: an acknowledgement of any seq from
    ``ack_from`` up to this one stands (None: only this notice's own seq)."""


class CurrentMessage(BaseModel):
    """The body of the signed, retained ``message.current`` envelope."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version_id: str
    variants: dict[str, str]
    incident_id: str = ""


class Reminder(BaseModel):
    """The body of a signed ``freeze.reminder`` to one terminal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    staff_id: str
    freeze_seq: int


class StaffAck(BaseModel):
    """A staff terminal acknowledging the freeze notice with ``seq``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    staff_id: Annotated[str, Field(min_length=1, max_length=64)]
    seq: Annotated[int, Field(ge=0, le=2**53)]
    at: AwareDatetime | None = None
