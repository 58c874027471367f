"""Rumours: from first sighting to a published correction, and an alert when they return.

The guideline: publish only known facts, do not comment on speculation, correct what is
wrong; the fact owner (the police in the acute phase, the rescue centre, another agency)
decides what is true about its facts, and the municipality never confirms what it does
not own. A rumour's life, as events:

``sighted`` → ``checking`` (who, with whom) → ``true`` / ``false`` / ``unconfirmable``
→ ``corrected`` (a correction message approved and published through the normal
four-eyes pipeline, linked here) → ``monitoring`` → ``closed``.

Every change is journaled under the operator's name; an invalid transition is refused
with a reason. The runtime's matching service (an embedding model: not pure) records
where each rumour is seen (:class:`RecordSighting`); a sighting of a rumour already
corrected is a *recurrence* and raises an alert, with an offer to reply with the
published correction (one reply per spreading post, never twice).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from krise_tui.core.features.messages import MessagePublished
from krise_tui.core.features.outbox import OutboxRequested, Requests, Target
from krise_tui.core.features.questions import NO_REPLY_KINDS, retry_failed_replies
from krise_tui.core.kernel import Accepted, Context, Decision, EventBase, Rejection
from krise_tui.core.registry import Feature
from krise_tui.core.textcheck import first_block
from krise_tui.wire.delivery import REPLY_TYPE, PostRef, ReplyRequest

if TYPE_CHECKING:
    from krise_tui.core.state import IncidentState

feature = Feature("rumours")


class RumourState(StrEnum):
    """Where a rumour is in its life."""

    SIGHTED = "sighted"
    CHECKING = "checking"
    TRUE = "true"
    FALSE = "false"
    UNCONFIRMABLE = "unconfirmable"
    CORRECTED = "corrected"
    MONITORING = "monitoring"
    CLOSED = "closed"


SETTLED: tuple[RumourState, ...] = (
    RumourState.CORRECTED,
    RumourState.MONITORING,
    RumourState.CLOSED,
)
"""States past the correction: the deadline no longer runs."""


class FactOwner(StrEnum):
    """Who owns the facts a rumour is about."""

    MUNICIPALITY = "municipality"
    POLICE = "police"
    RESCUE_CENTRE = "rescue_centre"
    OTHER = "other"


VERDICTS = frozenset({RumourState.TRUE, RumourState.FALSE, RumourState.UNCONFIRMABLE})

ALLOWED: dict[RumourState, frozenset[RumourState]] = {
    RumourState.SIGHTED: frozenset({RumourState.CHECKING, RumourState.CLOSED}),
    RumourState.CHECKING: VERDICTS | {RumourState.CLOSED},
    RumourState.TRUE: frozenset(
        {RumourState.CORRECTED, RumourState.MONITORING, RumourState.CHECKING}
    ),
    RumourState.FALSE: frozenset({RumourState.CORRECTED, RumourState.CHECKING}),
    RumourState.UNCONFIRMABLE: frozenset(
        {RumourState.CORRECTED, RumourState.MONITORING, RumourState.CHECKING}
    ),
    RumourState.CORRECTED: frozenset({RumourState.MONITORING, RumourState.CLOSED}),
    RumourState.MONITORING: frozenset({RumourState.CLOSED, RumourState.CHECKING}),
    RumourState.CLOSED: frozenset({RumourState.MONITORING}),
}
"""The transitions a rumour may make (anything else is refused with a reason)."""

STATE_WORDS = {
    RumourState.SIGHTED: ("observert", "sighted"),
    RumourState.CHECKING: ("sjekkes", "being checked"),
    RumourState.TRUE: ("bekreftet sant", "confirmed true"),
    RumourState.FALSE: ("bekreftet usant", "confirmed false"),
    RumourState.UNCONFIRMABLE: ("kan ikke bekreftes", "cannot be confirmed"),
    RumourState.CORRECTED: ("korrigert", "corrected"),
    RumourState.MONITORING: ("følges med", "monitoring"),
    RumourState.CLOSED: ("lukket", "closed"),
}

OWNER_WORDS = {
    FactOwner.MUNICIPALITY: ("kommunen", "the municipality"),
    FactOwner.POLICE: ("politiet", "the police"),
    FactOwner.RESCUE_CENTRE: ("hovedredningssentralen", "the rescue centre"),
    FactOwner.OTHER: ("en annen etat", "another agency"),
}


def state_text(state: RumourState, lang: str) -> str:
    """The state in words (nb / en)."""
    nb, en = STATE_WORDS[state]
    return en if lang == "en" else nb


# --- state ---------------------------------------------------------------------------


@dataclass
class Sighting:
    """A post that repeats a rumour."""

    post_key: str
    channel: str
    seen_at: datetime
    score: float
    by: str
    """``matching`` or the operator who linked it."""
    recurrence: bool = False
    """Seen again after the correction was published."""
    replied: str | None = None
    """The effect id of the correction sent to this post."""


@dataclass
class Rumour:
    """One rumour and its history."""

    rumour_id: str
    claim: str
    fact_owner: FactOwner
    registered_at: datetime
    registered_by: str
    first_seen: datetime
    state: RumourState = RumourState.SIGHTED
    changed_at: datetime | None = None
    changed_by: str = ""
    checker: str | None = None
    checking_with: str | None = None
    verdict_source: str | None = None
    correction_draft: str | None = None
    correction_version: str | None = None
    corrected_at: datetime | None = None
    sightings: list[Sighting] = field(default_factory=list)
    recurrences: int = 0
    """Sightings after the correction (each one an alert)."""

    @property
    def open(self) -> bool:
        """Not closed."""
        return self.state is not RumourState.CLOSED

    def seen_per(self, now: datetime, period: timedelta, periods: int) -> list[int]:
        """Sightings in each of the last ``periods`` periods of ``period`` up to ``now``,
        oldest first (what a sparkline draws: spreading, or dying down)."""
        counts = [0] * periods
        start = now - period * periods
        for s in self.sightings:
            if start <= s.seen_at <= now:
                counts[min(periods - 1, int((s.seen_at - start) / period))] += 1
        return counts

    def seen_on(self) -> list[tuple[str, int]]:
        """Sightings per channel, most first (ties by channel name)."""
        counts = Counter(s.channel for s in self.sightings)
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def pressure(self, now: datetime, deadline: timedelta) -> float:
        """How urgently it wants attention: its spread (sightings in the last hour, at
        least one) times its age against the correction deadline (1.0 = the deadline is
        here). Zero once it is corrected or over: those need watching, not hurry."""
        if self.state in SETTLED:
            return 0.0
        recent = sum(1 for s in self.sightings if now - s.seen_at <= timedelta(hours=1))
        age = max(now - self.first_seen, timedelta(0)) / max(deadline, timedelta(minutes=1))
        return max(recent, 1) * age


@dataclass
class RumoursSlice:
    """Every rumour, and which draft is a correction for which rumour."""

    rumours: dict[str, Rumour] = field(default_factory=dict)
    corrections: dict[str, str] = field(default_factory=dict)
    """Draft id -> rumour id (a correction being written)."""
    alerts: list[str] = field(default_factory=list)
    """Rumour ids with an unacknowledged recurrence, oldest first."""


# --- commands ------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterRumour:
    """Register a rumour (from a post, or by hand)."""

    claim: str
    fact_owner: str = FactOwner.MUNICIPALITY
    post_keys: tuple[str, ...] = ()
    """Posts that carry it (the first one gives where and when it was first seen)."""
    rumour_id: str | None = None


@dataclass(frozen=True)
class RecordSighting:
    """A post repeats a known rumour (the matching service, or an operator)."""

    rumour_id: str
    post_key: str
    score: float = 1.0


@dataclass(frozen=True)
class ChangeRumourState:
    """Move a rumour along its life (checking, a verdict, monitoring, closed)."""

    rumour_id: str
    state: str
    checker: str | None = None
    checking_with: str | None = None
    source: str | None = None
    """For a verdict: who confirmed it (must be the fact owner when it is not the
    municipality)."""


@dataclass(frozen=True)
class LinkCorrection:
    """A message draft is the correction of a rumour (published by the normal pipeline)."""

    rumour_id: str
    draft_id: str


@dataclass(frozen=True)
class ReplyToSpreaders:
    """Reply with the published correction to the posts that spread the rumour (once each)."""

    rumour_id: str


@dataclass(frozen=True)
class AcknowledgeRecurrence:
    """The operator has seen a recurrence alert."""

    rumour_id: str


# --- events --------------------------------------------------------------------------


@feature.event
class RumourRegistered(EventBase):
    """A rumour was registered."""

    type: Literal["rumour.registered"] = "rumour.registered"
    rumour_id: str
    claim: str
    fact_owner: str
    first_seen: datetime


@feature.event
class RumourSighted(EventBase):
    """A post repeats a rumour (``recurrence``: after its correction was published)."""

    type: Literal["rumour.sighted"] = "rumour.sighted"
    rumour_id: str
    post_key: str
    channel: str
    score: float
    recurrence: bool = False


@feature.event
class RumourStateChanged(EventBase):
    """A rumour moved along its life (actor = the operator)."""

    type: Literal["rumour.state_changed"] = "rumour.state_changed"
    rumour_id: str
    state: str
    checker: str | None = None
    checking_with: str | None = None
    source: str | None = None


@feature.event
class CorrectionLinked(EventBase):
    """A message draft was linked as a rumour's correction."""

    type: Literal["rumour.correction_linked"] = "rumour.correction_linked"
    rumour_id: str
    draft_id: str


@feature.event
class RumourCorrected(EventBase):
    """The linked correction was published (the message's own publish, same decision)."""

    type: Literal["rumour.corrected"] = "rumour.corrected"
    rumour_id: str
    version_id: str


@feature.event
class SpreadersAnswered(EventBase):
    """The correction went as a reply to posts that spread the rumour."""

    type: Literal["rumour.spreaders_answered"] = "rumour.spreaders_answered"
    rumour_id: str
    posts: list[str] = Field(default_factory=list)


@feature.event
class RecurrenceAcknowledged(EventBase):
    """An operator saw the alert that a corrected rumour is back."""

    type: Literal["rumour.recurrence_acknowledged"] = "rumour.recurrence_acknowledged"
    rumour_id: str


# --- decide --------------------------------------------------------------------------


def _rumour(state: IncidentState, rumour_id: str) -> Rumour | Rejection:
    r = state.rumours.rumours.get(rumour_id)
    if r is None:
        return Rejection(f"no rumour {rumour_id}", f"fant ikke ryktet {rumour_id}")
    return r


@feature.decides(RegisterRumour)
def register(state: IncidentState, cmd: RegisterRumour, ctx: Context) -> Decision:
    """Register a rumour; where and when it was first seen come from its first post."""
    if not state.is_open:
        return Rejection("open an incident first", "åpne en hendelse først")
    claim = " ".join(cmd.claim.split())
    if not claim:
        return Rejection("a rumour needs its claim in words", "et rykte trenger påstanden")
    try:
        owner = FactOwner(cmd.fact_owner)
    except ValueError:
        return Rejection(f"unknown fact owner {cmd.fact_owner!r}")
    blocked = first_block((claim, "rumour-claim", "påstanden", "the claim"))
    if blocked is not None:
        return blocked
    posts = [state.inbound.posts.get(k) for k in cmd.post_keys]
    if any(p is None for p in posts):
        return Rejection("a linked post is unknown", "et innlegg som lenkes finnes ikke")
    first_seen = min((p.received_at for p in posts if p is not None), default=ctx.now)
    rumour_id = cmd.rumour_id or f"r{len(state.rumours.rumours) + 1}"
    if rumour_id in state.rumours.rumours:
        return Rejection(f"rumour {rumour_id} exists already")
    events: list[EventBase] = [
        RumourRegistered(
            **ctx.base(state),
            rumour_id=rumour_id,
            claim=claim,
            fact_owner=str(owner),
            first_seen=first_seen,
        )
    ]
    for p in posts:
        assert p is not None
        events.append(
            RumourSighted(
                **ctx.base(state),
                rumour_id=rumour_id,
                post_key=p.key,
                channel=p.channel,
                score=1.0,
            )
        )
    return Accepted(events)


@feature.decides(RecordSighting)
def sighting(state: IncidentState, cmd: RecordSighting, ctx: Context) -> Decision:
    """Record where a rumour is seen (once per post); after a correction it is a recurrence."""
    r = _rumour(state, cmd.rumour_id)
    if isinstance(r, Rejection):
        return r
    post = state.inbound.posts.get(cmd.post_key)
    if post is None:
        return Rejection(f"no post {cmd.post_key}")
    if any(s.post_key == cmd.post_key for s in r.sightings):
        return Accepted([])
    return Accepted(
        [
            RumourSighted(
                **ctx.base(state),
                rumour_id=r.rumour_id,
                post_key=post.key,
                channel=post.channel,
                score=round(cmd.score, 4),
                # seen again *after* the correction (a post from before it, matched late
                # or when the rumour was registered, is just a sighting)
                recurrence=r.corrected_at is not None and post.received_at >= r.corrected_at,
            )
        ]
    )


@feature.decides(ChangeRumourState)
def change(state: IncidentState, cmd: ChangeRumourState, ctx: Context) -> Decision:
    """Move a rumour along its life; the fact owner decides what is true about its facts."""
    r = _rumour(state, cmd.rumour_id)
    if isinstance(r, Rejection):
        return r
    try:
        target = RumourState(cmd.state)
    except ValueError:
        return Rejection(f"unknown rumour state {cmd.state!r}")
    if target is RumourState.CORRECTED:
        return Rejection(
            "a rumour is corrected by publishing its linked correction",
            "et rykte korrigeres ved å publisere den lenkede korreksjonen",
        )
    if target not in ALLOWED[r.state]:
        return Rejection(
            f"a rumour that is {state_text(r.state, 'en')} cannot become "
            f"{state_text(target, 'en')}",
            f"et rykte som er {state_text(r.state, 'nb')}, kan ikke bli {state_text(target, 'nb')}",
        )
    if target is RumourState.CHECKING and not (cmd.checker or "").strip():
        return Rejection("say who checks it", "skriv hvem som sjekker det")
    if target in VERDICTS:
        source = (cmd.source or "").strip()
        if not source:
            return Rejection(
                "a verdict needs its source (who confirmed it)",
                "en konklusjon trenger kilden (hvem som bekreftet det)",
            )
        if r.fact_owner is not FactOwner.MUNICIPALITY and target is not RumourState.UNCONFIRMABLE:
            owner_nb, owner_en = OWNER_WORDS[r.fact_owner]
            if owner_nb not in source.casefold() and owner_en not in source.casefold():
                return Rejection(
                    f"{owner_en} own these facts: the verdict must be theirs (name them as "
                    "the source); the municipality never confirms what it does not own",
                    f"{owner_nb} eier disse faktaene: konklusjonen må være deres (oppgi dem "
                    "som kilde); kommunen bekrefter aldri det den ikke eier",
                )
    for text, name in (
        (cmd.checker, "checker"),
        (cmd.checking_with, "checking-with"),
        (cmd.source, "source"),
    ):
        if text:
            blocked = first_block((text, f"rumour-{name}", "feltet", "the field"))
            if blocked is not None:
                return blocked
    return Accepted(
        [
            RumourStateChanged(
                **ctx.base(state),
                rumour_id=r.rumour_id,
                state=str(target),
                checker=cmd.checker,
                checking_with=cmd.checking_with,
                source=cmd.source,
            )
        ]
    )


@feature.decides(LinkCorrection)
def link(state: IncidentState, cmd: LinkCorrection, ctx: Context) -> Decision:
    """A draft becomes the rumour's correction (four eyes and the lint still apply)."""
    r = _rumour(state, cmd.rumour_id)
    if isinstance(r, Rejection):
        return r
    draft = state.messages.drafts.get(cmd.draft_id)
    if draft is None:
        return Rejection(f"no draft {cmd.draft_id}", f"fant ikke utkastet {cmd.draft_id}")
    if r.state not in (RumourState.FALSE, RumourState.TRUE, RumourState.UNCONFIRMABLE):
        return Rejection(
            "check the rumour first: only known facts are published",
            "sjekk ryktet først: bare kjente fakta publiseres",
        )
    return Accepted(
        [CorrectionLinked(**ctx.base(state), rumour_id=r.rumour_id, draft_id=cmd.draft_id)]
    )


@feature.reacts(MessagePublished)
def _corrected_by_publish(
    state: IncidentState, event: MessagePublished, ctx: Context
) -> list[EventBase]:
    """Publishing a linked correction marks its rumour corrected, in the same decision."""
    version = state.messages.versions.get(event.version_id)
    if version is None:
        return []
    rumour_id = state.rumours.corrections.get(version.draft_id)
    if rumour_id is None:
        return []
    return [RumourCorrected(**ctx.base(state), rumour_id=rumour_id, version_id=event.version_id)]


@feature.decides(ReplyToSpreaders)
def reply_to_spreaders(state: IncidentState, cmd: ReplyToSpreaders, ctx: Context) -> Decision:
    """The published correction as a reply to every spreading post not yet answered."""
    r = _rumour(state, cmd.rumour_id)
    if isinstance(r, Rejection):
        return r
    if r.correction_version is None:
        return Rejection("publish the correction first", "publiser korreksjonen først")
    version = state.messages.versions[r.correction_version]
    texts = {
        v["lang"]: f"{v.get('headline', '')}\n{v.get('body', '')}".strip() for v in version.variants
    }
    requests = Requests(state, ctx)
    events: list[EventBase] = []
    answered: list[str] = []
    for s in r.sightings:
        post = state.inbound.posts.get(s.post_key)
        spec = ctx.policy.channel(s.channel)
        if s.replied or post is None or spec is None or spec.kind in NO_REPLY_KINDS:
            continue
        q = state.questions.questions.get(s.post_key)
        lang = q.language if q is not None and q.language in texts else "nb"
        effect_id = ctx.new_id()
        body = ReplyRequest(
            effect_id=effect_id,
            channel=s.channel,
            idempotency_key=f"{r.correction_version}:{s.channel}:{post.post_id}"[:300],
            to=PostRef(
                post_id=post.post_id,
                author=post.author,
                kind=post.kind,
                meta={
                    str(k): v
                    for k, v in post.meta.items()
                    if isinstance(v, str | int | bool) or v is None
                },
            ),
            text=texts.get(lang) or texts.get("nb", ""),
            lang=lang,
            website_url=ctx.policy.website_url or "https://",
            signature=version.signature,
            exercise=ctx.policy.exercise,
        )
        events.append(
            requests.publish(
                Target.CHANNEL_OUT,
                envelope_type=REPLY_TYPE,
                stream="out",
                body=body.model_dump(mode="json"),
                channel=s.channel,
                effect_id=effect_id,
            ).model_copy(update={"version_id": f"rumour:{r.rumour_id}", "channel": None})
        )
        answered.append(s.post_key)
    # Spreaders whose reply failed for good (their channel was down) get it again.
    retried = retry_failed_replies(state, ctx, f"rumour:{r.rumour_id}")
    if not answered:
        return Accepted(retried)
    return Accepted(
        [
            SpreadersAnswered(**ctx.base(state), rumour_id=r.rumour_id, posts=answered),
            *events,
            *retried,
        ]
    )


@feature.decides(AcknowledgeRecurrence)
def acknowledge(state: IncidentState, cmd: AcknowledgeRecurrence, ctx: Context) -> Decision:
    """Clear a recurrence alert (the sightings stay counted)."""
    if cmd.rumour_id not in state.rumours.alerts:
        return Accepted([])
    return Accepted([RecurrenceAcknowledged(**ctx.base(state), rumour_id=cmd.rumour_id)])


# --- fold ----------------------------------------------------------------------------


@feature.applies(RumourRegistered)
def _registered(state: IncidentState, event: RumourRegistered) -> None:
    state.rumours.rumours[event.rumour_id] = Rumour(
        rumour_id=event.rumour_id,
        claim=event.claim,
        fact_owner=FactOwner(event.fact_owner),
        registered_at=event.ts,
        registered_by=event.actor,
        first_seen=event.first_seen,
        changed_at=event.ts,
        changed_by=event.actor,
    )


@feature.applies(RumourSighted)
def _sighted(state: IncidentState, event: RumourSighted) -> None:
    r = state.rumours.rumours.get(event.rumour_id)
    post = state.inbound.posts.get(event.post_key)
    if r is None:
        return
    r.sightings.append(
        Sighting(
            post_key=event.post_key,
            channel=event.channel,
            seen_at=post.received_at if post is not None else event.ts,
            score=event.score,
            by=event.actor,
            recurrence=event.recurrence,
        )
    )
    if event.recurrence:
        r.recurrences += 1
        if r.rumour_id not in state.rumours.alerts:
            state.rumours.alerts.append(r.rumour_id)


@feature.applies(RumourStateChanged)
def _changed(state: IncidentState, event: RumourStateChanged) -> None:
    r = state.rumours.rumours.get(event.rumour_id)
    if r is None:
        return
    r.state = RumourState(event.state)
    r.changed_at = event.ts
    r.changed_by = event.actor
    if event.checker is not None:
        r.checker = event.checker
        r.checking_with = event.checking_with
    if event.source is not None:
        r.verdict_source = event.source


@feature.applies(CorrectionLinked)
def _linked(state: IncidentState, event: CorrectionLinked) -> None:
    r = state.rumours.rumours.get(event.rumour_id)
    if r is not None:
        r.correction_draft = event.draft_id
        state.rumours.corrections[event.draft_id] = event.rumour_id


@feature.applies(RumourCorrected)
def _corrected(state: IncidentState, event: RumourCorrected) -> None:
    r = state.rumours.rumours.get(event.rumour_id)
    if r is not None:
        r.state = RumourState.CORRECTED
        r.correction_version = event.version_id
        r.corrected_at = event.ts
        r.changed_at = event.ts
        r.changed_by = event.actor


@feature.applies(SpreadersAnswered)
def _answered(state: IncidentState, event: SpreadersAnswered) -> None:
    """The replies themselves are recorded from their outbox requests."""


@feature.applies(OutboxRequested)
def _reply_requested(state: IncidentState, event: OutboxRequested) -> None:
    version = event.version_id or ""
    if not version.startswith("rumour:") or event.publish.envelope_type != REPLY_TYPE:
        return
    r = state.rumours.rumours.get(version.removeprefix("rumour:"))
    if r is None:
        return
    body = event.publish.body
    key = f"{body['channel']}:{body['to']['post_id']}"
    for s in r.sightings:
        if s.post_key == key:
            s.replied = event.effect_id


@feature.applies(RecurrenceAcknowledged)
def _acknowledged(state: IncidentState, event: RecurrenceAcknowledged) -> None:
    if event.rumour_id in state.rumours.alerts:
        state.rumours.alerts.remove(event.rumour_id)


# --- describe ------------------------------------------------------------------------


@feature.describes(RumourRegistered)
def _d_registered(event: RumourRegistered, lang: str) -> str:
    head = "Rumour registered" if lang == "en" else "Rykte registrert"
    return f"{head} ({event.rumour_id}): «{event.claim[:60]}»"


@feature.describes(RumourSighted)
def _d_sighted(event: RumourSighted, lang: str) -> str:
    if event.recurrence:
        head = "RECURRENCE" if lang == "en" else "TILBAKE"
        return f"{head}: {event.rumour_id} seen again ({event.channel})"
    head = "Rumour seen" if lang == "en" else "Rykte sett"
    return f"{head}: {event.rumour_id} ({event.channel}, {event.score:.2f})"


@feature.describes(RumourStateChanged)
def _d_changed(event: RumourStateChanged, lang: str) -> str:
    word = state_text(RumourState(event.state), lang)
    extra = f" – {event.source}" if event.source else ""
    return f"{'Rumour' if lang == 'en' else 'Rykte'} {event.rumour_id}: {word}{extra}"


@feature.describes(CorrectionLinked)
def _d_linked(event: CorrectionLinked, lang: str) -> str:
    if lang == "en":
        return f"Correction drafted for {event.rumour_id} ({event.draft_id[:8]})"
    return f"Korreksjon skrevet for {event.rumour_id} ({event.draft_id[:8]})"


@feature.describes(RumourCorrected)
def _d_corrected(event: RumourCorrected, lang: str) -> str:
    if lang == "en":
        return f"Rumour {event.rumour_id} corrected by v{event.version_id[:8]}"
    return f"Rykte {event.rumour_id} korrigert med v{event.version_id[:8]}"


@feature.describes(SpreadersAnswered)
def _d_spreaders(event: SpreadersAnswered, lang: str) -> str:
    n = len(event.posts)
    if lang == "en":
        return f"Correction of {event.rumour_id} sent to {n} spreading post(s)"
    return f"Korreksjonen av {event.rumour_id} sendt til {n} innlegg"


@feature.describes(RecurrenceAcknowledged)
def _d_ack(event: RecurrenceAcknowledged, lang: str) -> str:
    if lang == "en":
        return f"Recurrence of {event.rumour_id} seen"
    return f"Gjentakelse av {event.rumour_id} sett"
