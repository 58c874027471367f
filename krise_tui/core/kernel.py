"""The kernel every feature builds on: events, decisions and the context of a command.

A feature (``krise_tui.core.features.*``) owns its commands, its events, its slice of
the state, how it decides and how it folds; :mod:`krise_tui.core.registry` joins the
features into one engine and one fold. Nothing here knows any particular feature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from krise_tui.core.ids import new_id
from krise_tui.core.policy import MessagePolicy


class EventBase(BaseModel):
    """Fields every event carries. Events are immutable and journaled as canonical JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    """Unique event id (hex)."""
    org: str
    """Organisation slug, e.g. ``hattfjelldal``."""
    incident_id: str
    """The incident this event belongs to."""
    actor: str
    """Who caused it: an operator id, ``system``, ``bus``, ``outbox`` or ``drill``."""
    ts: datetime
    """When it happened (timezone-aware, UTC)."""


class BusEvent(EventBase):
    """An event recording something that arrived on the bus (it keeps the topic)."""

    topic: str
    """The topic it arrived on."""


@dataclass(frozen=True)
class Accepted:
    """The command was valid; these events record it (possibly none: a no-op)."""

    events: list[EventBase] = field(default_factory=list)


@dataclass(frozen=True)
class Rejection:
    """The command was refused, with a reason in English and (when written) bokmål."""

    reason: str
    nb: str = ""

    def text(self, lang: str = "nb") -> str:
        """The reason in ``lang`` (English when there is no bokmål text)."""
        return self.nb if lang == "nb" and self.nb else self.reason

    def __str__(self) -> str:
        return self.reason


Decision = Accepted | Rejection


@dataclass(frozen=True)
class Context:
    """Everything ``decide`` needs from outside: who, when, which org, which rules.

    ``decide`` is pure: the same state, command and context (including the id source)
    give the same events. Signing and topics are not here: the core says *what* to
    publish, the runtime's outbox signs and sends it.
    """

    org: str
    actor: str
    now: datetime
    incident_id: str
    new_id: Callable[[], str] = new_id
    roster: Mapping[str, str | None] | None = None
    """Known staff ids -> department. ``None``: no roster (demo), any staff id counts."""
    org_name: str = ""
    policy: MessagePolicy = field(default_factory=MessagePolicy)
    """The org file's and playbook's rules."""

    def base(self, state: Any) -> dict[str, Any]:
        """The common event fields for an event decided now (``state``: the incident)."""
        return {
            "id": self.new_id(),
            "org": self.org,
            "incident_id": state.incident.incident_id or self.incident_id,
            "actor": self.actor,
            "ts": self.now,
        }


@dataclass(frozen=True)
class BusSource:
    """Where an inbound bus message came from, as the bus layer parsed its topic."""

    topic: str
    """The topic as received (journaled with rejections)."""
    kind: str
    """``channel.in``, ``channel.receipt``, ``staff.ack``, ``presence`` … or ``unknown``."""
    org: str = ""
    channel: str | None = None
    member_id: str | None = None
    role: str | None = None
