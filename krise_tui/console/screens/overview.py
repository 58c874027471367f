"""Oversikt: the whole incident at one glance (80×24 must work; wider shows more).

The current approved message and its delivery per channel; deadlines (first message,
overdue question batches, rumours past their correction deadline, the next update);
the freeze and its roll-call; inbound posts per minute; the playbook's checklist with
what is due now. Status is said in words and symbols, colour is only a second cue.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from krise_tui.console.screens.base import ViewScreen
from krise_tui.console.screens.dialogs import ChoiceScreen
from krise_tui.console.text import delivery_symbol, one_line, rollcall_counts
from krise_tui.core.features.incident import MarkChecklistItem
from krise_tui.core.features.questions import post_of
from krise_tui.core.features.rumours import RumourState
from krise_tui.core.kernel import Rejection
from krise_tui.core.state import IncidentState


def posts_per_minute(state: IncidentState, now: datetime, minutes: int = 30) -> list[int]:
    """Inbound posts per minute over the last ``minutes`` minutes (oldest first)."""
    counts = [0] * minutes
    start = now - timedelta(minutes=minutes)
    for post in reversed(list(state.inbound.posts.values())):
        if post.received_at < start:
            break  # posts are kept in arrival order: the rest are older
        index = int((post.received_at - start).total_seconds() // 60)
        if 0 <= index < minutes:
            counts[index] += 1
    return counts


MIN_CLAIM = 12
"""A rumour's deadline names its claim when this many characters fit, else its id."""


class OverviewScreen(ViewScreen):
    """The one-glance view."""

    VIEW = "overview"
    BINDINGS = [Binding("d", "checklist_done", "ferdig")]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="ov-message", markup=False)
        with Horizontal(id="ov-columns"):
            yield Static("", id="ov-deadlines", classes="ov-col", markup=False)
            yield Static("", id="ov-staff", classes="ov-col", markup=False)
            with Vertical(classes="ov-col", id="ov-right"):
                yield Static("", id="ov-inbound", markup=False)
                yield Sparkline([], id="ov-spark")
        yield Static("", id="ov-checklist", markup=False)

    def body_key(self) -> object:
        batching = self.rt.batching
        return (super().body_key(), batching.backlog if batching is not None else None)

    def refresh_body(self) -> None:
        rt, tr = self.rt, self.tr
        state = rt.state
        now = rt.clock.now()
        self.query_one("#ov-message", Static).update(self._message(state))
        self.query_one("#ov-deadlines", Static).update(self._deadlines(state, now))
        self.query_one("#ov-staff", Static).update(self._staff(state))
        counts = posts_per_minute(state, now)
        backlog = rt.batching.backlog if rt.batching is not None else 0
        batches = [b for b in state.questions.open_batches() if b.members]
        open_rumours = [r for r in state.rumours.rumours.values() if r.open]
        inbound = [
            tr("Innkommende (30 min)", "Inbound (30 min)"),
            tr(
                f"  {counts[-1]} / min nå · {sum(counts)} i alt",
                f"  {counts[-1]} / min now · {sum(counts)} in all",
            ),
            tr(f"  spørsmål i {len(batches)} grupper", f"  questions in {len(batches)} batches"),
            tr(f"  rykter: {len(open_rumours)} åpne", f"  rumours: {len(open_rumours)} open"),
        ]
        if backlog:
            inbound.append(
                tr(f"  ⏳ {backlog} venter på gruppering", f"  ⏳ {backlog} waiting for batching")
            )
        self.query_one("#ov-inbound", Static).update("\n".join(inbound))
        self.query_one("#ov-spark", Sparkline).data = counts
        self.query_one("#ov-checklist", Static).update(self._checklist(state, now))

    def _message(self, state: IncidentState) -> str:
        tr = self.tr
        msgs = state.messages
        version = msgs.versions.get(msgs.published_version or "")
        if version is None:
            drafts = [d for d in msgs.drafts.values() if d.approved_version is None]
            waiting = (
                tr(
                    f" ({len(drafts)} utkast venter på godkjenning)",
                    f" ({len(drafts)} draft(s) waiting for approval)",
                )
                if drafts
                else ""
            )
            return (
                tr(
                    "Ingen godkjent melding er publisert ennå.",
                    "No approved message published yet.",
                )
                + waiting
            )
        nb = next((v for v in version.variants if v["lang"] == "nb"), version.variants[0])
        text = " ".join(f"{nb.get('headline', '')} – {nb.get('body', '')}".split())
        width = max(40, (self.size.width or 80) - 8)
        if len(text) > width:
            text = text[: width - 1] + "…"
        ledger = "  ".join(
            f"{d.channel} {delivery_symbol(d, tr)}" for d in msgs.ledger(version.version_id)
        )
        lines = [
            tr(
                f"Gjeldende budskap v{version.version_id[:8]} "
                f"(godkjent {tr.time(version.approved_at)} av {version.approver})",
                f"Current message v{version.version_id[:8]} "
                f"(approved {tr.time(version.approved_at)} by {version.approver})",
            ),
            f"  «{text}»",
            f"  {ledger}",
        ]
        if version.break_glass_reason:
            lines.append(
                tr(
                    "  ⚠ NØDPROSEDYRE: godkjent av forfatteren alene – "
                    + version.break_glass_reason,
                    "  ⚠ BREAK-GLASS: approved by its author alone – " + version.break_glass_reason,
                )
            )
        return "\n".join(lines)

    def _deadlines(self, state: IncidentState, now: datetime) -> str:
        tr, rt = self.tr, self.rt
        width = self.query_one("#ov-deadlines", Static).content_size.width
        policy = rt.message_policy()
        lines = [tr("Frister", "Deadlines")]
        opened = state.incident.opened_at
        playbook = rt.playbook
        first = min(
            (v.published_at for v in state.messages.versions.values() if v.published_at),
            default=None,
        )
        if opened is not None and playbook is not None:
            if first is not None:
                lines.append(
                    tr(
                        f"  ✓ første melding {tr.t_plus(opened, first).split()[0]}",
                        f" ✓ first message {tr.t_plus(opened, first).split()[0]}",
                    )
                )
            else:
                due = opened + playbook.deadlines.first_message
                mark = "✗" if due < now else "!"
                lines.append(f" {mark} {tr('første melding', 'first message')} {tr.due(due, now)}")
        overdue, soonest = 0, None
        for batch in state.questions.open_batches():
            waiting = state.questions.unanswered(batch)
            if not waiting or batch.answered:
                continue
            due = min(post_of(state, q).received_at for q in waiting) + policy.answer_deadline
            overdue += due < now
            soonest = due if soonest is None or due < soonest else soonest
        if soonest is not None:
            mark = "✗" if overdue else "!"
            lines.append(
                f" {mark} {tr('svar', 'answer')} {tr.due(soonest, now)}"
                + (tr(f" ({overdue} forsinket)", f" ({overdue} overdue)") if overdue else "")
            )
        for r in state.rumours.rumours.values():
            if r.state in (RumourState.CORRECTED, RumourState.MONITORING, RumourState.CLOSED):
                continue
            due = r.first_seen + policy.correction_deadline
            mark = "✗" if due < now else "!"
            # Its words where the column has room for some (an id like r1 says little at
            # 03:00); at 80 columns the id, on one line.
            head, tail = f" {mark} {tr('rykte', 'rumour')} ", f" {tr.due(due, now)}"
            room = width - len(head) - len(tail) - 2
            name = f"«{one_line(r.claim, room)}»" if room >= MIN_CLAIM else r.rumour_id
            lines.append(f"{head}{name}{tail}")
        if playbook is not None and first is not None:
            last = max(v.published_at for v in state.messages.versions.values() if v.published_at)
            due = last + playbook.deadlines.update_cadence
            line = f" · {tr('neste oppdatering', 'next update')} {tr.due(due, now)}"
            if width and len(line) > width:  # one line at 80 columns
                line = f" · {tr('oppdatering', 'update')} {tr.due(due, now)}"
            lines.append(line)
        if len(lines) == 1:
            lines.append(tr(" ingen frister nå", " no deadlines now"))
        return "\n".join(lines)

    def _staff(self, state: IncidentState) -> str:
        tr = self.tr
        freeze = state.freeze.current
        if freeze is None or not freeze.active:
            return tr("Ansatte\n  ○ ikke fryst", "Staff\n  ○ not frozen")
        acked, pending, offline, total = rollcall_counts(self.rt.roll_call())
        lines = [
            tr(f"Ansatte (frys nr. {freeze.seq})", f"Staff (freeze no. {freeze.seq})"),
            tr(f"  kvittert   {acked} / {total}", f"  acked      {acked} / {total}"),
            tr(f"  ikke ennå  {pending}", f"  not yet    {pending}"),
            tr(f"  frakoblet  {offline}", f"  offline    {offline}"),
        ]
        if freeze.expires_at is not None:
            lines.append(
                tr(
                    f"  utløper {tr.time(freeze.expires_at)}",
                    f"  expires {tr.time(freeze.expires_at)}",
                )
            )
        return "\n".join(lines)

    def due_checklist(self, state: IncidentState, now: datetime) -> list[tuple[str, str, bool]]:
        """``(item id, text, due now)`` for the items not done, in order."""
        playbook, opened = self.rt.playbook, state.incident.opened_at
        if playbook is None or opened is None:
            return []
        out = []
        for item in playbook.checklist_in_order():
            if item.id in state.incident.checklist_done:
                continue
            text = item.text.get(self.tr.lang) or item.text.get("nb") or item.id
            out.append((item.id, f"T+{_hm(item.offset)} {text}", opened + item.offset <= now))
        return out

    def _checklist(self, state: IncidentState, now: datetime) -> str:
        tr = self.tr
        items = self.due_checklist(state, now)
        if not items:
            return (
                tr("Sjekkliste: alt er gjort.", "Checklist: all done.") if self.rt.playbook else ""
            )
        width = max(40, (self.size.width or 80) - 4)
        now_word = tr("NÅ", "NOW")
        shown = [
            one_line(f"☐ {now_word + ' ' if due else ''}{text}", width)
            for _, text, due in items[:4]
        ]
        return tr("Sjekkliste (d: ferdig)", "Checklist (d: done)") + "\n  " + "\n  ".join(shown)

    def action_checklist_done(self) -> None:
        items = self.due_checklist(self.rt.state, self.rt.clock.now())
        if not items:
            return
        self.app.push_screen(
            ChoiceScreen(self.tr("Hva er gjort?", "What is done?"), [(i, t) for i, t, _ in items]),
            self._mark,
        )

    @work(name="checklist", group="overview", exit_on_error=False)
    async def _mark(self, item_id: str | None) -> None:
        if not item_id:
            return
        decision = await self.rt.submit(MarkChecklistItem(item_id))
        if isinstance(decision, Rejection):
            self.notify(decision.text(self.tr.lang), severity="error")


def _hm(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
