"""The Mastodon channel against a fake instance speaking the statuses and accounts API:
the Idempotency-Key within its window, the marker look-up beyond it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from krise_tui.channels import MessageStatus, create_channel, idempotency_key
from krise_tui.channels.base import version_marker
from krise_tui.channels.mastodon import MastodonChannel
from tests.conftest import eventually
from tests.fakes import ACCOUNT_ID, MASTODON_TOKEN, FakePlatform, running, sample_message

TIMEOUT = 0.3
"""Seconds the channel waits in the timeout test (the fake hangs until stopped)."""

LINK = "https://www.hattfjelldal.kommune.no/krise"
SIGNATURE = "Kari Nordmann, kriseleder, Hattfjelldal kommune"


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
    assert first.ok and second.ok and second.remote_id == first.remote_id
    assert second.existing and not first.existing
    assert len(platform.statuses) == 1
    assert len(platform.requests_to("POST", "/api/v1/statuses")) == 1  # from the ledger


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


# --------------------------------------------------------------------------- never twice


async def test_the_status_carries_the_version_marker(platform: FakePlatform) -> None:
    message = sample_message()
    result = await make_channel(platform).deliver(
        message, idempotency_key=idempotency_key(message, "mastodon")
    )
    text = platform.statuses[str(result.remote_id)]["text"]
    assert text.endswith(f"\n\n{version_marker(message)}\n{LINK}\n{SIGNATURE}")


async def test_within_the_key_window_a_retry_relies_on_the_idempotency_key(
    platform: FakePlatform, tmp_path: Path
) -> None:
    message = sample_message()
    key = idempotency_key(message, "mastodon")
    ledger = str(tmp_path / "mastodon.json")
    platform.hold_after_effect = True  # posted; the answer does not come in time
    lost = await make_channel(platform, state_file=ledger).deliver(message, idempotency_key=key)
    assert lost.uncertain and len(platform.statuses) == 1
    platform.release()
    platform.hold_after_effect = False
    retry = await make_channel(platform, state_file=ledger).deliver(message, idempotency_key=key)
    assert retry.ok and retry.remote_id in platform.statuses
    assert len(platform.statuses) == 1  # Mastodon answered the key with the first status
    assert platform.requests_to("GET", "/api/v1/accounts") == []  # no look-up needed
    posts = platform.requests_to("POST", "/api/v1/statuses")
    assert [r.header("Idempotency-Key") for r in posts] == [key, key]


async def test_beyond_the_key_window_it_finds_the_status_by_its_marker(
    platform: FakePlatform, tmp_path: Path
) -> None:
    """Mastodon forgot the key (an hour passed): the marker finds the status instead."""
    message = sample_message()
    key = idempotency_key(message, "mastodon")
    ledger = str(tmp_path / "mastodon.json")
    platform.hold_after_effect = True
    lost = await make_channel(platform, state_file=ledger).deliver(message, idempotency_key=key)
    assert lost.uncertain
    platform.release()
    platform.hold_after_effect = False
    for n in range(3):  # newer statuses on the account
        other = sample_message(seed=f"other-{n}")
        await make_channel(platform).deliver(other, idempotency_key=f"{other.version_id}:m")
    platform.expire_idempotency_keys()
    late = make_channel(platform, state_file=ledger, idempotency_window=0)
    found = await late.deliver(message, idempotency_key=key)
    [ours] = [s for s in platform.statuses.values() if version_marker(message) in s["text"]]
    assert found.ok and found.existing and found.remote_id == ours["id"]
    assert found.reason == (
        f"already on the platform (found by marker «{version_marker(message)}» on the "
        "account); not posted again"
    )
    assert len(platform.statuses) == 4
    assert len(platform.requests_to("POST", "/api/v1/statuses")) == 4  # none for the retry
    [me] = platform.requests_to("GET", "/api/v1/accounts/verify_credentials")
    assert me.header("Authorization") == f"Bearer {MASTODON_TOKEN}"
    [page] = platform.requests_to("GET", f"/api/v1/accounts/{ACCOUNT_ID}/statuses")
    assert page.query() == {"limit": "40", "exclude_reblogs": "true"}


async def test_beyond_the_window_with_nothing_found_it_posts_once(platform: FakePlatform) -> None:
    """A timeout before the instance did anything: looked, absent, posted."""
    message = sample_message()
    key = idempotency_key(message, "mastodon")
    channel = make_channel(platform, idempotency_window=0)
    platform.fail_next(502)  # a proxy's 502: perhaps posted, perhaps not (here: not)
    assert (await channel.deliver(message, idempotency_key=key)).uncertain
    posted = await channel.deliver(message, idempotency_key=key)
    assert posted.ok and not posted.existing and len(platform.statuses) == 1
    assert len(platform.requests_to("GET", "/api/v1/accounts/")) == 2


async def test_an_operator_re_send_looks_even_within_the_window(platform: FakePlatform) -> None:
    message = sample_message()
    key = idempotency_key(message, "mastodon")
    first = await make_channel(platform).deliver(message, idempotency_key=key)
    platform.expire_idempotency_keys()
    resent = await make_channel(platform).deliver(message, idempotency_key=key, recheck=True)
    assert resent.existing and resent.remote_id == first.remote_id
    assert len(platform.statuses) == 1
