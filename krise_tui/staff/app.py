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

from krise_tui.bindings import translate_bindings
from krise_tui.bus.session import LinkState
from krise_tui.staff.runtime import StaffRuntime, StaffView
from krise_tui.timefmt import DEFAULT_TIMEZONE, format_time, local_time

LINK_WORDS = {
    LinkState.CONNECTING: ("kobler til …", "connecting …"),
    LinkState.CONNECTED: ("tilkoblet", "connected"),
    LinkState.DISCONNECTED: ("FRAKOBLET – prøver igjen", "DISCONNECTED – retrying"),
    LinkState.STOPPED: ("stoppet", "stopped"),
}


BINDING_EN = {"kvitter": "acknowledge", "avslutt": "quit"}
"""The terminal's key descriptions in English (``--lang en``)."""


def _say(lang: str, nb: str, en: str) -> str:
    """The terminal's own words in its language: English for ``en``, else bokmål."""
    return en if lang == "en" else nb


def render_notice(
    view: StaffView,
    org_name: str,
    website: str | None = None,
    lang: str = "nb",
    tz: str = DEFAULT_TIMEZONE,
) -> str:
    """The notice text for ``view`` (plain text: no information by colour); times are
    wall time in ``tz``, the municipality's zone, as the console shows them."""
    org = org_name.upper()
    freeze = view.freeze
    if freeze is not None:
        since = format_time(freeze.since, tz) if freeze.since else _say(lang, "nå", "now")
        scope = (
            _say(lang, "alle ansatte", "all staff")
            if not freeze.departments
            else ", ".join(freeze.departments)
        )
        lines = [
            _say(
                lang,
                f"{org} – KRISELEDELSEN HAR FRYST PUBLISERING",
                f"{org} – THE CRISIS LEADERSHIP HAS FROZEN POSTING",
            ),
            _say(lang, f"siden {since} · gjelder: {scope}", f"since {since} · applies to: {scope}"),
        ]
        if freeze.expires_at is not None:
            until = f"{local_time(freeze.expires_at, tz):%d.%m %H:%M}"
            lines.append(_say(lang, f"varer til {until}", f"lasts until {until}"))
        lines += ["", _say(lang, f"Grunn: {freeze.reason}", f"Reason: {freeze.reason}"), ""]
        notice = freeze.notice.get(lang) or freeze.notice.get("nb")
        if notice:
            lines += [notice, ""]
        lines += [
            _say(
                lang,
                "Du skal ikke uttale deg på vegne av kommunen i sosiale medier nå.",
                "Do not speak for the municipality on social media now.",
            ),
            _say(
                lang,
                "Du kan dele kommunens offisielle melding:",
                "You may share the municipality's official message:",
            ),
            "",
            f"  «{freeze.message}»"
            if freeze.message
            else _say(lang, "  (ingen godkjent melding ennå)", "  (no approved message yet)"),
            "",
        ]
        if website:
            lines.append(
                _say(
                    lang,
                    f"Spørsmål fra publikum? Henvis til {website}",
                    f"Questions from the public? Refer them to {website}",
                )
            )
        lines.append(
            _say(
                lang,
                "Din private ytringsfrihet gjelder som før.",
                "Your freedom of expression as a private person is unchanged.",
            )
        )
        return "\n".join(lines)
    if view.current_message is None:
        return _say(
            lang,
            f"{org}\n\nIngen melding fra kriseledelsen.\n\n"
            "Denne terminalen viser kommunens gjeldende budskap når det kommer.",
            f"{org}\n\nNo message from the crisis leadership.\n\n"
            "This terminal shows the municipality's current message when it comes.",
        )
    issued = (
        f"{local_time(view.message_issued_at, tz):%d.%m %H:%M}"
        if view.message_issued_at
        else _say(lang, "ukjent tid", "unknown time")
    )
    version = (view.message_version or "")[:8]
    return _say(
        lang,
        f"{org} – GJELDENDE BUDSKAP FRA KRISELEDELSEN\n"
        f"utstedt {issued} · versjon {version}\n\n"
        f"«{view.current_message}»\n\n"
        "Publisering er ikke fryst. Du kan dele kommunens offisielle melding.\n"
        "Din private ytringsfrihet gjelder som før.",
        f"{org} – CURRENT MESSAGE FROM THE CRISIS LEADERSHIP\n"
        f"issued {issued} · version {version}\n\n"
        f"«{view.current_message}»\n\n"
        "Posting is not frozen. You may share the municipality's official message.\n"
        "Your freedom of expression as a private person is unchanged.",
    )


def render_ack(view: StaffView, lang: str = "nb", tz: str = DEFAULT_TIMEZONE) -> str:
    """The acknowledgement line: always visible, whatever the notice's length."""
    freeze = view.freeze
    if freeze is None:
        return ""
    if freeze.acknowledged_by(view.acked_seq) and view.acked_at is not None:
        at = format_time(view.acked_at, tz)
        return _say(lang, f"✓ Kvittert {at} – takk.", f"✓ Acknowledged {at} – thank you.")
    if view.ack_pending == freeze.seq:
        return _say(
            lang,
            "… Kvittering ikke sendt ennå – sendes når terminalen er tilkoblet.",
            "… Acknowledgement not sent yet – it is sent when the terminal is connected.",
        )
    reminder = (
        _say(
            lang,
            "PÅMINNELSE: kriseledelsen venter på din kvittering. ",
            "REMINDER: the crisis leadership is waiting for your acknowledgement. ",
        )
        if view.reminded_at
        else ""
    )
    return reminder + _say(
        lang, "[ Enter ] Jeg har lest og forstått", "[ Enter ] I have read and understood"
    )


def render_status(view: StaffView, link: LinkState, staff_id: str, lang: str, tz: str) -> str:
    """The bottom line: signed or not, when last updated, the connection, who."""
    signed = (
        _say(lang, "signert av kriseledelsen ✓", "signed by the crisis leadership ✓")
        if view.last_update
        else _say(lang, "ingen melding", "no message")
    )
    updated = (
        _say(lang, "sist oppdatert ", "last updated ") + format_time(view.last_update, tz)
        if view.last_update
        else ""
    )
    parts = [signed, updated, _say(lang, *LINK_WORDS[link]), staff_id]
    return " · ".join(p for p in parts if p)


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
        if runtime.settings.lang == "en":
            self.title = "krise – staff"
            translate_bindings(self, BINDING_EN)

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
        rt = self.runtime
        lang, tz = rt.settings.lang, rt.timezone
        self.query_one("#notice", Static).update(
            render_notice(view, self.org_name, self.website, lang, tz)
        )
        self.query_one("#ackline", Static).update(render_ack(view, lang, tz))
        self.query_one("#warning", Static).update(view.warnings[-1] if view.warnings else "")
        self.query_one("#statusline", Static).update(
            render_status(view, rt.link_state, rt.staff_id, lang, tz)
        )
