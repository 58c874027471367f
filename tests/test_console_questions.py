"""The questions view says what became of each asker's reply, as it is: a reply the
platform refused is shown failed (with why), never as "sent". Against a real mosquitto,
the console's own SMS bridge and a local HTTP server standing in for the SMS gateway."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from textual.widgets import DataTable, OptionList, Static

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.config import Settings
from krise_tui.console.app import ConsoleApp
from krise_tui.console.screens.dialogs import ChoiceScreen
from krise_tui.core.features.messages import DeliveryStatus
from krise_tui.runtime import ConsoleRuntime
from tests.conftest import client_for, eventually
from tests.consolekit import WAIT, questions_at, ready, showing, text_of
from tests.corekit import TEST_ORG, answer_via, console_settings
from tests.fakes import running

FLOOD = Path(__file__).resolve().parents[1] / "playbooks" / "flom-og-skred.yaml"
ASKERS = (
    ("s1", "Når kommer strømmen tilbake?", "+4791000001"),
    ("s2", "Når kommer strømmen tilbake igjen?", "+4791000002"),
)


async def test_a_refused_reply_is_shown_failed_with_why_not_sent(
    mosquitto: MosquittoBroker,
    make_settings: Callable[..., Settings],
    signer: Signer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KRISE_TEST_SMS", "sms-token")
    with running() as gateway:
        org = yaml.safe_load(TEST_ORG.read_text(encoding="utf-8"))
        org["channels"].append(
            {
                "id": "sms",
                "kind": "sms",
                "endpoint": f"{gateway.url}/hook/sms",
                "credentials": {"env": "KRISE_TEST_SMS"},
            }
        )
        org_file = tmp_path / "org.yaml"
        org_file.write_text(yaml.safe_dump(org, allow_unicode=True), encoding="utf-8")
        settings = make_settings(mosquitto.endpoint, org_file=org_file, operator="ola")
        runtime = ConsoleRuntime(settings, signer=signer)
        app = ConsoleApp(runtime)
        async with app.run_test(size=(140, 32)) as pilot:
            await ready(pilot, app, "ola", title="Strømbrudd")
            # Standing in for the SMS bridge's intake: the broker gives this client the
            # bridge's client id, so the console's own SMS bridge is put off the broker
            # meanwhile; it must be back (and subscribed) before the replies go out.
            sms_bridge = runtime.bridges["sms"].session
            assert sms_bridge is not None
            connects = sms_bridge.connects
            async with client_for(mosquitto.endpoint, "bridge-sms") as bridge:
                for post_id, text, number in ASKERS:
                    post = {"id": post_id, "text": text, "kind": "sms", "meta": {"from": number}}
                    body = json.dumps(post)
                    await bridge.publish(topics.channel_in("test", "sms"), body, qos=1)
            await eventually(
                lambda: sms_bridge.connects > connects and sms_bridge.connected,
                timeout=WAIT,
                what="the SMS bridge back on the broker",
            )
            qs = runtime.state.questions
            await eventually(
                lambda: all(
                    f"sms:{p}" in qs.questions and qs.questions[f"sms:{p}"].batch_id
                    for p, _, _ in ASKERS
                ),
                timeout=60,
                what="both questions batched",
            )
            batch_id = qs.resolve(qs.questions["sms:s1"].batch_id or "")
            asked = [k for k in qs.batches[batch_id].members if k.startswith("sms:")]
            # The gateway refuses the first reply it gets (a blocked number): final at once.
            gateway.fail_next(400, body={"error": "the number does not take SMS"})
            await answer_via(runtime, batch_id, "Strøm", "Strømmen er tilbake kl. 18.")
            replies = runtime.state.questions.replies
            await eventually(
                lambda: (
                    len(replies) == len(asked)
                    and all(
                        r.status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED)
                        for r in replies.values()
                    )
                ),
                timeout=WAIT,
                what="every reply ended",
            )
            failed = [r for r in replies.values() if r.status is DeliveryStatus.FAILED]
            assert len(failed) == 1 and "400" in (failed[0].reason or "")
            view = await questions_at(pilot, app, batch_id)
            batches = view.query_one("#batches", DataTable)
            await eventually(
                lambda: "✗ 1 feilet (p)" in str(batches.get_row(batch_id)[3]),
                what="the failed asker counted on the batch",
            )
            posts = view.query_one("#posts", DataTable)
            await eventually(lambda: posts.row_count == len(asked), what="the askers")
            shown = {k: str(posts.get_row(k)[3]) for k in asked}
            assert shown[failed[0].post_key].startswith("✗ feilet: 400")
            assert all(v == "✓ svart" for k, v in shown.items() if k != failed[0].post_key)
            # The number takes SMS again: `p` on the batch sends that one reply again (the
            # same request), and the view says it arrived.
            requests_before = len(gateway.requests)
            await pilot.press("p")
            await pilot.pause()
            assert "på nytt til 1" in str(app.screen.query_one("#question").render())
            await pilot.press("y")
            await eventually(
                lambda: failed[0].status is DeliveryStatus.DELIVERED,
                timeout=WAIT,
                what="the failed reply sent again and delivered",
            )
            assert len(replies) == len(asked)  # the same reply, not a new one
            assert len(gateway.requests) == requests_before + 1
            await eventually(
                lambda: str(posts.get_row(failed[0].post_key)[3]) == "✓ svart",
                what="the asker shown as answered",
            )
            await pilot.press("ctrl+q")


async def test_a_batch_like_an_anticipated_question_is_merged_into_it_with_one_key(
    mosquitto: MosquittoBroker,
    make_settings: Callable[..., Settings],
    signer: Signer,
    tmp_path: Path,
) -> None:
    # The flood playbook anticipates "Må jeg forlate hjemmet mitt?" with keywords
    # (evakuering, forlate, ...). A question about the evacuation that the model does
    # not place there opens its own batch; the view says which anticipated question it
    # looks like and why, and `g` merges it into that one (which keeps its answer).
    flood = yaml.safe_load(FLOOD.read_text(encoding="utf-8"))
    flood["channels"] = ["nettside", "ansatte"]  # the test org's channels
    playbook = tmp_path / "flom.yaml"
    playbook.write_text(yaml.safe_dump(flood, allow_unicode=True), encoding="utf-8")
    settings = console_settings(make_settings, mosquitto.endpoint, playbook=playbook)
    runtime = ConsoleRuntime(settings, signer=signer)
    app = ConsoleApp(runtime)
    async with app.run_test(size=(160, 32)) as pilot:
        await ready(pilot, app, "ola", title="Flom")
        qs = runtime.state.questions
        await eventually(
            lambda: any(b.seed_question_id == "ma-jeg-evakuere" for b in qs.batches.values()),
            timeout=WAIT,
            what="the anticipated questions seeded",
        )
        async with client_for(mosquitto.endpoint, "bridge-sms") as bridge:
            post = {"id": "e1", "text": "Hei! Gjelder evakueringen også oss i Storgata?"}
            await bridge.publish(topics.channel_in("test", "sms"), json.dumps(post), qos=1)
        await eventually(
            lambda: "sms:e1" in qs.questions and qs.questions["sms:e1"].batch_id is not None,
            timeout=60,
            what="the question batched",
        )
        own = qs.resolve(qs.questions["sms:e1"].batch_id or "")
        assert not qs.batches[own].seed_question_id  # the model alone did not place it
        view = await questions_at(pilot, app, own)
        summary = view.query_one("#q-summary", Static)
        await eventually(
            lambda: (
                f"{own} ligner «Må jeg forlate hjemmet mitt?» (evakuering): g slår sammen"
                in text_of(summary)
            ),
            what="the hint",
        )
        await pilot.press("g")
        await eventually(lambda: showing(app, ChoiceScreen), what="the batches")
        choices = app.screen.query_one("#choices", OptionList)
        first = str(choices.get_option_at_index(0).prompt)
        assert first.startswith("≈ q-ma-jeg-evakuere: ")
        await pilot.press("enter")
        await eventually(
            lambda: qs.batches[own].merged_into == "q-ma-jeg-evakuere",
            timeout=WAIT,
            what="merged into the anticipated question",
        )
        assert "sms:e1" in qs.batches["q-ma-jeg-evakuere"].members
        assert qs.batches["q-ma-jeg-evakuere"].suggested  # its prepared answer is kept
        await pilot.press("ctrl+q")
