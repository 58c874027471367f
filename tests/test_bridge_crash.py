"""Never a second public post: bridges killed mid-delivery, and operators' re-sends.

The bridge under test is a real ``krise bridge CHANNEL`` process (``python -m krise_tui
bridge …``) against a real mosquitto and the fake platforms of :mod:`tests.fakes`. The
fake does the work of a posting request and then holds its answer, so a ``kill -9``
lands exactly in the window the bug lived in: the platform has the post, the bridge has
not written it down. The test plays the console (it signs and publishes the envelopes,
and re-sends the same one as an operator's "send again" does).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from krise_tui.bridge import BridgeStore
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Envelope, Signer
from krise_tui.channels import Channel, idempotency_key
from krise_tui.channels.base import version_marker
from krise_tui.channels.from_org import channel_from_def
from tests.conftest import eventually
from tests.fakes import (
    GRAPH_TOKEN,
    MASTODON_TOKEN,
    PAGE_ID,
    FakePlatform,
    running,
    sample_message,
)
from tests.test_bridge import (
    EKSEMPEL,
    ORG,
    WEBSITE_URL,
    Console,
    bridge_running,
    channel_def,
    make_bridge,
)

SMS_TOKEN = "sms-test-token"
STARTUP = 30.0
"""Seconds a bridge process gets to start and connect (a cold Python import included)."""


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    with running() as fake:
        yield fake


# --------------------------------------------------------------------------- a process


def org_file(tmp_path: Path, platform: FakePlatform) -> Path:
    """The sample org with its social channels pointed at the fake platforms."""
    text = EKSEMPEL.read_text(encoding="utf-8").replace("slug: eksempel", f"slug: {ORG}")
    head, _, rest = text.partition("channels:\n")
    _, _, tail = rest.partition("\n\n")
    channels = f"""channels:
  - id: nettside
    kind: website
    endpoint: {tmp_path / "site"}
  - id: facebook
    kind: facebook
    endpoint: {platform.url}/graph/{PAGE_ID}/feed
    credentials: {{env: KRISE_TEST_FACEBOOK}}
  - id: mastodon
    kind: mastodon
    endpoint: {platform.url}/api/v1/statuses
    credentials: {{env: KRISE_TEST_MASTODON}}
    options:
      idempotency_window: 0
  - id: sms
    kind: sms
    endpoint: {platform.url}/hook/sms
    credentials: {{env: KRISE_TEST_SMS}}
  - id: ansatte
    kind: staff
"""
    path = tmp_path / "org.yaml"
    path.write_text(head + channels + "\n" + tail, encoding="utf-8")
    return path


@dataclass
class BridgeProcess:
    """``krise bridge CHANNEL`` as a child process, its output collected line by line."""

    channel: str
    env: dict[str, str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    proc: asyncio.subprocess.Process | None = None
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        self.out.clear()
        self.err.clear()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "krise_tui",
            "bridge",
            self.channel,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            asyncio.create_task(_collect(self.proc.stdout, self.out)),
            asyncio.create_task(_collect(self.proc.stderr, self.err)),
        ]
        connected = f"krise bridge {self.channel}: connected"
        await eventually(
            lambda: (
                any(connected in line for line in self.err)
                or self.proc is None
                or self.proc.returncode is not None
            ),
            timeout=STARTUP,
            what=f"the {self.channel} bridge to connect",
        )
        assert self.proc.returncode is None, "\n".join(self.err)

    async def kill(self) -> None:
        """``kill -9``: no clean-up, no last receipt, no ledger write."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert await self.proc.wait() == -signal.SIGKILL
        await asyncio.gather(*self._readers)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for reader in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
    async for raw in stream:
        into.append(raw.decode("utf-8", "replace").rstrip("\n"))


@contextlib.asynccontextmanager
async def bridge_process(
    channel: str,
    mosquitto: MosquittoBroker,
    signer: Signer,
    platform: FakePlatform,
    tmp_path: Path,
) -> AsyncIterator[BridgeProcess]:
    endpoint = mosquitto.endpoint
    assert endpoint.credentials is not None
    user = f"bridge-{channel}"
    public_key = tmp_path / "console.pub"
    public_key.write_bytes(
        signer.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    config = tmp_path / "krise.toml"
    config.write_text(
        f'org_file = "{org_file(tmp_path, platform)}"\n'
        f'public_key = "{public_key}"\n'
        f'data_dir = "{tmp_path / "data"}"\n'
        "[broker]\n"
        f'host = "{endpoint.host}"\n'
        f"port = {endpoint.port}\n"
        f'username = "{user}"\n'
        f'password = "{endpoint.credentials.users()[user]}"\n'
        "keepalive = 5\n",
        encoding="utf-8",
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KRISE_")},
        "KRISE_CONFIG": str(config),
        "KRISE_TEST_FACEBOOK": GRAPH_TOKEN,
        "KRISE_TEST_MASTODON": MASTODON_TOKEN,
        "KRISE_TEST_SMS": SMS_TOKEN,
    }
    process = BridgeProcess(channel, env)
    try:
        yield process
    finally:
        await process.stop()


async def killed_after_the_platform_acted(
    bridge: BridgeProcess, console: Console, platform: FakePlatform, envelope: Envelope
) -> None:
    """Deliver ``envelope``; kill the bridge once the platform has acted, before it knows."""
    channel = bridge.channel
    platform.hold_after_effect = True
    await console.publish(channel, envelope)
    await eventually(
        lambda: platform.held == 1 and console.statuses("e1") == ["sent"],
        what="the platform to act while its answer is held",
    )
    await bridge.kill()
    platform.release()  # the answer now goes to a dead socket
    platform.hold_after_effect = False


# --------------------------------------------------------------------------- kill -9


async def test_facebook_killed_after_posting_restarts_and_posts_nothing_more(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    message = sample_message()
    async with (
        Console(mosquitto, signer) as console,
        bridge_process("facebook", mosquitto, signer, platform, tmp_path) as bridge,
    ):
        await bridge.start()
        envelope = console.envelope("facebook", message, "e1")
        await killed_after_the_platform_acted(bridge, console, platform, envelope)
        [post_id] = platform.posts
        # The operator re-sends while the bridge is down (the broker queues it), then the
        # bridge comes back: it resumes the interrupted delivery and gets the re-send.
        await console.publish("facebook", envelope)
        await bridge.start()
        await eventually(
            lambda: "delivered" in console.statuses("e1"), what="a delivery after the restart"
        )
        assert len(platform.requests_to("POST", f"/graph/{PAGE_ID}/feed")) == 1
        assert list(platform.posts) == [post_id]
        delivered = [r for r in console.receipts_for("e1") if r["status"] == "delivered"]
        assert {r["remote_id"] for r in delivered} == {post_id}
        assert delivered[0]["reason"] == (
            f"already on the platform (found by marker «{version_marker(message)}» on the "
            "page); not posted again"
        )
        assert platform.requests_to("GET", f"/graph/{PAGE_ID}/posts")  # it looked first
        assert any(f"facebook e1 delivered #2: {post_id}" in line for line in bridge.out)


async def test_a_bridge_killed_with_a_dozen_posts_in_flight_finishes_each_once(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    """kill -9 while twelve deliveries wait for the platform's answers (each posted, none
    known): the restarted bridge resumes all twelve from its state database, finds each
    post by its marker, and posts none of them again."""
    n = 12
    async with (
        Console(mosquitto, signer) as console,
        bridge_process("facebook", mosquitto, signer, platform, tmp_path) as bridge,
    ):
        await bridge.start()
        platform.hold_after_effect = True
        for i in range(n):
            message = sample_message(seed=f"v{i}")
            await console.publish("facebook", console.envelope("facebook", message, f"e{i}"))
        await eventually(lambda: platform.held == n, what="every post made, no answer given")
        await bridge.kill()
        platform.release()
        platform.hold_after_effect = False
        store = BridgeStore(tmp_path / "data" / "bridges" / "facebook.seq.json")
        assert len(store.load_pending()) == n  # all on disk before their attempts
        await bridge.start()
        await eventually(
            lambda: all("delivered" in console.statuses(f"e{i}") for i in range(n)),
            what="every delivery finished after the restart",
        )
        assert len(platform.requests_to("POST", f"/graph/{PAGE_ID}/feed")) == n
        assert len(platform.posts) == n
        await eventually(lambda: store.load_pending() == {}, what="nothing left pending")


async def test_mastodon_killed_after_posting_and_past_the_key_window_posts_once(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    message = sample_message()
    async with (
        Console(mosquitto, signer) as console,
        bridge_process("mastodon", mosquitto, signer, platform, tmp_path) as bridge,
    ):
        await bridge.start()
        envelope = console.envelope("mastodon", message, "e1")
        await killed_after_the_platform_acted(bridge, console, platform, envelope)
        [status_id] = platform.statuses
        platform.expire_idempotency_keys()  # down longer than Mastodon keeps a key
        await console.publish("mastodon", envelope)
        await bridge.start()
        await eventually(
            lambda: "delivered" in console.statuses("e1"), what="a delivery after the restart"
        )
        assert len(platform.requests_to("POST", "/api/v1/statuses")) == 1
        assert list(platform.statuses) == [status_id]
        delivered = [r for r in console.receipts_for("e1") if r["status"] == "delivered"]
        assert {r["remote_id"] for r in delivered} == {status_id}
        assert delivered[0]["reason"].startswith("already on the platform (found by marker")


async def test_sms_gateway_killed_after_sending_gets_the_same_key_and_sends_once(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    message = sample_message()
    key = idempotency_key(message, "sms")
    async with (
        Console(mosquitto, signer) as console,
        bridge_process("sms", mosquitto, signer, platform, tmp_path) as bridge,
    ):
        await bridge.start()
        envelope = console.envelope("sms", message, "e1")
        await killed_after_the_platform_acted(bridge, console, platform, envelope)
        await console.publish("sms", envelope)
        await bridge.start()
        await eventually(
            lambda: "delivered" in console.statuses("e1"), what="a delivery after the restart"
        )
        assert list(platform.hooks) == ["sms-1"]  # the gateway de-duplicated the repeat
        sends = platform.requests_to("POST", "/hook/sms")
        assert [r.header("Idempotency-Key") for r in sends] == [key] * len(sends)
        delivered = [r for r in console.receipts_for("e1") if r["status"] == "delivered"]
        assert {r["remote_id"] for r in delivered} == {"sms-1"}
        assert delivered[0]["reason"] == (
            f"sent again with the same Idempotency-Key {key} after an attempt with an unknown "
            "outcome; the gateway de-duplicates on it"
        )


async def test_a_bridge_stopped_mid_delivery_resumes_it_at_the_next_start(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    """No re-send at all: the restarted bridge finishes what it had accepted."""
    message = sample_message()
    async with (
        Console(mosquitto, signer) as console,
        bridge_process("facebook", mosquitto, signer, platform, tmp_path) as bridge,
    ):
        await bridge.start()
        await killed_after_the_platform_acted(
            bridge, console, platform, console.envelope("facebook", message, "e1")
        )
        await bridge.start()
        await eventually(
            lambda: console.statuses("e1") == ["sent", "sent", "delivered"],
            what="the resumed delivery",
        )
        resumed = console.receipts_for("e1")
        assert [r["attempt"] for r in resumed] == [1, 2, 2]  # counting on after the crash
        assert resumed[2]["remote_id"] in platform.posts and len(platform.posts) == 1
        store = BridgeStore(tmp_path / "data" / "bridges" / "facebook.seq.json")
        await eventually(lambda: store.load_pending() == {}, what="done")


# --------------------------------------------------------------------------- re-send


def facebook_channel(platform: FakePlatform, tmp_path: Path, monkeypatch: Any) -> Channel:
    monkeypatch.setenv("KRISE_TEST_FACEBOOK", GRAPH_TOKEN)
    defn = channel_def(
        id="facebook",
        kind="facebook",
        endpoint=f"{platform.url}/graph/{PAGE_ID}/feed",
        credentials={"env": "KRISE_TEST_FACEBOOK"},
    )
    return channel_from_def(defn, state_dir=tmp_path / "state", website_url=WEBSITE_URL)


async def test_a_re_send_after_a_final_failure_finds_the_post_and_does_not_post(
    mosquitto: MosquittoBroker,
    signer: Signer,
    platform: FakePlatform,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Graph posted but answered 500, then could not be read: final failure. The
    operator re-sends once Graph is back: the post is found, nothing is posted."""
    platform.fail_next(500, after_effect=True)
    platform.fail_next(503, times=3)
    channel = facebook_channel(platform, tmp_path, monkeypatch)
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(make_bridge(mosquitto, "facebook", channel, signer)) as bridge,
    ):
        envelope = console.envelope("facebook", sample_message(), "e1")
        await console.publish("facebook", envelope)
        await eventually(
            lambda: any(r.get("final") for r in console.receipts_for("e1")),
            what="the final failure",
        )
        await eventually(lambda: not bridge.in_flight, what="the delivery to end")
        failures = [r for r in console.receipts_for("e1") if r["status"] == "failed"]
        assert [(r["final"], r["permanent"]) for r in failures] == [(False, False)] * 3 + [
            (True, False)
        ]
        assert failures[-1]["reason"].endswith(
            "(gave up after 4 attempts); the last attempt may have reached the platform "
            "(a re-send checks first, or repeats the same key)"
        )
        [post_id] = platform.posts
        await console.publish("facebook", envelope)  # the operator's "send again"
        await eventually(lambda: "delivered" in console.statuses("e1"), what="the re-send")
        delivered = console.receipts_for("e1")[-1]
        assert delivered["remote_id"] == post_id and delivered["final"] is False
        assert delivered["reason"].startswith("already on the platform (found by marker")
        assert bridge.redeliveries == 1 and bridge.existing == 1
    assert len(platform.requests_to("POST", f"/graph/{PAGE_ID}/feed")) == 1
    assert list(platform.posts) == [post_id]


async def test_a_re_send_posts_when_the_platform_does_not_have_it(
    mosquitto: MosquittoBroker,
    signer: Signer,
    platform: FakePlatform,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform.fail_next(400, body={"error": {"message": "(#100) Invalid parameter", "code": 100}})
    channel = facebook_channel(platform, tmp_path, monkeypatch)
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(make_bridge(mosquitto, "facebook", channel, signer)) as bridge,
    ):
        envelope = console.envelope("facebook", sample_message(), "e1")
        await console.publish("facebook", envelope)
        await eventually(lambda: "failed" in console.statuses("e1"), what="the refusal")
        refused = console.receipts_for("e1")[1]
        assert refused["permanent"] is True and refused["final"] is True
        await eventually(lambda: not bridge.in_flight, what="the delivery to end")
        await console.publish("facebook", envelope)
        await eventually(lambda: "delivered" in console.statuses("e1"), what="the re-send")
        delivered = console.receipts_for("e1")[-1]
        assert delivered["reason"] is None and delivered["remote_id"] in platform.posts
    assert [(r.method, r.path.split("?")[0]) for r in platform.requests] == [
        ("POST", f"/graph/{PAGE_ID}/feed"),  # refused
        ("GET", f"/graph/{PAGE_ID}/posts"),  # the re-send looks first: not there
        ("POST", f"/graph/{PAGE_ID}/feed"),  # posted once
    ]


async def test_a_new_envelope_marked_resend_looks_on_the_platform_first(
    mosquitto: MosquittoBroker,
    signer: Signer,
    platform: FakePlatform,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``resend`` in the request: the page already has the version (posted from another
    machine, whose ledger this bridge does not have), so nothing is posted."""
    message = sample_message()
    earlier = facebook_channel(platform, tmp_path / "elsewhere", monkeypatch)
    posted = await earlier.deliver(message, idempotency_key=idempotency_key(message, "facebook"))
    channel = facebook_channel(platform, tmp_path, monkeypatch)
    async with (
        Console(mosquitto, signer) as console,
        bridge_running(make_bridge(mosquitto, "facebook", channel, signer)) as bridge,
    ):
        body = {
            "effect_id": "e2",
            "channel": "facebook",
            "idempotency_key": idempotency_key(message, "facebook"),
            "message": message.model_dump(mode="json"),
            "resend": True,
        }
        await console.publish("facebook", console.envelope("facebook", message, "e2", body=body))
        await eventually(lambda: "delivered" in console.statuses("e2"), what="the re-send")
        assert console.receipts_for("e2")[-1]["remote_id"] == posted.remote_id
        assert bridge.existing == 1 and bridge.redeliveries == 0
    assert len(platform.requests_to("POST", f"/graph/{PAGE_ID}/feed")) == 1
