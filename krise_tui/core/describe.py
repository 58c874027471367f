"""One-line, human descriptions of events for the journal view and exports (nb / en).

Each feature describes its own events (:meth:`Feature.describes`); this is the lookup.
"""

from __future__ import annotations

from krise_tui.core.features import REGISTRY
from krise_tui.core.kernel import EventBase


def describe(event: EventBase, lang: str = "nb") -> str:
    """A short sentence saying what ``event`` recorded."""
    fn = REGISTRY.describers.get(type(event))
    if fn is None:
        return type(event).__name__
    return fn(event, lang)
