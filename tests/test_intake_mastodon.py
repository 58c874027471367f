"""Mentions polled from the fake Mastodon's notifications API, in a real bridge.

What is checked is what a restart must not break: mentions from before the start are
not taken, every mention after it arrives on the bus once and in order, and the
``since_id`` cursor on disk lets a restarted bridge go on exactly where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from krise_tui.bridge import BridgeRuntime
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.channels.from_org import channel_from_def
from krise_tui.intake import Intake, intake_from_def
from krise_tui.intake.mastodon import MastodonPoller, html_to_text
from krise_tui.playbook.models import ChannelDef
from krise_tui.wire.inbound import InboundPost
from tests.conftest import eventually
from tests.fakes import MASTODON_TOKEN, FakePlatform, running
from tests.test_bridge import WEBSITE_URL, bridge_running, make_bridge
from tests.test_intake_webhook import InboundListener

LONG_AGO = "2020-03-12T08:00:00.000Z"


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePlatform]:
    monkeypatch.setenv("KRISE_TEST_MASTODON", MASTODON_TOKEN)
    with running() as fake:
        yield fake


def definition(platform: FakePlatform, **inbound: Any) -> ChannelDef:
    return ChannelDef.model_validate(
        {
            "id": "mastodon",
            "kind": "mastodon",
            "endpoint": f"{platform.url}/api/v1/statuses",
            "credentials": {"env": "KRISE_TEST_MASTODON"},
            "inbound": {"poll_interval": "1s", **inbound},
        }
    )


def poller(platform: FakePlatform, tmp_path: Path, **extra: Any) -> MastodonPoller:
    options: dict[str, Any] = {
        "base_url": platform.url,
        "token": MASTODON_TOKEN,
        "state_file": tmp_path / "state" / "mastodon.intake.mastodon.json",
        "interval": 0.05,
        **extra,
    }
    return MastodonPoller("mastodon", **options)


@contextlib.asynccontextmanager
async def mastodon_running(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, source: MastodonPoller
) -> AsyncIterator[BridgeRuntime]:
    defn = definition(platform)
    channel = channel_from_def(defn, state_dir=source.state_file.parent, website_url=WEBSITE_URL)
    bridge = make_bridge(
        mosquitto, "mastodon", channel, signer, intake=Intake("mastodon", [source])
    )
    async with bridge_running(bridge):
        yield bridge


def since_ids(platform: FakePlatform) -> list[str | None]:
    """The ``since_id`` of every notifications request, in order."""
    return [r.query().get("since_id") for r in platform.requests_to("GET", "/api/v1/notifications")]


async def test_mentions_arrive_once_in_order_and_a_restart_goes_on_from_since_id(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    platform.mention("gammel@example.social", "Fra før hendelsen", created_at=LONG_AGO)
    async with InboundListener(mosquitto) as listener:
        first = poller(platform, tmp_path)
        async with mastodon_running(mosquitto, signer, platform, first):
            await eventually(lambda: first.polls >= 1, what="the first poll")
            one = platform.mention("ola@example.social", "Er skolen åpen i morgen?")
            two = platform.mention(
                "kari@example.social", "Hvor henter vi vann?", visibility="direct"
            )
            await eventually(lambda: len(listener.ids()) == 2, what="two mentions")
        state = json.loads(first.state_file.read_text(encoding="utf-8"))
        newest_notification = max(platform.notifications, key=int)
        assert state["since_id"] == newest_notification
        # Down for a while: mentions made meanwhile wait on the instance.
        three = platform.mention("per@example.social", "Stengt vei ved Svenskvollen?")
        second = poller(platform, tmp_path)
        async with mastodon_running(mosquitto, signer, platform, second):
            await eventually(lambda: len(listener.ids()) == 3, what="the mention made meanwhile")
            await eventually(lambda: second.polls >= 2, what="one more poll")
            four = platform.mention("siri@example.social", "Takk for info!")
            await eventually(lambda: len(listener.ids()) == 4, what="a new mention")
    assert listener.ids() == [one["id"], two["id"], three["id"], four["id"]]
    assert since_ids(platform)[0] is None  # the first start had none
    assert newest_notification in since_ids(platform)  # the restart went on from it
    posts = [InboundPost.model_validate(data) for _, data in listener.posts]
    assert posts[1].author == "@kari@example.social"
    assert posts[1].text == "@kommunen Hvor henter vi vann?"
    assert posts[1].meta["visibility"] == "direct"  # the reply keeps it
    assert (
        posts[1].meta["status_id"] == two["id"] and posts[1].meta["acct"] == "kari@example.social"
    )
    assert all(post.kind == "post" for post in posts)


async def test_a_burst_larger_than_a_page_arrives_whole_and_in_order(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    platform.mention("gammel@example.social", "før", created_at=LONG_AGO)
    source = poller(platform, tmp_path)
    async with (
        InboundListener(mosquitto) as listener,
        mastodon_running(mosquitto, signer, platform, source),
    ):
        await eventually(lambda: source.polls >= 1, what="the baseline poll")
        statuses = [platform.mention(f"u{n}@example.social", f"spørsmål {n}") for n in range(95)]
        await eventually(lambda: len(listener.ids()) == 95, what="the burst", timeout=20)
    assert listener.ids() == [status["id"] for status in statuses]
    pages = [r.query() for r in platform.requests_to("GET", "/api/v1/notifications")]
    assert any("max_id" in page and "since_id" in page for page in pages)  # gap filled


async def test_since_takes_mentions_from_when_the_incident_opened(
    mosquitto: MosquittoBroker, signer: Signer, platform: FakePlatform, tmp_path: Path
) -> None:
    platform.mention("gammel@example.social", "for lenge siden", created_at=LONG_AGO)
    early = platform.mention(
        "ola@example.social", "like etter at det skjedde", created_at="2024-05-01T10:00:00.000Z"
    )
    source = poller(platform, tmp_path, since=datetime(2024, 5, 1, 9, 30, tzinfo=UTC))
    async with (
        InboundListener(mosquitto) as listener,
        mastodon_running(mosquitto, signer, platform, source),
    ):
        await eventually(lambda: listener.ids() == [early["id"]], what="the early mention")


async def test_a_refused_token_is_logged_and_the_poller_keeps_trying(
    mosquitto: MosquittoBroker,
    signer: Signer,
    platform: FakePlatform,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="krise_tui.intake")
    platform.fail_next(401, body={"error": "The access token is invalid"})
    platform.fail_next(503, retry_after="0")
    source = poller(platform, tmp_path)
    heard: list[str | None] = []
    source.trouble.listen(heard.append)  # what the intake (and so the console) hears
    async with (
        InboundListener(mosquitto) as listener,
        mastodon_running(mosquitto, signer, platform, source) as bridge,
    ):
        await eventually(lambda: source.polls >= 1, what="a good poll after the failures")
        assert heard[0] is not None and "token is refused" in heard[0]
        assert heard[1] is not None and "503" in heard[1] and heard[2:] == [None]
        mention = platform.mention("ola@example.social", "Hallo?")
        await eventually(lambda: listener.ids() == [mention["id"]], what="the mention")
        assert source.failures == 2
        assert isinstance(bridge.intake, Intake) and bridge.intake.restarts == 0  # never died
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("token is refused" in message for message in errors)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("503" in message for message in warnings)


def test_the_org_file_builds_the_poller(platform: FakePlatform, tmp_path: Path) -> None:
    defn = definition(platform, poll_interval="45s", since="2026-11-27T12:00:00+01:00")
    intake = intake_from_def(defn, tmp_path)
    assert intake is not None
    [source] = intake.sources
    assert isinstance(source, MastodonPoller)
    assert (source.base_url, source.token, source.interval) == (platform.url, MASTODON_TOKEN, 45)
    assert source.since == datetime(2026, 11, 27, 11, 0, tzinfo=UTC)
    assert source.state_file == tmp_path / "mastodon.intake.mastodon.json"
    with pytest.raises(ValueError, match="polls its mentions; listen"):
        definition(platform, listen="127.0.0.1:9000")


def test_status_html_becomes_plain_text() -> None:
    content = (
        '<p><span class="h-card"><a href="https://x/@kommunen">@<span>kommunen</span></a></span>'
        " Er vannet trygt &amp; rent?</p><p>Linje 1<br />Linje 2</p>"
    )
    assert html_to_text(content) == "@kommunen Er vannet trygt & rent?\n\nLinje 1\nLinje 2"


async def test_a_stop_while_a_mention_is_published_still_saves_its_cursor(
    platform: FakePlatform, tmp_path: Path
) -> None:
    """Stopping the bridge right as a mention goes out: it is finished, and its cursor
    saved, so the next start does not publish it a second time."""
    platform.mention("gammel@example.social", "før", created_at=LONG_AGO)
    source = poller(platform, tmp_path)
    entered, gate = asyncio.Event(), asyncio.Event()
    published: list[str] = []

    async def sink(post: InboundPost) -> None:
        entered.set()
        await gate.wait()  # the broker's acknowledgement is on its way
        published.append(post.id)

    intake = Intake("mastodon", [source])
    await intake.start(sink)
    await eventually(lambda: source.polls >= 1, what="the baseline poll")
    mention = platform.mention("ola@example.social", "Stengt skole?")
    await asyncio.wait_for(entered.wait(), 10)
    stopping = asyncio.create_task(intake.stop())
    await asyncio.sleep(0)  # one turn of the loop: the stop has cancelled the poller
    assert not stopping.done()
    gate.set()
    await asyncio.wait_for(stopping, 10)
    assert published == [mention["id"]]
    state = json.loads(source.state_file.read_text(encoding="utf-8"))
    assert state["since_id"] == max(platform.notifications, key=int)
