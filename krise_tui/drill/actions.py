"""The leadership's scripted actions, carried out through the console runtime.

Each :class:`~krise_tui.drill.scenario.Action` becomes the commands an operator's keys
would send: a draft saved as its author, approved by a second person, published; a
freeze; a batch's answer written, approved and sent; a rumour registered, checked,
corrected. The engine decides every one exactly as it decides an operator's (four eyes,
roles, the approval lint): a script cannot publish what a person could not. A refused
action is not an error of the drill: it is recorded with the engine's reason, and the
score shows what it cost.

The one thing a script skips is the approver's passphrase: it proves a person at the
keyboard, and a headless drill has none. Nothing a drill publishes leaves its sinks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from krise_tui.core.features.freeze import ExtendFreeze, Freeze, LiftFreeze, RemindUnacknowledged
from krise_tui.core.features.messages import (
    ApproveDraft,
    DeliveryStatus,
    DraftSaved,
    DraftVariant,
    PublishVersion,
    RecordApprovalBlock,
    RetryDelivery,
    SaveDraft,
    lint_draft,
)
from krise_tui.core.features.questions import (
    AnswerSaved,
    ApproveAnswer,
    Batch,
    ForwardCaseProcessing,
    HidePost,
    PublishAnswer,
    RelabelPost,
    RetryReply,
    SaveAnswer,
    SetAutoAnswer,
)
from krise_tui.core.features.rumours import (
    AcknowledgeRecurrence,
    ChangeRumourState,
    LinkCorrection,
    RecordSighting,
    RegisterRumour,
    ReplyToSpreaders,
)
from krise_tui.core.kernel import Accepted, Decision, Rejection
from krise_tui.core.state import IncidentState
from krise_tui.drill.scenario import (
    Action,
    AnswerSpec,
    ApproveAnswerSpec,
    ApproveSpec,
    Compose,
    LoadedScenario,
    OverrideSpec,
    SweepSpec,
)
from krise_tui.playbook.loader import render_answer, render_template
from krise_tui.timefmt import zone

if TYPE_CHECKING:
    from krise_tui.runtime import ConsoleRuntime

log = logging.getLogger(__name__)

POST_PREFIX = "post:"


@dataclass
class ActionResult:
    """What one scripted action achieved."""

    at: datetime
    by: str
    verb: str
    ok: bool
    detail: str = ""
    """The engine's reason when refused (bokmål), or what was done."""


class ActionError(Exception):
    """A script's reference does not resolve at run time (a batch that does not exist)."""


@dataclass
class Script:
    """Carries out one response's actions against a running console."""

    runtime: ConsoleRuntime
    loaded: LoadedScenario
    drafts: dict[str, str] = field(default_factory=dict)
    """Script name → draft id."""
    answers: dict[str, str] = field(default_factory=dict)
    """Script name → answer id."""
    results: list[ActionResult] = field(default_factory=list)

    @property
    def state(self) -> IncidentState:
        """The console's committed state."""
        return self.runtime.state

    async def perform(self, action: Action, now: datetime) -> list[ActionResult]:
        """Carry out ``action`` at ``now``; the results (a sweep has one per batch)."""
        verb = action.verb
        handler: Callable[[Action, datetime], Awaitable[list[ActionResult]]] = getattr(
            self, f"_do_{verb}"
        )
        try:
            results = await handler(action, now)
        except ActionError as exc:
            results = [ActionResult(now, action.by, verb, False, str(exc))]
        self.results.extend(results)
        for result in results:
            if not result.ok:
                log.info("drill: %s by %s refused: %s", result.verb, result.by, result.detail)
        return results

    # --- helpers -----------------------------------------------------------------------------

    async def _submit(self, command: object, actor: str) -> Decision:
        return await self.runtime.submit(command, actor=actor)

    def _result(
        self, now: datetime, action: Action, decision: Decision, verb: str | None = None
    ) -> ActionResult:
        if isinstance(decision, Rejection):
            return ActionResult(now, action.by, verb or action.verb, False, decision.text("nb"))
        return ActionResult(now, action.by, verb or action.verb, True)

    def post_key(self, ref: str) -> str:
        """The journal key (``channel:id``) of a post reference."""
        key = self.loaded.scenario.post_keys().get(ref)
        if key is None:
            if ":" in ref:
                return ref
            raise ActionError(f"no post {ref!r}")
        return key

    def batch_id(self, ref: str) -> str:
        """A batch reference (an id, or ``post:<post>``) as the batch's live id."""
        questions = self.state.questions
        if ref.startswith(POST_PREFIX):
            key = self.post_key(ref.removeprefix(POST_PREFIX))
            question = questions.questions.get(key)
            if question is None or question.batch_id is None:
                raise ActionError(f"post {ref.removeprefix(POST_PREFIX)!r} is in no batch")
            return questions.resolve(question.batch_id)
        resolved = questions.resolve(ref)
        if resolved not in questions.batches:
            raise ActionError(f"no batch {ref!r}")
        return resolved

    def draft_id(self, name: str) -> str:
        """A script draft name as the draft's id."""
        draft_id = self.drafts.get(name)
        if draft_id is None:
            raise ActionError(f"draft {name!r} was not saved")
        return draft_id

    def version_of(self, name: str) -> str:
        """The approved version of a script draft."""
        draft = self.state.messages.drafts.get(self.draft_id(name))
        if draft is None or draft.approved_version is None:
            raise ActionError(f"draft {name!r} is not approved")
        return draft.approved_version

    def answer_id(self, name: str) -> str:
        """A script answer name as the answer's id."""
        answer_id = self.answers.get(name)
        if answer_id is None:
            raise ActionError(f"answer {name!r} was not saved")
        return answer_id

    def values(self, given: dict[str, str], now: datetime) -> dict[str, str]:
        """Template values: the org's own, the time of the action, then the script's."""
        local = now.astimezone(zone(self.loaded.timezone))
        return {
            **self.loaded.org.standard_values(),
            "tidspunkt": f"kl. {local:%H.%M}",
            **given,
        }

    @staticmethod
    def _overrides(specs: list[OverrideSpec]) -> tuple[tuple[str, str, str], ...]:
        return tuple((o.code, o.lang, o.reason) for o in specs)

    # --- messages ------------------------------------------------------------------------------

    def variants(self, spec: Compose, now: datetime) -> tuple[DraftVariant, ...]:
        """The draft's languages, from the template or the text."""
        if spec.text is not None:
            ordered = sorted(spec.text.items(), key=lambda kv: (kv[0] != "nb", kv[0]))
            return tuple(
                DraftVariant(lang, v.headline, v.body, v.awaiting_translation)
                for lang, v in ordered
            )
        assert spec.template is not None
        playbook = self.loaded.playbook
        template = playbook.template(spec.template)
        langs = spec.languages or [lang for lang, text in template.text.items() if text.ready]
        values = self.values(spec.values, now)
        out = []
        for lang in sorted(langs, key=lambda lang: (lang != "nb", lang)):
            headline, body = render_template(playbook, spec.template, lang, values)
            out.append(DraftVariant(lang, headline, body))
        return tuple(out)

    async def _do_compose(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.compose
        assert spec is not None
        supersedes = self.version_of(spec.supersedes) if spec.supersedes else None
        command = SaveDraft(
            self.variants(spec, now),
            channels=tuple(spec.channels),
            draft_id=self.drafts.get(spec.id),
            template_id=spec.template,
            status=spec.status,
            supersedes=supersedes,
        )
        decision = await self._submit(command, action.by)
        if isinstance(decision, Rejection) and decision.reason.startswith("blocked:"):
            # As the console does: the journal records that a block happened, not the text.
            await self._submit(
                RecordApprovalBlock(command.draft_id or "", "", ("id-number",)), action.by
            )
        if isinstance(decision, Accepted):
            saved = next(e for e in decision.events if isinstance(e, DraftSaved))
            self.drafts[spec.id] = saved.draft_id
        return [self._result(now, action, decision)]

    async def _do_approve(self, action: Action, now: datetime) -> list[ActionResult]:
        value = action.approve
        spec = value if isinstance(value, ApproveSpec) else ApproveSpec(draft=str(value))
        draft_id = self.draft_id(spec.draft)
        decision = await self._submit(
            ApproveDraft(draft_id, action.by, self._overrides(spec.overrides), spec.break_glass),
            action.by,
        )
        draft = self.state.messages.drafts.get(draft_id)
        if isinstance(decision, Rejection) and draft is not None:
            # As the console does after a refused approval: journal which rules blocked.
            variants = [DraftVariant.from_json(v) for v in draft.variants]
            report = lint_draft(variants, self.runtime.message_policy())
            if report.hard_blocked:
                codes = tuple(f.code for f in report.blocks)
                await self._submit(RecordApprovalBlock(draft_id, action.by, codes), action.by)
        return [self._result(now, action, decision)]

    async def _do_publish(self, action: Action, now: datetime) -> list[ActionResult]:
        decision = await self._submit(
            PublishVersion(self.version_of(str(action.publish))), action.by
        )
        return [self._result(now, action, decision)]

    async def _do_retry_delivery(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.retry_delivery
        assert spec is not None
        version = self.version_of(spec.draft)
        rows = [
            d
            for d in self.state.messages.deliveries.values()
            if d.version_id == version and d.channel == spec.channel
        ]
        if not rows:
            raise ActionError(f"draft {spec.draft!r} was not delivered to {spec.channel}")
        decision = await self._submit(RetryDelivery(rows[-1].effect_id), action.by)
        return [self._result(now, action, decision)]

    # --- freeze --------------------------------------------------------------------------------

    def _notice(self) -> tuple[tuple[str, str], ...]:
        notice = self.loaded.playbook.freeze.notice
        return tuple((lang, text) for lang, text in notice.items() if isinstance(text, str))

    async def _do_freeze(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.freeze
        assert spec is not None
        expires = now + spec.expires if spec.expires is not None else None
        command = Freeze(spec.reason, tuple(spec.departments), expires, self._notice())
        return [self._result(now, action, await self._submit(command, action.by))]

    async def _do_extend_freeze(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.extend_freeze
        assert spec is not None
        expires = now + spec.expires if spec.expires is not None else None
        decision = await self._submit(ExtendFreeze(expires, spec.reason), action.by)
        return [self._result(now, action, decision)]

    async def _do_lift_freeze(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.lift_freeze
        assert spec is not None
        return [self._result(now, action, await self._submit(LiftFreeze(spec.reason), action.by))]

    async def _do_remind(self, action: Action, now: datetime) -> list[ActionResult]:
        ids = (
            self.runtime.unacknowledged()
            if action.remind == "unacknowledged"
            else list(action.remind or [])
        )
        decision = await self._submit(RemindUnacknowledged(tuple(ids)), action.by)
        return [self._result(now, action, decision)]

    # --- questions -----------------------------------------------------------------------------

    def answer_variants(self, spec: AnswerSpec, now: datetime) -> tuple[DraftVariant, ...]:
        """The answer's languages, from the text or the playbook's pre-written answer."""
        if spec.text is not None:
            items = sorted(spec.text.items(), key=lambda kv: (kv[0] != "nb", kv[0]))
            return tuple(DraftVariant(lang, "", body) for lang, body in items)
        assert spec.question is not None
        question = self.loaded.playbook.question(spec.question)
        values = self.values(spec.values, now)
        langs = sorted(question.answer, key=lambda lang: (lang != "nb", lang))
        return tuple(
            DraftVariant(lang, "", render_answer(self.loaded.playbook, spec.question, lang, values))
            for lang in langs
        )

    async def _save_answer(
        self,
        name: str | None,
        batch_id: str,
        variants: tuple[DraftVariant, ...],
        kind: str,
        by: str,
    ) -> Decision:
        existing = self.answers.get(name) if name else None
        decision = await self._submit(
            SaveAnswer(batch_id, variants, kind=kind, answer_id=existing),  # type: ignore[arg-type]
            by,
        )
        if isinstance(decision, Accepted) and name:
            saved = next(e for e in decision.events if isinstance(e, AnswerSaved))
            self.answers[name] = saved.answer_id
        return decision

    async def _do_answer(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.answer
        assert spec is not None
        decision = await self._save_answer(
            spec.id,
            self.batch_id(spec.batch),
            self.answer_variants(spec, now),
            spec.kind,
            action.by,
        )
        return [self._result(now, action, decision)]

    async def _do_approve_answer(self, action: Action, now: datetime) -> list[ActionResult]:
        value = action.approve_answer
        spec = (
            value if isinstance(value, ApproveAnswerSpec) else ApproveAnswerSpec(answer=str(value))
        )
        command = ApproveAnswer(
            self.answer_id(spec.answer),
            action.by,
            self._overrides(spec.overrides),
            spec.break_glass,
        )
        return [self._result(now, action, await self._submit(command, action.by))]

    async def _do_publish_answer(self, action: Action, now: datetime) -> list[ActionResult]:
        command = PublishAnswer(self.answer_id(str(action.publish_answer)))
        return [self._result(now, action, await self._submit(command, action.by))]

    def waiting_batches(self, kind: str) -> list[Batch]:
        """Batches with questions that still need an answer of ``kind``, oldest first."""
        questions = self.state.questions
        out = []
        for batch in questions.open_batches():
            if batch.answer_id is not None:
                continue  # answered for good; later askers get it automatically
            if kind == "preliminary" and batch.preliminary_id is not None:
                continue
            waiting = [q for q in questions.unanswered(batch) if q.must_answer]
            if waiting:
                out.append(batch)
        return sorted(out, key=lambda b: (b.created_at, b.batch_id))

    async def _do_answer_open_batches(self, action: Action, now: datetime) -> list[ActionResult]:
        spec: SweepSpec | None = action.answer_open_batches
        assert spec is not None
        variants = tuple(
            DraftVariant(lang, "", body)
            for lang, body in sorted(spec.text.items(), key=lambda kv: (kv[0] != "nb", kv[0]))
        )
        results = []
        for batch in self.waiting_batches(spec.kind):
            verb = f"answer_open_batches:{batch.batch_id}"
            saved = await self._save_answer(None, batch.batch_id, variants, spec.kind, action.by)
            if isinstance(saved, Rejection):
                results.append(self._result(now, action, saved, verb))
                continue
            answer = next(e for e in saved.events if isinstance(e, AnswerSaved))
            approved = await self._submit(
                ApproveAnswer(answer.answer_id, spec.approver), spec.approver
            )
            if isinstance(approved, Rejection):
                results.append(self._result(now, action, approved, verb))
                continue
            sent = await self._submit(PublishAnswer(answer.answer_id), spec.approver)
            results.append(self._result(now, action, sent, verb))
        if not results:
            results.append(ActionResult(now, action.by, action.verb, True, "ingen grupper venter"))
        return results

    async def _do_resend_failed_replies(self, action: Action, now: datetime) -> list[ActionResult]:
        """The replies that failed for good (answers, standard replies, corrections) sent
        again, oldest first: every one, or those to the listed posts."""
        spec = action.resend_failed_replies
        posts = None if spec is True or spec is None else {self.post_key(ref) for ref in spec}
        failed = [
            reply.effect_id
            for reply in self.state.questions.replies.values()
            if reply.status is DeliveryStatus.FAILED and (posts is None or reply.post_key in posts)
        ]
        results = []
        for effect_id in failed:
            decision = await self._submit(RetryReply(effect_id), action.by)
            results.append(self._result(now, action, decision, f"{action.verb}:{effect_id}"))
        if not results:
            results.append(ActionResult(now, action.by, action.verb, True, "ingen svar har feilet"))
        return results

    async def _batch_operation(
        self, action: Action, op: Callable[[], Awaitable[Decision]]
    ) -> Decision:
        """Merge/move/split go through the batching service (the batcher follows the
        journal), journaled as the operator at the console: the script's ``by``."""
        identity = self.runtime.identity
        before = identity.operator
        identity.operator = action.by
        try:
            return await op()
        finally:
            identity.operator = before

    async def _do_merge_batches(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.merge_batches
        batching = self.runtime.batching
        assert spec is not None and batching is not None
        kept, absorbed = self.batch_id(spec.kept), self.batch_id(spec.absorbed)
        decision = await self._batch_operation(action, lambda: batching.merge(kept, absorbed))
        return [self._result(now, action, decision)]

    async def _do_move_question(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.move_question
        batching = self.runtime.batching
        assert spec is not None and batching is not None
        key, target = self.post_key(spec.post), self.batch_id(spec.batch)
        decision = await self._batch_operation(action, lambda: batching.move(key, target))
        return [self._result(now, action, decision)]

    async def _do_split_batch(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.split_batch
        batching = self.runtime.batching
        assert spec is not None and batching is not None
        keys = [self.post_key(p) for p in spec.posts]
        decision = await self._batch_operation(action, lambda: batching.split(keys, spec.id))
        return [self._result(now, action, decision)]

    async def _do_auto_answer(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.auto_answer
        assert spec is not None
        command = SetAutoAnswer(self.batch_id(spec.batch), spec.on)
        return [self._result(now, action, await self._submit(command, action.by))]

    async def _do_relabel(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.relabel
        assert spec is not None
        command = RelabelPost(self.post_key(spec.post), str(spec.label))
        return [self._result(now, action, await self._submit(command, action.by))]

    async def _do_hide(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.hide
        assert spec is not None
        command = HidePost(self.post_key(spec.post), spec.reason)
        return [self._result(now, action, await self._submit(command, action.by))]

    async def _do_forward_case(self, action: Action, now: datetime) -> list[ActionResult]:
        command = ForwardCaseProcessing(self.post_key(str(action.forward_case)))
        return [self._result(now, action, await self._submit(command, action.by))]

    # --- rumours -------------------------------------------------------------------------------

    async def _do_register_rumour(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.register_rumour
        assert spec is not None
        keys = tuple(self.post_key(p) for p in spec.posts)
        command = RegisterRumour(spec.claim, spec.owner, keys, spec.id)
        return [self._result(now, action, await self._submit(command, action.by))]

    async def _do_rumour_state(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.rumour_state
        assert spec is not None
        command = ChangeRumourState(
            spec.rumour, spec.state, spec.checker, spec.checking_with, spec.source
        )
        return [self._result(now, action, await self._submit(command, action.by))]

    async def _do_link_correction(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.link_correction
        assert spec is not None
        command = LinkCorrection(spec.rumour, self.draft_id(spec.draft))
        return [self._result(now, action, await self._submit(command, action.by))]

    async def _do_link_sighting(self, action: Action, now: datetime) -> list[ActionResult]:
        spec = action.link_sighting
        assert spec is not None
        command = RecordSighting(spec.rumour, self.post_key(spec.post), 1.0)
        return [self._result(now, action, await self._submit(command, action.by))]

    async def _do_reply_to_spreaders(self, action: Action, now: datetime) -> list[ActionResult]:
        command = ReplyToSpreaders(str(action.reply_to_spreaders))
        return [self._result(now, action, await self._submit(command, action.by))]

    async def _do_acknowledge_recurrence(self, action: Action, now: datetime) -> list[ActionResult]:
        command = AcknowledgeRecurrence(str(action.acknowledge_recurrence))
        return [self._result(now, action, await self._submit(command, action.by))]
