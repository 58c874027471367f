"""The journal's event union, joined from every feature's events.

Events are immutable pydantic models in a discriminated union on ``type``; each feature
defines its own (:mod:`krise_tui.core.features`). The journal stores their canonical
JSON and parses it back through :data:`EVENT_ADAPTER`.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from krise_tui.core.features import REGISTRY
from krise_tui.core.kernel import EventBase

_UNION: Any = Union[REGISTRY.event_types]  # noqa: UP007 - a union built from a tuple
Event: Any = Annotated[_UNION, Field(discriminator="type")]
"""Any event (discriminated on ``type``)."""

EVENT_ADAPTER: TypeAdapter[EventBase] = TypeAdapter(Event)
EVENT_LIST_ADAPTER: TypeAdapter[list[EventBase]] = TypeAdapter(list[Event])


def event_to_json(event: EventBase) -> dict[str, Any]:
    """The JSON-ready dict of an event (the journal's stored form)."""
    data: dict[str, Any] = event.model_dump(mode="json")
    return data


def event_from_json(data: str | bytes) -> EventBase:
    """Parse one event from its JSON text."""
    return EVENT_ADAPTER.validate_json(data)


def event_type_names() -> list[str]:
    """Every event type name the journal can hold."""
    return sorted(str(t.model_fields["type"].default) for t in REGISTRY.event_types)
