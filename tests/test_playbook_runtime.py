"""The console follows the playbook: activation journaled, hash on every row, hot reload."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from krise_tui.bus.envelope import Signer
from krise_tui.config import Settings
from krise_tui.console.app import ConsoleApp
from krise_tui.core.features.incident import PlaybookActivated
from krise_tui.journal.store import Journal, verify_file
from krise_tui.runtime import ConsoleRuntime
from tests.conftest import eventually
from tests.corekit import publish_via

ROOT = Path(__file__).resolve().parents[1]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def playbook_copy(tmp_path: Path) -> Path:
    target = tmp_path / "flom.yaml"
    shutil.copy(ROOT / "playbooks" / "flom-og-skred.yaml", target)
    return target


async def test_activation_freeze_and_the_hash_on_every_row(
    tmp_path: Path, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    playbook = playbook_copy(tmp_path)
    settings = make_settings(
        None,
        org_file=ROOT / "playbooks" / "orgs" / "eksempel.yaml",
        playbook=playbook,
        operator="lise",
    )
    runtime = ConsoleRuntime(settings, signer=signer, start_bus=False)
    await runtime.start()
    try:
        first = sha(playbook)
        assert runtime.settings.org == "eksempel"
        assert runtime.roster is not None and runtime.roster["ansatt-001"] == "administrasjon"
        assert runtime.state.incident.title == "Flom og jordskred"
        assert runtime.state.incident.playbook_hash == first
        freeze = runtime.state.freeze.current  # the playbook says: freeze on activation
        assert freeze is not None and freeze.active and freeze.notice["nb"]
        assert freeze.departments == []

        # Hot reload: a changed file is validated and switched to, and journaled.
        playbook.write_text(
            playbook.read_text(encoding="utf-8") + "\n# revidert\n", encoding="utf-8"
        )
        second = sha(playbook)
        await eventually(lambda: runtime.state.incident.playbook_hash == second, what="reload")
        await publish_via(runtime, "Rv73 er stengt.", approver="siri", passphrase="passord-siri")

        # A broken edit is reported with file:line:column; the last good one stays.
        playbook.write_text(
            playbook.read_text(encoding="utf-8").replace("deadlines:", "dedlines:"),
            encoding="utf-8",
        )
        await eventually(lambda: bool(runtime.playbook_problems), what="problems")
        assert str(runtime.playbook_problems[0]).startswith(f"{playbook}:")
        assert runtime.playbook_hash == second
        assert runtime.playbook is not None and runtime.playbook.id == "flom-og-skred"
    finally:
        await runtime.stop()

    con = sqlite3.connect(settings.journal_path)
    rows = con.execute("SELECT type, playbook_hash FROM events ORDER BY seq").fetchall()
    con.close()
    assert all(h in (first, second) for _, h in rows)  # every row records its playbook
    switch = [i for i, (t, _) in enumerate(rows) if t == "playbook.activated"]
    assert len(switch) == 2
    assert rows[switch[1]][1] == second and rows[-1][1] == second
    async with await Journal.open(settings.journal_path) as journal:
        activated = [e for e in await journal.read_events() if isinstance(e, PlaybookActivated)]
    assert [e.hash for e in activated] == [first, second]
    assert verify_file(settings.journal_path).ok


async def test_restart_with_the_same_playbook_journals_no_new_activation(
    tmp_path: Path, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    playbook = playbook_copy(tmp_path)
    settings = make_settings(None, playbook=playbook)
    for _ in range(2):
        runtime = ConsoleRuntime(settings, signer=signer, start_bus=False)
        await runtime.start()
        await runtime.stop()
    async with await Journal.open(settings.journal_path) as journal:
        events = await journal.read_events()
    assert sum(isinstance(e, PlaybookActivated) for e in events) == 1
    assert sum(getattr(e, "type", "") == "freeze.changed" for e in events) == 1


@pytest.mark.parametrize(
    ("lang", "waiting", "none_loaded"),
    [
        ("nb", "Dreieboka har feil", "ingen gyldig dreiebok"),
        ("en", "The playbook has problems", "no valid playbook"),
    ],
)
async def test_console_shows_playbook_errors_and_keeps_running(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    signer: Signer,
    lang: str,
    waiting: str,
    none_loaded: str,
) -> None:
    playbook = tmp_path / "broken.yaml"
    playbook.write_text("id: flom\ntitle: {nb: Flom}\nunknown_key: 1\n", encoding="utf-8")
    settings = make_settings(None, playbook=playbook, lang=lang)
    runtime = ConsoleRuntime(settings, signer=signer, start_bus=False)
    app = ConsoleApp(runtime)
    async with app.run_test(size=(100, 30)) as pilot:
        banner = app.banner_text
        await eventually(lambda: waiting in banner(), what="banner")
        assert "broken.yaml:1:1: missing required key" in banner()
        assert none_loaded in banner()
        assert not runtime.state.is_open  # not opened as a generic incident on a broken one
        await pilot.press("ctrl+q")


async def test_a_broken_playbook_at_first_start_opens_nothing_until_it_is_fixed(
    tmp_path: Path, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    playbook = tmp_path / "flom.yaml"
    good = (ROOT / "playbooks" / "flom-og-skred.yaml").read_text(encoding="utf-8")
    playbook.write_text(good.replace("deadlines:", "dedlines:"), encoding="utf-8")
    settings = make_settings(
        None,
        org_file=ROOT / "playbooks" / "orgs" / "eksempel.yaml",
        playbook=playbook,
        operator="lise",
    )
    runtime = ConsoleRuntime(settings, signer=signer, start_bus=False)
    await runtime.start()
    try:
        assert not runtime.state.is_open  # not a generic "Hendelse" with no freeze
        assert "playbook-wait" in runtime.concerns
        english = runtime.concern("playbook-wait", "en") or ""
        assert english.startswith("The playbook has errors: the incident opens when")
        playbook.write_text(good, encoding="utf-8")
        await eventually(lambda: runtime.state.is_open, what="opened once the playbook is valid")
        assert runtime.state.incident.title == "Flom og jordskred"
        # The playbook's freeze on activation follows as its own journaled decision.
        await eventually(lambda: runtime.state.freeze.active, what="the playbook's freeze")
        assert "playbook-wait" not in runtime.concerns
        assert runtime.concern("playbook-wait", "en") is None
    finally:
        await runtime.stop()
    # A later start keeps the playbook's incident (nothing generic was journaled first).
    again = ConsoleRuntime(settings, signer=signer, start_bus=False)
    await again.start()
    try:
        assert again.state.incident.title == "Flom og jordskred"
    finally:
        await again.stop()


async def test_the_operator_may_open_without_a_valid_playbook_and_activate_it_later(
    tmp_path: Path, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    playbook = tmp_path / "flom.yaml"
    good = (ROOT / "playbooks" / "flom-og-skred.yaml").read_text(encoding="utf-8")
    playbook.write_text("id: [broken", encoding="utf-8")
    settings = make_settings(
        None,
        org_file=ROOT / "playbooks" / "orgs" / "eksempel.yaml",
        playbook=playbook,
        operator="lise",
    )
    runtime = ConsoleRuntime(settings, signer=signer, start_bus=False, open_without_playbook=True)
    await runtime.start()
    try:
        assert runtime.state.is_open and runtime.state.incident.playbook_hash is None
        assert not runtime.state.freeze.active
        playbook.write_text(good, encoding="utf-8")
        await eventually(
            lambda: runtime.state.incident.playbook_hash is not None, what="activated later"
        )
        # Its freeze policy applies on first activation (its own journaled decision).
        await eventually(lambda: runtime.state.freeze.active, what="the playbook's freeze")
    finally:
        await runtime.stop()


async def test_the_console_in_english_says_its_concerns_in_english(
    tmp_path: Path, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    """The runtime's concerns (a playbook to fix, a journal that cannot be written, an
    intake in trouble) were shown in bokmål whatever the console's language."""
    playbook = tmp_path / "flom.yaml"
    good = (ROOT / "playbooks" / "flom-og-skred.yaml").read_text(encoding="utf-8")
    playbook.write_text(good.replace("deadlines:", "dedlines:"), encoding="utf-8")
    settings = make_settings(
        None,
        org_file=ROOT / "playbooks" / "orgs" / "eksempel.yaml",
        playbook=playbook,
        operator="lise",
        lang="en",
    )
    runtime = ConsoleRuntime(settings, signer=signer, start_bus=False)
    app = ConsoleApp(runtime, ask_start=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await eventually(lambda: "playbook-wait" in runtime.concerns, what="the concern")
        await eventually(lambda: "The playbook has errors: the incident" in app.banner_text())
        assert "Dreieboka har feil:" not in app.banner_text()
        await pilot.press("ctrl+q")  # at once: the sign-in screen may be on its way
