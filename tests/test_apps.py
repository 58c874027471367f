"""The Textual console and staff terminal under App.run_test(), against a real mosquitto."""

from __future__ import annotations

from collections.abc import Callable

from textual.widgets import DataTable, Input, Label, Static

from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer, Verifier
from krise_tui.config import Settings
from krise_tui.console.app import ConsoleApp
from krise_tui.console.screens.base import ViewScreen
from krise_tui.console.screens.dialogs import ConfirmScreen, FreezeScreen
from krise_tui.console.screens.journal import JournalScreen
from krise_tui.console.screens.staff import StaffScreen
from krise_tui.runtime import ConsoleRuntime
from krise_tui.staff.app import StaffApp
from krise_tui.staff.runtime import StaffRuntime
from tests.conftest import eventually
from tests.consolekit import WAIT, banner, ready, status
from tests.corekit import console_settings, publish_via


async def step(predicate: Callable[[], object], *, what: str, timeout: float = WAIT) -> None:
    """Wait for one step of a flow (generous on a loaded machine)."""
    await eventually(lambda: bool(predicate()), what=what, timeout=timeout)


def static_text(app: ConsoleApp | StaffApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_typed_text_never_becomes_a_message_without_approval(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    """The skeleton's plain input is gone: typing and Enter and j publish nothing."""
    runtime = ConsoleRuntime(console_settings(make_settings, mosquitto.endpoint), signer=signer)
    console = ConsoleApp(runtime)
    fnr = "01010112377"
    async with console.run_test(size=(100, 30)) as pilot:
        await ready(pilot, console, "ola")
        await step(lambda: "MQTT ✓" in status(console), what="connected")
        for _ in range(4):
            await pilot.press("tab")
            await pilot.press(*f"Kontakt Ola {fnr}")
            await pilot.press("enter", "j")
        for _ in range(4):
            await pilot.press("escape")
        await pilot.pause()
        assert isinstance(console.screen, ViewScreen)
        assert not console.screen.query(Input)  # no free text field on any view
        assert runtime.state.messages.current is None
        assert runtime.state.messages.versions == {}
        await runtime.wait_idle()
        await pilot.press("ctrl+q")
    journal = b"".join(p.read_bytes() for p in runtime.settings.journal_path.parent.glob("j*"))
    assert fnr.encode() not in journal
    store = (
        (mosquitto.data_dir / "mosquitto.db").read_bytes()
        if (mosquitto.data_dir / "mosquitto.db").exists()
        else b""
    )
    assert fnr.encode() not in store
    website = runtime.settings.data_dir / "nettside-ut"
    pages = (
        b"".join(p.read_bytes() for p in website.rglob("*") if p.is_file())
        if website.exists()
        else b""
    )
    assert fnr.encode() not in pages


async def test_console_shows_the_published_message_and_staff_app_shows_it(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    runtime = ConsoleRuntime(console_settings(make_settings, mosquitto.endpoint), signer=signer)
    console = ConsoleApp(runtime)
    async with console.run_test(size=(100, 30)) as pilot:
        await ready(pilot, console, "ola", title="Flom i Testkommune")
        await step(lambda: "MQTT ✓" in status(console), what="connected")
        assert "Flom i Testkommune" in status(console)
        await publish_via(runtime, "Rv73 er stengt.")
        message = lambda: static_text(console, "#ov-message")  # noqa: E731
        await step(lambda: "ansatte ✓ levert" in message(), what="delivered")
        assert "Rv73 er stengt." in message()
        await pilot.press("j")
        await step(lambda: isinstance(console.screen, JournalScreen), what="journal")
        table = console.screen.query_one("#journal", DataTable)
        await step(lambda: table.row_count > 3, what="journal rows")
        seqs = [int(str(table.get_row_at(i)[0])) for i in range(table.row_count)]
        assert seqs == sorted(set(seqs))  # each event's own sequence number, in order
        cells = [str(table.get_row_at(i)[3]) for i in range(table.row_count)]
        assert any("Rv73 er stengt." in c for c in cells), cells

        staff_settings = make_settings(mosquitto.endpoint, user="ansatt-001")
        staff_rt = StaffRuntime(
            staff_settings, "ansatt-001", verifier=Verifier([signer.public_key], org="test")
        )
        staff = StaffApp(staff_rt, "Testkommune")
        async with staff.run_test(size=(80, 24)) as staff_pilot:
            await step(
                lambda: "Rv73 er stengt." in static_text(staff, "#notice"), what="staff notice"
            )
            assert "TESTKOMMUNE" in static_text(staff, "#notice")
            assert "signert av kriseledelsen ✓" in static_text(staff, "#statusline")
            assert "tilkoblet" in static_text(staff, "#statusline")
            await staff_pilot.press("ctrl+q")
        await pilot.press("ctrl+q")


async def test_console_shows_an_error_banner_when_it_cannot_start(
    make_settings: Callable[..., Settings], signer: Signer
) -> None:
    from krise_tui.bus.broker import free_port
    from krise_tui.config import BrokerSettings

    settings = make_settings(None).model_copy(
        update={"broker": BrokerSettings(host="127.0.0.1", port=free_port(), username="x")}
    )
    runtime = ConsoleRuntime(settings, signer=signer)
    console = ConsoleApp(runtime)
    async with console.run_test() as pilot:
        await step(lambda: "frakoblet" in banner(console), what="banner")
        assert "connection refused" in banner(console)
        await pilot.press("ctrl+q")


async def test_staff_app_reports_a_missing_public_key(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(mosquitto.endpoint, user="ansatt-001")
    staff = StaffApp(StaffRuntime(settings, "ansatt-001"), "Testkommune")
    async with staff.run_test() as pilot:
        await step(lambda: "console.pub" in static_text(staff, "#warning"), what="error")
        assert "no such public key file" in static_text(staff, "#warning")
        await pilot.press("ctrl+q")


async def test_console_freezes_shows_rollcall_and_lifts(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    from krise_tui.core.rollcall import StaffStatus

    runtime = ConsoleRuntime(console_settings(make_settings, mosquitto.endpoint), signer=signer)
    console = ConsoleApp(runtime)
    async with console.run_test(size=(100, 30)) as pilot:
        await ready(pilot, console, "ola")
        await step(lambda: "MQTT ✓" in status(console), what="connected")
        assert "FRYS ○ av" in status(console)
        await pilot.press("f")
        await step(lambda: isinstance(console.screen, FreezeScreen), what="freeze dialog")
        await pilot.press(*"Flom i sentrum")
        await pilot.press("enter")
        await step(lambda: isinstance(console.screen, ConfirmScreen), what="confirmation")
        assert "Frys publisering for alle ansatte?" in str(
            console.screen.query_one("#question", Label).render()
        )
        await pilot.press("j")
        await step(lambda: "FRYS ● 0/3 kvittert" in status(console), what="frozen")

        terminal = StaffRuntime(
            make_settings(mosquitto.endpoint, user="ansatt-001"),
            "ansatt-001",
            department="helse",
            verifier=Verifier([signer.public_key], org="test"),
        )
        await terminal.start()
        try:
            await step(lambda: terminal.view.freeze is not None, what="notice")
            await terminal.acknowledge()
            await step(lambda: "1/3 kvittert" in status(console), what="ack counted")
        finally:
            await terminal.stop()

        await pilot.press("s")
        await step(lambda: isinstance(console.screen, StaffScreen), what="roll-call")
        people = console.screen.query_one("#people", DataTable)
        await step(lambda: people.row_count == 3, what="everyone listed")
        rows = {
            str(people.get_row_at(i)[0]): str(people.get_row_at(i)[2])
            for i in range(people.row_count)
        }
        assert rows["ansatt-001"] == "✓ kvittert"
        assert rows["ansatt-002"].startswith("○ frakoblet")
        await pilot.press("e")
        exported = lambda: list(runtime.settings.data_dir.glob("opprop-*.csv"))  # noqa: E731
        await step(lambda: len(exported()) == 1, what="exported")
        assert "ansatt-002" in exported()[0].read_text(encoding="utf-8")

        await pilot.press("f")
        await step(lambda: isinstance(console.screen, FreezeScreen), what="lift dialog")
        await pilot.press(*"Faren er over")
        await pilot.press("enter")
        await step(lambda: isinstance(console.screen, ConfirmScreen), what="confirm lift")
        await pilot.press("j")
        await step(lambda: "FRYS ○ av" in status(console), what="lifted")
        assert runtime.roll_call().ids(StaffStatus.ACKED) == []  # no active notice any more
        await pilot.press("ctrl+q")
