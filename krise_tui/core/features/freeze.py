"""Freeze employee posting: signed, retained notices, acknowledgements and reminders.

A freeze, extension, update (the current message changed), re-assertion or lift is one
:class:`FreezeChanged` plus a signed, retained notice on the freeze topic that always
carries the currently approved message. Staff terminals acknowledge the notice's
``seq``; the roll-call (:mod:`krise_tui.core.rollcall`) is computed from the acks and
the terminals' presence. Every reason and notice text is checked for ID numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError

from krise_tui.core.features.outbox import OutboxRequested, Requests, Target
from krise_tui.core.kernel import (
    Accepted,
    BusEvent,
    BusSource,
    Context,
    Decision,
    EventBase,
    Rejection,
)
from krise_tui.core.registry import Feature
from krise_tui.core.textcheck import first_block
from krise_tui.wire.safejson import validate_strict
from krise_tui.wire.staff import (
    FREEZE_TYPE,
    REMINDER_TYPE,
    FreezeNotice,
    NoticeMessage,
    Reminder,
    StaffAck,
)

if TYPE_CHECKING:
    from krise_tui.core.state import IncidentState

feature = Feature("freeze")


class FreezeAction(StrEnum):
    """What a freeze change did."""

    FREEZE = "freeze"
    EXTEND = "extend"
    UPDATE = "update"
    """The current message changed while frozen: the notice carries the new one."""
    REASSERT = "reassert"
    """The same freeze published again (an older notice was found on the broker)."""
    LIFT = "lift"


# --- state ---------------------------------------------------------------------------


@dataclass
class FreezeState:
    """The freeze as the console last published it."""

    active: bool
    seq: int
    departments: list[str]
    reason: str
    since: datetime
    """When this freeze was first activated (unchanged by extend/update)."""
    changed_at: datetime
    by: str
    expires_at: datetime | None = None
    message_version_id: str | None = None
    message_variants: dict[str, str] = field(default_factory=dict)
    notice: dict[str, str] = field(default_factory=dict)
    ack_from: int = 0
    """The oldest notice seq whose acknowledgement still counts: a re-assertion repeats
    the notice it re-asserts, so an acknowledgement of that one stands (0: this seq)."""

    def acknowledged_by(self, seq: int) -> bool:
        """Whether an acknowledgement of notice ``seq`` counts for this notice."""
        return (self.ack_from or self.seq) <= seq <= self.seq

    @property
    def message_text(self) -> str | None:
        """The carried message in bokmål."""
        return self.message_variants.get("nb")

    def covers(self, department: str | None) -> bool:
        """Whether a staff member of ``department`` is in scope."""
        return not self.departments or (department is not None and department in self.departments)


@dataclass
class Ack:
    """A staff terminal's acknowledgement of a freeze notice."""

    seq: int
    at: datetime


@dataclass
class FreezeSlice:
    """The current freeze, who acknowledged which notice, who was reminded when."""

    current: FreezeState | None = None
    acks: dict[str, Ack] = field(default_factory=dict)
    """Staff id -> newest acknowledgement."""
    reminders: dict[str, datetime] = field(default_factory=dict)
    """Staff id -> when the last reminder for the current notice went out."""

    @property
    def active(self) -> bool:
        """Whether posting is frozen now."""
        return self.current is not None and self.current.active


# --- commands ------------------------------------------------------------------------


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
class ReassertFreeze:
    """Publish the current freeze state again (an older notice was found retained)."""


@dataclass(frozen=True)
class RemindUnacknowledged:
    """Send a signed reminder to these staff terminals (those that have not acknowledged)."""

    staff_ids: tuple[str, ...]


# --- events --------------------------------------------------------------------------


@feature.event
class FreezeChanged(EventBase):
    """Employee posting was frozen, extended, updated, re-asserted or lifted."""

    type: Literal["freeze.changed"] = "freeze.changed"
    action: FreezeAction
    active: bool
    departments: list[str] = Field(default_factory=list)
    """Departments in scope; empty means all staff."""
    reason: str
    expires_at: datetime | None = None
    message_version_id: str | None = None
    message_variants: dict[str, str] = Field(default_factory=dict)
    notice: dict[str, str] = Field(default_factory=dict)
    """The playbook's notice text per language."""
    seq: int
    """The notice's envelope ``seq`` on the ``freeze`` stream: acks must name it."""
    ack_from: int | None = None
    """A re-assertion: acks from this seq on still count (None: only this seq's)."""


@feature.event
class RemindersSent(EventBase):
    """Reminders went to staff terminals that had not acknowledged the freeze."""

    type: Literal["freeze.reminders_sent"] = "freeze.reminders_sent"
    freeze_seq: int
    staff_ids: list[str]


@feature.event
class StaffAcknowledged(BusEvent):
    """A staff terminal acknowledged the freeze notice ``seq`` (from its own topic)."""

    type: Literal["freeze.acknowledged"] = "freeze.acknowledged"
    staff_id: str
    seq: int


# --- decide --------------------------------------------------------------------------


def _message(state: IncidentState) -> tuple[str, dict[str, str]] | None:
    current = state.messages.current
    return None if current is None else (current.version_id, dict(current.variants))


def freeze_events(
    state: IncidentState,
    ctx: Context,
    *,
    action: FreezeAction,
    active: bool,
    departments: list[str],
    reason: str,
    expires_at: datetime | None,
    notice: dict[str, str],
    message: tuple[str, dict[str, str]] | None,
    requests: Requests | None = None,
) -> list[EventBase]:
    """A :class:`FreezeChanged` and the signed, retained notice that carries it."""
    requests = requests or Requests(state, ctx)
    previous = state.freeze.current
    since = ctx.now if action is FreezeAction.FREEZE or previous is None else previous.since
    # A re-assertion says nothing new: acknowledgements of the notice it repeats stand.
    ack_from = (
        (previous.ack_from or previous.seq)
        if action is FreezeAction.REASSERT and previous
        else None
    )
    version_id, variants = message if message is not None else (None, {})
    body = FreezeNotice(
        active=active,
        action=str(action),
        departments=departments,
        reason=reason,
        since=since,
        expires_at=expires_at,
        notice=notice,
        message=None
        if version_id is None
        else NoticeMessage(version_id=version_id, variants=variants),
        incident_id=state.incident.incident_id,
        org_name=ctx.org_name,
        ack_from=ack_from,
    )
    request: OutboxRequested = requests.publish(
        Target.FREEZE,
        envelope_type=FREEZE_TYPE,
        stream="freeze",
        body=body.model_dump(mode="json"),
        retain=True,
    )
    return [
        FreezeChanged(
            **ctx.base(state),
            action=action,
            active=active,
            departments=departments,
            reason=reason,
            expires_at=expires_at,
            message_version_id=version_id,
            message_variants=variants,
            notice=notice,
            seq=request.publish.seq,
            ack_from=ack_from,
        ),
        request,
    ]


def _needs_open(state: IncidentState) -> Rejection | None:
    if not state.is_open:
        return Rejection("open an incident first", "åpne en hendelse først")
    return None


def _not_frozen() -> Rejection:
    return Rejection("posting is not frozen", "publisering er ikke fryst")


@feature.decides(Freeze)
def freeze(state: IncidentState, cmd: Freeze, ctx: Context) -> Decision:
    """Freeze posting with a reason (checked), an optional scope and expiry."""
    if (problem := _needs_open(state)) is not None:
        return problem
    if state.freeze.active:
        return Rejection(
            "posting is already frozen (extend or lift it instead)",
            "publisering er allerede fryst (forleng eller opphev i stedet)",
        )
    reason = cmd.reason.strip()
    if not reason:
        return Rejection("a freeze needs a reason", "en frys trenger en begrunnelse")
    if cmd.expires_at is not None and cmd.expires_at <= ctx.now:
        return Rejection("the expiry must be in the future", "utløpet må være fram i tid")
    blocked = first_block(
        (reason, "freeze-reason"),
        *(
            (text, "freeze-notice", f"frysmeldingen ({lang})", f"the freeze notice ({lang})")
            for lang, text in cmd.notice
        ),
    )
    if blocked is not None:
        return blocked
    departments = sorted(set(cmd.departments))
    if ctx.roster is not None and departments:
        known = {d for d in ctx.roster.values() if d}
        unknown = [d for d in departments if d not in known]
        if unknown:
            names = ", ".join(unknown)
            return Rejection(f"unknown department(s): {names}", f"ukjent avdeling: {names}")
    return Accepted(
        freeze_events(
            state,
            ctx,
            action=FreezeAction.FREEZE,
            active=True,
            departments=departments,
            reason=reason,
            expires_at=cmd.expires_at,
            notice=dict(cmd.notice),
            message=_message(state),
        )
    )


@feature.decides(ExtendFreeze)
def extend(state: IncidentState, cmd: ExtendFreeze, ctx: Context) -> Decision:
    """Move the expiry of the active freeze (or remove it)."""
    current = state.freeze.current
    if current is None or not current.active:
        return _not_frozen()
    if cmd.expires_at is not None and cmd.expires_at <= ctx.now:
        return Rejection("the new expiry must be in the future", "nytt utløp må være fram i tid")
    reason = cmd.reason.strip() or current.reason
    blocked = first_block((reason, "freeze-reason"))
    if blocked is not None:
        return blocked
    return Accepted(
        freeze_events(
            state,
            ctx,
            action=FreezeAction.EXTEND,
            active=True,
            departments=current.departments,
            reason=reason,
            expires_at=cmd.expires_at,
            notice=current.notice,
            message=_message(state),
        )
    )


@feature.decides(LiftFreeze)
def lift(state: IncidentState, cmd: LiftFreeze, ctx: Context) -> Decision:
    """Lift the freeze, with a reason (checked)."""
    current = state.freeze.current
    if current is None or not current.active:
        return _not_frozen()
    reason = cmd.reason.strip()
    if not reason:
        return Rejection(
            "lifting a freeze needs a reason", "å oppheve en frys krever en begrunnelse"
        )
    blocked = first_block((reason, "lift-reason"))
    if blocked is not None:
        return blocked
    return Accepted(
        freeze_events(
            state,
            ctx,
            action=FreezeAction.LIFT,
            active=False,
            departments=current.departments,
            reason=reason,
            expires_at=None,
            notice={},
            message=_message(state),
        )
    )


@feature.decides(ReassertFreeze)
def reassert(state: IncidentState, cmd: ReassertFreeze, ctx: Context) -> Decision:
    """Publish the freeze state again with a new ``seq`` (the newest always wins)."""
    current = state.freeze.current
    if current is None:
        return Rejection("no freeze notice has been published", "ingen frysmelding er sendt")
    return Accepted(
        freeze_events(
            state,
            ctx,
            action=FreezeAction.REASSERT,
            active=current.active,
            departments=current.departments,
            reason=current.reason,
            expires_at=current.expires_at,
            notice=current.notice,
            message=_message(state),
        )
    )


@feature.decides(RemindUnacknowledged)
def remind(state: IncidentState, cmd: RemindUnacknowledged, ctx: Context) -> Decision:
    """A signed reminder on each named terminal's own topic."""
    current = state.freeze.current
    if current is None or not current.active:
        return _not_frozen()
    staff_ids = sorted(set(cmd.staff_ids))
    if not staff_ids:
        return Rejection("nobody to remind", "ingen å påminne")
    requests = Requests(state, ctx)
    events: list[EventBase] = [
        RemindersSent(**ctx.base(state), freeze_seq=current.seq, staff_ids=staff_ids)
    ]
    for staff_id in staff_ids:
        events.append(
            requests.publish(
                Target.STAFF_REMIND,
                envelope_type=REMINDER_TYPE,
                stream="reminder",
                body=Reminder(staff_id=staff_id, freeze_seq=current.seq).model_dump(mode="json"),
                staff_id=staff_id,
            )
        )
    return Accepted(events)


@feature.accepts("staff.ack")
def accept_ack(
    state: IncidentState, source: BusSource, data: dict[str, Any], ctx: Context
) -> Decision:
    """A terminal's acknowledgement, on its own topic, for the current notice."""
    try:
        ack = validate_strict(StaffAck, data)
    except ValidationError as exc:
        return Rejection(f"wrong schema: {_problems(exc)}")
    if ack.staff_id != source.member_id:
        return Rejection(f"ack names staff {ack.staff_id!r} on another's topic")
    if ctx.roster is not None and ack.staff_id not in ctx.roster:
        return Rejection(f"ack from unknown staff id {ack.staff_id!r}")
    current = state.freeze.current
    if current is None:
        return Rejection(f"ack for seq {ack.seq}, but no freeze notice has been published")
    if not current.acknowledged_by(ack.seq):
        return Rejection(
            f"stale ack for seq {ack.seq} (the current freeze notice is seq {current.seq})"
        )
    seen = state.freeze.acks.get(ack.staff_id)
    if seen is not None and seen.seq == ack.seq:
        return Accepted([])  # a QoS 1 redelivery or a resend: counted once
    event = StaffAcknowledged(
        **ctx.base(state), topic=source.topic, staff_id=ack.staff_id, seq=ack.seq
    )
    return Accepted([event])


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
        for err in exc.errors()[:5]
    )


# --- fold ----------------------------------------------------------------------------


@feature.applies(FreezeChanged)
def _changed(state: IncidentState, event: FreezeChanged) -> None:
    slice_ = state.freeze
    previous = slice_.current
    fresh = event.action is FreezeAction.FREEZE or previous is None
    slice_.current = FreezeState(
        active=event.active,
        seq=event.seq,
        departments=list(event.departments),
        reason=event.reason,
        since=event.ts if fresh or previous is None else previous.since,
        changed_at=event.ts,
        by=event.actor,
        expires_at=event.expires_at,
        message_version_id=event.message_version_id,
        message_variants=dict(event.message_variants),
        notice=dict(event.notice),
        ack_from=event.ack_from or 0,
    )
    if event.action is not FreezeAction.REASSERT:  # the same notice: reminders stand
        slice_.reminders.clear()


@feature.applies(RemindersSent)
def _reminded(state: IncidentState, event: RemindersSent) -> None:
    for staff_id in event.staff_ids:
        state.freeze.reminders[staff_id] = event.ts


@feature.applies(StaffAcknowledged)
def _acked(state: IncidentState, event: StaffAcknowledged) -> None:
    state.freeze.acks[event.staff_id] = Ack(seq=event.seq, at=event.ts)


# --- describe ------------------------------------------------------------------------

_ACTION_WORDS = {
    FreezeAction.FREEZE: ("Publisering fryst", "Posting frozen"),
    FreezeAction.EXTEND: ("Frys forlenget", "Freeze extended"),
    FreezeAction.UPDATE: ("Frysmelding oppdatert", "Freeze notice updated"),
    FreezeAction.REASSERT: ("Frysmelding sendt på nytt", "Freeze notice re-sent"),
    FreezeAction.LIFT: ("Frys opphevet", "Freeze lifted"),
}


@feature.describes(FreezeChanged)
def _d_changed(event: FreezeChanged, lang: str) -> str:
    nb, en = _ACTION_WORDS[event.action]
    scope = ", ".join(event.departments) or ("all staff" if lang == "en" else "alle ansatte")
    return f"{en if lang == 'en' else nb} ({scope}): {event.reason}"


@feature.describes(RemindersSent)
def _d_reminded(event: RemindersSent, lang: str) -> str:
    n = len(event.staff_ids)
    if lang == "en":
        return f"Reminder sent to {n} terminal{'s' if n != 1 else ''}"
    return f"Påminnelse sendt til {n} terminal{'er' if n != 1 else ''}"


@feature.describes(StaffAcknowledged)
def _d_acked(event: StaffAcknowledged, lang: str) -> str:
    if lang == "en":
        return f"{event.staff_id} acknowledged freeze notice no. {event.seq}"
    return f"{event.staff_id} kvitterte for frysmelding nr. {event.seq}"
