"""Questions from the public: triage on arrival, batches, one approved answer per batch."""

from __future__ import annotations

from datetime import timedelta

import pytest

from krise_tui.core.features.messages import DeliveryStatus, DraftVariant
from krise_tui.core.features.outbox import OutboxRequested, OutboxRequeued, Target
from krise_tui.core.features.questions import (
    AnswerPublished,
    ApproveAnswer,
    AssignToBatch,
    ForwardCaseProcessing,
    HidePost,
    MergeBatches,
    MoveQuestion,
    PostTriaged,
    PublishAnswer,
    RelabelPost,
    RetryReply,
    SaveAnswer,
    SeedBatch,
    SetAutoAnswer,
    SplitBatch,
)
from krise_tui.core.policy import ChannelSpec, MessagePolicy
from krise_tui.core.state import IncidentState
from krise_tui.rules.triage import Label
from krise_tui.wire.delivery import QA_TYPE, REPLY_TYPE, QaRequest, ReplyRequest
from tests.corekit import NOW, POLICY, bus, make_ctx, opened, refused, run

POLICY_Q = MessagePolicy(
    **{
        **POLICY.__dict__,
        "channels": (
            *POLICY.channels,
            ChannelSpec("sms", "webhook"),
            ChannelSpec("facebook", "facebook"),
        ),
        "case_reply": {
            "nb": "Vi takker for henvendelsen. Den er sendt videre til postmottak for "
            "journalføring og vil bli saksbehandlet på vanlig måte."
        },
    }
)


def ctx(actor: str = "ola", minutes: int = 0) -> object:
    return make_ctx(actor, policy=POLICY_Q, now=NOW + timedelta(minutes=minutes))


def post(state: IncidentState, channel: str, post_id: str, text: str, **extra: object) -> str:
    body = {"id": post_id, "text": text, **extra}
    run(state, bus(f"krise/v1/test/channel/{channel}/in", body), ctx("bus"))  # type: ignore[arg-type]
    return f"{channel}:{post_id}"


def question(state: IncidentState, channel: str, post_id: str, text: str, **extra: object) -> str:
    key = post(state, channel, post_id, text, **extra)
    if state.questions.questions[key].label != str(Label.SERVICE_QUESTION):
        run(state, RelabelPost(key, str(Label.SERVICE_QUESTION)), ctx())  # type: ignore[arg-type]
    return key


def test_every_post_is_triaged_in_the_transaction_that_journals_it() -> None:
    state = opened()
    decision = run(
        state,
        bus("krise/v1/test/channel/sms/in", {"id": "s1", "text": "Når kommer vannet tilbake?"}),
        ctx("bus"),  # type: ignore[arg-type]
    )
    received, triaged = decision.events
    assert isinstance(triaged, PostTriaged) and triaged.key == "sms:s1"
    q = state.questions.questions["sms:s1"]
    assert q.label == triaged.label and q.reasons == triaged.reasons
    assert received.type == "inbound.post"  # type: ignore[attr-defined]


def test_an_operator_corrects_a_label_and_it_is_journaled_as_theirs() -> None:
    state = opened()
    key = post(state, "sms", "s1", "Kommunen er helt ubrukelig i dag")
    (event,) = run(state, RelabelPost(key, str(Label.CRITICISM)), ctx("kari")).events  # type: ignore[arg-type]
    assert isinstance(event, PostTriaged) and event.corrected and event.actor == "kari"
    assert state.questions.questions[key].label_by == "kari"
    assert "unknown label" in refused(state, RelabelPost(key, "nonsense"), ctx()).reason  # type: ignore[arg-type]


def test_relevant_criticism_is_never_hidden_but_an_attack_is_hidden_with_a_reason() -> None:
    state = opened()
    criticism = post(state, "facebook", "c1", "Dere informerte altfor sent om stengt vei!")
    run(state, RelabelPost(criticism, str(Label.CRITICISM)), ctx())  # type: ignore[arg-type]
    assert "never hidden" in refused(state, HidePost(criticism, "frekk"), ctx()).reason  # type: ignore[arg-type]
    attack = post(state, "facebook", "c2", "Ordføreren er en idiot og burde skytes")
    run(state, RelabelPost(attack, str(Label.ATTACK)), ctx())  # type: ignore[arg-type]
    assert "reason" in refused(state, HidePost(attack, " "), ctx()).reason  # type: ignore[arg-type]
    events = run(state, HidePost(attack, "Trusler mot en person"), ctx()).events  # type: ignore[arg-type]
    hide = next(e for e in events if isinstance(e, OutboxRequested))
    assert hide.publish.envelope_type == "channel.hide"
    assert hide.publish.body["post_id"] == "c2" and hide.publish.channel == "facebook"
    assert hide.publish.body["exercise"] is False
    assert state.questions.questions[attack].hidden


def test_a_hide_in_a_drill_says_so_and_no_real_platform_carries_it_out() -> None:
    drill = MessagePolicy(**{**POLICY_Q.__dict__, "exercise": True})
    state = opened()
    attack = post(state, "facebook", "c3", "Ordføreren er en idiot og burde skytes")
    run(state, RelabelPost(attack, str(Label.ATTACK)), ctx())  # type: ignore[arg-type]
    events = run(state, HidePost(attack, "Trusler"), make_ctx("ola", policy=drill, now=NOW)).events
    hide = next(e for e in events if isinstance(e, OutboxRequested))
    assert hide.publish.body["exercise"] is True  # the bridge refuses it on a real channel


def test_case_processing_gets_the_standard_reply_and_goes_to_the_archive() -> None:
    state = opened()
    key = post(
        state, "sms", "s9", "Jeg vil klage på vedtaket om byggesaken min", author="+4791234567"
    )
    events = run(state, ForwardCaseProcessing(key), ctx()).events  # type: ignore[arg-type]
    reply = next(e for e in events if isinstance(e, OutboxRequested))
    body = ReplyRequest.model_validate(reply.publish.body)
    assert body.text.startswith("Vi takker for henvendelsen.")
    assert body.to.post_id == "s9" and body.channel == "sms"
    assert state.questions.questions[key].forwarded
    assert run(state, ForwardCaseProcessing(key), ctx()).events == []  # once


def _fail(state: IncidentState, channel: str, effect_id: str) -> None:
    receipt = {"effect_id": effect_id, "status": "failed", "attempt": 1, "permanent": True}
    run(
        state,
        bus(f"krise/v1/test/channel/{channel}/receipt", {**receipt, "reason": "503"}),
        ctx("bus"),  # type: ignore[arg-type]
    )


def test_a_reply_that_failed_for_good_is_sent_again_once_and_only_then() -> None:
    # The SMS gateway was down when the case got its standard reply: forwarding the post
    # again (k in the questions view), or RetryReply, requests the same reply again.
    state = opened()
    key = post(state, "sms", "s9", "Jeg vil klage på byggesaken min", author="+4791234567")
    run(state, ForwardCaseProcessing(key), ctx())  # type: ignore[arg-type]
    (reply,) = state.questions.replies.values()
    assert reply.answer_id == f"standard:{key}"
    assert "failed for good" in refused(state, RetryReply(reply.effect_id), ctx()).reason  # type: ignore[arg-type]
    _fail(state, "sms", reply.effect_id)
    assert reply.status is DeliveryStatus.FAILED and reply.reason == "503"
    events = run(state, ForwardCaseProcessing(key), ctx()).events  # type: ignore[arg-type]
    assert [type(e).__name__ for e in events] == ["ReplyRetried", "OutboxRequeued"]
    assert [e.effect_id for e in events] == [reply.effect_id] * 2  # type: ignore[attr-defined]
    assert reply.status is DeliveryStatus.QUEUED
    assert run(state, ForwardCaseProcessing(key), ctx()).events == []  # on its way: nothing
    _fail(state, "sms", reply.effect_id)
    events = run(state, RetryReply(reply.effect_id), ctx("kari")).events  # type: ignore[arg-type]
    assert [type(e).__name__ for e in events] == ["ReplyRetried", "OutboxRequeued"]
    assert len(state.questions.replies) == 1  # the same request, never a second one
    assert "no reply" in refused(state, RetryReply("nope"), ctx()).reason  # type: ignore[arg-type]


def _batched(state: IncidentState) -> tuple[str, str, str]:
    a = question(state, "sms", "a", "Når kommer strømmen tilbake?", meta={"from": "+4790000001"})
    b = question(state, "facebook", "b", "Vet dere når strømmen kommer?")
    c = question(state, "sms", "c", "Er skolen stengt i morgen?")
    run(state, AssignToBatch(a, "b1", 1.0, True), ctx("batching"))  # type: ignore[arg-type]
    run(state, AssignToBatch(b, "b1", 0.8, False), ctx("batching"))  # type: ignore[arg-type]
    run(state, AssignToBatch(c, "b2", 1.0, True), ctx("batching"))  # type: ignore[arg-type]
    return a, b, c


def test_batches_merge_move_and_split_and_keep_their_identity() -> None:
    state = opened()
    a, b, c = _batched(state)
    qs = state.questions
    assert qs.batches["b1"].members == [a, b] and qs.batches["b2"].members == [c]
    run(state, MergeBatches("b1", "b2"), ctx())  # type: ignore[arg-type]
    assert qs.resolve("b2") == "b1" and qs.batches["b1"].members == [a, b, c]
    assert qs.questions[c].batch_id == "b1"
    run(state, SplitBatch((c,), "b3"), ctx())  # type: ignore[arg-type]
    assert qs.batches["b3"].members == [c] and c not in qs.batches["b1"].members
    run(state, MoveQuestion(b, "b3"), ctx())  # type: ignore[arg-type]
    assert qs.batches["b3"].members == [c, b]
    assert "whole batch" in refused(state, SplitBatch((c, b), "b4"), ctx()).reason  # type: ignore[arg-type]
    assert "itself" in refused(state, MergeBatches("b3", "b3"), ctx()).reason  # type: ignore[arg-type]


def _approved_answer(state: IncidentState, batch_id: str, text: str) -> str:
    saved = run(
        state,
        SaveAnswer(batch_id, (DraftVariant("nb", "", text),)),
        ctx("ola"),  # type: ignore[arg-type]
    ).events[0]
    answer_id: str = saved.answer_id  # type: ignore[attr-defined]
    refused(state, PublishAnswer(answer_id), ctx("kari"))  # type: ignore[arg-type]
    assert "may not approve" in refused(state, ApproveAnswer(answer_id, "ola"), ctx("ola")).reason  # type: ignore[arg-type]
    run(state, ApproveAnswer(answer_id, "kari"), ctx("kari"))  # type: ignore[arg-type]
    return answer_id


ANSWER = "Strømmen er ventet tilbake i kveld. Følg med på https://www.test.kommune.no"


def test_one_approved_answer_goes_to_every_asker_on_their_own_channel_once() -> None:
    state = opened()
    a, b, _ = _batched(state)
    answer_id = _approved_answer(state, "b1", ANSWER)
    events = run(state, PublishAnswer(answer_id), ctx("kari")).events  # type: ignore[arg-type]
    published = events[0]
    assert isinstance(published, AnswerPublished) and published.posts == [a, b]
    replies = [e for e in events if isinstance(e, OutboxRequested)]
    assert [r.publish.channel for r in replies] == ["sms", "facebook"]
    bodies = [ReplyRequest.model_validate(r.publish.body) for r in replies]
    assert {body.idempotency_key for body in bodies} == {
        f"{answer_id}:sms:a",
        f"{answer_id}:facebook:b",
    }
    assert bodies[0].to.meta == {"from": "+4790000001"}
    assert all(r.publish.envelope_type == REPLY_TYPE for r in replies)
    assert all(body.signature == "Ola Hansen, informasjonsmedarbeider" for body in bodies)
    assert state.questions.batches["b1"].answered
    assert len(state.questions.replies) == 2
    # Publishing again sends nothing to those who have it, and says so.
    again = refused(state, PublishAnswer(answer_id), ctx("kari"))  # type: ignore[arg-type]
    assert "every asker in the batch has this answer" in again.reason

    # A reply that failed for good is sent again: the same request, nobody else's
    sms_reply = next(r for r in state.questions.replies.values() if r.channel == "sms")
    receipt = {"effect_id": sms_reply.effect_id, "status": "failed", "attempt": 3}
    run(
        state,
        bus(
            "krise/v1/test/channel/sms/receipt", {**receipt, "final": True, "reason": "gateway 503"}
        ),
        ctx("bus"),
    )  # type: ignore[arg-type]
    assert sms_reply.status is DeliveryStatus.FAILED
    retry = run(state, PublishAnswer(answer_id), ctx("kari")).events  # type: ignore[arg-type]
    assert [e.effect_id for e in retry if isinstance(e, OutboxRequeued)] == [sms_reply.effect_id]
    assert [e for e in retry if isinstance(e, OutboxRequested)] == []  # no new request
    assert sms_reply.status is DeliveryStatus.QUEUED and sms_reply.reason is None
    assert len(state.questions.replies) == 2


def test_the_answer_goes_on_the_websites_qa_page_with_the_approved_question_only() -> None:
    state = opened()
    a, _b, _ = _batched(state)
    asker_words = state.inbound.posts[a].text
    saved = run(
        state,
        SaveAnswer("b1", (DraftVariant("nb", "Når er strømmen tilbake etter bruddet?", ANSWER),)),
        ctx("ola"),  # type: ignore[arg-type]
    ).events[0]
    answer_id = saved.answer_id  # type: ignore[attr-defined]
    run(state, ApproveAnswer(answer_id, "kari"), ctx("kari"))  # type: ignore[arg-type]
    events = run(state, PublishAnswer(answer_id), ctx("kari")).events  # type: ignore[arg-type]
    pages = [
        e for e in events if isinstance(e, OutboxRequested) and e.publish.envelope_type == QA_TYPE
    ]
    assert [p.publish.channel for p in pages] == ["nettside"]  # the website, once
    request = QaRequest.model_validate(pages[0].publish.body)
    assert request.entry.question == "Når er strømmen tilbake etter bruddet?"  # as approved
    assert asker_words not in request.entry.question
    assert request.entry.answer == ANSWER and request.entry.revision == 1
    assert request.idempotency_key == f"{answer_id}:1:nettside"
    # A second final answer to the batch replaces the entry (a higher revision).
    saved = run(
        state,
        SaveAnswer(
            "b1", (DraftVariant("nb", "Når er strømmen tilbake etter bruddet?", ANSWER + " Ny."),)
        ),
        ctx("ola"),  # type: ignore[arg-type]
    ).events[0]
    run(state, ApproveAnswer(saved.answer_id, "kari"), ctx("kari"))  # type: ignore[attr-defined, arg-type]
    events = run(state, PublishAnswer(saved.answer_id), ctx("kari")).events  # type: ignore[attr-defined, arg-type]
    page = next(
        e for e in events if isinstance(e, OutboxRequested) and e.publish.envelope_type == QA_TYPE
    )
    assert QaRequest.model_validate(page.publish.body).entry.revision == 2


def test_a_question_that_joins_an_answered_batch_gets_the_answer_unless_turned_off() -> None:
    state = opened()
    _batched(state)
    answer_id = _approved_answer(state, "b1", ANSWER)
    run(state, PublishAnswer(answer_id), ctx("kari"))  # type: ignore[arg-type]
    late = question(state, "sms", "d", "Når er strømmen tilbake?")
    events = run(state, AssignToBatch(late, "b1", 0.9, False), ctx("batching")).events  # type: ignore[arg-type]
    assert any(isinstance(e, OutboxRequested) for e in events)
    run(state, SetAutoAnswer("b1", on=False), ctx())  # type: ignore[arg-type]
    later = question(state, "sms", "e", "Strøm tilbake når?")
    events = run(state, AssignToBatch(later, "b1", 0.9, False), ctx("batching")).events  # type: ignore[arg-type]
    assert not any(isinstance(e, OutboxRequested) for e in events)


def test_an_answer_with_an_id_number_is_refused_and_never_journaled() -> None:
    state = opened()
    _batched(state)
    decision = refused(
        state,
        SaveAnswer("b1", (DraftVariant("nb", "", "Ring 17057234881 for hjelp"),)),
        ctx(),  # type: ignore[arg-type]
    )
    assert "17057234881" not in decision.reason and "170572" in decision.reason


def test_anticipated_questions_seed_batches_whose_answer_still_needs_approval() -> None:
    state = opened()
    op = {"kind": "seed", "batch_id": "q-vann", "texts": ["Kan jeg drikke vannet?"]}
    run(
        state,
        SeedBatch("q-vann", "vann", "Kan jeg drikke vannet?", (("nb", "Kok vannet i {tid}."),), op),
        ctx("system"),  # type: ignore[arg-type]
    )
    batch = state.questions.batches["q-vann"]
    assert batch.suggested == {"nb": "Kok vannet i {tid}."} and not batch.answered
    assert state.questions.batch_ops == [op]
    # once per question, whatever id is asked for
    again = SeedBatch("q-vann-2", "vann", "x", (), {})
    assert run(state, again, ctx("system")).events == []  # type: ignore[arg-type]


@pytest.mark.parametrize("channel", ["nettside"])
def test_no_reply_goes_back_on_the_website_channel(channel: str) -> None:
    state = opened()
    key = question(state, channel, "f1", "Når kommer strømmen?")
    run(state, AssignToBatch(key, "b1", 1.0, True), ctx("batching"))  # type: ignore[arg-type]
    answer_id = _approved_answer(state, "b1", ANSWER)
    events = run(state, PublishAnswer(answer_id), ctx("kari")).events  # type: ignore[arg-type]
    assert not [
        e
        for e in events
        if isinstance(e, OutboxRequested) and e.publish.target is Target.CHANNEL_OUT
    ]
