"""Compose, approve and follow one message to every channel (Textual screens).

- :class:`ComposeScreen`: a draft per language (from a playbook template or blank), the
  approval lint shown live beside it; ``ctrl+g`` asks for approval.
- :class:`ApproveScreen`: for the *other* person: the exact version id, every language,
  the lint, the channels; their passphrase; a reason for every finding that needs one
  (and for break-glass when approving alone).
- :class:`LedgerScreen`: per channel: queued / sent / delivered / failed with the
  platform's reason; ``r`` re-sends one channel (never a second post elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Footer,
    Input,
    Label,
    Select,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)

from krise_tui.core.features.messages import (
    Delivery,
    DeliveryStatus,
    DraftVariant,
    PublishVersion,
    RetryDelivery,
    SaveDraft,
    lint_draft,
    version_id_for,
)
from krise_tui.core.kernel import Accepted, Rejection
from krise_tui.rules.sms import sms_info
from krise_tui.runtime import ConsoleRuntime

STATUS_WORDS = {
    DeliveryStatus.QUEUED: "○ i kø",
    DeliveryStatus.HANDED: "… overlevert",
    DeliveryStatus.DELIVERED: "✓ levert",
    DeliveryStatus.FAILED: "✗ feilet",
    DeliveryStatus.NO_RECEIPT: "? ingen kvittering",
}


def delivery_word(delivery: Delivery) -> str:
    """``✓ levert``, ``✗ feilet: 503 Service Unavailable`` … (words first, colour never)."""
    word = STATUS_WORDS[delivery.status]
    if delivery.status is DeliveryStatus.FAILED and delivery.reason:
        word += f": {delivery.reason}"
    elif delivery.retrying and delivery.reason:
        word += f" – forsøk {delivery.attempts} feilet: {delivery.reason} (broen prøver igjen)"
    return word


def ledger_line(runtime: ConsoleRuntime) -> str:
    """One line: every channel of the published version with its status symbol."""
    parts = []
    for d in runtime.state.messages.ledger():
        symbol = STATUS_WORDS[d.status].split(" ", 1)[0]
        parts.append(f"{d.channel} {symbol}")
    return "  ".join(parts)


def languages(runtime: ConsoleRuntime) -> list[str]:
    """Languages to write: nb, then the org's required and recommended ones."""
    langs = ["nb"]
    if runtime.org is not None:
        for lang in [*runtime.org.required_languages, *runtime.org.recommended_languages]:
            if lang not in langs:
                langs.append(lang)
    return langs


@dataclass(frozen=True)
class DraftReady:
    """A saved draft the author wants approved."""

    draft_id: str


class ComposeScreen(Screen[DraftReady | None]):
    """Write a message: one tab per language, lint alongside."""

    BINDINGS = [
        Binding("ctrl+s", "save", "lagre utkast"),
        Binding("ctrl+g", "request_approval", "be om godkjenning"),
        Binding("escape", "cancel", "avbryt"),
    ]

    def __init__(
        self,
        runtime: ConsoleRuntime,
        *,
        status: str = "published",
        supersedes: str | None = None,
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self.langs = languages(runtime)
        self.draft_id: str | None = None
        self.status = status
        self.supersedes = supersedes

    def compose(self) -> ComposeResult:
        rt = self.runtime
        author = rt.operator
        policy = rt.message_policy()
        if policy is not None and author in policy.operators:
            author = policy.operators[author].signature
        what = {
            "published": "Ny melding",
            "updated": f"Oppdatering av versjon {(self.supersedes or '')[:8]}",
            "retracted": f"Tilbaketrekking av versjon {(self.supersedes or '')[:8]}",
        }[self.status]
        yield Static(f" {what} · forfatter: {author}", id="compose-title", markup=False)
        options = []
        if rt.playbook is not None:
            options = [(f"{t.id}: {t.purpose}"[:70], t.id) for t in rt.playbook.templates]
        yield Select(options, prompt="Mal fra drejeboka (eller skriv fritt)", id="template")
        with Horizontal(id="compose-body"):
            with TabbedContent(id="variants"):
                for lang in self.langs:
                    with TabPane(lang, id=f"tab-{lang}"):
                        yield Input(placeholder="Overskrift", id=f"headline-{lang}")
                        yield TextArea(id=f"body-{lang}", soft_wrap=True)
                        if lang != "nb":
                            yield Checkbox("venter oversettelse", id=f"awaiting-{lang}")
            with VerticalScroll(id="lint-box"):
                yield Static("", id="lint", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#headline-nb", Input).focus()
        earlier = self.runtime.state.messages.versions.get(self.supersedes or "")
        if earlier is not None:  # start from the text being updated or retracted
            for variant in earlier.variants:
                lang = str(variant["lang"])
                if lang in self.langs:
                    self.query_one(f"#headline-{lang}", Input).value = str(variant["headline"])
                    body = str(variant["body"])
                    if self.status == "retracted":
                        body = "Denne meldingen er trukket tilbake: " + body
                    self.query_one(f"#body-{lang}", TextArea).text = body
        self._relint()

    def variants(self) -> tuple[DraftVariant, ...]:
        """The draft as written now."""
        out = []
        for lang in self.langs:
            awaiting = False
            if lang != "nb":
                awaiting = self.query_one(f"#awaiting-{lang}", Checkbox).value
            out.append(
                DraftVariant(
                    lang,
                    self.query_one(f"#headline-{lang}", Input).value.strip(),
                    self.query_one(f"#body-{lang}", TextArea).text.strip(),
                    awaiting,
                )
            )
        return tuple(out)

    @on(Select.Changed, "#template")
    def _template_chosen(self, event: Select.Changed) -> None:
        rt = self.runtime
        if rt.playbook is None or not isinstance(event.value, str):
            return
        template = rt.playbook.template(event.value)
        values = rt.org.standard_values() if rt.org is not None else {}
        for lang in self.langs:
            text = template.text.get(lang)
            headline = body = ""
            awaiting = text is not None and text.status == "awaiting_translation"
            if text is not None and not awaiting:
                headline, body = text.headline or "", text.body or ""
                for name, value in values.items():  # the org's own values; others stay
                    headline = headline.replace(f"{{{name}}}", value)
                    body = body.replace(f"{{{name}}}", value)
            self.query_one(f"#headline-{lang}", Input).value = headline
            self.query_one(f"#body-{lang}", TextArea).text = body
            if lang != "nb":
                self.query_one(f"#awaiting-{lang}", Checkbox).value = awaiting or text is None
        self._relint()

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Checkbox.Changed)
    def _changed(self) -> None:
        self._relint()

    def _relint(self) -> None:
        policy = self.runtime.message_policy()
        variants = list(self.variants())
        lines = ["Kontroll:"]
        if policy is None:
            lines.append("  (ingen org-fil: bare enkel kontroll)")
        else:
            lines += [f"  {line}" for line in lint_draft(variants, policy).render("nb")]
        nb = variants[0]
        if nb.headline or nb.body:
            sms = sms_info(f"{nb.headline}\n{nb.body}".strip())
            lines.append(f"\nsms  {sms.segments} segmenter ({sms.encoding}) · {sms.chars} tegn")
        if policy is not None:
            names = ", ".join(c.id for c in policy.ordered([c.id for c in policy.channels]))
            lines.append(f"\nKanaler: {names}")
        self.query_one("#lint", Static).update("\n".join(lines))

    async def _save(self) -> str | None:
        decision = await self.runtime.save_draft(
            SaveDraft(
                self.variants(),
                draft_id=self.draft_id,
                status=self.status,
                supersedes=self.supersedes,
            )
        )
        if isinstance(decision, Rejection):
            self.notify(decision.reason, title="Ikke lagret", severity="error")
            return None
        if decision.events:
            self.draft_id = decision.events[0].draft_id  # type: ignore[attr-defined]
        return self.draft_id

    @work(name="save-draft", group="compose", exclusive=True, exit_on_error=False)
    async def action_save(self) -> None:
        if await self._save():
            self.notify("Utkastet er lagret.")

    @work(name="request-approval", group="compose", exclusive=True, exit_on_error=False)
    async def action_request_approval(self) -> None:
        draft_id = await self._save()
        if draft_id:
            self.dismiss(DraftReady(draft_id))

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class ApprovalResult:
    """An approved version, ready to publish."""

    version_id: str
    channels: int


class ApproveScreen(ModalScreen[ApprovalResult | None]):
    """Godkjenning: for the other person, with their passphrase."""

    BINDINGS = [Binding("escape", "cancel", "avbryt")]

    def __init__(self, runtime: ConsoleRuntime, draft_id: str) -> None:
        super().__init__()
        self.runtime = runtime
        self.draft_id = draft_id
        draft = runtime.state.messages.drafts[draft_id]
        self.variants = [DraftVariant.from_json(v) for v in draft.variants]
        self.version_preview = version_id_for(
            self.variants, status=draft.status, supersedes=draft.supersedes
        )
        policy = runtime.message_policy()
        self.report = lint_draft(self.variants, policy) if policy is not None else None
        self.approvers = (
            [(f"{o.signature}", oid) for oid, o in policy.operators.items() if o.may_approve]
            if policy is not None
            else []
        )
        self.author = draft.author

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="approve-dialog"):
            yield Label(
                f"Godkjenn versjon {self.version_preview[:8]} (forfatter: {self.author})",
                classes="dialog-title",
                markup=False,
            )
            for v in self.variants:
                if v.awaiting_translation or not v.body:
                    yield Static(f"[{v.lang}] venter oversettelse", markup=False)
                else:
                    yield Static(f"[{v.lang}] {v.headline}\n{v.body}", markup=False)
            lint = self.report.render("nb") if self.report is not None else ["(ingen kontroll)"]
            yield Static("Kontroll:\n" + "\n".join(f"  {line}" for line in lint), markup=False)
            yield Select(self.approvers, prompt="Hvem godkjenner?", id="approver")
            yield Input(placeholder="Passfrase", password=True, id="passphrase")
            if self.report is not None:
                for i, finding in enumerate(self.report.needs_reason):
                    yield Input(
                        placeholder=f"Begrunnelse for å overstyre: {finding.message('nb')}",
                        id=f"override-{i}",
                    )
            yield Input(
                placeholder="Bare hvis du godkjenner din egen melding: begrunnelse (nødprosedyre)",
                id="break-glass",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Godkjenn", id="approve", variant="primary")
                yield Button("Avbryt (esc)", id="cancel")

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#approve")
    @on(Input.Submitted, "#passphrase")
    def _approve_pressed(self) -> None:
        self._approve()

    @work(name="approve", group="approve", exclusive=True, exit_on_error=False)
    async def _approve(self) -> None:
        approver = self.query_one("#approver", Select).value
        if not isinstance(approver, str):
            self.notify("Velg hvem som godkjenner.", severity="error")
            return
        overrides = []
        if self.report is not None:
            for i, finding in enumerate(self.report.needs_reason):
                reason = self.query_one(f"#override-{i}", Input).value.strip()
                overrides.append((finding.code, finding.language, reason))
        glass = self.query_one("#break-glass", Input).value.strip() or None
        decision = await self.runtime.approve(
            self.draft_id,
            approver=approver,
            passphrase=self.query_one("#passphrase", Input).value,
            overrides=tuple(overrides),
            break_glass_reason=glass,
        )
        if isinstance(decision, Rejection):
            self.notify(decision.reason, title="Ikke godkjent", severity="error", timeout=10)
            return
        assert isinstance(decision, Accepted)
        event = decision.events[0]
        version_id = str(event.version_id)  # type: ignore[attr-defined]
        channels = len(self.runtime.state.messages.versions[version_id].channels)
        self.dismiss(ApprovalResult(version_id, channels))


class LedgerScreen(ModalScreen[None]):
    """Meldinger: the published version's delivery per channel."""

    BINDINGS = [
        Binding("escape,o", "close", "tilbake"),
        Binding("r", "retry", "send på nytt"),
        Binding("u", "update", "oppdater"),
        Binding("t", "retract", "trekk tilbake"),
    ]

    def __init__(self, runtime: ConsoleRuntime) -> None:
        super().__init__()
        self.runtime = runtime

    def compose(self) -> ComposeResult:
        with Vertical(id="ledger"):
            yield Static("", id="ledger-title", markup=False)
            yield DataTable(id="deliveries", cursor_type="row")
            yield Static(
                "r send valgt kanal på nytt · u oppdater meldingen · t trekk den tilbake · "
                "esc tilbake",
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one("#deliveries", DataTable).add_columns("kanal", "status", "forsøk", "tid")
        self.refresh_data()

    def refresh_data(self) -> None:
        state = self.runtime.state
        version = state.messages.versions.get(state.messages.published_version or "")
        title = "Ingen melding er publisert ennå."
        if version is not None:
            title = (
                f"Versjon {version.version_id[:8]} · godkjent av {version.approver} · "
                f"{len(version.channels)} kanaler"
            )
        self.query_one("#ledger-title", Static).update(title)
        table = self.query_one("#deliveries", DataTable)
        table.clear()
        for d in state.messages.ledger():
            when = f"{d.updated_at.astimezone():%H:%M:%S}" if d.updated_at else ""
            table.add_row(d.channel, Text(delivery_word(d)), str(d.attempts), when, key=d.effect_id)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_update(self) -> None:
        self._replace("updated")

    def action_retract(self) -> None:
        self._replace("retracted")

    def _replace(self, status: str) -> None:
        published = self.runtime.state.messages.published_version
        if published is None:
            self.notify("Ingen publisert melding å erstatte.", severity="warning")
            return
        self.dismiss(None)
        self.app.call_later(self.app.action_new_message, status, published)  # type: ignore[attr-defined]

    @work(name="retry", group="ledger", exit_on_error=False)
    async def action_retry(self) -> None:
        table = self.query_one("#deliveries", DataTable)
        if table.row_count == 0:
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        effect_id = str(row_key.value)
        decision = await self.runtime.submit(RetryDelivery(effect_id))
        if isinstance(decision, Rejection):
            self.notify(decision.reason, severity="warning")
        else:
            self.notify("Sendes på nytt – bare til denne kanalen.")


async def publish(runtime: ConsoleRuntime, version_id: str) -> str | None:
    """Publish ``version_id``; the rejection reason, or None when it went out."""
    decision = await runtime.submit(PublishVersion(version_id))
    return decision.reason if isinstance(decision, Rejection) else None
