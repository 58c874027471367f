"""The engine: turns a command into events, after checking it against the state.

``decide`` is pure: given the same state, command and context it returns the same
events (the context carries the clock, the id source and the rules; nothing here signs,
reads files or talks to the network). Each command is decided by the feature that owns
it (:mod:`krise_tui.core.features`). A command that is not allowed returns a
:class:`Rejection` with a reason a person can read; the engine never raises for a
refused command.

Bus input (:class:`ReceiveFromBus`) is parsed here with hard bounds and handed to the
feature that accepts its kind; any failure — malformed, hostile, unexpected, or a bug
in a handler — becomes that one message's journaled rejection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from krise_tui.core.features import REGISTRY
from krise_tui.core.features.inbound import rejected
from krise_tui.core.kernel import Accepted, BusSource, Context, Decision, EventBase, Rejection
from krise_tui.core.state import IncidentState
from krise_tui.wire.safejson import UnsafeJson, loads_object

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceiveFromBus:
    """Something arrived on a subscribed topic (the bus layer parsed the topic)."""

    source: BusSource
    payload: bytes


def decide(state: IncidentState, command: object, ctx: Context) -> Decision:
    """Validate ``command`` against ``state`` and return the events it produces."""
    if isinstance(command, ReceiveFromBus):
        decision: Decision = receive(state, command, ctx)
    else:
        decider = REGISTRY.deciders.get(type(command))
        if decider is None:
            return Rejection(f"unknown command {type(command).__name__}")
        decision = decider(state, command, ctx)
    if isinstance(decision, Accepted) and REGISTRY.reactions:
        return _with_reactions(state, decision, ctx)
    return decision


def _with_reactions(state: IncidentState, decision: Accepted, ctx: Context) -> Accepted:
    """Add the events that follow at once from the decided ones (one level deep)."""
    extra: list[EventBase] = []
    for event in decision.events:
        for react in REGISTRY.reactions.get(type(event), ()):
            extra += react(state, event, ctx)
    return Accepted([*decision.events, *extra]) if extra else decision


def receive(state: IncidentState, cmd: ReceiveFromBus, ctx: Context) -> Accepted:
    """Accept one bus message, or journal why not (never raises)."""
    source = cmd.source

    def refuse(why: str) -> Accepted:
        reason = f"{source.topic[:200]}: {why}"
        return Accepted(
            [rejected(state, ctx, topic=source.topic, reason=reason, payload=cmd.payload)]
        )

    if source.kind == "unknown":
        return refuse("not a krise topic (or a segment outside A-Z a-z 0-9 _ . -)")
    if source.org != ctx.org:
        return refuse(f"topic is for org {source.org!r}, this console is {ctx.org!r}")
    handler = REGISTRY.inbound.get(source.kind)
    if handler is None:
        return refuse(f"the console does not accept {source.kind} messages")
    try:
        data = loads_object(cmd.payload)
        decision = handler(state, source, data, ctx)
    except UnsafeJson as exc:
        return refuse(str(exc))
    except Exception as exc:  # a handler bug must not stop the messages after this one
        log.exception("handling a message on %s failed", source.topic)
        return refuse(f"internal error: {type(exc).__name__}: {exc}")
    if isinstance(decision, Rejection):
        return refuse(decision.reason)
    return decision
