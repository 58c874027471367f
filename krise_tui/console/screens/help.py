"""Hjelp (``?``): every key, by view, in the console's language."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Label, Static

from krise_tui.console.i18n import binding_text
from krise_tui.console.screens.base import Dialog


def key_name(key: str) -> str:
    """``ctrl+p`` / ``?`` / ``/``: a binding's keys as a person types them."""
    names = {"question_mark": "?", "slash": "/", "escape": "esc", "enter": "Enter"}
    return "/".join(names.get(k, k) for k in key.split(","))


def binding_lines(bindings: Iterable[BindingType], lang: str) -> list[str]:
    """``  n      ny melding`` for each shown binding."""
    out = []
    for b in bindings:
        if not isinstance(b, Binding) or not b.description:
            continue
        text = binding_text(b.tooltip or b.description, lang)
        out.append(f"  {key_name(b.key):<8} {text}")
    return out


class HelpScreen(Dialog):
    """The keys of every view, and what the console promises."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "tilbake")]
    AUTO_FOCUS = "#help-body"

    def __init__(self, sections: list[tuple[str, list[str]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        tr = self.tr
        lines: list[str] = []
        for title, keys in self.sections:
            if keys:
                lines += [title, *keys, ""]
        lines += [
            tr(
                "Alt som går ut (kanaler, ansatte) er en godkjent versjon: skrevet av én, "
                "godkjent av en annen med passfrase, kontrollert for fødselsnumre og "
                "telefonnumre. Publisering, frys og oppheving spør først.",
                "Everything that goes out (channels, staff) is an approved version: written "
                "by one person, approved by another with their passphrase, checked for ID "
                "numbers and phone numbers. Publishing, freezing and lifting ask first.",
            ),
            tr(
                "ctrl+p: søk etter alle handlinger. Alt journalføres (j: logg).",
                "ctrl+p: search every action. Everything is journaled (j: journal).",
            ),
        ]
        with VerticalScroll(id="help-body", classes="dialog"):
            yield Label(tr("Hjelp – taster", "Help – keys"), classes="dialog-title")
            yield Static("\n".join(lines), markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
