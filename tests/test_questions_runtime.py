"""Questions and rumours in the running console: real mosquitto, the real model, restarts."""

from __future__ import annotations

import json
from collections.abc import Callable

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.config import Settings
from krise_tui.core.features.rumours import RegisterRumour
from krise_tui.runtime import ConsoleRuntime
from tests.conftest import client_for, eventually
from tests.corekit import console_settings, running_console

QUESTIONS = [
    ("a1", "Når kommer strømmen tilbake i sentrum?"),
    ("a2", "Når er strømmen tilbake?"),
    ("a3", "Kva tid kjem straumen att?"),
    ("b1", "Er skolen åpen i morgen?"),
    ("b2", "Har skolen stengt i morgen?"),
]


async def test_questions_are_triaged_and_batched_and_survive_a_restart(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    settings = console_settings(make_settings, mosquitto.endpoint)
    runtime = ConsoleRuntime(settings, signer=signer)
    await runtime.start()
    try:
        assert runtime.session is not None
        await runtime.session.wait_connected(5)
        async with client_for(mosquitto.endpoint, "bridge-sms") as bridge:
            for post_id, text in QUESTIONS:
                body = json.dumps({"id": post_id, "text": text, "kind": "sms"})
                await bridge.publish(topics.channel_in("test", "sms"), body, qos=1)
        qs = lambda: runtime.state.questions  # noqa: E731
        await eventually(lambda: len(qs().questions) == 5, what="5 triaged")
        await eventually(
            lambda: all(q.batch_id for q in qs().questions.values()), timeout=60, what="batched"
        )
        batch_of = {
            runtime.state.inbound.posts[q.key].post_id: qs().resolve(q.batch_id or "")
            for q in qs().questions.values()
        }
        assert batch_of["a1"] == batch_of["a2"] == batch_of["a3"]  # nynorsk joins bokmål
        assert batch_of["b1"] == batch_of["b2"] != batch_of["a1"]
        assert runtime.batching is not None and runtime.batching.backlog == 0
    finally:
        await runtime.stop()
    again = ConsoleRuntime(settings, signer=signer)
    await again.start()
    try:
        assert again.batching is not None
        await eventually(
            lambda: again.batching is not None and again.batching.ready, timeout=60, what="rebuilt"
        )
        # the rebuilt batcher puts a new paraphrase with its batch
        async with client_for(mosquitto.endpoint, "bridge-sms") as bridge:
            body = json.dumps({"id": "a4", "text": "Når får vi strømmen tilbake?"})
            await bridge.publish(topics.channel_in("test", "sms"), body, qos=1)
        q = lambda: again.state.questions.questions.get("sms:a4")  # noqa: E731
        await eventually(
            lambda: q() is not None and q().batch_id is not None, timeout=60, what="a4"
        )  # type: ignore[union-attr]
        assert again.state.questions.resolve(q().batch_id) == batch_of["a1"]  # type: ignore[union-attr, arg-type]
    finally:
        await again.stop()


async def test_a_post_repeating_a_known_rumour_is_recorded_as_a_sighting(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    async with running_console(mosquitto, make_settings, signer) as runtime:
        await runtime.submit(
            RegisterRumour("Demningen ved Svenskvollen har brast og vannet flommer over veien")
        )
        async with client_for(mosquitto.endpoint, "bridge-sms") as bridge:
            for post_id, text in [
                ("r1", "Hørte at demningen ved Svenskvollen har brast!! Vannet flommer over veien"),
                ("x1", "Når åpner biblioteket igjen etter flommen?"),
            ]:
                body = json.dumps({"id": post_id, "text": text})
                await bridge.publish(topics.channel_in("test", "sms"), body, qos=1)
        rumour = lambda: runtime.state.rumours.rumours["r1"]  # noqa: E731
        await eventually(lambda: len(rumour().sightings) == 1, timeout=60, what="a sighting")
        assert rumour().sightings[0].post_key == "sms:r1"
        assert runtime.matching is not None
        await runtime.matching.flush()
        assert [s.post_key for s in rumour().sightings] == ["sms:r1"]  # not the library post


async def test_a_rumour_registered_late_finds_the_posts_that_spread_it_before(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    async with running_console(mosquitto, make_settings, signer) as runtime:
        async with client_for(mosquitto.endpoint, "bridge-sms") as bridge:
            for post_id, text in [
                ("e1", "Hørte at demningen ved Svenskvollen har brast!! Vannet flommer over veien"),
                ("e2", "Når åpner biblioteket igjen etter flommen?"),
                (
                    "e3",
                    "Stemmer det at dammen ved Svenskvollen har sprukket? Veien står under vann",
                ),
            ]:
                body = json.dumps({"id": post_id, "text": text})
                await bridge.publish(topics.channel_in("test", "sms"), body, qos=1)
        posts = lambda: runtime.state.inbound.posts  # noqa: E731
        await eventually(lambda: len(posts()) == 3, what="3 posts journaled")
        assert runtime.matching is not None
        await runtime.matching.flush()  # matched against nothing: no rumour yet

        await runtime.submit(
            RegisterRumour("Demningen ved Svenskvollen har brast og vannet flommer over veien")
        )
        rumour = lambda: runtime.state.rumours.rumours["r1"]  # noqa: E731
        await eventually(lambda: len(rumour().sightings) >= 1, timeout=60, what="backfilled")
        await runtime.matching.flush()
        sightings = {s.post_key: s for s in rumour().sightings}
        assert "sms:e1" in sightings and "sms:e2" not in sightings
        # dated when the post came, not when it was matched; not a recurrence
        first = sightings["sms:e1"]
        assert first.seen_at == posts()["sms:e1"].received_at and not first.recurrence
        assert all(s.by == "matching" for s in sightings.values())
