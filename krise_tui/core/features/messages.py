"""One approved message to every channel: drafts, four-eyes approval, publishing, ledger.

The flow is ``SaveDraft`` → ``ApproveDraft`` (a second person, identified by the runtime
with their passphrase; lint blocks and overrides checked here) → ``PublishVersion`` (one
outbox entry per channel, the website first, each carrying the same approved version;
the staff channel is the signed, retained current message, and the freeze notice
carries it too) → receipts from the bridges fold into one ledger row per channel.

This is the only way anything reaches the public or the staff as the municipality's
message: there is no command that publishes text that was not approved and linted.

Delivery states (one row per channel): ``queued`` (journaled, not yet with the broker)
→ ``handed`` (the broker has it for the bridge, or the bridge is trying) → ``delivered``
/ ``failed`` (final: the bridge gave up, with the platform's reason) / ``no_receipt``
(no final word within the playbook's deadline). ``RetryDelivery`` re-sends one channel
after a final failure: the very same signed request, which the bridge reconciles with
the platform before posting, so nothing is posted twice.

The version id is SHA-256 over every language variant plus the status (published /
updated / retracted) and the version it supersedes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError

from krise_tui.core.features.freeze import FreezeAction, freeze_events
from krise_tui.core.features.outbox import (
    OutboxAttemptFailed,
    OutboxConfirmed,
    OutboxRequested,
    OutboxRequeued,
    Requests,
    Target,
)
from krise_tui.core.ids import canonical_json
from krise_tui.core.kernel import (
    Accepted,
    BusEvent,
    BusSource,
    Context,
    Decision,
    EventBase,
    Rejection,
)
from krise_tui.core.policy import STAFF_KIND, MessagePolicy
from krise_tui.core.registry import Feature
from krise_tui.rules.idnumbers import find_id_numbers
from krise_tui.rules.lint import (
    LintFinding,
    LintReport,
    MessageVariant,
    Override,
    Severity,
    lint_message,
)
from krise_tui.rules.sms import sms_info
from krise_tui.wire.delivery import DELIVER_TYPE, DeliveryRequest, Receipt, ReceiptStatus
from krise_tui.wire.message import ApprovedMessage, MessageStatus
from krise_tui.wire.message import MessageVariant as WireVariant
from krise_tui.wire.safejson import validate_strict
from krise_tui.wire.staff import MESSAGE_TYPE
from krise_tui.wire.staff import CurrentMessage as CurrentMessageBody

if TYPE_CHECKING:
    from krise_tui.core.state import IncidentState

feature = Feature("messages")

STATUSES = ("published", "updated", "retracted")
MAX_MESSAGE_CHARS = 20_000
POST_LIMITS = {"mastodon": 500}
"""Characters per post on channels with a hard limit (SMS is counted in segments)."""


@dataclass(frozen=True)
class DraftVariant:
    """One language of a draft."""

    lang: str
    headline: str = ""
    body: str = ""
    awaiting_translation: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "lang": self.lang,
            "headline": self.headline,
            "body": self.body,
            "awaiting_translation": self.awaiting_translation,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DraftVariant:
        """Parse :meth:`to_json`."""
        return cls(
            str(data["lang"]),
            str(data.get("headline", "")),
            str(data.get("body", "")),
            bool(data.get("awaiting_translation", False)),
        )

    @property
    def text(self) -> str:
        """Headline and body as one text (staff terminals)."""
        return f"{self.headline}\n{self.body}".strip()


def version_id_for(
    variants: list[DraftVariant], *, status: str = "published", supersedes: str | None = None
) -> str:
    """SHA-256 over the variants, the status and what it supersedes."""
    payload = {
        "variants": [
            {"lang": v.lang, "headline": v.headline, "body": v.body} for v in variants if v.body
        ],
        "status": status,
        "supersedes": supersedes,
    }
    return hashlib.sha256(canonical_json(payload)).hexdigest()


# --- lint ----------------------------------------------------------------------------

ExtraCheck = Callable[[str, Any], list[LintFinding]]


def sms_check(max_segments: int) -> ExtraCheck:
    """An extra lint check: SMS text (headline + link) within ``max_segments``."""

    def check(lang: str, variant: Any) -> list[LintFinding]:
        text = f"{variant.headline}\n{variant.body}".strip()
        info = sms_info(text)
        if info.segments <= max_segments:
            return []
        return [
            LintFinding(
                severity=Severity.WARNING,
                code="sms-length",
                language=lang,
                message_nb=(
                    f"for lang for SMS: {info.segments} SMS-deler ({info.encoding}), "
                    f"høyst {max_segments} – SMS-kanalen sender overskrift og lenke"
                ),
                message_en=(
                    f"too long for SMS: {info.segments} segments ({info.encoding}), at most "
                    f"{max_segments} – the SMS channel sends the headline and the link"
                ),
            )
        ]

    return check


def post_limit_check(policy: MessagePolicy) -> ExtraCheck:
    """An extra lint check: text longer than a chosen channel's post limit is shortened."""
    limited = [(c.id, POST_LIMITS[c.kind]) for c in policy.channels if c.kind in POST_LIMITS]

    def check(lang: str, variant: Any) -> list[LintFinding]:
        if lang != "nb":
            return []  # social posts carry one language, bokmål by default
        # headline, body, the version marker ("ref. v…", which lets a re-send find the
        # post), the website link and a signature line, as the channel renders it
        length = len(f"{variant.headline}\n\n{variant.body}\n\n{policy.website_url}\n") + 60
        return [
            LintFinding(
                severity=Severity.WARNING,
                code="post-length",
                language=lang,
                message_nb=(
                    f"{channel}: ca. {length} av {limit} tegn – teksten forkortes, "
                    "lenken og signaturen beholdes"
                ),
                message_en=(
                    f"{channel}: about {length} of {limit} characters – the text is shortened, "
                    "the link and signature kept"
                ),
            )
            for channel, limit in limited
            if length > limit
        ]

    return check


def lint_draft(variants: list[DraftVariant], policy: MessagePolicy) -> LintReport:
    """The approval lint for a draft under ``policy``."""
    return lint_message(
        {
            v.lang: MessageVariant(
                headline=v.headline, body=v.body, awaiting_translation=v.awaiting_translation
            )
            for v in variants
        },
        required_languages=list(policy.required_languages),
        allowed_phones=policy.allowed_phones,
        allowed_emails=policy.allowed_emails,
        website_url=policy.website_url,
        extra_checks=[sms_check(policy.sms_max_segments), post_limit_check(policy)],
    )


def missing_overrides(report: LintReport, overrides: Mapping[tuple[str, str], str]) -> list[str]:
    """Findings that need a written reason and have none (``code [lang]``)."""
    return [
        f"{f.code} [{f.language}]"
        for f in report.needs_reason
        if not overrides.get((f.code, f.language), "").strip()
    ]


@dataclass(frozen=True)
class ApprovalCheck:
    """The outcome of checking an approval (pure)."""

    ok: bool
    reason: str = ""
    reason_nb: str = ""
    break_glass: bool = False
    report: LintReport | None = None

    def rejection(self) -> Rejection:
        """The refusal as a :class:`Rejection`."""
        return Rejection(self.reason, self.reason_nb)


def check_approval(
    *,
    author: str,
    approver: str,
    variants: list[DraftVariant],
    policy: MessagePolicy,
    overrides: Mapping[tuple[str, str], str],
    break_glass_reason: str | None,
    headlines: bool = True,
) -> ApprovalCheck:
    """Four eyes, roles, headlines (unless ``headlines`` is false: answers have none),
    lint blocks and overrides."""
    if not policy.operators:
        return ApprovalCheck(
            False,
            "approval needs an org file with operators",
            "godkjenning krever en org-fil med operatører",
        )
    operator = policy.operators.get(approver)
    if operator is None:
        return ApprovalCheck(
            False,
            f"{approver!r} is not an operator in the org file",
            f"{approver!r} er ikke operatør i org-fila",
        )
    if not operator.may_approve:
        return ApprovalCheck(
            False,
            f"{operator.signature} may not approve messages",
            f"{operator.signature} kan ikke godkjenne meldinger",
        )
    break_glass = False
    if approver == author:
        if not policy.break_glass_allowed:
            return ApprovalCheck(
                False,
                "four eyes: the approver must be another person than the author",
                "fire øyne: den som godkjenner må være en annen enn forfatteren",
            )
        if not (break_glass_reason or "").strip():
            return ApprovalCheck(
                False,
                "approving your own message (break-glass) needs a written reason",
                "å godkjenne egen melding (nødprosedyre) krever en skriftlig begrunnelse",
            )
        break_glass = True
    if not any(v.lang == "nb" and v.body.strip() for v in variants):
        return ApprovalCheck(
            False, "the message needs a bokmål (nb) text", "meldingen må ha en tekst på bokmål"
        )
    for v in variants if headlines else ():
        if v.body.strip() and (not v.headline.strip() or "\n" in v.headline.strip()):
            return ApprovalCheck(
                False,
                f"the {v.lang} text needs a headline of one line",
                f"teksten på {v.lang} trenger en overskrift på én linje",
            )
    report = lint_draft(variants, policy)
    hard = [f for f in report.blocks if f.override is Override.NOT_ALLOWED]
    if hard:
        return ApprovalCheck(
            False,
            "blocked: " + "; ".join(f.message("en") for f in hard),
            "stoppet: " + "; ".join(f.message("nb") for f in hard),
            report=report,
        )
    missing = missing_overrides(report, overrides)
    if missing:
        names = ", ".join(missing)
        return ApprovalCheck(
            False,
            f"an override with a reason is needed for: {names}",
            f"overstyring med begrunnelse trengs for: {names}",
            report=report,
        )
    return ApprovalCheck(True, break_glass=break_glass, report=report)


def approved_message(
    *,
    version_id: str,
    variants: list[DraftVariant],
    signature: str,
    policy: MessagePolicy,
    published_at: datetime,
    status: str,
    supersedes: str | None,
) -> ApprovedMessage:
    """The message as every channel carries it (the wire model)."""
    written = [v for v in variants if v.body.strip()]
    written.sort(key=lambda v: 0 if v.lang == "nb" else 1)
    return ApprovedMessage(
        version_id=version_id,
        org_name=policy.org_name,
        website_url=policy.website_url,
        variants=tuple(
            WireVariant(lang=v.lang, headline=" ".join(v.headline.split()), body=v.body)
            for v in written
        ),
        signature=signature,
        published_at=published_at,
        status=MessageStatus(status),
        supersedes=supersedes,
        exercise=policy.exercise,
    )


# --- state ---------------------------------------------------------------------------


class DeliveryStatus(StrEnum):
    """One channel's delivery of one version (a ledger row)."""

    QUEUED = "queued"
    """Journaled; the broker has not taken it yet."""
    HANDED = "handed"
    """The broker has it for the channel's bridge, or the bridge is trying."""
    DELIVERED = "delivered"
    """The platform accepted it."""
    FAILED = "failed"
    """Final: the bridge gave up (the platform's reason); only a re-send can help."""
    NO_RECEIPT = "no_receipt"
    """No final word from the bridge within the playbook's deadline."""


FINAL_FAILURES = frozenset({DeliveryStatus.FAILED, DeliveryStatus.NO_RECEIPT})


@dataclass
class Delivery:
    """A ledger row: version × channel."""

    effect_id: str
    version_id: str
    channel: str
    requested_at: datetime
    staff: bool = False
    """The staff channel: the retained current message (delivered on PUBACK)."""
    status: DeliveryStatus = DeliveryStatus.QUEUED
    reason: str | None = None
    """The final failure's reason, or the newest failed attempt's while retrying."""
    retrying: bool = False
    """The bridge reported a failed attempt and will try again."""
    remote_id: str | None = None
    attempts: int = 0
    resends: int = 0
    """Times an operator asked for a re-send."""
    updated_at: datetime | None = None


@dataclass
class Draft:
    """A message being written."""

    draft_id: str
    author: str
    variants: list[dict[str, Any]]
    channels: list[str]
    saved_at: datetime
    template_id: str | None = None
    status: str = "published"
    supersedes: str | None = None
    approved_version: str | None = None


@dataclass
class Version:
    """An approved, immutable message version."""

    version_id: str
    draft_id: str
    author: str
    approver: str
    variants: list[dict[str, Any]]
    channels: list[str]
    signature: str
    approved_at: datetime
    status: str = "published"
    supersedes: str | None = None
    break_glass_reason: str | None = None
    published_at: datetime | None = None

    @property
    def draft_variants(self) -> list[DraftVariant]:
        """The variants as :class:`DraftVariant`."""
        return [DraftVariant.from_json(v) for v in self.variants]


@dataclass
class CurrentMessage:
    """The currently approved message on staff terminals (and in the freeze notice)."""

    version_id: str
    variants: dict[str, str]
    set_at: datetime
    set_by: str
    refreshed_at: datetime | None = None
    """When the same message was last published again (terminals refuse old notices)."""

    @property
    def text(self) -> str:
        """The bokmål text."""
        return self.variants.get("nb", "")


@dataclass
class MessagesSlice:
    """Drafts, approved versions, the published one, its ledger, the current message."""

    drafts: dict[str, Draft] = field(default_factory=dict)
    versions: dict[str, Version] = field(default_factory=dict)
    published_version: str | None = None
    """The version most recently published to the channels."""
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    """Effect id -> ledger row."""
    current: CurrentMessage | None = None

    def ledger(self, version_id: str | None = None) -> list[Delivery]:
        """The deliveries of ``version_id`` (default: the published one), in order."""
        wanted = version_id or self.published_version
        return [d for d in self.deliveries.values() if d.version_id == wanted]


def published_as_exercise(state: IncidentState, version_id: str) -> bool:
    """Whether ``version_id`` went to the channels marked as an exercise (a drill's
    console publishes every version so): what its delivery requests say."""
    for delivery in state.messages.ledger(version_id):
        effect = state.outbox.effects.get(delivery.effect_id)
        message = effect.publish.body.get("message") if effect is not None else None
        if isinstance(message, dict) and "exercise" in message:
            return bool(message["exercise"])
    return False


# --- commands ------------------------------------------------------------------------


@dataclass(frozen=True)
class SaveDraft:
    """Write (or rewrite) a message draft; the actor is its author."""

    variants: tuple[DraftVariant, ...]
    channels: tuple[str, ...] = ()
    """Channel ids; empty: every channel of the playbook."""
    draft_id: str | None = None
    template_id: str | None = None
    status: str = "published"
    supersedes: str | None = None


@dataclass(frozen=True)
class ApproveDraft:
    """A second person approves a draft (the runtime has checked their passphrase)."""

    draft_id: str
    approver: str
    overrides: tuple[tuple[str, str, str], ...] = ()
    """``(code, lang, reason)`` for findings that may only pass with a reason."""
    break_glass_reason: str | None = None


@dataclass(frozen=True)
class RecordApprovalBlock:
    """Journal that the lint blocked an approval (which rules, never the text)."""

    draft_id: str
    approver: str
    codes: tuple[str, ...]


@dataclass(frozen=True)
class PublishVersion:
    """Send an approved version to every one of its channels at once."""

    version_id: str


@dataclass(frozen=True)
class RefreshCurrentMessage:
    """Publish the current message again, unchanged, with a new ``seq``: staff terminals
    refuse notices older than ``NOTICE_MAX_AGE_HOURS``, and a crisis can last longer."""


@dataclass(frozen=True)
class RetryDelivery:
    """Send one channel's delivery again after a final failure (the same request)."""

    effect_id: str


@dataclass(frozen=True)
class MarkDeliveryOverdue:
    """No final receipt within the deadline (the runtime's timers ask)."""

    effect_id: str


# --- events --------------------------------------------------------------------------


@feature.event
class DraftSaved(EventBase):
    """A message draft was written or changed (author = actor)."""

    type: Literal["message.draft_saved"] = "message.draft_saved"
    draft_id: str
    variants: list[dict[str, Any]]
    """``{lang, headline, body, awaiting_translation}`` per language."""
    channels: list[str]
    template_id: str | None = None
    status: str = "published"
    """``published``, ``updated`` (supersedes a version) or ``retracted``."""
    supersedes: str | None = None


@feature.event
class MessageApproved(EventBase):
    """A second person approved a draft: an immutable version (actor = approver)."""

    type: Literal["message.approved"] = "message.approved"
    version_id: str
    draft_id: str
    author: str
    approver: str
    variants: list[dict[str, Any]]
    channels: list[str]
    status: str = "published"
    supersedes: str | None = None
    signature: str
    """The author's full name and title, appended on every channel."""
    findings: list[str] = Field(default_factory=list)
    """Lint codes seen at approval (never the text found: no ID number is journaled)."""
    overrides: list[dict[str, str]] = Field(default_factory=list)
    """``{code, lang, reason}`` for every finding approved with a reason."""
    break_glass_reason: str | None = None
    """Set when the author approved alone (break-glass, where the playbook allows it)."""


@feature.event
class ApprovalBlocked(EventBase):
    """An approval (or a save) was refused by the lint: which rules, never the text."""

    type: Literal["message.approval_blocked"] = "message.approval_blocked"
    draft_id: str
    codes: list[str]


@feature.event
class MessagePublished(EventBase):
    """An approved version went out to its channels (one outbox entry each)."""

    type: Literal["message.published"] = "message.published"
    version_id: str
    channels: list[str]


@feature.event
class CurrentMessageSet(EventBase):
    """A published version became the current message on staff terminals."""

    type: Literal["message.current_set"] = "message.current_set"
    version_id: str
    variants: dict[str, str]
    """Language -> headline and body as one text."""


@feature.event
class CurrentMessageRefreshed(EventBase):
    """The current message was published again, unchanged (a fresher signed copy)."""

    type: Literal["message.current_refreshed"] = "message.current_refreshed"
    version_id: str


@feature.event
class DeliveryRetried(EventBase):
    """An operator asked one channel's delivery to be sent again (the same request)."""

    type: Literal["delivery.retried"] = "delivery.retried"
    effect_id: str
    channel: str


@feature.event
class DeliveryReceipt(BusEvent):
    """A bridge's receipt for one delivery (from its own receipt topic)."""

    type: Literal["delivery.receipt"] = "delivery.receipt"
    effect_id: str
    channel: str
    receipt: Receipt


@feature.event
class DeliveryOverdue(EventBase):
    """No final receipt arrived within the playbook's deadline."""

    type: Literal["delivery.overdue"] = "delivery.overdue"
    effect_id: str
    channel: str


# --- decide --------------------------------------------------------------------------


@feature.decides(SaveDraft)
def save_draft(state: IncidentState, cmd: SaveDraft, ctx: Context) -> Decision:
    """Save a draft; one holding an ID number is refused (never journaled)."""
    if not state.is_open:
        return Rejection("open an incident first", "åpne en hendelse først")
    policy = ctx.policy
    if cmd.status not in STATUSES:
        return Rejection(f"unknown message status {cmd.status!r}")
    if cmd.status != "published" and cmd.supersedes not in state.messages.versions:
        return Rejection(
            "an update or a retraction must name the version it replaces",
            "en oppdatering eller tilbaketrekking må vise til versjonen den erstatter",
        )
    langs = [v.lang for v in cmd.variants]
    if len(set(langs)) != len(langs):
        return Rejection("each language only once", "hvert språk bare én gang")
    if any(len(v.headline) + len(v.body) > MAX_MESSAGE_CHARS for v in cmd.variants):
        return Rejection(
            f"a variant is longer than {MAX_MESSAGE_CHARS} characters",
            f"en språkversjon er lengre enn {MAX_MESSAGE_CHARS} tegn",
        )
    for variant in cmd.variants:
        # Written as a bank account (4.2.5 digits) it may pass with a reason at approval;
        # anything else that passes the control digits is an ID number.
        found = [
            f
            for f in find_id_numbers(f"{variant.headline}\n{variant.body}")
            if not f.account_layout
        ]
        if found:
            # Never journal a national identity number, not even in a draft.
            return Rejection(
                f"blocked: national identity number ({found[0].kind.label('en')}, "
                f"{found[0].redacted}) in the {variant.lang} text – remove it before saving",
                f"stoppet: {found[0].kind.label('nb')} ({found[0].redacted}) i teksten på "
                f"{variant.lang} – fjern det før du lagrer",
            )
    channels = list(cmd.channels) or [c.id for c in policy.channels]
    unknown = [c for c in channels if policy.channel(c) is None]
    if unknown:
        names = ", ".join(unknown)
        return Rejection(f"unknown channel(s): {names}", f"ukjent kanal: {names}")
    if cmd.draft_id is not None:
        existing = state.messages.drafts.get(cmd.draft_id)
        if existing is None:
            return Rejection(f"no draft {cmd.draft_id}", f"fant ikke utkast {cmd.draft_id}")
        if existing.approved_version is not None:
            return Rejection(
                "this draft is approved and can no longer change; write a new one",
                "utkastet er godkjent og kan ikke endres; skriv et nytt",
            )
    return Accepted(
        [
            DraftSaved(
                **ctx.base(state),
                draft_id=cmd.draft_id or ctx.new_id(),
                variants=[v.to_json() for v in cmd.variants],
                channels=channels,
                template_id=cmd.template_id,
                status=cmd.status,
                supersedes=cmd.supersedes,
            )
        ]
    )


@feature.decides(ApproveDraft)
def approve(state: IncidentState, cmd: ApproveDraft, ctx: Context) -> Decision:
    """Four eyes and the lint: an immutable version, or a refusal with the reason."""
    draft = state.messages.drafts.get(cmd.draft_id)
    if draft is None:
        return Rejection(f"no draft {cmd.draft_id}", f"fant ikke utkast {cmd.draft_id}")
    if draft.approved_version is not None:
        return Rejection(
            f"already approved as version {draft.approved_version[:8]}",
            f"allerede godkjent som versjon {draft.approved_version[:8]}",
        )
    policy = ctx.policy
    variants = [DraftVariant.from_json(v) for v in draft.variants]
    overrides = {(code, lang): reason for code, lang, reason in cmd.overrides}
    check = check_approval(
        author=draft.author,
        approver=cmd.approver,
        variants=variants,
        policy=policy,
        overrides=overrides,
        break_glass_reason=cmd.break_glass_reason,
    )
    if not check.ok:
        return check.rejection()
    version_id = version_id_for(variants, status=draft.status, supersedes=draft.supersedes)
    if version_id in state.messages.versions:
        return Rejection(
            f"this exact message is already version {version_id[:8]}",
            f"nøyaktig denne meldingen er allerede versjon {version_id[:8]}",
        )
    author = policy.operators.get(draft.author)
    signature = author.signature if author else f"{draft.author}, {policy.org_name}"
    report = check.report
    used = [
        {"code": f.code, "lang": f.language, "reason": overrides[(f.code, f.language)]}
        for f in (report.needs_reason if report else ())
    ]
    base = ctx.base(state)
    base["actor"] = cmd.approver
    return Accepted(
        [
            MessageApproved(
                **base,
                version_id=version_id,
                draft_id=draft.draft_id,
                author=draft.author,
                approver=cmd.approver,
                variants=[v.to_json() for v in variants if v.body.strip()],
                channels=list(draft.channels),
                status=draft.status,
                supersedes=draft.supersedes,
                signature=signature,
                findings=sorted({f.code for f in report.findings}) if report else [],
                overrides=used,
                break_glass_reason=(cmd.break_glass_reason or None) if check.break_glass else None,
            )
        ]
    )


@feature.decides(RecordApprovalBlock)
def record_block(state: IncidentState, cmd: RecordApprovalBlock, ctx: Context) -> Decision:
    """Journal which lint rules stopped an approval (never the text)."""
    if cmd.draft_id and cmd.draft_id not in state.messages.drafts:
        return Rejection(f"no draft {cmd.draft_id}")
    base = ctx.base(state)
    base["actor"] = cmd.approver or ctx.actor
    return Accepted([ApprovalBlocked(**base, draft_id=cmd.draft_id, codes=sorted(set(cmd.codes)))])


@feature.decides(PublishVersion)
def publish_version(state: IncidentState, cmd: PublishVersion, ctx: Context) -> Decision:
    """One outbox entry per channel of an approved version, the website first."""
    version = state.messages.versions.get(cmd.version_id)
    if version is None:
        return Rejection(
            f"no approved version {cmd.version_id[:8]}",
            f"ingen godkjent versjon {cmd.version_id[:8]}",
        )
    if version.published_at is not None:
        return Rejection(
            "this version is already published (re-send a channel instead)",
            "denne versjonen er allerede publisert (send en kanal på nytt i stedet)",
        )
    policy = ctx.policy
    variants = version.draft_variants
    try:
        message = approved_message(
            version_id=version.version_id,
            variants=variants,
            signature=version.signature,
            policy=policy,
            published_at=ctx.now,
            status=version.status,
            supersedes=version.supersedes,
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        return Rejection(
            f"the version cannot be carried to the channels: {where}: {problem['msg']}",
            f"versjonen kan ikke sendes til kanalene: {where}: {problem['msg']}",
        )
    requests = Requests(state, ctx)
    events: list[EventBase] = [
        MessagePublished(
            **ctx.base(state), version_id=version.version_id, channels=version.channels
        )
    ]
    previous_remote = {
        d.channel: d.remote_id
        for d in state.messages.deliveries.values()
        if d.version_id == version.supersedes and d.remote_id
    }
    texts = {v.lang: v.text for v in variants if v.body.strip()}
    for spec in policy.ordered(version.channels):
        if spec.kind == STAFF_KIND:
            events += _to_staff(state, ctx, requests, version.version_id, texts, spec.id)
            continue
        effect_id = ctx.new_id()
        request = DeliveryRequest(
            effect_id=effect_id,
            channel=spec.id,
            idempotency_key=f"{version.version_id}:{spec.id}",
            message=message,
            previous_remote_id=previous_remote.get(spec.id),
        )
        events.append(
            requests.publish(
                Target.CHANNEL_OUT,
                envelope_type=DELIVER_TYPE,
                # One signed stream for every channel's out topic: seqs only grow, so a
                # bridge (which sees its own channel) and any verifier that sees them all
                # agree.
                stream="out",
                body=request.model_dump(mode="json"),
                channel=spec.id,
                version_id=version.version_id,
                effect_id=effect_id,
            )
        )
    return Accepted(events)


def _to_staff(
    state: IncidentState,
    ctx: Context,
    requests: Requests,
    version_id: str,
    texts: dict[str, str],
    channel_id: str,
) -> list[EventBase]:
    """The current message (signed, retained), and the freeze notice that carries it."""
    body = CurrentMessageBody(
        version_id=version_id, variants=texts, incident_id=state.incident.incident_id
    )
    request = requests.publish(
        Target.MESSAGE,
        envelope_type=MESSAGE_TYPE,
        stream="message",
        body=body.model_dump(mode="json"),
        retain=True,
        version_id=version_id,
    )
    events: list[EventBase] = [
        CurrentMessageSet(**ctx.base(state), version_id=version_id, variants=texts),
        request.model_copy(update={"channel": channel_id}),
    ]
    current = state.freeze.current
    if current is not None and current.active:
        events += freeze_events(
            state,
            ctx,
            action=FreezeAction.UPDATE,
            active=True,
            departments=current.departments,
            reason=current.reason,
            expires_at=current.expires_at,
            notice=current.notice,
            message=(version_id, texts),
            requests=requests,
        )
    return events


@feature.decides(RefreshCurrentMessage)
def refresh_current(state: IncidentState, cmd: RefreshCurrentMessage, ctx: Context) -> Decision:
    """The same current message, signed again: no new delivery row, nothing to approve."""
    current = state.messages.current
    if current is None:
        return Rejection("no current message to refresh", "ingen gjeldende melding å fornye")
    body = CurrentMessageBody(
        version_id=current.version_id,
        variants=dict(current.variants),
        incident_id=state.incident.incident_id,
    )
    request = Requests(state, ctx).publish(
        Target.MESSAGE,
        envelope_type=MESSAGE_TYPE,
        stream="message",
        body=body.model_dump(mode="json"),
        retain=True,
    )
    refreshed = CurrentMessageRefreshed(**ctx.base(state), version_id=current.version_id)
    return Accepted([refreshed, request])


@feature.decides(RetryDelivery)
def retry(state: IncidentState, cmd: RetryDelivery, ctx: Context) -> Decision:
    """Re-send one channel after a final failure (the same signed request)."""
    delivery = state.messages.deliveries.get(cmd.effect_id)
    if delivery is None:
        return Rejection(f"no delivery {cmd.effect_id}", f"ingen levering {cmd.effect_id}")
    if delivery.status is DeliveryStatus.DELIVERED:
        return Rejection(
            f"{delivery.channel} has already delivered this version",
            f"{delivery.channel} har allerede levert denne versjonen",
        )
    if delivery.status not in FINAL_FAILURES:
        return Rejection(
            f"{delivery.channel} is still being delivered; re-send after a final failure",
            f"{delivery.channel} leveres fortsatt; send på nytt etter at den har feilet",
        )
    return Accepted(
        [
            DeliveryRetried(**ctx.base(state), effect_id=cmd.effect_id, channel=delivery.channel),
            OutboxRequeued(**ctx.base(state), effect_id=cmd.effect_id),
        ]
    )


@feature.decides(MarkDeliveryOverdue)
def mark_overdue(state: IncidentState, cmd: MarkDeliveryOverdue, ctx: Context) -> Decision:
    """No final receipt within the deadline: say so (a later receipt still counts)."""
    delivery = state.messages.deliveries.get(cmd.effect_id)
    if delivery is None:
        return Rejection(f"no delivery {cmd.effect_id}")
    if delivery.status not in (DeliveryStatus.QUEUED, DeliveryStatus.HANDED):
        return Accepted([])
    if ctx.now - (delivery.updated_at or delivery.requested_at) < ctx.policy.receipt_deadline:
        return Rejection("not overdue yet")
    return Accepted(
        [DeliveryOverdue(**ctx.base(state), effect_id=cmd.effect_id, channel=delivery.channel)]
    )


@feature.accepts("channel.receipt")
def accept_receipt(
    state: IncidentState, source: BusSource, data: dict[str, Any], ctx: Context
) -> Decision:
    """A bridge's receipt, on its own channel's topic, for a delivery of ours."""
    try:
        receipt = validate_strict(Receipt, data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        return Rejection(f"wrong schema: {problems}")
    # Deliveries, replies and hides all go out on the channel's out topic: a receipt
    # counts for any of ours on the same channel (each feature folds its own).
    effect = state.outbox.effects.get(receipt.effect_id)
    if (
        effect is None
        or effect.publish.target is not Target.CHANNEL_OUT
        or effect.publish.channel != source.channel
    ):
        return Rejection(f"receipt for a delivery to {source.channel} this console did not send")
    return Accepted(
        [
            DeliveryReceipt(
                **ctx.base(state),
                topic=source.topic,
                effect_id=receipt.effect_id,
                channel=str(source.channel),
                receipt=receipt,
            )
        ]
    )


# --- fold ----------------------------------------------------------------------------


@feature.applies(DraftSaved)
def _draft(state: IncidentState, event: DraftSaved) -> None:
    state.messages.drafts[event.draft_id] = Draft(
        draft_id=event.draft_id,
        author=event.actor,
        variants=list(event.variants),
        channels=list(event.channels),
        saved_at=event.ts,
        template_id=event.template_id,
        status=event.status,
        supersedes=event.supersedes,
    )


@feature.applies(MessageApproved)
def _approved(state: IncidentState, event: MessageApproved) -> None:
    msgs = state.messages
    msgs.versions[event.version_id] = Version(
        version_id=event.version_id,
        draft_id=event.draft_id,
        author=event.author,
        approver=event.approver,
        variants=list(event.variants),
        channels=list(event.channels),
        signature=event.signature,
        approved_at=event.ts,
        status=event.status,
        supersedes=event.supersedes,
        break_glass_reason=event.break_glass_reason,
    )
    draft = msgs.drafts.get(event.draft_id)
    if draft is not None:
        draft.approved_version = event.version_id


@feature.applies(ApprovalBlocked)
def _blocked(state: IncidentState, event: ApprovalBlocked) -> None:
    """Journaled for the record; the draft stays as it was."""


@feature.applies(MessagePublished)
def _published(state: IncidentState, event: MessagePublished) -> None:
    msgs = state.messages
    msgs.published_version = event.version_id
    version = msgs.versions.get(event.version_id)
    if version is not None:
        version.published_at = event.ts


@feature.applies(CurrentMessageSet)
def _current(state: IncidentState, event: CurrentMessageSet) -> None:
    state.messages.current = CurrentMessage(
        version_id=event.version_id,
        variants=dict(event.variants),
        set_at=event.ts,
        set_by=event.actor,
    )


@feature.applies(CurrentMessageRefreshed)
def _refreshed(state: IncidentState, event: CurrentMessageRefreshed) -> None:
    current = state.messages.current
    if current is not None and current.version_id == event.version_id:
        current.refreshed_at = event.ts


@feature.applies(OutboxRequested)
def _requested(state: IncidentState, event: OutboxRequested) -> None:
    if event.channel is None or event.version_id is None:
        return
    state.messages.deliveries[event.effect_id] = Delivery(
        effect_id=event.effect_id,
        version_id=event.version_id,
        channel=event.channel,
        requested_at=event.ts,
        staff=event.publish.target is Target.MESSAGE,
        updated_at=event.ts,
    )


@feature.applies(OutboxConfirmed)
def _handed(state: IncidentState, event: OutboxConfirmed) -> None:
    delivery = state.messages.deliveries.get(event.effect_id)
    if delivery is None:
        return
    # The staff channel is the retained message itself: the broker's PUBACK is its
    # delivery. A bridge's delivery is only handed over; the bridge's receipts tell more.
    if delivery.staff and delivery.status is not DeliveryStatus.DELIVERED:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.attempts = max(delivery.attempts, 1)
        delivery.updated_at = event.ts
    elif delivery.status is DeliveryStatus.QUEUED:
        delivery.status = DeliveryStatus.HANDED
        delivery.updated_at = event.ts


@feature.applies(OutboxAttemptFailed)
def _publish_failed(state: IncidentState, event: OutboxAttemptFailed) -> None:
    delivery = state.messages.deliveries.get(event.effect_id)
    if delivery is not None and delivery.status is DeliveryStatus.QUEUED:
        delivery.reason = event.reason


@feature.applies(DeliveryRetried)
def _retried(state: IncidentState, event: DeliveryRetried) -> None:
    delivery = state.messages.deliveries.get(event.effect_id)
    if delivery is not None:
        delivery.status = DeliveryStatus.QUEUED
        delivery.reason = None
        delivery.retrying = False
        delivery.resends += 1
        delivery.updated_at = event.ts


@feature.applies(DeliveryOverdue)
def _overdue(state: IncidentState, event: DeliveryOverdue) -> None:
    delivery = state.messages.deliveries.get(event.effect_id)
    if delivery is not None and delivery.status in (DeliveryStatus.QUEUED, DeliveryStatus.HANDED):
        delivery.status = DeliveryStatus.NO_RECEIPT
        delivery.updated_at = event.ts


@feature.applies(DeliveryReceipt)
def _receipt(state: IncidentState, event: DeliveryReceipt) -> None:
    delivery = state.messages.deliveries.get(event.effect_id)
    if delivery is None:
        return
    receipt = event.receipt
    if delivery.status is DeliveryStatus.DELIVERED:
        return  # late or reordered receipts never undo a delivery
    delivery.attempts = max(delivery.attempts, receipt.attempt)
    delivery.updated_at = event.ts
    if receipt.status is ReceiptStatus.DELIVERED:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.remote_id = receipt.remote_id or delivery.remote_id
        delivery.reason = None
        delivery.retrying = False
    elif receipt.status is ReceiptStatus.FAILED:
        delivery.reason = receipt.reason or "ukjent feil"
        if receipt.final or receipt.permanent:
            delivery.status = DeliveryStatus.FAILED
            delivery.retrying = False
        else:
            delivery.status = DeliveryStatus.HANDED
            delivery.retrying = True
    elif delivery.status is DeliveryStatus.QUEUED or delivery.status in FINAL_FAILURES:
        # ``sent``: the bridge has it and is trying now.
        delivery.status = DeliveryStatus.HANDED


# --- describe ------------------------------------------------------------------------


@feature.describes(DraftSaved)
def _d_draft(event: DraftSaved, lang: str) -> str:
    if lang == "en":
        return f"Draft saved ({event.draft_id[:8]}, {event.status})"
    words = {"published": "ny", "updated": "oppdatering", "retracted": "tilbaketrekking"}
    return f"Utkast lagret ({event.draft_id[:8]}, {words.get(event.status, event.status)})"


@feature.describes(MessageApproved)
def _d_approved(event: MessageApproved, lang: str) -> str:
    glass = (
        (" – BREAK-GLASS" if lang == "en" else " – NØDPROSEDYRE")
        if event.break_glass_reason
        else ""
    )
    if lang == "en":
        return f"Approved v{event.version_id[:8]} by {event.approver}{glass}"
    return f"Godkjent v{event.version_id[:8]} av {event.approver}{glass}"


@feature.describes(ApprovalBlocked)
def _d_blocked(event: ApprovalBlocked, lang: str) -> str:
    head = "Approval blocked" if lang == "en" else "Godkjenning stoppet"
    return f"{head}: {', '.join(event.codes)}"


@feature.describes(MessagePublished)
def _d_published(event: MessagePublished, lang: str) -> str:
    n = len(event.channels)
    if lang == "en":
        return f"Published v{event.version_id[:8]} to {n} channel{'s' if n != 1 else ''}"
    return f"Publisert v{event.version_id[:8]} til {n} kanal{'er' if n != 1 else ''}"


@feature.describes(CurrentMessageSet)
def _d_current(event: CurrentMessageSet, lang: str) -> str:
    head = "Current message" if lang == "en" else "Gjeldende budskap"
    text = " ".join(event.variants.get("nb", "").split())
    return f"{head} v{event.version_id[:8]}: «{text[:60]}»"


@feature.describes(CurrentMessageRefreshed)
def _d_refreshed(event: CurrentMessageRefreshed, lang: str) -> str:
    if lang == "en":
        return f"Current message v{event.version_id[:8]} signed again for staff terminals"
    return f"Gjeldende budskap v{event.version_id[:8]} signert på nytt til ansattterminalene"


@feature.describes(DeliveryRetried)
def _d_retried(event: DeliveryRetried, lang: str) -> str:
    if lang == "en":
        return f"Re-send to {event.channel} requested"
    return f"Ny sending til {event.channel} bestilt"


@feature.describes(DeliveryOverdue)
def _d_overdue(event: DeliveryOverdue, lang: str) -> str:
    if lang == "en":
        return f"{event.channel}: no receipt within the deadline"
    return f"{event.channel}: ingen kvittering innen fristen"


@feature.describes(DeliveryReceipt)
def _d_receipt(event: DeliveryReceipt, lang: str) -> str:
    r = event.receipt
    en = lang == "en"
    if r.status is ReceiptStatus.DELIVERED:
        word = "delivered" if en else "levert"
        return f"{event.channel}: {word}" + (f" ({r.remote_id})" if r.remote_id else "")
    if r.status is ReceiptStatus.SENT:
        return f"{event.channel}: " + (f"attempt {r.attempt}" if en else f"forsøk {r.attempt}")
    if r.final or r.permanent:
        word = "failed" if en else "feilet"
    else:
        word = "attempt failed, retrying" if en else "forsøk feilet, prøver igjen"
    return f"{event.channel}: {word} (#{r.attempt}): {r.reason or ''}".rstrip(": ")
