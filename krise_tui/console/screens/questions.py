"""Spørsmål: batches by urgency, their questions, one shared answer per batch.

The left table lists batches by urgency (size × age against the answer deadline × how
surely the guideline says they must be answered), overdue first; the right one the
questions of the chosen batch with channel, author, label and answer state (or, on the
first row, the posts outside any batch: case processing, attacks, rumours, irrelevant).
Every post's label can be corrected with one key; texts from the public are shown with
control characters and terminal escapes removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Input,
    Label,
    Select,
    Sparkline,
    Static,
    TextArea,
)

from krise_tui.console.screens.base import Dialog, ViewScreen
from krise_tui.console.screens.dialogs import ChoiceScreen, ConfirmScreen, PromptScreen
from krise_tui.console.screens.overview import posts_per_minute
from krise_tui.console.screens.rumours import register_rumour
from krise_tui.console.text import PlainTable, one_line
from krise_tui.core.features.messages import DeliveryStatus, DraftVariant, lint_draft
from krise_tui.core.features.questions import (
    Batch,
    ForwardCaseProcessing,
    HidePost,
    PublishAnswer,
    Question,
    QuestionsSlice,
    RelabelPost,
    SaveAnswer,
    SetAutoAnswer,
    post_of,
)
from krise_tui.core.kernel import Accepted, Rejection
from krise_tui.core.state import IncidentState
from krise_tui.rules.triage import Label as TriageLabel
from krise_tui.rules.triage import label_text
from krise_tui.text.normalise import keyword_hits

SHOWN_BATCHES = 300
"""Batches listed at most (the most urgent; the summary line counts them all)."""

SHOWN_POSTS = 300
"""Posts of one batch listed at most (the newest)."""

HINT_POSTS = 50
"""Newest posts of a batch searched for an anticipated question's keywords."""

TITLE_MIN, TITLE_MAX = 16, 60
"""Bounds of the question column's width (the rest of the table decides within them)."""
SCROLLBAR = 2
"""Columns kept free for the table's vertical scrollbar."""

OUTSIDE = "__outside__"
"""The pseudo-batch of posts that are not questions to answer together."""


def urgency(state: IncidentState, batch: Batch, now: datetime) -> float:
    """Size × age × must-answer: what the team should look at first."""
    waiting = state.questions.unanswered(batch) if not batch.answered else []
    if not waiting:
        return 0.0
    oldest = min(post_of(state, q).received_at for q in waiting)
    age_h = max(0.05, (now - oldest).total_seconds() / 3600)
    must = 2.0 if any(q.must_answer for q in waiting) else 1.0
    return len(waiting) * age_h * must


class QuestionsScreen(ViewScreen):
    """Batches and their questions."""

    VIEW = "questions"
    BINDINGS = [
        Binding("a", "answer", "svar"),
        Binding("p", "send_answer", "send svaret"),
        Binding("g", "merge", "slå sammen"),
        Binding("v", "move", "flytt"),
        Binding("x", "split", "skill ut"),
        Binding("l", "relabel", "kategori"),
        Binding("h", "hide", "skjul"),
        Binding("k", "forward", "til postmottak"),
        Binding("t", "auto_answer", "automatisk svar"),
        Binding("i", "rumour", "rykte"),
    ]

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="q-top"):
            yield Static("", id="q-summary", markup=False)
            yield Sparkline([], id="q-spark")
        with Horizontal(id="q-tables"):
            yield PlainTable(id="batches", cursor_type="row")
            yield PlainTable(id="posts", cursor_type="row")

    def on_mount(self) -> None:
        tr = self.tr
        self.query_one("#batches", DataTable).add_columns(
            tr("spørsmål", "question"),
            tr("antall", "size"),
            tr("frist", "deadline"),
            tr("svar", "answer"),
            tr("gruppe", "batch"),
        )
        self.query_one("#posts", DataTable).add_columns(
            tr("kanal", "channel"),
            tr("fra", "from"),
            tr("kategori", "label"),
            tr("svar", "answer"),
            tr("tekst", "text"),
        )
        super().on_mount()

    _filling = False
    _summary = ""
    """The summary line as last drawn (the chosen batch's hint goes after it)."""
    _hint = ""

    def body_key(self) -> object:
        batching = self.rt.batching
        backlog = (batching.backlog, batching.error) if batching is not None else None
        return (super().body_key(), backlog)

    def refresh_body(self) -> None:
        self._filling = True
        try:
            self._refresh_tables()
        finally:
            self._filling = False

    def _refresh_tables(self) -> None:
        rt, tr = self.rt, self.tr
        state, now = rt.state, rt.clock.now()
        qs = state.questions
        backlog = rt.batching.backlog if rt.batching is not None else 0
        error = rt.batching.error if rt.batching is not None else None
        counts = posts_per_minute(state, now)
        groups = len(qs.open_batches())
        summary = tr(
            f"{len(qs.questions)} innlegg · {groups} grupper · {counts[-1]}/min",
            f"{len(qs.questions)} posts · {groups} batches · {counts[-1]}/min",
        )
        if groups > SHOWN_BATCHES:
            summary += tr(
                f" · de {SHOWN_BATCHES} mest hastende vises",
                f" · the {SHOWN_BATCHES} most urgent shown",
            )
        if backlog:
            summary += tr(
                f" · ⏳ {backlog} venter på gruppering", f" · ⏳ {backlog} waiting for batching"
            )
        if error:
            summary += tr(
                f" · ✗ gruppering virker ikke: {error}", f" · ✗ batching is down: {error}"
            )
        self._summary = summary
        self.query_one("#q-summary", Static).update(summary + self._hint)
        self.query_one("#q-spark", Sparkline).data = counts
        table = self.query_one("#batches", DataTable)
        selected = self.selected_batch()
        table.clear()
        outside = [q for q in qs.questions.values() if q.batch_id is None]
        table.add_row(
            tr("(innlegg utenfor grupper)", "(posts outside batches)"),
            str(len(outside)),
            "",
            "",
            "–",
            key=OUTSIDE,
        )
        deadline = rt.message_policy().answer_deadline
        ranked = sorted(qs.open_batches(), key=lambda b: -urgency(state, b, now))
        shown = ranked[:SHOWN_BATCHES]
        if selected in qs.batches and qs.batches[selected] not in shown:
            shown.append(qs.batches[selected])  # the one being worked on stays in view
        rows: list[tuple[str, str, str, str, str]] = []
        for batch in shown:
            waiting = qs.unanswered(batch)
            if batch.answered:
                answer = tr("✓ besvart", "✓ answered")
            elif batch.answer_id is None and any(
                a.batch_id == batch.batch_id and a.approved_at for a in qs.answers.values()
            ):
                answer = tr("… godkjent", "… approved")
            elif any(a.batch_id == batch.batch_id for a in qs.answers.values()):
                answer = tr("… utkast", "… draft")
            else:
                answer = tr("○ ubesvart", "○ unanswered")
            failed = sum(
                1 for k in batch.members if k in qs.questions and _failed(qs, qs.questions[k])
            )
            if failed:  # askers still without an answer: `p` sends it to them again
                answer += tr(f" · ✗ {failed} feilet (p)", f" · ✗ {failed} failed (p)")
            due = ""
            if waiting and not batch.answered:
                oldest = min(post_of(state, q).received_at for q in waiting)
                due = tr.due(oldest + deadline, now)
            rows.append((batch.title, str(len(batch.members)), due, answer, batch.batch_id))
        width = self._title_width(table, [row[1:] for row in rows])
        for title, *cells in rows:
            table.add_row(Text(one_line(title, width)), *cells, key=cells[-1])
        self._restore(table, selected)
        self._fill_posts()

    def _title_width(self, table: DataTable, rows: list[tuple[str, ...]]) -> int:
        """How wide the question column can be so that every other column shows whole.

        The other columns take what their longest cell (or header) needs; the question
        gets the rest, between :data:`TITLE_MIN` and :data:`TITLE_MAX` characters (at
        80 columns the batch ids were cut to one letter behind a 44-character title)."""
        headers = [str(column.label) for column in list(table.columns.values())[1:]]
        others = [
            max([cell_len(h), *(cell_len(row[i]) for row in rows)]) for i, h in enumerate(headers)
        ]
        pad = 2 * table.cell_padding * (len(others) + 1)
        available = (table.size.width or 80) - sum(others) - pad - SCROLLBAR
        return max(TITLE_MIN, min(TITLE_MAX, available))

    @staticmethod
    def _restore(table: DataTable, key: str | None) -> None:
        if key is None or table.row_count == 0:
            return
        try:
            table.move_cursor(row=table.get_row_index(key))
        except Exception:  # the row is gone (merged): stay where we are
            return

    def selected_batch(self) -> str | None:
        """The batch under the cursor (or the pseudo-batch of the rest)."""
        table = self.query_one("#batches", DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value)

    def selected_post(self) -> Question | None:
        """The post under the cursor in the right table."""
        table = self.query_one("#posts", DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return self.rt.state.questions.questions.get(str(row_key.value))

    @on(DataTable.RowHighlighted, "#batches")
    def _batch_changed(self) -> None:
        if not self._filling:  # a redraw fills the posts itself, once
            self._fill_posts()

    def anticipated_like(self, batch: Batch | None) -> list[tuple[Batch, list[str]]]:
        """The playbook's anticipated questions ``batch`` looks like by their keywords:
        each one's (open) seeded batch and the keywords its questions use."""
        playbook = self.rt.playbook
        if batch is None or batch.seed_question_id or playbook is None:
            return []
        qs = self.rt.state.questions
        # The newest members say enough (and a storm's batch of thousands stays quick).
        posts = self.rt.state.inbound.posts
        texts = [posts[k].text for k in batch.members[-HINT_POSTS:] if k in posts]
        seeded = {b.seed_question_id: b for b in qs.open_batches() if b.seed_question_id}
        like = []
        for question in playbook.questions:
            target = seeded.get(question.id)
            if target is None:
                continue
            keywords = [str(k) for k in question.keywords]
            hits = list(dict.fromkeys(h for t in texts for h in keyword_hits(t, keywords)))
            if hits:
                like.append((target, hits))
        return like

    def _hint_for(self, batch: Batch | None) -> str:
        like = self.anticipated_like(batch)
        if batch is None or not like:
            return ""
        target, hits = like[0]
        return self.tr(
            f" · {batch.batch_id} ligner «{one_line(target.title, 40)}» "
            f"({', '.join(hits[:3])}): g slår sammen",
            f" · {batch.batch_id} looks like «{one_line(target.title, 40)}» "
            f"({', '.join(hits[:3])}): g merges",
        )

    def _fill_posts(self) -> None:
        tr = self.tr
        qs = self.rt.state.questions
        inbound = self.rt.state.inbound.posts
        table = self.query_one("#posts", DataTable)
        current = self.selected_post()
        table.clear()
        key = self.selected_batch()
        self._hint = self._hint_for(qs.batches.get(key or ""))
        self.query_one("#q-summary", Static).update(self._summary + self._hint)
        if key == OUTSIDE:
            posts = sorted(
                (q for q in qs.questions.values() if q.batch_id is None),
                key=lambda q: inbound[q.key].received_at,
                reverse=True,
            )[:SHOWN_POSTS]
        elif key is not None and key in qs.batches:
            members = qs.batches[key].members[-SHOWN_POSTS:]  # the newest
            posts = [qs.questions[k] for k in members if k in qs.questions]
        else:
            posts = []
        for q in posts:
            replies = [qs.replies[e] for e in q.replies if e in qs.replies]
            if any(r.status is DeliveryStatus.DELIVERED for r in replies):
                state = tr("✓ svart", "✓ replied")
            elif _failed(qs, q):
                # Said as it is: not "sent". `p` on the batch sends it again.
                reason = replies[-1].reason
                why = f": {one_line(reason, 40)}" if reason else ""
                state = tr(f"✗ feilet{why}", f"✗ failed{why}")
            else:
                state = tr("… sendt", "… sent") if replies else ""
            if q.hidden:
                state = tr("skjult", "hidden")
            elif q.forwarded and _failed(qs, q):  # its standard reply: `k` sends it again
                state = tr("postmottak · ✗ svar feilet (k)", "post office · ✗ reply failed (k)")
            elif q.forwarded:
                state = tr("postmottak", "post office")
            label = label_text(TriageLabel(q.label), tr.lang) + (
                "*" if q.label_by != "triage" else ""
            )
            post = inbound[q.key]
            table.add_row(
                post.channel,
                Text(one_line(post.author or "", 16)),
                label,
                state,
                Text(one_line(post.text, 80)),
                key=q.key,
            )
        if current is not None:
            self._restore(table, current.key)

    # --- actions -----------------------------------------------------------------------

    def _batch_or_warn(self) -> Batch | None:
        key = self.selected_batch()
        batch = self.rt.state.questions.batches.get(key or "")
        if batch is None:
            self.notify(self.tr("Velg en gruppe.", "Pick a batch."), severity="warning")
        return batch

    def action_answer(self) -> None:
        batch = self._batch_or_warn()
        if batch is not None:
            self.app.push_screen(AnswerScreen(batch.batch_id), self._after_answer)

    def _after_answer(self, answer_id: str | None) -> None:
        if answer_id:
            self._confirm_send(answer_id)

    def action_send_answer(self) -> None:
        batch = self._batch_or_warn()
        if batch is None:
            return
        approved = [
            a
            for a in self.rt.state.questions.answers.values()
            if a.batch_id == batch.batch_id and a.approved_at is not None
        ]
        if not approved:
            self.notify(
                self.tr(
                    "Gruppen har ikke noe godkjent svar (a: svar).",
                    "The batch has no approved answer (a: answer).",
                ),
                severity="warning",
            )
            return
        self._confirm_send(max(approved, key=lambda a: a.approved_at or a.saved_at).answer_id)

    def _confirm_send(self, answer_id: str) -> None:
        tr = self.tr
        answer = self.rt.state.questions.answers[answer_id]
        batch = self.rt.state.questions.batches[answer.batch_id]
        waiting = len(self.rt.state.questions.unanswered(batch))
        failed = sum(
            1
            for r in self.rt.state.questions.replies.values()
            if r.answer_id == answer_id and r.status is DeliveryStatus.FAILED
        )
        question = tr(
            f"Send svaret til {waiting} spørre(re) i gruppe {batch.batch_id}, hver på sin kanal?",
            f"Send the answer to {waiting} asker(s) in batch {batch.batch_id}, "
            "each on their channel?",
        )
        if failed and not waiting:
            question = tr(
                f"Send svaret på nytt til {failed} spørre(re) i gruppe {batch.batch_id} "
                "der det feilet?",
                f"Send the answer again to the {failed} asker(s) in batch {batch.batch_id} "
                "it failed for?",
            )
        elif failed:
            question += tr(
                f" {failed} svar som feilet sendes på nytt.",
                f" {failed} failed repl{'y' if failed == 1 else 'ies'} will be sent again.",
            )

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._submit(
                    PublishAnswer(answer_id), tr("Svaret er sendt.", "The answer is sent.")
                )

        self.app.push_screen(ConfirmScreen(question), confirmed)

    @work(name="questions-action", group="questions", exit_on_error=False)
    async def _submit(self, command: object, done: str) -> None:
        decision = await self.rt.submit(command)
        if isinstance(decision, Rejection):
            self.notify(decision.text(self.tr.lang), severity="error")
        elif isinstance(decision, Accepted) and decision.events:
            self.notify(done)

    @work(name="questions-op", group="questions", exit_on_error=False)
    async def _operate(self, op: str, *args: str) -> None:
        batching = self.rt.batching
        if batching is None:
            return
        decision = await getattr(batching, op)(*args)
        if isinstance(decision, Rejection):
            self.notify(decision.text(self.tr.lang), severity="error")

    def _pick_batch(
        self, title: str, exclude: str | None, then: object, *, first: Sequence[str] = ()
    ) -> None:
        """Choose a batch; ``first`` (the anticipated questions it looks like) on top,
        marked ≈."""
        qs = self.rt.state.questions
        ranked = sorted(
            (b for b in qs.open_batches() if b.batch_id != exclude),
            key=lambda b: b.batch_id not in first,
        )
        choices = [
            (
                b.batch_id,
                ("≈ " if b.batch_id in first else "") + f"{b.batch_id}: {one_line(b.title, 60)}",
            )
            for b in ranked
        ]
        if not choices:
            self.notify(self.tr("Ingen andre grupper.", "No other batches."), severity="warning")
            return
        self.app.push_screen(ChoiceScreen(title, choices), then)

    def action_merge(self) -> None:
        batch = self._batch_or_warn()
        if batch is None:
            return

        qs = self.rt.state.questions

        def chosen(other: str | None) -> None:
            if not other:
                return
            # The playbook's anticipated question keeps its batch (its prepared answer,
            # its place on the website): merged into, never away.
            if qs.batches[other].seed_question_id and not batch.seed_question_id:
                self._operate("merge", other, batch.batch_id)
            else:
                self._operate("merge", batch.batch_id, other)

        self._pick_batch(
            self.tr(
                f"Slå sammen med {batch.batch_id}: hvilken gruppe?",
                f"Merge into {batch.batch_id}: which batch?",
            ),
            batch.batch_id,
            chosen,
            first=[b.batch_id for b, _ in self.anticipated_like(batch)],
        )

    def action_move(self) -> None:
        q = self.selected_post()
        if q is None:
            return

        def chosen(target: str | None) -> None:
            if target:
                self._operate("move", q.key, target)

        self._pick_batch(
            self.tr("Flytt spørsmålet til:", "Move the question to:"), q.batch_id, chosen
        )

    def action_split(self) -> None:
        q = self.selected_post()
        if q is None or q.batch_id is None:
            return
        existing = set(self.rt.state.questions.batches)
        n = len(existing) + 1
        while f"b{n}" in existing:
            n += 1
        self._operate("split", [q.key], f"b{n}")

    def action_relabel(self) -> None:
        q = self.selected_post()
        if q is None:
            return
        choices = [(str(label), label_text(label, self.tr.lang)) for label in TriageLabel]

        def chosen(label: str | None) -> None:
            if label:
                self._submit(
                    RelabelPost(q.key, label),
                    self.tr("Kategorien er endret.", "The label is corrected."),
                )

        self.app.push_screen(
            ChoiceScreen(self.tr("Riktig kategori:", "The right label:"), choices), chosen
        )

    def action_hide(self) -> None:
        q = self.selected_post()
        if q is None:
            return

        def reason(text: str | None) -> None:
            if text:
                self._submit(
                    HidePost(q.key, text),
                    self.tr(
                        "Innlegget er skjult (ikke slettet).", "The post is hidden (not deleted)."
                    ),
                )

        self.app.push_screen(
            PromptScreen(
                self.tr(
                    "Hvorfor skjules innlegget? (journalføres)", "Why hide the post? (journaled)"
                )
            ),
            reason,
        )

    def action_forward(self) -> None:
        q = self.selected_post()
        if q is not None:
            self._submit(
                ForwardCaseProcessing(q.key),
                self.tr(
                    "Standardsvar sendt; saken går til postmottak.",
                    "Standard reply sent; on to the post office.",
                ),
            )

    def action_rumour(self) -> None:
        """Register a rumour from the post under the cursor (it is its first sighting)."""
        q = self.selected_post()
        post = self.rt.state.inbound.posts.get(q.key) if q is not None else None
        if post is None:
            self.notify(self.tr("Velg et innlegg.", "Pick a post."), severity="warning")
            return
        register_rumour(self, self._submit, post)

    def action_auto_answer(self) -> None:
        batch = self._batch_or_warn()
        if batch is not None:
            on = not batch.auto_answer
            self._submit(
                SetAutoAnswer(batch.batch_id, on),
                self.tr(
                    f"Automatisk svar {'på' if on else 'av'}.",
                    f"Auto-answer {'on' if on else 'off'}.",
                ),
            )


class AnswerScreen(Dialog):
    """Write a batch's answer, then a second person approves it with their passphrase."""

    BINDINGS = [Binding("escape", "cancel", "avbryt")]
    AUTO_FOCUS = "#answer-nb"
    """The answer first; the public question is one Tab back (filled in when seeded)."""

    def __init__(self, batch_id: str) -> None:
        super().__init__()
        self.batch_id = batch_id
        self.answer_id: str | None = None

    def compose(self) -> ComposeResult:
        rt, tr = self.rt, self.tr
        batch = rt.state.questions.batches[self.batch_id]
        policy = rt.message_policy()
        langs = ["nb", *(lang for lang in policy.required_languages if lang != "nb")]
        if "en" not in langs:
            langs.append("en")
        self.langs = langs
        approvers = [(o.signature, oid) for oid, o in policy.operators.items() if o.may_approve]
        with Vertical(id="answer-dialog", classes="dialog"):
            yield Label(
                tr(
                    f"Svar til gruppe {batch.batch_id}: «{one_line(batch.title, 60)}»",
                    f"Answer to batch {batch.batch_id}: «{one_line(batch.title, 60)}»",
                ),
                classes="dialog-title",
                markup=False,
            )
            yield Label(
                tr(
                    "Spørsmålet slik det vises på nettsidens spørsmålsside (aldri en "
                    "spørrers egne ord eller navn; tomt = bare svar til spørrerne):",
                    "The question as the website's Q&A page shows it (never an asker's "
                    "own words or name; empty = reply to the askers only):",
                ),
                markup=False,
            )
            seeded = batch.title if batch.seed_question_id else ""
            yield Input(value=seeded, id="public-question")
            for lang in langs:
                yield Label(f"[{lang}]", markup=False)
                yield TextArea(batch.suggested.get(lang, ""), id=f"answer-{lang}", soft_wrap=True)
            yield Checkbox(
                tr(
                    "Foreløpig svar («vi svarer innen …»)",
                    'Preliminary answer ("we will answer by …")',
                ),
                id="preliminary",
            )
            yield Static("", id="answer-lint", markup=False)
            yield Select(approvers, prompt=tr("Hvem godkjenner?", "Who approves?"), id="approver")
            yield Input(placeholder=tr("Passfrase", "Passphrase"), password=True, id="passphrase")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    tr("Lagre og godkjenn", "Save and approve"), id="approve", variant="primary"
                )
                yield Button(tr("Avbryt (esc)", "Cancel (esc)"), id="cancel")

    def on_mount(self) -> None:
        super().on_mount()
        self._relint()

    def _variants(self) -> tuple[DraftVariant, ...]:
        public = self.query_one("#public-question", Input).value.strip()
        return tuple(
            DraftVariant(
                lang,
                public if lang == "nb" else "",
                self.query_one(f"#answer-{lang}", TextArea).text.strip(),
            )
            for lang in self.langs
            if self.query_one(f"#answer-{lang}", TextArea).text.strip()
        )

    @on(TextArea.Changed)
    @on(Input.Changed, "#public-question")
    def _relint(self) -> None:
        variants = list(self._variants()) or [DraftVariant("nb")]
        report = lint_draft(variants, self.rt.message_policy())
        lines = [
            f
            for f in report.render(self.tr.lang)
            if "headline" not in f.lower() and "overskrift" not in f.lower()
        ]
        self.query_one("#answer-lint", Static).update("\n".join(lines[:6]))

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Select.Changed, "#approver")
    def _approver_chosen(self) -> None:
        self.query_one("#passphrase", Input).focus()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#approve")
    @on(Input.Submitted, "#passphrase")
    def _go(self) -> None:
        self._save_and_approve()

    @work(name="answer", group="answer", exclusive=True, exit_on_error=False)
    async def _save_and_approve(self) -> None:
        tr = self.tr
        preliminary = self.query_one("#preliminary", Checkbox).value
        kind: Literal["final", "preliminary"] = "preliminary" if preliminary else "final"
        if self.answer_id is None:
            saved = await self.rt.submit(SaveAnswer(self.batch_id, self._variants(), kind))
            if isinstance(saved, Rejection):
                self.notify(saved.text(tr.lang), severity="error", timeout=10)
                return
            assert isinstance(saved, Accepted)
            self.answer_id = str(saved.events[0].answer_id)  # type: ignore[attr-defined]
        approver = self.query_one("#approver", Select).value
        if not isinstance(approver, str):
            self.notify(
                tr("Lagret. Velg hvem som godkjenner.", "Saved. Choose who approves."),
                severity="warning",
            )
            return
        passphrase = self.query_one("#passphrase", Input)
        if not passphrase.value:
            passphrase.focus()
            self.notify(
                tr("Lagret. Skriv passfrasen.", "Saved. Type the passphrase."), severity="error"
            )
            return
        decision = await self.rt.approve_answer(
            self.answer_id, approver=approver, passphrase=passphrase.value
        )
        passphrase.value = ""
        if isinstance(decision, Rejection):
            self.notify(
                decision.text(tr.lang),
                title=tr("Ikke godkjent", "Not approved"),
                severity="error",
                timeout=10,
            )
            return
        self.dismiss(self.answer_id)


def _failed(qs: QuestionsSlice, q: Question) -> bool:
    """Every reply to this asker failed for good (none delivered, none on its way)."""
    replies = [qs.replies[e] for e in q.replies if e in qs.replies]
    return bool(replies) and all(r.status is DeliveryStatus.FAILED for r in replies)
