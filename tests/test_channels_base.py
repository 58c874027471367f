"""The channel seam: message model, text helpers, secrets, registry, error mapping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from krise_tui.channels import (
    ApprovedMessage,
    AttemptOutcome,
    ChannelConfigError,
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
    AttemptState,
    CannotCheck,
    Check,
    DeliveryResult,
    Ledger,
    LedgerEntry,
    atomic_write,
    deliver_once,
    failure_from_exception,
    failure_from_response,
    has_marker,
    parse_retry_after,
    registered_kinds,
    version_marker,
)
from krise_tui.rules.sms import sms_info
from tests.conftest import disk_full, disk_room
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
    ("code", "permanent", "retry_after", "uncertain"),
    [
        (503, False, 7.0, True),
        (429, False, 7.0, False),
        (408, False, None, False),
        (401, True, None, False),
        (422, True, None, False),
        (500, False, None, True),
    ],
)
def test_failure_from_response(
    code: int, permanent: bool, retry_after: float | None, uncertain: bool
) -> None:
    request = httpx.Request("POST", "https://example.test/x")
    response = httpx.Response(code, headers={"Retry-After": "7"}, request=request)
    result = failure_from_response(response)
    assert result.status is AttemptOutcome.FAILED
    assert result.reason is not None and result.reason.startswith(str(code))
    assert result.permanent is permanent
    assert result.retry_after == retry_after
    assert result.uncertain is uncertain  # a 5xx may come after the platform acted


def test_transport_errors_say_whether_the_request_may_have_arrived() -> None:
    request = httpx.Request("POST", "https://example.test/x")
    refused = failure_from_exception(httpx.ConnectError("refused", request=request), timeout=1)
    read = failure_from_exception(httpx.ReadTimeout("slow", request=request), timeout=1)
    reset = failure_from_exception(httpx.ReadError("reset", request=request), timeout=1)
    connect = failure_from_exception(httpx.ConnectTimeout("slow", request=request), timeout=1)
    assert (refused.uncertain, connect.uncertain) == (False, False)
    assert (read.uncertain, reset.uncertain) == (True, True)
    assert read.reason == connect.reason == "timeout after 1 s"


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
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    assert await ledger.get("k") is None
    await ledger.put("k", "remote-1")
    assert await Ledger(tmp_path / "ledger.sqlite3").get("k") == "remote-1"
    assert (tmp_path / "ledger.sqlite3").stat().st_mode & 0o777 == 0o600
    ledger.close()
    (tmp_path / "ledger.sqlite3").write_bytes(b"{oops" * 1000)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"ledger.sqlite3{suffix}").unlink(missing_ok=True)
    with pytest.raises(ChannelConfigError, match="not a ledger database"):
        await Ledger(tmp_path / "ledger.sqlite3").get("k")


async def test_an_old_json_ledger_is_taken_over_once(tmp_path: Path) -> None:
    """Earlier krise wrote a JSON file (also the still older key → remote id format)."""
    old = tmp_path / "facebook.ledger.json"
    old.write_text(
        '{"v1:facebook": "104_901", "v2:facebook": {"state": "in_flight"}}', encoding="utf-8"
    )
    ledger = Ledger(tmp_path / "facebook.ledger.sqlite3")  # the new name: found beside it
    assert await ledger.entry("v1:facebook") == LedgerEntry(
        AttemptState.DELIVERED, remote_id="104_901"
    )
    assert (await ledger.entry("v2:facebook")) == LedgerEntry(AttemptState.IN_FLIGHT)
    assert not old.exists() and (tmp_path / "facebook.ledger.json.migrated").exists()
    await ledger.put("v2:facebook", "104_902")
    assert await Ledger(tmp_path / "facebook.ledger.sqlite3").get("v2:facebook") == "104_902"
    configured = tmp_path / "sms.ledger.json"  # a config that still names the JSON file
    configured.write_text('{"v1:sms": "sms-1"}', encoding="utf-8")
    assert await Ledger(configured).get("v1:sms") == "sms-1"
    assert (tmp_path / "sms.ledger.sqlite3").exists()
    broken = tmp_path / "x.ledger.json"
    broken.write_text("{oops", encoding="utf-8")
    with pytest.raises(ChannelConfigError, match="not valid JSON"):
        await Ledger(tmp_path / "x.ledger.sqlite3").get("k")


async def test_a_large_ledger_costs_no_more_per_change(tmp_path: Path) -> None:
    """A reply to each of 20,000 askers is an entry each: nothing rewrites them all."""
    ledger = Ledger(tmp_path / "sms.ledger.sqlite3")

    def fill() -> None:
        con = ledger._connect()
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO ledger(key, entry) VALUES (?, ?)",
            [(f"r{i}:sms", '{"state": "delivered", "remote_id": "x"}') for i in range(20_000)],
        )
        con.execute("COMMIT")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all in the main file: WAL empty

    await asyncio.to_thread(fill)
    size = (tmp_path / "sms.ledger.sqlite3").stat().st_size
    await ledger.put("new:sms", "sms-9")
    assert await ledger.get("r19999:sms") == "x" and await ledger.get("new:sms") == "sms-9"
    wal = tmp_path / "sms.ledger.sqlite3-wal"
    assert wal.stat().st_size < size / 10  # one change wrote a page or two, not the file


def test_marker_is_the_start_of_the_version_id() -> None:
    message = sample_message()
    assert version_marker(message) == f"ref. v{message.version_id[:12]}"
    assert has_marker(f"<p>Tekst<br />{version_marker(message)}<br />lenke</p>", message)
    longer = f"ref. v{message.version_id[:13]}"  # another version sharing 12 digits
    assert not has_marker(longer, message)
    assert not has_marker(None, message)
    assert not has_marker(version_marker(sample_message(seed="other")), message)


def test_render_text_keeps_the_marker_with_link_and_signature() -> None:
    message = sample_message(nb_body="Lang tekst. " * 80)
    text = render_text(message, "nb", max_chars=300, marker=version_marker(message))
    assert len(text) <= 300
    assert text.endswith(f"\n\n{version_marker(message)}\n{LINK}\n{SIGNATURE}")


class Platform:
    """A stand-in for the platform side of :func:`deliver_once`: counts sends and looks."""

    def __init__(self, answers: list[DeliveryResult]) -> None:
        self.answers = answers
        self.sent: list[bool] = []
        self.looked = 0
        self.has: str | None = None
        self.lookup_error: CannotCheck | None = None

    async def send(self, repeat: bool) -> DeliveryResult:
        self.sent.append(repeat)
        return self.answers.pop(0)

    async def lookup(self, entry: LedgerEntry | None) -> DeliveryResult | Check:
        self.looked += 1
        if self.lookup_error is not None:
            raise self.lookup_error
        if self.has is not None:
            return DeliveryResult.delivered(self.has, reason="found", existing=True)
        return Check.ABSENT


async def test_deliver_once_checks_after_an_uncertain_attempt(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    platform = Platform([DeliveryResult.failed("timeout after 1 s", uncertain=True)])
    first = await deliver_once(ledger, "k", send=platform.send, lookup=platform.lookup)
    assert not first.ok and platform.looked == 0
    entry = await ledger.entry("k")
    assert entry is not None and entry.state is AttemptState.IN_FLIGHT
    platform.has = "post-1"  # it did arrive
    second = await deliver_once(ledger, "k", send=platform.send, lookup=platform.lookup)
    assert second.ok and second.existing and second.remote_id == "post-1"
    assert platform.sent == [False] and platform.looked == 1
    third = await deliver_once(ledger, "k", send=platform.send, lookup=platform.lookup)
    assert third.existing and third.remote_id == "post-1" and platform.looked == 1


async def test_deliver_once_refuses_to_send_blind_when_it_cannot_check(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    await ledger.record("k", LedgerEntry(AttemptState.IN_FLIGHT))  # a crash mid-attempt
    platform = Platform([DeliveryResult.delivered("post-1")])
    platform.lookup_error = CannotCheck("403 Forbidden", permanent=True)
    refused = await deliver_once(ledger, "k", send=platform.send, lookup=platform.lookup)
    assert not refused.ok and refused.permanent and platform.sent == []
    assert refused.reason is not None and "not sending again blind" in refused.reason
    platform.lookup_error = None  # now the platform says it does not have it
    sent = await deliver_once(ledger, "k", send=platform.send, lookup=platform.lookup)
    assert sent.ok and not sent.existing and platform.sent == [False]


async def test_deliver_once_keeps_the_doubt_through_a_definite_failure(tmp_path: Path) -> None:
    """A refusal after an uncertain attempt does not prove the first one left nothing."""
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    platform = Platform(
        [
            DeliveryResult.failed("reset", uncertain=True),
            DeliveryResult.failed("401 Unauthorized", permanent=True),
            DeliveryResult.delivered("sms-1"),
        ]
    )
    for _ in range(3):
        await deliver_once(ledger, "k", send=platform.send)  # no look-up: a gateway
    assert platform.sent == [False, True, True]  # each repeat knows it may be one
    assert await ledger.get("k") == "sms-1"


async def test_a_full_disk_under_the_ledger_is_a_failure_to_record_not_an_adapter_bug(
    tmp_path: Path,
) -> None:
    """SQLite's errors are not OSErrors: with the disk full, deliver_once let them out,
    and the bridge took them for a bug in the adapter, a final failure. A post that had
    gone out was reported failed for good (and a re-send of an e-mail sends it twice);
    one that could not be recorded before sending was never retried. (SQLite's page
    limit stands in for the full disk: the same SQLITE_FULL error.)"""
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    await ledger.record("warm", LedgerEntry(AttemptState.DELIVERED, remote_id="1"))
    con = ledger._con
    assert con is not None

    sent: list[str] = []

    async def send_then_full(repeat: bool) -> DeliveryResult:
        sent.append("k")
        disk_full(con)  # the disk fills while the platform takes the post
        return DeliveryResult.delivered("p" * 20_000)  # a row that needs new pages

    delivered = await deliver_once(ledger, "k", send=send_then_full)
    assert delivered.ok and sent == ["k"]  # it went out: said so, not "failed"
    assert delivered.reason is not None and "could not be written" in delivered.reason
    assert "database or disk is full" in delivered.reason
    entry = await ledger.entry("k")
    assert entry is not None and entry.state is AttemptState.IN_FLIGHT  # checked next time

    async def never(repeat: bool) -> DeliveryResult:
        raise AssertionError("sent although the attempt could not be recorded")

    refused = await deliver_once(ledger, "n" * 20_000, send=never)
    assert not refused.ok and not refused.permanent  # a transient failure: retried
    assert refused.reason is not None
    assert refused.reason.startswith("cannot record the attempt before sending: ledger ")
    disk_room(con)
    retried = await deliver_once(ledger, "n" * 20_000, send=lambda repeat: _delivered("post-2"))
    assert retried.ok and await ledger.get("n" * 20_000) == "post-2"


async def _delivered(remote_id: str) -> DeliveryResult:
    return DeliveryResult.delivered(remote_id)


async def test_deliver_once_writes_the_intent_before_sending(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    seen: list[LedgerEntry | None] = []

    async def send(repeat: bool) -> DeliveryResult:
        seen.append(await Ledger(path).entry("k"))  # what a crash now would leave
        return DeliveryResult.delivered("post-1")

    await deliver_once(Ledger(path), "k", send=send)
    assert [entry.state if entry else None for entry in seen] == [AttemptState.IN_FLIGHT]
    assert await Ledger(path).get("k") == "post-1"


async def test_a_recheck_looks_even_without_doubt(tmp_path: Path) -> None:
    ledger = Ledger(None)
    platform = Platform([DeliveryResult.failed("404 Not Found", permanent=True)])
    await deliver_once(ledger, "k", send=platform.send, lookup=platform.lookup)
    platform.has = "post-9"  # posted after all (by another bridge, or by hand)
    again = await deliver_once(
        ledger, "k", send=platform.send, lookup=platform.lookup, recheck=True
    )
    assert again.existing and again.remote_id == "post-9" and platform.looked == 1


def test_variant_headline_is_one_line() -> None:
    with pytest.raises(ValidationError, match="one non-empty line"):
        MessageVariant(lang="nb", headline="a\nb", body="")
    assert version_id_for("x") != version_id_for("y")
