"""The Facebook page channel against a fake Graph API: its write-ahead ledger, and
finding a post again by its marker instead of posting twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from krise_tui.channels import MessageStatus, create_channel, idempotency_key
from krise_tui.channels.base import AttemptState, Ledger, LedgerEntry, version_marker
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


def make_channel(
    platform: FakePlatform, tmp_path: Path, token: Path, **extra: object
) -> FacebookChannel:
    config = {
        "graph_url": f"{platform.url}/graph/",
        "page_id": PAGE_ID,
        "access_token": {"file": str(token)},
        "state_file": str(tmp_path / "state" / "facebook.ledger.sqlite3"),
        "timeout": TIMEOUT,
        **extra,
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
    assert f"\n\n{version_marker(message)}\n{message.website_url}\n" in post["message"]
    [request] = platform.requests_to("POST", f"/graph/{PAGE_ID}/feed")
    assert GRAPH_TOKEN not in request.path
    ledger = Ledger(tmp_path / "state" / "facebook.ledger.sqlite3")
    assert await ledger.entry(key) == LedgerEntry(
        AttemptState.DELIVERED, remote_id=result.remote_id
    )


async def test_redelivery_answers_from_the_ledger(
    platform: FakePlatform, tmp_path: Path, token_file: Path
) -> None:
    message = sample_message()
    key = idempotency_key(message, "facebook")
    first = await make_channel(platform, tmp_path, token_file).deliver(message, idempotency_key=key)
    # A restarted console builds a fresh channel on the same ledger file.
    again = await make_channel(platform, tmp_path, token_file).deliver(message, idempotency_key=key)
    assert again.ok and again.remote_id == first.remote_id and again.existing
    assert again.reason == "already delivered (recorded in the ledger); not sent again"
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
    assert again.remote_id == edited.remote_id and again.existing and post["edits"] == 1


async def test_after_a_503_the_retry_looks_first_then_posts(
    platform: FakePlatform, tmp_path: Path, token_file: Path
) -> None:
    channel = make_channel(platform, tmp_path, token_file)
    message = sample_message()
    key = idempotency_key(message, "facebook")
    platform.fail_next(503, retry_after="5")
    result = await channel.deliver(message, idempotency_key=key)
    assert not result.ok and not result.permanent and result.uncertain
    assert result.reason is not None and result.reason.startswith("503 Service Unavailable")
    assert result.retry_after == 5.0
    retry = await channel.deliver(message, idempotency_key=key)
    assert retry.ok and not retry.existing and len(platform.posts) == 1
    assert [(r.method, r.path.split("?")[0]) for r in platform.requests] == [
        ("POST", f"/graph/{PAGE_ID}/feed"),
        ("GET", f"/graph/{PAGE_ID}/posts"),  # not there: the 503 was true
        ("POST", f"/graph/{PAGE_ID}/feed"),
    ]


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
    assert not result.ok and not result.permanent and result.uncertain
    assert result.reason == f"timeout after {TIMEOUT:g} s"
    ledger = Ledger(tmp_path / "state" / "facebook.ledger.sqlite3")
    entry = await ledger.entry(idempotency_key(message, "facebook"))
    assert entry is not None and entry.state is AttemptState.IN_FLIGHT  # looks before posting


async def test_corrupt_ledger_is_a_failed_result_not_a_crash(
    platform: FakePlatform, tmp_path: Path, token_file: Path
) -> None:
    ledger = tmp_path / "state" / "facebook.ledger.sqlite3"
    ledger.parent.mkdir()
    ledger.write_bytes(b"[1, 2" * 1000)
    message = sample_message()
    result = await make_channel(platform, tmp_path, token_file).deliver(
        message, idempotency_key=idempotency_key(message, "facebook")
    )
    assert not result.ok
    assert result.reason is not None and "not a ledger database" in result.reason
    assert platform.requests == []


# --------------------------------------------------------------------------- never twice


async def test_a_post_whose_answer_was_lost_is_found_by_its_marker(
    platform: FakePlatform, tmp_path: Path, token_file: Path
) -> None:
    """Facebook posted, the answer never came: the retry finds the post, posts nothing."""
    message = sample_message()
    key = idempotency_key(message, "facebook")
    platform.hold_after_effect = True  # the post exists; its answer is held back
    lost = await make_channel(platform, tmp_path, token_file).deliver(message, idempotency_key=key)
    assert not lost.ok and lost.uncertain and len(platform.posts) == 1
    platform.release()
    platform.hold_after_effect = False
    # A restarted bridge: a fresh channel on the same ledger.
    retry = await make_channel(platform, tmp_path, token_file).deliver(message, idempotency_key=key)
    [post_id] = platform.posts
    assert retry.ok and retry.existing and retry.remote_id == post_id
    assert retry.reason == (
        f"already on the platform (found by marker «{version_marker(message)}» on the page); "
        "not posted again"
    )
    assert len(platform.requests_to("POST", f"/graph/{PAGE_ID}/feed")) == 1
    [look] = platform.requests_to("GET", f"/graph/{PAGE_ID}/posts")
    assert look.query() == {"fields": "id,message,created_time", "limit": "25"}
    assert look.header("Authorization") == f"Bearer {GRAPH_TOKEN}"  # never in the URL
    assert GRAPH_TOKEN not in look.path
    again = await make_channel(platform, tmp_path, token_file).deliver(message, idempotency_key=key)
    assert again.remote_id == post_id and len(platform.requests) == 2  # from the ledger now


async def test_the_look_up_pages_back_newest_first_and_is_bounded(
    platform: FakePlatform, tmp_path: Path, token_file: Path
) -> None:
    ours = sample_message(seed="ours")
    key = idempotency_key(ours, "facebook")
    channel = make_channel(platform, tmp_path, token_file)
    platform.fail_next(500, after_effect=True)  # posted, but Graph said 500
    assert (await channel.deliver(ours, idempotency_key=key)).uncertain
    others = [sample_message(seed=f"later-{n}") for n in range(5)]
    for other in others:  # five newer posts push ours to the third page of two
        assert (await channel.deliver(other, idempotency_key=f"{other.version_id}:fb")).ok
    paged = make_channel(platform, tmp_path, token_file, lookup_page_size=2, lookup_pages=3)
    found = await paged.deliver(ours, idempotency_key=key)
    assert found.existing and platform.posts[str(found.remote_id)]["seq"] == 1
    looks = platform.requests_to("GET", f"/graph/{PAGE_ID}/posts")
    assert [r.query().get("after") for r in looks] == [None, "2", "4"]
    assert len(platform.posts) == 6


async def test_the_look_up_stops_at_posts_older_than_the_version(
    platform: FakePlatform, tmp_path: Path, token_file: Path
) -> None:
    channel = make_channel(platform, tmp_path, token_file, lookup_page_size=1)
    for n in range(3):
        old = sample_message(seed=f"old-{n}")
        await channel.deliver(old, idempotency_key=f"{old.version_id}:fb")
    # Approved two hours after those posts were made: none of them can be its post.
    later = datetime.now(UTC) + timedelta(hours=2)
    message = sample_message(seed="new", published_at=later)
    result = await channel.deliver(message, idempotency_key="new:fb", recheck=True)
    assert result.ok and not result.existing
    assert len(platform.requests_to("GET", f"/graph/{PAGE_ID}/posts")) == 1


async def test_it_does_not_post_blind_when_the_page_cannot_be_read(
    platform: FakePlatform, tmp_path: Path, token_file: Path
) -> None:
    message = sample_message()
    key = idempotency_key(message, "facebook")
    platform.fail_next(502, after_effect=True)  # posted; a proxy said 502
    assert (
        await make_channel(platform, tmp_path, token_file).deliver(message, idempotency_key=key)
    ).uncertain
    missing = {"error": {"message": "(#10) Requires pages_read_engagement", "code": 10}}
    platform.fail_next(403, body=missing)
    refused = await make_channel(platform, tmp_path, token_file).deliver(
        message, idempotency_key=key
    )
    assert not refused.ok and refused.permanent
    assert refused.reason is not None and "pages_read_engagement" in refused.reason
    assert "not sending again blind" in refused.reason
    assert len(platform.posts) == 1
    assert len(platform.requests_to("POST", f"/graph/{PAGE_ID}/feed")) == 1


async def test_a_recheck_finds_a_post_the_ledger_does_not_know(
    platform: FakePlatform, tmp_path: Path, token_file: Path
) -> None:
    """The operator re-sends; the ledger is gone (another machine), the page has it."""
    message = sample_message()
    key = idempotency_key(message, "facebook")
    first = await make_channel(platform, tmp_path, token_file).deliver(message, idempotency_key=key)
    for leftover in (tmp_path / "state").glob("facebook.ledger.sqlite3*"):
        leftover.unlink()
    resent = await make_channel(platform, tmp_path, token_file).deliver(
        message, idempotency_key=key, recheck=True
    )
    assert resent.existing and resent.remote_id == first.remote_id
    assert len(platform.posts) == 1
