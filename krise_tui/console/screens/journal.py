"""Logg: the journal, live, searchable, filterable by type and actor; Enter opens an event.

The console keeps the newest :data:`KEPT` events in memory (loaded from the journal at
start, appended as they are journaled); the whole journal is always available with
``krise journal show`` and ``krise journal verify``. Search matches the description, the
type and the actor, case-insensitively; filters combine.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Label, Static

from krise_tui.console.screens.base import Dialog, ViewScreen
from krise_tui.console.screens.dialogs import ChoiceScreen, PromptScreen
from krise_tui.console.text import PlainTable
from krise_tui.core.describe import describe
from krise_tui.core.kernel import EventBase

KEPT = 20_000
"""Events the console keeps in memory for the journal view."""

SHOWN = 2_000
"""Rows the journal table shows at most (the newest that match)."""


@dataclass(frozen=True)
class Entry:
    """One journaled event as the journal view shows it."""

    seq: int
    event: EventBase
    nb: str
    en: str

    @property
    def type(self) -> str:
        """The event's type (``message.published``)."""
        return str(getattr(self.event, "type", type(self.event).__name__))

    def text(self, lang: str) -> str:
        """The description in ``lang``."""
        return self.en if lang == "en" else self.nb

    def matches(self, needle: str) -> bool:
        """Whether ``needle`` (casefolded) is in the description, type or actor."""
        return (
            needle in self.nb.casefold()
            or needle in self.en.casefold()
            or needle in self.type
            or needle in self.event.actor.casefold()
        )


class JournalLog:
    """The newest events, in order, for the journal view."""

    def __init__(self, kept: int = KEPT) -> None:
        self.entries: deque[Entry] = deque(maxlen=kept)
        self.version = 0
        """Bumped on every change (views redraw only when it moved)."""

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest entry (0 when empty)."""
        return self.entries[-1].seq if self.entries else 0

    def add(self, seq: int, event: EventBase) -> None:
        """Append one event (ignored when already there: loaded at start)."""
        if seq <= self.last_seq:
            return
        self.entries.append(Entry(seq, event, describe(event, "nb"), describe(event, "en")))
        self.version += 1


class EventScreen(Dialog):
    """One event in full: every field as journaled."""

    BINDINGS = [Binding("escape,enter", "close", "tilbake")]

    def __init__(self, entry: Entry) -> None:
        super().__init__()
        self.entry = entry

    def compose(self) -> ComposeResult:
        e = self.entry
        body = json.dumps(e.event.model_dump(mode="json"), ensure_ascii=False, indent=2)
        with VerticalScroll(id="event-dialog", classes="dialog"):
            yield Label(f"#{e.seq} · {e.type}", classes="dialog-title", markup=False)
            yield Static(e.text(self.tr.lang), markup=False)
            yield Static(body, markup=False, id="event-body")

    def action_close(self) -> None:
        self.dismiss(None)


class JournalScreen(ViewScreen):
    """The journal, newest last."""

    VIEW = "journal"
    BINDINGS = [
        Binding("slash", "search", "søk"),
        Binding("t", "filter_type", "type"),
        Binding("a", "filter_actor", "aktør"),
        Binding("x", "clear_filters", "nullstill"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.needle = ""
        self.type_filter: str | None = None
        self.actor_filter: str | None = None
        self._drawn: tuple[int, str, str | None, str | None] = (-1, "", None, None)

    def compose_body(self) -> ComposeResult:
        yield Static("", id="journal-filters", markup=False)
        yield PlainTable(id="journal", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        tr = self.tr
        self.query_one("#journal", DataTable).add_columns(
            "#", tr("tid", "time"), tr("hvem", "who"), tr("hva", "what")
        )
        super().on_mount()
        self.query_one("#journal", DataTable).focus()

    @property
    def journal_log(self) -> JournalLog:
        """The app's in-memory journal."""
        return self.app.journal_log

    def shown(self) -> list[Entry]:
        """The entries that pass the search and the filters (newest :data:`SHOWN`)."""
        needle = self.needle.casefold()
        out: list[Entry] = []
        for entry in reversed(self.journal_log.entries):
            if self.type_filter and entry.type != self.type_filter:
                continue
            if self.actor_filter and entry.event.actor != self.actor_filter:
                continue
            if needle and not entry.matches(needle):
                continue
            out.append(entry)
            if len(out) >= SHOWN:
                break
        out.reverse()
        return out

    def refresh_body(self) -> None:
        tr = self.tr
        key = (self.journal_log.version, self.needle, self.type_filter, self.actor_filter)
        if key == self._drawn:
            return
        self._drawn = key
        parts = []
        if self.needle:
            parts.append(tr(f"søk «{self.needle}»", f"search «{self.needle}»"))
        if self.type_filter:
            parts.append(f"type {self.type_filter}")
        if self.actor_filter:
            parts.append(tr(f"aktør {self.actor_filter}", f"actor {self.actor_filter}"))
        rows = self.shown()
        head = tr(
            f"{len(rows)} hendelser vist · / søk · t type · a aktør · x nullstill · Enter åpne",
            f"{len(rows)} events shown · / search · t type · a actor · x clear · Enter open",
        )
        self.query_one("#journal-filters", Static).update(
            head + (" · " + ", ".join(parts) if parts else "")
        )
        table = self.query_one("#journal", DataTable)
        at_end = table.row_count == 0 or table.cursor_row >= table.row_count - 1
        cursor = table.cursor_row
        table.clear()
        for e in rows:
            table.add_row(
                str(e.seq),
                tr.time(e.event.ts),
                e.event.actor,
                Text(e.text(tr.lang)),
                key=str(e.seq),
            )
        if table.row_count:
            table.move_cursor(
                row=table.row_count - 1 if at_end else min(cursor, table.row_count - 1)
            )

    @on(DataTable.RowSelected, "#journal")
    def _open(self, event: DataTable.RowSelected) -> None:
        seq = int(str(event.row_key.value))
        entry = next((e for e in self.journal_log.entries if e.seq == seq), None)
        if entry is not None:
            self.app.push_screen(EventScreen(entry))

    def action_search(self) -> None:
        def done(text: str | None) -> None:
            if text is not None:
                self.needle = text.strip()
                self.refresh_body()

        self.app.push_screen(
            PromptScreen(self.tr("Søk i loggen:", "Search the journal:"), value=self.needle), done
        )

    def _pick(self, title: str, values: list[str], then: object) -> None:
        if not values:
            return
        self.app.push_screen(ChoiceScreen(title, [(v, v) for v in values]), then)

    def action_filter_type(self) -> None:
        def done(value: str | None) -> None:
            if value:
                self.type_filter = value
                self.refresh_body()

        types = sorted({e.type for e in self.journal_log.entries})
        self._pick(self.tr("Vis bare typen:", "Show only the type:"), types, done)

    def action_filter_actor(self) -> None:
        def done(value: str | None) -> None:
            if value:
                self.actor_filter = value
                self.refresh_body()

        actors = sorted({e.event.actor for e in self.journal_log.entries})
        self._pick(self.tr("Vis bare aktøren:", "Show only the actor:"), actors, done)

    def action_clear_filters(self) -> None:
        self.needle, self.type_filter, self.actor_filter = "", None, None
        self.refresh_body()
