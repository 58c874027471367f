"""One approved message to every channel: drafts, four-eyes approval, publishing (pure).

The flow is ``SaveDraft`` → ``ApproveDraft`` (a second person, identified by the
runtime with their passphrase; lint blocks and overrides checked here) →
``PublishVersion`` (one outbox entry per channel, the website first, each carrying the
same signed version) → receipts from the bridges fold into a per-channel ledger →
``RetryDelivery`` re-sends one channel's very same envelope (the bridge delivers it
with the same idempotency key, so nothing is posted twice).

The version id is SHA-256 over the canonical JSON of every language variant plus the
status (published / updated / retracted) and the version it supersedes, so an update or
a retraction of the same text still gets its own id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from krise_tui.core.ids import canonical_json
from krise_tui.rules.lint import LintReport, MessageVariant, Override, Severity, lint_message
from krise_tui.rules.sms import sms_info

STATUSES = ("published", "updated", "retracted")
STAFF_KIND = "staff"
WEBSITE_KIND = "website"


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


@dataclass(frozen=True)
class OperatorInfo:
    """What approval needs to know of an operator (from the org file)."""

    full_name: str
    title: str
    may_approve: bool
    may_draft: bool = True

    @property
    def signature(self) -> str:
        """Full name and title (DOMAIN rule 14)."""
        return f"{self.full_name}, {self.title}"


@dataclass(frozen=True)
class ChannelSpec:
    """A channel a message goes to."""

    id: str
    kind: str


@dataclass(frozen=True)
class MessagePolicy:
    """The org file's and playbook's rules for messages, as the engine needs them."""

    org_name: str
    website_url: str
    required_languages: tuple[str, ...] = ("nb",)
    allowed_phones: tuple[str, ...] = ()
    allowed_emails: tuple[str, ...] = ()
    channels: tuple[ChannelSpec, ...] = ()
    """The channels of the playbook (the website among them), in delivery order."""
    operators: Mapping[str, OperatorInfo] = field(default_factory=dict)
    break_glass_allowed: bool = False
    sms_max_segments: int = 3
    exercise: bool = False

    def channel(self, channel_id: str) -> ChannelSpec | None:
        """The channel with ``channel_id``."""
        return next((c for c in self.channels if c.id == channel_id), None)

    def ordered(self, channel_ids: list[str]) -> list[ChannelSpec]:
        """The chosen channels, the website first (the master copy others link to)."""
        chosen = [c for c in self.channels if c.id in channel_ids]
        return sorted(chosen, key=lambda c: 0 if c.kind == WEBSITE_KIND else 1)


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


def sms_check(max_segments: int) -> Any:
    """An extra lint check: SMS text (headline + link) within ``max_segments``."""
    from krise_tui.rules.lint import LintFinding

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
                    f"for lang for SMS: {info.segments} segmenter ({info.encoding}), "
                    f"høyst {max_segments} – SMS-kanalen sender overskrift og lenke"
                ),
                message_en=(
                    f"too long for SMS: {info.segments} segments ({info.encoding}), at most "
                    f"{max_segments} – the SMS channel sends the headline and the link"
                ),
            )
        ]

    return check


POST_LIMITS = {"mastodon": 500}
"""Characters per post on channels with a hard limit (SMS is counted in segments)."""


def post_limit_check(policy: MessagePolicy) -> Any:
    """An extra lint check: text longer than a chosen channel's post limit is shortened."""
    from krise_tui.rules.lint import LintFinding

    limited = [(c.id, POST_LIMITS[c.kind]) for c in policy.channels if c.kind in POST_LIMITS]

    def check(lang: str, variant: Any) -> list[LintFinding]:
        if lang != "nb":
            return []  # social posts carry one language, bokmål by default
        # headline, body, the website link and a signature line, as the channel renders it
        length = len(f"{variant.headline}\n\n{variant.body}\n\n{policy.website_url}\n") + 40
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
    missing = []
    for finding in report.needs_reason:
        if not overrides.get((finding.code, finding.language), "").strip():
            missing.append(f"{finding.code} [{finding.language}]")
    return missing


@dataclass(frozen=True)
class ApprovalCheck:
    """The outcome of checking an approval (pure)."""

    ok: bool
    reason: str = ""
    break_glass: bool = False
    report: LintReport | None = None


def check_approval(
    *,
    author: str,
    approver: str,
    variants: list[DraftVariant],
    policy: MessagePolicy,
    overrides: Mapping[tuple[str, str], str],
    break_glass_reason: str | None,
) -> ApprovalCheck:
    """Four eyes, roles, lint blocks and overrides."""
    operator = policy.operators.get(approver)
    if policy.operators and operator is None:
        return ApprovalCheck(False, f"{approver!r} is not an operator in the org file")
    if operator is not None and not operator.may_approve:
        return ApprovalCheck(False, f"{operator.signature} may not approve messages")
    break_glass = False
    if approver == author:
        if not policy.break_glass_allowed:
            return ApprovalCheck(
                False, "four eyes: the approver must be another person than the author"
            )
        if not (break_glass_reason or "").strip():
            return ApprovalCheck(
                False, "approving your own message (break-glass) needs a written reason"
            )
        break_glass = True
    if not any(v.lang == "nb" and v.body.strip() for v in variants):
        return ApprovalCheck(False, "the message needs a bokmål (nb) text")
    report = lint_draft(variants, policy)
    hard = [f for f in report.blocks if f.override is Override.NOT_ALLOWED]
    if hard:
        return ApprovalCheck(
            False, "blocked: " + "; ".join(f.message("en") for f in hard), report=report
        )
    missing = missing_overrides(report, overrides)
    if missing:
        return ApprovalCheck(
            False, "an override with a reason is needed for: " + ", ".join(missing), report=report
        )
    return ApprovalCheck(True, break_glass=break_glass, report=report)


def approved_message_json(
    *,
    version_id: str,
    variants: list[DraftVariant],
    signature: str,
    policy: MessagePolicy,
    published_at: datetime,
    status: str,
    supersedes: str | None,
) -> dict[str, Any]:
    """The message as every channel carries it (:class:`channels.base.ApprovedMessage`)."""
    written = [v for v in variants if v.body.strip()]
    written.sort(key=lambda v: 0 if v.lang == "nb" else 1)
    return {
        "version_id": version_id,
        "org_name": policy.org_name,
        "website_url": policy.website_url,
        "variants": [
            {"lang": v.lang, "headline": " ".join(v.headline.split()), "body": v.body}
            for v in written
        ],
        "signature": signature,
        "published_at": published_at.isoformat(),
        "status": status,
        "supersedes": supersedes,
        "exercise": policy.exercise,
    }
