"""The channel seam: message model, text helpers, secrets, registry, error mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from krise_tui.channels import (
    ApprovedMessage,
    ChannelConfigError,
    DeliveryStatus,
    MessageStatus,
    MessageVariant,
    SecretError,
    create_channel,
    idempotency_key,
    render_text,
    resolve_secret,
    sms_text,
)
from krise_tui.channels.base import (
    JsonLedger,
    atomic_write,
    failure_from_response,
    parse_retry_after,
    registered_kinds,
)
from krise_tui.rules.sms import sms_info
from tests.fakes import sample_message, version_id_for

LINK = "https://www.hattfjelldal.kommune.no/krise"
SIGNATURE = "Kari Nordmann, kriseleder, Hattfjelldal kommune"


def test_idempotency_key_is_version_and_channel() -> None:
    message = sample_message()
    assert idempotency_key(message, "mastodon") == f"{message.version_id}:mastodon"


def test_nb_must_come_first_and_languages_are_unique() -> None:
    data = sample_message().model_dump()
    data["variants"] = list(reversed(data["variants"]))
    with pytest.raises(ValidationError, match="first variant must be nb"):
        ApprovedMessage.model_validate(data)
    data["variants"] = [data["variants"][-1], data["variants"][-1]]
    with pytest.raises(ValidationError, match="duplicate"):
        ApprovedMessage.model_validate(data)


def test_signature_needs_name_and_title_and_time_must_be_aware() -> None:
    data = sample_message().model_dump()
    with pytest.raises(ValidationError, match="full name and title"):
        ApprovedMessage.model_validate({**data, "signature": "Kari"})
    with pytest.raises(ValidationError, match="timezone"):
        ApprovedMessage.model_validate({**data, "published_at": datetime(2026, 11, 27, 12)})
    with pytest.raises(ValidationError):
        ApprovedMessage.model_validate({**data, "version_id": "abc"})


def test_render_text_ends_with_link_and_signature() -> None:
    text = render_text(sample_message(), "nb")
    assert text.startswith("Kok drikkevannet\n\nDrikkevannet")
    assert text.endswith(f"\n\n{LINK}\n{SIGNATURE}")


def test_render_text_cuts_the_body_never_the_link() -> None:
    message = sample_message(nb_body="ord " * 400)
    text = render_text(message, "nb", max_chars=200)
    assert len(text) <= 200
    assert text.endswith(f"{LINK}\n{SIGNATURE}")
    assert "…" in text
    assert text.startswith("Kok drikkevannet\n\n")


def test_render_text_very_small_limit_drops_body_then_fails() -> None:
    message = sample_message(nb_body="ord " * 400)
    tight = len(f"Kok drikkevannet\n\n{LINK}\n{SIGNATURE}")
    assert render_text(message, "nb", max_chars=tight) == f"Kok drikkevannet\n\n{LINK}\n{SIGNATURE}"
    with pytest.raises(ValueError, match="cannot hold the link"):
        render_text(message, "nb", max_chars=40)


def test_labels_for_drills_updates_and_retractions() -> None:
    updated = sample_message(status=MessageStatus.UPDATED, exercise=True)
    assert render_text(updated, "nb").startswith("ØVELSE: Oppdatert: Kok drikkevannet")
    assert render_text(updated, "en").startswith("ØVELSE: Updated: Boil drinking water")
    retracted = sample_message(status=MessageStatus.RETRACTED)
    assert render_text(retracted, "nb").startswith("Trukket tilbake: ")
    assert render_text(retracted, "sma").startswith("Trukket tilbake: ")


def test_missing_language_falls_back_to_nb() -> None:
    message = sample_message()
    only_nb = message.model_copy(update={"variants": message.variants[:1]})
    assert render_text(only_nb, "en").startswith("Kok drikkevannet")


def test_sms_text_is_short_with_link() -> None:
    text = sms_text(sample_message())
    assert text == f"Kok drikkevannet\n{LINK}\n{SIGNATURE}"
    assert sms_info(text).segments == 1


def test_signature_does_not_repeat_the_org_name() -> None:
    message = sample_message().model_copy(
        update={"signature": "Kari Nordmann, kriseleder i Hattfjelldal kommune"}
    )
    assert message.signature_line == "Kari Nordmann, kriseleder i Hattfjelldal kommune"


def test_resolve_secret_from_env_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KRISE_TEST_TOKEN", "s3cret")
    assert resolve_secret({"env": "KRISE_TEST_TOKEN"}) == "s3cret"
    secret = tmp_path / "token"
    secret.write_text("from-file\n", encoding="utf-8")
    assert resolve_secret({"file": str(secret)}) == "from-file"


def test_resolve_secret_errors_name_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KRISE_NO_SUCH_TOKEN", raising=False)
    with pytest.raises(SecretError, match="KRISE_NO_SUCH_TOKEN"):
        resolve_secret({"env": "KRISE_NO_SUCH_TOKEN"})
    missing = tmp_path / "nope"
    with pytest.raises(SecretError, match=str(missing)):
        resolve_secret({"file": str(missing)})
    with pytest.raises(SecretError, match="env"):
        resolve_secret({"password": "inline"})


def test_create_channel_rejects_unknown_kind_fields_and_inline_secrets(tmp_path: Path) -> None:
    assert {"website", "webhook", "mastodon", "facebook", "email"} <= set(registered_kinds())
    with pytest.raises(ChannelConfigError, match="unknown kind 'telegraph'"):
        create_channel("telegraph", "t", {})
    with pytest.raises(ChannelConfigError, match=r"'nett'.*base_urll"):
        create_channel("website", "nett", {"directory": str(tmp_path), "base_urll": "x"})
    with pytest.raises(ChannelConfigError, match="never inline"):
        create_channel("mastodon", "m", {"base_url": "https://m.example", "access_token": "abc"})


def test_create_channel_builds_a_registered_channel(tmp_path: Path) -> None:
    channel = create_channel(
        "website", "nett", {"directory": str(tmp_path), "base_url": "https://k.example/krise"}
    )
    assert (channel.name, channel.kind) == ("nett", "website")


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("120") == 120.0
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("code", "permanent", "retry_after"),
    [
        (503, False, 7.0),
        (429, False, 7.0),
        (408, False, None),
        (401, True, None),
        (500, False, None),
    ],
)
def test_failure_from_response(code: int, permanent: bool, retry_after: float | None) -> None:
    request = httpx.Request("POST", "https://example.test/x")
    response = httpx.Response(code, headers={"Retry-After": "7"}, request=request)
    result = failure_from_response(response)
    assert result.status is DeliveryStatus.FAILED
    assert result.reason is not None and result.reason.startswith(str(code))
    assert result.permanent is permanent
    assert result.retry_after == retry_after


def test_failure_reason_includes_platform_error() -> None:
    request = httpx.Request("POST", "https://example.test/x")
    response = httpx.Response(401, json={"error": "The access token is invalid"}, request=request)
    assert failure_from_response(response).reason == (
        "401 Unauthorized: The access token is invalid"
    )


def test_atomic_write_leaves_identical_files_alone(tmp_path: Path) -> None:
    target = tmp_path / "a" / "file.txt"
    assert atomic_write(target, b"one")
    assert not atomic_write(target, b"one")
    assert atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]
    assert target.stat().st_mode & 0o777 == 0o644


async def test_ledger_round_trip_and_corrupt_file(tmp_path: Path) -> None:
    ledger = JsonLedger(tmp_path / "ledger.json")
    assert await ledger.get("k") is None
    await ledger.put("k", "remote-1")
    assert await JsonLedger(tmp_path / "ledger.json").get("k") == "remote-1"
    assert (tmp_path / "ledger.json").stat().st_mode & 0o777 == 0o600
    (tmp_path / "ledger.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(ChannelConfigError, match="not valid JSON"):
        await ledger.get("k")


def test_variant_headline_is_one_line() -> None:
    with pytest.raises(ValidationError, match="one non-empty line"):
        MessageVariant(lang="nb", headline="a\nb", body="")
    assert version_id_for("x") != version_id_for("y")
