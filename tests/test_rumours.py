"""Rumours: lifecycle with reasons for refusals, fact owners, correction, recurrence."""

from __future__ import annotations

from datetime import timedelta

import pytest

from krise_tui.core.features.messages import (
    ApproveDraft,
    DraftVariant,
    PublishVersion,
    SaveDraft,
)
from krise_tui.core.features.outbox import OutboxRequested
from krise_tui.core.features.rumours import (
    AcknowledgeRecurrence,
    ChangeRumourState,
    LinkCorrection,
    RecordSighting,
    RegisterRumour,
    ReplyToSpreaders,
    RumourCorrected,
    RumourSighted,
    RumourState,
)
from krise_tui.core.policy import ChannelSpec, MessagePolicy
from krise_tui.core.state import IncidentState, fold, state_hash
from krise_tui.wire.delivery import ReplyRequest
from tests.corekit import NOW, POLICY, WEB, bus, make_ctx, opened, refused, run

POLICY_R = MessagePolicy(
    **{**POLICY.__dict__, "channels": (*POLICY.channels, ChannelSpec("sms", "webhook"))}
)


def ctx(actor: str = "ola", minutes: int = 0) -> object:
    return make_ctx(actor, policy=POLICY_R, now=NOW + timedelta(minutes=minutes))


def post(state: IncidentState, post_id: str, text: str, minutes: int = 0) -> str:
    message = {"id": post_id, "text": text}
    run(state, bus("krise/v1/test/channel/sms/in", message), ctx("bus", minutes))  # type: ignore[arg-type]
    return f"sms:{post_id}"


def registered(state: IncidentState, owner: str = "municipality") -> str:
    key = post(state, "p1", "Jeg hørte at dammen ved Svenskvollen har brast!")
    run(state, RegisterRumour("Dammen ved Svenskvollen har brast", owner, (key,)), ctx())  # type: ignore[arg-type]
    return "r1"


def test_a_rumour_is_registered_from_a_post_with_where_and_when_it_was_first_seen() -> None:
    state = opened()
    rumour_id = registered(state)
    r = state.rumours.rumours[rumour_id]
    assert r.state is RumourState.SIGHTED and r.registered_by == "ola"
    assert [s.post_key for s in r.sightings] == ["sms:p1"]
    assert r.first_seen == state.inbound.posts["sms:p1"].received_at


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (["false"], "cannot become confirmed false"),
        (["checking", "monitoring"], "cannot become monitoring"),
        (["corrected"], "publishing its linked correction"),
        (["checking", "closed", "false"], "cannot become confirmed false"),
    ],
)
def test_invalid_transitions_are_refused_with_a_reason(path: list[str], reason: str) -> None:
    state = opened()
    rumour_id = registered(state)
    *ok, last = path
    for step in ok:
        run(state, ChangeRumourState(rumour_id, step, checker="kari", source="NVE"), ctx("kari"))  # type: ignore[arg-type]
    refusal = refused(state, ChangeRumourState(rumour_id, last, checker="x", source="y"), ctx())  # type: ignore[arg-type]
    assert reason in refusal.reason
    assert refusal.text("nb") != refusal.reason  # said in Norwegian too


def test_checking_needs_who_and_a_verdict_needs_its_source() -> None:
    state = opened()
    rumour_id = registered(state)
    assert "who checks" in refused(state, ChangeRumourState(rumour_id, "checking"), ctx()).reason  # type: ignore[arg-type]
    run(state, ChangeRumourState(rumour_id, "checking", checker="Kari", checking_with="NVE"), ctx())  # type: ignore[arg-type]
    assert "source" in refused(state, ChangeRumourState(rumour_id, "false"), ctx()).reason  # type: ignore[arg-type]
    run(state, ChangeRumourState(rumour_id, "false", source="NVE"), ctx("kari"))  # type: ignore[arg-type]
    r = state.rumours.rumours[rumour_id]
    assert r.state is RumourState.FALSE and r.checker == "Kari" and r.changed_by == "kari"


def test_the_municipality_never_confirms_what_the_police_own() -> None:
    state = opened()
    rumour_id = registered(state, owner="police")
    run(
        state,
        ChangeRumourState(rumour_id, "checking", checker="Kari", checking_with="politiet"),
        ctx(),
    )  # type: ignore[arg-type]
    refusal = refused(state, ChangeRumourState(rumour_id, "true", source="kommunen"), ctx())  # type: ignore[arg-type]
    assert "the police own these facts" in refusal.reason
    run(state, ChangeRumourState(rumour_id, "true", source="Politiet, operasjonssentralen"), ctx())  # type: ignore[arg-type]
    assert state.rumours.rumours[rumour_id].state is RumourState.TRUE


def corrected(state: IncidentState, rumour_id: str) -> str:
    run(state, ChangeRumourState(rumour_id, "checking", checker="Kari", checking_with="NVE"), ctx())  # type: ignore[arg-type]
    run(state, ChangeRumourState(rumour_id, "false", source="NVE"), ctx("kari"))  # type: ignore[arg-type]
    draft = run(
        state,
        SaveDraft((DraftVariant("nb", "Dammen står", f"Dammen er hel og overvåkes. {WEB}"),)),
        ctx("ola"),  # type: ignore[arg-type]
    ).events[0]
    draft_id: str = draft.draft_id  # type: ignore[attr-defined]
    run(state, LinkCorrection(rumour_id, draft_id), ctx())  # type: ignore[arg-type]
    version = run(state, ApproveDraft(draft_id, "kari"), ctx("kari")).events[0]  # type: ignore[arg-type]
    events = run(state, PublishVersion(version.version_id), ctx("kari", 5)).events  # type: ignore[arg-type, attr-defined]
    assert any(isinstance(e, RumourCorrected) for e in events)  # in the same decision
    return str(version.version_id)  # type: ignore[attr-defined]


def test_a_correction_is_a_message_through_four_eyes_and_marks_the_rumour_corrected() -> None:
    state = opened()
    rumour_id = registered(state)
    refusal = refused(state, LinkCorrection(rumour_id, "nope"), ctx())  # type: ignore[arg-type]
    assert "no draft" in refusal.reason
    version_id = corrected(state, rumour_id)
    r = state.rumours.rumours[rumour_id]
    assert r.state is RumourState.CORRECTED and r.correction_version == version_id


def test_a_corrected_rumour_seen_again_raises_an_alert_and_spreaders_get_one_reply() -> None:
    state = opened()
    rumour_id = registered(state)
    late = post(state, "p0", "Dammen har visst brast", minutes=4)  # before the correction
    corrected(state, rumour_id)  # published at minute 5
    (sighted,) = run(state, RecordSighting(rumour_id, late, 0.9), ctx("matching", 7)).events  # type: ignore[arg-type]
    assert isinstance(sighted, RumourSighted) and not sighted.recurrence  # matched late
    again = post(state, "p2", "Dammen har brast sier naboen", minutes=6)
    (sighted,) = run(state, RecordSighting(rumour_id, again, 0.91), ctx("matching")).events  # type: ignore[arg-type]
    assert isinstance(sighted, RumourSighted) and sighted.recurrence
    assert state.rumours.alerts == [rumour_id]
    assert run(state, RecordSighting(rumour_id, again, 0.91), ctx()).events == []  # once per post  # type: ignore[arg-type]
    events = run(state, ReplyToSpreaders(rumour_id), ctx("kari")).events  # type: ignore[arg-type]
    replies = [
        ReplyRequest.model_validate(e.publish.body)
        for e in events
        if isinstance(e, OutboxRequested)
    ]
    assert sorted(r.to.post_id for r in replies) == ["p0", "p1", "p2"]
    assert all(r.text.startswith("Dammen står") for r in replies)
    assert run(state, ReplyToSpreaders(rumour_id), ctx("kari")).events == []  # never twice  # type: ignore[arg-type]
    # The SMS gateway refused one reply for good: replying again sends that one again
    # (the same request), and only it.
    failed = next(e for e in events if isinstance(e, OutboxRequested))
    receipt = {"effect_id": failed.effect_id, "status": "failed", "attempt": 1, "final": True}
    run(state, bus("krise/v1/test/channel/sms/receipt", receipt), ctx("bus"))  # type: ignore[arg-type]
    retried = run(state, ReplyToSpreaders(rumour_id), ctx("kari")).events  # type: ignore[arg-type]
    assert [(type(e).__name__, e.effect_id) for e in retried] == [  # type: ignore[attr-defined]
        ("ReplyRetried", failed.effect_id),
        ("OutboxRequeued", failed.effect_id),
    ]
    assert run(state, ReplyToSpreaders(rumour_id), ctx("kari")).events == []  # type: ignore[arg-type]
    run(state, AcknowledgeRecurrence(rumour_id), ctx("kari"))  # type: ignore[arg-type]
    assert state.rumours.alerts == []
    assert state.rumours.rumours[rumour_id].recurrences == 1


def test_journal_replay_restores_every_rumour_exactly() -> None:
    from tests.corekit import every_kind_of_event

    live, journal = every_kind_of_event()
    replayed = fold(journal)
    assert live.rumours.rumours  # the scenario has rumours, with sightings and a correction
    assert replayed.rumours == live.rumours
    assert state_hash(replayed) == state_hash(live)


def test_spread_over_time_and_channels_and_what_is_most_pressing() -> None:
    """How often and where a rumour is seen (the console's sparkline, per hour, per
    channel), and which open rumour wants attention first: spread × age."""
    state = opened()
    rumour_id = registered(state)  # p1 on sms at minute 0
    for minutes in (20, 21, 50):
        key = post(state, f"q{minutes}", "Dammen har brast, sier de", minutes=minutes)
        run(state, RecordSighting(rumour_id, key, 0.9), ctx("matching", minutes))  # type: ignore[arg-type]
    r = state.rumours.rumours[rumour_id]
    now = NOW + timedelta(minutes=60)
    # Four quarter-hours up to minute 60: [0, 15), [15, 30), [30, 45), [45, 60].
    assert r.seen_per(now, timedelta(minutes=15), 4) == [1, 2, 0, 1]
    # Older than the window: not counted; an hour-long window holds all four.
    assert r.seen_per(now, timedelta(minutes=15), 2) == [0, 1]
    assert r.seen_per(now, timedelta(hours=1), 3) == [0, 0, 4]
    assert r.seen_on() == [("sms", 4)]
    deadline = POLICY_R.correction_deadline
    # Four sightings in the last hour, an hour old: 4 × (60 min / the deadline).
    assert r.pressure(now, deadline) == pytest.approx(4 * timedelta(hours=1) / deadline)
    # A quiet hour later the spread counts one (it is still open), the age goes on.
    later = now + timedelta(hours=2)
    assert r.pressure(later, deadline) == pytest.approx(timedelta(hours=3) / deadline)
    corrected(state, rumour_id)
    assert state.rumours.rumours[rumour_id].pressure(later, deadline) == 0.0


def test_the_sparkline_scales_to_the_busiest_period() -> None:
    from krise_tui.console.text import sparkline

    assert sparkline([0, 1, 2, 4, 8]) == " ▁▂▄█"
    assert sparkline([0, 0]) == "  "
    assert sparkline([3]) == "█"
    assert sparkline([1, 100]) == "▁█"  # one sighting is never drawn as none
