"""Incident state: a pure fold of events, one slice per feature.

``fold(events)`` gives the same state for the same events, every time, on every
machine; :func:`state_hash` turns a state into a short fingerprint for replay tests and
drills. The state is made of plain mutable dataclasses so that folding 100,000 events
stays cheap; treat a state you did not fold yourself as read-only.

Snapshots serialise through one generic codec (pydantic over the dataclasses), so a
field added to any slice is saved, restored and hashed without anyone writing code for
it: a forgotten field cannot silently disappear after a restart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from krise_tui.core.features import REGISTRY
from krise_tui.core.features.freeze import FreezeSlice
from krise_tui.core.features.inbound import InboundSlice
from krise_tui.core.features.incident import IncidentSlice
from krise_tui.core.features.messages import MessagesSlice
from krise_tui.core.features.outbox import OutboxSlice
from krise_tui.core.features.questions import QuestionsSlice
from krise_tui.core.features.rumours import RumoursSlice
from krise_tui.core.ids import canonical_json
from krise_tui.core.kernel import EventBase


@dataclass
class IncidentState:
    """Everything the console knows about one incident: a slice per feature."""

    incident: IncidentSlice = field(default_factory=IncidentSlice)
    outbox: OutboxSlice = field(default_factory=OutboxSlice)
    messages: MessagesSlice = field(default_factory=MessagesSlice)
    freeze: FreezeSlice = field(default_factory=FreezeSlice)
    inbound: InboundSlice = field(default_factory=InboundSlice)
    questions: QuestionsSlice = field(default_factory=QuestionsSlice)
    rumours: RumoursSlice = field(default_factory=RumoursSlice)
    event_count: int = 0
    last_event_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        """Whether an incident has been opened."""
        return self.incident.opened_at is not None


_APPLIERS = REGISTRY.appliers
_CODEC: TypeAdapter[IncidentState] = TypeAdapter(IncidentState)


def apply(state: IncidentState, event: EventBase) -> IncidentState:
    """Apply one event to ``state`` in place and return it."""
    fns = _APPLIERS.get(type(event))
    if fns is None:
        raise TypeError(f"no feature folds events of type {type(event).__name__}")
    state.event_count += 1
    state.last_event_at = event.ts
    if not state.incident.org:
        state.incident.org = event.org
    for fn in fns:
        fn(state, event)
    return state


def fold(events: Iterable[EventBase], state: IncidentState | None = None) -> IncidentState:
    """Fold ``events`` into a state (a new one unless ``state`` is given).

    The bookkeeping every event shares (count, time, org) is kept in locals and written
    to the state once per call: a restart folds thousands of events per call, and no fold
    function reads it.
    """
    current = state if state is not None else IncidentState()
    appliers = _APPLIERS
    count = 0
    last_ts: datetime | None = None
    org_known = bool(current.incident.org)
    try:
        for event in events:
            fns = appliers.get(type(event))
            if fns is None:
                raise TypeError(f"no feature folds events of type {type(event).__name__}")
            count += 1
            last_ts = event.ts
            if not org_known:
                current.incident.org = event.org
                org_known = bool(event.org)
            for fn in fns:
                fn(current, event)
    finally:  # also when a fold function fails: as if each event had been counted alone
        if count:
            current.event_count += count
            current.last_event_at = last_ts
    return current


def state_to_json(state: IncidentState) -> dict[str, Any]:
    """The whole state as JSON-ready data (snapshots, hashing, exports)."""
    data: dict[str, Any] = _CODEC.dump_python(state, mode="json")
    return data


def state_from_json(data: Any) -> IncidentState:
    """Rebuild a state from :func:`state_to_json` output."""
    return _CODEC.validate_python(data)


def state_hash(state: IncidentState) -> str:
    """SHA-256 (hex) of the state's canonical JSON."""
    return hashlib.sha256(canonical_json(state_to_json(state))).hexdigest()
