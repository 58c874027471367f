"""A flood of refused bus messages is said in the console (and the watch that counts)."""

from __future__ import annotations

import json
from collections.abc import Callable

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.config import Settings
from krise_tui.runtime.flood import FloodWatch, flood_text
from tests.conftest import client_for, eventually
from tests.corekit import running_console


def test_the_watch_counts_per_topic_within_its_window() -> None:
    now = [0.0]
    watch = FloodWatch(threshold=3, window=60.0, clock=lambda: now[0])
    for _ in range(2):
        watch.refused("krise/v1/test/staff/ansatt-001/ack")
    watch.refused("krise/v1/test/channel/sms/in")
    assert watch.flooding() == []  # below the threshold, each topic on its own
    watch.refused("krise/v1/test/staff/ansatt-001/ack")
    assert watch.flooding() == [("krise/v1/test/staff/ansatt-001/ack", 3)]
    now[0] = 59.0
    assert watch.flooding() == [("krise/v1/test/staff/ansatt-001/ack", 3)]
    now[0] = 61.0  # a minute without more: over
    assert watch.flooding() == []
    nb, en = flood_text([("a/b", 120), ("c/d", 100)])
    assert nb.startswith("! 120 ugyldige meldinger siste 1 min på a/b (og 1 emne(r) til)")
    assert en.startswith("! 120 invalid messages in the last 1 min on a/b (and 1 more")


async def test_a_misused_staff_password_flooding_its_topic_is_said_and_journaled(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    """Any staff password can send poison on its own ack topic as fast as the broker
    carries it; each refusal is journaled (nothing is dropped) and the journal grows.
    The console said nothing: now the banner names the topic while it lasts."""
    async with running_console(mosquitto, make_settings, signer) as runtime:
        now = [0.0]  # the watch's own clock: the test says when a minute has passed
        runtime.attention.flood_watch = FloodWatch(threshold=50, clock=lambda: now[0])
        topic = topics.staff_ack("test", "ansatt-002")
        async with client_for(mosquitto.endpoint, "ansatt-002") as intruder:
            for i in range(60):
                await intruder.publish(topic, f"not json {i}".encode(), qos=1)
        await eventually(lambda: runtime.state.inbound.rejected == 60, what="all journaled")
        said = runtime.concern("flood") or ""
        assert said.startswith(f"! 60 ugyldige meldinger siste 1 min på {topic}: et passord")
        english = runtime.concern("flood", "en") or ""
        assert english.startswith(f"! 60 invalid messages in the last 1 min on {topic}")
        now[0] = 61.0  # a minute with no more of it
        async with client_for(mosquitto.endpoint, "bridge-testchan") as bridge:
            body = json.dumps({"id": "ekte", "text": "Er vannet trygt?"})
            await bridge.publish(topics.channel_in("test", "testchan"), body, qos=1)
        await eventually(lambda: "testchan:ekte" in runtime.state.inbound.posts, what="post")
        await eventually(lambda: runtime.concern("flood") is None, what="over")
