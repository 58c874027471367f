"""Scenario files: a drill's timeline, objectives and scripted responses, validated.

A scenario is YAML, read by the playbook loader's safe YAML reader (no aliases, bounded
size and depth, YAML 1.2 scalars) and validated by the models here; every problem is
reported as ``file:line:column: message``. The JSON Schema is committed as
``playbooks/schema/scenario.schema.json`` (:mod:`krise_tui.drill.schema`).

Shape (see the sample scenarios in ``playbooks/scenarios/``)::

    id: flom-sentrum
    title: Flom i sentrum
    playbook: ../flom-og-skred.yaml       # a path (from this file), or the playbook's id
    org: ../orgs/eksempel.yaml
    start: 2026-11-27T14:00:00+01:00      # T+0: the incident opens
    duration: 3h
    situation: {nb: "Det har regnet i tre døgn …"}
    staff: {terminals: 40, ack_within: [1m, 12m], never_ack: 1}
    timeline:
      - at: T+4m
        post: {channel: facebook, id: fb-0001, author: Kari, kind: question, text: "…"}
      - at: T+30m
        world: {event: channel_down, channel: sms, reason: "503 Service Unavailable"}
      - at: T+40m
        staff: {count: 3, go: offline}
    objectives:
      - {id: forste-melding, kind: first_message}          # the playbook's deadline
      - {id: demning, kind: rumour_corrected, rumour: demning, by: T+1h}
    responses:
      god:
        actions:
          - {at: T+8m, by: lise, compose: {id: d1, template: forste-melding, values: {…}}}
          - {at: T+11m, by: siri, approve: d1}
          - {at: T+11m, by: siri, publish: d1}

Times are offsets written like the playbooks write them (``T+0``, ``T+15m``,
``T+1h30m``); durations ``15m``, ``1h``. Posts are referred to by their ``id`` (or
``channel:id`` when an id is used on two channels), drafts and answers by the ``id`` the
script gave them, batches by their id (``q-<question id>`` for the playbook's
anticipated questions) or as ``post:<post>``, the batch a post is in.

:func:`load_scenario` also checks the scenario against its playbook and org file:
channels, operators, templates and their placeholders, questions, staff ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StrictBool, StrictInt, ValidationError

from krise_tui.bus.broker import DEMO_STAFF, EMBEDDED_SIMULATED_STAFF, SIM_PREFIX, sim_staff_id
from krise_tui.playbook.loader import (
    PlaybookError,
    Problem,
    TemplateError,
    _error_problems,
    _issue_problem,
    _parse_yaml,
    _Pos,
    load_org,
    load_playbook,
    read_limited,
    render_answer,
    render_template,
)
from krise_tui.playbook.models import (
    DEFER_CHECKS,
    ChannelKind,
    Document,
    Duration,
    Issue,
    Lang,
    LangText,
    Offset,
    Org,
    Playbook,
    Slug,
    StaffId,
    StrictModel,
    Text,
)
from krise_tui.rules.triage import Label
from krise_tui.timefmt import DEFAULT_TIMEZONE

PostId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s:]+$")]
"""A post's platform id: no spaces, no ``:`` (``channel:id`` is how posts are referred to)."""

PostKind = Literal["question", "criticism", "rumour", "attack", "case", "praise", "other"]
"""What the scenario's author means a post to be (the report compares it with triage)."""

Via = Literal["post", "comment", "message", "sms", "email", "form"]
"""How the platform carries a post (the wire's ``kind``)."""

WorldKind = Literal[
    "road_closed",
    "road_opened",
    "fact_confirmed",
    "channel_down",
    "channel_up",
    "broker_restart",
    "note",
]

ObjectiveKind = Literal[
    "first_message",
    "batches_answered",
    "rumour_corrected",
    "freeze_acknowledged",
    "update_cadence",
    "deliveries",
]

DEFAULT_VIA: dict[str, str] = {
    ChannelKind.SMS.value: "sms",
    ChannelKind.EMAIL.value: "email",
    ChannelKind.FACEBOOK.value: "comment",
    ChannelKind.WEBSITE.value: "form",
}
"""The platform kind of a post when the scenario does not say (default ``post``)."""

_POST_PREFIX = "post:"

DRILL_DIRECTORY = Path("/drill-directory")
"""Stands for a drill's own directory when a scenario is checked before it runs."""


# --- injects -------------------------------------------------------------------------------


class PostInject(StrictModel):
    """A post from the public, published on the channel's ``in`` topic as a bridge would."""

    channel: Slug
    """The org file's channel id it arrives on (``facebook``, ``sms``, ``epost``…)."""
    id: PostId
    """The platform's id of the post: unique per channel in the scenario."""
    text: Annotated[str, Field(min_length=1, max_length=20_000)]
    """What the post says."""
    author: Annotated[str, Field(max_length=500)] | None = None
    """Name or handle as the platform shows it (fictional in shared scenarios)."""
    kind: PostKind = "question"
    """What the post is meant to be: ``question``, ``criticism``, ``rumour`` (a sighting),
    ``attack``, ``case`` (a request for case processing), ``praise`` or ``other``."""
    via: Via | None = None
    """How the platform carries it (``comment``, ``sms``…); default from the channel kind."""
    reply_to: Annotated[str, Field(max_length=200)] | None = None
    """The platform id of the post this one answers."""
    meta: dict[str, str | StrictInt | StrictBool | None] = Field(default_factory=dict)
    """Platform details a reply needs (``from`` for an SMS or e-mail sender)."""


class WorldEvent(StrictModel):
    """Something that happens in the world during the drill."""

    event: WorldKind
    """``road_closed``, ``road_opened``, ``fact_confirmed`` (an owner confirms a fact),
    ``note`` (anything else for the timeline), ``channel_down`` / ``channel_up`` (the
    channel's platform fails / works again) or ``broker_restart``."""
    text: LangText | None = None
    """What happened, per language (``nb`` required): shown in the timeline and report."""
    channel: Slug | None = None
    """``channel_down`` / ``channel_up``: which channel."""
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    """``channel_down``: what the platform answers (default ``503 Service Unavailable``)."""
    source: Text | None = None
    """``fact_confirmed``: who confirmed it (``politiet``, ``NVE``…)."""


class StaffInject(StrictModel):
    """Staff terminals coming and going, or acknowledging (recorded drills)."""

    ids: list[StaffId] = Field(default_factory=list)
    """These terminals (broker users: ``ansatt-001``… or ``sim-00001``…)."""
    count: Annotated[StrictInt, Field(ge=1, le=EMBEDDED_SIMULATED_STAFF)] | None = None
    """Or this many of the simulated terminals (the newest online ones first)."""
    go: Literal["online", "offline"] | None = None
    """Connect (``online``) or disconnect (``offline``) them."""
    ack: StrictBool = False
    """Acknowledge the newest freeze notice now."""
    seq: Annotated[StrictInt, Field(ge=1)] | None = None
    """With ``ack``: the notice ``seq`` to acknowledge (as recorded); default the newest."""


class Inject(StrictModel):
    """One thing on the timeline: exactly one of ``post``, ``world`` or ``staff``."""

    at: Offset
    """When: ``T+0``, ``T+15m``, ``T+1h30m``."""
    post: PostInject | None = None
    """A post from the public."""
    world: WorldEvent | None = None
    """Something in the world."""
    staff: StaffInject | None = None
    """Staff terminals coming, going or acknowledging."""


class StaffSetup(StrictModel):
    """The simulated staff terminals (each a real MQTT client with its own broker user)."""

    terminals: Annotated[StrictInt, Field(ge=0, le=EMBEDDED_SIMULATED_STAFF)] = 0
    """How many terminals are online from T+0: the org's staff first, then ``sim-00001``…"""
    ack_within: Annotated[list[Duration], Field(min_length=2, max_length=2)] = Field(
        default_factory=lambda: [timedelta(minutes=1), timedelta(minutes=10)]
    )
    """Each terminal acknowledges a new freeze notice after a delay in this range."""
    never_ack: Annotated[StrictInt, Field(ge=0)] = 0
    """This many terminals never acknowledge (on leave, ignoring it)."""
    offline: Annotated[StrictInt, Field(ge=0)] = 0
    """This many of the terminals stay offline from the start."""
    simulate: StrictBool = True
    """Terminals acknowledge by themselves; ``false``: only as the timeline says (recorded
    drills carry every acknowledgement)."""


class ChannelOverride(StrictModel):
    """Use this channel's real adapter against an endpoint of the drill's own (a local
    fake platform) instead of the drill's sink. It must be local: see
    :func:`krise_tui.drill.sinks.locality`."""

    endpoint: Annotated[str, Field(min_length=1, max_length=2000)]
    """The adapter's endpoint (``http://127.0.0.1:8081/…``, ``smtp://127.0.0.1:8025``)."""


# --- objectives -----------------------------------------------------------------------------


class Objective(StrictModel):
    """Something the leadership must achieve, with a deadline."""

    id: Slug
    """The objective's id (the report names it; ``expect`` refers to it)."""
    kind: ObjectiveKind
    """``first_message``: a first message published; ``batches_answered``: every batch of
    questions answered (final or preliminary answer) within its deadline;
    ``rumour_corrected``: a rumour's correction published; ``freeze_acknowledged``: a share
    of staff acknowledged the freeze; ``update_cadence``: a new message at least this
    often after the first; ``deliveries``: every published version delivered on every
    channel within the time (a failed channel re-sent)."""
    title: LangText | None = None
    """What it is in words (default: from the kind)."""
    by: Offset | None = None
    """Absolute deadline (``T+30m``)."""
    within: Duration | None = None
    """Relative deadline: from the batch's first question, the rumour's first sighting,
    the freeze, the previous message, a delivery's request. Default: the playbook's."""
    rumour: Slug | None = None
    """``rumour_corrected``: the rumour's id (as the script registers it)."""
    share: Annotated[float, Field(gt=0, le=1)] | None = None
    """``freeze_acknowledged``: the share of staff in scope (0.95 = 95 %)."""


# --- scripted actions -----------------------------------------------------------------------


class VariantText(StrictModel):
    """One language of a message."""

    headline: Annotated[str, Field(max_length=500)] = ""
    """The headline (one line)."""
    body: Annotated[str, Field(max_length=20_000)] = ""
    """The body."""
    awaiting_translation: StrictBool = False
    """The language is left for a translator (its text comes later)."""


class Compose(StrictModel):
    """Write a message draft (from a playbook template, or as text)."""

    id: Slug
    """The draft's name in this script (``approve: d1`` refers to it); writing the same
    id again rewrites that draft."""
    template: Slug | None = None
    """A template of the playbook; filled in with ``values`` (``kommune``, ``nettside``
    and ``tidspunkt`` are filled in by the player)."""
    values: dict[str, str] = Field(default_factory=dict)
    """Placeholder values for ``template``."""
    languages: list[Lang] | None = None
    """With ``template``: the languages to write (default: every ready one)."""
    text: dict[Lang, VariantText] | None = None
    """Or the text per language (``nb`` required); with ``template`` too, the text is
    used as written and ``template`` only says which template it came from."""
    channels: list[Slug] = Field(default_factory=list)
    """Channel ids; empty: every channel of the playbook."""
    status: Literal["published", "updated", "retracted"] = "published"
    """A new message, an update of one or its retraction."""
    supersedes: Slug | None = None
    """For an update or retraction: the draft whose published version it replaces."""


class OverrideSpec(StrictModel):
    """An approval of a lint finding that may pass with a written reason."""

    code: Text
    """The finding's code (``phone-number``, ``missing-language``…)."""
    lang: Lang
    """The language it was found in."""
    reason: Text
    """Why it may pass."""


class ApproveSpec(StrictModel):
    """Approve a draft (the approver is the action's ``by``)."""

    draft: Slug
    """The draft's id in this script."""
    overrides: list[OverrideSpec] = Field(default_factory=list)
    """Lint findings approved with a reason."""
    break_glass: Text | None = None
    """Approving one's own draft: the reason (where the playbook allows it)."""


class FreezeSpec(StrictModel):
    """Freeze employee posting."""

    reason: Text
    """Why."""
    departments: list[Slug] = Field(default_factory=list)
    """Staff groups in scope (empty: all staff)."""
    expires: Duration | None = None
    """Lifted by itself this long after."""


class ExtendSpec(StrictModel):
    """Move the freeze's expiry."""

    expires: Duration | None = None
    """From now; unset: no expiry."""
    reason: str = ""
    """Why (default: the freeze's reason)."""


class LiftSpec(StrictModel):
    """Lift the freeze."""

    reason: Text
    """Why."""


class AnswerSpec(StrictModel):
    """Write a batch's shared answer."""

    id: Slug
    """The answer's id in this script."""
    batch: Annotated[str, Field(min_length=1, max_length=300)]
    """The batch: its id (``q-<question id>``, ``b3``) or ``post:<post>``."""
    text: dict[Lang, str] | None = None
    """The answer per language (``nb`` required)."""
    question: Slug | None = None
    """Or the playbook's pre-written answer to this anticipated question, filled in."""
    values: dict[str, str] = Field(default_factory=dict)
    """Placeholder values for ``question``'s answer."""
    kind: Literal["final", "preliminary"] = "final"
    """A final answer, or a preliminary one saying when the answer comes."""


class ApproveAnswerSpec(StrictModel):
    """Approve a batch's answer (the approver is the action's ``by``)."""

    answer: Slug
    """The answer's id in this script."""
    overrides: list[OverrideSpec] = Field(default_factory=list)
    """Lint findings approved with a reason."""
    break_glass: Text | None = None
    """Approving one's own answer: the reason."""


class SweepSpec(StrictModel):
    """Answer every batch that has questions waiting (saved by ``by``, approved by
    ``approver``, published): the scripted leadership's sweep of the question queue."""

    text: dict[Lang, str]
    """The answer per language (``nb`` required)."""
    kind: Literal["final", "preliminary"] = "preliminary"
    """Usually a preliminary answer saying when the full one comes."""
    approver: Slug
    """Who approves (not ``by``: four eyes)."""


class RumourSpec(StrictModel):
    """Register a rumour."""

    id: Slug
    """The rumour's id (objectives and later actions refer to it)."""
    claim: Text
    """What the rumour says, soberly."""
    owner: Literal["municipality", "police", "rescue_centre", "other"] = "municipality"
    """Who owns the facts it is about."""
    posts: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    """Posts that carry it (the first gives where and when it was first seen)."""


class RumourStateSpec(StrictModel):
    """Move a rumour along its life."""

    rumour: Slug
    """The rumour's id."""
    state: Literal["checking", "true", "false", "unconfirmable", "monitoring", "closed"]
    """The new state."""
    checker: str | None = None
    """``checking``: who checks it."""
    checking_with: str | None = None
    """``checking``: with whom (``politiet``)."""
    source: str | None = None
    """A verdict: who confirmed it (the fact owner when it is not the municipality)."""


class LinkSpec(StrictModel):
    """A draft is a rumour's correction."""

    rumour: Slug
    """The rumour's id."""
    draft: Slug
    """The draft's id in this script."""


class SightingSpec(StrictModel):
    """A post repeats a rumour (the operator links it by hand)."""

    rumour: Slug
    """The rumour's id."""
    post: Annotated[str, Field(min_length=1)]
    """The post."""


class MergeSpec(StrictModel):
    """Two batches ask the same thing."""

    kept: Annotated[str, Field(min_length=1)]
    """The batch that stays (id or ``post:<post>``)."""
    absorbed: Annotated[str, Field(min_length=1)]
    """The batch merged into it."""


class MoveSpec(StrictModel):
    """Move a question to another batch."""

    post: Annotated[str, Field(min_length=1)]
    """The question's post."""
    batch: Annotated[str, Field(min_length=1)]
    """The target batch (id or ``post:<post>``)."""


class SplitSpec(StrictModel):
    """Split questions out of their batch into a new one."""

    posts: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    """The questions' posts."""
    id: Annotated[str, Field(min_length=1, max_length=100)]
    """The new batch's id."""


class RelabelSpec(StrictModel):
    """Correct a post's triage label."""

    post: Annotated[str, Field(min_length=1)]
    """The post."""
    label: Label
    """The right label."""


class HideSpec(StrictModel):
    """Hide (never delete) an attack on a channel the municipality runs."""

    post: Annotated[str, Field(min_length=1)]
    """The post."""
    reason: Text
    """Why."""


class RetrySpec(StrictModel):
    """Send one channel's delivery of a published draft again."""

    draft: Slug
    """The draft (its published version)."""
    channel: Slug
    """The channel."""


class AutoAnswerSpec(StrictModel):
    """Whether later askers of a batch get its answer automatically."""

    batch: Annotated[str, Field(min_length=1)]
    """The batch (id or ``post:<post>``)."""
    on: StrictBool
    """On or off."""


VERBS = (
    "compose",
    "approve",
    "publish",
    "freeze",
    "extend_freeze",
    "lift_freeze",
    "answer",
    "approve_answer",
    "publish_answer",
    "answer_open_batches",
    "register_rumour",
    "rumour_state",
    "link_correction",
    "link_sighting",
    "reply_to_spreaders",
    "acknowledge_recurrence",
    "merge_batches",
    "move_question",
    "split_batch",
    "relabel",
    "hide",
    "forward_case",
    "retry_delivery",
    "resend_failed_replies",
    "auto_answer",
    "remind",
)
"""Every action verb, in the order the docs list them."""


class Action(StrictModel):
    """One thing the leadership does: ``at`` an offset, ``by`` an operator, one verb."""

    at: Offset
    """When."""
    by: Slug
    """Who (an operator id of the org file): the author, approver or publisher."""
    compose: Compose | None = None
    """Write a draft."""
    approve: Slug | ApproveSpec | None = None
    """Approve a draft (its id, or the id with overrides)."""
    publish: Slug | None = None
    """Publish a draft's approved version to every one of its channels."""
    freeze: FreezeSpec | None = None
    """Freeze employee posting."""
    extend_freeze: ExtendSpec | None = None
    """Move the freeze's expiry."""
    lift_freeze: LiftSpec | None = None
    """Lift the freeze."""
    answer: AnswerSpec | None = None
    """Write a batch's answer."""
    approve_answer: Slug | ApproveAnswerSpec | None = None
    """Approve an answer."""
    publish_answer: Slug | None = None
    """Send an approved answer to its batch's askers."""
    answer_open_batches: SweepSpec | None = None
    """Answer every batch with questions waiting (write, approve, send)."""
    register_rumour: RumourSpec | None = None
    """Register a rumour."""
    rumour_state: RumourStateSpec | None = None
    """Move a rumour along its life."""
    link_correction: LinkSpec | None = None
    """Link a draft as a rumour's correction."""
    link_sighting: SightingSpec | None = None
    """Record that a post repeats a rumour."""
    reply_to_spreaders: Slug | None = None
    """Reply with a rumour's published correction to the posts that spread it."""
    acknowledge_recurrence: Slug | None = None
    """Clear a rumour's recurrence alert."""
    merge_batches: MergeSpec | None = None
    """Merge two batches."""
    move_question: MoveSpec | None = None
    """Move a question to another batch."""
    split_batch: SplitSpec | None = None
    """Split questions out of their batch."""
    relabel: RelabelSpec | None = None
    """Correct a triage label."""
    hide: HideSpec | None = None
    """Hide an attack."""
    forward_case: Annotated[str, Field(min_length=1)] | None = None
    """Give a request for case processing the standard reply (the post)."""
    retry_delivery: RetrySpec | None = None
    """Re-send one channel's delivery."""
    resend_failed_replies: Literal[True] | list[Annotated[str, Field(min_length=1)]] | None = None
    """Send the replies that failed for good again, once their channel is back: every one
    (``true``: answers, standard replies, corrections) or those to the listed posts."""
    auto_answer: AutoAnswerSpec | None = None
    """Turn a batch's auto-answer on or off."""
    remind: list[StaffId] | Literal["unacknowledged"] | None = None
    """Remind staff terminals to acknowledge (ids, or every one that has not)."""

    @property
    def verb(self) -> str:
        """The one verb set (``compose``, ``approve``…)."""
        set_ = [v for v in VERBS if getattr(self, v) is not None]
        return set_[0] if set_ else ""


class Expectation(StrictModel):
    """What a scripted response is expected to achieve (checked by ``krise drill run``)."""

    missed: list[Slug] = Field(default_factory=list)
    """The objectives it misses; every other one it meets."""


class Response(StrictModel):
    """A scripted response of the leadership."""

    description: Text | None = None
    """What this script does, in a sentence."""
    expect: Expectation | None = None
    """Which objectives it misses (for CI: a run that scores otherwise fails)."""
    actions: list[Action] = Field(default_factory=list)
    """The actions, at their offsets."""


# --- the scenario -----------------------------------------------------------------------------


class Scenario(Document):
    """A drill: the playbook it exercises, a timeline, objectives and scripted responses."""

    id: Slug
    """The scenario's id, e.g. ``flom-sentrum``."""
    title: Text
    """Its title, e.g. ``Flom i sentrum``."""
    description: Text | None = None
    """A few sentences for the drill's leader."""
    playbook: Annotated[str, Field(min_length=1, max_length=500)]
    """The playbook exercised: a path (relative to this file) or the playbook's id."""
    org: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    """The org file (relative to this file); ``krise drill run --org`` may name another."""
    start: AwareDatetime
    """T+0, with its offset: ``2026-11-27T14:00:00+01:00``. The incident opens then."""
    duration: Duration
    """How long the drill lasts (``3h``)."""
    situation: LangText
    """The start situation, read out before the drill (``nb`` required)."""
    seed: StrictInt = 1
    """Seeds the simulated staff's delays and the event ids (same seed, same drill)."""
    staff: StaffSetup = Field(default_factory=StaffSetup)
    """The simulated staff terminals."""
    channels: dict[Slug, ChannelOverride] = Field(default_factory=dict)
    """Channels that use their real adapter against a local endpoint instead of the sink."""
    timeline: list[Inject] = Field(default_factory=list)
    """The injects."""
    objectives: list[Objective] = Field(default_factory=list)
    """What is scored."""
    responses: dict[Slug, Response] = Field(default_factory=dict)
    """Scripted responses by name (``god``, ``svak``…)."""

    # -- lookups --------------------------------------------------------------------------

    def posts(self) -> Iterator[tuple[int, PostInject, timedelta]]:
        """``(timeline index, post, at)`` of every post."""
        for index, item in enumerate(self.timeline):
            if item.post is not None:
                yield index, item.post, item.at

    def post_keys(self) -> dict[str, str]:
        """Every way to refer to a post (``id``, when unique, and ``channel:id``) → key."""
        keys: dict[str, str] = {}
        ids: dict[str, int] = {}
        for _, post, _ in self.posts():
            keys[f"{post.channel}:{post.id}"] = f"{post.channel}:{post.id}"
            ids[post.id] = ids.get(post.id, 0) + 1
        for _, post, _ in self.posts():
            if ids[post.id] == 1:
                keys[post.id] = f"{post.channel}:{post.id}"
        return keys

    def objective(self, objective_id: str) -> Objective:
        """The objective with this id. Raises KeyError."""
        for objective in self.objectives:
            if objective.id == objective_id:
                return objective
        raise KeyError(objective_id)

    # -- checks ---------------------------------------------------------------------------

    def issues(self) -> list[Issue]:
        """Cross-field problems: one thing per inject and action, unique ids, references."""
        out: list[Issue] = []
        self._timeline_issues(out)
        self._objective_issues(out)
        for name, response in self.responses.items():
            _ResponseCheck(self, ("responses", name), out).run(response)
        return out

    def _timeline_issues(self, out: list[Issue]) -> None:
        seen: dict[str, int] = {}
        for index, item in enumerate(self.timeline):
            loc: tuple[str | int, ...] = ("timeline", index)
            given = [n for n in ("post", "world", "staff") if getattr(item, n) is not None]
            if len(given) != 1:
                what = ", ".join(given) if given else "none"
                out.append(Issue(loc, f"one of post, world or staff per item (found: {what})"))
            if item.at > self.duration:
                out.append(
                    Issue((*loc, "at"), f"after the drill's end (duration {_fmt(self.duration)})")
                )
            if item.post is not None:
                key = f"{item.post.channel}:{item.post.id}"
                if key in seen:
                    out.append(
                        Issue(
                            (*loc, "post", "id"),
                            f"post {key} is already on the timeline (item {seen[key]}): a "
                            "platform sends a post once",
                        )
                    )
                else:
                    seen[key] = index
            if item.world is not None:
                _world_issues(item.world, (*loc, "world"), out)
            if item.staff is not None:
                _staff_issues(item.staff, (*loc, "staff"), out)
        setup = self.staff
        low, high = setup.ack_within
        if low > high:
            out.append(Issue(("staff", "ack_within"), "the first duration must not be the longer"))
        if setup.never_ack + setup.offline > setup.terminals:
            out.append(
                Issue(
                    ("staff",),
                    f"never_ack + offline ({setup.never_ack + setup.offline}) is more than "
                    f"terminals ({setup.terminals})",
                )
            )

    def _objective_issues(self, out: list[Issue]) -> None:
        ids = [o.id for o in self.objectives]
        for index, objective in enumerate(self.objectives):
            loc: tuple[str | int, ...] = ("objectives", index)
            if ids.index(objective.id) != index:
                out.append(Issue((*loc, "id"), f"duplicate objective id {objective.id!r}"))
            kind = objective.kind
            if kind == "rumour_corrected" and objective.rumour is None:
                out.append(Issue(loc, "a rumour_corrected objective names its rumour"))
            if kind != "rumour_corrected" and objective.rumour is not None:
                out.append(Issue((*loc, "rumour"), f"a {kind} objective has no rumour"))
            if kind == "freeze_acknowledged":
                if objective.share is None:
                    out.append(Issue(loc, "a freeze_acknowledged objective needs a share (0.95)"))
                if objective.by is None and objective.within is None:
                    out.append(Issue(loc, "a freeze_acknowledged objective needs by or within"))
            elif objective.share is not None:
                out.append(Issue((*loc, "share"), f"a {kind} objective has no share"))
            if kind in ("batches_answered", "update_cadence", "deliveries") and objective.by:
                out.append(
                    Issue((*loc, "by"), f"a {kind} objective has a deadline per item: use within")
                )
            if objective.by is not None and objective.by > self.duration:
                out.append(Issue((*loc, "by"), "after the drill's end"))
        known = set(ids)
        for name, response in self.responses.items():
            if response.expect is None:
                continue
            for index, objective_id in enumerate(response.expect.missed):
                if objective_id not in known:
                    out.append(
                        Issue(
                            ("responses", name, "expect", "missed", index),
                            f"no objective {objective_id!r} (known: {', '.join(ids) or 'none'})",
                        )
                    )

    # -- checks against the playbook and the org file -----------------------------------------

    def context_issues(self, playbook: Playbook, org: Org) -> list[Issue]:
        """Problems against the playbook and the org: channels, operators, templates."""
        out: list[Issue] = []
        channels = {c.id: c for c in org.channels}
        groups = {g.id for g in org.staff_groups}
        operators = {o.id for o in org.operators}
        roster = {str(s) for g in org.staff_groups for s in g.staff or []}
        for index, item in enumerate(self.timeline):
            loc: tuple[str | int, ...] = ("timeline", index)
            if item.post is not None:
                channel = channels.get(item.post.channel)
                if channel is None:
                    out.append(_unknown_channel((*loc, "post", "channel"), item.post.channel, org))
                elif channel.kind is ChannelKind.STAFF:
                    out.append(
                        Issue(
                            (*loc, "post", "channel"),
                            f"{channel.id} is the staff terminals' channel: the public posts "
                            "elsewhere",
                        )
                    )
            if item.world is not None and item.world.channel is not None:
                channel = channels.get(item.world.channel)
                if channel is None:
                    out.append(
                        _unknown_channel((*loc, "world", "channel"), item.world.channel, org)
                    )
                elif channel.kind is ChannelKind.STAFF:
                    out.append(
                        Issue(
                            (*loc, "world", "channel"),
                            "the staff channel has no platform to go down (restart the broker)",
                        )
                    )
            if item.staff is not None:
                for i, staff_id in enumerate(item.staff.ids):
                    problem = staff_login_problem(staff_id, roster)
                    if problem:
                        out.append(Issue((*loc, "staff", "ids", i), problem))
        from krise_tui.drill.sinks import locality  # the one rule of what is real

        for channel_id, override in self.channels.items():
            channel = channels.get(channel_id)
            if channel is None:
                out.append(_unknown_channel(("channels", channel_id), channel_id, org))
                continue
            # Relative website directories are taken from the drill's own directory.
            why = locality(override.endpoint, kind=channel.kind, base=DRILL_DIRECTORY)
            if why is not None:
                out.append(
                    Issue(
                        ("channels", channel_id, "endpoint"),
                        f"{why}: a drill never reaches a real platform (it refuses to start)",
                    )
                )
        for index, objective in enumerate(self.objectives):
            if objective.kind == "freeze_acknowledged" and not (
                playbook.freeze.on_activation or self._freezes()
            ):
                out.append(
                    Issue(
                        ("objectives", index),
                        "the playbook does not freeze on activation and no script freezes",
                    )
                )
        for name, response in self.responses.items():
            for index, action in enumerate(response.actions):
                loc = ("responses", name, "actions", index)
                if action.by not in operators:
                    out.append(
                        Issue(
                            (*loc, "by"),
                            f"no operator {action.by!r} in the org file "
                            f"(operators: {', '.join(sorted(operators))})",
                        )
                    )
                _action_context(action, loc, playbook, org, channels, groups, out)
        return out

    def _freezes(self) -> bool:
        return any(a.freeze is not None for r in self.responses.values() for a in r.actions)


def _fmt(value: timedelta) -> str:
    from krise_tui.playbook.models import format_duration

    return format_duration(value)


def _unknown_channel(loc: tuple[str | int, ...], channel_id: str, org: Org) -> Issue:
    known = ", ".join(c.id for c in org.channels if c.kind is not ChannelKind.STAFF)
    return Issue(loc, f"no channel {channel_id!r} in the org file (channels: {known})")


def staff_login_problem(staff_id: str, roster: set[str]) -> str | None:
    """Why ``staff_id`` cannot log in to a drill's broker (``None`` when it can).

    The drill's private broker has users for the demo staff (``ansatt-001`` …
    ``ansatt-020``) and the simulated ones (``sim-00001`` … ``sim-05000``).
    """
    if staff_id in DEMO_STAFF:
        return None
    if staff_id.startswith(SIM_PREFIX):
        digits = staff_id.removeprefix(SIM_PREFIX)
        if (
            digits.isdigit()
            and sim_staff_id(int(digits)) == staff_id
            and 1 <= int(digits) <= EMBEDDED_SIMULATED_STAFF
        ):
            return None
    where = " (the org file lists it, but" if staff_id in roster else " ("
    return (
        f"staff id {staff_id!r} has no user on the drill's broker{where} only "
        f"{DEMO_STAFF[0]}…{DEMO_STAFF[-1]} and {sim_staff_id(1)}…"
        f"{sim_staff_id(EMBEDDED_SIMULATED_STAFF)} can log in)"
    )


def _world_issues(world: WorldEvent, loc: tuple[str | int, ...], out: list[Issue]) -> None:
    channel_events = ("channel_down", "channel_up")
    if world.event in channel_events and world.channel is None:
        out.append(Issue(loc, f"{world.event} names its channel"))
    if world.event not in channel_events and world.channel is not None:
        out.append(Issue((*loc, "channel"), f"{world.event} has no channel"))
    if world.event != "channel_down" and world.reason is not None:
        out.append(Issue((*loc, "reason"), "only channel_down has a reason"))
    if world.event in ("road_closed", "road_opened", "fact_confirmed", "note") and not world.text:
        out.append(Issue(loc, f"{world.event} says what happened in text: {{nb: …}}"))
    if world.event != "fact_confirmed" and world.source is not None:
        out.append(Issue((*loc, "source"), "only fact_confirmed has a source"))


def _staff_issues(staff: StaffInject, loc: tuple[str | int, ...], out: list[Issue]) -> None:
    if bool(staff.ids) == (staff.count is not None):
        out.append(Issue(loc, "name the terminals with ids, or give a count (one of them)"))
    if (staff.go is None) == (not staff.ack):
        out.append(Issue(loc, "say go: online/offline, or ack: true (one of them)"))
    if staff.seq is not None and not staff.ack:
        out.append(Issue((*loc, "seq"), "seq goes with ack: true"))
    if staff.ack and staff.count is not None:
        out.append(Issue((*loc, "count"), "an acknowledgement names its terminals (ids)"))


def _action_context(
    action: Action,
    loc: tuple[str | int, ...],
    playbook: Playbook,
    org: Org,
    channels: dict[str, Any],
    groups: set[str],
    out: list[Issue],
) -> None:
    compose = action.compose
    if compose is not None:
        for i, channel_id in enumerate(compose.channels):
            if channel_id not in channels:
                out.append(_unknown_channel((*loc, "compose", "channels", i), channel_id, org))
        if compose.template is not None:
            try:
                template = playbook.template(compose.template)
            except KeyError:
                known = ", ".join(t.id for t in playbook.templates)
                out.append(
                    Issue(
                        (*loc, "compose", "template"),
                        f"no template {compose.template!r} in {playbook.id} ({known})",
                    )
                )
            else:
                values = {**sample_auto_values(org), **compose.values}
                langs = (
                    []
                    if compose.text is not None
                    else compose.languages
                    or [lang for lang, text in template.text.items() if text.ready]
                )
                for lang in langs:
                    try:
                        render_template(playbook, compose.template, lang, values)
                    except TemplateError as exc:
                        out.append(Issue((*loc, "compose", "values"), str(exc)))
    answer = action.answer
    if answer is not None and answer.question is not None:
        values = {**sample_auto_values(org), **answer.values}
        try:
            render_answer(playbook, answer.question, "nb", values)
        except TemplateError as exc:
            out.append(Issue((*loc, "answer", "question"), str(exc)))
    if action.freeze is not None:
        for i, group in enumerate(action.freeze.departments):
            if group not in groups:
                out.append(
                    Issue(
                        (*loc, "freeze", "departments", i),
                        f"no staff group {group!r} in the org file "
                        f"({', '.join(sorted(groups)) or 'none'})",
                    )
                )
    if action.retry_delivery is not None and action.retry_delivery.channel not in channels:
        out.append(
            _unknown_channel(
                (*loc, "retry_delivery", "channel"), action.retry_delivery.channel, org
            )
        )
    if isinstance(action.remind, list):
        roster = {str(s) for g in org.staff_groups for s in g.staff or []}
        for i, staff_id in enumerate(action.remind):
            problem = staff_login_problem(staff_id, roster)
            if problem:
                out.append(Issue((*loc, "remind", i), problem))


def sample_auto_values(org: Org) -> dict[str, str]:
    """The values the player fills in itself (``tidspunkt`` as an example)."""
    return {**org.standard_values(), "tidspunkt": "kl. 14.30"}


class _ResponseCheck:
    """Checks one response: one verb per action, and every name it uses is defined first."""

    def __init__(self, scenario: Scenario, base: tuple[str | int, ...], out: list[Issue]) -> None:
        self.scenario = scenario
        self.base = base
        self.out = out
        self.post_keys = scenario.post_keys()
        self.post_at = {f"{p.channel}:{p.id}": at for _, p, at in scenario.posts()}
        self.drafts: set[str] = set()
        self.answers: set[str] = set()
        self.rumours: set[str] = set()
        self.loc: tuple[str | int, ...] = base

    def problem(self, where: tuple[str | int, ...], message: str) -> None:
        self.out.append(Issue((*self.loc, *where), message))

    def run(self, response: Response) -> None:
        ordered = sorted(enumerate(response.actions), key=lambda pair: pair[1].at)
        for index, action in ordered:
            self.loc = (*self.base, "actions", index)
            verbs = [v for v in VERBS if getattr(action, v) is not None]
            if len(verbs) != 1:
                found = ", ".join(verbs) if verbs else "none"
                self.problem((), f"one verb per action (found: {found})")
                continue
            if action.at > self.scenario.duration:
                self.problem(("at",), "after the drill's end")
            self.check(action, verbs[0])

    def check(self, action: Action, verb: str) -> None:
        at = action.at
        if verb == "compose":
            spec = action.compose
            assert spec is not None
            if spec.template is None and spec.text is None:
                self.problem(("compose",), "give a template (with values) or the text")
            if spec.text is not None and spec.values:
                self.problem(("compose", "values"), "values fill in a template, not a text")
            if spec.text is not None and "nb" not in spec.text:
                self.problem(("compose", "text"), "needs the nb text (bokmål is always required)")
            if spec.languages is not None and (spec.template is None or spec.text is not None):
                self.problem(("compose", "languages"), "languages go with a template's text")
            if spec.status != "published" and spec.supersedes is None:
                self.problem(("compose",), f"a message that is {spec.status} names supersedes")
            if spec.supersedes is not None:
                self.draft(spec.supersedes, ("compose", "supersedes"))
            self.drafts.add(spec.id)
        elif verb == "approve":
            value = action.approve
            self.draft(value if isinstance(value, str) else value.draft, ("approve",))  # type: ignore[union-attr]
        elif verb == "publish":
            self.draft(str(action.publish), ("publish",))
        elif verb == "retry_delivery":
            assert action.retry_delivery is not None
            self.draft(action.retry_delivery.draft, ("retry_delivery", "draft"))
        elif verb == "answer":
            spec_a = action.answer
            assert spec_a is not None
            if (spec_a.text is None) == (spec_a.question is None):
                self.problem(("answer",), "give the text, or the question whose answer to use")
            if spec_a.text is not None and "nb" not in spec_a.text:
                self.problem(("answer", "text"), "needs the nb text (bokmål is always required)")
            self.batch(spec_a.batch, ("answer", "batch"), at)
            self.answers.add(spec_a.id)
        elif verb == "approve_answer":
            value_a = action.approve_answer
            name = value_a if isinstance(value_a, str) else value_a.answer  # type: ignore[union-attr]
            self.answer(name, ("approve_answer",))
        elif verb == "publish_answer":
            self.answer(str(action.publish_answer), ("publish_answer",))
        elif verb == "answer_open_batches":
            spec_s = action.answer_open_batches
            assert spec_s is not None
            if "nb" not in spec_s.text:
                self.problem(("answer_open_batches", "text"), "needs the nb text")
            if spec_s.approver == action.by:
                self.problem(
                    ("answer_open_batches", "approver"), "four eyes: another person approves"
                )
        elif verb == "register_rumour":
            spec_r = action.register_rumour
            assert spec_r is not None
            if spec_r.id in self.rumours:
                self.problem(("register_rumour", "id"), f"rumour {spec_r.id!r} exists already")
            for i, ref in enumerate(spec_r.posts):
                self.post(ref, ("register_rumour", "posts", i), at)
            self.rumours.add(spec_r.id)
        elif verb in ("rumour_state", "link_correction", "link_sighting"):
            spec_x = getattr(action, verb)
            self.rumour(spec_x.rumour, (verb, "rumour"))
            if verb == "link_correction":
                self.draft(spec_x.draft, (verb, "draft"))
            if verb == "link_sighting":
                self.post(spec_x.post, (verb, "post"), at)
        elif verb in ("reply_to_spreaders", "acknowledge_recurrence"):
            self.rumour(str(getattr(action, verb)), (verb,))
        elif verb == "merge_batches":
            assert action.merge_batches is not None
            self.batch(action.merge_batches.kept, ("merge_batches", "kept"), at)
            self.batch(action.merge_batches.absorbed, ("merge_batches", "absorbed"), at)
        elif verb == "move_question":
            assert action.move_question is not None
            self.post(action.move_question.post, ("move_question", "post"), at)
            self.batch(action.move_question.batch, ("move_question", "batch"), at)
        elif verb == "split_batch":
            assert action.split_batch is not None
            for i, ref in enumerate(action.split_batch.posts):
                self.post(ref, ("split_batch", "posts", i), at)
        elif verb in ("relabel", "hide"):
            self.post(getattr(action, verb).post, (verb, "post"), at)
        elif verb == "forward_case":
            self.post(str(action.forward_case), ("forward_case",), at)
        elif verb == "resend_failed_replies" and isinstance(action.resend_failed_replies, list):
            for i, ref in enumerate(action.resend_failed_replies):
                self.post(ref, ("resend_failed_replies", i), at)
        elif verb == "auto_answer":
            assert action.auto_answer is not None
            self.batch(action.auto_answer.batch, ("auto_answer", "batch"), at)

    def draft(self, name: str, where: tuple[str | int, ...]) -> None:
        if name not in self.drafts:
            self.problem(where, f"no draft {name!r} composed before this action")

    def answer(self, name: str, where: tuple[str | int, ...]) -> None:
        if name not in self.answers:
            self.problem(where, f"no answer {name!r} written before this action")

    def rumour(self, name: str, where: tuple[str | int, ...]) -> None:
        if name not in self.rumours:
            self.problem(where, f"no rumour {name!r} registered before this action")

    def post(self, ref: str, where: tuple[str | int, ...], at: timedelta) -> None:
        key = self.post_keys.get(ref)
        if key is None:
            hint = (
                " (the id is used on two channels: write channel:id)"
                if any(k.endswith(f":{ref}") for k in self.post_at)
                else ""
            )
            self.problem(where, f"no post {ref!r} on the timeline{hint}")
        elif self.post_at[key] > at:
            self.problem(where, f"post {ref!r} arrives later ({_offset(self.post_at[key])})")

    def batch(self, ref: str, where: tuple[str | int, ...], at: timedelta) -> None:
        if ref.startswith(_POST_PREFIX):
            self.post(ref.removeprefix(_POST_PREFIX), where, at)


def _offset(value: timedelta) -> str:
    return f"T+{_fmt(value)}"


# --- loading ---------------------------------------------------------------------------------


class ScenarioError(PlaybookError):
    """A scenario file is invalid (or its playbook or org file); ``problems`` say where."""


@dataclass(frozen=True)
class LoadedScenario:
    """A valid scenario with the playbook and org file it runs against."""

    scenario: Scenario
    path: Path
    playbook: Playbook
    playbook_path: Path
    org: Org
    org_path: Path

    @property
    def timezone(self) -> str:
        """The org's time zone (how times are shown)."""
        return self.org.timezone or DEFAULT_TIMEZONE

    def at(self, offset: timedelta) -> datetime:
        """The virtual time of an offset."""
        return self.scenario.start + offset


def parse_scenario(data: bytes | str, *, file: str = "<scenario>") -> Scenario:
    """Validate scenario YAML text (structure and cross-field rules). Raises ScenarioError."""
    scenario, _, problems = _validate(data, file)
    if scenario is None:
        raise ScenarioError(problems)
    return scenario


def _validate(data: bytes | str, file: str) -> tuple[Scenario | None, _Pos | None, list[Problem]]:
    value, root, problems = _parse_yaml(data, file)
    if problems or root is None:
        return None, None, problems
    if not isinstance(value, dict):
        return None, None, [Problem(file, root.line, root.column, "expected a mapping of keys")]
    root = _Pos(1, 1, root.children)
    try:
        scenario = Scenario.model_validate(value, context={DEFER_CHECKS: True})
    except ValidationError as exc:
        return None, root, _error_problems(file, root, Scenario, exc)
    issues = scenario.issues()
    if issues:
        return None, root, _located(file, root, issues)
    return scenario, root, []


def _located(file: str, root: _Pos, issues: Iterable[Issue]) -> list[Problem]:
    return sorted({_issue_problem(file, root, issue) for issue in issues})[:100]


def resolve_playbook(ref: str, base: Path) -> Path:
    """The playbook file a scenario names: a path from ``base``, or an id looked up as
    ``{id}.yaml`` beside the scenario and in its parent directory."""
    if "/" in ref or ref.endswith((".yaml", ".yml")):
        return (base / ref).resolve()
    for directory in (base, base.parent):
        candidate = directory / f"{ref}.yaml"
        if candidate.exists():
            return candidate.resolve()
    return (base.parent / f"{ref}.yaml").resolve()


def load_scenario(path: Path | str, *, org_path: Path | str | None = None) -> LoadedScenario:
    """Load a scenario with its playbook and org file, everything checked.

    ``org_path`` overrides the scenario's ``org``. Raises :class:`ScenarioError` with
    every problem as ``file:line:column: message`` (the playbook's and the org file's
    own problems included).
    """
    path = Path(path)
    file = str(path)
    try:
        data = read_limited(path)
    except OSError as exc:
        raise ScenarioError([Problem(file, 1, 1, f"cannot read: {exc.strerror or exc}")]) from None
    scenario, root, problems = _validate(data, file)
    if scenario is None or root is None:
        raise ScenarioError(problems)
    base = path.resolve().parent
    playbook_file = resolve_playbook(scenario.playbook, base)
    if org_path is not None:
        org_file = Path(org_path)
    elif scenario.org is not None:
        org_file = (base / scenario.org).resolve()
    else:
        pos = root.children.get("playbook") if isinstance(root.children, dict) else None
        line, column = (pos.line, pos.column) if pos else (1, 1)
        raise ScenarioError(
            [Problem(file, line, column, "name the org file (org: ../orgs/eksempel.yaml)")]
        )
    try:
        org = load_org(org_file)
    except PlaybookError as exc:
        raise ScenarioError(_referenced(file, root, "org", exc.problems)) from None
    try:
        playbook = load_playbook(playbook_file, org=org)
    except PlaybookError as exc:
        raise ScenarioError(_referenced(file, root, "playbook", exc.problems)) from None
    by_id = "/" not in scenario.playbook and not scenario.playbook.endswith((".yaml", ".yml"))
    if by_id and playbook.id != scenario.playbook:
        raise ScenarioError(
            _located(
                file,
                root,
                [
                    Issue(
                        ("playbook",),
                        f"{playbook_file} is playbook {playbook.id!r}, not {scenario.playbook!r}",
                    )
                ],
            )
        )
    issues = scenario.context_issues(playbook, org)
    if issues:
        raise ScenarioError(_located(file, root, issues))
    return LoadedScenario(scenario, path, playbook, playbook_file, org, org_file)


def _referenced(file: str, root: _Pos, key: str, problems: list[Problem]) -> list[Problem]:
    """The referenced file's problems, after one line saying which reference it was."""
    pos = root.children.get(key) if isinstance(root.children, dict) else None
    line, column = (pos.line, pos.column) if pos else (1, 1)
    head = Problem(file, line, column, f"the {key} file has problems (below)")
    return [head, *problems]


def check_scenario(path: Path | str, *, org_path: Path | str | None = None) -> list[Problem]:
    """Every problem of a scenario file (and its playbook and org); empty when valid."""
    try:
        load_scenario(path, org_path=org_path)
    except ScenarioError as exc:
        return exc.problems
    return []
