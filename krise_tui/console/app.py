"""The crisis leadership's console (Textual): a thin view over :class:`ConsoleRuntime`.

Six views, one key each, the same from anywhere (``o`` overview, ``m`` messages, ``q``
questions, ``r`` rumours, ``s`` staff, ``j`` journal), plus ``n`` new message, ``f``
freeze/lift, ``c`` CAP request to the police, ``ctrl+p`` every action by name and ``?``
help. Each view composes the status line (incident, level, T+ time, broker, freeze with
its roll-call and expiry) and the banner (what needs attention) above its body, so they
never scroll away.

The console starts with who is at it (sign-in against the org file) and, when no
incident is open yet, the incident itself (playbook, title, level). Every decision goes
through the runtime's engine (approval, lint, the journal); the app only shows and asks.

Updates are coalesced: the runtime marks the view dirty, a timer redraws at most four
times a second, so a post storm never redraws per post. All I/O runs in named workers.
While a dialog or the composer is open, the view keys are off: typing never fires them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.theme import Theme
from textual.worker import Worker, WorkerState

from krise_tui.bus.session import LinkState
from krise_tui.console.i18n import Tr, action_failed, binding_text, translate_bindings
from krise_tui.console.screens.base import Dialog, ViewScreen
from krise_tui.console.screens.dialogs import ConfirmScreen, FreezeRequest, FreezeScreen
from krise_tui.console.screens.help import HelpScreen, binding_lines
from krise_tui.console.screens.journal import JournalLog, JournalScreen
from krise_tui.console.screens.messages import (
    ApprovalResult,
    ApproveScreen,
    ComposeScreen,
    DraftReady,
    MessagesScreen,
    publish,
    publish_question,
)
from krise_tui.console.screens.overview import OverviewScreen
from krise_tui.console.screens.questions import QuestionsScreen
from krise_tui.console.screens.rumours import RumoursScreen
from krise_tui.console.screens.staff import StaffScreen
from krise_tui.console.screens.start import SignInScreen, StartScreen
from krise_tui.console.text import rollcall_counts
from krise_tui.core.events import event_from_json
from krise_tui.core.features.freeze import ExtendFreeze, Freeze, LiftFreeze
from krise_tui.core.features.messages import DeliveryStatus
from krise_tui.core.kernel import EventBase, Rejection
from krise_tui.core.rollcall import RollCall
from krise_tui.core.state import IncidentState
from krise_tui.playbook.loader import Problem
from krise_tui.runtime import ConsoleRuntime

VIEWS: dict[str, type[ViewScreen]] = {
    "overview": OverviewScreen,
    "messages": MessagesScreen,
    "questions": QuestionsScreen,
    "rumours": RumoursScreen,
    "staff": StaffScreen,
    "journal": JournalScreen,
}

VIEW_NAMES = {
    "overview": ("Oversikt", "Overview"),
    "messages": ("Meldinger", "Messages"),
    "questions": ("Spørsmål", "Questions"),
    "rumours": ("Rykter", "Rumours"),
    "staff": ("Ansatte", "Staff"),
    "journal": ("Logg", "Journal"),
}

GLOBAL_ACTIONS = frozenset(
    {"view", "new_message", "freeze", "cap_request", "sitrep", "help", "command_palette"}
)
"""App actions that are off while a dialog or the composer is open."""

LINK_WORDS = {
    LinkState.CONNECTING: ("… kobler til", "… connecting"),
    LinkState.CONNECTED: ("✓", "✓"),
    LinkState.DISCONNECTED: ("✗ frakoblet", "✗ disconnected"),
    LinkState.STOPPED: ("○ stoppet", "○ stopped"),
}

HIGH_CONTRAST = Theme(
    name="krise-high-contrast",
    primary="#FFFF00",
    secondary="#00FFFF",
    accent="#FFFFFF",
    warning="#FFA500",
    error="#FF4040",
    success="#00FF00",
    foreground="#FFFFFF",
    background="#000000",
    surface="#000000",
    panel="#1A1A1A",
    dark=True,
)
"""Black and white with pure signal colours (for glare, poor eyes, old projectors)."""

THEMES = ("textual-dark", "textual-light", "krise-high-contrast")

REFRESH_EVERY = 0.25
"""Seconds between redraws while something changed (coalesces storms of events)."""


class ConsoleApp(App[None]):
    """kriseledelsens konsoll."""

    CSS_PATH = "app.tcss"
    TITLE = "krise"
    MODES = dict(VIEWS)
    BINDINGS = [
        Binding("o", "view('overview')", "oversikt"),
        Binding("m", "view('messages')", "meldinger"),
        Binding("q", "view('questions')", "spørsmål"),
        Binding("r", "view('rumours')", "rykter"),
        Binding("s", "view('staff')", "ansatte"),
        Binding("j", "view('journal')", "logg"),
        Binding("n", "new_message", "ny", tooltip="ny melding til alle kanaler"),
        Binding("f", "freeze", "frys", tooltip="frys eller opphev ansattes publisering"),
        Binding("c", "cap_request", "CAP", tooltip="CAP-anmodning til politiet"),
        Binding("ctrl+r", "sitrep", "rapport", tooltip="situasjonsrapport (Markdown og HTML)"),
        Binding("question_mark", "help", "hjelp", tooltip="alle taster"),
        Binding(
            "ctrl+q",
            "request_quit",
            "avslutt",
            tooltip="avslutt (spør hvis noe venter)",
            priority=True,
        ),
    ]

    def __init__(
        self,
        runtime: ConsoleRuntime,
        *,
        lang: str | None = None,
        theme: str | None = None,
        ask_start: bool = True,
        on_started: Callable[[ConsoleRuntime], Awaitable[object]] | None = None,
        on_stopping: Callable[[ConsoleRuntime], Awaitable[object]] | None = None,
    ) -> None:
        """``ask_start=False`` lets the runtime open the incident itself (a demo's
        drill does); ``on_started`` / ``on_stopping`` run beside the runtime's start and
        before its stop (a demo's player)."""
        super().__init__()
        self.runtime = runtime
        self._ask_start = ask_start
        self._on_started = on_started
        self._on_stopping = on_stopping
        self.tr = Tr(lang or runtime.settings.lang)
        self.journal_log = JournalLog()
        self.started = False
        self._banner_parts: dict[str, str] = {}
        self._dirty = True
        self._wanted_theme = theme
        self._roll_call: tuple[int, RollCall] | None = None

    # --- start ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.register_theme(HIGH_CONTRAST)
        if self._wanted_theme:
            self.theme = self._wanted_theme
        translate_bindings(self, self.tr.lang)
        self.title = self.tr("krise – kriseledelsens konsoll", "krise – crisis leadership console")
        self.switch_mode("overview")
        self.set_interval(REFRESH_EVERY, self._maybe_redraw)
        self.set_interval(15, self.mark_dirty)  # clocks and countdowns move
        self._start_runtime()

    @work(name="start-runtime", group="runtime", exclusive=True, exit_on_error=False)
    async def _start_runtime(self) -> None:
        rt = self.runtime
        if self._ask_start:
            rt.auto_open = False  # the start screen asks for title and level
        rt.on_state(self._on_state)
        rt.on_link(lambda state, detail: self.call_next(self._link_changed, state, detail))
        rt.on_playbook(lambda problems: self.call_next(self._playbook_reloaded, problems))
        rt.on_concern(lambda name, _text: self.call_next(self._show_concern, name))
        await rt.start()
        if self._on_started is not None:
            await self._on_started(rt)
        for name in list(rt.concerns):
            self._show_concern(name)
        self._recurrence_banner(rt.state)
        if rt.playbook_problems:
            self._playbook_reloaded(rt.playbook_problems)
        if rt.bridge_errors:
            lines = [
                f"  {cid}: {re.sub(r'^channel [^:]*: ', '', why)}"
                for cid, why in sorted(rt.bridge_errors.items())
            ]
            self._set_banner(
                "bridges",
                self.tr(
                    "! Kanaler uten bro (meldinger dit blir ikke levert):\n",
                    "! Channels without a bridge (messages there are not delivered):\n",
                )
                + "\n".join(lines),
            )
        assert rt.journal is not None
        for row in await rt.journal.tail(2000):
            self.journal_log.add(row.seq, event_from_json(row.body))
        self.started = True
        self.mark_dirty()
        self._ask_who()

    def _ask_who(self) -> None:
        """Sign-in first (when the org file names people), then the incident's start."""
        rt = self.runtime
        if rt.org is not None and not rt.signed_in:
            self.push_screen(SignInScreen(), lambda _who: self._ask_incident())
        else:
            self._ask_incident()

    def _ask_incident(self) -> None:
        self.mark_dirty()
        if not self.runtime.state.is_open:
            self.push_screen(StartScreen(), lambda _ok: self.mark_dirty())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place for worker failures: show them, keep running. The failure stays in
        the banner until the same action next succeeds (a full disk's error is not left
        standing once the disk has room and the approval went through)."""
        name = event.worker.name
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            said = action_failed(name, event.worker.error, self.tr.lang)
            self._set_banner(f"worker:{name}", said)
        elif event.state is WorkerState.SUCCESS and f"worker:{name}" in self._banner_parts:
            self._set_banner(f"worker:{name}", None)

    async def on_unmount(self) -> None:
        if self._on_stopping is not None:
            try:
                await self._on_stopping(self.runtime)
            finally:
                await self.runtime.stop()
            return
        await self.runtime.stop()

    # --- updates -------------------------------------------------------------------------

    def _on_state(self, state: IncidentState, events: list[EventBase]) -> None:
        """Called as events are journaled: keep them for the journal view, redraw later."""
        first = state.event_count - len(events) + 1
        for offset, event in enumerate(events):
            self.journal_log.add(first + offset, event)
        self._recurrence_banner(state)
        self._dirty = True

    def _recurrence_banner(self, state: IncidentState) -> None:
        """A corrected rumour seen again is said on every view (not only the rumours
        view) until someone marks the alert seen there (``a``)."""
        rs, tr = state.rumours, self.tr
        alerts = [rs.rumours[r] for r in rs.alerts if r in rs.rumours]
        if not alerts:
            self._set_banner("recurrence", None)
            return
        named = " · ".join(
            f"«{' '.join(r.claim.split())[:60]}» ({r.rumour_id})" for r in alerts[:3]
        )
        more = f" +{len(alerts) - 3}" if len(alerts) > 3 else ""
        self._set_banner(
            "recurrence",
            tr(
                f"⚠ Korrigert rykte er tilbake: {named}{more} – r: rykter, y: svar spredere "
                "med korreksjonen, a: sett",
                f"⚠ A corrected rumour is back: {named}{more} – r: rumours, y: reply to "
                "spreaders with the correction, a: seen",
            ),
        )

    def roll_call(self) -> RollCall:
        """The roll-call, computed once per change of the journal (not per redraw)."""
        count = self.runtime.state.event_count
        if self._roll_call is None or self._roll_call[0] != count:
            self._roll_call = (count, self.runtime.roll_call())
        return self._roll_call[1]

    def mark_dirty(self) -> None:
        """Something changed: the current view redraws at the next tick."""
        self._dirty = True

    def _maybe_redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        for screen in self.screen_stack:
            if isinstance(screen, ViewScreen) and screen.is_mounted:
                screen.refresh_view()

    def _link_changed(self, state: LinkState, detail: str) -> None:
        tr = self.tr
        if state is LinkState.DISCONNECTED:
            self._set_banner(
                "link",
                tr(
                    f"✗ Megler frakoblet: {detail} – prøver igjen",
                    f"✗ Broker lost: {detail} – retrying",
                ),
            )
        elif state is LinkState.CONNECTED:
            info = self.runtime.broker_info
            self._set_banner("link", f"! {info.warning}" if info and info.warning else None)
        self.mark_dirty()

    def _playbook_reloaded(self, problems: list[Problem]) -> None:
        rt, tr = self.runtime, self.tr
        if problems:
            using = f"{rt.state.incident.playbook_title} ({(rt.playbook_hash or '')[:8]})"
            kept = (
                tr(f"bruker fortsatt {using}", f"still using {using}")
                if rt.playbook is not None
                else tr("ingen gyldig dreiebok er lastet", "no valid playbook is loaded")
            )
            lines = [str(p) for p in problems[:4]]
            more = len(problems) - len(lines)
            if more > 0:
                lines.append(
                    tr(
                        f"… og {more} til (krise playbook check)",
                        f"… and {more} more (krise playbook check)",
                    )
                )
            self._set_banner(
                "playbook",
                tr(f"✗ Dreieboka har feil – {kept}:\n", f"✗ The playbook has problems – {kept}:\n")
                + "\n".join(lines),
            )
        else:
            self._set_banner("playbook", None)
            if self.started:
                self.notify(
                    f"{rt.state.incident.playbook_title} ({(rt.playbook_hash or '')[:8]})",
                    title=tr("Dreiebok lastet", "Playbook loaded"),
                )
        self.mark_dirty()

    def _show_concern(self, name: str) -> None:
        """The runtime's concern ``name`` as it is now, in the console's language."""
        self._set_banner(f"c:{name}", self.runtime.concern(name, self.tr.lang))

    def _set_banner(self, part: str, text: str | None) -> None:
        """Each part of the banner is set or cleared on its own: one never hides another."""
        if text:
            self._banner_parts[part] = text
        else:
            self._banner_parts.pop(part, None)
        self.mark_dirty()

    def banner_text(self) -> str:
        """Everything that needs attention now (empty: nothing)."""
        return "\n".join(self._banner_parts[k] for k in sorted(self._banner_parts))

    def status_line(self, width: int) -> str:
        """``Flom · nivå 2 · T+00:42 (14:12)  MQTT ✓ mosquitto  FRYS ● 212/240 kvittert``.

        It fits ``width`` (80 at least): the title gives way, never the state."""
        rt, tr = self.runtime, self.tr
        st = rt.state
        now = rt.clock.now()
        info = rt.broker_info
        link = tr(*LINK_WORDS[rt.link_state])
        broker = f"MQTT {link} {info.kind if info else ''}".rstrip()
        if info is not None and width >= 120:
            broker = f"MQTT {link} {info.label}"
        freeze = st.freeze.current
        if freeze is not None and freeze.active:
            acked, _pending, _offline, total = rollcall_counts(self.roll_call())
            frozen = tr(f"FRYS ● {acked}/{total} kvittert", f"FREEZE ● {acked}/{total} acked")
            if freeze.expires_at is not None:
                frozen += tr(
                    f" til {tr.time(freeze.expires_at)}", f" until {tr.time(freeze.expires_at)}"
                )
        else:
            frozen = tr("FRYS ○ av", "FREEZE ○ off")
        who = rt.identity.operator if rt.signed_in else tr("ikke innlogget", "not signed in")
        level = tr(f"nivå {st.incident.level}", f"level {st.incident.level}")
        if rt.exercise:
            level = tr(f"ØVELSE · {level}", f"EXERCISE · {level}")
        opened = st.incident.opened_at
        title = st.incident.title or tr("Ingen hendelse", "No incident")
        # Narrow terminals drop the extras first (who, the wall clock, the broker's kind):
        # the title keeps at least 24 characters, the state is always there.
        short_clock = tr.t_plus(opened, now).split(" ")[0]
        short_broker = f"MQTT {link}"
        candidates = [
            (f"  · {who}", tr.t_plus(opened, now), broker),
            ("", tr.t_plus(opened, now), broker),
            ("", short_clock, broker),
            ("", short_clock, short_broker),
        ]
        for extra, clock_text, broker_text in candidates:
            right = f" · {level} · {clock_text}  {broker_text}  {frozen}{extra}"
            if width - len(right) - 2 >= min(len(title), 24):
                break
        room = max(8, width - len(right) - 2)
        if len(title) > room:
            title = title[: room - 1] + "…"
        return f" {title}{right}"

    # --- the guard: no global keys while typing or deciding ------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """View keys are off while a dialog or the composer is open."""
        if action in GLOBAL_ACTIONS and isinstance(self.screen, Dialog | ComposeScreen):
            return False
        return not (action in GLOBAL_ACTIONS - {"help"} and not self.started)

    # --- views ---------------------------------------------------------------------------

    def action_view(self, name: str) -> None:
        if name in VIEWS and self.current_mode != name:
            self.switch_mode(name)
            self.mark_dirty()

    def action_help(self) -> None:
        tr = self.tr
        sections = [
            (tr("Overalt", "Everywhere"), binding_lines(self.BINDINGS, tr.lang)),
        ]
        for name, cls in VIEWS.items():
            sections.append((tr(*VIEW_NAMES[name]), binding_lines(cls.BINDINGS, tr.lang)))
        self.push_screen(HelpScreen(sections))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette: every action of the console, in its language."""
        tr = self.tr
        for name in VIEWS:
            title = tr(*VIEW_NAMES[name])
            yield SystemCommand(
                title,
                tr(f"Gå til {title.lower()}", f"Go to {title.lower()}"),
                lambda n=name: self.action_view(n),
            )
        yield SystemCommand(
            tr("Ny melding", "New message"),
            tr("Skriv en melding til alle kanaler", "Write a message to every channel"),
            self.action_new_message,
        )
        yield SystemCommand(
            tr("Frys eller opphev", "Freeze or lift"),
            tr(
                "Frys ansattes publisering, forleng eller opphev",
                "Freeze staff posting, extend or lift",
            ),
            self.action_freeze,
        )
        yield SystemCommand(
            tr("CAP-anmodning til politiet", "CAP request to the police"),
            tr(
                "Lag en CAP 1.2-anmodning fra publisert melding",
                "Draft a CAP 1.2 request from the published message",
            ),
            self.action_cap_request,
        )
        yield SystemCommand(
            tr("Situasjonsrapport", "Situation report"),
            tr(
                "Lagre situasjonsrapport (Markdown og HTML)",
                "Save a situation report (Markdown and HTML)",
            ),
            self.action_sitrep,
        )
        if isinstance(screen, ViewScreen):
            for b in screen.BINDINGS:
                if isinstance(b, Binding) and b.description:
                    action = b.action
                    yield SystemCommand(
                        f"{tr(*VIEW_NAMES[screen.VIEW])}: {binding_text(b.description, tr.lang)}",
                        tr(f"Tast {b.key}", f"Key {b.key}"),
                        lambda a=action, s=screen: s.run_action(a),
                    )
        yield SystemCommand(
            tr("Bytt tema", "Change theme"),
            tr("Mørkt, lyst, høy kontrast", "Dark, light, high contrast"),
            self.action_next_theme,
        )
        yield SystemCommand(tr("Hjelp", "Help"), tr("Alle taster", "Every key"), self.action_help)
        yield SystemCommand(
            tr("Avslutt", "Quit"),
            tr("Avslutt konsollen", "Quit the console"),
            self.action_request_quit,
        )

    def action_next_theme(self) -> None:
        current = THEMES.index(self.theme) if self.theme in THEMES else -1
        self.theme = THEMES[(current + 1) % len(THEMES)]
        self.notify(self.theme, title=self.tr("Tema", "Theme"))

    # --- messages ------------------------------------------------------------------------

    def action_new_message(self) -> None:
        self.new_message()

    def new_message(
        self,
        *,
        status: str = "published",
        supersedes: str | None = None,
        rumour_id: str | None = None,
    ) -> None:
        """Compose → approve (another person) → confirm → publish."""
        if self.runtime.org is None:
            self.notify(
                self.tr(
                    "Meldinger krever en org-fil med operatører som kan godkjenne (org_file).",
                    "Messages need an org file with operators who may approve (org_file).",
                ),
                severity="warning",
            )
            return

        def drafted(ready: DraftReady | None) -> None:
            if ready is not None:
                self.approve_draft(ready.draft_id)

        self.push_screen(
            ComposeScreen(status=status, supersedes=supersedes, rumour_id=rumour_id), drafted
        )

    def approve_draft(self, draft_id: str) -> None:
        """The other person approves ``draft_id``; then the publish confirmation."""

        def approved(result: ApprovalResult | None) -> None:
            if result is not None:
                self.confirm_publish(result.version_id)

        self.push_screen(ApproveScreen(draft_id), approved)

    def confirm_publish(self, version_id: str) -> None:
        """Ask, naming the version and the channels; then publish."""

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._publish_version(version_id)

        self.push_screen(
            ConfirmScreen(publish_question(self.runtime, version_id, self.tr)), confirmed
        )

    @work(name="publish-version", group="publish", exit_on_error=False)
    async def _publish_version(self, version_id: str) -> None:
        tr = self.tr
        problem = await publish(self.runtime, version_id)
        if problem is not None:
            self.notify(
                problem.text(tr.lang), title=tr("Ikke publisert", "Not published"), severity="error"
            )
        else:
            self.notify(
                tr(
                    f"Versjon {version_id[:8]} er sendt til alle kanaler.",
                    f"Version {version_id[:8]} is sent to every channel.",
                ),
                title=tr("Publisert", "Published"),
            )

    def action_cap_request(self) -> None:
        """Draft a CAP 1.2 warning request for the published version (to the police)."""
        from krise_tui.core.features.messages import published_as_exercise
        from krise_tui.exports.cap_request import CapExportError, cap_request

        rt, tr = self.runtime, self.tr
        if rt.org is None or rt.playbook is None:
            self.notify(
                tr(
                    "CAP-anmodning krever org-fil og dreiebok.",
                    "A CAP request needs an org file and a playbook.",
                ),
                severity="warning",
            )
            return
        now = rt.clock.now()
        try:
            # A drill's console (and a version a drill published) asks as an exercise.
            published = rt.state.messages.published_version
            drill = (
                rt.exercise
                or rt.state.incident.exercise
                or (published is not None and published_as_exercise(rt.state, published))
            )
            xml = cap_request(rt.state, org=rt.org, playbook=rt.playbook, sent=now, exercise=drill)
        except CapExportError as exc:
            self.notify(
                str(exc), title=tr("Ingen CAP-anmodning", "No CAP request"), severity="warning"
            )
            return

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._save_cap(xml, now.strftime("%Y%m%d-%H%M%S"))

        self.push_screen(
            ConfirmScreen(
                tr(
                    "Lagre en CAP 1.2-anmodning om varsel fra den publiserte meldingen?\n\n"
                    "Dette er en ANMODNING til politiet – bare politiet sender Nødvarsel.",
                    "Save a CAP 1.2 warning request from the published message?\n\n"
                    "This is a REQUEST to the police – only the police send Nødvarsel.",
                )
            ),
            confirmed,
        )

    @work(name="save-cap", group="exports", exit_on_error=False, thread=True)
    def _save_cap(self, xml: str, stamp: str) -> None:
        from krise_tui.files import atomic_write

        path = self.runtime.settings.data_dir / f"cap-anmodning-{stamp}.xml"
        atomic_write(path, xml.encode("utf-8"))
        self.call_from_thread(
            self.notify,
            self.tr(f"Lagret i {path}", f"Saved in {path}"),
            title=self.tr("CAP-anmodning til politiet", "CAP request to the police"),
            timeout=12,
        )

    def action_sitrep(self) -> None:
        """Save the situation report (Markdown and printable HTML) in the data directory."""
        from krise_tui.exports.sitrep import build_sitrep

        rt, tr = self.runtime, self.tr
        org = rt.org
        policy = rt.message_policy()
        now = rt.clock.now()
        report = build_sitrep(
            rt.state,
            org_name=org.name if org is not None else rt.settings.org_name,
            tz=org.timezone if org is not None else tr.tz,
            lang=tr.lang,
            now=now,
            roster=rt.roster,
            department_names={g.id: g.name for g in org.staff_groups} if org else None,
            operators={o.id: o.full_name for o in org.operators} if org else None,
            answer_deadline=policy.answer_deadline,
            correction_deadline=policy.correction_deadline,
            history=[e.event for e in self.journal_log.entries],
        )
        self._save_sitrep(report, now.strftime("%Y%m%d-%H%M%S"))

    @work(name="save-sitrep", group="exports", exit_on_error=False, thread=True)
    def _save_sitrep(self, report: Any, stamp: str) -> None:
        from krise_tui.exports.sitrep import render_html, render_markdown
        from krise_tui.files import atomic_write

        base = self.runtime.settings.data_dir / f"situasjonsrapport-{stamp}"
        md, html = base.with_suffix(".md"), base.with_suffix(".html")
        atomic_write(md, render_markdown(report).encode("utf-8"))
        atomic_write(html, render_html(report).encode("utf-8"))
        self.call_from_thread(
            self.notify,
            f"{md}\n{html}",
            title=self.tr("Situasjonsrapport lagret", "Situation report saved"),
            timeout=12,
        )

    # --- freeze --------------------------------------------------------------------------

    def action_freeze(self) -> None:
        tr = self.tr
        org = self.runtime.org
        departments = {g.id: g.name for g in org.staff_groups} if org is not None else {}

        def after(request: FreezeRequest | None) -> None:
            if request is None:
                return
            if request.action == "freeze":
                scope = ", ".join(departments.get(d, d) for d in request.departments) or tr(
                    "alle ansatte", "all staff"
                )
                question = tr(
                    f"Frys publisering for {scope}?\n\nGrunn: {request.reason}\n"
                    "Alle terminaler i omfanget får en signert frysmelding med gjeldende budskap.",
                    f"Freeze posting for {scope}?\n\nReason: {request.reason}\n"
                    "Every terminal in scope gets a signed freeze notice with the current message.",
                )
            elif request.action == "lift":
                question = tr(
                    f"Opphev frysen for alle terminaler?\n\nBegrunnelse: {request.reason}",
                    f"Lift the freeze for every terminal?\n\nReason: {request.reason}",
                )
            else:
                question = tr(
                    f"Forleng frysen til {request.minutes} minutter fra nå?",
                    f"Extend the freeze to {request.minutes} minutes from now?",
                )

            def confirmed(ok: bool | None) -> None:
                if ok:
                    self._apply_freeze(request)

            self.push_screen(ConfirmScreen(question), confirmed)

        self.push_screen(FreezeScreen(self.runtime.state.freeze.current, departments), after)

    @work(name="freeze", group="freeze", exit_on_error=False)
    async def _apply_freeze(self, request: FreezeRequest) -> None:
        tr = self.tr
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
            self.notify(
                decision.text(tr.lang), title=tr("Ikke utført", "Not done"), severity="error"
            )
        else:
            done = {
                "freeze": tr("Publisering er fryst.", "Posting is frozen."),
                "extend": tr("Frysen er forlenget.", "The freeze is extended."),
            }
            self.notify(
                done.get(request.action, tr("Frysen er opphevet.", "The freeze is lifted."))
            )

    # --- quitting ------------------------------------------------------------------------

    def pending_work(self) -> list[str]:
        """What would be left hanging by quitting now (empty: nothing)."""
        tr = self.tr
        msgs = self.runtime.state.messages
        out = []
        waiting = [
            d for d in msgs.ledger() if d.status in (DeliveryStatus.QUEUED, DeliveryStatus.HANDED)
        ]
        if waiting:
            out.append(
                tr(
                    f"{len(waiting)} leveranser er ikke bekreftet",
                    f"{len(waiting)} deliveries are not confirmed",
                )
            )
        drafts = [d for d in msgs.drafts.values() if d.approved_version is None]
        if drafts:
            out.append(
                tr(
                    f"{len(drafts)} utkast er ikke godkjent",
                    f"{len(drafts)} drafts are not approved",
                )
            )
        return out

    def action_request_quit(self) -> None:
        pending = self.pending_work() if self.started else []
        if not pending:
            self.exit()
            return
        tr = self.tr
        question = tr("Avslutte konsollen?\n\n", "Quit the console?\n\n") + "\n".join(
            f"  • {p}" for p in pending
        )
        question += tr(
            "\n\nUtkast og leveranser er journalført og fortsetter ved neste start.",
            "\n\nDrafts and deliveries are journaled and continue at the next start.",
        )
        self.push_screen(ConfirmScreen(question), lambda ok: self.exit() if ok else None)
