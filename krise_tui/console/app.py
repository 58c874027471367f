"""The crisis leadership's console (Textual): a thin view over :class:`ConsoleRuntime`.

The status line (incident, T+ time, broker, current message) never scrolls away; the
journal tail updates live; ``n`` writes a new current message, which is published only
after a confirmation that names what will happen.
"""

from __future__ import annotations

from datetime import datetime

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Input, Label, Static
from textual.worker import Worker, WorkerState

from krise_tui.bus.session import LinkState
from krise_tui.core.describe import describe
from krise_tui.core.engine import PublishCurrentMessage, Rejection, message_version_id
from krise_tui.core.events import EventBase
from krise_tui.core.state import EffectStatus, IncidentState
from krise_tui.runtime import ConsoleRuntime

LINK_LABEL = {
    LinkState.CONNECTING: "… kobler til",
    LinkState.CONNECTED: "✓",
    LinkState.DISCONNECTED: "✗ frakoblet",
    LinkState.STOPPED: "○ stoppet",
}


def t_plus(opened: datetime | None, now: datetime) -> str:
    """``T+hh:mm (HH:MM)``: relative and absolute time."""
    if opened is None:
        return "T+--:--"
    minutes = max(0, int((now - opened).total_seconds() // 60))
    local = now.astimezone()
    return f"T+{minutes // 60:02d}:{minutes % 60:02d} ({local:%H:%M})"


class ConfirmScreen(ModalScreen[bool]):
    """Ask before an irreversible action; the question says exactly what will happen."""

    BINDINGS = [
        Binding("y,j", "answer(True)", "Ja"),
        Binding("n,escape", "answer(False)", "Nei"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label(self.question, id="question")
            with Horizontal(id="confirm-buttons"):
                yield Button("Ja, publiser (j)", id="yes", variant="primary")
                yield Button("Avbryt (n)", id="no")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class ConsoleApp(App[None]):
    """kriseledelsens konsoll."""

    CSS_PATH = "app.tcss"
    TITLE = "krise"
    BINDINGS = [
        Binding("n", "new_message", "ny melding"),
        Binding("j", "focus_journal", "logg"),
        Binding("question_mark", "help", "hjelp"),
        Binding("ctrl+q", "quit", "avslutt", priority=True),
    ]

    class StateChanged(Message):
        """The runtime folded new events."""

        def __init__(self, events: list[EventBase]) -> None:
            super().__init__()
            self.events = events

    class LinkChanged(Message):
        """The broker connection changed."""

        def __init__(self, state: LinkState, detail: str) -> None:
            super().__init__()
            self.state = state
            self.detail = detail

    def __init__(self, runtime: ConsoleRuntime) -> None:
        super().__init__()
        self.runtime = runtime
        self.started = False

    def compose(self) -> ComposeResult:
        yield Static("", id="status")
        yield Static("", id="banner")
        yield Static("Ingen gjeldende budskap ennå.", id="current")
        yield DataTable(id="journal", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="Ny melding – Enter for å publisere (n)", id="compose")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#journal", DataTable)
        table.add_columns("#", "tid", "hva")
        self.query_one("#banner", Static).display = False
        self._start_runtime()
        self.set_interval(15, self._refresh_status)

    @work(name="start-runtime", group="runtime", exclusive=True, exit_on_error=False)
    async def _start_runtime(self) -> None:
        rt = self.runtime
        rt.on_state(lambda _s, events: self.post_message(self.StateChanged(events)))
        rt.on_link(lambda state, detail: self.post_message(self.LinkChanged(state, detail)))
        await rt.start()
        self.started = True
        assert rt.journal is not None
        table = self.query_one("#journal", DataTable)
        table.clear()
        for row in await rt.journal.tail(200):
            from krise_tui.core.events import event_from_json

            self._add_row(row.seq, event_from_json(row.body))
        self._refresh_all()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place for worker failures: show them, keep running."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self._show_banner(f"✗ {event.worker.name}: {event.worker.error}")

    async def on_unmount(self) -> None:
        await self.runtime.stop()

    # --- updates -----------------------------------------------------------------------

    def on_console_app_state_changed(self, message: StateChanged) -> None:
        base = self.runtime.state.event_count - len(message.events)
        for offset, event in enumerate(message.events, start=1):
            self._add_row(base + offset, event)
        self._refresh_all()

    def on_console_app_link_changed(self, message: LinkChanged) -> None:
        self._refresh_status()
        if message.state is LinkState.DISCONNECTED:
            self._show_banner(f"✗ Megler frakoblet: {message.detail} – prøver igjen")
        elif message.state is LinkState.CONNECTED:
            info = self.runtime.broker_info
            if info is not None and info.warning:
                self._show_banner(f"! {info.warning}")
            else:
                self.query_one("#banner", Static).display = False

    def _add_row(self, seq: int, event: EventBase) -> None:
        table = self.query_one("#journal", DataTable)
        table.add_row(str(seq), f"{event.ts.astimezone():%H:%M:%S}", describe(event))
        table.move_cursor(row=table.row_count - 1)

    def _show_banner(self, text: str) -> None:
        banner = self.query_one("#banner", Static)
        banner.update(text)
        banner.display = True

    def _refresh_all(self) -> None:
        self._refresh_status()
        self._refresh_current(self.runtime.state)

    def _refresh_status(self) -> None:
        rt = self.runtime
        st = rt.state
        info = rt.broker_info
        broker = f"MQTT {LINK_LABEL[rt.link_state]} {info.label if info else ''}".rstrip()
        title = st.title or "Ingen hendelse"
        now = rt.clock.now()
        self.query_one("#status", Static).update(
            f" {title} · nivå {st.level} · {t_plus(st.opened_at, now)}   {broker}"
            f"   {rt.settings.org_name}"
        )

    def _refresh_current(self, state: IncidentState) -> None:
        msg = state.current_message
        widget = self.query_one("#current", Static)
        if msg is None:
            widget.update("Ingen gjeldende budskap ennå.")
            return
        delivered = [e for e in state.effects.values() if e.topic.endswith("/message/current")]
        latest = delivered[-1] if delivered else None
        if latest is None:
            status = ""
        elif latest.status is EffectStatus.CONFIRMED:
            status = "ansatte ✓ levert"
        elif latest.last_error:
            status = f"ansatte … venter ({latest.last_error})"
        else:
            status = "ansatte … sendt"
        widget.update(
            f"Gjeldende budskap v{msg.version_id[:8]} "
            f"({msg.set_at.astimezone():%H:%M} av {msg.set_by})\n"
            f"  «{msg.text}»\n  {status}"
        )

    # --- actions -----------------------------------------------------------------------

    def action_new_message(self) -> None:
        self.query_one("#compose", Input).focus()

    def action_focus_journal(self) -> None:
        self.query_one("#journal", DataTable).focus()

    def action_help(self) -> None:
        self.notify(
            "n ny melding · j logg · ctrl+q avslutt. Meldingen publiseres til ansatte "
            "(signert, lagret i megleren) etter bekreftelse.",
            title="Hjelp",
            timeout=8,
        )

    @on(Input.Submitted, "#compose")
    def _compose_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.notify("Meldingen er tom.", severity="warning")
            return
        version = message_version_id({"nb": text})[:8]
        question = f"Publiser versjon {version} som gjeldende budskap til ansatte?\n\n«{text}»"

        def after(answer: bool | None) -> None:
            if answer:
                self._publish(text)

        self.push_screen(ConfirmScreen(question), after)

    @work(name="publish", group="publish", exit_on_error=False)
    async def _publish(self, text: str) -> None:
        decision = await self.runtime.submit(PublishCurrentMessage(text))
        if isinstance(decision, Rejection):
            self.notify(decision.reason, title="Ikke publisert", severity="error")
            return
        self.query_one("#compose", Input).value = ""
        self.notify("Publisert som gjeldende budskap.", title="Publisert")
