"""Drills: recorded playbook scenarios played against a real console, scored afterwards.

A *scenario* (:mod:`krise_tui.drill.scenario`, YAML validated like a playbook) names the
playbook it exercises, a start situation and a timeline of injects: posts from the
public on named channels, events in the world (a road closes, a channel goes down, the
broker restarts) and staff terminals coming and going. It sets objectives with
deadlines and may carry scripted responses: the leadership's actions at offsets, so a
drill runs without a person (CI, or a recorded incident replayed).

The :class:`~krise_tui.drill.player.Player` runs a scenario on a virtual clock against a
:class:`~krise_tui.runtime.ConsoleRuntime` in exercise mode: injects go over the bus as
a bridge would send them, every channel ends in a local sink, simulated staff terminals
acknowledge freeze notices. :mod:`~krise_tui.drill.scoring` scores the journal against
the objectives and :mod:`~krise_tui.drill.report` writes the after-action report;
:mod:`~krise_tui.drill.recorder` turns a journal back into a scenario, with personal data
pseudonymised.

Layering: the drill sits at the runtime's level or above. It imports the runtime, the
core, the bus, playbooks, wire formats and text; nothing below it imports the drill.
"""

from __future__ import annotations
