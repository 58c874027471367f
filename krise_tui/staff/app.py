"""The staff terminal (Textual): shows the verified current message from the leadership.

Works in a plain 80×24 terminal without colours: every state is said in words. Only
envelopes verified against the console's public key change the screen; anything else
is reported on the warning line and ignored.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from krise_tui.bus.session import LinkState
from krise_tui.runtime import StaffRuntime, StaffView

LINK_WORDS = {
    LinkState.CONNECTING: "kobler til …",
    LinkState.CONNECTED: "tilkoblet",
    LinkState.DISCONNECTED: "FRAKOBLET – prøver igjen",
    LinkState.STOPPED: "stoppet",
}


class StaffApp(App[None]):
    """ansattterminal."""

    CSS_PATH = "app.tcss"
    TITLE = "krise – ansatt"
    BINDINGS = [Binding("ctrl+q", "quit", "avslutt", priority=True)]

    class ViewChanged(Message):
        """The runtime's view changed."""

    def __init__(self, runtime: StaffRuntime, org_name: str) -> None:
        super().__init__()
        self.runtime = runtime
        self.org_name = org_name

    def compose(self) -> ComposeResult:
        yield Static("", id="notice")
        yield Static("", id="warning")
        yield Static("", id="statusline")
        yield Footer()

    def on_mount(self) -> None:
        self.runtime.on_change(lambda _v: self.post_message(self.ViewChanged()))
        self.run_worker(
            self.runtime.start(), name="staff-start", group="runtime", exit_on_error=False
        )
        self._render_view(self.runtime.view)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Show start-up failures (bad key, unknown staff id) instead of crashing."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.query_one("#warning", Static).update(f"✗ {event.worker.error}")

    async def on_unmount(self) -> None:
        await self.runtime.stop()

    def on_staff_app_view_changed(self, _message: ViewChanged) -> None:
        self._render_view(self.runtime.view)

    def _render_view(self, view: StaffView) -> None:
        org = self.org_name.upper()
        if view.current_message is None:
            body = (
                f"{org}\n\nIngen melding fra kriseledelsen.\n\n"
                "Denne terminalen viser kommunens gjeldende budskap når det kommer."
            )
        else:
            issued = (
                f"{view.message_issued_at.astimezone():%d.%m %H:%M}"
                if view.message_issued_at
                else "ukjent tid"
            )
            body = (
                f"{org} – GJELDENDE BUDSKAP FRA KRISELEDELSEN\n"
                f"utstedt {issued} · versjon {(view.message_version or '')[:8]}\n\n"
                f"«{view.current_message}»\n\n"
                "Du kan dele kommunens offisielle melding.\n"
                "Din private ytringsfrihet gjelder som før."
            )
        self.query_one("#notice", Static).update(body)
        self.query_one("#warning", Static).update(view.warnings[-1] if view.warnings else "")
        signed = "signert av kriseledelsen ✓" if view.current_message else "ingen melding"
        updated = (
            f"sist oppdatert {view.last_update.astimezone():%H:%M}" if view.last_update else ""
        )
        parts = [signed, updated, LINK_WORDS[self.runtime.link_state], self.runtime.staff_id]
        self.query_one("#statusline", Static).update(" · ".join(p for p in parts if p))
