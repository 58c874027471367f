"""Channel bridges against a real mosquitto and fake platforms, plus the org-file mapping.

The test plays the console: it signs ``channel.deliver`` envelopes with a :class:`Signer`
and publishes them as the ``console`` user; the bridge logs in as ``bridge-<channel>``
(the ACL lets it read only its channel's ``out`` and write its ``receipt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from cryptography.hazmat.primitives import serialization

from krise_tui.backoff import backoff_delay
from krise_tui.bridge import (
    DELIVER_TYPE,
    BridgeRuntime,
    BridgeStore,
    DeliveryTracker,
    Receipt,
    ReceiptStatus,
    RetryPolicy,
    run_bridge_cli,
)
from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Envelope, Signer
from krise_tui.channels import ApprovedMessage, Channel, ChannelConfigError, idempotency_key
from krise_tui.channels.email import EmailChannel
from krise_tui.channels.facebook import FacebookChannel
from krise_tui.channels.from_org import channel_from_def
from krise_tui.channels.mastodon import MastodonChannel
from krise_tui.channels.webhook import WebhookChannel
from krise_tui.channels.website import WebsiteChannel
from krise_tui.clock import FixedClock
from krise_tui.config import Settings
from krise_tui.playbook.loader import load_org
from krise_tui.playbook.models import ChannelDef, Org, SecretRef
from tests.conftest import client_for, eventually
from tests.fakes import MASTODON_TOKEN, FakePlatform, running, sample_message

ORG = "test"
ROOT = Path(__file__).resolve().parents[1]
EKSEMPEL = ROOT / "playbooks" / "orgs" / "eksempel.yaml"
WEBSITE_URL = "https://www.hattfjelldal.kommune.no/krise"
FAST = RetryPolicy(backoff_min=0.05, backoff_max=0.2, max_attempts=4, attempt_timeout=20)
"""Quick retries for tests (a platform's Retry-After still wins)."""


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePlatform]:
    monkeypatch.setenv("KRISE_TEST_MASTODON", MASTODON_TOKEN)
    with running() as fake:
        yield fake


def channel_def(**data: Any) -> ChannelDef:
    return ChannelDef.model_validate(data)


def mastodon_channel(platform: FakePlatform, tmp_path: Path) -> Channel:
    defn = channel_def(
        id="mastodon",
        kind="mastodon",
        endpoint=f"{platform.url}/api/v1/statuses",
        credentials={"env": "KRISE_TEST_MASTODON"},
    )
    return channel_from_def(defn, state_dir=tmp_path / "state", website_url=WEBSITE_URL)


def webhook_channel(platform: FakePlatform, tmp_path: Path) -> Channel:
    defn = channel_def(id="testchan", kind="webhook", endpoint=f"{platform.url}/hook/test")
    return channel_from_def(defn, state_dir=tmp_path / "state", website_url=WEBSITE_URL)


class Console:
    """The console's side of the wire: signs and publishes envelopes, collects receipts."""

    def __init__(self, mosquitto: MosquittoBroker, signer: Signer) -> None:
        self.endpoint = mosquitto.endpoint
        self.signer = signer
        self.receipts: list[dict[str, Any]] = []
        self._seq: dict[str, int] = {}
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None

    def envelope(
        self,
        channel: str,
        message: ApprovedMessage,
        effect_id: str,
        *,
        signer: Signer | None = None,
        seq: int | None = None,
        body: dict[str, Any] | None = None,
    ) -> Envelope:
        if seq is None:
            seq = self._seq.get(channel, 0) + 1
            self._seq[channel] = seq
        return (signer or self.signer).sign(
            type=DELIVER_TYPE,
            org=ORG,
            seq=seq,
            body=body
            or {
                "effect_id": effect_id,
                "channel": channel,
                "idempotency_key": idempotency_key(message, channel),
                "message": message.model_dump(mode="json"),
                "previous_remote_id": None,
            },
            issued_at=datetime.now(UTC),
            envelope_id=effect_id,
        )

    async def publish(self, channel: str, payload: Envelope | str) -> None:
        assert self._client is not None
        data = payload.to_json() if isinstance(payload, Envelope) else payload
        await self._client.publish(topics.channel_out(ORG, channel), data, qos=1)

    def statuses(self, effect_id: str) -> list[str]:
        return [r["status"] for r in self.receipts if r["effect_id"] == effect_id]

    def receipts_for(self, effect_id: str) -> list[dict[str, Any]]:
        return [r for r in self.receipts if r["effect_id"] == effect_id]

    async def _read(self) -> None:
        assert self._client is not None
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in self._client.messages:
                assert isinstance(message.payload, bytes)
                self.receipts.append(json.loads(message.payload))

    async def __aenter__(self) -> Console:
        self._client = client_for(self.endpoint, "console")
        await self._client.__aenter__()
        await self._client.subscribe(f"krise/v1/{ORG}/channel/+/receipt", qos=1)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)


def make_bridge(
    mosquitto: MosquittoBroker, channel_id: str, channel: Channel, signer: Signer, **extra: Any
) -> BridgeRuntime:
    endpoint = mosquitto.endpoint
    user = f"bridge-{channel_id}"
    assert endpoint.credentials is not None
    options: dict[str, Any] = {"policy": FAST, "keepalive": 5, **extra}
    return BridgeRuntime(
        host=endpoint.host,
        port=endpoint.port,
        org=ORG,
        channel_id=channel_id,
        channel=channel,
        username=user,
        password=endpoint.credentials.users()[user],
        public_keys=[signer.public_key],
        **options,
    )


@contextlib.asynccontextmanager
async def bridge_running(bridge: BridgeRuntime) -> AsyncIterator[BridgeRuntime]:
    await bridge.start()
    try:
        await bridge.wait_connected(10)
        yield bridge
    finally:
        await bridge.stop()


# --------------------------------------------------------------------------- bridges


async def test_website_delivery_writes_the_page_and_reports_sent_then_delivered(
    mosquitto: MosquittoBroker, signer: Signer, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    defn = channel_def(id="website", kind="website", endpoint=str(site))
    channel = channel_from_def(defn, state_dir=tmp_path / "state", website_url=WEBSITE_URL)
    message = sample_message()
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(make_bridge(mosquitto, "website", channel, signer)) as bridge,
    ):
        await console.publish("website", console.envelope("website", message, "eff-1"))
        await eventually(
            lambda: console.statuses("eff-1") == ["sent", "delivered"], what="receipts"
        )
        assert bridge.delivered == 1 and bridge.failed == 0
    page = site / "v" / f"{message.version_id}.html"
    assert page.exists() and "Kok drikkevannet" in page.read_text(encoding="utf-8")
    assert (site / "feed.atom").exists()
    sent, delivered = (Receipt.model_validate(r) for r in console.receipts_for("eff-1"))
    assert set(console.receipts_for("eff-1")[0]) == {
        "effect_id",
        "status",
        "reason",
        "remote_id",
        "retry_after",
        "permanent",
        "final",
        "attempt",
        "at",
    }
    assert sent.attempt == delivered.attempt == 1
    assert delivered.remote_id == f"{WEBSITE_URL}/v/{message.version_id}.html"
    assert delivered.reason is None and not delivered.permanent
    assert datetime.fromisoformat(console.receipts_for("eff-1")[1]["at"]).tzinfo is not None


async def test_mastodon_503_with_retry_after_then_delivered_posts_once(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    platform.fail_next(503, retry_after="1")
    channel = mastodon_channel(platform, tmp_path)
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(make_bridge(mosquitto, "mastodon", channel, signer)) as bridge,
    ):
        await console.publish("mastodon", console.envelope("mastodon", sample_message(), "e1"))
        await eventually(lambda: "delivered" in console.statuses("e1"), what="delivered")
        assert bridge.failed == 1 and bridge.delivered == 1
    assert console.statuses("e1") == ["sent", "failed", "sent", "delivered"]
    failed = console.receipts_for("e1")[1]
    assert failed["reason"].startswith("503 Service Unavailable")
    assert failed["retry_after"] == 1.0
    assert failed["permanent"] is False and failed["attempt"] == 1
    assert failed["final"] is False  # the bridge tries again by itself
    delivered = console.receipts_for("e1")[3]
    assert delivered["attempt"] == 2
    assert list(platform.statuses) == [delivered["remote_id"]]  # exactly one status
    assert len(platform.requests_to("POST", "/api/v1/statuses")) == 2


async def test_401_is_a_permanent_failure_with_no_further_attempts(
    mosquitto: MosquittoBroker,
    signer: Signer,
    platform: FakePlatform,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KRISE_TEST_MASTODON", "wrong-token")
    channel = mastodon_channel(platform, tmp_path)
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(make_bridge(mosquitto, "mastodon", channel, signer)) as bridge,
    ):
        await console.publish("mastodon", console.envelope("mastodon", sample_message(), "e1"))
        await eventually(lambda: "failed" in console.statuses("e1"), what="failed receipt")
        await eventually(lambda: not bridge.in_flight, what="the delivery to end")
        assert console.statuses("e1") == ["sent", "failed"]
    failed = console.receipts_for("e1")[1]
    assert failed["permanent"] is True and failed["final"] is True
    assert failed["reason"] == "401 Unauthorized: The access token is invalid"
    assert bridge.last_reason == failed["reason"]
    assert len(platform.requests) == 1
    assert platform.statuses == {}


async def test_a_hanging_endpoint_does_not_delay_another_effect(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    channel = webhook_channel(platform, tmp_path)
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(make_bridge(mosquitto, "testchan", channel, signer)) as bridge,
    ):
        platform.hang = True  # the request for the first effect never gets an answer
        first, second = sample_message(seed="a"), sample_message(seed="b")
        await console.publish("testchan", console.envelope("testchan", first, "slow"))
        await eventually(lambda: len(platform.requests) == 1, what="the first request")
        platform.hang = False
        await console.publish("testchan", console.envelope("testchan", second, "fast"))
        await eventually(lambda: "delivered" in console.statuses("fast"), what="second delivered")
        assert console.statuses("slow") == ["sent"]
        assert bridge.in_flight == {"slow"}
    assert [hook["key"] for hook in platform.hooks.values()] == [
        idempotency_key(second, "testchan")
    ]


async def test_forged_tampered_and_replayed_envelopes_are_never_delivered(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    channel = webhook_channel(platform, tmp_path)
    genuine = sample_message(seed="genuine")
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(make_bridge(mosquitto, "testchan", channel, signer)) as bridge,
    ):
        forged = console.envelope(
            "testchan", sample_message(seed="forged"), "forged", signer=Signer.generate()
        )
        await console.publish("testchan", forged)
        signed = console.envelope("testchan", sample_message(seed="tampered"), "tampered")
        data = json.loads(signed.to_json())
        data["body"]["message"]["variants"][0]["headline"] = "Alt er trygt"
        await console.publish("testchan", json.dumps(data))
        await console.publish("testchan", "not json at all")
        other_channel = console.envelope("mastodon", sample_message(seed="x"), "other", seq=50)
        await console.publish("testchan", other_channel)  # signed, but for another channel
        await console.publish("testchan", console.envelope("testchan", genuine, "ok"))
        stale = console.envelope("testchan", sample_message(seed="old"), "stale", seq=1)
        await console.publish("testchan", stale)  # a new id under an old seq: a replay
        await eventually(lambda: bridge.rejected == 5, what="five envelopes ignored")
        await eventually(lambda: "delivered" in console.statuses("ok"), what="genuine delivered")
        assert bridge.last_rejection is not None and "seq" in bridge.last_rejection
    assert {r["effect_id"] for r in console.receipts} == {"ok"}
    assert [hook["key"] for hook in platform.hooks.values()] == [
        idempotency_key(genuine, "testchan")
    ]


async def test_a_console_retry_delivers_again_without_posting_twice(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    channel = mastodon_channel(platform, tmp_path)
    first, second = sample_message(seed="a"), sample_message(seed="b")
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(make_bridge(mosquitto, "mastodon", channel, signer)) as bridge,
    ):
        envelope = console.envelope("mastodon", first, "e1")
        await console.publish("mastodon", envelope)
        await eventually(lambda: "delivered" in console.statuses("e1"), what="first delivery")
        # A newer envelope arrives before the console retries the older one.
        await console.publish("mastodon", console.envelope("mastodon", second, "e2"))
        await eventually(lambda: "delivered" in console.statuses("e2"), what="second delivery")
        await console.publish("mastodon", envelope)  # the retry: the very same envelope
        await eventually(
            lambda: console.statuses("e1") == ["sent", "delivered", "sent", "delivered"],
            what="the retry's receipts",
        )
        assert bridge.redeliveries == 1 and bridge.rejected == 0
    receipts = console.receipts_for("e1")
    assert receipts[1]["remote_id"] == receipts[3]["remote_id"]
    assert [r["attempt"] for r in receipts] == [1, 1, 2, 2]
    assert receipts[3]["reason"] == "already delivered (recorded in the ledger); not sent again"
    assert bridge.existing == 1
    key = idempotency_key(first, "mastodon")
    posts = platform.requests_to("POST", "/api/v1/statuses")
    assert [r.header("Idempotency-Key") for r in posts].count(key) == 1
    assert len(platform.statuses) == 2  # the first message once, and the second


async def test_a_console_retry_during_the_backoff_tries_again_at_once(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    platform.fail_next(502)
    slow = RetryPolicy(backoff_min=60, backoff_max=60, attempt_timeout=20)
    channel = mastodon_channel(platform, tmp_path)
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(make_bridge(mosquitto, "mastodon", channel, signer, policy=slow)) as bridge,
    ):
        envelope = console.envelope("mastodon", sample_message(), "e1")
        await console.publish("mastodon", envelope)
        await eventually(lambda: "failed" in console.statuses("e1"), what="the first failure")
        assert bridge.in_flight == {"e1"}  # waiting a minute before the next attempt
        await console.publish("mastodon", envelope)  # the operator presses "retry"
        await eventually(lambda: "delivered" in console.statuses("e1"), what="the retry")
        assert console.statuses("e1") == ["sent", "failed", "sent", "delivered"]
        assert bridge.redeliveries == 1 and not bridge.in_flight
    assert len(platform.statuses) == 1


async def test_a_signed_request_it_cannot_carry_out_is_a_permanent_failure(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    channel = mastodon_channel(platform, tmp_path)
    body = {"effect_id": "e1", "channel": "mastodon", "idempotency_key": "k", "message": {}}
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(make_bridge(mosquitto, "mastodon", channel, signer)) as bridge,
    ):
        await console.publish(
            "mastodon", console.envelope("mastodon", sample_message(), "e1", body=body)
        )
        await eventually(lambda: console.statuses("e1") == ["failed"], what="failed receipt")
        assert bridge.rejected == 1
    (receipt,) = console.receipts_for("e1")
    assert receipt["permanent"] is True and receipt["attempt"] == 0
    assert receipt["reason"].startswith("malformed delivery request: message.")
    assert platform.requests == []


async def test_reconnects_after_a_broker_restart_and_gets_what_was_sent_meanwhile(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    channel = webhook_channel(platform, tmp_path)
    console = Console(mosquitto, signer)
    bridge = make_bridge(
        mosquitto, "testchan", channel, signer, reconnect_min=1.0, reconnect_max=4.0
    )
    before, during = sample_message(seed="before"), sample_message(seed="during")
    async with bridge_running(bridge):
        async with client_for(mosquitto.endpoint, "console") as client:
            out = topics.channel_out(ORG, "testchan")
            await client.publish(out, console.envelope("testchan", before, "e1").to_json(), qos=1)
            await eventually(lambda: bridge.delivered == 1, what="delivery before the restart")
        await mosquitto.stop()  # SIGTERM: mosquitto saves the bridge's session
        # Lost, then one failed reconnect: the bridge now waits 1-2 s before the next try.
        await eventually(lambda: bridge.disconnects >= 2, what="a failed reconnect")
        await mosquitto.start()
        assert bridge.session is not None
        async with client_for(mosquitto.endpoint, "console") as client:
            await client.publish(out, console.envelope("testchan", during, "e2").to_json(), qos=1)
        assert bridge.session.connects == 1  # published while the bridge was offline
        await eventually(lambda: bridge.delivered == 2, what="the queued envelope", timeout=15)
        assert bridge.session.connects == 2
        await eventually(lambda: bridge.published == 4, what="all four receipts published")
    assert [(r.effect_id, r.status) for r in bridge.receipts] == [
        ("e1", ReceiptStatus.SENT),
        ("e1", ReceiptStatus.DELIVERED),
        ("e2", ReceiptStatus.SENT),
        ("e2", ReceiptStatus.DELIVERED),
    ]
    assert len(platform.hooks) == 2


async def test_the_replay_tracker_survives_a_bridge_restart(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    state = tmp_path / "state" / "testchan.seq.json"
    channel = webhook_channel(platform, tmp_path)
    async with Console(mosquitto, signer) as console:
        envelope = console.envelope("testchan", sample_message(), "e1", seq=7)
        async with bridge_running(
            make_bridge(mosquitto, "testchan", channel, signer, state_file=state)
        ) as bridge:
            await console.publish("testchan", envelope)
            await eventually(lambda: bridge.delivered == 1, what="delivery")
        store = BridgeStore(state)
        assert store.path is not None and store.path.stat().st_mode & 0o077 == 0
        assert store.load_tracker().accepted == {"e1": 7}
        # The delivery ended before the bridge stopped: nothing is left to resume.
        assert store.load_pending() == {}
        async with bridge_running(
            make_bridge(mosquitto, "testchan", channel, signer, state_file=state)
        ) as again:
            replay = console.envelope("testchan", sample_message(seed="x"), "e2", seq=7)
            await console.publish("testchan", replay)
            await console.publish("testchan", envelope)  # a console retry is still welcome
            await eventually(lambda: again.redeliveries == 1, what="the retry taken")
            await eventually(lambda: again.delivered == 1, what="the retry delivered")
            assert again.rejected == 1 and again.resumed == 0
            assert again.last_rejection is not None and "stale seq 7" in again.last_rejection
    assert console.statuses("e2") == []
    assert len(platform.hooks) == 1  # e1 once; the retry found it in the ledger


async def test_a_stopped_bridge_has_written_its_state_before_the_next_one_starts(
    mosquitto: MosquittoBroker,
    signer: Signer,
    platform: FakePlatform,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Slow disks: the bridge stops only once its last writes are on disk, so the next
    start neither resumes a delivery that had ended nor has its files overwritten."""
    write_now = BridgeStore._write_now

    def slow_write(self: BridgeStore, *args: Any) -> None:
        time.sleep(0.3)  # a loaded disk's fsync
        write_now(self, *args)

    monkeypatch.setattr(BridgeStore, "_write_now", slow_write)
    state = tmp_path / "state" / "testchan.seq.json"
    channel = webhook_channel(platform, tmp_path)
    async with Console(mosquitto, signer) as console:
        envelope = console.envelope("testchan", sample_message(), "e1", seq=3)
        async with bridge_running(
            make_bridge(mosquitto, "testchan", channel, signer, state_file=state)
        ) as bridge:
            await console.publish("testchan", envelope)
            await eventually(lambda: bridge.delivered == 1, what="delivery")
        assert BridgeStore(state).load_pending() == {}
        again = make_bridge(mosquitto, "testchan", channel, signer, state_file=state)
        async with bridge_running(again):
            assert again.resumed == 0 and not again.in_flight
    assert console.statuses("e1") == ["sent", "delivered"]
    assert BridgeStore(state).load_tracker().accepted == {"e1": 3}


async def test_receipts_are_stamped_by_the_bridges_clock(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    """A drill's bridges run on the drill's clock: their receipts say drill time."""
    drill_time = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
    channel = webhook_channel(platform, tmp_path)
    async with Console(mosquitto, signer) as console:
        envelope = console.envelope("testchan", sample_message(), "e1", seq=1)
        async with bridge_running(
            make_bridge(mosquitto, "testchan", channel, signer, clock=FixedClock(drill_time))
        ) as bridge:
            await console.publish("testchan", envelope)
            await eventually(lambda: len(console.receipts_for("e1")) == 2, what="receipts")
    assert [r.at for r in bridge.receipts] == [drill_time, drill_time]
    assert {datetime.fromisoformat(r["at"]) for r in console.receipts_for("e1")} == {drill_time}


async def test_a_state_write_runs_to_its_end_in_order_despite_a_cancellation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from krise_tui.wire.delivery import DeliveryRequest

    def request(effect_id: str) -> DeliveryRequest:
        message = sample_message(seed=effect_id)
        return DeliveryRequest(
            effect_id=effect_id,
            channel="testchan",
            idempotency_key=f"{message.version_id}:testchan",
            message=message,
        )

    store = BridgeStore(tmp_path / "x.seq.json")
    started, release = threading.Event(), threading.Event()
    write_now = BridgeStore._write_now

    def held_write(self: BridgeStore, *args: Any) -> None:
        started.set()
        release.wait(10)  # a slow disk, until the test lets it go
        write_now(self, *args)

    monkeypatch.setattr(BridgeStore, "_write_now", held_write)
    task = asyncio.create_task(store.put("e1", request("e1"), 1))
    await eventually(started.is_set, what="the write in its thread")
    task.cancel()  # the bridge stops mid-save
    with contextlib.suppress(asyncio.CancelledError):
        await task
    store.drop("e1")  # ended: deleted with the next write, after the one in its thread
    put = asyncio.create_task(store.put("e2", request("e2"), 2))
    release.set()
    await put
    assert list(BridgeStore(tmp_path / "x.seq.json").load_pending()) == ["e2"]
    store.drop("e2")  # nothing else to write: on disk within DROP_DELAY
    await eventually(
        lambda: not BridgeStore(tmp_path / "x.seq.json").load_pending(), what="the drop"
    )
    await store.put("e2", request("e2"), 2)  # re-sent after it had ended
    await store.flush()
    loaded = BridgeStore(tmp_path / "x.seq.json").load_pending()
    assert list(loaded) == ["e2"] and loaded["e2"].attempts == 2
    assert loaded["e2"].request == request("e2")
    store.close()


async def test_a_bridge_moves_its_old_state_files_into_the_database(tmp_path: Path) -> None:
    """The tracker and the pending deliveries were two JSON files: the first write moves
    them in (the bridge resumes what they held) and renames them."""
    from krise_tui.wire.delivery import DeliveryRequest

    state = tmp_path / "x.seq.json"
    tracker = DeliveryTracker(accepted=OrderedDict([("e0", 4)]))
    tracker.last[("k", "channel.deliver")] = (4, "e0")
    state.write_text(json.dumps(tracker.to_json()), encoding="utf-8")
    message = sample_message()
    old = {
        "e1": {
            "type": "channel.deliver",
            "request": {
                "effect_id": "e1",
                "channel": "testchan",
                "idempotency_key": f"{message.version_id}:testchan",
                "message": message.model_dump(mode="json"),
            },
            "attempts": 2,
        },
        "bad": {"type": "channel.nothing", "request": {}, "attempts": 1},
    }
    pending = tmp_path / "x.seq.pending.json"
    pending.write_text(json.dumps(old), encoding="utf-8")
    store = BridgeStore(state)
    assert store.load_tracker().accepted == {"e0": 4}
    loaded = store.load_pending()
    assert list(loaded) == ["e1"] and isinstance(loaded["e1"].request, DeliveryRequest)
    assert loaded["e1"].attempts == 2
    store.tracker_changed(store.load_tracker())
    await store.flush()  # the first write
    store.close()
    assert not state.exists() and not pending.exists()
    assert (tmp_path / "x.seq.json.migrated").exists()
    again = BridgeStore(state)
    assert again.load_tracker().last == {("k", "channel.deliver"): (4, "e0")}
    assert list(again.load_pending()) == ["e1"]


async def test_an_unreadable_state_database_is_named_and_the_bridge_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from krise_tui.wire.delivery import DeliveryRequest

    state = tmp_path / "x.seq.json"
    (tmp_path / "x.seq.db").write_bytes(b"not a database at all" * 100)
    store = BridgeStore(state)
    assert store.load_tracker().accepted == {} and store.load_pending() == {}
    assert "x.seq.db: cannot read the bridge state" in caplog.text
    assert "nothing is resumed" in caplog.text
    message = sample_message()
    request = DeliveryRequest(
        effect_id="e1",
        channel="testchan",
        idempotency_key=f"{message.version_id}:testchan",
        message=message,
    )
    await store.put("e1", request, 1)  # not stored: said, and no exception
    store.close()
    assert "x.seq.db: cannot save the bridge state" in caplog.text


def test_delivery_tracker_round_trip(signer: Signer) -> None:
    tracker = DeliveryTracker()
    now = datetime.now(UTC)
    older = signer.sign(type=DELIVER_TYPE, org=ORG, seq=1, body={}, issued_at=now, envelope_id="a")
    newer = signer.sign(type=DELIVER_TYPE, org=ORG, seq=2, body={}, issued_at=now, envelope_id="b")
    for env in (older, newer):
        assert tracker.classify(env).ok
        tracker.record(env)
    copy = DeliveryTracker.from_json(json.loads(json.dumps(tracker.to_json())))
    assert copy.classify(older).status == "duplicate"
    assert copy.classify(newer).status == "duplicate"
    replay = signer.sign(type=DELIVER_TYPE, org=ORG, seq=2, body={}, issued_at=now, envelope_id="c")
    assert copy.classify(replay).status == "rejected"
    with pytest.raises(ValueError, match="JSON object"):
        DeliveryTracker.from_json([])


def test_retry_policy_backs_off_within_bounds_and_honours_retry_after() -> None:
    import random

    policy = RetryPolicy()
    rng = random.Random(1)
    delays = [policy.delay(n, None, rng) for n in range(1, 12)]
    # krise_tui.backoff's rule: base·2^(n−1) capped, times a jitter factor in [0.5, 1].
    assert all(0.5 <= d <= 1.0 for d in delays[:1])
    assert all(30.0 <= d <= 60.0 for d in delays[7:])
    assert delays[-1] > delays[0]
    same = random.Random(7)
    assert policy.delay(3, None, same) == backoff_delay(3, base=1.0, cap=60.0, rng=random.Random(7))
    assert policy.delay(1, 30, rng) >= 30
    assert policy.delay(1, 10_000, rng) == policy.retry_after_max


# --------------------------------------------------------------------------- the CLI


async def test_run_bridge_cli_delivers_and_prints_receipts(
    mosquitto: MosquittoBroker,
    signer: Signer,
    platform: FakePlatform,
    tmp_path: Path,
    make_settings: Any,
) -> None:
    org_text = EKSEMPEL.read_text(encoding="utf-8")
    org_text = org_text.replace("slug: eksempel", f"slug: {ORG}").replace(
        "http://127.0.0.1:8081/api/v1/statuses", f"{platform.url}/api/v1/statuses"
    )
    org_text = org_text.replace("KRISE_MASTODON_TOKEN", "KRISE_TEST_MASTODON")
    org_file = tmp_path / "org.yaml"
    org_file.write_text(org_text, encoding="utf-8")
    public_key = tmp_path / "console.pub"
    public_key.write_bytes(
        signer.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    settings: Settings = make_settings(
        mosquitto.endpoint, user="bridge-mastodon", org_file=org_file, public_key=public_key
    )
    out, err, stop = io.StringIO(), io.StringIO(), asyncio.Event()
    task = asyncio.create_task(run_bridge_cli(settings, "mastodon", stop=stop, out=out, err=err))
    try:
        await eventually(lambda: "connected" in err.getvalue(), what="the bridge to connect")
        async with Console(mosquitto, signer) as console:
            await console.publish("mastodon", console.envelope("mastodon", sample_message(), "e9"))
            await eventually(lambda: "delivered" in out.getvalue(), what="a printed receipt")
    finally:
        stop.set()
        assert await task == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "mastodon e9 sent #1" in lines[0]
    assert "mastodon e9 delivered #1: 1100000" in lines[1]
    assert (settings.data_dir / "bridges" / "mastodon.seq.db").exists()


async def test_run_bridge_cli_explains_what_is_missing(make_settings: Any, tmp_path: Path) -> None:
    err = io.StringIO()
    assert await run_bridge_cli(make_settings(), "mastodon", err=err) == 2
    assert "no organisation file" in err.getvalue()
    err = io.StringIO()
    settings = make_settings(org_file=EKSEMPEL)
    assert await run_bridge_cli(settings, "tiktok", err=err) == 2
    assert "no channel 'tiktok'" in err.getvalue() and "nettside" in err.getvalue()
    err = io.StringIO()
    settings = make_settings(org_file=EKSEMPEL, public_key=tmp_path / "missing.pub")
    assert await run_bridge_cli(settings, "intranett", err=err) == 2  # no broker running
    assert "no running krise broker" in err.getvalue()


# --------------------------------------------------------------------------- org mapping


@pytest.fixture
def eksempel(monkeypatch: pytest.MonkeyPatch) -> Org:
    for name in ("KRISE_FACEBOOK_TOKEN", "KRISE_MASTODON_TOKEN", "KRISE_SMS_TOKEN"):
        monkeypatch.setenv(name, f"token-{name}")
    return load_org(EKSEMPEL)


def from_eksempel(org: Org, channel_id: str, tmp_path: Path) -> Channel:
    defn = next(c for c in org.channels if c.id == channel_id)
    return channel_from_def(
        defn, state_dir=tmp_path / "state", website_url=str(org.website), base_dir=tmp_path
    )


def test_eksempel_website(eksempel: Org, tmp_path: Path) -> None:
    channel = from_eksempel(eksempel, "nettside", tmp_path)
    assert isinstance(channel, WebsiteChannel)
    assert channel.name == "nettside"
    assert channel.config.directory == tmp_path / "nettside-ut"
    assert channel.config.base_url == "https://www.eksempel.kommune.no/"
    assert channel.config.cms_webhook is None


def test_eksempel_mastodon_endpoint_is_the_statuses_url(eksempel: Org, tmp_path: Path) -> None:
    channel = from_eksempel(eksempel, "mastodon", tmp_path)
    assert isinstance(channel, MastodonChannel)
    assert channel.config.base_url == "http://127.0.0.1:8081"
    assert channel.config.access_token == SecretRef(env="KRISE_MASTODON_TOKEN")
    assert channel.config.state_file == tmp_path / "state" / "mastodon.ledger.sqlite3"


def test_eksempel_facebook_feed_url(eksempel: Org, tmp_path: Path) -> None:
    channel = from_eksempel(eksempel, "facebook", tmp_path)
    assert isinstance(channel, FacebookChannel)
    assert channel.config.page_id == "facebook"
    assert channel.config.graph_url == "http://127.0.0.1:8081"
    assert channel.config.state_file == tmp_path / "state" / "facebook.ledger.sqlite3"


def test_eksempel_sms_is_a_gateway_webhook(eksempel: Org, tmp_path: Path) -> None:
    channel = from_eksempel(eksempel, "sms", tmp_path)
    assert isinstance(channel, WebhookChannel)
    assert channel.config.url == "http://127.0.0.1:8081/sms"
    assert channel.config.body == {"to": "broadcast", "text": "{sms_text}"}
    assert channel.config.headers == {"Authorization": "Bearer {env:KRISE_SMS_TOKEN}"}


def test_eksempel_intranet_webhook(eksempel: Org, tmp_path: Path) -> None:
    channel = from_eksempel(eksempel, "intranett", tmp_path)
    assert isinstance(channel, WebhookChannel)
    assert channel.config.url == "http://127.0.0.1:8081/intranett"
    assert channel.config.headers == {}
    assert channel.config.state_file == tmp_path / "state" / "intranett.ledger.sqlite3"
    memory = channel_def(
        id="intranett", kind="webhook", endpoint="https://x.example/h", options={"ledger": False}
    )
    in_memory = channel_from_def(memory, state_dir=tmp_path, website_url=WEBSITE_URL)
    assert isinstance(in_memory, WebhookChannel) and in_memory.config.state_file is None


def test_email_without_recipients_and_staff_are_clear_errors(eksempel: Org, tmp_path: Path) -> None:
    defn = channel_def(id="epost", kind="email", endpoint="smtp://127.0.0.1:8025")
    with pytest.raises(ChannelConfigError, match=r"channel 'epost' \(email\): missing option 'to'"):
        channel_from_def(defn, state_dir=tmp_path, website_url=WEBSITE_URL)
    with pytest.raises(ValueError, match="channel 'ansatte': kind staff has no bridge"):
        from_eksempel(eksempel, "ansatte", tmp_path)


def test_missing_secret_names_the_channel(tmp_path: Path) -> None:
    defn = channel_def(
        id="mastodon",
        kind="mastodon",
        endpoint="https://mastodon.example",
        credentials={"env": "KRISE_NOT_SET_ANYWHERE"},
    )
    with pytest.raises(ChannelConfigError, match=r"'mastodon'.*KRISE_NOT_SET_ANYWHERE"):
        channel_from_def(defn, state_dir=tmp_path, website_url=WEBSITE_URL)
    without = channel_def(id="mastodon", kind="mastodon", endpoint="https://mastodon.example")
    with pytest.raises(ChannelConfigError, match=r"'mastodon'.*missing credentials"):
        channel_from_def(without, state_dir=tmp_path, website_url=WEBSITE_URL)


def test_email_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRISE_TEST_SMTP", "hemmelig")
    defn = channel_def(
        id="epost",
        kind="email",
        endpoint="smtps://smtp.kommune.example:465",
        credentials={"env": "KRISE_TEST_SMTP"},
        options={"from": "krise@kommune.example", "to": "a@x.no, b@x.no", "username": "krise"},
    )
    channel = channel_from_def(defn, state_dir=tmp_path, website_url=WEBSITE_URL)
    assert isinstance(channel, EmailChannel)
    config = channel.config
    assert (config.host, config.port, config.use_tls, config.starttls) == (
        "smtp.kommune.example",
        465,
        True,
        False,
    )
    assert config.to == ["a@x.no", "b@x.no"]
    assert config.from_address == "krise@kommune.example"
    assert config.state_file == tmp_path / "epost.ledger.sqlite3"
    plain = channel_def(
        id="epost",
        kind="email",
        endpoint="smtp://127.0.0.1:8025",
        options={"from_address": "krise@kommune.example", "to": "a@x.no", "starttls": False},
    )
    channel = channel_from_def(plain, state_dir=tmp_path, website_url=WEBSITE_URL)
    assert isinstance(channel, EmailChannel)
    assert (channel.config.port, channel.config.starttls) == (8025, False)
    nameless = plain.model_copy(update={"credentials": defn.credentials})
    with pytest.raises(ChannelConfigError, match="missing option 'username'"):
        channel_from_def(nameless, state_dir=tmp_path, website_url=WEBSITE_URL)


def test_options_are_checked(tmp_path: Path) -> None:
    typo = channel_def(
        id="intranett", kind="webhook", endpoint="https://x.example/h", options={"methd": "PUT"}
    )
    with pytest.raises(ChannelConfigError, match=r"'intranett'.*unknown option.*'methd'"):
        channel_from_def(typo, state_dir=tmp_path, website_url=WEBSITE_URL)
    no_page = channel_def(
        id="facebook",
        kind="facebook",
        endpoint="https://graph.facebook.com/v19.0",
        credentials={"env": "X"},
    )
    with pytest.raises(ChannelConfigError, match=r"'facebook'.*missing option 'page_id'"):
        channel_from_def(no_page, state_dir=tmp_path, website_url=WEBSITE_URL)
    bad_body = channel_def(
        id="intranett", kind="webhook", endpoint="https://x.example/h", options={"body": "[1]"}
    )
    with pytest.raises(ChannelConfigError, match="'body' must be a JSON object"):
        channel_from_def(bad_body, state_dir=tmp_path, website_url=WEBSITE_URL)


def test_website_with_a_cms_url_and_overrides(tmp_path: Path) -> None:
    defn = channel_def(
        id="nettside",
        kind="website",
        endpoint="https://cms.kommune.example/hook",
        options={"base_url": "https://kommune.example/krise", "feed_limit": 10},
    )
    channel = channel_from_def(defn, state_dir=tmp_path, website_url=WEBSITE_URL)
    assert isinstance(channel, WebsiteChannel)
    assert channel.config.cms_webhook == "https://cms.kommune.example/hook"
    assert channel.config.directory == tmp_path / "website" / "nettside"
    assert channel.config.base_url == "https://kommune.example/krise/"
    assert channel.config.feed_limit == 10


async def test_sms_gateway_body_and_bearer_from_a_file(
    platform: FakePlatform, tmp_path: Path
) -> None:
    token = tmp_path / "sms-token"
    token.write_text("sms-secret\n", encoding="utf-8")
    defn = channel_def(
        id="sms",
        kind="sms",
        endpoint=f"{platform.url}/hook/sms",
        credentials={"file": str(token)},
        options={"to": "+4712345678", "sender": "Kommunen"},
    )
    channel = channel_from_def(defn, state_dir=tmp_path, website_url=WEBSITE_URL)
    message = sample_message()
    result = await channel.deliver(message, idempotency_key=idempotency_key(message, "sms"))
    assert result.ok, result.reason
    (request,) = platform.requests
    assert request.header("Authorization") == "Bearer sms-secret"
    assert request.fields["to"] == "+4712345678" and request.fields["from"] == "Kommunen"
    assert request.fields["text"].startswith("Kok drikkevannet\nhttps://")
