"""The start: who is at the console, then the incident (playbook, title, level).

Signing in names a person from the org file and proves it with their passphrase (a slow
hash, checked off the event loop; repeated failures lock that person out for a while);
it is journaled, and every action afterwards is journaled under that person. If no
incident is open yet, the start screen confirms the playbook (or shows its problems and
lets the team open without it), the title and the level; opening is journaled, the
playbook's freeze policy applies, and the T+ clock and the checklist start.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from krise_tui.console.screens.base import Dialog
from krise_tui.core.kernel import Rejection


class SignInScreen(Dialog):
    """Who is at this console: a person from the org file, with their passphrase."""

    BINDINGS = [Binding("ctrl+q", "app.quit", "avslutt", priority=True)]
    AUTO_FOCUS = "#people"

    def compose(self) -> ComposeResult:
        tr = self.tr
        org = self.rt.org
        people = [] if org is None else org.operators
        with Vertical(id="signin", classes="dialog"):
            yield Label(
                tr(
                    f"{org.name if org else ''} – hvem sitter ved konsollen?",
                    f"{org.name if org else ''} – who is at the console?",
                ),
                classes="dialog-title",
            )
            yield OptionList(
                *(Option(f"{p.full_name}, {p.title} ({p.role})", id=p.id) for p in people),
                id="people",
            )
            yield Label(tr("Passfrase:", "Passphrase:"))
            yield Input(password=True, id="passphrase")
            yield Static(
                tr(
                    "Velg deg selv med piltastene, Enter, skriv passfrasen og Enter.",
                    "Pick yourself with the arrow keys, Enter, type your passphrase, Enter.",
                ),
                id="signin-help",
            )

    def on_mount(self) -> None:
        super().on_mount()
        configured = self.rt.settings.operator
        found = self.query("#people")
        if not found:  # ctrl+q while the console started: the app went before the screen
            return
        people = found.first(OptionList)
        if configured:
            try:
                people.highlighted = people.get_option_index(configured)
            except Exception:  # not in the org file: the list says who may sign in
                return
            self.query_one("#passphrase", Input).focus()
        elif people.option_count:
            people.highlighted = 0

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#passphrase", Input).focus()

    @on(Input.Submitted, "#passphrase")
    def _submitted(self) -> None:
        self._sign_in()

    @work(name="sign-in", group="sign-in", exclusive=True, exit_on_error=False)
    async def _sign_in(self) -> None:
        people = self.query_one("#people", OptionList)
        if people.highlighted is None:
            self.notify(self.tr("Velg hvem du er.", "Pick who you are."), severity="error")
            people.focus()
            return
        operator = people.get_option_at_index(people.highlighted).id or ""
        passphrase = self.query_one("#passphrase", Input)
        decision = await self.rt.sign_in(operator, passphrase.value)
        passphrase.value = ""
        if isinstance(decision, Rejection):
            self.notify(decision.text(self.tr.lang), severity="error", timeout=8)
            return
        self.dismiss(operator)


class StartScreen(Dialog):
    """Start the incident: the playbook in force, the title and the level."""

    BINDINGS = [Binding("ctrl+q", "app.quit", "avslutt", priority=True)]
    AUTO_FOCUS = "#title"

    def compose(self) -> ComposeResult:
        tr, rt = self.tr, self.rt
        playbook = rt.playbook
        with Vertical(id="start", classes="dialog"):
            yield Label(tr("Start hendelsen", "Start the incident"), classes="dialog-title")
            if playbook is not None:
                title = str(playbook.title.get(tr.lang) or playbook.title.get("nb") or "")
                yield Static(
                    tr(
                        f"Dreiebok: {title} ({playbook.id}). Den fryser ansattes publisering "
                        "ved start."
                        if playbook.freeze.on_activation
                        else f"Dreiebok: {title}",
                        f"Playbook: {title} ({playbook.id}). It freezes staff posting at the start."
                        if playbook.freeze.on_activation
                        else f"Playbook: {title}",
                    ),
                    markup=False,
                )
                levels = [
                    (f"{level.id}: {level.name}", level.id) for level in playbook.severity_levels
                ]
            else:
                title = rt.settings.incident_title
                problems = rt.playbook_problems
                text = tr("Ingen dreiebok er i bruk.", "No playbook is in use.")
                if problems:
                    text = tr(
                        "Dreieboka har feil og kan ikke brukes:\n",
                        "The playbook has problems and cannot be used:\n",
                    ) + "\n".join(str(p) for p in problems[:4])
                yield Static(text, markup=False, classes="warning")
                levels = [(str(n), n) for n in range(1, 6)]
            yield Label(tr("Tittel:", "Title:"))
            yield Input(value=title, id="title")
            yield Label(tr("Nivå:", "Level:"))
            yield Select(levels, value=levels[0][1], allow_blank=False, id="level")
            with Horizontal(classes="dialog-buttons"):
                yield Button(tr("Start (Enter)", "Start (Enter)"), id="start", variant="primary")

    @on(Input.Submitted, "#title")
    @on(Button.Pressed, "#start")
    def _start(self) -> None:
        self._open()

    @work(name="open-incident", group="start", exclusive=True, exit_on_error=False)
    async def _open(self) -> None:
        title = self.query_one("#title", Input).value.strip()
        level = self.query_one("#level", Select).value
        decision = await self.rt.open_incident(title, int(level) if isinstance(level, int) else 1)
        if isinstance(decision, Rejection):
            self.notify(decision.text(self.tr.lang), severity="error")
            return
        self.dismiss(True)
