"""Driving the console under ``App.run_test()`` the way a person does: with keys."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Input, OptionList, Static

from krise_tui.console.app import ConsoleApp
from krise_tui.console.screens.questions import QuestionsScreen
from krise_tui.console.screens.start import SignInScreen, StartScreen
from tests.conftest import eventually

PASSPHRASES = {
    "ola": "passord-ola",
    "kari": "passord-kari",
    "siri": "passord-siri",
    "lise": "passord-lise",
    "jon": "passord-jon",
}
"""The demo and test org files' passphrases (written in their comments)."""

WAIT = 30.0
"""Seconds to wait for a step: generous, for a loaded two-core CI machine (the console
loads its embedding model and checks passphrases with scrypt at the same time)."""


def text_of(node: Any) -> str:
    """What a Static (or Label) shows."""
    return str(node.render())


def showing(app: ConsoleApp, kind: type[Screen[Any]]) -> bool:
    """The view in front is a ``kind`` and mounted: its widgets are there to query.

    A pushed screen composes and mounts its widgets a moment after it is in front; a
    screen is mounted only once all of them are (and its ``on_mount`` has run).
    """
    return isinstance(app.screen, kind) and app.screen.is_mounted


def status(app: ConsoleApp) -> str:
    """The status line of the view in front."""
    for screen in reversed(app.screen_stack):
        found = screen.query(".status")
        if found:
            return text_of(found.first(Static))
    return ""


def banner(app: ConsoleApp) -> str:
    """The banner of the view in front (what needs attention)."""
    return app.banner_text()


async def sign_in(pilot: Pilot[Any], app: ConsoleApp, who: str) -> None:
    """Pick ``who`` in the sign-in list with the arrow keys, type the passphrase, Enter."""
    await eventually(
        lambda: showing(app, SignInScreen) and bool(app.screen.query("#people")),
        what="the sign-in screen",
        timeout=WAIT,
    )
    people = app.screen.query_one("#people", OptionList)
    people.focus()
    await pilot.pause()
    target = people.get_option_index(who)
    await pilot.press("home")
    for _ in range(target):
        await pilot.press("down")
    await pilot.press("enter")
    await eventually(
        lambda: app.focused is app.screen.query_one("#passphrase", Input),
        what="focus",
        timeout=WAIT,
    )
    await pilot.press(*PASSPHRASES[who], "enter")
    await eventually(lambda: app.runtime.signed_in, what=f"{who} signed in", timeout=WAIT)


async def start_incident(pilot: Pilot[Any], app: ConsoleApp, title: str | None = None) -> None:
    """On the start screen: keep or type the title, Enter."""
    await eventually(
        lambda: showing(app, StartScreen) and bool(app.screen.query("#title")),
        what="the start screen",
        timeout=WAIT,
    )
    if title is not None:
        field = app.screen.query_one("#title", Input)
        field.value = ""
        await pilot.press(*title)
    await pilot.press("enter")
    await eventually(lambda: app.runtime.state.is_open, what="the incident opened", timeout=WAIT)


async def ready(
    pilot: Pilot[Any], app: ConsoleApp, who: str = "ola", title: str | None = None
) -> None:
    """Signed in and an incident open: the overview in front."""
    await eventually(lambda: app.started, what="console start", timeout=WAIT)
    await sign_in(pilot, app, who)
    await start_incident(pilot, app, title)
    await eventually(
        lambda: app.current_mode == "overview" and not app.screen.is_modal,
        what="overview",
        timeout=WAIT,
    )
    # The status line is redrawn on the next coalesced tick, not at once.
    await eventually(
        lambda: "Ingen hendelse" not in status(app),
        what="the incident in the status line",
        timeout=WAIT,
    )


async def questions_at(pilot: Pilot[Any], app: ConsoleApp, batch_id: str) -> QuestionsScreen:
    """The questions view in front (``q``), its cursor on ``batch_id``'s row (arrow keys)."""
    await pilot.press("q")
    await eventually(lambda: showing(app, QuestionsScreen), what="questions view")
    view = app.screen
    assert isinstance(view, QuestionsScreen)
    view.query_one("#batches", DataTable).focus()
    for _ in range(30):
        if view.selected_batch() == batch_id:
            break
        await pilot.press("down")
    assert view.selected_batch() == batch_id
    return view
