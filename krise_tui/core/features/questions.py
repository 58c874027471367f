"""Questions from the public: triage, batches, one shared answer per batch, deadlines.

The guideline (DOMAIN §B): factual errors, dissatisfied users and questions about the
municipality's services are always answered, the same day at the latest; relevant
criticism is never hidden; no dialogue with attacks (a journaled hide on channels we run,
never a delete); a request for case processing gets the standard reply and goes to the
archive; and there is no one-to-one dialogue in a crisis: questions that ask the same
thing are collected into a *batch* and answered once.

- Every post is triaged when it arrives (:class:`TriagePost`, pure rules from
  :mod:`krise_tui.rules.triage` and the playbook's keywords); an operator corrects any
  label with :class:`RelabelPost`.
- The runtime's batching service (an embedding model: not pure) decides which batch a
  question joins and journals it with :class:`AssignToBatch`, including the batcher's
  own operation so the batcher can be rebuilt from the journal; operators merge, move
  and split, and later assignments respect that.
- A batch's answer is written, linted and approved by a second person like any
  message (:class:`SaveAnswer` → :class:`ApproveAnswer`), then :class:`PublishAnswer`
  replies to every asker on their own channel (one signed ``channel.reply`` per post,
  idempotency key per (answer, post)); questions that join an answered batch later get
  it automatically unless the batch's auto-answer is off.
- The playbook's anticipated questions seed batches with their pre-written answer as
  the starting draft: it still needs its placeholders filled and a second person's
  approval before anything is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from krise_tui.core.features.inbound import Post, PostReceived
from krise_tui.core.features.messages import (
    DeliveryReceipt,
    DeliveryStatus,
    DraftVariant,
    check_approval,
)
from krise_tui.core.features.outbox import (
    OutboxConfirmed,
    OutboxRequested,
    OutboxRequeued,
    Requests,
    Target,
)
from krise_tui.core.kernel import Accepted, Context, Decision, EventBase, Rejection
from krise_tui.core.policy import STAFF_KIND, WEBSITE_KIND
from krise_tui.core.registry import Feature
from krise_tui.core.textcheck import first_block
from krise_tui.rules.idnumbers import find_id_numbers
from krise_tui.rules.triage import Label, must_answer, triage
from krise_tui.wire.delivery import (
    HIDE_TYPE,
    QA_TYPE,
    REPLY_TYPE,
    HideRequest,
    PostRef,
    QaEntry,
    QaRequest,
    ReceiptStatus,
    ReplyRequest,
)

if TYPE_CHECKING:
    from krise_tui.core.state import IncidentState

feature = Feature("questions")

BATCHED = frozenset(
    {Label.SERVICE_QUESTION, Label.FACTUAL_ERROR, Label.DISSATISFIED, Label.CRITICISM}
)
"""Labels whose posts are batched and answered together."""

NO_REPLY_KINDS = frozenset({WEBSITE_KIND, STAFF_KIND})
"""Channels a reply cannot go back on (the website's questions page serves them)."""


# --- state ---------------------------------------------------------------------------


@dataclass
class Question:
    """One triaged post from the public: what triage, batching and answering made of it.

    The post itself (channel, author, text, time …) is kept once, in
    ``state.inbound.posts`` under the same key: :func:`post_of`.
    """

    key: str
    label: str = str(Label.IRRELEVANT)
    label_by: str = "triage"
    """``triage`` or the operator who corrected it."""
    confidence: float = 0.0
    reasons: list[str] = field(default_factory=list)
    language: str = "nb"
    batch_id: str | None = None
    batch_score: float | None = None
    hidden: bool = False
    hide_reason: str | None = None
    forwarded: bool = False
    """Sent on to the archive (post office) as a request for case processing."""
    replies: list[str] = field(default_factory=list)
    """Effect ids of the replies sent to this post."""

    @property
    def must_answer(self) -> bool:
        """The guideline says this post is always answered."""
        return must_answer(Label(self.label))


@dataclass
class Batch:
    """Questions that ask the same thing, answered once."""

    batch_id: str
    created_at: datetime
    title: str
    """The first question (or the anticipated question) that opened it."""
    members: list[str] = field(default_factory=list)
    seed_question_id: str | None = None
    """The playbook's anticipated question it was seeded from."""
    suggested: dict[str, str] = field(default_factory=dict)
    """The playbook's pre-written answer per language (a starting draft, placeholders
    and all: still needs approval)."""
    merged_into: str | None = None
    auto_answer: bool = True
    """New questions that join after the answer get it automatically."""
    answer_id: str | None = None
    """The published final answer."""
    preliminary_id: str | None = None
    """A published preliminary answer ("we will answer by …")."""

    @property
    def answered(self) -> bool:
        """Whether a final answer has been published."""
        return self.answer_id is not None


@dataclass
class Answer:
    """A batch's shared answer: written, approved by a second person, published."""

    answer_id: str
    batch_id: str
    author: str
    variants: list[dict[str, Any]]
    kind: str
    """``final`` or ``preliminary``."""
    saved_at: datetime
    approver: str | None = None
    approved_at: datetime | None = None
    signature: str = ""
    break_glass_reason: str | None = None
    published_at: datetime | None = None

    def text(self, lang: str) -> str:
        """The answer in ``lang`` (bokmål when it was not written in it)."""
        by_lang = {v["lang"]: v for v in self.variants if str(v.get("body", "")).strip()}
        chosen = by_lang.get(lang) or by_lang.get("nb") or next(iter(by_lang.values()), {})
        return str(chosen.get("body", ""))


@dataclass
class Reply:
    """One answer sent to one asker (a ledger row, like a channel delivery)."""

    effect_id: str
    answer_id: str
    post_key: str
    channel: str
    requested_at: datetime
    status: DeliveryStatus = DeliveryStatus.QUEUED
    attempts: int = 0
    reason: str | None = None
    remote_id: str | None = None


@dataclass
class QuestionsSlice:
    """Triaged posts, batches, answers and replies; the batcher's journaled operations."""

    questions: dict[str, Question] = field(default_factory=dict)
    batches: dict[str, Batch] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)
    replies: dict[str, Reply] = field(default_factory=dict)
    """Effect id -> reply."""
    batch_ops: list[dict[str, Any]] = field(default_factory=list)
    """The batcher's operations in order (seed, add, merge, move, split): replaying them
    rebuilds the batcher exactly as the operators saw it."""

    def resolve(self, batch_id: str) -> str:
        """The batch ``batch_id`` lives on as (after merges)."""
        seen = set()
        while batch_id in self.batches and self.batches[batch_id].merged_into:
            if batch_id in seen:
                break
            seen.add(batch_id)
            batch_id = self.batches[batch_id].merged_into or batch_id
        return batch_id

    def open_batches(self) -> list[Batch]:
        """Batches that are not merged into another, newest first."""
        live = [b for b in self.batches.values() if b.merged_into is None]
        return sorted(live, key=lambda b: b.created_at, reverse=True)

    def unanswered(self, batch: Batch) -> list[Question]:
        """The batch's questions that still need the answer."""
        return [
            self.questions[k]
            for k in batch.members
            if k in self.questions
            and not self.questions[k].hidden
            and not any(
                self.replies[e].answer_id == batch.answer_id
                for e in self.questions[k].replies
                if e in self.replies
            )
        ]


def post_of(state: IncidentState, q: Question) -> Post:
    """The post ``q`` was triaged from (every question is a journaled post; the post
    stays in the state, under the same key, for as long as the question does)."""
    return state.inbound.posts[q.key]


# --- commands ------------------------------------------------------------------------


@dataclass(frozen=True)
class TriagePost:
    """Label a journaled post by the guideline's rules (the runtime asks on arrival)."""

    key: str


@dataclass(frozen=True)
class RelabelPost:
    """An operator corrects a post's label."""

    key: str
    label: str


@dataclass(frozen=True)
class SeedBatch:
    """Open a batch for one of the playbook's anticipated questions."""

    batch_id: str
    question_id: str
    title: str
    suggested: tuple[tuple[str, str], ...]
    """The pre-written answer per language, ``(lang, text)``."""
    op: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AssignToBatch:
    """The batching service placed a question in a batch (``new``: it opened it)."""

    key: str
    batch_id: str
    score: float
    new: bool
    op: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MergeBatches:
    """Two batches ask the same thing: ``absorbed`` joins ``kept``."""

    kept: str
    absorbed: str
    op: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MoveQuestion:
    """An operator moves a question to another batch."""

    key: str
    batch_id: str
    op: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitBatch:
    """An operator splits questions out of their batch into a new one."""

    keys: tuple[str, ...]
    new_batch_id: str
    op: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SetAutoAnswer:
    """Whether new questions that join an answered batch get the answer automatically."""

    batch_id: str
    on: bool


@dataclass(frozen=True)
class SaveAnswer:
    """Write (or rewrite) a batch's answer; the actor is its author."""

    batch_id: str
    variants: tuple[DraftVariant, ...]
    kind: Literal["final", "preliminary"] = "final"
    answer_id: str | None = None


@dataclass(frozen=True)
class ApproveAnswer:
    """A second person approves an answer (the runtime checked their passphrase)."""

    answer_id: str
    approver: str
    overrides: tuple[tuple[str, str, str], ...] = ()
    break_glass_reason: str | None = None


@dataclass(frozen=True)
class PublishAnswer:
    """Send an approved answer to every asker of its batch on their own channel."""

    answer_id: str


@dataclass(frozen=True)
class RetryReply:
    """Send a reply that failed for good again (the same request), once its channel is back."""

    effect_id: str


@dataclass(frozen=True)
class ForwardCaseProcessing:
    """A request for case processing: the standard reply, and on to the archive."""

    key: str


@dataclass(frozen=True)
class HidePost:
    """Hide (never delete) a post on a channel the municipality runs, with a reason."""

    key: str
    reason: str


# --- events --------------------------------------------------------------------------


@feature.event
class PostTriaged(EventBase):
    """A post was labelled (by the rules, or corrected by an operator)."""

    type: Literal["question.triaged"] = "question.triaged"
    key: str
    label: str
    confidence: float = 0.0
    reasons: list[str] = Field(default_factory=list)
    language: str = "nb"
    corrected: bool = False
    """An operator's correction (actor = the operator)."""


@feature.event
class BatchSeeded(EventBase):
    """A batch was opened for an anticipated question from the playbook."""

    type: Literal["question.batch_seeded"] = "question.batch_seeded"
    batch_id: str
    question_id: str
    title: str
    suggested: dict[str, str]
    op: dict[str, Any] = Field(default_factory=dict)


@feature.event
class QuestionBatched(EventBase):
    """A question joined a batch (``new``: it opened it)."""

    type: Literal["question.batched"] = "question.batched"
    key: str
    batch_id: str
    score: float
    new: bool
    op: dict[str, Any] = Field(default_factory=dict)


@feature.event
class BatchesMerged(EventBase):
    """An operator merged two batches."""

    type: Literal["question.batches_merged"] = "question.batches_merged"
    kept: str
    absorbed: str
    op: dict[str, Any] = Field(default_factory=dict)


@feature.event
class QuestionMoved(EventBase):
    """An operator moved a question to another batch."""

    type: Literal["question.moved"] = "question.moved"
    key: str
    from_batch: str | None
    batch_id: str
    op: dict[str, Any] = Field(default_factory=dict)


@feature.event
class BatchSplit(EventBase):
    """An operator split questions out of a batch into a new one."""

    type: Literal["question.batch_split"] = "question.batch_split"
    keys: list[str]
    from_batch: str
    new_batch_id: str
    op: dict[str, Any] = Field(default_factory=dict)


@feature.event
class AutoAnswerSet(EventBase):
    """Auto-answer for later askers was turned on or off for a batch."""

    type: Literal["question.auto_answer"] = "question.auto_answer"
    batch_id: str
    on: bool


@feature.event
class AnswerSaved(EventBase):
    """A batch's answer was written or changed (author = actor)."""

    type: Literal["question.answer_saved"] = "question.answer_saved"
    answer_id: str
    batch_id: str
    variants: list[dict[str, Any]]
    kind: str = "final"


@feature.event
class AnswerApproved(EventBase):
    """A second person approved an answer (actor = approver)."""

    type: Literal["question.answer_approved"] = "question.answer_approved"
    answer_id: str
    approver: str
    signature: str
    findings: list[str] = Field(default_factory=list)
    overrides: list[dict[str, str]] = Field(default_factory=list)
    break_glass_reason: str | None = None


@feature.event
class AnswerPublished(EventBase):
    """An approved answer went out to its batch's askers (one reply each)."""

    type: Literal["question.answer_published"] = "question.answer_published"
    answer_id: str
    batch_id: str
    posts: list[str]
    """The post keys that get a reply now."""


@feature.event
class ReplyRetried(EventBase):
    """A reply that failed for good is sent again (the same request: a platform that got
    it after all does not get it twice)."""

    type: Literal["question.reply_retried"] = "question.reply_retried"
    effect_id: str
    post_key: str


@feature.event
class CaseForwarded(EventBase):
    """A request for case processing got the standard reply and went to the archive."""

    type: Literal["question.case_forwarded"] = "question.case_forwarded"
    key: str


@feature.event
class PostHidden(EventBase):
    """A post was hidden on a channel the municipality runs (never deleted)."""

    type: Literal["question.hidden"] = "question.hidden"
    key: str
    reason: str


# --- decide --------------------------------------------------------------------------


def _question(state: IncidentState, key: str) -> Question | Rejection:
    q = state.questions.questions.get(key)
    if q is None:
        return Rejection(f"no triaged post {key}", f"fant ikke innlegget {key}")
    return q


def _batch(state: IncidentState, batch_id: str) -> Batch | Rejection:
    resolved = state.questions.resolve(batch_id)
    b = state.questions.batches.get(resolved)
    if b is None:
        return Rejection(f"no batch {batch_id}", f"fant ikke gruppen {batch_id}")
    return b


@feature.decides(TriagePost)
def triage_post(state: IncidentState, cmd: TriagePost, ctx: Context) -> Decision:
    """Label a journaled post once, by the rules and the playbook's keywords."""
    post = state.inbound.posts.get(cmd.key)
    if post is None:
        return Rejection(f"no post {cmd.key}")
    if cmd.key in state.questions.questions:
        return Accepted([])
    keywords = {k: list(v) for k, v in ctx.policy.triage_keywords.items()}
    result = triage(post.text, keywords=keywords)
    base = ctx.base(state)
    base["actor"] = "triage"
    return Accepted(
        [
            PostTriaged(
                **base,
                key=cmd.key,
                label=str(result.label),
                confidence=round(float(result.confidence), 4),
                reasons=list(result.reasons)[:8],
                language=result.language,
            )
        ]
    )


@feature.decides(RelabelPost)
def relabel(state: IncidentState, cmd: RelabelPost, ctx: Context) -> Decision:
    """An operator's correction of a label (journaled as theirs)."""
    q = _question(state, cmd.key)
    if isinstance(q, Rejection):
        return q
    try:
        label = Label(cmd.label)
    except ValueError:
        return Rejection(f"unknown label {cmd.label!r}", f"ukjent kategori {cmd.label!r}")
    if q.label == str(label):
        return Accepted([])
    return Accepted(
        [
            PostTriaged(
                **ctx.base(state),
                key=cmd.key,
                label=str(label),
                confidence=1.0,
                reasons=[f"corrected by {ctx.actor}"],
                language=q.language,
                corrected=True,
            )
        ]
    )


@feature.decides(SeedBatch)
def seed(state: IncidentState, cmd: SeedBatch, ctx: Context) -> Decision:
    """Open a batch for an anticipated question (once per question)."""
    if not state.is_open:
        return Rejection("open an incident first", "åpne en hendelse først")
    if any(b.seed_question_id == cmd.question_id for b in state.questions.batches.values()):
        return Accepted([])
    if cmd.batch_id in state.questions.batches:
        return Rejection(f"batch {cmd.batch_id} exists already")
    return Accepted(
        [
            BatchSeeded(
                **ctx.base(state),
                batch_id=cmd.batch_id,
                question_id=cmd.question_id,
                title=cmd.title,
                suggested=dict(cmd.suggested),
                op=dict(cmd.op),
            )
        ]
    )


@feature.decides(AssignToBatch)
def assign(state: IncidentState, cmd: AssignToBatch, ctx: Context) -> Decision:
    """Record where the batching service put a question; an answered batch answers it."""
    q = _question(state, cmd.key)
    if isinstance(q, Rejection):
        return q
    if q.batch_id is not None:
        return Accepted([])  # placed already (a repeat after a restart)
    if not cmd.new and state.questions.resolve(cmd.batch_id) not in state.questions.batches:
        return Rejection(f"no batch {cmd.batch_id}")
    if cmd.new and cmd.batch_id in state.questions.batches:
        return Rejection(f"batch {cmd.batch_id} exists already")
    base = ctx.base(state)
    base["actor"] = "batching"
    events: list[EventBase] = [
        QuestionBatched(
            **base,
            key=cmd.key,
            batch_id=cmd.batch_id,
            score=round(cmd.score, 4),
            new=cmd.new,
            op=dict(cmd.op),
        )
    ]
    batch = state.questions.batches.get(state.questions.resolve(cmd.batch_id))
    if batch is not None and batch.answered and batch.auto_answer and batch.answer_id:
        answer = state.questions.answers[batch.answer_id]
        requests = Requests(state, ctx)
        replies = _replies(state, ctx, requests, answer, [q])
        if replies:
            events.append(
                AnswerPublished(
                    **ctx.base(state),
                    answer_id=answer.answer_id,
                    batch_id=batch.batch_id,
                    posts=[q.key],
                )
            )
            events += replies
    return Accepted(events)


@feature.decides(MergeBatches)
def merge(state: IncidentState, cmd: MergeBatches, ctx: Context) -> Decision:
    """Merge ``absorbed`` into ``kept`` (both stay known by their ids)."""
    kept, absorbed = _batch(state, cmd.kept), _batch(state, cmd.absorbed)
    for b in (kept, absorbed):
        if isinstance(b, Rejection):
            return b
    assert isinstance(kept, Batch) and isinstance(absorbed, Batch)
    if kept.batch_id == absorbed.batch_id:
        return Rejection(
            "a batch cannot be merged with itself", "en gruppe kan ikke slås sammen med seg selv"
        )
    if kept.answered and absorbed.answered and kept.answer_id != absorbed.answer_id:
        return Rejection(
            "both batches have their own answer; move the questions instead",
            "begge gruppene har eget svar; flytt spørsmålene i stedet",
        )
    return Accepted(
        [
            BatchesMerged(
                **ctx.base(state), kept=kept.batch_id, absorbed=absorbed.batch_id, op=dict(cmd.op)
            )
        ]
    )


@feature.decides(MoveQuestion)
def move(state: IncidentState, cmd: MoveQuestion, ctx: Context) -> Decision:
    """Move a question to another batch."""
    q = _question(state, cmd.key)
    if isinstance(q, Rejection):
        return q
    target = _batch(state, cmd.batch_id)
    if isinstance(target, Rejection):
        return target
    current = state.questions.resolve(q.batch_id) if q.batch_id else None
    if current == target.batch_id:
        return Accepted([])
    return Accepted(
        [
            QuestionMoved(
                **ctx.base(state),
                key=cmd.key,
                from_batch=current,
                batch_id=target.batch_id,
                op=dict(cmd.op),
            )
        ]
    )


@feature.decides(SplitBatch)
def split(state: IncidentState, cmd: SplitBatch, ctx: Context) -> Decision:
    """Split questions out of their (one) batch into a new batch."""
    if not cmd.keys:
        return Rejection("name the questions to split out", "velg spørsmålene som skal skilles ut")
    batches = set()
    for key in cmd.keys:
        q = _question(state, key)
        if isinstance(q, Rejection):
            return q
        if q.batch_id is None:
            return Rejection(f"{key} is not in a batch", f"{key} er ikke i en gruppe")
        batches.add(state.questions.resolve(q.batch_id))
    if len(batches) != 1:
        return Rejection(
            "split questions out of one batch at a time", "skill ut fra én gruppe om gangen"
        )
    if cmd.new_batch_id in state.questions.batches:
        return Rejection(f"batch {cmd.new_batch_id} exists already")
    (source,) = batches
    if set(cmd.keys) >= set(state.questions.batches[source].members):
        return Rejection("that is the whole batch", "det er hele gruppen")
    return Accepted(
        [
            BatchSplit(
                **ctx.base(state),
                keys=list(cmd.keys),
                from_batch=source,
                new_batch_id=cmd.new_batch_id,
                op=dict(cmd.op),
            )
        ]
    )


@feature.decides(SetAutoAnswer)
def set_auto(state: IncidentState, cmd: SetAutoAnswer, ctx: Context) -> Decision:
    """Turn auto-answer for later askers on or off."""
    b = _batch(state, cmd.batch_id)
    if isinstance(b, Rejection):
        return b
    if b.auto_answer == cmd.on:
        return Accepted([])
    return Accepted([AutoAnswerSet(**ctx.base(state), batch_id=b.batch_id, on=cmd.on)])


@feature.decides(SaveAnswer)
def save_answer(state: IncidentState, cmd: SaveAnswer, ctx: Context) -> Decision:
    """Write a batch's answer; one holding an ID number is refused (never journaled)."""
    b = _batch(state, cmd.batch_id)
    if isinstance(b, Rejection):
        return b
    langs = [v.lang for v in cmd.variants]
    if len(set(langs)) != len(langs):
        return Rejection("each language only once", "hvert språk bare én gang")
    if not any(v.lang == "nb" and v.body.strip() for v in cmd.variants):
        return Rejection("the answer needs a bokmål (nb) text", "svaret må ha en tekst på bokmål")
    for v in cmd.variants:
        found = [f for f in find_id_numbers(v.body) if not f.account_layout]
        if found:
            return Rejection(
                f"blocked: national identity number ({found[0].redacted}) in the {v.lang} "
                "answer – remove it before saving",
                f"stoppet: fødselsnummer ({found[0].redacted}) i svaret på {v.lang} – fjern "
                "det før du lagrer",
            )
    if cmd.answer_id is not None:
        existing = state.questions.answers.get(cmd.answer_id)
        if existing is None:
            return Rejection(f"no answer {cmd.answer_id}")
        if existing.approved_at is not None:
            return Rejection(
                "this answer is approved and can no longer change; write a new one",
                "svaret er godkjent og kan ikke endres; skriv et nytt",
            )
    return Accepted(
        [
            AnswerSaved(
                **ctx.base(state),
                answer_id=cmd.answer_id or ctx.new_id(),
                batch_id=b.batch_id,
                variants=[v.to_json() for v in cmd.variants],
                kind=cmd.kind,
            )
        ]
    )


@feature.decides(ApproveAnswer)
def approve_answer(state: IncidentState, cmd: ApproveAnswer, ctx: Context) -> Decision:
    """Four eyes and the lint, exactly as for a message."""
    answer = state.questions.answers.get(cmd.answer_id)
    if answer is None:
        return Rejection(f"no answer {cmd.answer_id}", f"fant ikke svaret {cmd.answer_id}")
    if answer.approved_at is not None:
        return Rejection("already approved", "allerede godkjent")
    variants = [DraftVariant.from_json(v) for v in answer.variants]
    overrides = {(code, lang): reason for code, lang, reason in cmd.overrides}
    check = check_approval(
        author=answer.author,
        approver=cmd.approver,
        variants=variants,
        policy=ctx.policy,
        overrides=overrides,
        break_glass_reason=cmd.break_glass_reason,
        headlines=False,
    )
    if not check.ok:
        return check.rejection()
    author = ctx.policy.operators.get(answer.author)
    signature = author.signature if author else f"{answer.author}, {ctx.policy.org_name}"
    report = check.report
    base = ctx.base(state)
    base["actor"] = cmd.approver
    return Accepted(
        [
            AnswerApproved(
                **base,
                answer_id=answer.answer_id,
                approver=cmd.approver,
                signature=signature,
                findings=sorted({f.code for f in report.findings}) if report else [],
                overrides=[
                    {"code": f.code, "lang": f.language, "reason": overrides[(f.code, f.language)]}
                    for f in (report.needs_reason if report else ())
                ],
                break_glass_reason=(cmd.break_glass_reason or None) if check.break_glass else None,
            )
        ]
    )


def _replies(
    state: IncidentState,
    ctx: Context,
    requests: Requests,
    answer: Answer,
    questions: list[Question],
) -> list[EventBase]:
    """One signed reply per asker, on the channel the question came from."""
    events: list[EventBase] = []
    for q in questions:
        post = post_of(state, q)
        spec = ctx.policy.channel(post.channel)
        if spec is None or spec.kind in NO_REPLY_KINDS or q.hidden:
            continue  # no way back to this asker (the website's page still answers them)
        effect_id = ctx.new_id()
        body = ReplyRequest(
            effect_id=effect_id,
            channel=post.channel,
            idempotency_key=f"{answer.answer_id}:{post.channel}:{post.post_id}"[:300],
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
            text=answer.text(q.language),
            lang=q.language if any(v["lang"] == q.language for v in answer.variants) else "nb",
            website_url=ctx.policy.website_url or "https://",
            signature=answer.signature or ctx.policy.org_name,
            exercise=ctx.policy.exercise,
        )
        events.append(
            requests.publish(
                Target.CHANNEL_OUT,
                envelope_type=REPLY_TYPE,
                stream="out",
                body=body.model_dump(mode="json"),
                channel=post.channel,
                effect_id=effect_id,
            ).model_copy(update={"version_id": f"answer:{answer.answer_id}", "channel": None})
        )
    return events


def retry_failed_replies(state: IncidentState, ctx: Context, answer_id: str) -> list[EventBase]:
    """Every reply of ``answer_id`` that failed for good, requested again (the same
    request and idempotency key: a platform that got it after all does not get it twice).

    ``answer_id`` is what the replies were sent as: an answer's id, ``standard:KEY`` for
    the standard reply to a case, ``rumour:ID`` for a rumour's correction.
    """
    events: list[EventBase] = []
    for reply in state.questions.replies.values():
        if reply.answer_id == answer_id and reply.status is DeliveryStatus.FAILED:
            events += _retry(state, ctx, reply)
    return events


def _retry(state: IncidentState, ctx: Context, reply: Reply) -> list[EventBase]:
    return [
        ReplyRetried(**ctx.base(state), effect_id=reply.effect_id, post_key=reply.post_key),
        OutboxRequeued(**ctx.base(state), effect_id=reply.effect_id),
    ]


@feature.decides(RetryReply)
def retry_reply(state: IncidentState, cmd: RetryReply, ctx: Context) -> Decision:
    """One reply that failed for good, sent again (its channel is back)."""
    reply = state.questions.replies.get(cmd.effect_id)
    if reply is None:
        return Rejection(f"no reply {cmd.effect_id}", f"fant ikke svaret {cmd.effect_id}")
    if reply.status is not DeliveryStatus.FAILED:
        return Rejection(
            "only a reply that failed for good is sent again (this one is on its way or there)",
            "bare et svar som har feilet for godt sendes på nytt (dette er på vei eller fram)",
        )
    return Accepted(_retry(state, ctx, reply))


@feature.decides(PublishAnswer)
def publish_answer(state: IncidentState, cmd: PublishAnswer, ctx: Context) -> Decision:
    """Reply to every asker of the batch who has not had this answer yet."""
    answer = state.questions.answers.get(cmd.answer_id)
    if answer is None:
        return Rejection(f"no answer {cmd.answer_id}", f"fant ikke svaret {cmd.answer_id}")
    if answer.approved_at is None:
        return Rejection("only an approved answer can be sent", "bare et godkjent svar kan sendes")
    batch = _batch(state, answer.batch_id)
    if isinstance(batch, Rejection):
        return batch
    already = {
        state.questions.replies[e].post_key
        for e in state.questions.replies
        if state.questions.replies[e].answer_id == answer.answer_id
    }
    waiting = [
        state.questions.questions[k]
        for k in batch.members
        if k in state.questions.questions and k not in already
    ]
    requests = Requests(state, ctx)
    replies = _replies(state, ctx, requests, answer, waiting)
    page = _qa_page(state, ctx, requests, answer) if answer.published_at is None else []
    # Askers whose reply failed for good are waiting too: the same request again.
    retried = retry_failed_replies(state, ctx, answer.answer_id)
    if not waiting and not retried and answer.published_at is not None:
        return Rejection(
            "every asker in the batch has this answer (or it is on its way)",
            "alle som spurte i gruppen har fått svaret (eller det er på vei)",
        )
    return Accepted(
        [
            AnswerPublished(
                **ctx.base(state),
                answer_id=answer.answer_id,
                batch_id=batch.batch_id,
                posts=[q.key for q in waiting],
            ),
            *replies,
            *page,
            *retried,
        ]
    )


def _page_id(batch_id: str) -> str:
    """``batch_id`` as a file name and an HTML anchor (letters, digits, ``_ . -``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", batch_id).strip("-._")[:100]
    return cleaned or "batch"


def _qa_page(
    state: IncidentState, ctx: Context, requests: Requests, answer: Answer
) -> list[EventBase]:
    """The answer on the website's Q&A page: it serves everyone who did not ask.

    The page shows the question as the approver approved it (the answer's headline),
    never an asker's own words; an answer without one is sent to the askers only.
    A later final answer to the same batch replaces the entry (a higher revision).
    """
    if answer.kind != "final":
        return []
    nb = next((v for v in answer.variants if v.get("lang") == "nb"), None)
    question = str((nb or {}).get("headline", "")).strip()
    body = answer.text("nb").strip()
    if not question or not body or answer.approved_at is None:
        return []
    revision = 1 + sum(
        1
        for a in state.questions.answers.values()
        if a.batch_id == answer.batch_id and a.kind == "final" and a.published_at is not None
    )
    events: list[EventBase] = []
    for channel in ctx.policy.channels:
        if channel.kind != WEBSITE_KIND:
            continue
        effect_id = ctx.new_id()
        body_model = QaRequest(
            effect_id=effect_id,
            channel=channel.id,
            idempotency_key=f"{answer.answer_id}:{revision}:{channel.id}"[:300],
            org_name=ctx.policy.org_name or ctx.org,
            entry=QaEntry(
                batch_id=_page_id(answer.batch_id),
                revision=revision,
                question=question[:2000],
                answer=body[:20_000],
                lang="nb",
                answered_at=answer.approved_at,
                signature=answer.signature or ctx.policy.org_name or ctx.org,
                exercise=ctx.policy.exercise,
            ),
        )
        events.append(
            requests.publish(
                Target.CHANNEL_OUT,
                envelope_type=QA_TYPE,
                stream="out",
                body=body_model.model_dump(mode="json"),
                channel=channel.id,
                effect_id=effect_id,
            ).model_copy(update={"version_id": f"qa:{answer.answer_id}", "channel": None})
        )
    return events


@feature.decides(ForwardCaseProcessing)
def forward_case(state: IncidentState, cmd: ForwardCaseProcessing, ctx: Context) -> Decision:
    """The guideline's standard reply (from the playbook) and on to the archive."""
    q = _question(state, cmd.key)
    if isinstance(q, Rejection):
        return q
    if q.forwarded:  # forwarded already: only a standard reply that failed goes again
        return Accepted(retry_failed_replies(state, ctx, f"standard:{q.key}"))
    text = ctx.policy.case_reply.get(q.language) or ctx.policy.case_reply.get("nb", "")
    blocked = first_block((text, "answer"))
    if blocked is not None:
        return blocked
    events: list[EventBase] = [CaseForwarded(**ctx.base(state), key=q.key)]
    if text:
        standard = Answer(
            answer_id=f"standard:{q.key}",
            batch_id="",
            author="playbook",
            variants=[{"lang": q.language, "headline": "", "body": text}],
            kind="standard",
            saved_at=ctx.now,
            signature=ctx.policy.org_name,
        )
        events += _replies(state, ctx, Requests(state, ctx), standard, [q])
    return Accepted(events)


@feature.decides(HidePost)
def hide(state: IncidentState, cmd: HidePost, ctx: Context) -> Decision:
    """Hide an attack on a channel we run; relevant criticism is never hidden."""
    q = _question(state, cmd.key)
    if isinstance(q, Rejection):
        return q
    if q.hidden:
        return Accepted([])
    if q.label == str(Label.CRITICISM):
        return Rejection(
            "relevant criticism is never hidden: answer it with facts (or relabel it)",
            "relevant kritikk skjules aldri: svar med fakta (eller endre kategori)",
        )
    reason = cmd.reason.strip()
    if not reason:
        return Rejection("hiding needs a reason", "å skjule krever en begrunnelse")
    blocked = first_block((reason, "hide-reason"))
    if blocked is not None:
        return blocked
    events: list[EventBase] = [PostHidden(**ctx.base(state), key=q.key, reason=reason)]
    post = post_of(state, q)
    spec = ctx.policy.channel(post.channel)
    if spec is not None and spec.kind not in NO_REPLY_KINDS:
        effect_id = ctx.new_id()
        body = HideRequest(
            effect_id=effect_id,
            channel=post.channel,
            post_id=post.post_id,
            reason=reason,
            exercise=ctx.policy.exercise,
        )
        events.append(
            Requests(state, ctx)
            .publish(
                Target.CHANNEL_OUT,
                envelope_type=HIDE_TYPE,
                stream="out",
                body=body.model_dump(mode="json"),
                channel=post.channel,
                effect_id=effect_id,
            )
            .model_copy(update={"channel": None})
        )
    return Accepted(events)


# --- fold ----------------------------------------------------------------------------


@feature.applies(PostTriaged)
def _triaged(state: IncidentState, event: PostTriaged) -> None:
    qs = state.questions
    q = qs.questions.get(event.key)
    if q is None:
        if event.key not in state.inbound.posts:
            return
        q = Question(key=event.key)
        qs.questions[event.key] = q
    q.label = event.label
    q.label_by = event.actor if event.corrected else "triage"
    q.confidence = event.confidence
    q.reasons = list(event.reasons)
    q.language = event.language


def _new_batch(state: IncidentState, batch_id: str, at: datetime, title: str) -> Batch:
    batch = Batch(batch_id=batch_id, created_at=at, title=title)
    state.questions.batches[batch_id] = batch
    return batch


@feature.applies(BatchSeeded)
def _seeded(state: IncidentState, event: BatchSeeded) -> None:
    batch = _new_batch(state, event.batch_id, event.ts, event.title)
    batch.seed_question_id = event.question_id
    batch.suggested = dict(event.suggested)
    if event.op:
        state.questions.batch_ops.append(dict(event.op))


@feature.applies(QuestionBatched)
def _batched(state: IncidentState, event: QuestionBatched) -> None:
    qs = state.questions
    q = qs.questions.get(event.key)
    if q is None:
        return
    target = qs.resolve(event.batch_id)
    batch = qs.batches.get(target)
    if batch is None:
        batch = _new_batch(state, event.batch_id, event.ts, post_of(state, q).text[:200])
    batch.members.append(q.key)
    q.batch_id = batch.batch_id
    q.batch_score = event.score
    if event.op:
        qs.batch_ops.append(dict(event.op))


@feature.applies(BatchesMerged)
def _merged(state: IncidentState, event: BatchesMerged) -> None:
    qs = state.questions
    kept, absorbed = qs.batches.get(event.kept), qs.batches.get(event.absorbed)
    if kept is None or absorbed is None:
        return
    for key in absorbed.members:
        kept.members.append(key)
        if key in qs.questions:
            qs.questions[key].batch_id = kept.batch_id
    absorbed.members = []
    absorbed.merged_into = kept.batch_id
    kept.answer_id = kept.answer_id or absorbed.answer_id
    if event.op:
        qs.batch_ops.append(dict(event.op))


@feature.applies(QuestionMoved)
def _moved(state: IncidentState, event: QuestionMoved) -> None:
    qs = state.questions
    if event.from_batch and event.from_batch in qs.batches:
        members = qs.batches[event.from_batch].members
        if event.key in members:
            members.remove(event.key)
    target = qs.batches.get(event.batch_id)
    if target is not None:
        target.members.append(event.key)
    if event.key in qs.questions:
        qs.questions[event.key].batch_id = event.batch_id
    if event.op:
        qs.batch_ops.append(dict(event.op))


@feature.applies(BatchSplit)
def _split(state: IncidentState, event: BatchSplit) -> None:
    qs = state.questions
    source = qs.batches.get(event.from_batch)
    first = qs.questions.get(event.keys[0]) if event.keys else None
    title = post_of(state, first).text[:200] if first else ""
    batch = _new_batch(state, event.new_batch_id, event.ts, title)
    for key in event.keys:
        if source is not None and key in source.members:
            source.members.remove(key)
        batch.members.append(key)
        if key in qs.questions:
            qs.questions[key].batch_id = batch.batch_id
    if event.op:
        qs.batch_ops.append(dict(event.op))


@feature.applies(AutoAnswerSet)
def _auto(state: IncidentState, event: AutoAnswerSet) -> None:
    batch = state.questions.batches.get(event.batch_id)
    if batch is not None:
        batch.auto_answer = event.on


@feature.applies(AnswerSaved)
def _answer_saved(state: IncidentState, event: AnswerSaved) -> None:
    state.questions.answers[event.answer_id] = Answer(
        answer_id=event.answer_id,
        batch_id=event.batch_id,
        author=event.actor,
        variants=list(event.variants),
        kind=event.kind,
        saved_at=event.ts,
    )


@feature.applies(AnswerApproved)
def _answer_approved(state: IncidentState, event: AnswerApproved) -> None:
    answer = state.questions.answers.get(event.answer_id)
    if answer is not None:
        answer.approver = event.approver
        answer.approved_at = event.ts
        answer.signature = event.signature
        answer.break_glass_reason = event.break_glass_reason


@feature.applies(AnswerPublished)
def _answer_published(state: IncidentState, event: AnswerPublished) -> None:
    qs = state.questions
    answer = qs.answers.get(event.answer_id)
    batch = qs.batches.get(event.batch_id)
    if answer is None or batch is None:
        return
    answer.published_at = answer.published_at or event.ts
    if answer.kind == "final":
        batch.answer_id = answer.answer_id
    elif answer.kind == "preliminary":
        batch.preliminary_id = answer.answer_id


@feature.applies(OutboxRequested)
def _reply_requested(state: IncidentState, event: OutboxRequested) -> None:
    p = event.publish
    if p.target is not Target.CHANNEL_OUT or p.envelope_type != REPLY_TYPE:
        return
    body = p.body
    key = f"{body['channel']}:{body['to']['post_id']}"
    answer_id = str(event.version_id or "").removeprefix("answer:")
    state.questions.replies[event.effect_id] = Reply(
        effect_id=event.effect_id,
        answer_id=answer_id,
        post_key=key,
        channel=str(body["channel"]),
        requested_at=event.ts,
    )
    q = state.questions.questions.get(key)
    if q is not None:
        q.replies.append(event.effect_id)


@feature.applies(OutboxConfirmed)
def _reply_handed(state: IncidentState, event: OutboxConfirmed) -> None:
    reply = state.questions.replies.get(event.effect_id)
    if reply is not None and reply.status is DeliveryStatus.QUEUED:
        reply.status = DeliveryStatus.HANDED


@feature.applies(DeliveryReceipt)
def _reply_receipt(state: IncidentState, event: DeliveryReceipt) -> None:
    reply = state.questions.replies.get(event.effect_id)
    if reply is None or reply.status is DeliveryStatus.DELIVERED:
        return
    r = event.receipt
    reply.attempts = max(reply.attempts, r.attempt)
    if r.status is ReceiptStatus.DELIVERED:
        reply.status = DeliveryStatus.DELIVERED
        reply.remote_id = r.remote_id
        reply.reason = None
    elif r.status is ReceiptStatus.FAILED:
        reply.reason = r.reason
        reply.status = DeliveryStatus.FAILED if (r.final or r.permanent) else DeliveryStatus.HANDED
    else:
        reply.status = DeliveryStatus.HANDED


@feature.applies(ReplyRetried)
def _reply_retried(state: IncidentState, event: ReplyRetried) -> None:
    reply = state.questions.replies.get(event.effect_id)
    if reply is not None:
        reply.status = DeliveryStatus.QUEUED
        reply.reason = None


@feature.applies(CaseForwarded)
def _forwarded(state: IncidentState, event: CaseForwarded) -> None:
    q = state.questions.questions.get(event.key)
    if q is not None:
        q.forwarded = True


@feature.applies(PostHidden)
def _hidden(state: IncidentState, event: PostHidden) -> None:
    q = state.questions.questions.get(event.key)
    if q is not None:
        q.hidden = True
        q.hide_reason = event.reason


@feature.reacts(PostReceived)
def _triage_on_arrival(state: IncidentState, event: PostReceived, ctx: Context) -> list[EventBase]:
    """Every post is triaged in the transaction that journals its arrival."""
    keywords = {k: list(v) for k, v in ctx.policy.triage_keywords.items()}
    result = triage(event.post.text, keywords=keywords)
    base = ctx.base(state)
    base["actor"] = "triage"
    return [
        PostTriaged(
            **base,
            key=event.key,
            label=str(result.label),
            confidence=round(float(result.confidence), 4),
            reasons=list(result.reasons)[:8],
            language=result.language,
        )
    ]


# --- describe ------------------------------------------------------------------------


@feature.describes(PostTriaged)
def _d_triaged(event: PostTriaged, lang: str) -> str:
    from krise_tui.rules.triage import label_text

    name = label_text(Label(event.label), lang)
    if event.corrected:
        return f"Label corrected: {name}" if lang == "en" else f"Kategori endret: {name}"
    return f"{'Triage' if lang == 'en' else 'Sortert'}: {name} ({event.key})"


@feature.describes(BatchSeeded)
def _d_seeded(event: BatchSeeded, lang: str) -> str:
    head = "Anticipated question" if lang == "en" else "Forventet spørsmål"
    return f"{head}: {event.title}"


@feature.describes(QuestionBatched)
def _d_batched(event: QuestionBatched, lang: str) -> str:
    if lang == "en":
        return f"{event.key} {'opened' if event.new else 'joined'} batch {event.batch_id}"
    return f"{event.key} {'åpnet' if event.new else 'ble med i'} gruppe {event.batch_id}"


@feature.describes(BatchesMerged)
def _d_merged(event: BatchesMerged, lang: str) -> str:
    if lang == "en":
        return f"Batch {event.absorbed} merged into {event.kept}"
    return f"Gruppe {event.absorbed} slått sammen med {event.kept}"


@feature.describes(QuestionMoved)
def _d_moved(event: QuestionMoved, lang: str) -> str:
    if lang == "en":
        return f"{event.key} moved to batch {event.batch_id}"
    return f"{event.key} flyttet til gruppe {event.batch_id}"


@feature.describes(BatchSplit)
def _d_split(event: BatchSplit, lang: str) -> str:
    n = len(event.keys)
    if lang == "en":
        return f"{n} question(s) split from {event.from_batch} into {event.new_batch_id}"
    return f"{n} spørsmål skilt ut fra {event.from_batch} til {event.new_batch_id}"


@feature.describes(AutoAnswerSet)
def _d_auto(event: AutoAnswerSet, lang: str) -> str:
    if lang == "en":
        return f"Batch {event.batch_id}: auto-answer {'on' if event.on else 'off'}"
    return f"Gruppe {event.batch_id}: automatisk svar {'på' if event.on else 'av'}"


@feature.describes(AnswerSaved)
def _d_answer_saved(event: AnswerSaved, lang: str) -> str:
    if lang == "en":
        return f"Answer written for batch {event.batch_id} ({event.kind})"
    kind = "foreløpig" if event.kind == "preliminary" else "endelig"
    return f"Svar skrevet for gruppe {event.batch_id} ({kind})"


@feature.describes(AnswerApproved)
def _d_answer_approved(event: AnswerApproved, lang: str) -> str:
    if lang == "en":
        return f"Answer {event.answer_id[:8]} approved by {event.approver}"
    return f"Svar {event.answer_id[:8]} godkjent av {event.approver}"


@feature.describes(AnswerPublished)
def _d_answer_published(event: AnswerPublished, lang: str) -> str:
    n = len(event.posts)
    if lang == "en":
        return f"Answer sent to {n} asker(s) in batch {event.batch_id}"
    return f"Svar sendt til {n} spørre(re) i gruppe {event.batch_id}"


@feature.describes(ReplyRetried)
def _d_reply_retried(event: ReplyRetried, lang: str) -> str:
    if lang == "en":
        return f"Reply to {event.post_key} sent again after it failed"
    return f"Svaret til {event.post_key} sendt på nytt etter at det feilet"


@feature.describes(CaseForwarded)
def _d_forwarded(event: CaseForwarded, lang: str) -> str:
    if lang == "en":
        return f"{event.key}: standard reply, forwarded to the post office for the archive"
    return f"{event.key}: standardsvar, sendt videre til postmottak for journalføring"


@feature.describes(PostHidden)
def _d_hidden(event: PostHidden, lang: str) -> str:
    if lang == "en":
        return f"{event.key} hidden: {event.reason}"
    return f"{event.key} skjult: {event.reason}"
