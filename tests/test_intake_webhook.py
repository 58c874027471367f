"""The signed webhook intake (SMS gateway callback, website form) in a real bridge.

The intake's aiohttp server listens on 127.0.0.1; the test plays the gateway (signed
requests with httpx) and the console (a raw MQTT client logged in as ``console`` on the
fixture's mosquitto, counting what arrives on ``krise/v1/test/channel/+/in``). "Nothing
more arrived" is shown without sleeping: a last, different post is sent, and once it has
arrived everything sent before it would have (one publisher, one topic, QoS 1, in order).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from krise_tui.bridge import BridgeRuntime, run_bridge_cli
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.bus.session import NotConnectedError
from krise_tui.channels.from_org import channel_from_def
from krise_tui.config import Settings
from krise_tui.intake import Intake, intake_from_def
from krise_tui.intake.guard import SeenMemory, TokenBuckets
from krise_tui.intake.service import TROUBLE_OUTCOMES
from krise_tui.intake.webhook import WebhookIntake
from krise_tui.playbook.models import ChannelDef
from krise_tui.wire.inbound import InboundPost
from tests.conftest import client_for, eventually
from tests.fakes import FakePlatform, krise_webhook_request, running
from tests.test_bridge import EKSEMPEL, ORG, WEBSITE_URL, bridge_running, make_bridge

SECRET = b"gateway-shared-secret"


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    with running() as fake:
        yield fake


class InboundListener:
    """The console's side: a raw client as ``console`` collecting every ``in`` post."""

    def __init__(self, mosquitto: MosquittoBroker) -> None:
        self.endpoint = mosquitto.endpoint
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None

    def ids(self, channel: str | None = None) -> list[str]:
        return [
            post["id"]
            for topic, post in self.posts
            if channel is None or topic.split("/")[4] == channel
        ]

    async def _read(self) -> None:
        assert self._client is not None
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in self._client.messages:
                assert isinstance(message.payload, bytes)
                self.posts.append((str(message.topic), json.loads(message.payload)))

    async def __aenter__(self) -> InboundListener:
        self._client = client_for(self.endpoint, "console")
        await self._client.__aenter__()
        await self._client.subscribe(f"krise/v1/{ORG}/channel/+/in", qos=1)
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


def sms_intake(tmp_path: Path, **extra: Any) -> WebhookIntake:
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "path": "/inbound/sms",
        "secret": SECRET,
        "memory": SeenMemory(tmp_path / "sms.intake.seen.jsonl"),
        "default_kind": "sms",
        **extra,
    }
    return WebhookIntake("sms", **options)


def sms_bridge(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path, source: Any
) -> BridgeRuntime:
    defn = ChannelDef.model_validate(
        {"id": "sms", "kind": "sms", "endpoint": f"{platform.url}/hook/sms"}
    )
    channel = channel_from_def(defn, state_dir=tmp_path / "state", website_url=WEBSITE_URL)
    return make_bridge(mosquitto, "sms", channel, signer, intake=Intake("sms", [source]))


@contextlib.asynccontextmanager
async def sms_running(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path, **extra: Any
) -> AsyncIterator[tuple[WebhookIntake, BridgeRuntime]]:
    source = sms_intake(tmp_path, **extra)
    async with bridge_running(sms_bridge(mosquitto, signer, platform, tmp_path, source)) as bridge:
        await asyncio.wait_for(source.listening.wait(), 10)
        yield source, bridge


def sms(
    post_id: str, number: str = "+4791234567", text: str = "Er vannet trygt?"
) -> dict[str, Any]:
    return {"id": post_id, "from": number, "text": text}


async def send(
    source: WebhookIntake, post: dict[str, Any], *, timestamp: int | None = None
) -> httpx.Response:
    body, headers = krise_webhook_request(SECRET, post, timestamp=timestamp)
    async with httpx.AsyncClient() as client:
        return await client.post(source.url, content=body, headers=headers)


async def sentinel(source: WebhookIntake, listener: InboundListener) -> None:
    """Send one last post and wait for it: everything sent before it has arrived."""
    answer = await send(source, sms("sentinel", number="+4740000000"))
    assert answer.status_code == 200, answer.text
    await eventually(lambda: "sentinel" in listener.ids(), what="the last post")


# --------------------------------------------------------------------------- accepted


async def test_a_signed_sms_arrives_on_the_bus_exactly_once(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    async with (
        InboundListener(mosquitto) as listener,
        sms_running(mosquitto, signer, platform, tmp_path) as (source, bridge),
    ):
        body, headers = krise_webhook_request(SECRET, sms("gw-1"))
        async with httpx.AsyncClient() as client:
            first = await client.post(source.url, content=body, headers=headers)
            assert first.status_code == 200
            assert first.json() == {"status": "accepted", "id": "gw-1"}
            # The very same request again: a replay.
            replay = await client.post(source.url, content=body, headers=headers)
            assert replay.status_code == 409
        # The gateway retries with a fresh signature (its first answer was lost).
        retry = await send(source, sms("gw-1"), timestamp=int(headers["X-Krise-Timestamp"]) - 1)
        assert retry.status_code == 200 and retry.json()["status"] == "duplicate"
        await sentinel(source, listener)
        assert listener.ids() == ["gw-1", "sentinel"]
        topic, data = listener.posts[0]
        assert topic == f"krise/v1/{ORG}/channel/sms/in"
        post = InboundPost.model_validate(data)
        assert (post.kind, post.text, post.author) == ("sms", "Er vannet trygt?", "+4791234567")
        assert post.meta == {"from": "+4791234567"}  # where the reply goes
        assert post.received_at is not None
        assert source.outcomes.counts == {"accepted": 2, "replay": 1, "duplicate": 1}
        assert bridge.inbound_published == 2


async def test_bad_signatures_old_timestamps_and_bad_bodies_are_refused_and_not_published(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    async with (
        InboundListener(mosquitto) as listener,
        sms_running(mosquitto, signer, platform, tmp_path, max_body=2048) as (source, _),
    ):
        heard: list[str | None] = []
        source.trouble.listen(heard.append)  # what the console is told
        body, headers = krise_webhook_request(b"not-the-secret", sms("forged"))
        async with httpx.AsyncClient() as client:
            forged = await client.post(source.url, content=body, headers=headers)
            assert forged.status_code == 401
            # A wrong secret at the gateway looks just like this: said, in one fixed text.
            assert heard == [TROUBLE_OUTCOMES["bad_signature"]]
            forged = await client.post(source.url, content=body, headers=headers)
            assert heard == [TROUBLE_OUTCOMES["bad_signature"]]  # again: nothing new said
            body, headers = krise_webhook_request(SECRET, sms("tampered"))
            tampered = await client.post(
                source.url, content=body.replace(b"trygt", b"farlig"), headers=headers
            )
            assert tampered.status_code == 401
            unsigned = await client.post(source.url, content=body)
            assert unsigned.status_code == 401
            huge = sms("huge", text="x" * 5000)
            body, headers = krise_webhook_request(SECRET, huge)
            too_large = await client.post(source.url, content=body, headers=headers)
            assert too_large.status_code == 413
            body, headers = krise_webhook_request(SECRET, {"text": "no id"})
            malformed = await client.post(source.url, content=body, headers=headers)
            assert malformed.status_code == 400 and "id" in malformed.json()["reason"]
            body = b'{"id": "deep", "text": ' + b"[" * 100 + b"]" * 100 + b"}"
            _, headers = krise_webhook_request(SECRET, {})
            headers["X-Krise-Signature"] = krise_signature(headers["X-Krise-Timestamp"], body)
            deep = await client.post(source.url, content=body, headers=headers)
            assert deep.status_code == 400 and "nested" in deep.json()["reason"]
        old = await send(source, sms("old"), timestamp=1_000_000_000)  # 2001: replayed
        assert old.status_code == 401 and "window" in old.json()["reason"]
        assert heard[-1] == TROUBLE_OUTCOMES["stale"]
        await sentinel(source, listener)
        assert listener.ids() == ["sentinel"]
        assert heard[-1] is None  # a post taken: the trouble is over
        counts = source.outcomes.counts
        assert counts["bad_signature"] == 3 and counts["unsigned"] == 1
        assert counts["too_large"] == 1 and counts["malformed"] == 2 and counts["stale"] == 1


def krise_signature(stamp: str, body: bytes) -> str:
    from krise_tui.intake.guard import webhook_signature

    return webhook_signature(SECRET, stamp, body)


async def test_a_replay_is_refused_after_a_restart_too(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    body, headers = krise_webhook_request(SECRET, sms("gw-7"))
    async with (
        InboundListener(mosquitto) as listener,
        sms_running(mosquitto, signer, platform, tmp_path) as (source, _),
    ):
        async with httpx.AsyncClient() as client:
            assert (await client.post(source.url, content=body, headers=headers)).is_success
        await eventually(lambda: listener.ids() == ["gw-7"], what="the post")
    async with (
        InboundListener(mosquitto) as listener,
        sms_running(mosquitto, signer, platform, tmp_path) as (source, _),
    ):
        async with httpx.AsyncClient() as client:
            replay = await client.post(source.url, content=body, headers=headers)
        assert replay.status_code == 409
        retry = await send(source, sms("gw-7"), timestamp=int(headers["X-Krise-Timestamp"]) + 1)
        assert retry.json()["status"] == "duplicate"
        await sentinel(source, listener)
        assert listener.ids() == ["sentinel"]


# --------------------------------------------------------------------------- rate limits


async def test_a_sender_over_the_limit_gets_429_and_others_go_on(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    async with (
        InboundListener(mosquitto) as listener,
        sms_running(mosquitto, signer, platform, tmp_path, sender_limits=TokenBuckets(1, 2)) as (
            source,
            _,
        ),
    ):
        answers = [await send(source, sms(f"gw-{n}")) for n in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 429, 429]
        assert int(answers[2].headers["Retry-After"]) >= 1
        other = await send(source, sms("gw-other", number="+4798765432"))
        assert other.status_code == 200
        await sentinel(source, listener)
        assert listener.ids() == ["gw-0", "gw-1", "gw-other", "sentinel"]
        assert source.outcomes.counts["rate_limited_sender"] == 2
        # Held back, not lost: the id was not remembered, so a later retry is taken.
        assert not source.memory.seen("id:gw-2")


async def test_an_address_over_its_limit_gets_429_before_any_work(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    async with sms_running(
        mosquitto, signer, platform, tmp_path, address_limits=TokenBuckets(1, 2)
    ) as (source, bridge):
        codes = [
            (await send(source, sms(f"a-{n}", number=f"+47900000{n}"))).status_code
            for n in range(3)
        ]
        assert codes == [200, 200, 429]
        assert source.outcomes.counts["rate_limited_address"] == 1
        assert bridge.inbound_published == 2


# --------------------------------------------------------------------------- the bus away


async def test_when_the_bus_cannot_take_it_the_sender_is_told_to_retry(tmp_path: Path) -> None:
    source = sms_intake(tmp_path, publish_timeout=1.0)
    delivered: list[InboundPost] = []
    away = True

    async def sink(post: InboundPost) -> None:
        if away:
            raise NotConnectedError("the broker is away")
        delivered.append(post)

    intake = Intake("sms", [source])
    await intake.start(sink)
    try:
        await asyncio.wait_for(source.listening.wait(), 10)
        body, headers = krise_webhook_request(SECRET, sms("gw-9"))
        async with httpx.AsyncClient() as client:
            refused = await client.post(source.url, content=body, headers=headers)
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
            away = False
            # The very same request is taken now: a refused one is not a replay.
            taken = await client.post(source.url, content=body, headers=headers)
            assert taken.status_code == 200
    finally:
        await intake.stop()
    assert [p.id for p in delivered] == ["gw-9"]
    assert source.outcomes.counts == {"unavailable": 1, "accepted": 1}


# --------------------------------------------------------------------------- supervision


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_dead_intake_is_logged_at_error_and_restarted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The port is taken when the intake starts: it dies, says so, and comes back."""
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    source = sms_intake(tmp_path, port=port)
    intake = Intake("sms", [source], restart_min=0.05, restart_max=0.2, healthy_after=0.5)
    received: list[InboundPost] = []
    heard: list[tuple[str, str | None]] = []
    intake.on_trouble(lambda name, problem: heard.append((name, problem)))

    async def sink(post: InboundPost) -> None:
        received.append(post)

    caplog.set_level(logging.ERROR, logger="krise_tui.intake")
    await intake.start(sink)
    try:
        await eventually(lambda: intake.restarts >= 2, what="the intake to die and restart")
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert errors and "webhook 127.0.0.1" in errors[0].getMessage()
        assert "restarting in" in errors[0].getMessage() and errors[0].exc_info is not None
        # Whoever watches the intake (the console) is told what is wrong, and where.
        (problem,) = intake.trouble.values()
        assert problem.startswith("stopped (OSError") and "started again in" in problem
        assert heard[0][0] == source.name and heard[0][1] is not None
        blocker.close()
        await asyncio.wait_for(source.listening.wait(), 10)
        assert (await send(source, sms("after"))).status_code == 200
        assert [p.id for p in received] == ["after"]
        # Running again for healthy_after: the trouble is over, and that is said too.
        await eventually(lambda: intake.trouble == {}, what="the trouble to be over")
        assert heard[-1] == (source.name, None)
    finally:
        blocker.close()
        await intake.stop()


# --------------------------------------------------------------------------- org file, CLI


async def test_krise_bridge_runs_the_intake_from_the_org_file(
    mosquitto: MosquittoBroker,
    signer: Signer,
    platform: FakePlatform,
    tmp_path: Path,
    make_settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    monkeypatch.setenv("KRISE_TEST_SMS_SECRET", SECRET.decode())
    text = EKSEMPEL.read_text(encoding="utf-8").replace("slug: eksempel", f"slug: {ORG}")
    text = text.replace(
        "    endpoint: http://127.0.0.1:8081/sms\n    credentials: {env: KRISE_SMS_TOKEN}\n",
        f"    endpoint: {platform.url}/hook/sms\n"
        "    inbound:\n"
        f"      listen: 127.0.0.1:{port}\n"
        "      path: /sms/inn\n"
        "      secret: {env: KRISE_TEST_SMS_SECRET}\n"
        "      sender_per_minute: 30\n",
    )
    org_file = tmp_path / "org.yaml"
    org_file.write_text(text, encoding="utf-8")
    public_key = tmp_path / "console.pub"
    public_key.write_bytes(
        signer.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    settings: Settings = make_settings(
        mosquitto.endpoint, user="bridge-sms", org_file=org_file, public_key=public_key
    )
    out, err, stop = io.StringIO(), io.StringIO(), asyncio.Event()
    task = asyncio.create_task(
        run_bridge_cli(settings, "sms", stop=stop, out=out, err=err, intake_factory=intake_from_def)
    )
    url = f"http://127.0.0.1:{port}/sms/inn"
    try:
        async with InboundListener(mosquitto) as listener:
            await eventually(lambda: "connected" in err.getvalue(), what="the bridge to connect")
            assert f"intake listening on 127.0.0.1:{port}/sms/inn" in err.getvalue()
            body, headers = krise_webhook_request(SECRET, sms("cli-1"))

            await eventually(lambda: listening(port), what="the intake to listen")
            async with httpx.AsyncClient() as client:
                answer = await client.post(url, content=body, headers=headers)
            assert answer.status_code == 200
            await eventually(lambda: listener.ids("sms") == ["cli-1"], what="the post")
    finally:
        stop.set()
        assert await task == 0
    seen = settings.data_dir / "bridges" / "sms.intake.seen.jsonl"
    assert "id:cli-1" in seen.read_text(encoding="utf-8")


def test_intake_config_errors_name_the_channel(tmp_path: Path) -> None:
    defn = ChannelDef.model_validate(
        {
            "id": "sms",
            "kind": "sms",
            "endpoint": "https://sms.example/api",
            "inbound": {"listen": "127.0.0.1:8471", "secret": {"env": "KRISE_TEST_UNSET"}},
        }
    )
    with pytest.raises(
        ValueError, match=r"channel 'sms' \(sms\): inbound.secret: .*KRISE_TEST_UNSET"
    ):
        intake_from_def(defn, tmp_path)
    assert intake_from_def(defn.model_copy(update={"inbound": None}), tmp_path) is None
    for bad, message in [
        ({"listen": "127.0.0.1:8471"}, "needs secret"),
        ({"listen": "nowhere", "secret": {"env": "X"}}, "host:port"),
        ({"listen": "127.0.0.1:8471", "secret": "inline"}, "inline secret"),
        (
            {"listen": "127.0.0.1:8471", "secret": {"env": "X"}, "verify_token": {"env": "Y"}},
            "only for a facebook",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            ChannelDef.model_validate(
                {"id": "sms", "kind": "sms", "endpoint": "https://sms.example/api", "inbound": bad}
            )
