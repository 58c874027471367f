"""Ansatte: the roll-call of the freeze notice, per department and by name.

Departments are shown by their names from the org file; each row counts acknowledged,
delivered but not acknowledged, and offline terminals. The lower table names everyone,
the ones who have not acknowledged first, with the time of their acknowledgement, since
when they have had the notice, or when they were last seen. ``p`` reminds those who
have not acknowledged (journaled), ``e`` exports the list as CSV.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from krise_tui.console.screens.base import ViewScreen
from krise_tui.console.text import PlainTable, rollcall_counts, staff_word
from krise_tui.core.features.freeze import RemindUnacknowledged
from krise_tui.core.kernel import Rejection
from krise_tui.core.rollcall import NO_DEPARTMENT, StaffStatus
from krise_tui.files import atomic_write

ORDER = {StaffStatus.PENDING: 0, StaffStatus.OFFLINE: 1, StaffStatus.ACKED: 2}


class StaffScreen(ViewScreen):
    """Opprop: who has acknowledged the freeze notice."""

    VIEW = "staff"
    BINDINGS = [
        Binding("p", "remind", "påminn"),
        Binding("e", "export", "eksporter"),
    ]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="rollcall"):
            yield Static("", id="rollcall-title", markup=False)
            yield PlainTable(id="departments", cursor_type="row")
            yield PlainTable(id="people", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        tr = self.tr
        self.query_one("#departments", DataTable).add_columns(
            tr("avdeling", "department"),
            tr("kvittert", "acked"),
            tr("ikke kvittert", "not acked"),
            tr("frakoblet", "offline"),
        )
        self.query_one("#people", DataTable).add_columns(
            tr("ansatt", "staff"), tr("avdeling", "department"), "status", tr("siden", "since")
        )
        super().on_mount()

    def department_names(self) -> dict[str, str]:
        """Department id -> its name in the UI's language (from the org file)."""
        org = self.rt.org
        names = {NO_DEPARTMENT: self.tr("(uten avdeling)", "(no department)")}
        return names if org is None else names | {g.id: g.name for g in org.staff_groups}

    def refresh_body(self) -> None:
        rt, tr = self.rt, self.tr
        rc = rt.roll_call()
        names = self.department_names()
        freeze = rt.state.freeze.current
        if freeze is None:
            title = tr("Ingen frys er sendt ennå (f: frys).", "No freeze sent yet (f: freeze).")
        elif not freeze.active:
            title = tr(
                f"Ingen aktiv frys. Oppropet gjelder frysmelding nr. {freeze.seq}.",
                f"No active freeze. The roll-call is for freeze notice no. {freeze.seq}.",
            )
        else:
            title = tr(
                f"Opprop for frysmelding nr. {freeze.seq}",
                f"Roll-call for freeze notice no. {freeze.seq}",
            )
            if freeze.expires_at is not None:
                title += tr(
                    f" · utløper {tr.time(freeze.expires_at)}",
                    f" · expires {tr.time(freeze.expires_at)}",
                )
        acked, pending, offline, total = rollcall_counts(rc)
        self.query_one("#rollcall-title", Static).update(
            f"{title}\n"
            + tr(
                f"kvittert {acked} / {total} · ikke ennå {pending} · frakoblet {offline}",
                f"acknowledged {acked} / {total} · not yet {pending} · offline {offline}",
            )
        )
        depts = self.query_one("#departments", DataTable)
        depts.clear()
        for d in rc.departments:
            depts.add_row(
                names.get(d.department, d.department),
                str(d.count(StaffStatus.ACKED)),
                str(d.count(StaffStatus.PENDING)),
                str(d.count(StaffStatus.OFFLINE)),
            )
        people = self.query_one("#people", DataTable)
        cursor = people.cursor_row
        people.clear()
        rows = [(d, r) for d in rc.departments for r in d.rows]
        rows.sort(key=lambda dr: (ORDER[dr[1].status], dr[1].staff_id))
        for d, row in rows[:5000]:
            word = staff_word(row.status, tr)
            if row.reminded_at is not None and row.status is not StaffStatus.ACKED:
                word += tr(" (påminnet)", " (reminded)")
            people.add_row(
                row.staff_id, names.get(d.department, d.department), word, tr.time(row.since)
            )
        if people.row_count:
            people.move_cursor(row=min(cursor, people.row_count - 1))

    @work(name="remind", group="staff", exit_on_error=False)
    async def action_remind(self) -> None:
        tr = self.tr
        ids = self.rt.unacknowledged()
        if not ids:
            self.notify(tr("Alle har kvittert.", "Everyone has acknowledged."))
            return
        decision = await self.rt.submit(RemindUnacknowledged(tuple(ids)))
        if isinstance(decision, Rejection):
            self.notify(decision.text(tr.lang), severity="error")
        else:
            self.notify(
                tr(
                    f"Påminnelse sendt til {len(ids)} terminaler.",
                    f"Reminder sent to {len(ids)} terminals.",
                )
            )

    @work(name="export-rollcall", group="staff", exit_on_error=False, thread=True)
    def action_export(self) -> None:
        rt, tr = self.rt, self.tr
        now = rt.clock.now()
        path = rt.settings.data_dir / f"opprop-{now:%Y%m%d-%H%M%S}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, rt.roll_call().to_csv().encode("utf-8"))
        self.app.call_from_thread(
            self.notify,
            tr(f"Oppropet er lagret i {path}", f"The roll-call is saved in {path}"),
            title=tr("Eksportert", "Exported"),
        )
