"""The webhook channel against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from krise_tui.channels import (
    ChannelConfigError,
    SecretError,
    create_channel,
    idempotency_key,
    sms_text,
)
from krise_tui.channels.webhook import WebhookChannel
from tests.fakes import FakePlatform, running, sample_message

TIMEOUT = 0.3
"""Seconds the channel waits in the timeout test (the fake hangs until stopped)."""

SMS_TEMPLATE = {
    "to": ["varsling-sentrum"],
    "message": "{sms_text}",
    "reference": "{version_id}",
    "meta": {"lang": "{lang}", "literal": "{{not a field}}", "priority": 1},
}


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    with running() as fake:
        yield fake


def make_channel(platform: FakePlatform, **extra: object) -> WebhookChannel:
    config = {
        "url": f"{platform.url}/hook/sms",
        "body": SMS_TEMPLATE,
        "headers": {"Authorization": "Bearer {env:KRISE_TEST_SMS_TOKEN}"},
        "timeout": TIMEOUT,
        **extra,
    }
    channel = create_channel("webhook", "sms", config)
    assert isinstance(channel, WebhookChannel)
    return channel


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRISE_TEST_SMS_TOKEN", "sms-secret")


async def test_posts_the_rendered_template(platform: FakePlatform) -> None:
    message = sample_message()
    key = idempotency_key(message, "sms")
    result = await make_channel(platform).deliver(message, idempotency_key=key)
    assert result.ok, result.reason
    assert result.remote_id == "sms-1"
    [request] = platform.requests_to("POST", "/hook/sms")
    assert request.header("Idempotency-Key") == key
    assert request.header("Authorization") == "Bearer sms-secret"
    assert request.fields == {
        "to": ["varsling-sentrum"],
        "message": sms_text(message),
        "reference": message.version_id,
        "meta": {"lang": "nb", "literal": "{not a field}", "priority": 1},
    }


async def test_redelivery_with_the_same_key_creates_one_message(platform: FakePlatform) -> None:
    channel = make_channel(platform)
    message = sample_message()
    key = idempotency_key(message, "sms")
    first = await channel.deliver(message, idempotency_key=key)
    # Another channel object (no shared ledger): the gateway de-duplicates on the key.
    second = await make_channel(platform).deliver(message, idempotency_key=key)
    assert first == second
    assert len(platform.hooks) == 1
    keys = [r.header("Idempotency-Key") for r in platform.requests_to("POST", "/hook")]
    assert keys == [key, key]


async def test_ledger_covers_receivers_without_idempotency(tmp_path: Path) -> None:
    with running(webhook_dedupe=False) as platform:
        channel = make_channel(platform, state_file=str(tmp_path / "sms-ledger.json"))
        message = sample_message()
        key = idempotency_key(message, "sms")
        first = await channel.deliver(message, idempotency_key=key)
        again = make_channel(platform, state_file=str(tmp_path / "sms-ledger.json"))
        second = await again.deliver(message, idempotency_key=key)
        assert first.ok and second.remote_id == first.remote_id and second.existing
        assert len(platform.requests_to("POST", "/hook")) == 1


async def test_503_with_retry_after(platform: FakePlatform) -> None:
    platform.fail_next(503, retry_after="7")
    message = sample_message()
    result = await make_channel(platform).deliver(
        message, idempotency_key=idempotency_key(message, "sms")
    )
    assert not result.ok and not result.permanent
    assert result.reason is not None and result.reason.startswith("503 Service Unavailable")
    assert result.retry_after == 7.0


async def test_401_is_permanent(platform: FakePlatform) -> None:
    platform.fail_next(401, body={"message": "bad API key"})
    message = sample_message()
    result = await make_channel(platform).deliver(
        message, idempotency_key=idempotency_key(message, "sms")
    )
    assert result.permanent
    assert result.reason == "401 Unauthorized: bad API key"


async def test_timeout(platform: FakePlatform) -> None:
    platform.hang = True
    message = sample_message()
    result = await make_channel(platform).deliver(
        message, idempotency_key=idempotency_key(message, "sms")
    )
    assert not result.ok and not result.permanent
    assert result.reason == f"timeout after {TIMEOUT:g} s"


async def test_slow_receiver_within_the_timeout(platform: FakePlatform) -> None:
    platform.delay = 0.1
    message = sample_message()
    result = await make_channel(platform, timeout=5).deliver(
        message, idempotency_key=idempotency_key(message, "sms")
    )
    assert result.ok


async def test_connection_refused_is_a_failed_result() -> None:
    with running() as platform:
        url = platform.url
    channel = create_channel("webhook", "sms", {"url": f"{url}/hook", "timeout": TIMEOUT})
    message = sample_message()
    result = await channel.deliver(message, idempotency_key=idempotency_key(message, "sms"))
    assert not result.ok and not result.permanent
    assert result.reason is not None and result.reason.startswith("cannot connect to 127.0.0.1")


def test_unknown_template_field_is_a_config_error() -> None:
    with pytest.raises(ChannelConfigError, match=r"\{phone\}.*known: \{body\}"):
        create_channel("webhook", "sms", {"url": "https://x.test", "body": {"to": "{phone}"}})
    with pytest.raises(ChannelConfigError, match="plain"):
        create_channel("webhook", "sms", {"url": "https://x.test", "body": {"t": "{body!r}"}})
    with pytest.raises(ChannelConfigError, match="set by krise"):
        create_channel(
            "webhook", "sms", {"url": "https://x.test", "headers": {"Idempotency-Key": "x"}}
        )


def test_missing_env_in_header_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KRISE_TEST_MISSING", raising=False)
    with pytest.raises(SecretError, match="KRISE_TEST_MISSING"):
        create_channel(
            "webhook",
            "intranett",
            {"url": "https://x.test", "headers": {"X-Key": "{env:KRISE_TEST_MISSING}"}},
        )


async def test_message_braces_are_not_reinterpreted(platform: FakePlatform) -> None:
    message = sample_message(nb_body="Tekst med {text} og {0} i seg.")
    channel = create_channel(
        "webhook", "intranett", {"url": f"{platform.url}/hook/intra", "body": {"b": "{body}"}}
    )
    result = await channel.deliver(message, idempotency_key=idempotency_key(message, "intra"))
    assert result.ok
    assert platform.requests[-1].fields == {"b": "Tekst med {text} og {0} i seg."}


async def test_after_an_unknown_outcome_the_resend_carries_the_same_key(
    platform: FakePlatform, tmp_path: Path
) -> None:
    """A gateway cannot be asked: the same Idempotency-Key goes again, and it dedupes."""
    message = sample_message()
    key = idempotency_key(message, "sms")
    ledger = str(tmp_path / "sms.json")
    platform.hold_after_effect = True  # the SMS went out; the answer is held back
    lost = await make_channel(platform, state_file=ledger).deliver(message, idempotency_key=key)
    assert not lost.ok and lost.uncertain
    platform.release()
    platform.hold_after_effect = False
    again = await make_channel(platform, state_file=ledger).deliver(message, idempotency_key=key)
    assert again.ok and again.remote_id == "sms-1" and len(platform.hooks) == 1
    assert again.reason == (
        f"sent again with the same Idempotency-Key {key} after an attempt with an unknown "
        "outcome; the gateway de-duplicates on it"
    )
    keys = [r.header("Idempotency-Key") for r in platform.requests_to("POST", "/hook")]
    assert keys == [key, key]
