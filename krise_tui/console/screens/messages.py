"""Meldinger: write, approve (another person) and publish one message to every channel.

- :class:`MessagesScreen` (``m``): the versions, and the published one's delivery per
  channel — one row each, with attempts and the platform's reason; ``e`` re-sends a
  channel after a final failure (the same request: never a second post), ``u`` updates
  and ``t`` retracts the published version, ``c`` drafts a CAP request to the police.
- :class:`ComposeScreen` (``n``): one tab per language, from a playbook template or
  blank, the approval lint live beside it; ``ctrl+g`` hands it to a second person.
- :class:`ApproveScreen`: for the *other* person: the exact version id, every language,
  the lint, the channels, and their passphrase.
- Before publishing, the confirmation lists which channels will deliver and which
  cannot (no bridge, a missing secret) — nothing claims more than is known.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
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

from krise_tui.console.i18n import translate_bindings
from krise_tui.console.screens.base import Dialog, Localised, ViewScreen
from krise_tui.console.screens.dialogs import ConfirmScreen
from krise_tui.console.text import PlainTable, delivery_word
from krise_tui.core.features.messages import (
    DeliveryStatus,
    DraftVariant,
    PublishVersion,
    RetryDelivery,
    SaveDraft,
    lint_draft,
    version_id_for,
)
from krise_tui.core.features.rumours import LinkCorrection
from krise_tui.core.kernel import Accepted, Rejection
from krise_tui.rules.sms import sms_info
from krise_tui.runtime import ConsoleRuntime


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
    """A saved draft, ready for approval."""

    draft_id: str


@dataclass(frozen=True)
class ApprovalResult:
    """An approved version, ready to publish."""

    version_id: str


class ComposeScreen(Localised, Screen[DraftReady | None]):
    """Write a message: one tab per language, lint alongside."""

    BINDINGS = [
        Binding("ctrl+s", "save", "lagre utkast"),
        Binding("ctrl+g", "request_approval", "be om godkjenning"),
        Binding("escape", "cancel", "avbryt"),
    ]

    def __init__(
        self,
        *,
        status: str = "published",
        supersedes: str | None = None,
        rumour_id: str | None = None,
    ) -> None:
        super().__init__()
        self.draft_id: str | None = None
        self.status = status
        self.supersedes = supersedes
        self.rumour_id = rumour_id

    def compose(self) -> ComposeResult:
        rt, tr = self.rt, self.tr
        self.langs = languages(rt)
        policy = rt.message_policy()
        author = rt.operator
        if author in policy.operators:
            author = policy.operators[author].signature
        what = {
            "published": tr("Ny melding", "New message"),
            "updated": tr(
                f"Oppdatering av versjon {(self.supersedes or '')[:8]}",
                f"Update of version {(self.supersedes or '')[:8]}",
            ),
            "retracted": tr(
                f"Tilbaketrekking av versjon {(self.supersedes or '')[:8]}",
                f"Retraction of version {(self.supersedes or '')[:8]}",
            ),
        }[self.status]
        if self.rumour_id:
            what = tr(
                f"Korreksjon av rykte {self.rumour_id}", f"Correction of rumour {self.rumour_id}"
            )
        yield Static(
            f" {what} · {tr('forfatter', 'author')}: {author}", id="compose-title", markup=False
        )
        options = []
        if rt.playbook is not None:
            options = [(f"{t.id}: {t.purpose}"[:70], t.id) for t in rt.playbook.templates]
        yield Select(
            options,
            prompt=tr(
                "Mal fra dreieboka (eller skriv fritt)", "Playbook template (or write freely)"
            ),
            id="template",
        )
        with Horizontal(id="compose-body"):
            with TabbedContent(id="variants"):
                for lang in self.langs:
                    with TabPane(lang, id=f"tab-{lang}"):
                        yield Input(placeholder=tr("Overskrift", "Headline"), id=f"headline-{lang}")
                        yield TextArea(id=f"body-{lang}", soft_wrap=True)
                        if lang != "nb":
                            yield Checkbox(
                                tr("venter oversettelse", "awaiting translation"),
                                id=f"awaiting-{lang}",
                            )
            with VerticalScroll(id="lint-box"):
                yield Static("", id="lint", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        translate_bindings(self, self.tr.lang)
        self.query_one("#headline-nb", Input).focus()
        earlier = self.rt.state.messages.versions.get(self.supersedes or "")
        if earlier is not None:  # start from the text being updated or retracted
            for variant in earlier.variants:
                lang = str(variant["lang"])
                if lang in self.langs:
                    self.query_one(f"#headline-{lang}", Input).value = str(variant["headline"])
                    body = str(variant["body"])
                    if self.status == "retracted":
                        body = (
                            self.tr(
                                "Denne meldingen er trukket tilbake: ",
                                "This message is retracted: ",
                            )
                            + body
                        )
                    self.query_one(f"#body-{lang}", TextArea).text = body
        self._relint()

    def variants(self) -> tuple[DraftVariant, ...]:
        """The draft as written now."""
        out = []
        for lang in self.langs:
            awaiting = lang != "nb" and self.query_one(f"#awaiting-{lang}", Checkbox).value
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
        rt = self.rt
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
        tr = self.tr
        policy = self.rt.message_policy()
        variants = list(self.variants())
        lines = [tr("Kontroll:", "Checks:")]
        lines += [f"  {line}" for line in lint_draft(variants, policy).render(tr.lang)]
        nb = variants[0]
        if nb.headline or nb.body:
            sms = sms_info(f"{nb.headline}\n{nb.body}".strip())
            one = sms.segments == 1
            lines.append(
                tr(
                    f"\nsms  {sms.segments} SMS-{'del' if one else 'deler'} ({sms.encoding})"
                    f" · {sms.chars} tegn",
                    f"\nsms  {sms.segments} {'segment' if one else 'segments'} ({sms.encoding})"
                    f" · {sms.chars} characters",
                )
            )
        names = ", ".join(c.id for c in policy.ordered([c.id for c in policy.channels]))
        lines.append(tr(f"\nKanaler: {names}", f"\nChannels: {names}"))
        self.query_one("#lint", Static).update("\n".join(lines))

    async def _save(self) -> str | None:
        decision = await self.rt.save_draft(
            SaveDraft(
                self.variants(),
                draft_id=self.draft_id,
                status=self.status,
                supersedes=self.supersedes,
            )
        )
        if isinstance(decision, Rejection):
            self.notify(
                decision.text(self.tr.lang),
                title=self.tr("Ikke lagret", "Not saved"),
                severity="error",
            )
            return None
        if decision.events:
            self.draft_id = decision.events[0].draft_id  # type: ignore[attr-defined]
            if self.rumour_id and self.draft_id:
                await self.rt.submit(LinkCorrection(self.rumour_id, self.draft_id))
        return self.draft_id

    @work(name="save-draft", group="compose", exclusive=True, exit_on_error=False)
    async def action_save(self) -> None:
        if await self._save():
            self.notify(self.tr("Utkastet er lagret.", "The draft is saved."))

    @work(name="request-approval", group="compose", exclusive=True, exit_on_error=False)
    async def action_request_approval(self) -> None:
        draft_id = await self._save()
        if draft_id:
            self.dismiss(DraftReady(draft_id))

    def action_cancel(self) -> None:
        self.dismiss(None)


class ApproveScreen(Dialog):
    """Godkjenning: for the other person, with their passphrase."""

    BINDINGS = [Binding("escape", "cancel", "avbryt")]
    AUTO_FOCUS = "#approver"

    def __init__(self, draft_id: str) -> None:
        super().__init__()
        self.draft_id = draft_id

    def compose(self) -> ComposeResult:
        rt, tr = self.rt, self.tr
        draft = rt.state.messages.drafts[self.draft_id]
        self.variants = [DraftVariant.from_json(v) for v in draft.variants]
        preview = version_id_for(self.variants, status=draft.status, supersedes=draft.supersedes)
        policy = rt.message_policy()
        self.report = lint_draft(self.variants, policy)
        approvers = [(o.signature, oid) for oid, o in policy.operators.items() if o.may_approve]
        with VerticalScroll(id="approve-dialog", classes="dialog"):
            yield Label(
                tr(
                    f"Godkjenn versjon {preview[:8]} (forfatter: {draft.author})",
                    f"Approve version {preview[:8]} (author: {draft.author})",
                ),
                classes="dialog-title",
                markup=False,
            )
            for v in self.variants:
                if v.awaiting_translation or not v.body:
                    yield Static(
                        tr(f"[{v.lang}] venter oversettelse", f"[{v.lang}] awaiting translation"),
                        markup=False,
                    )
                else:
                    yield Static(f"[{v.lang}] {v.headline}\n{v.body}", markup=False)
            lint = self.report.render(tr.lang)
            yield Static(
                tr("Kontroll:\n", "Checks:\n") + "\n".join(f"  {line}" for line in lint),
                markup=False,
            )
            channels = ", ".join(draft.channels)
            yield Static(tr(f"Kanaler: {channels}", f"Channels: {channels}"), markup=False)
            yield Select(approvers, prompt=tr("Hvem godkjenner?", "Who approves?"), id="approver")
            yield Input(placeholder=tr("Passfrase", "Passphrase"), password=True, id="passphrase")
            for i, finding in enumerate(self.report.needs_reason):
                yield Input(
                    placeholder=tr("Begrunnelse for å overstyre: ", "Reason to override: ")
                    + finding.message(tr.lang),
                    id=f"override-{i}",
                )
            glass = Input(
                placeholder=tr(
                    "Du godkjenner din egen melding: begrunnelse (nødprosedyre)",
                    "You are approving your own message: reason (break-glass)",
                ),
                id="break-glass",
            )
            glass.display = False  # shown only when the author is chosen as approver
            self.author = draft.author
            yield glass
            with Horizontal(classes="dialog-buttons"):
                yield Button(tr("Godkjenn", "Approve"), id="approve", variant="primary")
                yield Button(tr("Avbryt (esc)", "Cancel (esc)"), id="cancel")

    @on(Select.Changed, "#approver")
    def _approver_chosen(self, event: Select.Changed) -> None:
        # The break-glass reason is asked for only when it applies: the author approving
        # their own message. Shown always, it caught a Tab from the approver list, and
        # the approver's passphrase was typed into it in clear text.
        glass = self.query_one("#break-glass", Input)
        glass.display = event.value == self.author
        if not glass.display:
            glass.value = ""
        self.query_one("#passphrase", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#approve")
    @on(Input.Submitted)
    def _approve_pressed(self) -> None:
        self._approve()

    @work(name="approve", group="approve", exclusive=True, exit_on_error=False)
    async def _approve(self) -> None:
        tr = self.tr
        approver = self.query_one("#approver", Select).value
        if not isinstance(approver, str):
            self.notify(tr("Velg hvem som godkjenner.", "Choose who approves."), severity="error")
            return
        overrides = []
        for i, finding in enumerate(self.report.needs_reason):
            reason = self.query_one(f"#override-{i}", Input).value.strip()
            overrides.append((finding.code, finding.language, reason))
        glass = self.query_one("#break-glass", Input).value.strip() or None
        passphrase = self.query_one("#passphrase", Input)
        if not passphrase.value:
            passphrase.focus()
            self.notify(tr("Skriv passfrasen.", "Type the passphrase."), severity="error")
            return
        decision = await self.rt.approve(
            self.draft_id,
            approver=approver,
            passphrase=passphrase.value,
            overrides=tuple(overrides),
            break_glass_reason=glass,
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
        assert isinstance(decision, Accepted)
        self.dismiss(ApprovalResult(str(decision.events[0].version_id)))  # type: ignore[attr-defined]


WAITING = frozenset({DeliveryStatus.QUEUED, DeliveryStatus.HANDED})
"""Delivery states that still wait for the channel's bridge to act."""


def publish_question(runtime: ConsoleRuntime, version_id: str, tr: object) -> str:
    """The confirmation before publishing: which channels will deliver, which cannot."""
    from krise_tui.console.i18n import Tr

    assert isinstance(tr, Tr)
    version = runtime.state.messages.versions[version_id]
    ready = {r.channel: r for r in runtime.readiness()}
    will, cannot = [], []
    for channel in version.channels:
        r = ready.get(channel)
        if r is None or r.ready:
            will.append(channel)
        else:
            cannot.append(f"  ✗ {channel}: {r.reason if tr.lang == 'nb' else r.reason_en}")
    lines = [
        tr(
            f"Publiser versjon {version_id[:8]} til {len(version.channels)} kanaler?",
            f"Publish version {version_id[:8]} to {len(version.channels)} channels?",
        ),
        "",
        tr(f"Leverer nå: {', '.join(will) or '–'}", f"Will deliver now: {', '.join(will) or '–'}"),
    ]
    if cannot:
        lines += [tr("Kan ikke levere nå:", "Cannot deliver now:"), *cannot]
    lines += [
        "",
        tr(
            "Nettsiden først, så alle andre samtidig.",
            "The website first, then all others at once.",
        ),
    ]
    return "\n".join(lines)


class MessagesScreen(ViewScreen):
    """The versions and the published one's delivery per channel."""

    VIEW = "messages"
    BINDINGS = [
        Binding("p", "publish", "publiser"),
        Binding("e", "retry", "send på nytt"),
        Binding("u", "update", "oppdater"),
        Binding("t", "retract", "trekk tilbake"),
        Binding("c", "cap_request", "CAP til politiet"),
    ]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="messages"):
            yield Static("", id="ledger-title", markup=False)
            yield PlainTable(id="deliveries", cursor_type="row")
            yield Static("", id="versions-title", markup=False)
            yield PlainTable(id="versions", cursor_type="row")

    def on_mount(self) -> None:
        tr = self.tr
        self.query_one("#deliveries", DataTable).add_columns(
            tr("kanal", "channel"), "status", tr("forsøk", "attempts"), tr("tid", "time")
        )
        self.query_one("#versions", DataTable).add_columns(
            tr("versjon", "version"),
            tr("status", "status"),
            tr("godkjent", "approved"),
            tr("tekst", "text"),
        )
        super().on_mount()

    def refresh_body(self) -> None:
        tr = self.tr
        state = self.rt.state
        msgs = state.messages
        version = msgs.versions.get(msgs.published_version or "")
        title = tr(
            "Ingen melding er publisert ennå. n: ny melding",
            "No message published yet. n: new message",
        )
        if version is not None:
            title = tr(
                f"Versjon {version.version_id[:8]} · godkjent av {version.approver} · "
                f"{len(version.channels)} kanaler",
                f"Version {version.version_id[:8]} · approved by {version.approver} · "
                f"{len(version.channels)} channels",
            )
        self.query_one("#ledger-title", Static).update(title)
        table = self.query_one("#deliveries", DataTable)
        cursor = table.cursor_row
        table.clear()
        blocked = {r.channel: r for r in self.rt.readiness() if not r.ready}
        for d in msgs.ledger():
            word = delivery_word(d, tr)
            why = blocked.get(d.channel)
            if why is not None and d.status in WAITING:
                # "overlevert" alone read as on its way; nothing takes it from the broker
                word += f" – {why.reason if tr.lang == 'nb' else why.reason_en}"
            table.add_row(
                d.channel,
                Text(word),
                str(d.attempts),
                tr.time(d.updated_at),
                key=d.effect_id,
            )
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))
        self.query_one("#versions-title", Static).update(
            tr(
                "Versjoner og utkast (p: publiser valgt godkjent versjon)",
                "Versions and drafts (p: publish the chosen approved version)",
            )
        )
        versions = self.query_one("#versions", DataTable)
        cursor = versions.cursor_row
        versions.clear()
        for v in sorted(msgs.versions.values(), key=lambda v: v.approved_at, reverse=True):
            nb = next((x for x in v.variants if x["lang"] == "nb"), v.variants[0])
            word = tr("publisert", "published") if v.published_at else tr("godkjent", "approved")
            versions.add_row(
                v.version_id[:8],
                word,
                tr.time(v.approved_at),
                Text(str(nb.get("headline", ""))),
                key=v.version_id,
            )
        for draft in msgs.drafts.values():
            if draft.approved_version is None:
                nb = next((x for x in draft.variants if x["lang"] == "nb"), draft.variants[0])
                versions.add_row(
                    "–",
                    tr("utkast", "draft"),
                    "–",
                    Text(str(nb.get("headline", ""))),
                    key=f"draft:{draft.draft_id}",
                )
        if versions.row_count:
            versions.move_cursor(row=min(cursor, versions.row_count - 1))

    def _selected(self, table_id: str) -> str | None:
        table = self.query_one(table_id, DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value)

    def action_publish(self) -> None:
        key = self._selected("#versions")
        if key is None:
            return
        if key.startswith("draft:"):
            self.app.approve_draft(key.removeprefix("draft:"))
            return
        if self.rt.state.messages.versions[key].published_at is not None:
            self.notify(self.tr("Allerede publisert.", "Already published."), severity="warning")
            return
        self.app.confirm_publish(key)

    @work(name="retry", group="messages", exit_on_error=False)
    async def action_retry(self) -> None:
        effect_id = self._selected("#deliveries")
        if effect_id is None:
            return
        decision = await self.rt.submit(RetryDelivery(effect_id))
        if isinstance(decision, Rejection):
            self.notify(decision.text(self.tr.lang), severity="warning")
        else:
            self.notify(
                self.tr(
                    "Sendes på nytt – bare til denne kanalen.", "Re-sent – to this channel only."
                )
            )

    def action_update(self) -> None:
        self._replace("updated")

    def action_retract(self) -> None:
        self._replace("retracted")

    def _replace(self, status: str) -> None:
        published = self.rt.state.messages.published_version
        if published is None:
            self.notify(
                self.tr("Ingen publisert melding å erstatte.", "No published message to replace."),
                severity="warning",
            )
            return
        self.app.new_message(status=status, supersedes=published)

    def action_cap_request(self) -> None:
        self.app.action_cap_request()


async def publish(runtime: ConsoleRuntime, version_id: str) -> Rejection | None:
    """Publish ``version_id``; the refusal, or None when it went out."""
    decision = await runtime.submit(PublishVersion(version_id))
    return decision if isinstance(decision, Rejection) else None


__all__ = [
    "ApprovalResult",
    "ApproveScreen",
    "ComposeScreen",
    "ConfirmScreen",
    "DraftReady",
    "MessagesScreen",
    "publish",
    "publish_question",
]
