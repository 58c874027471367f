"""The questions view says what became of each asker's reply, as it is: a reply the
platform refused is shown failed (with why), never as "sent". Against a real mosquitto,
the console's own SMS bridge and a local HTTP server standing in for the SMS gateway."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from textual.widgets import DataTable

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.config import Settings
from krise_tui.console.app import ConsoleApp
from krise_tui.core.features.messages import DeliveryStatus
from krise_tui.runtime import ConsoleRuntime
from tests.conftest import client_for, eventually
from tests.consolekit import WAIT, questions_at, ready
from tests.corekit import TEST_ORG, answer_via
from tests.fakes import running

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
