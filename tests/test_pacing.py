"""Model work steps back while intake is in a storm (krise_tui.runtime.pacing)."""

from __future__ import annotations

import json
from collections.abc import Callable

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.config import Settings
from krise_tui.core.features.inbound import PostReceived
from krise_tui.core.features.rumours import RegisterRumour
from krise_tui.runtime.pacing import IntakeGauge
from tests.conftest import client_for, eventually
from tests.corekit import bus, make_ctx, opened, run, running_console

POST = "krise/v1/test/channel/sms/in"


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def posts(n: int) -> list[PostReceived]:
    state = opened()
    out: list[PostReceived] = []
    for i in range(n):
        events = run(state, bus(POST, {"id": f"p{i}", "text": "Hei"}), make_ctx("bus")).events
        out.extend(e for e in events if isinstance(e, PostReceived))
    return out


def test_the_gauge_counts_posts_in_the_last_window_only() -> None:
    clock = Clock()
    gauge = IntakeGauge(busy_rate=3, window=1.0, now=clock)
    state = opened()
    gauge.on_events(state, [*posts(2)])
    assert gauge.rate() == 2 and not gauge.busy
    clock.t += 0.5
    gauge.on_events(state, [*posts(1)])
    assert gauge.rate() == 3 and gauge.busy
    clock.t += 0.6  # the first two are older than the window now
    assert gauge.rate() == 1 and not gauge.busy
    clock.t += 1.0
    assert gauge.rate() == 0


async def test_calm_returns_at_once_when_quiet_and_after_the_longest_pause_in_a_storm() -> None:
    gauge = IntakeGauge(busy_rate=1, window=1.0, max_pause=0.2)
    assert await gauge.calm() == 0.0
    gauge.on_events(opened(), [*posts(5)])
    waited = await gauge.calm()
    assert 0.2 <= waited < 1.0  # a storm that does not end still lets the model move
    assert gauge.paused == waited


async def test_batching_waits_for_a_storm_to_pass_and_then_batches_everything(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    async with running_console(mosquitto, make_settings, signer) as runtime:
        gauge = runtime.intake_gauge
        assert gauge is not None and runtime.batching is not None
        await eventually(
            lambda: runtime.batching is not None and runtime.batching.ready,
            timeout=60,
            what="ready",
        )
        gauge.busy_rate, gauge.window, gauge.max_pause = 0.01, 60.0, 1.0  # any post: a storm
        async with client_for(mosquitto.endpoint, "bridge-sms") as bridge:
            for i, text in enumerate(["Er vannet trygt?", "Kan vi drikke vannet?", "Vann?"]):
                body = json.dumps({"id": f"q{i}", "text": text})
                await bridge.publish(topics.channel_in("test", "sms"), body, qos=1)
        qs = runtime.state.questions
        await eventually(lambda: len(qs.questions) == 3, what="journaled")
        await eventually(
            lambda: all(q.batch_id for q in qs.questions.values()), timeout=60, what="batched"
        )
        assert gauge.paused >= 1.0  # the batcher waited its longest pause first


async def test_a_rumour_registered_in_a_storm_backfills_once_intake_calms(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    async with running_console(mosquitto, make_settings, signer) as runtime:
        gauge = runtime.intake_gauge
        assert gauge is not None and runtime.matching is not None
        async with client_for(mosquitto.endpoint, "bridge-sms") as bridge:
            body = json.dumps(
                {"id": "e1", "text": "Hørte at demningen ved Svenskvollen har brast!"}
            )
            await bridge.publish(topics.channel_in("test", "sms"), body, qos=1)
        await eventually(lambda: len(runtime.state.inbound.posts) == 1, what="journaled")
        await runtime.matching.flush()
        gauge.busy_rate, gauge.window, gauge.max_pause = 0.01, 60.0, 1.0  # any post: a storm
        await runtime.submit(RegisterRumour("Demningen ved Svenskvollen har brast"))

        def sighted() -> bool:
            return len(runtime.state.rumours.rumours["r1"].sightings) == 1

        await eventually(sighted, timeout=60, what="backfilled")
        assert gauge.paused >= 1.0  # the backfill waited for intake first
