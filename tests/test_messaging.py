"""One approved message to every channel: drafts, four eyes, lint blocks, ledger, retry."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer, Verifier
from krise_tui.config import Settings
from krise_tui.core.engine import ReceiveFromBus, decide
from krise_tui.core.features.incident import OpenIncident
from krise_tui.core.features.messages import (
    ApproveDraft,
    DeliveryStatus,
    DraftVariant,
    MarkDeliveryOverdue,
    MessageApproved,
    PublishVersion,
    RetryDelivery,
    SaveDraft,
    lint_draft,
)
from krise_tui.core.features.outbox import OutboxRequested
from krise_tui.core.kernel import Accepted, Context, Rejection
from krise_tui.core.policy import ChannelSpec, MessagePolicy, OperatorInfo
from krise_tui.core.state import IncidentState, fold
from krise_tui.journal.store import Journal
from krise_tui.runtime import ConsoleRuntime
from krise_tui.wire.message import ApprovedMessage
from tests.conftest import eventually
from tests.corekit import bus, signed
from tests.test_idnumbers import complete

NOW = datetime(2026, 11, 27, 14, 5, tzinfo=UTC)
WEB = "https://www.hattfjelldal.kommune.no/krise"
ROOT = Path(__file__).resolve().parents[1]

POLICY = MessagePolicy(
    org_name="Hattfjelldal kommune",
    website_url=WEB,
    required_languages=("nb", "sma"),
    channels=(
        ChannelSpec("facebook", "facebook"),
        ChannelSpec("nettside", "website"),
        ChannelSpec("sms", "sms"),
        ChannelSpec("ansatte", "staff"),
    ),
    operators={
        "ola": OperatorInfo("Ola Hansen", "informasjonsmedarbeider", may_approve=False),
        "kari": OperatorInfo("Kari Nordmann", "kriseleder", may_approve=True),
    },
    break_glass_allowed=True,
)

NB = DraftVariant("nb", "Flomvarsel for sentrum", f"Rv73 er stengt ved Svenskvollen. Se {WEB}")
SMA = DraftVariant("sma", awaiting_translation=True)


def ctx(signer: Signer, actor: str, policy: MessagePolicy = POLICY, now: datetime = NOW) -> Context:
    return Context(
        org="hattfjelldal", actor=actor, now=now, incident_id="inc",
        org_name=policy.org_name, policy=policy,
    )  # fmt: skip


def run(state: IncidentState, command: object, context: Context) -> Accepted:
    decision = decide(state, command, context)
    assert isinstance(decision, Accepted), decision
    fold(decision.events, state)
    return decision


@pytest.fixture
def state(signer: Signer) -> IncidentState:
    s = IncidentState()
    run(s, OpenIncident("Flom"), ctx(signer, "ola"))
    return s


def draft(state: IncidentState, signer: Signer, *variants: DraftVariant) -> str:
    decision = run(state, SaveDraft(variants or (NB, SMA)), ctx(signer, "ola"))
    return decision.events[0].draft_id  # type: ignore[attr-defined, no-any-return]


SMA_REASON = (("missing-language", "sma", "Oversetter er varslet, kommer innen en time"),)


def test_four_eyes_author_cannot_approve_alone(state: IncidentState, signer: Signer) -> None:
    draft_id = draft(state, signer)
    decision = decide(state, ApproveDraft(draft_id, "ola", SMA_REASON), ctx(signer, "ola"))
    assert isinstance(decision, Rejection)
    assert "may not approve" in decision.reason  # an information officer never approves
    kari_draft = run(state, SaveDraft((NB, SMA)), ctx(signer, "kari")).events[0]
    decision = decide(
        state,
        ApproveDraft(kari_draft.draft_id, "kari", SMA_REASON),
        ctx(signer, "kari"),  # type: ignore[attr-defined]
    )
    assert isinstance(decision, Rejection) and "break-glass" in decision.reason


def test_break_glass_needs_a_reason_and_is_journaled(state: IncidentState, signer: Signer) -> None:
    own = run(state, SaveDraft((NB, SMA)), ctx(signer, "kari")).events[0]
    approve = ApproveDraft(own.draft_id, "kari", SMA_REASON, "Ingen annen i kriseledelsen nås")  # type: ignore[attr-defined]
    (event,) = run(state, approve, ctx(signer, "kari")).events
    assert isinstance(event, MessageApproved)
    assert event.break_glass_reason == "Ingen annen i kriseledelsen nås"
    no_glass = MessagePolicy(**{**POLICY.__dict__, "break_glass_allowed": False})
    other = run(state, SaveDraft((NB, SMA)), ctx(signer, "kari", no_glass)).events[0]
    decision = decide(
        state,
        ApproveDraft(other.draft_id, "kari", SMA_REASON, "grunn"),  # type: ignore[attr-defined]
        ctx(signer, "kari", no_glass),
    )
    assert isinstance(decision, Rejection) and "four eyes" in decision.reason


def test_id_numbers_block_and_are_never_journaled(state: IncidentState, signer: Signer) -> None:
    fnr = complete("150390124")
    assert fnr is not None
    bad = DraftVariant("nb", "Savnet", f"Personen med fødselsnummer {fnr} er savnet. {WEB}")
    decision = decide(state, SaveDraft((bad, SMA)), ctx(signer, "ola"))
    assert isinstance(decision, Rejection)  # not even a draft may hold it
    assert decision.reason.startswith("blocked:") and fnr[6:] not in decision.reason
    assert decision.text("nb").startswith("stoppet:") and fnr[6:] not in decision.text("nb")
    assert not state.messages.drafts and not state.messages.versions


def test_control_characters_block_and_direction_controls_need_a_reason(
    state: IncidentState, signer: Signer
) -> None:
    """An escape sequence pasted into a message would act on staff terminals and garble
    SMS: never approved. A right-to-left override reorders what readers see: only with a
    reason (a right-to-left language may need one)."""
    escaped = DraftVariant("nb", NB.headline, f"Rv73 er stengt.\x1b[2J Se {WEB}")
    draft_id = draft(state, signer, escaped, SMA)  # a draft may hold it, to be mended
    decision = decide(state, ApproveDraft(draft_id, "kari", SMA_REASON), ctx(signer, "kari"))
    assert isinstance(decision, Rejection)
    assert "U+001B ESCAPE" in decision.reason and "remove it" in decision.reason
    override = (*SMA_REASON, ("control-character", "nb", "Det er med vilje"))
    again = decide(state, ApproveDraft(draft_id, "kari", override), ctx(signer, "kari"))
    assert isinstance(again, Rejection)  # no reason makes it sendable
    reversed_ = DraftVariant("nb", NB.headline, f"Ring \u202e777 88 999\u202c. Se {WEB}")
    draft_id = draft(state, signer, reversed_, SMA)
    decision = decide(state, ApproveDraft(draft_id, "kari", SMA_REASON), ctx(signer, "kari"))
    assert isinstance(decision, Rejection) and "control-character [nb]" in decision.reason
    (event,) = run(state, ApproveDraft(draft_id, "kari", override), ctx(signer, "kari")).events
    assert isinstance(event, MessageApproved)
    assert {"code": "control-character", "lang": "nb", "reason": "Det er med vilje"} in (
        event.overrides
    )


def test_missing_required_language_needs_an_override(state: IncidentState, signer: Signer) -> None:
    draft_id = draft(state, signer)
    decision = decide(state, ApproveDraft(draft_id, "kari"), ctx(signer, "kari"))
    assert isinstance(decision, Rejection)
    assert "missing-language [sma]" in decision.reason
    (event,) = run(state, ApproveDraft(draft_id, "kari", SMA_REASON), ctx(signer, "kari")).events
    assert isinstance(event, MessageApproved)
    assert event.overrides == [
        {"code": "missing-language", "lang": "sma", "reason": SMA_REASON[0][2]}
    ]
    assert event.signature == "Ola Hansen, informasjonsmedarbeider"
    assert event.actor == "kari" and event.author == "ola"


def approved_version(state: IncidentState, signer: Signer) -> str:
    draft_id = draft(state, signer)
    (event,) = run(state, ApproveDraft(draft_id, "kari", SMA_REASON), ctx(signer, "kari")).events
    return event.version_id  # type: ignore[attr-defined, no-any-return]


def test_publish_sends_one_version_to_every_channel_website_first(
    state: IncidentState, signer: Signer
) -> None:
    version_id = approved_version(state, signer)
    events = run(state, PublishVersion(version_id), ctx(signer, "kari")).events
    outbox = [e for e in events if isinstance(e, OutboxRequested)]
    assert [e.channel for e in outbox] == ["nettside", "facebook", "sms", "ansatte"]
    verifier = Verifier([signer.public_key], org="hattfjelldal")
    for entry in outbox[:3]:
        payload = signed(signer, state.outbox.effects[entry.effect_id], org="hattfjelldal")
        result = verifier.check(payload)
        assert result.ok and result.envelope is not None
        body = result.envelope.body
        assert body["idempotency_key"] == f"{version_id}:{entry.channel}"
        message = ApprovedMessage.model_validate(body["message"])  # what the bridges parse
        assert message.version_id == version_id
        assert message.signature == "Ola Hansen, informasjonsmedarbeider"
    staff = outbox[3]
    assert str(staff.publish.target) == "message" and staff.publish.retain
    assert [d.status for d in state.messages.ledger()] == [DeliveryStatus.QUEUED] * 4
    assert isinstance(decide(state, PublishVersion(version_id), ctx(signer, "kari")), Rejection)


def receipt(
    channel: str, effect_id: str, status: str, attempt: int, **extra: object
) -> ReceiveFromBus:
    body = {"effect_id": effect_id, "status": status, "attempt": attempt, **extra}
    return bus(f"krise/v1/hattfjelldal/channel/{channel}/receipt", json.dumps(body).encode())


def test_receipts_fill_the_ledger_and_retry_resends_one_channel(
    state: IncidentState, signer: Signer
) -> None:
    version_id = approved_version(state, signer)
    run(state, PublishVersion(version_id), ctx(signer, "kari"))
    by_channel = {d.channel: d for d in state.messages.ledger()}
    web, fb = by_channel["nettside"].effect_id, by_channel["facebook"].effect_id
    c = ctx(signer, "bus")
    run(state, receipt("nettside", web, "sent", 1), c)
    assert by_channel["nettside"].status is DeliveryStatus.HANDED
    run(state, receipt("nettside", web, "delivered", 1, remote_id=f"{WEB}/v/x.html"), c)
    run(state, receipt("facebook", fb, "failed", 1, reason="503 Service Unavailable"), c)
    # not final: the bridge tries again, and the ledger says so (not "failed")
    assert by_channel["facebook"].status is DeliveryStatus.HANDED
    assert by_channel["facebook"].retrying and by_channel["facebook"].attempts == 1
    assert isinstance(decide(state, RetryDelivery(fb), ctx(signer, "kari")), Rejection)
    run(
        state,
        receipt("facebook", fb, "failed", 2, reason="401 Unauthorized", permanent=True, final=True),
        c,
    )
    assert by_channel["nettside"].status is DeliveryStatus.DELIVERED
    assert by_channel["nettside"].remote_id == f"{WEB}/v/x.html"
    assert by_channel["facebook"].status is DeliveryStatus.FAILED
    assert by_channel["facebook"].reason == "401 Unauthorized"
    assert not by_channel["facebook"].retrying and by_channel["facebook"].attempts == 2
    # a late "sent" never undoes a delivery; a receipt on the wrong channel is refused
    run(state, receipt("nettside", web, "sent", 2), c)
    (refusal,) = run(state, receipt("sms", web, "failed", 1, reason="x"), c).events
    assert "did not send" in refusal.reason  # type: ignore[attr-defined]
    assert by_channel["nettside"].status is DeliveryStatus.DELIVERED
    assert isinstance(decide(state, RetryDelivery(web), c), Rejection)
    run(state, RetryDelivery(fb), ctx(signer, "kari"))
    assert by_channel["facebook"].status is DeliveryStatus.QUEUED
    assert by_channel["facebook"].resends == 1
    assert state.outbox.effects[fb].status == "pending"  # the outbox sends the same request


def test_a_delivery_with_no_receipt_in_time_is_overdue_and_can_be_resent(
    state: IncidentState, signer: Signer
) -> None:
    version_id = approved_version(state, signer)
    run(state, PublishVersion(version_id), ctx(signer, "kari"))
    sms = next(d for d in state.messages.ledger() if d.channel == "sms")
    early = decide(state, MarkDeliveryOverdue(sms.effect_id), ctx(signer, "system"))
    assert isinstance(early, Rejection)
    late = ctx(signer, "system", now=NOW + POLICY.receipt_deadline)
    run(state, MarkDeliveryOverdue(sms.effect_id), late)
    assert sms.status is DeliveryStatus.NO_RECEIPT
    run(state, RetryDelivery(sms.effect_id), late)
    assert sms.status is DeliveryStatus.QUEUED


async def test_runtime_publish_to_a_channel_and_staff_against_mosquitto(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    settings = make_settings(
        mosquitto.endpoint,
        org_file=ROOT / "playbooks" / "orgs" / "eksempel.yaml",
        playbook=ROOT / "playbooks" / "flom-og-skred.yaml",
        operator="jon",
    )
    runtime = ConsoleRuntime(settings, signer=signer)
    await runtime.start()
    try:
        assert runtime.operator == "jon"  # drafts, does not approve
        text = "Rv73 er stengt. Følg med på https://www.eksempel.kommune.no"
        saved = await runtime.submit(SaveDraft((DraftVariant("nb", "Flomvarsel", text),)))
        assert isinstance(saved, Accepted)
        draft_id = saved.events[0].draft_id  # type: ignore[attr-defined]
        wrong = await runtime.approve(draft_id, approver="siri", passphrase="feil")
        assert isinstance(wrong, Rejection) and "wrong passphrase" in wrong.reason
        ok = await runtime.approve(draft_id, approver="siri", passphrase="passord-siri")
        assert isinstance(ok, Accepted), ok
        version_id = ok.events[0].version_id  # type: ignore[attr-defined]
        published = await runtime.submit(PublishVersion(version_id), actor="siri")
        assert isinstance(published, Accepted), published
        ledger = {d.channel: d for d in runtime.state.messages.ledger()}
        assert set(ledger) == {"nettside", "facebook", "sms", "epost", "ansatte"}
        await eventually(
            lambda: ledger["ansatte"].status is DeliveryStatus.DELIVERED, what="staff delivered"
        )
        await eventually(  # the website's bridge runs in the console: it delivers
            lambda: ledger["nettside"].status is DeliveryStatus.DELIVERED, what="website"
        )
        # facebook has no token here: its bridge never started, so it is handed over at
        # most (the broker queues it for a bridge), never "sent" or "delivered"
        assert ledger["facebook"].status in (DeliveryStatus.QUEUED, DeliveryStatus.HANDED)
        assert runtime.state.messages.current is not None
        assert runtime.state.messages.current.version_id == version_id
    finally:
        await runtime.stop()
    async with await Journal.open(settings.journal_path) as journal:
        approved = [e for e in await journal.read_events() if isinstance(e, MessageApproved)]
    assert [(e.author, e.approver) for e in approved] == [("jon", "siri")]


def test_lint_warns_when_a_chosen_channel_will_shorten_the_text() -> None:
    policy = MessagePolicy(
        **{**POLICY.__dict__, "channels": (*POLICY.channels, ChannelSpec("mastodon", "mastodon"))}
    )
    short = lint_draft([NB], policy)
    assert "post-length" not in {f.code for f in short.findings}
    long_text = DraftVariant("nb", "Flomvarsel", "Hold deg unna elva. " * 30 + WEB)
    report = lint_draft([long_text], policy)
    (finding,) = [f for f in report.findings if f.code == "post-length"]
    assert finding.message("nb").startswith("mastodon: ca. ")
    assert not report.blocked  # a warning: the channel shortens, keeping the link


async def test_an_id_number_never_reaches_the_journal_but_the_block_does(
    make_settings: Callable[..., Settings], signer: Signer
) -> None:
    from krise_tui.core.features.messages import ApprovalBlocked

    settings = make_settings(
        None,
        org_file=ROOT / "playbooks" / "orgs" / "eksempel.yaml",
        playbook=ROOT / "playbooks" / "flom-og-skred.yaml",
        operator="lise",
    )
    runtime = ConsoleRuntime(settings, signer=signer, start_bus=False)
    await runtime.start()
    fnr = complete("150390125")
    assert fnr is not None
    try:
        text = f"Personen med nummer {fnr[:6]} {fnr[6:]} er savnet. https://www.eksempel.kommune.no"
        decision = await runtime.save_draft(SaveDraft((DraftVariant("nb", "Savnet", text),)))
        assert isinstance(decision, Rejection) and decision.reason.startswith("blocked:")
        assert fnr[6:] not in decision.reason
        assert not runtime.state.messages.drafts
    finally:
        await runtime.stop()
    async with await Journal.open(settings.journal_path) as journal:
        events = await journal.read_events()
    (blocked,) = [e for e in events if isinstance(e, ApprovalBlocked)]
    assert blocked.codes == ["id-number"]
    journal_bytes = b"".join(p.read_bytes() for p in settings.journal_path.parent.glob("journal*"))
    assert fnr[6:].encode() not in journal_bytes  # not in any row, WAL or page


def test_an_account_number_passes_only_with_a_reason(state: IncidentState, signer: Signer) -> None:
    from tests.test_idnumbers import complete as fnr_from

    digits = fnr_from("150390124")  # passes the ID checks, so also the account check
    assert digits is not None
    account = f"{digits[:4]}.{digits[4:6]}.{digits[6:]}"
    text = f"Innsamling til de rammede: konto {account}. {WEB}"
    draft_id = draft(state, signer, DraftVariant("nb", "Innsamling", text), SMA)
    decision = decide(state, ApproveDraft(draft_id, "kari", SMA_REASON), ctx(signer, "kari"))
    assert isinstance(decision, Rejection) and "id-number [nb]" in decision.reason
    reasons = (*SMA_REASON, ("id-number", "nb", "Kommunens innsamlingskonto, kontrollert"))
    (event,) = run(state, ApproveDraft(draft_id, "kari", reasons), ctx(signer, "kari")).events
    assert isinstance(event, MessageApproved)
    assert {"code": "id-number", "lang": "nb", "reason": reasons[1][2]} in event.overrides
    assert digits not in json.dumps(event.overrides)
