"""Snapshots of the console's views at 80×24, in Norwegian and English.

The incident is prepared in a real journal first (opened from the flood playbook, a
message approved by a second person and published, the playbook's freeze, a rumour),
with a fixed clock and deterministic ids, so nothing in a picture moves between runs:
no wall clock, no random id, no cursor blink. A changed picture fails the test; after
looking at the difference (``snapshot_report.html``), accept it with
``./run test tests/test_console_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from krise_tui.bus.envelope import Signer
from krise_tui.clock import FixedClock
from krise_tui.config import Settings
from krise_tui.console.app import ConsoleApp
from krise_tui.console.screens.start import SignInScreen
from krise_tui.core.features.rumours import RegisterRumour
from krise_tui.runtime import ConsoleRuntime
from tests.conftest import eventually
from tests.corekit import bus, publish_via

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 27, 13, 42, tzinfo=UTC)
OPENED = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)


def ids(prefix: str) -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):031x}"


def settings_for(make_settings: Callable[..., Settings], lang: str) -> Settings:
    return make_settings(
        None,
        org_file=ROOT / "playbooks" / "orgs" / "eksempel.yaml",
        playbook=ROOT / "playbooks" / "flom-og-skred.yaml",
        operator="jon",
        lang=lang,
    )


async def prepare(settings: Settings, signer: Signer) -> None:
    """An incident 42 minutes in: a published message, the freeze, a rumour."""
    clock = FixedClock(OPENED)
    runtime = ConsoleRuntime(settings, clock=clock, signer=signer, start_bus=False, new_id=ids("a"))
    await runtime.start()
    try:
        playbook = runtime.playbook
        assert playbook is not None and runtime.state.is_open
        await eventually(
            lambda: len(runtime.state.questions.batches) == len(playbook.questions),
            timeout=60,
            what="the playbook's anticipated questions",
        )
        clock.set(datetime(2026, 11, 27, 13, 12, tzinfo=UTC))
        await publish_via(
            runtime, "Rv73 er stengt ved Svenskvollen", approver="siri", passphrase="passord-siri"
        )
        clock.set(datetime(2026, 11, 27, 13, 30, tzinfo=UTC))
        await runtime.submit(RegisterRumour("Demningen ved Svenskvollen har brast"))
    finally:
        await runtime.stop()


def console(settings: Settings, signer: Signer) -> ConsoleApp:
    runtime = ConsoleRuntime(
        settings, clock=FixedClock(NOW), signer=signer, start_bus=False, new_id=ids("b")
    )
    return ConsoleApp(runtime)


def shown(key: str | None) -> Callable[[Pilot[Any]], Any]:
    """Sign in (proven), then the view behind ``key``, drawn."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, ConsoleApp)
        await eventually(lambda: app.started, what="start")
        if key is None:
            await eventually(lambda: isinstance(app.screen, SignInScreen), what="sign-in")
            await pilot.pause()
            return
        await app.runtime.sign_in("jon", "passord-jon")
        await eventually(lambda: isinstance(app.screen, SignInScreen), what="sign-in")
        app.screen.dismiss("jon")
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
        app.mark_dirty()
        app._maybe_redraw()
        await pilot.pause(0.2)

    return run_before


VIEWS = [
    ("signin", None),
    ("overview", "o"),
    ("messages", "m"),
    ("questions", "q"),
    ("rumours", "r"),
    ("staff", "s"),
    ("journal", "j"),
]


@pytest.mark.parametrize("lang", ["nb", "en"])
@pytest.mark.parametrize(("view", "key"), VIEWS, ids=[v for v, _ in VIEWS])
def test_view(
    view: str,
    key: str | None,
    lang: str,
    snap_compare: Any,
    make_settings: Callable[..., Settings],
    signer: Signer,
) -> None:
    settings = settings_for(make_settings, lang)
    asyncio.run(prepare(settings, signer))
    assert snap_compare(console(settings, signer), terminal_size=(80, 24), run_before=shown(key))


async def test_the_roll_call_in_english_names_staff_without_a_department_in_english(
    make_settings: Callable[..., Settings], signer: Signer
) -> None:
    """Terminals outside the org file's roster (a non-strict roster: drills, the demo)
    are counted under no department, which the English roll-call called "(uten
    avdeling)"."""
    settings = settings_for(make_settings, "en").model_copy(update={"strict_roster": False})
    await prepare(settings, signer)
    app = console(settings, signer)
    async with app.run_test(size=(100, 30)) as pilot:
        await shown("s")(pilot)
        await app.runtime.submit(
            bus("krise/v1/eksempel/presence/staff/sim-00001", {"status": "online"}), actor="bus"
        )
        await pilot.pause()
        app.mark_dirty()
        app._maybe_redraw()
        await pilot.pause()
        table = app.screen.query_one("#departments", DataTable)
        names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert "(no department)" in names, names
        assert not any("uten" in name for name in names)
        await pilot.press("ctrl+q")
