"""The Facebook page channel against a fake Graph API, with its idempotency ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from krise_tui.channels import MessageStatus, create_channel, idempotency_key
from krise_tui.channels.facebook import FacebookChannel
from tests.fakes import GRAPH_TOKEN, PAGE_ID, FakePlatform, running, sample_message

TIMEOUT = 0.3
"""Seconds the channel waits in the timeout test (the fake hangs until stopped)."""


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    with running() as fake:
        yield fake


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "graph-token"
    path.write_text(GRAPH_TOKEN + "\n", encoding="utf-8")
    return path


def make_channel(platform: FakePlatform, tmp_path: Path, token: Path) -> FacebookChannel:
    config = {
        "graph_url": f"{platform.url}/graph/",
        "page_id": PAGE_ID,
        "access_token": {"file": str(token)},
        "state_file": str(tmp_path / "state" / "facebook.json"),
        "timeout": TIMEOUT,
    }
    channel = create_channel("facebook", "facebook", config)
    assert isinstance(channel, FacebookChannel)
    return channel


async def test_posts_to_the_page_feed(
    platform: FakePlatform, tmp_path: Path, token_file: Path
) -> None:
    message = sample_message()
    key = idempotency_key(message, "facebook")
    result = await make_channel(platform, tmp_path, token_file).deliver(
        message, idempotency_key=key
    )
    assert result.ok, result.reason
    assert result.remote_id is not None and result.remote_id.startswith(f"{PAGE_ID}_")
    post = platform.posts[result.remote_id]
    assert post["link"] == message.website_url
    assert post["message"].startswith("Kok drikkevannet\n\nDrikkevannet")
    assert post["message"].endswith("Kari Nordmann, kriseleder, Hattfjelldal kommune")
    [request] = platform.requests_to("POST", f"/graph/{PAGE_ID}/feed")
    assert GRAPH_TOKEN not in request.path
    ledger = json.loads((tmp_path / "state" / "facebook.json").read_text(encoding="utf-8"))
    assert ledger == {key: result.remote_id}


async def test_redelivery_answers_from_the_ledger(
    platform: FakePlatform, tmp_path: Path, token_file: Path
) -> None:
    message = sample_message()
    key = idempotency_key(message, "facebook")
    first = await make_channel(platform, tmp_path, token_file).deliver(message, idempotency_key=key)
    # A restarted console builds a fresh channel on the same ledger file.
    again = await make_channel(platform, tmp_path, token_file).deliver(message, idempotency_key=key)
    assert again == first
    assert len(platform.posts) == 1
    assert len(platform.requests) == 1


async def test_update_edits_the_earlier_post(
    platform: FakePlatform, tmp_path: Path, token_file: Path
) -> None:
    channel = make_channel(platform, tmp_path, token_file)
    first = sample_message(seed="v1")
    posted = await channel.deliver(first, idempotency_key=idempotency_key(first, "facebook"))
    retraction = sample_message(
        seed="v2",
        status=MessageStatus.RETRACTED,
        supersedes=first.version_id,
        headline="Feil melding om drikkevann",
    )
    key = idempotency_key(retraction, "facebook")
    edited = await channel.deliver(
        retraction, idempotency_key=key, previous_remote_id=posted.remote_id
    )
    assert edited.ok and edited.remote_id == posted.remote_id
    assert [r.path for r in platform.requests][-1] == f"/graph/{posted.remote_id}"
    post = platform.posts[str(posted.remote_id)]
    assert post["edits"] == 1
    assert post["message"].startswith("Trukket tilbake: Feil melding om drikkevann")
    again = await channel.deliver(
        retraction, idempotency_key=key, previous_remote_id=posted.remote_id
    )
    assert again == edited and post["edits"] == 1


async def test_503_with_retry_after_is_not_recorded(
    platform: FakePlatform, tmp_path: Path, token_file: Path
) -> None:
    channel = make_channel(platform, tmp_path, token_file)
    message = sample_message()
    key = idempotency_key(message, "facebook")
    platform.fail_next(503, retry_after="5")
    result = await channel.deliver(message, idempotency_key=key)
    assert not result.ok and not result.permanent
    assert result.reason is not None and result.reason.startswith("503 Service Unavailable")
    assert result.retry_after == 5.0
    retry = await channel.deliver(message, idempotency_key=key)
    assert retry.ok and len(platform.posts) == 1


async def test_401_is_permanent(platform: FakePlatform, tmp_path: Path, token_file: Path) -> None:
    platform.fail_next(401)
    message = sample_message()
    result = await make_channel(platform, tmp_path, token_file).deliver(
        message, idempotency_key=idempotency_key(message, "facebook")
    )
    assert result.permanent and result.reason == "401 Unauthorized"


async def test_invalid_token_oauth_error_is_permanent(
    platform: FakePlatform, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-token"
    wrong.write_text("expired", encoding="utf-8")
    message = sample_message()
    result = await make_channel(platform, tmp_path, wrong).deliver(
        message, idempotency_key=idempotency_key(message, "facebook")
    )
    assert result.permanent
    assert (
        result.reason == "400 Bad Request: Invalid OAuth access token - Cannot parse access token"
    )


async def test_graph_rate_limit_is_retryable(
    platform: FakePlatform, tmp_path: Path, token_file: Path
) -> None:
    limited = {"error": {"message": "(#4) Application request limit reached", "code": 4}}
    platform.fail_next(400, body=limited)
    message = sample_message()
    result = await make_channel(platform, tmp_path, token_file).deliver(
        message, idempotency_key=idempotency_key(message, "facebook")
    )
    assert not result.ok and not result.permanent
    assert result.reason is not None and "Graph error 4" in result.reason


async def test_timeout(platform: FakePlatform, tmp_path: Path, token_file: Path) -> None:
    platform.hang = True
    message = sample_message()
    result = await make_channel(platform, tmp_path, token_file).deliver(
        message, idempotency_key=idempotency_key(message, "facebook")
    )
    assert not result.ok and not result.permanent
    assert result.reason == f"timeout after {TIMEOUT:g} s"
    assert not (tmp_path / "state" / "facebook.json").exists()


async def test_corrupt_ledger_is_a_failed_result_not_a_crash(
    platform: FakePlatform, tmp_path: Path, token_file: Path
) -> None:
    ledger = tmp_path / "state" / "facebook.json"
    ledger.parent.mkdir()
    ledger.write_text("[1, 2", encoding="utf-8")
    message = sample_message()
    result = await make_channel(platform, tmp_path, token_file).deliver(
        message, idempotency_key=idempotency_key(message, "facebook")
    )
    assert not result.ok
    assert result.reason is not None and "not valid JSON" in result.reason
    assert platform.requests == []
