"""The crisis leadership's console (Textual): a thin view over :class:`ConsoleRuntime`.

The status line (incident, T+ time, broker, current message) never scrolls away; the
journal tail updates live; ``n`` writes a new current message, which is published only
after a confirmation that names what will happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Input, Label, Static
from textual.worker import Worker, WorkerState

from krise_tui.bus.session import LinkState
from krise_tui.console.messages import (
    ApprovalResult,
    ApproveScreen,
    ComposeScreen,
    DraftReady,
    LedgerScreen,
    ledger_line,
    publish,
)
from krise_tui.core.describe import describe
from krise_tui.core.features.freeze import (
    ExtendFreeze,
    Freeze,
    FreezeState,
    LiftFreeze,
    RemindUnacknowledged,
)
from krise_tui.core.kernel import EventBase, Rejection
from krise_tui.core.rollcall import StaffStatus
from krise_tui.core.state import IncidentState
from krise_tui.playbook.loader import Problem
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
            yield Label(self.question, id="question", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button("Ja (j)", id="yes", variant="primary")
                yield Button("Avbryt (n)", id="no")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


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


class FreezeScreen(ModalScreen[FreezeRequest | None]):
    """Freeze employee posting, or extend / lift the active freeze."""

    BINDINGS = [Binding("escape", "cancel", "avbryt")]

    def __init__(self, freeze: FreezeState | None) -> None:
        super().__init__()
        self.freeze = freeze if freeze is not None and freeze.active else None

    def compose(self) -> ComposeResult:
        with Vertical(id="freeze-dialog"):
            if self.freeze is None:
                yield Label("Frys ansattes publisering", classes="dialog-title")
                yield Label("Grunn (vises på ansattes skjerm):")
                yield Input(placeholder="f.eks. Flom i sentrum – kriseledelsen taler", id="reason")
                yield Label("Avdelinger (kommaseparert, tomt = alle ansatte):")
                yield Input(placeholder="alle", id="departments")
                yield Label("Varighet i minutter (tomt = til den oppheves):")
                yield Input(placeholder="", id="minutes")
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Frys", id="freeze", variant="warning")
                    yield Button("Avbryt (esc)", id="cancel")
            else:
                scope = ", ".join(self.freeze.departments) or "alle ansatte"
                yield Label(
                    f"Publisering er fryst siden {self.freeze.since.astimezone():%H:%M} "
                    f"· gjelder: {scope}\nGrunn: {self.freeze.reason}",
                    classes="dialog-title",
                )
                yield Label("Begrunnelse for å oppheve, eller ny varighet i minutter:")
                yield Input(placeholder="begrunnelse", id="reason")
                yield Input(placeholder="minutter (for å forlenge)", id="minutes")
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Opphev frys", id="lift", variant="error")
                    yield Button("Forleng", id="extend")
                    yield Button("Avbryt (esc)", id="cancel")

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
        if action == "cancel":
            self.dismiss(None)
            return
        reason = self.query_one("#reason", Input).value.strip()
        try:
            minutes = _minutes(self.query_one("#minutes", Input).value)
        except ValueError:
            self.notify("Varighet må være et helt antall minutter.", severity="error")
            return
        if action in ("freeze", "lift") and not reason:
            self.notify("Skriv en begrunnelse.", severity="error")
            return
        if action == "extend" and minutes is None:
            self.notify("Skriv ny varighet i minutter.", severity="error")
            return
        departments: tuple[str, ...] = ()
        if action == "freeze":
            raw = self.query_one("#departments", Input).value
            departments = tuple(d.strip() for d in raw.split(",") if d.strip())
        self.dismiss(FreezeRequest(action, reason, departments, minutes))


class RollCallScreen(ModalScreen[None]):
    """Opprop: per department, who has acknowledged the freeze notice."""

    BINDINGS = [
        Binding("escape,o", "dismiss_screen", "tilbake"),
        Binding("r", "remind", "påminn"),
        Binding("e", "export", "eksporter"),
    ]

    def __init__(self, runtime: ConsoleRuntime) -> None:
        super().__init__()
        self.runtime = runtime

    def compose(self) -> ComposeResult:
        with Vertical(id="rollcall"):
            yield Static("", id="rollcall-title")
            yield DataTable(id="departments", cursor_type="row")
            yield DataTable(id="people", cursor_type="row", zebra_stripes=True)
            yield Static("r påminn de som ikke har kvittert · e eksporter · esc tilbake")

    def on_mount(self) -> None:
        self.query_one("#departments", DataTable).add_columns(
            "avdeling", "kvittert", "ikke kvittert", "frakoblet"
        )
        self.query_one("#people", DataTable).add_columns("ansatt", "avdeling", "status", "siden")
        self.refresh_data()

    def refresh_data(self) -> None:
        rc = self.runtime.roll_call()
        freeze = self.runtime.state.freeze.current
        if freeze is None or not freeze.active:
            title = (
                "Ingen aktiv frys. Oppropet gjelder forrige frysmelding."
                if freeze
                else ("Ingen frys er sendt ennå.")
            )
        else:
            title = f"Opprop for frysmelding nr. {freeze.seq}"
        acked = rc.count(StaffStatus.ACKED)
        self.query_one("#rollcall-title", Static).update(
            f"{title}\nkvittert {acked} / {rc.total} · ikke ennå "
            f"{rc.count(StaffStatus.PENDING)} · frakoblet {rc.count(StaffStatus.OFFLINE)}"
        )
        depts = self.query_one("#departments", DataTable)
        depts.clear()
        for d in rc.departments:
            depts.add_row(
                d.department,
                str(d.count(StaffStatus.ACKED)),
                str(d.count(StaffStatus.PENDING)),
                str(d.count(StaffStatus.OFFLINE)),
            )
        people = self.query_one("#people", DataTable)
        people.clear()
        for d in rc.departments:
            for row in d.rows:
                since = f"{row.since.astimezone():%H:%M}" if row.since else "–"
                word = STATUS_WORDS[row.status]
                if row.reminded_at is not None and row.status is not StaffStatus.ACKED:
                    word += " (påminnet)"
                people.add_row(row.staff_id, row.department, word, since)

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)

    @work(name="remind", group="rollcall", exit_on_error=False)
    async def action_remind(self) -> None:
        ids = self.runtime.unacknowledged()
        if not ids:
            self.notify("Alle har kvittert.")
            return
        decision = await self.runtime.submit(RemindUnacknowledged(tuple(ids)))
        if isinstance(decision, Rejection):
            self.notify(decision.reason, severity="error")
        else:
            self.notify(f"Påminnelse sendt til {len(ids)} terminaler.")

    def action_export(self) -> None:
        now = self.runtime.clock.now()
        path = self.runtime.settings.data_dir / f"opprop-{now:%Y%m%d-%H%M%S}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.runtime.roll_call().to_csv(), encoding="utf-8")
        self.notify(f"Oppropet er lagret i {path}", title="Eksportert")


STATUS_WORDS = {
    StaffStatus.ACKED: "✓ kvittert",
    StaffStatus.PENDING: "… ikke kvittert",
    StaffStatus.OFFLINE: "○ frakoblet",
}


class ConsoleApp(App[None]):
    """kriseledelsens konsoll."""

    CSS_PATH = "app.tcss"
    TITLE = "krise"
    BINDINGS = [
        Binding("n", "new_message", "ny melding"),
        Binding("m", "ledger", "meldinger"),
        Binding("c", "cap_request", "CAP til politiet", show=False),
        Binding("f", "freeze", "frys/opphev"),
        Binding("s", "rollcall", "ansatte"),
        Binding("j", "focus_journal", "logg"),
        Binding("question_mark", "help", "hjelp"),
        Binding("ctrl+q", "quit", "avslutt", priority=True),
        Binding("escape", "focus_journal", "", show=False),
    ]

    class StateChanged(Message):
        """The runtime journaled new events (``first_seq``: the first one's sequence number)."""

        def __init__(self, events: list[EventBase], first_seq: int) -> None:
            super().__init__()
            self.events = events
            self.first_seq = first_seq

    class LinkChanged(Message):
        """The broker connection changed."""

        def __init__(self, state: LinkState, detail: str) -> None:
            super().__init__()
            self.state = state
            self.detail = detail

    class PlaybookReloaded(Message):
        """The playbook file changed: valid (no problems) or broken."""

        def __init__(self, problems: list[Problem]) -> None:
            super().__init__()
            self.problems = problems

    def __init__(self, runtime: ConsoleRuntime) -> None:
        super().__init__()
        self.runtime = runtime
        self.started = False
        self._banner_parts: dict[str, str] = {}
        self._last_seq = 0

    def compose(self) -> ComposeResult:
        # markup=False: operator and bus texts must show exactly as written
        yield Static("", id="status", markup=False)
        yield Static("", id="banner", markup=False)
        yield Static("Ingen gjeldende budskap ennå.", id="current", markup=False)
        yield DataTable(id="journal", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#journal", DataTable)
        table.add_columns("#", "tid", "hva")
        self.query_one("#banner", Static).display = False
        self._start_runtime()
        self.query_one("#journal", DataTable).focus()
        self.set_interval(15, self._refresh_status)

    @work(name="start-runtime", group="runtime", exclusive=True, exit_on_error=False)
    async def _start_runtime(self) -> None:
        rt = self.runtime

        def changed(state: IncidentState, events: list[EventBase]) -> None:
            # The sequence numbers are taken now, when the events are journaled (the
            # message is handled later, when more may have been journaled meanwhile).
            self.post_message(self.StateChanged(events, state.event_count - len(events) + 1))

        rt.on_state(changed)
        rt.on_link(lambda state, detail: self.post_message(self.LinkChanged(state, detail)))
        rt.on_playbook(lambda problems: self.post_message(self.PlaybookReloaded(problems)))
        await rt.start()
        if rt.playbook_problems:
            self.post_message(self.PlaybookReloaded(rt.playbook_problems))
        if rt.bridge_errors:
            lines = [f"  {cid}: {why}" for cid, why in sorted(rt.bridge_errors.items())]
            self._set_banner(
                "bridges",
                "! Kanaler uten bro (meldinger dit blir ikke levert):\n" + "\n".join(lines),
            )
        self.started = True
        assert rt.journal is not None
        table = self.query_one("#journal", DataTable)
        table.clear()
        self._last_seq = 0
        for row in await rt.journal.tail(200):
            from krise_tui.core.events import event_from_json

            self._add_row(row.seq, event_from_json(row.body))
        self._refresh_all()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place for worker failures: show them, keep running."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self._set_banner("worker", f"✗ {event.worker.name}: {event.worker.error}")

    async def on_unmount(self) -> None:
        await self.runtime.stop()

    # --- updates -----------------------------------------------------------------------

    def on_console_app_state_changed(self, message: StateChanged) -> None:
        for offset, event in enumerate(message.events):
            self._add_row(message.first_seq + offset, event)
        self._refresh_all()
        if isinstance(self.screen, RollCallScreen | LedgerScreen):
            self.screen.refresh_data()

    def on_console_app_playbook_reloaded(self, message: PlaybookReloaded) -> None:
        rt = self.runtime
        if message.problems:
            kept = (
                f"bruker fortsatt {rt.state.incident.playbook_title} "
                f"({(rt.playbook_hash or '')[:8]})"
                if rt.playbook is not None
                else "ingen gyldig dreiebok er lastet"
            )
            lines = [str(p) for p in message.problems[:4]]
            more = len(message.problems) - len(lines)
            if more > 0:
                lines.append(f"… og {more} til (krise playbook check)")
            self._set_banner("playbook", f"✗ Dreieboka har feil – {kept}:\n" + "\n".join(lines))
        else:
            self._set_banner("playbook", None)
            self.notify(
                f"{rt.state.incident.playbook_title} ({(rt.playbook_hash or '')[:8]})",
                title="Dreiebok lastet",
            )
        self._refresh_all()

    def on_console_app_link_changed(self, message: LinkChanged) -> None:
        self._refresh_status()
        if message.state is LinkState.DISCONNECTED:
            self._set_banner("link", f"✗ Megler frakoblet: {message.detail} – prøver igjen")
        elif message.state is LinkState.CONNECTED:
            info = self.runtime.broker_info
            self._set_banner("link", f"! {info.warning}" if info and info.warning else None)

    def _add_row(self, seq: int, event: EventBase) -> None:
        if seq <= self._last_seq:
            return  # already shown (loaded from the journal at start)
        self._last_seq = seq
        table = self.query_one("#journal", DataTable)
        table.add_row(str(seq), f"{event.ts.astimezone():%H:%M:%S}", Text(describe(event)))
        table.move_cursor(row=table.row_count - 1)

    def _set_banner(self, part: str, text: str | None) -> None:
        """The banner says everything that needs attention (broker, playbook, bridges…);
        each part is set or cleared on its own, so one never hides another."""
        if text:
            self._banner_parts[part] = text
        else:
            self._banner_parts.pop(part, None)
        order = ("link", "worker", "playbook", "bridges")
        shown = [self._banner_parts[k] for k in order if k in self._banner_parts]
        banner = self.query_one("#banner", Static)
        banner.update("\n".join(shown))
        banner.display = bool(shown)

    def _refresh_all(self) -> None:
        self._refresh_status()
        self._refresh_current(self.runtime.state)

    def _refresh_status(self) -> None:
        rt = self.runtime
        st = rt.state
        info = rt.broker_info
        width = max(self.size.width, 80)
        broker = f"MQTT {LINK_LABEL[rt.link_state]} {info.kind if info else ''}".rstrip()
        if info is not None and width >= 110:
            broker = f"MQTT {LINK_LABEL[rt.link_state]} {info.label}"
        now = rt.clock.now()
        if st.freeze.active:
            rc = rt.roll_call()
            freeze = f"FRYS ● {rc.count(StaffStatus.ACKED)}/{rc.total} kvittert"
        else:
            freeze = "FRYS ○ av"
        clock = t_plus(st.incident.opened_at, now)
        right = f" · nivå {st.incident.level} · {clock}  {broker}  {freeze}"
        # The line must fit 80 columns: the title gives way, never the state.
        room = max(8, width - len(right) - 2)
        title = st.incident.title or "Ingen hendelse"
        if len(title) > room:
            title = title[: room - 1] + "…"
        self.query_one("#status", Static).update(f" {title}{right}")

    def _refresh_current(self, state: IncidentState) -> None:
        msg = state.messages.current
        widget = self.query_one("#current", Static)
        if msg is None:
            widget.update("Ingen gjeldende budskap ennå.")
            return
        ledger = ledger_line(self.runtime)
        version = state.messages.versions.get(state.messages.published_version or "")
        if version is not None and version.break_glass_reason:
            ledger += (
                f"\n  ⚠ NØDPROSEDYRE: godkjent av forfatteren alene – {version.break_glass_reason}"
            )
        widget.update(
            f"Gjeldende budskap v{msg.version_id[:8]} "
            f"({msg.set_at.astimezone():%H:%M} av {msg.set_by})\n"
            f"  «{msg.text}»\n  {ledger}"
        )

    # --- actions -----------------------------------------------------------------------

    def action_new_message(self, status: str = "published", supersedes: str | None = None) -> None:
        if self.runtime.org is None:
            self.notify(
                "Meldinger krever en org-fil med operatører som kan godkjenne (org_file).",
                severity="warning",
            )
            return

        def approved(result: ApprovalResult | None) -> None:
            if result is None:
                return
            question = (
                f"Publiser versjon {result.version_id[:8]} til {result.channels} kanaler?\n\n"
                "Nettsiden først, så alle andre kanaler samtidig."
            )

            def confirmed(ok: bool | None) -> None:
                if ok:
                    self._publish_version(result.version_id)

            self.push_screen(ConfirmScreen(question), confirmed)

        def drafted(ready: DraftReady | None) -> None:
            if ready is not None:
                self.push_screen(ApproveScreen(self.runtime, ready.draft_id), approved)

        self.push_screen(ComposeScreen(self.runtime, status=status, supersedes=supersedes), drafted)

    @work(name="publish-version", group="publish", exit_on_error=False)
    async def _publish_version(self, version_id: str) -> None:
        problem = await publish(self.runtime, version_id)
        if problem:
            self.notify(problem, title="Ikke publisert", severity="error")
        else:
            self.notify(f"Versjon {version_id[:8]} er sendt til alle kanaler.", title="Publisert")

    def action_cap_request(self) -> None:
        """Draft a CAP 1.2 warning request for the published version (to the police)."""
        from krise_tui.exports.cap_request import CapExportError, cap_request

        rt = self.runtime
        if rt.org is None or rt.playbook is None:
            self.notify("CAP-anmodning krever org-fil og drejebok.", severity="warning")
            return
        now = rt.clock.now()
        try:
            xml = cap_request(rt.state, org=rt.org, playbook=rt.playbook, sent=now)
        except CapExportError as exc:
            self.notify(str(exc), title="Ingen CAP-anmodning", severity="warning")
            return
        path = rt.settings.data_dir / f"cap-anmodning-{now:%Y%m%d-%H%M%S}.xml"
        path.write_text(xml, encoding="utf-8")
        self.notify(
            f"Lagret i {path}. Dette er en ANMODNING til politiet – bare politiet sender "
            "Nødvarsel.",
            title="CAP-anmodning til politiet",
            timeout=12,
        )

    def action_ledger(self) -> None:
        self.push_screen(LedgerScreen(self.runtime))

    def action_focus_journal(self) -> None:
        self.query_one("#journal", DataTable).focus()

    def action_help(self) -> None:
        self.notify(
            "n ny melding · m meldinger (levering per kanal) · c CAP-anmodning til politiet · "
            "f frys/opphev · "
            "s ansatte (opprop) · j logg · ctrl+q avslutt.\n"
            "Meldinger og frys publiseres signert til ansattes terminaler etter bekreftelse.",
            title="Hjelp",
            timeout=8,
        )

    def action_freeze(self) -> None:
        def after(request: FreezeRequest | None) -> None:
            if request is None:
                return
            if request.action == "freeze":
                scope = ", ".join(request.departments) or "alle ansatte"
                question = (
                    f"Frys publisering for {scope}?\n\nGrunn: {request.reason}\n"
                    "Alle terminaler i omfanget får en signert frysmelding med gjeldende budskap."
                )
            elif request.action == "lift":
                question = f"Opphev frysen for alle terminaler?\n\nBegrunnelse: {request.reason}"
            else:
                question = f"Forleng frysen med {request.minutes} minutter fra nå?"

            def confirmed(ok: bool | None) -> None:
                if ok:
                    self._apply_freeze(request)

            self.push_screen(ConfirmScreen(question), confirmed)

        self.push_screen(FreezeScreen(self.runtime.state.freeze.current), after)

    @work(name="freeze", group="freeze", exit_on_error=False)
    async def _apply_freeze(self, request: FreezeRequest) -> None:
        now = self.runtime.clock.now()
        expires = None if request.minutes is None else now + timedelta(minutes=request.minutes)
        command: Freeze | ExtendFreeze | LiftFreeze
        if request.action == "freeze":
            command = Freeze(request.reason, request.departments, expires)
        elif request.action == "extend":
            command = ExtendFreeze(expires, request.reason)
        else:
            command = LiftFreeze(request.reason)
        decision = await self.runtime.submit(command)
        if isinstance(decision, Rejection):
            self.notify(decision.reason, title="Ikke utført", severity="error")
        else:
            done = {"freeze": "Publisering er fryst.", "extend": "Frysen er forlenget."}
            self.notify(done.get(request.action, "Frysen er opphevet."))

    def action_rollcall(self) -> None:
        self.push_screen(RollCallScreen(self.runtime))
