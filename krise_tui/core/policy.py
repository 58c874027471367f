"""The rules the engine applies, as plain values (from the org file and the playbook).

The runtime builds a :class:`MessagePolicy` from the validated org file and playbook;
the pure core never reads files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

STAFF_KIND = "staff"
WEBSITE_KIND = "website"


@dataclass(frozen=True)
class OperatorInfo:
    """What the engine needs to know of an operator (from the org file)."""

    full_name: str
    title: str
    may_approve: bool
    may_draft: bool = True

    @property
    def signature(self) -> str:
        """Full name and title (DOMAIN rule 14)."""
        return f"{self.full_name}, {self.title}"


@dataclass(frozen=True)
class ChannelSpec:
    """A channel a message goes to."""

    id: str
    kind: str


@dataclass(frozen=True)
class MessagePolicy:
    """The org file's and playbook's rules, as the engine needs them."""

    org_name: str = ""
    website_url: str = ""
    required_languages: tuple[str, ...] = ("nb",)
    allowed_phones: tuple[str, ...] = ()
    allowed_emails: tuple[str, ...] = ()
    channels: tuple[ChannelSpec, ...] = (ChannelSpec("ansatte", STAFF_KIND),)
    """The channels of the playbook (the website among them), in delivery order."""
    operators: Mapping[str, OperatorInfo] = field(default_factory=dict)
    break_glass_allowed: bool = False
    sms_max_segments: int = 3
    exercise: bool = False
    """A drill: every outgoing text is marked as an exercise."""
    remind_after: timedelta = timedelta(minutes=10)
    """Remind unacknowledged staff terminals this long after a freeze notice."""
    receipt_deadline: timedelta = timedelta(minutes=10)
    """A channel delivery with no final receipt after this long is shown as overdue."""
    answer_deadline: timedelta = timedelta(hours=8)
    """From a question's arrival to the shared answer of its batch (the playbook's
    ``deadlines.answer_batch``; the guideline: the same day at the latest)."""
    correction_deadline: timedelta = timedelta(hours=1)
    """From a rumour's first sighting to its published correction."""
    triage_keywords: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """The playbook's words per triage category."""
    case_reply: Mapping[str, str] = field(default_factory=dict)
    """The standard reply to a request for case processing, per language (DOMAIN 13)."""

    def channel(self, channel_id: str) -> ChannelSpec | None:
        """The channel with ``channel_id``."""
        return next((c for c in self.channels if c.id == channel_id), None)

    def ordered(self, channel_ids: list[str]) -> list[ChannelSpec]:
        """The chosen channels, the website first (the master copy others link to)."""
        chosen = [c for c in self.channels if c.id in channel_ids]
        return sorted(chosen, key=lambda c: 0 if c.kind == WEBSITE_KIND else 1)
