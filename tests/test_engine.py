"""Engine: commands validated against state; bad bus input journaled as rejected, never raised."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from krise_tui.bus.envelope import Signer, Verifier
from krise_tui.core.engine import (
    Accepted,
    ConfirmEffect,
    Context,
    OpenIncident,
    PublishCurrentMessage,
    ReceiveFromBus,
    Rejection,
    decide,
)
from krise_tui.core.events import (
    CurrentMessageSet,
    InboundReceived,
    InboundRejected,
    OutboxRequested,
    PresenceChanged,
)
from krise_tui.core.state import IncidentState, fold

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


@pytest.fixture
def ctx(signer: Signer) -> Context:
    return Context(org="test", actor="kari", now=NOW, signer=signer, incident_id="inc-1")


def run(state: IncidentState, command: object, ctx: Context) -> Accepted:
    decision = decide(state, command, ctx)  # type: ignore[arg-type]
    assert isinstance(decision, Accepted), decision
    fold(decision.events, state)
    return decision


@pytest.fixture
def opened(ctx: Context) -> IncidentState:
    state = IncidentState()
    run(state, OpenIncident("Flom"), ctx)
    return state


def test_publish_before_opening_is_rejected(ctx: Context) -> None:
    decision = decide(IncidentState(), PublishCurrentMessage("hei"), ctx)
    assert decision == Rejection("open an incident first")


def test_incident_opens_once(opened: IncidentState, ctx: Context) -> None:
    decision = decide(opened, OpenIncident("Igjen"), ctx)
    assert isinstance(decision, Rejection)
    assert "already open" in decision.reason


@pytest.mark.parametrize(
    ("text", "reason"), [("   ", "the message is empty"), ("x" * 20_001, "too long")]
)
def test_bad_messages_are_rejected(
    opened: IncidentState, ctx: Context, text: str, reason: str
) -> None:
    decision = decide(opened, PublishCurrentMessage(text), ctx)
    assert isinstance(decision, Rejection)
    assert reason in decision.reason


def test_publish_makes_a_signed_retained_outbox_entry(
    opened: IncidentState, ctx: Context, signer: Signer
) -> None:
    decision = run(opened, PublishCurrentMessage("Rv73 er stengt."), ctx)
    set_event, outbox = decision.events
    assert isinstance(set_event, CurrentMessageSet)
    assert isinstance(outbox, OutboxRequested)
    assert outbox.topic == "krise/v1/test/message/current"
    assert outbox.retain and outbox.qos == 1
    verified = Verifier([signer.public_key], org="test").check(outbox.payload)
    assert verified.ok
    assert verified.envelope is not None
    assert verified.envelope.body["version_id"] == set_event.version_id
    assert verified.envelope.seq == 1
    # the same text again is refused; a new text advances the seq
    assert isinstance(decide(opened, PublishCurrentMessage("Rv73 er stengt."), ctx), Rejection)
    second = run(opened, PublishCurrentMessage("Rv73 er åpnet igjen."), ctx)
    assert second.events[1].seq == 2  # type: ignore[union-attr]
    assert opened.current_message is not None
    assert opened.current_message.text == "Rv73 er åpnet igjen."


def test_confirming_an_effect_twice_is_a_no_op(opened: IncidentState, ctx: Context) -> None:
    run(opened, PublishCurrentMessage("a"), ctx)
    effect = opened.pending_effects()[0]
    assert len(run(opened, ConfirmEffect(effect.effect_id), ctx).events) == 1
    assert run(opened, ConfirmEffect(effect.effect_id), ctx).events == []
    assert opened.pending_effects() == []
    assert isinstance(decide(opened, ConfirmEffect("nope"), ctx), Rejection)


POST_TOPIC = "krise/v1/test/channel/facebook/in"


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (POST_TOPIC, b"Hei, er skolen stengt?", "payload is not JSON"),
        (POST_TOPIC, b'{"id": "1", "text": "\xff\xfe"}', "not valid UTF-8"),
        (POST_TOPIC, b'["id", "text"]', "expected a JSON object, got list"),
        (POST_TOPIC, b'{"text": "mangler id"}', "wrong schema: id: Field required"),
        (POST_TOPIC, b'{"id": "1", "text": "x", "unexpected": 1}', "unexpected: Extra inputs"),
        (POST_TOPIC, b'{"id": "1", "text": ' + b'"' + b"a" * 70_000 + b'"}', "payload too large"),
        ("krise/v1/test/something/else", b"{}", "not a krise topic"),
        ("krise/v1/naboby/channel/sms/in", b'{"id":"1","text":"x"}', "topic is for org 'naboby'"),
        ("krise/v1/test/freeze", b"{}", "does not accept freeze messages"),
        ("krise/v1/test/staff/ansatt-001/ack", b'{"staff_id":"ansatt-002","seq":1}', "another's"),
    ],
)
def test_bad_bus_input_is_journaled_as_rejected(
    opened: IncidentState, ctx: Context, topic: str, payload: bytes, reason: str
) -> None:
    decision = run(opened, ReceiveFromBus(topic, payload), ctx)
    (event,) = decision.events
    assert isinstance(event, InboundRejected)
    assert reason in event.reason
    assert topic in event.reason  # the topic is named
    assert event.size == len(payload)
    assert opened.rejected_count == 1


def test_inbound_post_is_journaled_once(opened: IncidentState, ctx: Context) -> None:
    payload = json.dumps({"id": "fb-1", "text": "Er vannet trygt?", "author": "Ola"}).encode()
    first = run(opened, ReceiveFromBus(POST_TOPIC, payload), ctx)
    (event,) = first.events
    assert isinstance(event, InboundReceived)
    assert event.channel == "facebook"
    assert event.body["text"] == "Er vannet trygt?"
    assert run(opened, ReceiveFromBus(POST_TOPIC, payload), ctx).events == []  # QoS 1 redelivery
    assert opened.inbound_count == 1


def test_presence_changes_are_journaled_only_when_they_change(
    opened: IncidentState, ctx: Context
) -> None:
    topic = "krise/v1/test/presence/staff/ansatt-001"
    (event,) = run(opened, ReceiveFromBus(topic, b'{"status": "online"}'), ctx).events
    assert isinstance(event, PresenceChanged) and event.online
    assert run(opened, ReceiveFromBus(topic, b'{"status": "online"}'), ctx).events == []
    (event,) = run(opened, ReceiveFromBus(topic, b'{"status": "offline"}'), ctx).events
    assert isinstance(event, PresenceChanged) and not event.online
    assert opened.presence == {"staff/ansatt-001": False}
