"""The Mastodon channel against a fake instance speaking the statuses API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from krise_tui.channels import MessageStatus, create_channel, idempotency_key
from krise_tui.channels.mastodon import MastodonChannel
from tests.conftest import eventually
from tests.fakes import MASTODON_TOKEN, FakePlatform, running, sample_message

TIMEOUT = 0.3
"""Seconds the channel waits in the timeout test (the fake hangs until stopped)."""

LINK = "https://www.hattfjelldal.kommune.no/krise"


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePlatform]:
    monkeypatch.setenv("KRISE_TEST_MASTODON", MASTODON_TOKEN)
    with running() as fake:
        yield fake


def make_channel(platform: FakePlatform, **extra: object) -> MastodonChannel:
    config = {
        "base_url": platform.url + "/",
        "access_token": {"env": "KRISE_TEST_MASTODON"},
        "timeout": TIMEOUT,
        **extra,
    }
    channel = create_channel("mastodon", "mastodon", config)
    assert isinstance(channel, MastodonChannel)
    return channel


async def test_posts_a_status_within_500_characters(platform: FakePlatform) -> None:
    message = sample_message(nb_body="Lang tekst. " * 80)
    key = idempotency_key(message, "mastodon")
    result = await make_channel(platform).deliver(message, idempotency_key=key)
    assert result.ok, result.reason
    status = platform.statuses[str(result.remote_id)]
    assert len(status["text"]) <= 500
    assert status["text"].endswith(f"{LINK}\nKari Nordmann, kriseleder, Hattfjelldal kommune")
    assert (status["language"], status["visibility"]) == ("nb", "public")
    [request] = platform.requests_to("POST", "/api/v1/statuses")
    assert request.header("Idempotency-Key") == key
    assert request.header("Authorization") == f"Bearer {MASTODON_TOKEN}"


async def test_redelivery_never_posts_twice(platform: FakePlatform) -> None:
    channel = make_channel(platform)
    message = sample_message()
    key = idempotency_key(message, "mastodon")
    first = await channel.deliver(message, idempotency_key=key)
    second = await channel.deliver(message, idempotency_key=key)
    assert first.ok and first == second
    assert len(platform.statuses) == 1
    assert len(platform.requests_to("POST", "/api/v1/statuses")) == 2


async def test_configured_language_and_limit(platform: FakePlatform) -> None:
    message = sample_message()
    result = await make_channel(platform, lang="en", max_chars=200).deliver(
        message, idempotency_key=idempotency_key(message, "mastodon")
    )
    status = platform.statuses[str(result.remote_id)]
    assert status["language"] == "en"
    assert status["text"].startswith("Boil drinking water")
    assert len(status["text"]) <= 200


async def test_update_edits_the_earlier_status(platform: FakePlatform) -> None:
    channel = make_channel(platform)
    first = sample_message(seed="v1")
    posted = await channel.deliver(first, idempotency_key=idempotency_key(first, "mastodon"))
    update = sample_message(
        seed="v2",
        status=MessageStatus.UPDATED,
        supersedes=first.version_id,
        headline="Vannet er trygt igjen",
        published_at=datetime(2026, 11, 27, 15, tzinfo=UTC),
    )
    edited = await channel.deliver(
        update,
        idempotency_key=idempotency_key(update, "mastodon"),
        previous_remote_id=posted.remote_id,
    )
    assert edited.ok and edited.remote_id == posted.remote_id
    [put] = platform.requests_to("PUT", "/api/v1/statuses/")
    assert put.path == f"/api/v1/statuses/{posted.remote_id}"
    status = platform.statuses[str(posted.remote_id)]
    assert status["edits"] == 1
    assert status["text"].startswith("Oppdatert: Vannet er trygt igjen")
    assert len(platform.statuses) == 1


async def test_update_without_previous_id_posts_a_follow_up(platform: FakePlatform) -> None:
    update = sample_message(seed="v2", status=MessageStatus.UPDATED)
    result = await make_channel(platform).deliver(
        update, idempotency_key=idempotency_key(update, "mastodon")
    )
    assert result.ok
    assert platform.statuses[str(result.remote_id)]["text"].startswith("Oppdatert: ")
    assert platform.requests_to("PUT", "/") == []


async def test_503_with_retry_after(platform: FakePlatform) -> None:
    platform.fail_next(503, retry_after="12")
    message = sample_message()
    result = await make_channel(platform).deliver(
        message, idempotency_key=idempotency_key(message, "mastodon")
    )
    assert not result.ok and not result.permanent
    assert result.reason is not None and result.reason.startswith("503 Service Unavailable")
    assert result.retry_after == 12.0
    assert platform.statuses == {}


async def test_429_is_retryable(platform: FakePlatform) -> None:
    platform.fail_next(429, retry_after="30")
    message = sample_message()
    result = await make_channel(platform).deliver(
        message, idempotency_key=idempotency_key(message, "mastodon")
    )
    assert not result.permanent and result.retry_after == 30.0


async def test_bad_token_is_a_permanent_401(
    platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRISE_TEST_MASTODON", "wrong")
    message = sample_message()
    result = await make_channel(platform).deliver(
        message, idempotency_key=idempotency_key(message, "mastodon")
    )
    assert not result.ok and result.permanent
    assert result.reason == "401 Unauthorized: The access token is invalid"


async def test_timeout(platform: FakePlatform) -> None:
    platform.hang = True
    message = sample_message()
    result = await make_channel(platform).deliver(
        message, idempotency_key=idempotency_key(message, "mastodon")
    )
    assert not result.ok and not result.permanent
    assert result.reason == f"timeout after {TIMEOUT:g} s"


async def test_retry_after_a_lost_answer_does_not_post_twice(platform: FakePlatform) -> None:
    """The instance posted but the answer came too late: the retry's key dedupes it."""
    channel = make_channel(platform)
    message = sample_message()
    key = idempotency_key(message, "mastodon")
    platform.delay = TIMEOUT * 2
    late = await channel.deliver(message, idempotency_key=key)
    assert late.reason == f"timeout after {TIMEOUT:g} s"
    await eventually(lambda: len(platform.statuses) == 1, what="the late post")
    platform.delay = 0
    retry = await channel.deliver(message, idempotency_key=key)
    assert retry.ok and retry.remote_id in platform.statuses
    assert len(platform.statuses) == 1
