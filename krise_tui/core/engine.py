"""The engine: turns a command into events, after checking it against the state.

``decide`` is pure: given the same state, command and context it returns the same
events (the context carries the clock, the id source and the signing key). A command
that is not allowed returns a :class:`Rejection` with a reason a person can read; the
engine never raises for a refused command.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from krise_tui.bus import topics
from krise_tui.bus.envelope import Signer
from krise_tui.core import inbound
from krise_tui.core.events import (
    ApprovalBlocked,
    CurrentMessageSet,
    DeliveryRetried,
    DraftSaved,
    EventBase,
    FreezeAction,
    FreezeChanged,
    InboundKind,
    InboundReceived,
    InboundRejected,
    IncidentOpened,
    MessageApproved,
    MessagePublished,
    OutboxAttemptFailed,
    OutboxConfirmed,
    OutboxRequested,
    PlaybookActivated,
    PresenceChanged,
    RemindersSent,
)
from krise_tui.core.ids import canonical_json, new_id
from krise_tui.core.messaging import (
    STAFF_KIND,
    STATUSES,
    ChannelSpec,
    DraftVariant,
    MessagePolicy,
    approved_message_json,
    check_approval,
    version_id_for,
)
from krise_tui.core.state import DeliveryStatus, EffectStatus, IncidentState
from krise_tui.rules.idnumbers import find_id_numbers

MAX_MESSAGE_CHARS = 20_000

# --- commands ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenIncident:
    """Open the incident (once)."""

    title: str
    level: int = 1


@dataclass(frozen=True)
class PublishCurrentMessage:
    """Make ``text`` the currently approved message and publish it (retained, signed)."""

    text: str


@dataclass(frozen=True)
class ReceiveFromBus:
    """Something arrived on a subscribed topic."""

    topic: str
    payload: bytes


@dataclass(frozen=True)
class ConfirmEffect:
    """The broker (or channel) confirmed an outbox entry."""

    effect_id: str


@dataclass(frozen=True)
class FailEffectAttempt:
    """An attempt at an outbox entry failed."""

    effect_id: str
    attempt: int
    reason: str


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
class RetryDelivery:
    """Send one channel's delivery again (the same envelope, so never a second post)."""

    effect_id: str


@dataclass(frozen=True)
class ActivatePlaybook:
    """Follow this playbook (version) from now on."""

    playbook_id: str
    title: str
    hash: str
    path: str


@dataclass(frozen=True)
class Freeze:
    """Freeze employee posting (all staff, or the named departments)."""

    reason: str
    departments: tuple[str, ...] = ()
    expires_at: datetime | None = None
    notice: tuple[tuple[str, str], ...] = ()
    """Notice text per language from the playbook, as ``(lang, text)`` pairs."""


@dataclass(frozen=True)
class ExtendFreeze:
    """Move (or remove, with ``None``) the active freeze's expiry."""

    expires_at: datetime | None
    reason: str = ""


@dataclass(frozen=True)
class LiftFreeze:
    """Lift the freeze."""

    reason: str


@dataclass(frozen=True)
class RemindUnacknowledged:
    """Send a signed reminder to these staff terminals (those that have not acknowledged)."""

    staff_ids: tuple[str, ...]


Command = (
    OpenIncident
    | ActivatePlaybook
    | SaveDraft
    | ApproveDraft
    | RecordApprovalBlock
    | PublishVersion
    | RetryDelivery
    | PublishCurrentMessage
    | ReceiveFromBus
    | ConfirmEffect
    | FailEffectAttempt
    | Freeze
    | ExtendFreeze
    | LiftFreeze
    | RemindUnacknowledged
)


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """The command was valid; these events record it (possibly none: a no-op)."""

    events: list[EventBase] = field(default_factory=list)


@dataclass(frozen=True)
class Rejection:
    """The command was refused."""

    reason: str


Decision = Accepted | Rejection


@dataclass(frozen=True)
class Context:
    """Everything ``decide`` needs from outside: who, when, which org, how to sign."""

    org: str
    actor: str
    now: datetime
    signer: Signer
    incident_id: str
    new_id: Callable[[], str] = new_id
    roster: Mapping[str, str | None] | None = None
    """Known staff ids -> department. ``None``: no roster (demo), any staff id is accepted."""
    org_name: str = ""
    policy: MessagePolicy | None = None
    """Message rules from the org file and playbook (``None``: plain-text demo mode)."""


def message_version_id(variants: dict[str, str]) -> str:
    """SHA-256 over the canonical JSON of all language variants: the version id."""
    return hashlib.sha256(canonical_json(variants)).hexdigest()


def _base(ctx: Context, state: IncidentState) -> dict[str, Any]:
    return {
        "id": ctx.new_id(),
        "org": ctx.org,
        "incident_id": state.incident_id or ctx.incident_id,
        "actor": ctx.actor,
        "ts": ctx.now,
    }


def decide(state: IncidentState, command: Command, ctx: Context) -> Decision:
    """Validate ``command`` against ``state`` and return the events it produces."""
    match command:
        case OpenIncident():
            return _open_incident(state, command, ctx)
        case PublishCurrentMessage():
            return _publish_current(state, command, ctx)
        case ReceiveFromBus():
            return _receive(state, command, ctx)
        case SaveDraft():
            return _save_draft(state, command, ctx)
        case ApproveDraft():
            return _approve(state, command, ctx)
        case RecordApprovalBlock():
            if command.draft_id and command.draft_id not in state.drafts:
                return Rejection(f"no draft {command.draft_id}")
            base = _base(ctx, state)
            base["actor"] = command.approver or ctx.actor
            return Accepted(
                [
                    ApprovalBlocked(
                        **base, draft_id=command.draft_id, codes=sorted(set(command.codes))
                    )
                ]
            )
        case PublishVersion():
            return _publish_version(state, command, ctx)
        case RetryDelivery():
            delivery = state.deliveries.get(command.effect_id)
            if delivery is None:
                return Rejection(f"no delivery {command.effect_id}")
            if delivery.status is DeliveryStatus.DELIVERED:
                return Rejection(f"{delivery.channel} has already delivered this version")
            return Accepted([DeliveryRetried(**_base(ctx, state), effect_id=command.effect_id)])
        case ActivatePlaybook():
            if state.playbook_hash == command.hash:
                return Accepted([])  # the same version again: nothing to record
            return Accepted(
                [
                    PlaybookActivated(
                        **_base(ctx, state),
                        playbook_id=command.playbook_id,
                        title=command.title,
                        hash=command.hash,
                        path=command.path,
                    )
                ]
            )
        case Freeze():
            return _freeze(state, command, ctx)
        case ExtendFreeze():
            return _extend_freeze(state, command, ctx)
        case LiftFreeze():
            return _lift_freeze(state, command, ctx)
        case RemindUnacknowledged():
            return _remind(state, command, ctx)
        case ConfirmEffect():
            effect = state.effects.get(command.effect_id)
            if effect is None:
                return Rejection(f"unknown outbox entry {command.effect_id}")
            if effect.status is EffectStatus.CONFIRMED:
                return Accepted([])
            return Accepted([OutboxConfirmed(**_base(ctx, state), effect_id=command.effect_id)])
        case FailEffectAttempt():
            if command.effect_id not in state.effects:
                return Rejection(f"unknown outbox entry {command.effect_id}")
            return Accepted(
                [
                    OutboxAttemptFailed(
                        **_base(ctx, state),
                        effect_id=command.effect_id,
                        attempt=command.attempt,
                        reason=command.reason[:2000],
                    )
                ]
            )
    return Rejection(f"unknown command {type(command).__name__}")  # pragma: no cover


def _open_incident(state: IncidentState, cmd: OpenIncident, ctx: Context) -> Decision:
    if state.is_open:
        return Rejection(f"incident {state.incident_id} is already open")
    title = cmd.title.strip()
    if not title:
        return Rejection("an incident needs a title")
    if not 1 <= cmd.level <= 5:
        return Rejection(f"level must be 1-5, not {cmd.level}")
    base = _base(ctx, state)
    base["incident_id"] = ctx.incident_id
    return Accepted([IncidentOpened(**base, title=title, level=cmd.level)])


def _policy(ctx: Context) -> MessagePolicy:
    return ctx.policy or MessagePolicy(
        org_name=ctx.org_name or ctx.org,
        website_url="",
        channels=(ChannelSpec("ansatte", "staff"),),
    )


def _save_draft(state: IncidentState, cmd: SaveDraft, ctx: Context) -> Decision:
    if not state.is_open:
        return Rejection("open an incident first")
    policy = _policy(ctx)
    if cmd.status not in STATUSES:
        return Rejection(f"unknown message status {cmd.status!r}")
    if cmd.status != "published" and cmd.supersedes not in state.versions:
        return Rejection("an update or a retraction must name the version it replaces")
    langs = [v.lang for v in cmd.variants]
    if len(set(langs)) != len(langs):
        return Rejection("each language only once")
    if any(len(v.headline) + len(v.body) > MAX_MESSAGE_CHARS for v in cmd.variants):
        return Rejection(f"a variant is longer than {MAX_MESSAGE_CHARS} characters")
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
                f"{found[0].redacted}) in the {variant.lang} text – remove it before saving"
            )
    channels = list(cmd.channels) or [c.id for c in policy.channels]
    unknown = [c for c in channels if policy.channel(c) is None]
    if unknown:
        return Rejection(f"unknown channel(s): {', '.join(unknown)}")
    if cmd.draft_id is not None:
        existing = state.drafts.get(cmd.draft_id)
        if existing is None:
            return Rejection(f"no draft {cmd.draft_id}")
        if existing.approved_version is not None:
            return Rejection("this draft is approved and can no longer change; write a new one")
    return Accepted(
        [
            DraftSaved(
                **_base(ctx, state),
                draft_id=cmd.draft_id or ctx.new_id(),
                variants=[v.to_json() for v in cmd.variants],
                channels=channels,
                template_id=cmd.template_id,
                status=cmd.status,
                supersedes=cmd.supersedes,
            )
        ]
    )


def _approve(state: IncidentState, cmd: ApproveDraft, ctx: Context) -> Decision:
    draft = state.drafts.get(cmd.draft_id)
    if draft is None:
        return Rejection(f"no draft {cmd.draft_id}")
    if draft.approved_version is not None:
        return Rejection(f"already approved as version {draft.approved_version[:8]}")
    policy = _policy(ctx)
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
        return Rejection(check.reason)
    version_id = version_id_for(variants, status=draft.status, supersedes=draft.supersedes)
    if version_id in state.versions:
        return Rejection(f"this exact message is already version {version_id[:8]}")
    author = policy.operators.get(draft.author)
    signature = author.signature if author else f"{draft.author}, {policy.org_name}"
    report = check.report
    used = [
        {"code": f.code, "lang": f.language, "reason": overrides[(f.code, f.language)]}
        for f in (report.needs_reason if report else ())
    ]
    base = _base(ctx, state)
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


def _publish_version(state: IncidentState, cmd: PublishVersion, ctx: Context) -> Decision:
    version = state.versions.get(cmd.version_id)
    if version is None:
        return Rejection(f"no approved version {cmd.version_id[:8]}")
    if version.published_at is not None:
        return Rejection("this version is already published (retry a channel instead)")
    policy = _policy(ctx)
    variants = [DraftVariant.from_json(v) for v in version.variants]
    message = approved_message_json(
        version_id=version.version_id,
        variants=variants,
        signature=version.signature,
        policy=policy,
        published_at=ctx.now,
        status=version.status,
        supersedes=version.supersedes,
    )
    events: list[EventBase] = [
        MessagePublished(
            **_base(ctx, state), version_id=version.version_id, channels=version.channels
        )
    ]
    previous_remote = {
        d.channel: d.remote_id
        for d in state.deliveries.values()
        if d.version_id == version.supersedes and d.remote_id
    }
    nb = next((v for v in variants if v.lang == "nb"), variants[0])
    out_seq = state.next_seq("out")
    for spec in policy.ordered(version.channels):
        effect_id = ctx.new_id()
        if spec.kind == STAFF_KIND:
            # Staff terminals: the retained, signed current message (and the freeze
            # notice, which always carries it).
            text = f"{nb.headline}\n{nb.body}".strip()
            sub = _publish_current(state, PublishCurrentMessage(text), ctx, version.version_id)
            if isinstance(sub, Rejection):
                continue  # the same text is already current on staff terminals
            for event in sub.events:
                if isinstance(event, OutboxRequested) and event.topic.endswith("/current"):
                    event = event.model_copy(
                        update={"channel": spec.id, "version_id": version.version_id}
                    )
                events.append(event)
            continue
        # One signed stream for every channel's out topic: seqs only grow, so a bridge
        # (which sees its own channel) and any verifier that sees them all agree.
        seq = out_seq
        out_seq += 1
        envelope = ctx.signer.sign(
            type="channel.deliver",
            org=ctx.org,
            seq=seq,
            body={
                "effect_id": effect_id,
                "channel": spec.id,
                "idempotency_key": f"{version.version_id}:{spec.id}",
                "message": message,
                "previous_remote_id": previous_remote.get(spec.id),
            },
            issued_at=ctx.now,
        )
        events.append(
            OutboxRequested(
                **_base(ctx, state),
                effect_id=effect_id,
                topic=topics.channel_out(ctx.org, spec.id),
                payload=envelope.to_json(),
                qos=1,
                retain=False,
                stream="out",
                seq=seq,
                channel=spec.id,
                version_id=version.version_id,
            )
        )
    return Accepted(events)


def _freeze_events(
    state: IncidentState,
    ctx: Context,
    *,
    action: FreezeAction,
    active: bool,
    departments: list[str],
    reason: str,
    expires_at: datetime | None,
    notice: dict[str, str],
    message: tuple[str, str] | None,
) -> list[EventBase]:
    """A FreezeChanged event and the signed, retained notice that carries it."""
    seq = state.next_seq("freeze")
    previous = state.freeze
    since = ctx.now if action is FreezeAction.FREEZE or previous is None else previous.since
    version_id, text = message if message is not None else (None, None)
    body: dict[str, Any] = {
        "active": active,
        "action": str(action),
        "departments": departments,
        "reason": reason,
        "since": since.isoformat(),
        "expires_at": None if expires_at is None else expires_at.isoformat(),
        "notice": notice,
        "message": None
        if version_id is None
        else {"version_id": version_id, "variants": {"nb": text}},
        "incident_id": state.incident_id,
        "org_name": ctx.org_name,
    }
    envelope = ctx.signer.sign(type="freeze", org=ctx.org, seq=seq, body=body, issued_at=ctx.now)
    return [
        FreezeChanged(
            **_base(ctx, state),
            action=action,
            active=active,
            departments=departments,
            reason=reason,
            expires_at=expires_at,
            message_version_id=version_id,
            message_text=text,
            notice=notice,
            seq=seq,
        ),
        OutboxRequested(
            **_base(ctx, state),
            effect_id=ctx.new_id(),
            topic=topics.freeze(ctx.org),
            payload=envelope.to_json(),
            qos=1,
            retain=True,
            stream="freeze",
            seq=seq,
        ),
    ]


def _current_message(state: IncidentState) -> tuple[str, str] | None:
    msg = state.current_message
    return None if msg is None else (msg.version_id, msg.text)


def _freeze(state: IncidentState, cmd: Freeze, ctx: Context) -> Decision:
    if not state.is_open:
        return Rejection("open an incident first")
    if state.freeze is not None and state.freeze.active:
        return Rejection("posting is already frozen (extend or lift it instead)")
    reason = cmd.reason.strip()
    if not reason:
        return Rejection("a freeze needs a reason")
    if cmd.expires_at is not None and cmd.expires_at <= ctx.now:
        return Rejection("the expiry must be in the future")
    departments = sorted(set(cmd.departments))
    if ctx.roster is not None and departments:
        known = {d for d in ctx.roster.values() if d}
        unknown = [d for d in departments if d not in known]
        if unknown:
            return Rejection(f"unknown department(s): {', '.join(unknown)}")
    return Accepted(
        _freeze_events(
            state,
            ctx,
            action=FreezeAction.FREEZE,
            active=True,
            departments=departments,
            reason=reason,
            expires_at=cmd.expires_at,
            notice=dict(cmd.notice),
            message=_current_message(state),
        )
    )


def _extend_freeze(state: IncidentState, cmd: ExtendFreeze, ctx: Context) -> Decision:
    current = state.freeze
    if current is None or not current.active:
        return Rejection("posting is not frozen")
    if cmd.expires_at is not None and cmd.expires_at <= ctx.now:
        return Rejection("the new expiry must be in the future")
    return Accepted(
        _freeze_events(
            state,
            ctx,
            action=FreezeAction.EXTEND,
            active=True,
            departments=current.departments,
            reason=cmd.reason.strip() or current.reason,
            expires_at=cmd.expires_at,
            notice=current.notice,
            message=_current_message(state),
        )
    )


def _lift_freeze(state: IncidentState, cmd: LiftFreeze, ctx: Context) -> Decision:
    current = state.freeze
    if current is None or not current.active:
        return Rejection("posting is not frozen")
    reason = cmd.reason.strip()
    if not reason:
        return Rejection("lifting a freeze needs a reason")
    return Accepted(
        _freeze_events(
            state,
            ctx,
            action=FreezeAction.LIFT,
            active=False,
            departments=current.departments,
            reason=reason,
            expires_at=None,
            notice={},
            message=_current_message(state),
        )
    )


def _remind(state: IncidentState, cmd: RemindUnacknowledged, ctx: Context) -> Decision:
    current = state.freeze
    if current is None or not current.active:
        return Rejection("posting is not frozen")
    staff_ids = sorted(set(cmd.staff_ids))
    if not staff_ids:
        return Rejection("nobody to remind")
    events: list[EventBase] = [
        RemindersSent(**_base(ctx, state), freeze_seq=current.seq, staff_ids=staff_ids)
    ]
    seq = state.next_seq("reminder")
    for staff_id in staff_ids:
        envelope = ctx.signer.sign(
            type="freeze.reminder",
            org=ctx.org,
            seq=seq,
            body={"staff_id": staff_id, "freeze_seq": current.seq},
            issued_at=ctx.now,
        )
        events.append(
            OutboxRequested(
                **_base(ctx, state),
                effect_id=ctx.new_id(),
                topic=topics.staff_remind(ctx.org, staff_id),
                payload=envelope.to_json(),
                qos=1,
                retain=False,
                stream="reminder",
                seq=seq,
            )
        )
        seq += 1
    return Accepted(events)


def _publish_current(
    state: IncidentState,
    cmd: PublishCurrentMessage,
    ctx: Context,
    version_id: str | None = None,
) -> Decision:
    text = cmd.text.strip()
    if not text:
        return Rejection("the message is empty")
    if len(text) > MAX_MESSAGE_CHARS:
        return Rejection(f"the message is too long ({len(text)} > {MAX_MESSAGE_CHARS} characters)")
    if not state.is_open:
        return Rejection("open an incident first")
    version_id = version_id or message_version_id({"nb": text})
    if state.current_message is not None and state.current_message.version_id == version_id:
        return Rejection("this exact message is already the current message")
    seq = state.next_seq("message")
    envelope = ctx.signer.sign(
        type="message.current",
        org=ctx.org,
        seq=seq,
        body={"version_id": version_id, "variants": {"nb": text}, "incident_id": state.incident_id},
        issued_at=ctx.now,
    )
    events: list[EventBase] = [
        CurrentMessageSet(**_base(ctx, state), version_id=version_id, text=text),
        OutboxRequested(
            **_base(ctx, state),
            effect_id=ctx.new_id(),
            topic=topics.message_current(ctx.org),
            payload=envelope.to_json(),
            qos=1,
            retain=True,
            stream="message",
            seq=seq,
        ),
    ]
    current = state.freeze
    if current is not None and current.active:
        # The freeze notice always carries the current approved message.
        events += _freeze_events(
            state,
            ctx,
            action=FreezeAction.UPDATE,
            active=True,
            departments=current.departments,
            reason=current.reason,
            expires_at=current.expires_at,
            notice=current.notice,
            message=(version_id, text),
        )
    return Accepted(events)


def _ack_problem(state: IncidentState, body: dict[str, Any], ctx: Context) -> str:
    """Why an acknowledgement cannot count ('' when it can)."""
    staff_id = str(body["staff_id"])
    seq = int(body["seq"])
    if ctx.roster is not None and staff_id not in ctx.roster:
        return f"ack from unknown staff id {staff_id!r}"
    current = state.freeze
    if current is None:
        return f"ack for seq {seq}, but no freeze notice has been published"
    if seq != current.seq:
        return f"stale ack for seq {seq} (the current freeze notice is seq {current.seq})"
    return ""


def _receive(state: IncidentState, cmd: ReceiveFromBus, ctx: Context) -> Decision:
    result = inbound.classify(cmd.topic, cmd.payload, org=ctx.org)
    if isinstance(result, inbound.Rejected):
        return Accepted(
            [
                InboundRejected(
                    **_base(ctx, state),
                    topic=cmd.topic[:500],
                    reason=result.reason,
                    size=result.size,
                    excerpt=result.excerpt,
                )
            ]
        )
    if result.kind == "presence":
        online = result.body["status"] == "online"
        key = f"{result.role}/{result.member_id}"
        if state.presence.get(key) is online:
            return Accepted([])
        return Accepted(
            [
                PresenceChanged(
                    **_base(ctx, state),
                    role=str(result.role),
                    member_id=str(result.member_id),
                    online=online,
                )
            ]
        )
    if result.key in state.inbound_keys:
        return Accepted([])  # a QoS 1 redelivery: journaled once already
    if result.kind is InboundKind.ACK:
        problem = _ack_problem(state, result.body, ctx)
        if problem:
            return Accepted(
                [
                    InboundRejected(
                        **_base(ctx, state),
                        topic=cmd.topic[:500],
                        reason=f"{cmd.topic}: {problem}",
                        size=len(cmd.payload),
                        excerpt=inbound.excerpt(cmd.payload),
                    )
                ]
            )
    return Accepted(
        [
            InboundReceived(
                **_base(ctx, state),
                topic=cmd.topic,
                kind=result.kind,
                key=result.key,
                channel=result.channel,
                body=result.body,
            )
        ]
    )
