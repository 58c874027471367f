"""Scoring a drill: its objectives met or missed, and the measures of the after-action report.

Everything is computed from the journal's events (the truth of what happened, with the
drill's times) plus the drill's own log (world events, refused actions): a drill scored
now and the same journal scored next year give the same card. The measures:

- each objective **met**, **missed** or **pending** (its deadline lies after the end of
  the drill), with the deadline and the time it was achieved;
- time to the **first message**; every published message;
- per **batch** of questions: when its first question came, when an answer (final or
  preliminary) went to its askers, against the playbook's deadline;
- per **rumour**: first sighting, verdict, correction, sightings after it;
- the **freeze acknowledgement curve**: the share of staff in scope who had acknowledged
  a notice of the freeze, over time;
- **channel failures**: every failed delivery with the platform's reason, and when it
  was re-sent and delivered;
- a **timeline** of what happened, for the report.

Offsets are from the drill's start (T+0); a journal without a scenario is measured from
the incident's opening.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from krise_tui.core.features.freeze import FreezeAction, FreezeChanged, StaffAcknowledged
from krise_tui.core.features.inbound import InboundRejected, PostReceived, PresenceChanged
from krise_tui.core.features.messages import (
    DeliveryReceipt,
    DeliveryRetried,
    MessageApproved,
    MessagePublished,
)
from krise_tui.core.features.outbox import OutboxRequested, Target
from krise_tui.core.features.questions import (
    AnswerPublished,
    PostTriaged,
    ReplyRetried,
    post_of,
)
from krise_tui.core.features.rumours import (
    RumourCorrected,
    RumourRegistered,
    RumourSighted,
    RumourStateChanged,
)
from krise_tui.core.kernel import EventBase
from krise_tui.core.state import IncidentState, fold
from krise_tui.drill.scenario import LoadedScenario, Objective
from krise_tui.playbook.models import Deadlines, Org, Playbook, format_duration
from krise_tui.rules.triage import Label, label_text, must_answer
from krise_tui.wire.delivery import DELIVER_TYPE, ReceiptStatus

Status = Literal["met", "missed", "pending"]

DEFAULT_DELIVERY_WITHIN = timedelta(minutes=15)
"""How soon a delivery must arrive for a ``deliveries`` objective without ``within``."""

TITLES: dict[str, str] = {
    "first_message": "Første melding publisert",
    "batches_answered": "Alle spørsmålsgrupper besvart innen fristen",
    "rumour_corrected": "Rykte korrigert",
    "freeze_acknowledged": "Ansatte har kvittert for frysen",
    "update_cadence": "Jevnlige oppdateringer",
    "deliveries": "Alle kanaler har fått meldingene",
}
"""Objective titles by kind, in bokmål (when the scenario gives none)."""

KIND_LABELS: dict[str, frozenset[Label]] = {
    "question": frozenset({Label.SERVICE_QUESTION}),
    "criticism": frozenset({Label.CRITICISM, Label.DISSATISFIED}),
    "rumour": frozenset({Label.RUMOUR, Label.FACTUAL_ERROR}),
    "attack": frozenset({Label.ATTACK}),
    "case": frozenset({Label.CASE_PROCESSING}),
    "praise": frozenset({Label.IRRELEVANT}),
    "other": frozenset({Label.IRRELEVANT}),
}
"""Which triage labels agree with a scenario's kind of post."""


def fmt_offset(value: timedelta | None) -> str:
    """``T+01:05`` (hours and minutes; seconds when there are any)."""
    if value is None:
        return "–"
    sign = "-" if value < timedelta(0) else "+"
    seconds = abs(int(value.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"T{sign}{hours:02d}:{minutes:02d}"
    return f"{text}:{secs:02d}" if secs else text


def fmt_duration(value: timedelta | None) -> str:
    """``1h5m`` (``–`` when there is none)."""
    if value is None:
        return "–"
    if value <= timedelta(0):
        return "0"
    return format_duration(value)


@dataclass
class ObjectiveResult:
    """One objective, scored."""

    id: str
    kind: str
    title: str
    status: Status
    deadline: timedelta | None
    """The absolute deadline (offset), when there is one."""
    achieved: timedelta | None
    """When it was achieved (offset)."""
    detail: str = ""
    target: float | None = None
    """``freeze_acknowledged``: the share to reach."""


@dataclass
class MessageRow:
    """A published message."""

    at: timedelta
    version_id: str
    headline: str
    status: str
    channels: list[str]
    author: str
    approver: str


@dataclass
class BatchRow:
    """One batch of questions and its answer."""

    batch_id: str
    title: str
    questions: int
    opened: timedelta
    answered: timedelta | None
    kind: str | None
    """``final`` or ``preliminary`` (the first answer that reached its askers)."""
    deadline: timedelta
    status: Status

    @property
    def time_to_answer(self) -> timedelta | None:
        """From the first question to the answer."""
        return None if self.answered is None else self.answered - self.opened


@dataclass
class RumourRow:
    """One rumour's life."""

    rumour_id: str
    claim: str
    first_seen: timedelta
    registered: timedelta
    verdict: timedelta | None
    corrected: timedelta | None
    state: str
    sightings: int
    recurrences: int

    @property
    def time_to_correction(self) -> timedelta | None:
        """From the first sighting to the published correction."""
        return None if self.corrected is None else self.corrected - self.first_seen


@dataclass
class FreezeCurve:
    """Who had acknowledged a freeze, over time."""

    since: timedelta
    seq: int
    in_scope: int
    points: list[tuple[timedelta, float]] = field(default_factory=list)
    """``(offset, share)`` at every acknowledgement (a step function), from the freeze."""
    lifted: timedelta | None = None

    def share_at(self, offset: timedelta) -> float:
        """The share acknowledged by ``offset``."""
        share = 0.0
        for at, value in self.points:
            if at <= offset:
                share = value
        return share

    def reached(self, share: float) -> timedelta | None:
        """When the share first reached ``share``."""
        for at, value in self.points:
            if value + 1e-9 >= share:
                return at
        return None


@dataclass
class ChannelFailure:
    """A delivery that failed, and what came of it."""

    channel: str
    at: timedelta
    reason: str
    what: str
    """``melding`` (a message) or ``svar`` (a reply to an asker)."""
    final: bool
    resent: timedelta | None = None
    delivered: timedelta | None = None
    superseded: timedelta | None = None
    """When a later message reached this channel instead (an old version is not re-sent)."""

    def outcome(self, off: Callable[[timedelta | None], str]) -> str:
        """The "sent again" cell: when, or that a later version took its place."""
        if self.resent is None and self.superseded is not None:
            return f"erstattet {off(self.superseded)}"
        return off(self.resent)


@dataclass
class TimelineRow:
    """One line of the report's timeline."""

    at: timedelta
    kind: str
    """``world``, ``post``, ``message``, ``answer``, ``rumour``, ``freeze``, ``staff``,
    ``failure``, ``action``, ``note``."""
    text: str
    ok: bool = True


@dataclass
class Scorecard:
    """Everything the after-action report shows."""

    title: str
    scenario_id: str
    response: str | None
    start: datetime
    end: timedelta
    timezone: str
    objectives: list[ObjectiveResult]
    messages: list[MessageRow]
    batches: list[BatchRow]
    rumours: list[RumourRow]
    freezes: list[FreezeCurve]
    failures: list[ChannelFailure]
    timeline: list[TimelineRow]
    posts: int
    posts_by_channel: dict[str, int]
    post_counts: list[tuple[timedelta, int]]
    """Posts per quarter hour (from the start of each quarter)."""
    triage_agreement: float | None
    """Share of posts whose triage label fits what the scenario meant them to be."""
    rejected_inbound: int
    refused_actions: list[TimelineRow]
    state_hash: str = ""
    event_count: int = 0

    @property
    def met(self) -> int:
        """Objectives met."""
        return sum(1 for o in self.objectives if o.status == "met")

    @property
    def missed(self) -> list[str]:
        """Ids of the objectives missed."""
        return [o.id for o in self.objectives if o.status == "missed"]

    @property
    def first_message(self) -> timedelta | None:
        """Time to the first published message."""
        return self.messages[0].at if self.messages else None


# --- the card ------------------------------------------------------------------------------


@dataclass
class _Context:
    start: datetime
    end: timedelta
    playbook: Playbook | None
    org: Org | None

    def off(self, when: datetime) -> timedelta:
        return when - self.start


def score(
    events: Sequence[EventBase],
    loaded: LoadedScenario | None = None,
    *,
    response: str | None = None,
    log: Iterable[object] = (),
    end: datetime | None = None,
    state_hash: str = "",
) -> Scorecard:
    """Score a journal's ``events`` against a scenario's objectives (see the module doc).

    ``log`` is the player's :class:`~krise_tui.drill.player.LogEntry` list (world
    events, refused actions), ``end`` when the drill ended (default: the last event).
    """
    state = fold(events)
    if loaded is not None:
        start = loaded.scenario.start
        playbook: Playbook | None = loaded.playbook
        org: Org | None = loaded.org
        title, scenario_id = loaded.scenario.title, loaded.scenario.id
        timezone = loaded.timezone
        objectives: list[Objective] = list(loaded.scenario.objectives)
        kinds = {f"{p.channel}:{p.id}": p.kind for _, p, _ in loaded.scenario.posts()}
    else:
        start = state.incident.opened_at or (events[0].ts if events else datetime.now())
        playbook = org = None
        title, scenario_id = state.incident.title or "Hendelse", state.incident.playbook_id or ""
        timezone = "Europe/Oslo"
        objectives = []
        kinds = {}
    last = end or (events[-1].ts if events else start)
    ctx = _Context(start, last - start, playbook, org)
    messages = _messages(events, ctx)
    batches = _batches(state, events, ctx)
    rumours = _rumours(state, events, ctx)
    freezes = _freezes(events, ctx, state)
    failures = _failures(events, ctx, state)
    posts = [e for e in events if isinstance(e, PostReceived)]
    by_channel: dict[str, int] = {}
    for post in posts:
        by_channel[post.channel] = by_channel.get(post.channel, 0) + 1
    agreement = _agreement(events, kinds)
    timeline, refused, post_counts = _timeline(events, ctx, log, state)
    card = Scorecard(
        title=title,
        scenario_id=scenario_id,
        response=response,
        start=start,
        end=ctx.end,
        timezone=timezone,
        objectives=[],
        messages=messages,
        batches=batches,
        rumours=rumours,
        freezes=freezes,
        failures=failures,
        timeline=timeline,
        posts=len(posts),
        posts_by_channel=dict(sorted(by_channel.items())),
        post_counts=post_counts,
        triage_agreement=agreement,
        rejected_inbound=sum(1 for e in events if isinstance(e, InboundRejected)),
        refused_actions=refused,
        state_hash=state_hash,
        event_count=len(events),
    )
    card.objectives = [_objective(o, card, ctx, events, state) for o in objectives]
    return card


def _messages(events: Sequence[EventBase], ctx: _Context) -> list[MessageRow]:
    approved = {e.version_id: e for e in events if isinstance(e, MessageApproved)}
    rows = []
    for event in events:
        if isinstance(event, MessagePublished):
            version = approved.get(event.version_id)
            headline = ""
            if version is not None:
                nb = next((v for v in version.variants if v.get("lang") == "nb"), None)
                headline = str((nb or {}).get("headline", ""))
            rows.append(
                MessageRow(
                    at=ctx.off(event.ts),
                    version_id=event.version_id,
                    headline=headline,
                    status=version.status if version else "published",
                    channels=list(event.channels),
                    author=version.author if version else "",
                    approver=version.approver if version else event.actor,
                )
            )
    return rows


def _batch_deadline(ctx: _Context, objective: Objective | None = None) -> timedelta:
    if objective is not None and objective.within is not None:
        return objective.within
    if ctx.playbook is not None:
        return ctx.playbook.deadlines.answer_batch
    return timedelta(hours=8)


def _batches(
    state: IncidentState,
    events: Sequence[EventBase],
    ctx: _Context,
    within: timedelta | None = None,
) -> list[BatchRow]:
    qs = state.questions
    deadline = within or _batch_deadline(ctx)
    answered: dict[str, tuple[datetime, str]] = {}
    for event in events:
        if isinstance(event, AnswerPublished) and event.posts:
            answer = qs.answers.get(event.answer_id)
            kind = answer.kind if answer is not None else "final"
            if kind not in ("final", "preliminary"):
                continue
            live = qs.resolve(event.batch_id)
            if live not in answered:
                answered[live] = (event.ts, kind)
    rows = []
    for batch in sorted(qs.batches.values(), key=lambda b: (b.created_at, b.batch_id)):
        if batch.merged_into is not None:
            continue
        asked = [
            qs.questions[k]
            for k in batch.members
            if k in qs.questions and must_answer(Label(qs.questions[k].label))
        ]
        if not asked:
            continue
        opened = ctx.off(min(post_of(state, q).received_at for q in asked))
        first = answered.get(batch.batch_id)
        at = ctx.off(first[0]) if first else None
        due = opened + deadline
        status: Status
        if at is not None and at <= due:
            status = "met"
        elif at is None and due > ctx.end:
            status = "pending"
        else:
            status = "missed"
        rows.append(
            BatchRow(
                batch_id=batch.batch_id,
                title=batch.title,
                questions=len(asked),
                opened=opened,
                answered=at,
                kind=first[1] if first else None,
                deadline=due,
                status=status,
            )
        )
    return rows


def _rumours(state: IncidentState, events: Sequence[EventBase], ctx: _Context) -> list[RumourRow]:
    verdicts: dict[str, datetime] = {}
    registered: dict[str, datetime] = {}
    for event in events:
        if isinstance(event, RumourStateChanged) and event.state in (
            "true",
            "false",
            "unconfirmable",
        ):
            verdicts.setdefault(event.rumour_id, event.ts)
        elif isinstance(event, RumourRegistered):
            registered[event.rumour_id] = event.ts
    rows = []
    for rumour in state.rumours.rumours.values():
        rows.append(
            RumourRow(
                rumour_id=rumour.rumour_id,
                claim=rumour.claim,
                first_seen=ctx.off(rumour.first_seen),
                registered=ctx.off(registered.get(rumour.rumour_id, rumour.registered_at)),
                verdict=ctx.off(verdicts[rumour.rumour_id])
                if rumour.rumour_id in verdicts
                else None,
                corrected=ctx.off(rumour.corrected_at) if rumour.corrected_at else None,
                state=str(rumour.state),
                sightings=len(rumour.sightings),
                recurrences=rumour.recurrences,
            )
        )
    return rows


def _roster(ctx: _Context) -> dict[str, str | None]:
    if ctx.org is None:
        return {}
    return {str(s): g.id for g in ctx.org.staff_groups for s in g.staff or []}


def _freezes(events: Sequence[EventBase], ctx: _Context, state: IncidentState) -> list[FreezeCurve]:
    """One curve per freeze (from its activation to its lift or the end)."""
    roster = _roster(ctx)
    known: dict[str, datetime] = {}
    for event in events:
        if isinstance(event, PresenceChanged) and event.role == "staff":
            known.setdefault(event.member_id, event.ts)
        elif isinstance(event, StaffAcknowledged):
            known.setdefault(event.staff_id, event.ts)
    curves: list[FreezeCurve] = []
    current: FreezeCurve | None = None
    scope: list[str] = []
    acked: set[str] = set()
    staff = {**dict.fromkeys(known), **roster}
    for event in events:
        if isinstance(event, FreezeChanged):
            if event.action is FreezeAction.FREEZE:
                current = FreezeCurve(since=ctx.off(event.ts), seq=event.seq, in_scope=0)
                scope = sorted(
                    s
                    for s, dept in staff.items()
                    if not event.departments or (dept is not None and dept in event.departments)
                )
                current.in_scope = len(scope)
                current.points.append((current.since, 0.0))
                acked = set()
                curves.append(current)
            elif event.action is FreezeAction.LIFT and current is not None:
                current.lifted = ctx.off(event.ts)
                current = None
        elif (
            isinstance(event, StaffAcknowledged)
            and current is not None
            and event.seq >= current.seq
            and event.staff_id in scope
            and event.staff_id not in acked
        ):
            acked.add(event.staff_id)
            share = len(acked) / current.in_scope if current.in_scope else 0.0
            current.points.append((ctx.off(event.ts), share))
    return curves


def _failures(
    events: Sequence[EventBase], ctx: _Context, state: IncidentState
) -> list[ChannelFailure]:
    kinds: dict[str, str] = {}
    requested: dict[str, int] = {}  # effect id -> order of its request
    for event in events:
        if isinstance(event, OutboxRequested) and event.publish.target is Target.CHANNEL_OUT:
            kinds[event.effect_id] = (
                "melding" if event.publish.envelope_type == DELIVER_TYPE else "svar"
            )
            requested.setdefault(event.effect_id, len(requested))
    failures: list[ChannelFailure] = []
    open_: dict[str, ChannelFailure] = {}
    for event in events:
        if isinstance(event, DeliveryReceipt):
            receipt = event.receipt
            if receipt.status is ReceiptStatus.FAILED:
                failure = ChannelFailure(
                    channel=event.channel,
                    at=ctx.off(event.ts),
                    reason=receipt.reason or "ukjent feil",
                    what=kinds.get(event.effect_id, "melding"),
                    final=receipt.final or receipt.permanent,
                )
                failures.append(failure)
                open_[event.effect_id] = failure
            elif receipt.status is ReceiptStatus.DELIVERED:
                if event.effect_id in open_:
                    open_.pop(event.effect_id).delivered = ctx.off(event.ts)
                if kinds.get(event.effect_id) == "melding":  # older messages it replaces
                    order = requested.get(event.effect_id, -1)
                    for effect_id, failure in open_.items():
                        if (
                            failure.what == "melding"
                            and failure.channel == event.channel
                            and requested.get(effect_id, order) < order
                        ):
                            failure.superseded = failure.superseded or ctx.off(event.ts)
        elif isinstance(event, DeliveryRetried | ReplyRetried) and event.effect_id in open_:
            open_[event.effect_id].resent = ctx.off(event.ts)
    return failures


def _agreement(events: Sequence[EventBase], kinds: Mapping[str, str]) -> float | None:
    if not kinds:
        return None
    labels: dict[str, str] = {}
    for event in events:
        if isinstance(event, PostTriaged) and not event.corrected:
            labels.setdefault(event.key, event.label)
    pairs = [(kinds[k], labels[k]) for k in kinds if k in labels]
    if not pairs:
        return None
    agree = sum(1 for kind, label in pairs if Label(label) in KIND_LABELS.get(kind, frozenset()))
    return agree / len(pairs)


QUARTER = timedelta(minutes=15)


def _timeline(
    events: Sequence[EventBase], ctx: _Context, log: Iterable[object], state: IncidentState
) -> tuple[list[TimelineRow], list[TimelineRow], list[tuple[timedelta, int]]]:
    """The report's timeline (what happened, in words; bursts summed up), the refused
    actions, and posts per quarter hour."""
    rows: list[TimelineRow] = []
    refused: list[TimelineRow] = []
    for entry in log:
        kind = str(getattr(entry, "kind", "note"))
        offset = getattr(entry, "offset", None)
        ok = bool(getattr(entry, "ok", True))
        if not isinstance(offset, timedelta) or (kind in ("action", "posts") and ok):
            continue  # the journal says what was done; posts are counted per quarter
        text = str(getattr(entry, "text", ""))
        detail = str(getattr(entry, "detail", ""))
        line = f"{text} – {detail}" if detail else text
        row = TimelineRow(offset, "action" if kind == "action" else kind, line, ok)
        rows.append(row)
        if kind == "action":
            refused.append(row)
    quarters: dict[int, int] = {}
    answers: dict[tuple[timedelta, str], list[int]] = {}
    failures: dict[tuple[timedelta, str, str], int] = {}
    for event in events:
        at = ctx.off(event.ts)
        if isinstance(event, PostReceived):
            quarter = int(at // QUARTER)
            quarters[quarter] = quarters.get(quarter, 0) + 1
        elif isinstance(event, MessagePublished):
            version = state.messages.versions.get(event.version_id)
            headline = ""
            if version is not None:
                nb = next((v for v in version.variants if v.get("lang") == "nb"), {})
                headline = str(nb.get("headline", ""))
            rows.append(TimelineRow(at, "message", f"Publisert: «{headline}»"))
        elif isinstance(event, AnswerPublished) and event.posts and event.actor != "batching":
            answer = state.questions.answers.get(event.answer_id)
            kind = "Foreløpig svar" if answer and answer.kind == "preliminary" else "Svar"
            answers.setdefault((at, kind), []).append(len(event.posts))
        elif isinstance(event, RumourRegistered):
            text = f"Rykte registrert ({event.rumour_id}): {event.claim}"
            rows.append(TimelineRow(at, "rumour", text))
        elif isinstance(event, RumourCorrected):
            rows.append(TimelineRow(at, "rumour", f"Rykte {event.rumour_id} korrigert"))
        elif isinstance(event, RumourSighted) and event.recurrence:
            rows.append(TimelineRow(at, "rumour", f"Rykte {event.rumour_id} er tilbake", False))
        elif isinstance(event, FreezeChanged) and event.action in (
            FreezeAction.FREEZE,
            FreezeAction.LIFT,
            FreezeAction.EXTEND,
        ):
            word = {"freeze": "Publisering fryst", "lift": "Frys opphevet"}.get(
                str(event.action), "Frys forlenget"
            )
            rows.append(TimelineRow(at, "freeze", f"{word}: {event.reason}"))
        elif isinstance(event, DeliveryReceipt) and event.receipt.status is ReceiptStatus.FAILED:
            key = (at, event.channel, event.receipt.reason or "feilet")
            failures[key] = failures.get(key, 0) + 1
    for (at, kind), sizes in answers.items():
        groups = f"{len(sizes)} grupper" if len(sizes) > 1 else "1 gruppe"
        rows.append(TimelineRow(at, "answer", f"{kind} til {sum(sizes)} spørrere i {groups}"))
    for (at, channel, reason), count in failures.items():
        times = f" ({count} leveringer)" if count > 1 else ""
        rows.append(TimelineRow(at, "failure", f"{channel} feilet{times}: {reason}", False))
    counts = [(QUARTER * q, n) for q, n in sorted(quarters.items())]
    for at, count in counts:
        rows.append(TimelineRow(at, "post", f"{count} innlegg dette kvarteret"))
    rows.sort(key=lambda r: (r.at, r.kind))
    return rows, refused, counts


# --- objectives -------------------------------------------------------------------------------


def _status(achieved: timedelta | None, deadline: timedelta, end: timedelta) -> Status:
    if achieved is not None and achieved <= deadline:
        return "met"
    if achieved is None and deadline > end:
        return "pending"
    return "missed"


@dataclass
class _Scoring:
    """What every objective's scorer needs."""

    objective: Objective
    card: Scorecard
    ctx: _Context
    events: Sequence[EventBase]
    state: IncidentState

    @property
    def deadlines(self) -> Deadlines | None:
        return self.ctx.playbook.deadlines if self.ctx.playbook is not None else None

    def result(
        self,
        status: Status,
        deadline: timedelta | None,
        achieved: timedelta | None,
        detail: str,
        target: float | None = None,
    ) -> ObjectiveResult:
        objective = self.objective
        title = (objective.title or {}).get("nb") or TITLES[objective.kind]
        return ObjectiveResult(
            objective.id, objective.kind, title, status, deadline, achieved, detail, target
        )


def _objective(
    objective: Objective,
    card: Scorecard,
    ctx: _Context,
    events: Sequence[EventBase],
    state: IncidentState,
) -> ObjectiveResult:
    scorer = _SCORERS[objective.kind]
    return scorer(_Scoring(objective, card, ctx, events, state))


def _first_message(s: _Scoring) -> ObjectiveResult:
    default = s.deadlines.first_message if s.deadlines else timedelta(minutes=30)
    deadline = s.objective.by or s.objective.within or default
    achieved = s.card.first_message
    if achieved is None:
        detail = f"ingen melding publisert (frist {fmt_offset(deadline)})"
    else:
        detail = f"første melding {fmt_offset(achieved)}, frist {fmt_offset(deadline)}"
    return s.result(_status(achieved, deadline, s.ctx.end), deadline, achieved, detail)


def _batches_answered(s: _Scoring) -> ObjectiveResult:
    within = _batch_deadline(s.ctx, s.objective)
    rows = _batches(s.state, s.events, s.ctx, within) if s.objective.within else s.card.batches
    if not rows:
        return s.result("pending", None, None, "ingen spørsmål kom inn")
    missed = [b for b in rows if b.status == "missed"]
    pending = [b for b in rows if b.status == "pending"]
    if missed:
        names = ", ".join(b.batch_id for b in missed[:6])
        detail = (
            f"{len(missed)} av {len(rows)} grupper ikke besvart innen "
            f"{fmt_duration(within)}: {names}"
        )
        return s.result("missed", None, None, detail)
    last = max((b.answered for b in rows if b.answered is not None), default=None)
    detail = f"{len(rows) - len(pending)} grupper besvart innen {fmt_duration(within)}"
    if pending:
        detail += f", {len(pending)} venter (fristen er etter øvelsen)"
    return s.result("met", None, last, detail)


def _rumour_corrected(s: _Scoring) -> ObjectiveResult:
    objective = s.objective
    rumour = next((r for r in s.card.rumours if r.rumour_id == objective.rumour), None)
    if rumour is None:
        by = objective.by
        status: Status = "missed" if by is None or by <= s.ctx.end else "pending"
        return s.result(status, by, None, f"ryktet {objective.rumour} ble aldri registrert")
    default = s.deadlines.correct_rumour if s.deadlines else timedelta(hours=1)
    within = objective.within or default
    deadline = objective.by if objective.by is not None else rumour.first_seen + within
    if rumour.corrected is None:
        detail = f"ikke korrigert ({rumour.state}), frist {fmt_offset(deadline)}"
    else:
        detail = (
            f"korrigert {fmt_offset(rumour.corrected)}, sett første gang "
            f"{fmt_offset(rumour.first_seen)}, frist {fmt_offset(deadline)}"
        )
    status = _status(rumour.corrected, deadline, s.ctx.end)
    return s.result(status, deadline, rumour.corrected, detail)


def _freeze_acknowledged(s: _Scoring) -> ObjectiveResult:
    objective = s.objective
    share = objective.share or 1.0
    if not s.card.freezes:
        return s.result("missed", objective.by, None, "ingen frys ble satt", share)
    curve = s.card.freezes[0]
    if objective.by is not None:
        deadline = objective.by
    else:
        deadline = curve.since + (objective.within or timedelta(0))
    reached = curve.reached(share)
    detail = (
        f"{curve.share_at(deadline):.0%} av {curve.in_scope} hadde kvittert ved "
        f"{fmt_offset(deadline)} (mål {share:.0%})"
    )
    if reached is not None:
        detail += f"; {share:.0%} nådd {fmt_offset(reached)}"
    return s.result(_status(reached, deadline, s.ctx.end), deadline, reached, detail, share)


def _update_cadence(s: _Scoring) -> ObjectiveResult:
    default = s.deadlines.update_cadence if s.deadlines else timedelta(hours=1)
    every = s.objective.within or default
    times = [m.at for m in s.card.messages]
    if not times:
        return s.result("missed", None, None, "ingen melding publisert")
    gaps = [(b - a, a) for a, b in zip(times, [*times[1:], s.ctx.end], strict=True)]
    worst, after = max(gaps)
    detail = (
        f"lengste opphold {fmt_duration(worst)} (etter {fmt_offset(after)}), "
        f"mål {fmt_duration(every)}"
    )
    if worst > every:
        return s.result("missed", after + every, None, detail)
    return s.result("met", None, times[-1], detail)


def _deliveries(s: _Scoring) -> ObjectiveResult:
    within = s.objective.within or DEFAULT_DELIVERY_WITHIN
    requested: dict[str, tuple[datetime, str]] = {}
    delivered: dict[str, datetime] = {}
    for event in s.events:
        if (
            isinstance(event, OutboxRequested)
            and event.publish.target is Target.CHANNEL_OUT
            and event.publish.envelope_type == DELIVER_TYPE
        ):
            requested[event.effect_id] = (event.ts, event.publish.channel or "?")
        elif (
            isinstance(event, DeliveryReceipt)
            and event.receipt.status is ReceiptStatus.DELIVERED
            and event.effect_id not in delivered
        ):
            delivered[event.effect_id] = event.ts
    if not requested:
        return s.result("missed", None, None, "ingenting ble publisert")
    late: list[str] = []
    last: timedelta | None = None
    off = s.ctx.off
    for effect_id, (at, channel) in requested.items():
        done = delivered.get(effect_id)
        due = off(at) + within
        if (done is None and due <= s.ctx.end) or (done is not None and off(done) > due):
            late.append(f"{channel} {fmt_offset(off(at))}")
        elif done is not None:
            last = max(last or timedelta(0), off(done))
    if late:
        detail = f"ikke levert innen {fmt_duration(within)}: {', '.join(late[:6])}"
        return s.result("missed", None, None, detail)
    return s.result("met", None, last, f"{len(requested)} leveringer innen {fmt_duration(within)}")


_SCORERS: dict[str, Callable[[_Scoring], ObjectiveResult]] = {
    "first_message": _first_message,
    "batches_answered": _batches_answered,
    "rumour_corrected": _rumour_corrected,
    "freeze_acknowledged": _freeze_acknowledged,
    "update_cadence": _update_cadence,
    "deliveries": _deliveries,
}


def label_name(label: str) -> str:
    """A triage label in bokmål."""
    try:
        return label_text(Label(label), "nb")
    except ValueError:
        return label
