"""The Facebook page webhook in a real bridge: Meta's verification challenge, signed
deliveries of comments and Messenger messages, replays and rate limits.

The test plays Meta (GET challenge, POSTs signed with ``X-Hub-Signature-256`` over the
raw body, bodies shaped as the Webhooks reference shows them) and the console (a raw
MQTT client as ``console`` counting what reaches ``…/channel/facebook/in``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from krise_tui.bridge import BridgeRuntime
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.channels.from_org import channel_from_def
from krise_tui.intake import Intake, intake_from_def
from krise_tui.intake.facebook import FacebookIntake
from krise_tui.intake.guard import SeenMemory, TokenBuckets
from krise_tui.playbook.models import ChannelDef
from krise_tui.wire.inbound import InboundPost
from tests.conftest import eventually
from tests.fakes import (
    GRAPH_TOKEN,
    PAGE_ID,
    FakePlatform,
    messenger_event,
    meta_webhook_request,
    page_comment_event,
    page_event,
    running,
)
from tests.test_bridge import WEBSITE_URL, bridge_running, make_bridge
from tests.test_intake_webhook import InboundListener

APP_SECRET = b"meta-app-secret"
VERIFY_TOKEN = "krise-verify-7f3a"


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePlatform]:
    monkeypatch.setenv("KRISE_TEST_FACEBOOK", GRAPH_TOKEN)
    with running() as fake:
        yield fake


@contextlib.asynccontextmanager
async def facebook_running(
    mosquitto: MosquittoBroker,
    signer: Signer,
    platform: FakePlatform,
    tmp_path: Path,
    **extra: Any,
) -> AsyncIterator[tuple[FacebookIntake, BridgeRuntime]]:
    source = FacebookIntake(
        "facebook",
        host="127.0.0.1",
        port=0,
        path="/facebook",
        app_secret=APP_SECRET,
        verify_token=VERIFY_TOKEN,
        memory=SeenMemory(tmp_path / "facebook.intake.seen.jsonl"),
        **extra,
    )
    defn = ChannelDef.model_validate(
        {
            "id": "facebook",
            "kind": "facebook",
            "endpoint": f"{platform.url}/graph/{PAGE_ID}/feed",
            "credentials": {"env": "KRISE_TEST_FACEBOOK"},
        }
    )
    channel = channel_from_def(defn, state_dir=tmp_path / "state", website_url=WEBSITE_URL)
    bridge = make_bridge(
        mosquitto, "facebook", channel, signer, intake=Intake("facebook", [source])
    )
    async with bridge_running(bridge):
        await asyncio.wait_for(source.listening.wait(), 10)
        yield source, bridge


async def deliver(source: FacebookIntake, payload: dict[str, Any], **kw: Any) -> httpx.Response:
    body, headers = meta_webhook_request(kw.get("secret", APP_SECRET), payload)
    async with httpx.AsyncClient() as client:
        return await client.post(source.url, content=body, headers=headers)


async def sentinel(source: FacebookIntake, listener: InboundListener) -> None:
    answer = await deliver(
        source, page_event(changes=[page_comment_event("c-last", "siste", user="9999")])
    )
    assert answer.status_code == 200, answer.text
    await eventually(lambda: "c-last" in listener.ids(), what="the last post")


async def test_the_verification_challenge_is_answered_only_for_the_right_token(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    async with facebook_running(mosquitto, signer, platform, tmp_path) as (source, _):
        async with httpx.AsyncClient() as client:
            params = {
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "1158201444",
            }
            ok = await client.get(source.url, params=params)
            assert ok.status_code == 200 and ok.text == "1158201444"
            wrong = await client.get(source.url, params={**params, "hub.verify_token": "guess"})
            assert wrong.status_code == 403 and "1158201444" not in wrong.text
            mode = await client.get(source.url, params={**params, "hub.mode": "unsubscribe"})
            assert mode.status_code == 403
        assert source.outcomes.counts == {"verified": 1, "bad_verification": 2}


async def test_comments_and_messages_arrive_once_with_what_a_reply_needs(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    comment = page_comment_event(
        f"{PAGE_ID}_901_5001", "Når kommer vannet?", post_id=f"{PAGE_ID}_901"
    )
    own_reply = page_comment_event(
        f"{PAGE_ID}_901_5002", "Svar fra kommunen", user=PAGE_ID, name="Kommunen"
    )
    message = messenger_event("psid-42", "m_abc", "Hvor er vannposten?")
    echo = messenger_event("psid-42", "m_echo", "vårt svar")
    echo["message"]["is_echo"] = True
    payload = page_event(changes=[comment, own_reply], messaging=[message, echo])
    async with (
        InboundListener(mosquitto) as listener,
        facebook_running(mosquitto, signer, platform, tmp_path) as (source, _),
    ):
        answer = await deliver(source, payload)
        assert answer.status_code == 200 and answer.text == "EVENT_RECEIVED"
        # Meta delivers the same body again (our 200 was lost): nothing new is published.
        again = await deliver(source, payload)
        assert again.status_code == 200
        await sentinel(source, listener)
        assert listener.ids() == [f"{PAGE_ID}_901_5001", "m_abc", "c-last"]
        posts = [InboundPost.model_validate(data) for _, data in listener.posts]
        assert (posts[0].kind, posts[0].author, posts[0].text) == (
            "comment",
            "Kari Nordmann",
            "Når kommer vannet?",
        )
        assert posts[0].meta == {
            "comment_id": f"{PAGE_ID}_901_5001",
            "post_id": f"{PAGE_ID}_901",
            "parent_id": f"{PAGE_ID}_901",
            "from_id": "7001",
        }
        assert posts[0].reply_to == f"{PAGE_ID}_901"
        assert (posts[1].kind, posts[1].meta) == ("message", {"psid": "psid-42", "mid": "m_abc"})
        assert source.outcomes.counts["duplicate"] == 2


async def test_a_bad_signature_is_refused_and_nothing_is_published(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    payload = page_event(changes=[page_comment_event("c-1", "forfalsket")])
    async with (
        InboundListener(mosquitto) as listener,
        facebook_running(mosquitto, signer, platform, tmp_path) as (source, _),
    ):
        forged = await deliver(source, payload, secret=b"someone-else")
        assert forged.status_code == 401
        # The app secret in the org file may be wrong: the console is told.
        assert isinstance(source.trouble.problem, str)
        assert "signature does not match" in source.trouble.problem
        body, _ = meta_webhook_request(APP_SECRET, payload)
        async with httpx.AsyncClient() as client:
            unsigned = await client.post(source.url, content=body)
        assert unsigned.status_code == 401
        not_a_page = await deliver(source, {"object": "user", "entry": []})
        assert not_a_page.status_code == 400
        await sentinel(source, listener)
        assert listener.ids() == ["c-last"]
        assert source.trouble.problem is None  # a comment taken: over
        assert source.outcomes.counts["bad_signature"] == 2


async def test_a_sender_over_the_limit_is_held_back_for_metas_retry(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    flood = [page_comment_event(f"c-{n}", f"spam {n}", user="666") for n in range(3)]
    other = page_comment_event("c-ok", "et ekte spørsmål", user="7001")
    payload = page_event(changes=[*flood, other])
    async with (
        InboundListener(mosquitto) as listener,
        facebook_running(
            mosquitto, signer, platform, tmp_path, sender_limits=TokenBuckets(1, 2)
        ) as (source, _),
    ):
        answer = await deliver(source, payload)
        assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 1
        await sentinel(source, listener)
        assert listener.ids() == ["c-0", "c-1", "c-ok", "c-last"]
        assert source.outcomes.counts["rate_limited_sender"] == 1
        assert not source.memory.seen("id:c-2")  # a later retry brings it in


def test_the_org_file_builds_the_facebook_intake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRISE_TEST_APP_SECRET", APP_SECRET.decode())
    monkeypatch.setenv("KRISE_TEST_VERIFY", VERIFY_TOKEN)
    defn = ChannelDef.model_validate(
        {
            "id": "facebook",
            "kind": "facebook",
            "endpoint": f"https://graph.facebook.com/v19.0/{PAGE_ID}/feed",
            "credentials": {"env": "KRISE_TEST_FACEBOOK"},
            "inbound": {
                "listen": "127.0.0.1:8472",
                "path": "/facebook/webhook",
                "secret": {"env": "KRISE_TEST_APP_SECRET"},
                "verify_token": {"env": "KRISE_TEST_VERIFY"},
            },
        }
    )
    intake = intake_from_def(defn, tmp_path)
    assert intake is not None
    [source] = intake.sources
    assert isinstance(source, FacebookIntake)
    assert (source.port, source.path, source.app_secret) == (8472, "/facebook/webhook", APP_SECRET)
    assert source.verify_token == VERIFY_TOKEN
    without = defn.inbound.model_dump() if defn.inbound else {}
    without.pop("verify_token")
    with pytest.raises(ValueError, match="needs verify_token"):
        ChannelDef.model_validate({**defn.model_dump(exclude={"inbound"}), "inbound": without})
