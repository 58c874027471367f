"""One approved message to every channel, end to end: console, bus, in-process bridges,
real HTTP endpoints on 127.0.0.1, the website directory — with a failing channel, a
permanent failure and a retry that never posts twice."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.config import Settings
from krise_tui.core.features.messages import (
    DeliveryStatus,
    DraftVariant,
    PublishVersion,
    RetryDelivery,
    SaveDraft,
)
from krise_tui.core.kernel import Accepted
from krise_tui.playbook.models import hash_passphrase
from krise_tui.runtime import ConsoleRuntime
from tests.conftest import eventually
from tests.fakes import MASTODON_TOKEN, FakePlatform

ROOT = Path(__file__).resolve().parents[1]
WEB = "https://www.testby.kommune.no"


def write_org(tmp_path: Path, mastodon: FakePlatform, hook: FakePlatform) -> Path:
    org = tmp_path / "org.yaml"
    org.write_text(
        f"""
name: Testby kommune
slug: test
municipality_number: "9998"
website: {WEB}
required_languages: [nb]
operators:
  - {{id: ola, full_name: Ola Hansen, title: informasjonsmedarbeider,
      role: informasjonsmedarbeider, passphrase_hash: "{hash_passphrase("ola-pass")}"}}
  - {{id: kari, full_name: Kari Nordmann, title: kriseleder,
      role: kriseleder, passphrase_hash: "{hash_passphrase("kari-pass")}"}}
channels:
  - {{id: nettside, kind: website, endpoint: {tmp_path / "www"}}}
  - {{id: mastodon, kind: mastodon, endpoint: {mastodon.url},
      credentials: {{env: TEST_MASTODON_TOKEN}}}}
  - {{id: intranett, kind: webhook, endpoint: {hook.url}/hook}}
  - {{id: ansatte, kind: staff}}
""",
        encoding="utf-8",
    )
    return org


def write_playbook(tmp_path: Path) -> Path:
    source = (ROOT / "playbooks" / "flom-og-skred.yaml").read_text(encoding="utf-8")
    text = source.replace(
        "channels: [nettside, facebook, sms, epost, ansatte]",
        "channels: [nettside, mastodon, intranett, ansatte]",
    )
    assert text != source
    path = tmp_path / "flom.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Scene:
    """A fake Mastodon, a webhook receiver and console settings that use them."""

    mastodon: FakePlatform
    hook: FakePlatform
    settings: Settings


@pytest.fixture
def scene(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Scene]:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", MASTODON_TOKEN)
    mastodon, hook = FakePlatform().start(), FakePlatform().start()
    settings = make_settings(
        mosquitto.endpoint,
        org_file=write_org(tmp_path, mastodon, hook),
        playbook=write_playbook(tmp_path),
        operator="ola",
    )
    try:
        yield Scene(mastodon, hook, settings)
    finally:
        mastodon.stop()
        hook.stop()


async def test_every_channel_gets_the_same_version_and_retries_never_post_twice(
    tmp_path: Path, scene: Scene, signer: Signer
) -> None:
    mastodon, hook, settings = scene.mastodon, scene.hook, scene.settings
    mastodon.fail_next(503, retry_after="1")  # the first attempt hits an outage
    hook.fail_next(401, body={"error": "Invalid API key"})  # a permanent failure
    runtime = ConsoleRuntime(settings, signer=signer)
    try:
        await runtime.start()
        assert set(runtime.bridges) == {"nettside", "mastodon", "intranett"}
        assert runtime.bridge_errors == {}
        version_id = await publish_text(runtime, "Rv73 er stengt ved Svenskvollen. Følg med på")
        ledger = {d.channel: d for d in runtime.state.messages.ledger()}

        def status(channel: str) -> DeliveryStatus:
            return ledger[channel].status

        await eventually(lambda: status("nettside") is DeliveryStatus.DELIVERED, what="web")
        await eventually(lambda: status("ansatte") is DeliveryStatus.DELIVERED, what="staff")
        await eventually(
            lambda: (
                status("intranett") is DeliveryStatus.FAILED and not ledger["intranett"].retrying
            ),
            what="a final failure",
        )
        assert "401" in (ledger["intranett"].reason or "")
        await eventually(
            lambda: status("mastodon") is DeliveryStatus.DELIVERED, timeout=20, what="mastodon"
        )
        assert ledger["mastodon"].attempts >= 2  # failed once, then delivered

        # The operator fixes the key and retries that one channel only.
        await runtime.submit(RetryDelivery(ledger["intranett"].effect_id))
        await eventually(lambda: status("intranett") is DeliveryStatus.DELIVERED, what="retry")
        # …and a retry of an already delivered channel is refused: nothing twice.
        again = await runtime.submit(RetryDelivery(ledger["mastodon"].effect_id))
        assert not isinstance(again, Accepted)
    finally:
        await runtime.stop()

    # The same version everywhere, each platform posted exactly once.
    assert len(mastodon.statuses) == 1
    assert len(hook.hooks) == 1
    keys = {r.header("Idempotency-Key") for r in mastodon.requests + hook.requests}
    assert keys == {f"{version_id}:mastodon", f"{version_id}:intranett"}
    page = tmp_path / "www" / "v" / f"{version_id}.html"
    assert page.exists() and "Rv73 er stengt" in page.read_text(encoding="utf-8")
    shutil.rmtree(tmp_path / "www")


async def publish_text(runtime: ConsoleRuntime, text: str, **draft: object) -> str:
    saved = await runtime.submit(
        SaveDraft((DraftVariant("nb", "Flomvarsel", f"{text} {WEB}"),), **draft)  # type: ignore[arg-type]
    )
    assert isinstance(saved, Accepted), saved
    approved = await runtime.approve(
        saved.events[0].draft_id,  # type: ignore[attr-defined]
        approver="kari",
        passphrase="kari-pass",
    )
    assert isinstance(approved, Accepted), approved
    version_id: str = approved.events[0].version_id  # type: ignore[attr-defined]
    assert isinstance(await runtime.submit(PublishVersion(version_id)), Accepted)
    return version_id


async def test_update_edits_in_place_and_a_hanging_channel_delays_no_other(
    tmp_path: Path, scene: Scene, signer: Signer
) -> None:
    mastodon, hook, settings = scene.mastodon, scene.hook, scene.settings
    runtime = ConsoleRuntime(settings, signer=signer)
    try:
        await runtime.start()
        first = await publish_text(runtime, "Rv73 er stengt.")
        await eventually(
            lambda: all(
                d.status is DeliveryStatus.DELIVERED for d in runtime.state.messages.ledger(first)
            ),
            what="first version delivered",
        )
        hook.hang = True  # the intranet stops answering
        second = await publish_text(
            runtime, "Rv73 er åpnet igjen.", status="updated", supersedes=first
        )
        ledger = {d.channel: d for d in runtime.state.messages.ledger(second)}
        await eventually(
            lambda: all(
                ledger[c].status is DeliveryStatus.DELIVERED
                for c in ("nettside", "mastodon", "ansatte")
            ),
            timeout=5,
            what="the other channels, while the intranet hangs",
        )
        assert ledger["intranett"].status is not DeliveryStatus.DELIVERED
    finally:
        await runtime.stop()
    # Mastodon: the update edited the first status in place (PUT), no second status.
    assert len(mastodon.statuses) == 1
    (status,) = mastodon.statuses.values()
    assert status["edits"] == 1 and "åpnet igjen" in status["text"]
    index = (tmp_path / "www" / "index.html").read_text(encoding="utf-8")
    assert "Oppdatert" in index and "åpnet igjen" in index


async def test_a_console_killed_mid_publish_finishes_every_delivery_once_on_restart(
    tmp_path: Path, scene: Scene, signer: Signer
) -> None:
    mastodon, hook, settings = scene.mastodon, scene.hook, scene.settings
    # The publish is journaled, then the process dies before any delivery.
    crashed = ConsoleRuntime(settings, signer=signer, start_bus=False)
    await crashed.start()
    version_id = await publish_text(crashed, "Skolen er stengt i morgen.")
    pending = {e.effect_id for e in crashed.state.outbox.pending()}
    ledger = crashed.state.messages.ledger(version_id)
    assert len(ledger) == 4 and all(d.effect_id in pending for d in ledger)
    await crashed.stop()

    restarted = ConsoleRuntime(settings, signer=signer)
    await restarted.start()
    try:
        await eventually(
            lambda: all(
                d.status is DeliveryStatus.DELIVERED
                for d in restarted.state.messages.ledger(version_id)
            ),
            timeout=15,
            what="every channel delivered after the restart",
        )
    finally:
        await restarted.stop()
    # A second restart finds nothing left to do and posts nothing again.
    again = ConsoleRuntime(settings, signer=signer)
    await again.start()
    await again.stop()
    assert len(mastodon.statuses) == 1
    assert len(hook.hooks) == 1
