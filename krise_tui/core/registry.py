"""Features register here; the engine, the fold and the journal view dispatch through it.

A :class:`Feature` collects, for one capability, the functions that decide its commands,
fold its events, describe them to people, and accept its kind of bus input. The list of
features is :data:`krise_tui.core.features.FEATURES`: adding a capability is one module
and one line there. Dispatch is by exact type (a dict lookup), so a fold of 100,000
events pays no ``isinstance`` chains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from krise_tui.core.kernel import BusSource, Context, Decision, EventBase

if TYPE_CHECKING:
    from krise_tui.core.state import IncidentState

Decider = Callable[["IncidentState", Any, Context], Decision]
Applier = Callable[["IncidentState", Any], None]
Describer = Callable[[Any, str], str]
InboundHandler = Callable[["IncidentState", BusSource, dict[str, Any], Context], Decision]
"""Validate one parsed bus payload of a kind and return its events (or a rejection)."""
Reaction = Callable[["IncidentState", Any, Context], list[EventBase]]
"""More events that follow from an event in the same decision (pure, one level deep):
e.g. a post is triaged in the very transaction that journals its arrival."""

F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E", bound=type[EventBase])


@dataclass
class Feature:
    """One capability's commands, events, fold, descriptions and bus input."""

    name: str
    deciders: dict[type, Decider] = field(default_factory=dict)
    appliers: dict[type[EventBase], list[Applier]] = field(default_factory=dict)
    describers: dict[type[EventBase], Describer] = field(default_factory=dict)
    inbound: dict[str, InboundHandler] = field(default_factory=dict)
    reactions: dict[type[EventBase], list[Reaction]] = field(default_factory=dict)
    events: list[type[EventBase]] = field(default_factory=list)
    """The event types this feature defines (they join the journal's union)."""

    def event(self, cls: E) -> E:
        """Class decorator: an event type this feature owns."""
        self.events.append(cls)
        return cls

    def decides(self, command: type) -> Callable[[F], F]:
        """Decorator: ``fn(state, command, ctx) -> Decision`` decides ``command``."""

        def register(fn: F) -> F:
            self.deciders[command] = fn
            return fn

        return register

    def applies(self, event: type[EventBase]) -> Callable[[F], F]:
        """Decorator: ``fn(state, event)`` folds ``event`` into this feature's slice."""

        def register(fn: F) -> F:
            self.appliers.setdefault(event, []).append(fn)
            return fn

        return register

    def describes(self, event: type[EventBase]) -> Callable[[F], F]:
        """Decorator: ``fn(event, lang) -> str``, one line for people (nb / en)."""

        def register(fn: F) -> F:
            self.describers[event] = fn
            return fn

        return register

    def reacts(self, event: type[EventBase]) -> Callable[[F], F]:
        """Decorator: ``fn(state, event, ctx) -> events`` that follow ``event`` at once."""

        def register(fn: F) -> F:
            self.reactions.setdefault(event, []).append(fn)
            return fn

        return register

    def accepts(self, kind: str) -> Callable[[F], F]:
        """Decorator: ``fn(state, source, data, ctx)`` accepts bus input of ``kind``."""

        def register(fn: F) -> F:
            self.inbound[kind] = fn
            return fn

        return register


@dataclass
class Registry:
    """Every feature's functions, joined for dispatch."""

    features: tuple[Feature, ...]
    deciders: dict[type, Decider] = field(default_factory=dict)
    appliers: dict[type[EventBase], tuple[Applier, ...]] = field(default_factory=dict)
    describers: dict[type[EventBase], Describer] = field(default_factory=dict)
    inbound: dict[str, InboundHandler] = field(default_factory=dict)
    reactions: dict[type[EventBase], tuple[Reaction, ...]] = field(default_factory=dict)
    event_types: tuple[type[EventBase], ...] = ()

    def __post_init__(self) -> None:
        types: list[type[EventBase]] = []
        appliers: dict[type[EventBase], list[Applier]] = {}
        reactions: dict[type[EventBase], list[Reaction]] = {}
        for feature in self.features:
            _merge(self.deciders, feature.deciders, feature.name, "command")
            _merge(self.describers, feature.describers, feature.name, "description")
            _merge(self.inbound, feature.inbound, feature.name, "bus input")
            for event, fns in feature.appliers.items():
                appliers.setdefault(event, []).extend(fns)
            for event, rfns in feature.reactions.items():
                reactions.setdefault(event, []).extend(rfns)
            types.extend(feature.events)
        names = [t.model_fields["type"].default for t in types]
        if len(set(names)) != len(names):
            raise ValueError(f"two events share a type name: {sorted(names)}")
        self.appliers = {event: tuple(fns) for event, fns in appliers.items()}
        self.reactions = {event: tuple(fns) for event, fns in reactions.items()}
        self.event_types = tuple(types)


def _merge(table: dict[Any, Any], mine: dict[Any, Any], feature: str, what: str) -> None:
    clash = set(table) & set(mine)
    if clash:
        names = ", ".join(sorted(getattr(k, "__name__", str(k)) for k in clash))
        raise ValueError(f"feature {feature}: {what} registered twice: {names}")
    table.update(mine)
