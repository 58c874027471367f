"""Engine: commands decided by their feature; bad bus input journaled as rejected, never raised."""

from __future__ import annotations

import json

import pytest

from krise_tui.core.describe import describe
from krise_tui.core.engine import decide
from krise_tui.core.features import REGISTRY
from krise_tui.core.features.freeze import Freeze, LiftFreeze
from krise_tui.core.features.inbound import InboundRejected, PostReceived, PresenceChanged
from krise_tui.core.features.incident import OpenIncident
from krise_tui.core.features.outbox import ConfirmEffect, Target
from krise_tui.core.kernel import Accepted
from krise_tui.core.state import IncidentState, fold, state_hash
from tests.corekit import Ids, bus, make_ctx, opened, publish_text, refused, run


def test_incident_opens_once_with_a_title_and_a_level() -> None:
    state = opened()
    assert "already open" in refused(state, OpenIncident("Igjen"), make_ctx()).reason
    assert "title" in refused(IncidentState(), OpenIncident("   "), make_ctx()).reason
    assert "level" in refused(IncidentState(), OpenIncident("Flom", 9), make_ctx()).reason


def test_an_unknown_command_is_refused_not_raised() -> None:
    class PublishCurrentMessage:  # the skeleton's unapproved path: gone
        text = "Kontakt Ola 01010112377"

    decision = refused(opened(), PublishCurrentMessage(), make_ctx())
    assert "unknown command" in decision.reason


def test_only_an_approved_version_reaches_channels_or_the_current_message() -> None:
    """No command but PublishVersion asks for a message or a channel delivery."""
    publishers = {
        cmd.__name__
        for cmd in REGISTRY.deciders
        if cmd.__name__ in {"PublishVersion", "RetryDelivery"}
    }
    assert publishers == {"PublishVersion", "RetryDelivery"}
    state = opened()
    run(state, Freeze("Flom"), make_ctx())
    version = publish_text(state, "Rv73 er stengt")
    targets = [
        e.publish.target
        for e in state.outbox.effects.values()
        if e.publish.target in (Target.MESSAGE, Target.CHANNEL_OUT)
    ]
    assert sorted(map(str, targets)) == ["channel_out", "message"]
    message = next(e for e in state.outbox.effects.values() if e.publish.target is Target.MESSAGE)
    assert message.publish.body["version_id"] == version
    assert version in state.messages.versions  # approved before it was published


def test_confirming_an_effect_twice_is_a_no_op() -> None:
    state = opened()
    run(state, Freeze("Flom"), make_ctx())
    (effect,) = state.outbox.pending()
    assert len(run(state, ConfirmEffect(effect.effect_id), make_ctx()).events) == 1
    assert run(state, ConfirmEffect(effect.effect_id), make_ctx()).events == []
    assert state.outbox.pending() == []
    assert "unknown" in refused(state, ConfirmEffect("nope"), make_ctx()).reason


POST = "krise/v1/test/channel/facebook/in"
ACK = "krise/v1/test/staff/ansatt-001/ack"


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (POST, b"Hei, er skolen stengt?", "payload is not JSON"),
        (POST, b'{"id": "1", "text": "\xff\xfe"}', "not valid UTF-8"),
        (POST, b'["id", "text"]', "expected a JSON object, got list"),
        (POST, b'{"text": "mangler id"}', "wrong schema: id: Field required"),
        (POST, b'{"id": "1", "text": "x", "unexpected": 1}', "unexpected: Extra inputs"),
        (POST, b'{"id": "1", "text": "' + b"a" * 70_000 + b'"}', "payload too large"),
        ("krise/v1/test/something/else", b"{}", "not a krise topic"),
        ("krise/v1/naboby/channel/sms/in", b'{"id":"1","text":"x"}', "topic is for org 'naboby'"),
        ("krise/v1/test/message/current", b"{}", "does not accept message messages"),
        (ACK, b'{"staff_id":"ansatt-002","seq":1}', "another's"),
        # Poison that used to escape the parser and stall the whole inbound queue:
        (ACK, b'{"staff_id":"ansatt-001","seq":' + b"9" * 5000 + b"}", "a number has 5000"),
        (POST, b"[" * 40_000 + b"]" * 40_000, "payload too large"),
        (POST, b"[" * 20_000 + b"]" * 20_000, "nested 20000 deep"),
        (POST, b'{"id":"1","text":"x","meta":' + b'{"a":' * 900 + b"1" + b"}" * 901, "nested"),
        (POST, b'{"id":"1","text":"x","meta":{"n":NaN}}', "NaN is not allowed"),
        (ACK, b'{"staff_id":"ansatt-001","seq":true}', "wrong schema"),
        # An id that the console would show (markup, spaces, controls) is refused whole:
        ("krise/v1/test/presence/staff/[reverse]x", b'{"online":true}', "segment outside"),
        ("krise/v1/test/staff/ansatt 1/ack", b'{"staff_id":"ansatt 1","seq":1}', "segment"),
    ],
)
def test_bad_bus_input_is_journaled_as_rejected(topic: str, payload: bytes, reason: str) -> None:
    state = opened()
    decision = run(state, bus(topic, payload), make_ctx(actor="bus"))
    (event,) = decision.events
    assert isinstance(event, InboundRejected)
    assert reason in event.reason
    assert topic in event.reason  # the topic is named
    assert event.size == len(payload)
    assert len(event.excerpt) <= 200
    assert state.inbound.rejected == 1


def test_inbound_post_is_journaled_once_with_its_topic() -> None:
    state = opened()
    payload = {"id": "fb-1", "text": "Er vannet trygt?", "author": "Ola"}
    event, triaged = run(state, bus(POST, payload), make_ctx(actor="bus")).events
    assert isinstance(event, PostReceived)
    assert triaged.type == "question.triaged"  # type: ignore[attr-defined]
    assert event.channel == "facebook" and event.topic == POST
    assert event.post.text == "Er vannet trygt?"
    assert run(state, bus(POST, payload), make_ctx(actor="bus")).events == []  # redelivery
    assert list(state.inbound.posts) == ["facebook:fb-1"]


def test_an_id_number_in_a_post_is_masked_and_flagged() -> None:
    state = opened()
    payload = {"id": "sms-9", "text": "Mor har fnr 17057234881, hvor får hun vann?"}
    event = run(state, bus(POST, payload), make_ctx(actor="bus")).events[0]
    assert isinstance(event, PostReceived)
    assert event.masked == 1
    assert "17057234881" not in event.model_dump_json()
    assert "170572" in event.post.text  # the first six digits are kept
    assert state.inbound.posts["facebook:sms-9"].masked == 1


def test_an_id_number_in_a_rejected_payload_is_masked_in_the_excerpt() -> None:
    state = opened()
    (event,) = run(state, bus(POST, b"ikke json: 17057234881"), make_ctx(actor="bus")).events
    assert isinstance(event, InboundRejected)
    assert "17057234881" not in event.model_dump_json()


def test_presence_changes_are_journaled_only_when_they_change() -> None:
    state = opened()
    topic = "krise/v1/test/presence/staff/ansatt-001"
    (event,) = run(state, bus(topic, {"status": "online"}), make_ctx()).events
    assert isinstance(event, PresenceChanged) and event.online
    assert run(state, bus(topic, {"status": "online"}), make_ctx()).events == []
    (event,) = run(state, bus(topic, {"status": "offline"}), make_ctx()).events
    assert isinstance(event, PresenceChanged) and not event.online
    assert state.inbound.presence == {"staff/ansatt-001": False}


def test_a_bridges_intake_trouble_is_journaled_when_it_changes_and_ends_offline() -> None:
    state = opened()
    topic = "krise/v1/test/presence/bridge/bridge-epost"
    key = "bridge/bridge-epost"
    (event,) = run(state, bus(topic, {"status": "online"}), make_ctx()).events
    assert isinstance(event, PresenceChanged) and event.trouble == {}
    trouble = {"e-mail imap://h/INBOX": "polling failed: login refused"}
    (event,) = run(state, bus(topic, {"status": "online", "trouble": trouble}), make_ctx()).events
    assert isinstance(event, PresenceChanged) and event.online and event.trouble == trouble
    assert state.inbound.trouble == {key: trouble}
    assert "problem: polling failed: login refused" in describe(event, "nb")
    same = bus(topic, {"status": "online", "trouble": trouble})
    assert run(state, same, make_ctx()).events == []  # said again: nothing new
    (event,) = run(state, bus(topic, {"status": "online"}), make_ctx()).events
    assert event.trouble == {} and state.inbound.trouble == {}  # over
    run(state, bus(topic, {"status": "online", "trouble": trouble}), make_ctx())
    (event,) = run(state, bus(topic, {"status": "offline"}), make_ctx()).events
    assert state.inbound.trouble == {}  # an offline bridge says nothing of its intake
    # What a server quotes is journaled with ID numbers masked, as posts are.
    quoted = {"imap": "message UID 7 cannot be read: 'fnr 17057234881'"}
    (event,) = run(state, bus(topic, {"status": "online", "trouble": quoted}), make_ctx()).events
    assert isinstance(event, PresenceChanged) and "17057234881" not in event.trouble["imap"]
    assert "170572" in event.trouble["imap"]
    # Bounded: too many sources or too long a text is refused, named, and journaled.
    many = {f"source {i}": "x" for i in range(9)}
    (rejected,) = run(state, bus(topic, {"status": "online", "trouble": many}), make_ctx()).events
    assert isinstance(rejected, InboundRejected) and "trouble" in rejected.reason
    huge = {"source": "x" * 1001}
    (rejected,) = run(state, bus(topic, {"status": "online", "trouble": huge}), make_ctx()).events
    assert isinstance(rejected, InboundRejected) and "trouble" in rejected.reason


def test_freeze_and_lift_reasons_are_checked_for_id_numbers() -> None:
    state = opened()
    blocked = refused(state, Freeze("Ring Kari 17057234881"), make_ctx())
    assert "17057234881" not in blocked.reason and "170572" in blocked.reason
    assert "fødselsnummer" in blocked.text("nb")
    run(state, Freeze("Flom i sentrum"), make_ctx())
    refused(state, LiftFreeze("Over, takk til 17057234881"), make_ctx())
    refused(state, Freeze("Flom", notice=(("nb", "Fnr 170572 34881"),)), make_ctx())


def _replay(commands: list[tuple[object, str]]) -> IncidentState:
    ids = Ids()
    state = IncidentState()
    for command, actor in commands:
        decision = decide(state, command, make_ctx(actor, ids=ids))
        assert isinstance(decision, Accepted), decision
        fold(decision.events, state)
    return state


def test_decide_is_pure_the_same_commands_give_the_same_state_hash() -> None:
    """Every id comes from the context: a replay gives the very same state (drills)."""
    commands: list[tuple[object, str]] = [
        (OpenIncident("Flom"), "ola"),
        (Freeze("Flom i sentrum"), "kari"),
        (bus(POST, {"id": "1", "text": "Er skolen stengt?"}), "bus"),
        (bus("krise/v1/test/presence/staff/ansatt-001", {"status": "online"}), "bus"),
    ]
    first, second = _replay(commands), _replay(commands)
    assert state_hash(first) == state_hash(second)
    assert first.event_count == second.event_count == 6  # the post is also triaged
    effect = next(iter(first.outbox.effects.values()))
    assert isinstance(effect.publish.body, dict)
    assert json.dumps(effect.publish.body, sort_keys=True) == json.dumps(
        next(iter(second.outbox.effects.values())).publish.body, sort_keys=True
    )
