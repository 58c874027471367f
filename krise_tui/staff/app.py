"""The staff terminal (Textual): the leadership's freeze notice and current message.

Works in a plain 80×24 terminal without colours: every state is said in words. Only
envelopes verified against the console's public key change the screen; anything else
is reported on the warning line and ignored. Enter acknowledges a freeze notice.
"""

from __future__ import annotations

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from krise_tui.bus.session import LinkState
from krise_tui.staff.runtime import StaffRuntime, StaffView

LINK_WORDS = {
    LinkState.CONNECTING: "kobler til …",
    LinkState.CONNECTED: "tilkoblet",
    LinkState.DISCONNECTED: "FRAKOBLET – prøver igjen",
    LinkState.STOPPED: "stoppet",
}


def render_notice(
    view: StaffView, org_name: str, website: str | None = None, lang: str = "nb"
) -> str:
    """The notice text for ``view`` (plain text: no information by colour)."""
    org = org_name.upper()
    freeze = view.freeze
    if freeze is not None:
        since = f"{freeze.since.astimezone():%H:%M}" if freeze.since else "nå"
        scope = "alle ansatte" if not freeze.departments else ", ".join(freeze.departments)
        lines = [
            f"{org} – KRISELEDELSEN HAR FRYST PUBLISERING",
            f"siden {since} · gjelder: {scope}",
        ]
        if freeze.expires_at is not None:
            lines.append(f"varer til {freeze.expires_at.astimezone():%d.%m %H:%M}")
        lines += ["", f"Grunn: {freeze.reason}", ""]
        notice = freeze.notice.get(lang) or freeze.notice.get("nb")
        if notice:
            lines += [notice, ""]
        lines += [
            "Du skal ikke uttale deg på vegne av kommunen i sosiale medier nå.",
            "Du kan dele kommunens offisielle melding:",
            "",
            f"  «{freeze.message}»" if freeze.message else "  (ingen godkjent melding ennå)",
            "",
        ]
        if website:
            lines.append(f"Spørsmål fra publikum? Henvis til {website}")
        lines.append("Din private ytringsfrihet gjelder som før.")
        return "\n".join(lines)
    if view.current_message is None:
        return (
            f"{org}\n\nIngen melding fra kriseledelsen.\n\n"
            "Denne terminalen viser kommunens gjeldende budskap når det kommer."
        )
    issued = (
        f"{view.message_issued_at.astimezone():%d.%m %H:%M}"
        if view.message_issued_at
        else "ukjent tid"
    )
    return (
        f"{org} – GJELDENDE BUDSKAP FRA KRISELEDELSEN\n"
        f"utstedt {issued} · versjon {(view.message_version or '')[:8]}\n\n"
        f"«{view.current_message}»\n\n"
        "Publisering er ikke fryst. Du kan dele kommunens offisielle melding.\n"
        "Din private ytringsfrihet gjelder som før."
    )


def render_ack(view: StaffView) -> str:
    """The acknowledgement line: always visible, whatever the notice's length."""
    freeze = view.freeze
    if freeze is None:
        return ""
    if freeze.acknowledged_by(view.acked_seq) and view.acked_at is not None:
        return f"✓ Kvittert {view.acked_at.astimezone():%H:%M} – takk."
    if view.ack_pending == freeze.seq:
        return "… Kvittering ikke sendt ennå – sendes når terminalen er tilkoblet."
    reminder = "PÅMINNELSE: kriseledelsen venter på din kvittering. " if view.reminded_at else ""
    return f"{reminder}[ Enter ] Jeg har lest og forstått"


class StaffApp(App[None]):
    """ansattterminal."""

    CSS_PATH = "app.tcss"
    TITLE = "krise – ansatt"
    BINDINGS = [
        Binding("enter", "acknowledge", "kvitter"),
        Binding("ctrl+q", "quit", "avslutt", priority=True),
    ]

    class ViewChanged(Message):
        """The runtime's view changed."""

    def __init__(self, runtime: StaffRuntime, org_name: str, website: str | None = None) -> None:
        super().__init__()
        self.runtime = runtime
        self.org_name = org_name
        self.website = website

    def compose(self) -> ComposeResult:
        # markup=False: texts come from the bus and must show exactly as sent
        with VerticalScroll(id="notice-box"):
            yield Static("", id="notice", markup=False)
        yield Static("", id="ackline", markup=False)
        yield Static("", id="warning", markup=False)
        yield Static("", id="statusline", markup=False)
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

    @work(name="acknowledge", group="ack", exclusive=True, exit_on_error=False)
    async def action_acknowledge(self) -> None:
        if self.runtime.view.needs_ack:
            await self.runtime.acknowledge()

    def _render_view(self, view: StaffView) -> None:
        lang = self.runtime.settings.lang
        self.query_one("#notice", Static).update(
            render_notice(view, self.org_name, self.website, lang)
        )
        self.query_one("#ackline", Static).update(render_ack(view))
        self.query_one("#warning", Static).update(view.warnings[-1] if view.warnings else "")
        signed = "signert av kriseledelsen ✓" if view.last_update else "ingen melding"
        updated = (
            f"sist oppdatert {view.last_update.astimezone():%H:%M}" if view.last_update else ""
        )
        parts = [signed, updated, LINK_WORDS[self.runtime.link_state], self.runtime.staff_id]
        self.query_one("#statusline", Static).update(" · ".join(p for p in parts if p))
