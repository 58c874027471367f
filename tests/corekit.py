"""Helpers for tests of the core and the runtime: contexts, running commands, publishing.

The only way to put a message on staff terminals or channels is an approved version, so
tests that need a current message go through draft → approval → publish here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from krise_tui.core.engine import ReceiveFromBus, decide
from krise_tui.core.features.incident import OpenIncident
from krise_tui.core.features.messages import (
    ApproveDraft,
    DraftSaved,
    DraftVariant,
    MessageApproved,
    PublishVersion,
    SaveDraft,
)
from krise_tui.core.features.questions import PublishAnswer, SaveAnswer
from krise_tui.core.ids import canonical_json
from krise_tui.core.kernel import Accepted, Context, Decision, EventBase, Rejection
from krise_tui.core.policy import ChannelSpec, MessagePolicy, OperatorInfo
from krise_tui.core.state import IncidentState, fold
from krise_tui.runtime import ConsoleRuntime, source_for

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
WEB = "https://www.test.kommune.no"
TEST_ORG = Path(__file__).resolve().parent / "data" / "org-test.yaml"
PASSPHRASES = {"ola": "passord-ola", "kari": "passord-kari"}

POLICY = MessagePolicy(
    org_name="Testkommune",
    website_url=WEB,
    channels=(ChannelSpec("nettside", "website"), ChannelSpec("ansatte", "staff")),
    operators={
        "ola": OperatorInfo("Ola Hansen", "informasjonsmedarbeider", may_approve=False),
        "kari": OperatorInfo("Kari Nordmann", "kriseleder", may_approve=True),
    },
)


class Ids:
    """A deterministic id source (``id-0001``, ``id-0002`` …)."""

    def __init__(self, prefix: str = "id") -> None:
        self.prefix = prefix
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}-{self.n:04d}"


def make_ctx(
    actor: str = "ola",
    *,
    now: datetime = NOW,
    policy: MessagePolicy = POLICY,
    org: str = "test",
    roster: dict[str, str | None] | None = None,
    ids: Ids | None = None,
) -> Context:
    """A context for pure engine tests."""
    extra: dict[str, Any] = {} if ids is None else {"new_id": ids}
    return Context(
        org=org,
        actor=actor,
        now=now,
        incident_id="inc-1",
        roster=roster,
        org_name=policy.org_name,
        policy=policy,
        **extra,
    )


def run(
    state: IncidentState, command: object, ctx: Context, *, events: list[EventBase] | None = None
) -> Accepted:
    """Decide and fold; the command must be accepted. ``events`` collects what was
    decided (to journal it afterwards)."""
    decision = decide(state, command, ctx)
    assert isinstance(decision, Accepted), decision
    fold(decision.events, state)
    if events is not None:
        events.extend(decision.events)
    return decision


def refused(state: IncidentState, command: object, ctx: Context) -> Rejection:
    """Decide; the command must be refused."""
    decision = decide(state, command, ctx)
    assert isinstance(decision, Rejection), decision
    return decision


def bus(topic: str, payload: bytes | dict[str, Any]) -> ReceiveFromBus:
    """A bus message as the runtime hands it to the engine."""
    raw = canonical_json(payload) if isinstance(payload, dict) else payload
    return ReceiveFromBus(source_for(topic), raw)


def opened(ctx: Context | None = None) -> IncidentState:
    """A state with an open incident."""
    state = IncidentState()
    run(state, OpenIncident("Flom i sentrum"), ctx or make_ctx())
    return state


def publish_text(
    state: IncidentState,
    headline: str,
    body: str = f"Les mer på {WEB}",
    *,
    now: datetime = NOW,
    policy: MessagePolicy = POLICY,
    events: list[EventBase] | None = None,
) -> str:
    """Draft (ola), approve (kari) and publish one bokmål message; its version id.
    ``events`` collects what was decided."""
    variant = DraftVariant("nb", headline, body)
    ola, kari = make_ctx("ola", now=now, policy=policy), make_ctx("kari", now=now, policy=policy)
    saved = run(state, SaveDraft((variant,)), ola, events=events)
    draft = saved.events[0]
    assert isinstance(draft, DraftSaved)
    approved = run(state, ApproveDraft(draft.draft_id, "kari"), kari, events=events)
    version = approved.events[0]
    assert isinstance(version, MessageApproved)
    run(state, PublishVersion(version.version_id), kari, events=events)
    return version.version_id


def console_settings(make_settings: Any, endpoint: Any = None, **extra: Any) -> Any:
    """Settings for a console of the test org (operator ola) on ``endpoint``."""
    return make_settings(endpoint, org_file=TEST_ORG, operator="ola", **extra)


@contextlib.asynccontextmanager
async def running_runtime(settings: Any, signer: Any) -> AsyncIterator[ConsoleRuntime]:
    """A started console with ``settings``, connected to its broker; stopped afterwards."""
    runtime = ConsoleRuntime(settings, signer=signer)
    await runtime.start()
    try:
        assert runtime.session is not None
        await runtime.session.wait_connected(5)
        yield runtime
    finally:
        await runtime.stop()


@contextlib.asynccontextmanager
async def running_console(
    broker: Any, make_settings: Any, signer: Any, **extra: Any
) -> AsyncIterator[ConsoleRuntime]:
    """A started console of the test org on ``broker``, connected; stopped afterwards."""
    settings = console_settings(make_settings, broker.endpoint, **extra)
    async with running_runtime(settings, signer) as runtime:
        yield runtime


def signed(signer: Any, effect: Any, org: str = "test") -> str:
    """The signed envelope the outbox publishes for ``effect``."""
    from krise_tui.runtime.outbox import envelope_for

    return envelope_for(signer, org, effect)


async def publish_via(
    runtime: ConsoleRuntime,
    headline: str,
    body: str | None = None,
    *,
    approver: str = "kari",
    passphrase: str | None = None,
) -> Decision:
    """Draft as the console's operator, approve as ``approver`` (passphrase), publish."""
    if body is None:
        body = f"Les mer på {runtime.message_policy().website_url or WEB}"
    saved = await runtime.save_draft(SaveDraft((DraftVariant("nb", headline, body),)))
    assert isinstance(saved, Accepted), saved
    draft = saved.events[0]
    assert isinstance(draft, DraftSaved)
    approved = await runtime.approve(
        draft.draft_id, approver=approver, passphrase=passphrase or PASSPHRASES[approver]
    )
    assert isinstance(approved, Accepted), approved
    version = approved.events[0]
    assert isinstance(version, MessageApproved)
    return await runtime.submit(PublishVersion(version.version_id), actor=approver)


async def answer_via(
    runtime: ConsoleRuntime, batch_id: str, headline: str, body: str, *, approver: str = "kari"
) -> str:
    """Write a batch's answer as ola, approve it as ``approver``, send it; its id."""
    saved = await runtime.submit(
        SaveAnswer(batch_id, (DraftVariant("nb", headline, body),)), actor="ola"
    )
    assert isinstance(saved, Accepted), saved
    answer_id = next(
        a.answer_id for a in runtime.state.questions.answers.values() if a.batch_id == batch_id
    )
    approved = await runtime.approve_answer(
        answer_id, approver=approver, passphrase=PASSPHRASES[approver]
    )
    assert isinstance(approved, Accepted), approved
    published = await runtime.submit(PublishAnswer(answer_id), actor=approver)
    assert isinstance(published, Accepted), published
    return answer_id


def every_kind_of_event() -> tuple[IncidentState, list[EventBase]]:
    """Drive the engine through a scenario that records every kind of event there is.

    Tests that must cover all events (snapshots, replays, exports) use it; a test checks
    that it really produces every registered event type, so a new feature's events must
    be added here.
    """
    from datetime import timedelta

    from krise_tui.core.features.freeze import Freeze, ReassertFreeze, RemindUnacknowledged
    from krise_tui.core.features.incident import ActivatePlaybook, MarkChecklistItem, SignIn
    from krise_tui.core.features.messages import (
        MarkDeliveryOverdue,
        RecordApprovalBlock,
        RefreshCurrentMessage,
        RetryDelivery,
    )
    from krise_tui.core.features.outbox import (
        ConfirmEffect,
        FailEffectAttempt,
        SupersedeEffect,
        Target,
    )
    from krise_tui.core.features.questions import (
        ApproveAnswer,
        AssignToBatch,
        ForwardCaseProcessing,
        HidePost,
        MergeBatches,
        MoveQuestion,
        PublishAnswer,
        RelabelPost,
        SaveAnswer,
        SeedBatch,
        SetAutoAnswer,
        SplitBatch,
    )
    from krise_tui.core.features.rumours import (
        AcknowledgeRecurrence,
        ChangeRumourState,
        LinkCorrection,
        RecordSighting,
        RegisterRumour,
        ReplyToSpreaders,
    )

    s = IncidentState()
    events: list[EventBase] = []
    policy = MessagePolicy(
        **{
            **POLICY.__dict__,
            "channels": (*POLICY.channels, ChannelSpec("sms", "webhook")),
            "case_reply": {"nb": "Vi takker for henvendelsen."},
        }
    )

    def go(command: object, ctx: Context) -> Accepted:
        decision = run(s, command, ctx)
        events.extend(decision.events)
        return decision

    ids = Ids()
    roster: dict[str, str | None] = {"ansatt-001": "helse", "ansatt-002": "skole"}

    def at(minutes: int, actor: str = "ola") -> Context:
        return make_ctx(
            actor, now=NOW + timedelta(minutes=minutes), roster=roster, ids=ids, policy=policy
        )

    go(OpenIncident("Flom i sentrum", level=2), at(0))
    go(SignIn("ola"), at(0))
    go(MarkChecklistItem("varsle-kriseledelsen"), at(0))
    go(ActivatePlaybook("flom", "Flom og skred", "a" * 64, "playbooks/flom.yaml"), at(0))
    go(Freeze("Flom i sentrum", notice=(("nb", "Vi taler med én stemme."),)), at(1, "kari"))
    saved = go(SaveDraft((DraftVariant("nb", "Flomvarsel", f"Rv73 er stengt. {WEB}"),)), at(2))
    draft_id = saved.events[0].draft_id  # type: ignore[attr-defined]
    go(RecordApprovalBlock(draft_id, "kari", ("speculation",)), at(3, "kari"))
    approved = go(ApproveDraft(draft_id, "kari"), at(3, "kari"))
    version_id = approved.events[0].version_id  # type: ignore[attr-defined]
    go(PublishVersion(version_id), at(4, "kari"))
    web = next(d for d in s.messages.ledger() if d.channel == "nettside")
    freezes = [e for e in s.outbox.pending() if e.publish.target is Target.FREEZE]
    go(SupersedeEffect(freezes[0].effect_id, freezes[-1].effect_id), at(4, "outbox"))
    go(FailEffectAttempt(web.effect_id, 1, "not connected"), at(4, "outbox"))
    for effect in s.outbox.pending():
        go(ConfirmEffect(effect.effect_id), at(5, "outbox"))
    receipt_topic = "krise/v1/test/channel/nettside/receipt"
    failed = {"effect_id": web.effect_id, "status": "failed", "attempt": 1, "reason": "503"}
    go(bus(receipt_topic, {**failed, "final": True}), at(6, "bus"))
    go(RetryDelivery(web.effect_id), at(7, "kari"))
    go(ConfirmEffect(web.effect_id), at(7, "outbox"))
    go(MarkDeliveryOverdue(web.effect_id), at(30, "system"))
    seq = s.freeze.current.seq if s.freeze.current else 0
    go(bus("krise/v1/test/presence/staff/ansatt-001", {"status": "online"}), at(31, "bus"))
    trouble = {"status": "online", "trouble": {"e-mail imap://h/INBOX": "login refused"}}
    go(bus("krise/v1/test/presence/bridge/bridge-epost", trouble), at(31, "bus"))
    ack = {"staff_id": "ansatt-001", "seq": seq}
    go(bus("krise/v1/test/staff/ansatt-001/ack", ack), at(31, "bus"))
    go(RemindUnacknowledged(("ansatt-002",)), at(40, "system"))
    go(ReassertFreeze(), at(41, "system"))
    go(RefreshCurrentMessage(), at(41, "system"))
    post = {"id": "p1", "text": "Er vannet trygt? Min fnr er 17057234881", "author": "@per"}
    go(bus("krise/v1/test/channel/facebook/in", post), at(42, "bus"))
    go(bus("krise/v1/test/channel/facebook/in", b"not json"), at(43, "bus"))

    # questions: triage on arrival, a correction, batches, one approved answer
    sms = "krise/v1/test/channel/sms/in"
    for n, text in enumerate(["Når kommer strømmen?", "Er skolen stengt?", "Strøm tilbake?"]):
        go(bus(sms, {"id": f"q{n}", "text": text, "meta": {"from": f"+479000000{n}"}}), at(44))
    for n in range(3):
        go(RelabelPost(f"sms:q{n}", "service_question"), at(44, "kari"))
    go(SeedBatch("q-strom", "strom", "Når kommer strømmen?", (("nb", "Snart."),), {}), at(44))
    go(AssignToBatch("sms:q0", "b1", 1.0, True, {"kind": "add"}), at(45, "batching"))
    go(AssignToBatch("sms:q1", "b2", 1.0, True, {"kind": "add"}), at(45, "batching"))
    go(AssignToBatch("sms:q2", "b2", 0.5, False, {"kind": "add"}), at(45, "batching"))
    go(MoveQuestion("sms:q2", "b1", {"kind": "move"}), at(46))
    go(SplitBatch(("sms:q2",), "b3", {"kind": "split"}), at(46))
    go(MergeBatches("b1", "b3", {"kind": "merge"}), at(46))
    go(SetAutoAnswer("b2", on=False), at(46))
    saved = go(SaveAnswer("b1", (DraftVariant("nb", "", f"I kveld. {WEB}"),)), at(47))
    answer_id = saved.events[0].answer_id  # type: ignore[attr-defined]
    go(ApproveAnswer(answer_id, "kari"), at(48, "kari"))
    go(PublishAnswer(answer_id), at(48, "kari"))
    reply = next(iter(s.questions.replies.values()))
    failed_reply = {"effect_id": reply.effect_id, "status": "failed", "attempt": 1, "reason": "gw"}
    go(bus("krise/v1/test/channel/sms/receipt", {**failed_reply, "final": True}), at(48, "bus"))
    go(PublishAnswer(answer_id), at(48, "kari"))  # the failed reply again
    go(ForwardCaseProcessing("sms:q1"), at(49))
    go(RelabelPost("facebook:p1", "attack"), at(49, "kari"))
    go(HidePost("facebook:p1", "Personangrep"), at(49, "kari"))

    # rumours: register, check, correct through a published message, recurrence
    go(RegisterRumour("Dammen har brast", "municipality", ("sms:q0",)), at(50))
    go(ChangeRumourState("r1", "checking", checker="kari", checking_with="NVE"), at(51, "kari"))
    go(ChangeRumourState("r1", "false", source="NVE og kommunen"), at(52, "kari"))
    fix = go(SaveDraft((DraftVariant("nb", "Dammen står", f"Dammen er hel. {WEB}"),)), at(53))
    fix_id = fix.events[0].draft_id  # type: ignore[attr-defined]
    go(LinkCorrection("r1", fix_id), at(53))
    fixed = go(ApproveDraft(fix_id, "kari"), at(54, "kari"))
    go(PublishVersion(fixed.events[0].version_id), at(54, "kari"))  # type: ignore[attr-defined]
    go(bus(sms, {"id": "q9", "text": "Dammen har brast likevel?"}), at(55, "bus"))
    go(RecordSighting("r1", "sms:q9", 0.9), at(55, "matching"))  # after it: a recurrence
    go(ReplyToSpreaders("r1"), at(56, "kari"))
    go(AcknowledgeRecurrence("r1"), at(56, "kari"))
    return s, events
