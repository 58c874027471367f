"""Key bindings described in the user's language, for both apps (console and staff).

Bindings are declared with their bokmål description; an app started with ``--lang en``
gives each node (app or screen) the English descriptions once, for the footer, the help
screen and the command palette. This module does not import textual: it rewrites the
node's binding map in place, the one place either app reaches into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any


def translate_bindings(node: Any, texts: Mapping[str, str]) -> None:
    """Replace the descriptions (and tooltips) of ``node``'s bindings found in ``texts``
    (bokmål → the other language); the others stay as declared."""
    table = node._bindings.key_to_bindings
    for key, bindings in list(table.items()):
        table[key] = [
            replace(
                b,
                description=texts.get(b.description, b.description),
                tooltip=texts.get(b.tooltip, b.tooltip) if b.tooltip else b.tooltip,
            )
            for b in bindings
        ]
