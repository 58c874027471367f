"""Rykter: from sighting to published correction, and recurrences after it.

The left table lists the rumours, the most pressing first (spread in the last hour ×
age against the correction deadline; corrected and closed ones below), with a sparkline
of their sightings over the last three hours (quarter-hours: spreading or dying down)
and the correction that answers them; the right side shows where and when the chosen
rumour was seen (per channel, per hour) and the posts the matcher thinks might repeat
a known rumour (``b`` confirms one, it is then a sighting).
A rumour moves along its life with one key each: ``k`` being checked (by whom, with
whom), ``v`` a verdict with its source (the fact owner's, when the police or the rescue
centre own the facts), ``w`` writes the correction (an ordinary message: four eyes and
the lint apply), ``y`` replies to the spreading posts with the published correction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from krise_tui.console.screens.base import ViewScreen
from krise_tui.console.screens.dialogs import ChoiceScreen, PromptScreen
from krise_tui.console.text import PlainTable, one_line, sparkline
from krise_tui.core.features.inbound import Post
from krise_tui.core.features.rumours import (
    OWNER_WORDS,
    SETTLED,
    VERDICTS,
    AcknowledgeRecurrence,
    ChangeRumourState,
    FactOwner,
    RecordSighting,
    RegisterRumour,
    ReplyToSpreaders,
    Rumour,
    RumourState,
    state_text,
)
from krise_tui.core.kernel import Accepted, Rejection
from krise_tui.rules.triage import Label

MAYBE_PREFIX = "maybe:"
POST_PREFIX = "post:"
"""A rumour post no rumour holds yet (the right table): ``i`` registers one from it."""
SPARK_PERIOD = timedelta(minutes=15)
SPARK_PERIODS = 12
"""The table's sparkline: the last three hours in quarter-hours."""
UNTRACKED_SHOWN = 30
"""Rumour posts no rumour holds, newest first, listed for ``i``."""
HOURS_SHOWN = 6
"""The detail's count per hour: the last six hours."""


class RumoursScreen(ViewScreen):
    """Rumours and their sightings."""

    VIEW = "rumours"
    BINDINGS = [
        Binding("i", "register", "nytt rykte"),
        Binding("k", "checking", "sjekkes"),
        Binding("v", "verdict", "konklusjon"),
        Binding("w", "correction", "korreksjon"),
        Binding("y", "reply_spreaders", "svar spredere"),
        Binding("b", "confirm_maybe", "bekreft treff"),
        Binding("a", "ack_alert", "sett varsel"),
        Binding("l", "monitor", "følg med"),
        Binding("x", "close_rumour", "lukk"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="r-summary", markup=False)
        with Horizontal(id="r-tables"):
            yield PlainTable(id="rumours", cursor_type="row")
            with Vertical(id="r-right"):
                yield Static("", id="r-claim", markup=False)
                yield PlainTable(id="sightings", cursor_type="row")

    def on_mount(self) -> None:
        tr = self.tr
        self.query_one("#rumours", DataTable).add_columns(
            "id",
            tr("status", "state"),
            tr("frist", "deadline"),
            tr("sett", "seen"),
            tr("siste 3 t", "last 3 h"),
            tr("korreksjon", "correction"),
            tr("påstand", "claim"),
        )
        self.query_one("#sightings", DataTable).add_columns(
            tr("kanal", "channel"), tr("tid", "time"), tr("treff", "score"), tr("tekst", "text")
        )
        super().on_mount()

    # --- drawing ----------------------------------------------------------------------

    def body_key(self) -> object:
        m = self.rt.matching
        extra = (
            (len(m.maybes), m.maybes[-1] if m.maybes else None, m.backlog, m.error) if m else None
        )
        return (super().body_key(), extra)

    def refresh_body(self) -> None:
        rt, tr = self.rt, self.tr
        state, now = rt.state, rt.clock.now()
        rs = state.rumours
        matching = rt.matching
        summary = tr(
            f"{sum(r.open for r in rs.rumours.values())} åpne rykter av {len(rs.rumours)}",
            f"{sum(r.open for r in rs.rumours.values())} open rumours of {len(rs.rumours)}",
        )
        if rs.alerts:
            summary += tr(
                f" · ⚠ GJENTAR SEG etter korreksjon: {', '.join(rs.alerts)} (a: sett)",
                f" · ⚠ RECURRING after correction: {', '.join(rs.alerts)} (a: seen)",
            )
        if matching is not None and matching.backlog:
            summary += tr(
                f" · ⏳ {matching.backlog} venter på matching",
                f" · ⏳ {matching.backlog} waiting for matching",
            )
        if matching is not None and matching.error:
            summary += tr(
                f" · ✗ matching virker ikke: {matching.error}",
                f" · ✗ matching is down: {matching.error}",
            )
        self.query_one("#r-summary", Static).update(summary)
        table = self.query_one("#rumours", DataTable)
        selected = self.selected_rumour()
        table.clear()
        deadline = rt.message_policy().correction_deadline
        order = sorted(
            rs.rumours.values(),
            key=lambda r: (
                r.state is RumourState.CLOSED,
                r.state in SETTLED,
                -r.pressure(now, deadline),
                r.first_seen,
            ),
        )
        for r in order:
            table.add_row(
                r.rumour_id,
                state_text(r.state, tr.lang) + (" ⚠" if r.rumour_id in rs.alerts else ""),
                self._deadline(r, now),
                str(len(r.sightings)),
                sparkline(r.seen_per(now, SPARK_PERIOD, SPARK_PERIODS)),
                self._correction(r),
                Text(one_line(r.claim, 60)),
                key=r.rumour_id,
            )
        if selected is not None:
            try:
                table.move_cursor(row=table.get_row_index(selected))
            except Exception:  # the rumour is gone from view: stay where we are
                pass
        self._fill_right()

    def _correction(self, rumour: Rumour) -> str:
        if rumour.correction_version:
            return f"v{rumour.correction_version[:8]}"
        if rumour.correction_draft:
            return self.tr("utkast", "draft")
        return "–"

    def _deadline(self, rumour: Rumour, now: datetime) -> str:
        if rumour.state in SETTLED:
            # When it was corrected (a bare time under "frist" read as a deadline).
            return f"✓ {self.tr.time(rumour.corrected_at)}" if rumour.corrected_at else ""
        due = rumour.first_seen + self.rt.message_policy().correction_deadline
        return self.tr.due(due, now)

    def selected_rumour(self) -> str | None:
        """The rumour under the cursor."""
        table = self.query_one("#rumours", DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value)

    @on(DataTable.RowHighlighted, "#rumours")
    def _rumour_changed(self) -> None:
        self._fill_right()

    def _fill_right(self) -> None:
        tr, rt = self.tr, self.rt
        state = rt.state
        rumour = state.rumours.rumours.get(self.selected_rumour() or "")
        claim = self.query_one("#r-claim", Static)
        table = self.query_one("#sightings", DataTable)
        table.clear()
        if rumour is not None:
            owner_nb, owner_en = OWNER_WORDS[rumour.fact_owner]
            lines = [
                f"«{one_line(rumour.claim, 200)}»",
                tr(
                    f"Eier faktaene: {owner_nb} · {state_text(rumour.state, 'nb')}",
                    f"Owner of the facts: {owner_en} · {state_text(rumour.state, 'en')}",
                ),
            ]
            if rumour.checker:
                lines.append(
                    tr(f"Sjekkes av {rumour.checker}", f"Checked by {rumour.checker}")
                    + (f" ({rumour.checking_with})" if rumour.checking_with else "")
                )
            if rumour.verdict_source:
                lines.append(
                    tr(f"Kilde: {rumour.verdict_source}", f"Source: {rumour.verdict_source}")
                )
            if rumour.correction_version:
                lines.append(
                    tr(
                        f"Korrigert med versjon {rumour.correction_version[:8]}",
                        f"Corrected by version {rumour.correction_version[:8]}",
                    )
                )
            elif rumour.correction_draft:
                lines.append(
                    tr(
                        "Korreksjon skrevet – venter godkjenning (m)",
                        "Correction written – waiting for approval (m)",
                    )
                )
            if rumour.sightings:
                where = " · ".join(f"{channel} {n}" for channel, n in rumour.seen_on())
                lines.append(tr(f"Sett på: {where}", f"Seen on: {where}"))
                now = rt.clock.now()
                hours = rumour.seen_per(now, timedelta(hours=1), HOURS_SHOWN)
                starts = [now - timedelta(hours=HOURS_SHOWN - i) for i in range(HOURS_SHOWN)]
                per_hour = " · ".join(
                    f"{tr.time(start)}–{tr.time(start + timedelta(hours=1))}: {n}"
                    for start, n in zip(starts, hours, strict=True)
                    if n
                )
                lines.append(
                    tr(
                        f"Per time, siste {HOURS_SHOWN}: {per_hour or 'ingen'}",
                        f"Per hour, last {HOURS_SHOWN}: {per_hour or 'none'}",
                    )
                )
            claim.update("\n".join(lines))
            for s in rumour.sightings:
                post = state.inbound.posts.get(s.post_key)
                text = one_line(post.text, 80) if post is not None else s.post_key
                mark = tr(" (gjentakelse)", " (recurrence)") if s.recurrence else ""
                table.add_row(
                    s.channel,
                    tr.time(s.seen_at),
                    f"{s.score:.2f}{mark}",
                    Text(text),
                    key=s.post_key,
                )
        else:
            claim.update(
                tr(
                    "Ingen rykter ennå. i: nytt rykte (fra et innlegg under: tab, velg, i)",
                    "No rumours yet. i: new rumour (from a post below: tab, pick, i)",
                )
            )
        maybes = list(rt.matching.maybes) if rt.matching is not None else []
        for m in reversed(maybes[-50:]):
            post = state.inbound.posts.get(m.post_key)
            r = state.rumours.rumours.get(m.rumour_id)
            if post is None or r is None or any(s.post_key == m.post_key for s in r.sightings):
                continue
            table.add_row(
                post.channel,
                tr.time(post.received_at),
                tr(f"{m.score:.2f} mulig {m.rumour_id}?", f"{m.score:.2f} maybe {m.rumour_id}?"),
                Text(one_line(post.text, 80)),
                key=f"{MAYBE_PREFIX}{m.rumour_id}:{m.post_key}",
            )
        # Posts triaged as rumours that no rumour holds (nor may hold): `i` registers one.
        held = {s.post_key for r in state.rumours.rumours.values() for s in r.sightings}
        held |= {m.post_key for m in maybes}
        untracked = [
            q
            for q in state.questions.questions.values()
            if q.label == Label.RUMOUR and q.key not in held and q.key in state.inbound.posts
        ]
        posts = state.inbound.posts
        for q in sorted(untracked, key=lambda q: posts[q.key].received_at, reverse=True)[
            :UNTRACKED_SHOWN
        ]:
            post = state.inbound.posts[q.key]
            table.add_row(
                post.channel,
                tr.time(post.received_at),
                tr("rykte? (i)", "rumour? (i)"),
                Text(one_line(post.text, 80)),
                key=f"{POST_PREFIX}{q.key}",
            )

    # --- actions ----------------------------------------------------------------------

    def _rumour_or_warn(self) -> Rumour | None:
        r = self.rt.state.rumours.rumours.get(self.selected_rumour() or "")
        if r is None:
            self.notify(self.tr("Velg et rykte.", "Pick a rumour."), severity="warning")
        return r

    @work(name="rumours-action", group="rumours", exit_on_error=False)
    async def _submit(self, command: object, done: str) -> None:
        decision = await self.rt.submit(command)
        if isinstance(decision, Rejection):
            self.notify(decision.text(self.tr.lang), severity="error", timeout=10)
        elif isinstance(decision, Accepted) and decision.events:
            self.notify(done)

    def action_register(self) -> None:
        """A new rumour: from the rumour post under the cursor on the right (when that
        table has the focus), else by hand."""
        table = self.query_one("#sightings", DataTable)
        post = None
        if table.has_focus and table.row_count:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
            key = str(row_key.value)
            if key.startswith(POST_PREFIX):
                post = self.rt.state.inbound.posts.get(key.removeprefix(POST_PREFIX))
        register_rumour(self, self._submit, post)

    def action_checking(self) -> None:
        r = self._rumour_or_warn()
        if r is None:
            return
        tr = self.tr

        def with_checker(checker: str | None) -> None:
            if not checker:
                return

            def with_whom(whom: str | None) -> None:
                if whom is None:
                    return
                self._submit(
                    ChangeRumourState(
                        r.rumour_id,
                        RumourState.CHECKING,
                        checker=checker,
                        checking_with=whom or None,
                    ),
                    tr("Ryktet sjekkes.", "The rumour is being checked."),
                )

            self.app.push_screen(
                PromptScreen(
                    tr(
                        "Med hvem? (etat eller person; tomt = ingen)",
                        "With whom? (agency or person; empty = none)",
                    )
                ),
                with_whom,
            )

        self.app.push_screen(
            PromptScreen(tr("Hvem sjekker?", "Who checks?"), value=self.rt.operator), with_checker
        )

    def action_verdict(self) -> None:
        r = self._rumour_or_warn()
        if r is None:
            return
        tr = self.tr
        choices = [
            (str(v), state_text(v, tr.lang))
            for v in (RumourState.FALSE, RumourState.TRUE, RumourState.UNCONFIRMABLE)
        ]

        def with_verdict(verdict: str | None) -> None:
            if not verdict:
                return

            def with_source(source: str | None) -> None:
                if source:
                    self._submit(
                        ChangeRumourState(r.rumour_id, verdict, source=source),
                        tr("Konklusjonen er journalført.", "The verdict is journaled."),
                    )

            owner_nb, owner_en = OWNER_WORDS[r.fact_owner]
            self.app.push_screen(
                PromptScreen(
                    tr(
                        f"Kilde (hvem bekreftet det? faktaene eies av {owner_nb})",
                        f"Source (who confirmed it? the facts are owned by {owner_en})",
                    )
                ),
                with_source,
            )

        self.app.push_screen(ChoiceScreen(tr("Konklusjon:", "Verdict:"), choices), with_verdict)

    def action_correction(self) -> None:
        r = self._rumour_or_warn()
        if r is None:
            return
        if r.state not in VERDICTS:
            self.notify(
                self.tr(
                    "Sjekk ryktet først (k, v): bare kjente fakta publiseres.",
                    "Check the rumour first (k, v): only known facts are published.",
                ),
                severity="warning",
            )
            return
        self.app.new_message(rumour_id=r.rumour_id)

    def action_reply_spreaders(self) -> None:
        r = self._rumour_or_warn()
        if r is not None:
            self._submit(
                ReplyToSpreaders(r.rumour_id),
                self.tr(
                    "Korreksjonen er sendt som svar til spredere.",
                    "The correction is sent as replies to spreaders.",
                ),
            )

    def action_confirm_maybe(self) -> None:
        table = self.query_one("#sightings", DataTable)
        if table.row_count == 0:
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        key = str(row_key.value)
        if not key.startswith(MAYBE_PREFIX):
            self.notify(
                self.tr(
                    "Velg et mulig treff (merket «mulig»).",
                    "Pick a possible match (marked «maybe»).",
                ),
                severity="warning",
            )
            return
        rumour_id, post_key = key.removeprefix(MAYBE_PREFIX).split(":", 1)
        self._submit(
            RecordSighting(rumour_id, post_key),
            self.tr("Treffet er registrert.", "The sighting is recorded."),
        )

    def action_ack_alert(self) -> None:
        r = self._rumour_or_warn()
        if r is not None:
            self._submit(
                AcknowledgeRecurrence(r.rumour_id), self.tr("Varselet er sett.", "Alert seen.")
            )

    def action_monitor(self) -> None:
        r = self._rumour_or_warn()
        if r is not None:
            self._submit(
                ChangeRumourState(r.rumour_id, RumourState.MONITORING),
                self.tr("Ryktet følges med.", "The rumour is monitored."),
            )

    def action_close_rumour(self) -> None:
        r = self._rumour_or_warn()
        if r is not None:
            self._submit(
                ChangeRumourState(r.rumour_id, RumourState.CLOSED),
                self.tr("Ryktet er lukket.", "The rumour is closed."),
            )


def register_rumour(
    screen: ViewScreen, submit: Callable[[object, str], object], post: Post | None = None
) -> None:
    """Ask for the claim (in the operator's words; from a post, its text to start from)
    and who owns the facts, then register the rumour (with the post as its first
    sighting: where and when it was first seen)."""
    tr = screen.tr
    owners = [(str(o), tr(*OWNER_WORDS[o])) for o in FactOwner]
    posts = (post.key,) if post is not None else ()

    def with_claim(claim: str | None) -> None:
        if not claim or not claim.strip():
            return

        def with_owner(owner: str | None) -> None:
            if owner:
                submit(
                    RegisterRumour(claim, owner, posts),
                    tr("Ryktet er registrert.", "The rumour is registered."),
                )

        screen.app.push_screen(
            ChoiceScreen(tr("Hvem eier faktaene?", "Who owns the facts?"), owners), with_owner
        )

    if post is None:
        title = tr("Hva påstås? (med egne ord)", "What is claimed? (in your words)")
    else:
        seen = f"{post.channel} {tr.time(post.received_at)}"
        title = tr(
            f"Hva påstås? (med egne ord; innlegget på {seen} lenkes som første treff)",
            f"What is claimed? (in your words; the post on {seen} is linked as first seen)",
        )
    value = one_line(post.text, 300) if post is not None else ""
    screen.app.push_screen(PromptScreen(title, value=value), with_claim)
