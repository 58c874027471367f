"""Dialogs: confirm, ask for a text, pick one of a list, freeze or lift.

Every dialog opens with focus on its first field (or its list), so Enter and the arrow
keys work at once; ``esc`` always cancels; irreversible actions are confirmed with a
question that names exactly what will happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from krise_tui.console.screens.base import Dialog
from krise_tui.core.features.freeze import FreezeState


class ConfirmScreen(Dialog):
    """Ask before an irreversible action; the question says exactly what will happen."""

    BINDINGS = [
        Binding("y,j", "answer(True)", "ja"),
        Binding("n,escape", "answer(False)", "nei"),
    ]
    AUTO_FOCUS = "#yes"

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm", classes="dialog"):
            yield Label(self.question, id="question", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.tr("Ja (j)", "Yes (y)"), id="yes", variant="primary")
                yield Button(self.tr("Avbryt (n)", "Cancel (n)"), id="no")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class PromptScreen(Dialog):
    """Ask for one line of text (a reason, a title, a passphrase)."""

    BINDINGS = [Binding("escape", "cancel", "avbryt")]
    AUTO_FOCUS = "#answer"

    def __init__(
        self, title: str, *, placeholder: str = "", value: str = "", password: bool = False
    ) -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder
        self.value = value
        self.password = password

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Input(
                value=self.value,
                placeholder=self.placeholder,
                password=self.password,
                id="answer",
            )
            yield Static(self.tr("Enter: ok · esc: avbryt", "Enter: ok · esc: cancel"))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceScreen(Dialog):
    """Pick one of a list (arrows and Enter, or the first letters)."""

    BINDINGS = [Binding("escape", "cancel", "avbryt")]
    AUTO_FOCUS = "#choices"

    def __init__(self, title: str, choices: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.choices = list(choices)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield OptionList(*(Option(text, id=key) for key, text in self.choices), id="choices")

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class FreezeRequest:
    """What the freeze dialog asks for."""

    action: str
    """``freeze``, ``extend`` or ``lift``."""
    reason: str = ""
    departments: tuple[str, ...] = ()
    minutes: int | None = None


def _minutes(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    value = int(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


class FreezeScreen(Dialog):
    """Freeze employee posting, or extend / lift the active freeze."""

    BINDINGS = [Binding("escape", "cancel", "avbryt")]
    AUTO_FOCUS = "#reason"

    def __init__(self, freeze: FreezeState | None, departments: dict[str, str]) -> None:
        super().__init__()
        self.freeze = freeze if freeze is not None and freeze.active else None
        self.departments = departments
        """Department id -> name (from the org file)."""

    def compose(self) -> ComposeResult:
        tr = self.tr
        with Vertical(id="freeze-dialog", classes="dialog"):
            if self.freeze is None:
                yield Label(
                    tr("Frys ansattes publisering", "Freeze employee posting"),
                    classes="dialog-title",
                )
                yield Label(tr("Grunn (vises på ansattes skjerm):", "Reason (shown to staff):"))
                yield Input(
                    placeholder=tr(
                        "f.eks. Flom i sentrum – kriseledelsen taler",
                        "e.g. Flood in the centre – the crisis team speaks",
                    ),
                    id="reason",
                )
                names = ", ".join(f"{k} ({v})" for k, v in self.departments.items())
                yield Label(
                    tr(
                        "Avdelinger (kommaseparert, tomt = alle ansatte):",
                        "Departments (comma-separated, empty = all staff):",
                    )
                )
                yield Input(placeholder=names or tr("alle", "all"), id="departments")
                yield Label(
                    tr(
                        "Varighet i minutter (tomt = til den oppheves):",
                        "Duration in minutes (empty = until lifted):",
                    )
                )
                yield Input(id="minutes")
                with Horizontal(classes="dialog-buttons"):
                    yield Button(tr("Frys", "Freeze"), id="freeze", variant="warning")
                    yield Button(tr("Avbryt (esc)", "Cancel (esc)"), id="cancel")
            else:
                scope = ", ".join(
                    self.departments.get(d, d) for d in self.freeze.departments
                ) or tr("alle ansatte", "all staff")
                yield Label(
                    tr(
                        f"Publisering er fryst siden {self.tr.time(self.freeze.since)} · "
                        f"gjelder: {scope}\nGrunn: {self.freeze.reason}",
                        f"Posting frozen since {self.tr.time(self.freeze.since)} · "
                        f"scope: {scope}\nReason: {self.freeze.reason}",
                    ),
                    classes="dialog-title",
                    markup=False,
                )
                yield Label(
                    tr(
                        "Begrunnelse for å oppheve, eller ny varighet i minutter:",
                        "Reason for lifting, or a new duration in minutes:",
                    )
                )
                yield Input(placeholder=tr("begrunnelse", "reason"), id="reason")
                yield Input(placeholder=tr("minutter (forleng)", "minutes (extend)"), id="minutes")
                with Horizontal(classes="dialog-buttons"):
                    yield Button(tr("Opphev frys", "Lift freeze"), id="lift", variant="error")
                    yield Button(tr("Forleng", "Extend"), id="extend")
                    yield Button(tr("Avbryt (esc)", "Cancel (esc)"), id="cancel")

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        """Enter acts like the main button (a confirmation still follows)."""
        if self.freeze is None:
            self._act("freeze")
        else:
            self._act("extend" if event.input.id == "minutes" else "lift")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self._act(event.button.id or "cancel")

    def _act(self, action: str) -> None:
        tr = self.tr
        if action == "cancel":
            self.dismiss(None)
            return
        reason = self.query_one("#reason", Input).value.strip()
        try:
            minutes = _minutes(self.query_one("#minutes", Input).value)
        except ValueError:
            self.notify(
                tr("Varighet må være et helt antall minutter.", "Duration must be whole minutes."),
                severity="error",
            )
            return
        if action in ("freeze", "lift") and not reason:
            self.notify(tr("Skriv en begrunnelse.", "Write a reason."), severity="error")
            return
        if action == "extend" and minutes is None:
            self.notify(
                tr("Skriv ny varighet i minutter.", "Write the new duration."), severity="error"
            )
            return
        departments: tuple[str, ...] = ()
        if action == "freeze":
            raw = self.query_one("#departments", Input).value
            departments = tuple(d.strip() for d in raw.split(",") if d.strip())
        self.dismiss(FreezeRequest(action, reason, departments, minutes))
