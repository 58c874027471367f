"""The features of the core, one module each; :data:`FEATURES` is the only list of them.

Adding a capability (questions, rumours, drills…) is: a module here with its commands,
events, state slice, decide and fold functions registered on a
:class:`~krise_tui.core.registry.Feature`; its slice as a field of
:class:`~krise_tui.core.state.IncidentState`; one line below; and its view in the console.
"""

from __future__ import annotations

from krise_tui.core.features import (
    freeze,
    inbound,
    incident,
    messages,
    outbox,
    questions,
    rumours,
)
from krise_tui.core.registry import Feature, Registry

FEATURES: tuple[Feature, ...] = (
    incident.feature,
    outbox.feature,
    messages.feature,
    freeze.feature,
    inbound.feature,
    questions.feature,
    rumours.feature,
)

REGISTRY = Registry(FEATURES)
