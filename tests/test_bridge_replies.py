"""Replies, hides and the Q&A page through a bridge: signed ``channel.reply``,
``channel.hide`` and ``channel.qa`` envelopes from the console, carried out by the
adapters against the fake platforms, reported with receipts; and never a second reply
when the bridge process is killed with ``kill -9`` right after the platform acted.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Envelope, Signer
from krise_tui.channels.base import EXERCISE_LABEL, reply_marker
from krise_tui.channels.from_org import channel_from_def
from krise_tui.channels.website import QA_TYPE
from krise_tui.wire.delivery import HIDE_TYPE, REPLY_TYPE
from tests.conftest import eventually
from tests.fakes import GRAPH_TOKEN, MASTODON_TOKEN, PAGE_ID, FakePlatform, running
from tests.test_bridge import (
    ORG,
    WEBSITE_URL,
    Console,
    bridge_running,
    channel_def,
    make_bridge,
)
from tests.test_bridge_crash import bridge_process, killed_after_the_platform_acted

ANSWER = "Vannposten ved rådhuset er åpen hele døgnet. Ta med egen kanne."
SIGNATURE = "Kari Nordmann, kriseleder"
_SEQ = itertools.count(1)


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePlatform]:
    monkeypatch.setenv("KRISE_TEST_MASTODON", MASTODON_TOKEN)
    monkeypatch.setenv("KRISE_TEST_FACEBOOK", GRAPH_TOKEN)
    with running() as fake:
        yield fake


def signed(signer: Signer, kind: str, body: dict[str, Any], *, seq: int | None = None) -> Envelope:
    """A console envelope of ``kind`` (each type is its own seq stream)."""
    return signer.sign(
        type=kind,
        org=ORG,
        seq=next(_SEQ) if seq is None else seq,
        body=body,
        issued_at=datetime.now(UTC),
        envelope_id=str(body["effect_id"]),
    )


def reply_body(
    channel: str,
    post_id: str,
    *,
    effect_id: str = "r1",
    kind: str = "post",
    meta: dict[str, Any] | None = None,
    exercise: bool = False,
) -> dict[str, Any]:
    return {
        "effect_id": effect_id,
        "channel": channel,
        "idempotency_key": f"answer-1:{channel}:{post_id}",
        "to": {"post_id": post_id, "kind": kind, "meta": meta or {}},
        "text": ANSWER,
        "website_url": WEBSITE_URL,
        "signature": SIGNATURE,
        "exercise": exercise,
    }


def mastodon_channel(platform: FakePlatform, tmp_path: Path) -> Any:
    defn = channel_def(
        id="mastodon",
        kind="mastodon",
        endpoint=platform.url,
        credentials={"env": "KRISE_TEST_MASTODON"},
    )
    return channel_from_def(defn, state_dir=tmp_path / "state", website_url=WEBSITE_URL)


def facebook_channel(platform: FakePlatform, tmp_path: Path) -> Any:
    defn = channel_def(
        id="facebook",
        kind="facebook",
        endpoint=f"{platform.url}/graph/{PAGE_ID}/feed",
        credentials={"env": "KRISE_TEST_FACEBOOK"},
    )
    return channel_from_def(defn, state_dir=tmp_path / "state", website_url=WEBSITE_URL)


# --------------------------------------------------------------------------- in process


async def test_a_reply_envelope_answers_the_asker_and_reports_receipts(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    status = platform.mention("ola@example.social", "Er vannet trygt?", visibility="unlisted")
    meta = {"status_id": status["id"], "acct": "ola@example.social", "visibility": "unlisted"}
    channel = mastodon_channel(platform, tmp_path)
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(make_bridge(mosquitto, "mastodon", channel, signer)),
    ):
        body = reply_body("mastodon", status["id"], meta=meta)
        envelope = signed(signer, REPLY_TYPE, body)
        await console.publish("mastodon", envelope)
        await eventually(lambda: "delivered" in console.statuses("r1"), what="the reply")
        [reply] = platform.replies_to(status["id"])
        assert console.receipts_for("r1")[-1]["remote_id"] == reply["id"]
        assert reply["visibility"] == "unlisted"
        # The console's retry of the same envelope: answered from the ledger.
        await console.publish("mastodon", envelope)
        await eventually(lambda: console.statuses("r1").count("delivered") == 2, what="retry")
    assert console.statuses("r1") == ["sent", "delivered", "sent", "delivered"]
    assert len(platform.requests_to("POST", "/api/v1/statuses")) == 1


async def test_hide_and_what_a_channel_cannot_do(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    comment = platform.comment("Navngitt personangrep")
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(
            make_bridge(mosquitto, "facebook", facebook_channel(platform, tmp_path), signer)
        ),
        bridge_running(
            make_bridge(mosquitto, "mastodon", mastodon_channel(platform, tmp_path), signer)
        ),
    ):
        hide = {"effect_id": "h1", "channel": "facebook", "post_id": comment, "reason": "angrep"}
        await console.publish("facebook", signed(signer, HIDE_TYPE, hide))
        await eventually(lambda: "delivered" in console.statuses("h1"), what="the hide")
        assert platform.comments[comment]["is_hidden"] is True
        on_mastodon = {**hide, "effect_id": "h2", "channel": "mastodon"}
        await console.publish("mastodon", signed(signer, HIDE_TYPE, on_mastodon))
        await eventually(lambda: "failed" in console.statuses("h2"), what="the refusal")
        refusal = console.receipts_for("h2")[-1]
        assert refusal["permanent"] and refusal["final"]
        assert refusal["reason"] == (
            "the mastodon channel 'mastodon' cannot carry out a hide request"
        )


async def test_a_drill_reply_to_a_real_channel_is_refused_with_a_receipt(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    comment = platform.comment("Øvingsspørsmål")
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(
            make_bridge(mosquitto, "facebook", facebook_channel(platform, tmp_path), signer)
        ),
    ):
        body = reply_body(
            "facebook", comment, kind="comment", meta={"comment_id": comment}, exercise=True
        )
        await console.publish("facebook", signed(signer, REPLY_TYPE, body))
        await eventually(lambda: "failed" in console.statuses("r1"), what="the refusal")
        refusal = console.receipts_for("r1")[-1]
        assert refusal["permanent"] and refusal["reason"].startswith(f"{EXERCISE_LABEL}:")
    assert platform.thread(comment) == []
    assert platform.requests_to("POST", f"/graph/{comment}/comments") == []


async def test_a_drill_hide_on_a_real_channel_is_refused_with_a_receipt(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    comment = platform.comment("Et ekte innlegg med samme id som i øvelsen")
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(
            make_bridge(mosquitto, "facebook", facebook_channel(platform, tmp_path), signer)
        ),
    ):
        hide = {
            "effect_id": "h1",
            "channel": "facebook",
            "post_id": comment,
            "reason": "angrep (øvelse)",
            "exercise": True,
        }
        await console.publish("facebook", signed(signer, HIDE_TYPE, hide))
        await eventually(lambda: "failed" in console.statuses("h1"), what="the refusal")
        refusal = console.receipts_for("h1")[-1]
        assert refusal["permanent"] and refusal["reason"].startswith(f"{EXERCISE_LABEL}:")
        assert "hide" in refusal["reason"]
    assert platform.comments[comment].get("is_hidden") is not True
    assert platform.requests_to("POST", f"/graph/{comment}") == []


async def test_a_malformed_reply_is_refused_with_a_receipt(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(
            make_bridge(mosquitto, "mastodon", mastodon_channel(platform, tmp_path), signer)
        ) as bridge,
    ):
        body = reply_body("mastodon", "1")
        del body["text"]
        await console.publish("mastodon", signed(signer, REPLY_TYPE, body))
        await eventually(lambda: "failed" in console.statuses("r1"), what="the refusal")
        assert console.receipts_for("r1")[-1]["reason"] == (
            "malformed reply request: text: Field required"
        )
        assert bridge.rejected == 1
    assert platform.requests == []


async def test_the_website_bridge_puts_answers_on_the_qa_page(
    mosquitto: MosquittoBroker, signer: Signer, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    defn = channel_def(id="website", kind="website", endpoint=str(site))
    channel = channel_from_def(defn, state_dir=tmp_path / "state", website_url=WEBSITE_URL)
    body = {
        "effect_id": "qa1",
        "channel": "website",
        "idempotency_key": "answer-1:1:website",
        "org_name": "Hattfjelldal kommune",
        "entry": {
            "batch_id": "drikkevann",
            "question": "Kan vi drikke vannet?",
            "answer": ANSWER,
            "answered_at": "2026-11-27T13:00:00+00:00",
            "signature": SIGNATURE,
        },
    }
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(make_bridge(mosquitto, "website", channel, signer)),
    ):
        await console.publish("website", signed(signer, QA_TYPE, body))
        await eventually(lambda: "delivered" in console.statuses("qa1"), what="the Q&A page")
    assert console.receipts_for("qa1")[-1]["remote_id"] == f"{WEBSITE_URL}/qa.html#q-drikkevann"
    page = (site / "qa.html").read_text(encoding="utf-8")
    assert "Kan vi drikke vannet?" in page and ANSWER in page


# --------------------------------------------------------------------------- kill -9


async def test_facebook_reply_killed_after_posting_is_answered_once_after_restart(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    comment = platform.comment("Når åpner skolen igjen?")
    body = reply_body(
        "facebook", comment, effect_id="e1", kind="comment", meta={"comment_id": comment}
    )
    async with (
        Console(mosquitto, signer) as console,
        bridge_process("facebook", mosquitto, signer, platform, tmp_path) as bridge,
    ):
        await bridge.start()
        envelope = signed(signer, REPLY_TYPE, body)
        await killed_after_the_platform_acted(bridge, console, platform, envelope)
        [posted] = platform.thread(comment)
        # The operator re-sends while the bridge is down; then it comes back, resumes the
        # interrupted reply from its pending file, and looks before it answers again.
        await console.publish("facebook", envelope)
        await bridge.start()
        await eventually(
            lambda: "delivered" in console.statuses("e1"), what="the reply after the restart"
        )
        await eventually(lambda: not _pending(tmp_path, "facebook"), what="nothing pending")
    assert platform.thread(comment) == [posted]
    assert len(platform.requests_to("POST", f"/graph/{comment}/comments")) == 1
    delivered = [r for r in console.receipts_for("e1") if r["status"] == "delivered"]
    assert {r["remote_id"] for r in delivered} == {posted["id"]}
    assert delivered[0]["reason"].startswith(
        f"already answered (found by marker «{reply_marker(body['idempotency_key'])}»"
    )


async def test_mastodon_reply_killed_after_posting_is_answered_once_after_restart(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    status = platform.mention("ola@example.social", "Er bussen i rute?")
    meta = {"status_id": status["id"], "acct": "ola@example.social", "visibility": "public"}
    body = reply_body("mastodon", status["id"], effect_id="e1", meta=meta)
    async with (
        Console(mosquitto, signer) as console,
        bridge_process("mastodon", mosquitto, signer, platform, tmp_path) as bridge,
    ):
        await bridge.start()
        envelope = signed(signer, REPLY_TYPE, body)
        await killed_after_the_platform_acted(bridge, console, platform, envelope)
        platform.expire_idempotency_keys()  # down longer than Mastodon keeps a key
        await bridge.start()
        await eventually(lambda: "delivered" in console.statuses("e1"), what="the resumed reply")
    [reply] = platform.replies_to(status["id"])
    assert len(platform.requests_to("POST", "/api/v1/statuses")) == 1
    delivered = console.receipts_for("e1")[-1]
    assert delivered["remote_id"] == reply["id"] and delivered["attempt"] == 2


def _pending(tmp_path: Path, channel: str) -> bool:
    from krise_tui.bridge import BridgeStore

    return bool(BridgeStore(tmp_path / "data" / "bridges" / f"{channel}.seq.json").load_pending())


async def test_the_pending_deliveries_keep_the_kind_of_each_request(tmp_path: Path) -> None:
    """Replies resume as replies; entries written before replies existed (in the old
    JSON file) are deliveries."""
    from krise_tui.bridge import BridgeStore
    from krise_tui.wire.delivery import DeliveryRequest, ReplyRequest
    from tests.fakes import sample_message

    message = sample_message()
    old = {  # as a bridge before replies existed wrote it: no type
        "d1": {
            "request": {
                "effect_id": "d1",
                "channel": "sms",
                "idempotency_key": f"{message.version_id}:sms",
                "message": message.model_dump(mode="json"),
            },
            "attempts": 1,
        }
    }
    (tmp_path / "sms.seq.pending.json").write_text(json.dumps(old), encoding="utf-8")
    store = BridgeStore(tmp_path / "sms.seq.json")
    reply = ReplyRequest.model_validate(reply_body("sms", "gw-1", meta={"from": "+4791234567"}))
    await store.put("r1", reply, 2)
    store.close()
    loaded = BridgeStore(tmp_path / "sms.seq.json").load_pending()
    assert isinstance(loaded["r1"].request, ReplyRequest) and loaded["r1"].attempts == 2
    assert loaded["r1"].request == reply
    assert isinstance(loaded["d1"].request, DeliveryRequest)
