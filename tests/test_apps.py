"""The Textual console and staff terminal under App.run_test(), against a real mosquitto."""

from __future__ import annotations

from collections.abc import Callable

from textual.widgets import DataTable, Input, Label, Static

from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer, Verifier
from krise_tui.config import Settings
from krise_tui.console.app import ConfirmScreen, ConsoleApp
from krise_tui.runtime import ConsoleRuntime, StaffRuntime
from krise_tui.staff.app import StaffApp
from tests.conftest import eventually


def static_text(app: ConsoleApp | StaffApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


async def test_console_publishes_after_confirmation_and_staff_app_shows_it(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    runtime = ConsoleRuntime(make_settings(mosquitto.endpoint), signer=signer)
    console = ConsoleApp(runtime)
    async with console.run_test(size=(100, 30)) as pilot:
        await eventually(lambda: console.started, what="console start")
        await eventually(lambda: "MQTT ✓" in static_text(console, "#status"), what="connected")
        assert "Hendelse" in static_text(console, "#status")

        await pilot.press("n")
        assert isinstance(console.focused, Input)
        await pilot.press(*"Rv73 er stengt.")
        await pilot.press("enter")
        await eventually(lambda: isinstance(console.screen, ConfirmScreen), what="confirmation")
        assert "Publiser versjon" in str(console.screen.query_one("#question", Static).render())
        await pilot.press("n")  # answer no: nothing is published
        await pilot.pause()
        assert runtime.state.current_message is None

        await pilot.press("enter")
        await eventually(lambda: isinstance(console.screen, ConfirmScreen), what="confirmation")
        await pilot.press("j")  # ja
        await eventually(
            lambda: "ansatte ✓ levert" in static_text(console, "#current"), what="delivered"
        )
        assert runtime.state.current_message is not None
        assert runtime.state.current_message.text == "Rv73 er stengt."
        table = console.query_one("#journal", DataTable)
        cells = [str(table.get_row_at(i)[2]) for i in range(table.row_count)]
        assert any("Gjeldende budskap" in c for c in cells)

        staff_settings = make_settings(mosquitto.endpoint, user="ansatt-001")
        staff_rt = StaffRuntime(
            staff_settings, "ansatt-001", verifier=Verifier([signer.public_key], org="test")
        )
        staff = StaffApp(staff_rt, "Testkommune")
        async with staff.run_test(size=(80, 24)) as staff_pilot:
            await eventually(
                lambda: "Rv73 er stengt." in static_text(staff, "#notice"), what="staff notice"
            )
            assert "TESTKOMMUNE" in static_text(staff, "#notice")
            assert "signert av kriseledelsen ✓" in static_text(staff, "#statusline")
            assert "tilkoblet" in static_text(staff, "#statusline")
            await staff_pilot.press("ctrl+q")


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
        await eventually(lambda: "frakoblet" in static_text(console, "#banner"), what="banner")
        assert "connection refused" in static_text(console, "#banner")
        await pilot.press("ctrl+q")


async def test_staff_app_reports_a_missing_public_key(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(mosquitto.endpoint, user="ansatt-001")
    staff = StaffApp(StaffRuntime(settings, "ansatt-001"), "Testkommune")
    async with staff.run_test() as pilot:
        await eventually(lambda: "console.pub" in static_text(staff, "#warning"), what="error")
        assert "no such public key file" in static_text(staff, "#warning")
        await pilot.press("ctrl+q")


async def test_console_freezes_shows_rollcall_and_lifts(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    from krise_tui.console.app import FreezeScreen, RollCallScreen
    from krise_tui.core.rollcall import StaffStatus

    roster = {"ansatt-001": "helse", "ansatt-002": "skole"}
    runtime = ConsoleRuntime(make_settings(mosquitto.endpoint), signer=signer, roster=roster)
    console = ConsoleApp(runtime)
    async with console.run_test(size=(100, 30)) as pilot:
        await eventually(lambda: "MQTT ✓" in static_text(console, "#status"), what="connected")
        assert "FRYS ○ av" in static_text(console, "#status")
        await pilot.press("f")
        await eventually(lambda: isinstance(console.screen, FreezeScreen), what="freeze dialog")
        await pilot.press(*"Flom i sentrum")
        await pilot.press("enter")
        await eventually(lambda: isinstance(console.screen, ConfirmScreen), what="confirmation")
        assert "Frys publisering for alle ansatte?" in str(
            console.screen.query_one("#question", Label).render()
        )
        await pilot.press("j")
        await eventually(
            lambda: "FRYS ● 0/2 kvittert" in static_text(console, "#status"), what="frozen"
        )

        terminal = StaffRuntime(
            make_settings(mosquitto.endpoint, user="ansatt-001"),
            "ansatt-001",
            department="helse",
            verifier=Verifier([signer.public_key], org="test"),
        )
        await terminal.start()
        try:
            await eventually(lambda: terminal.view.freeze is not None, what="notice")
            await terminal.acknowledge()
            await eventually(
                lambda: "1/2 kvittert" in static_text(console, "#status"), what="ack counted"
            )
        finally:
            await terminal.stop()

        await pilot.press("s")
        await eventually(lambda: isinstance(console.screen, RollCallScreen), what="roll-call")
        people = console.screen.query_one("#people", DataTable)
        rows = {
            str(people.get_row_at(i)[0]): str(people.get_row_at(i)[2])
            for i in range(people.row_count)
        }
        assert rows["ansatt-001"] == "✓ kvittert"
        assert rows["ansatt-002"].startswith("○ frakoblet")
        await pilot.press("e")
        exported = list(runtime.settings.data_dir.glob("opprop-*.csv"))
        assert len(exported) == 1 and "ansatt-002" in exported[0].read_text(encoding="utf-8")
        await pilot.press("escape")

        await pilot.press("f")
        await eventually(lambda: isinstance(console.screen, FreezeScreen), what="lift dialog")
        await pilot.press(*"Faren er over")
        await pilot.press("enter")
        await eventually(lambda: isinstance(console.screen, ConfirmScreen), what="confirm lift")
        await pilot.press("j")
        await eventually(lambda: "FRYS ○ av" in static_text(console, "#status"), what="lifted")
        assert runtime.roll_call().ids(StaffStatus.ACKED) == []  # no active notice any more
        await pilot.press("ctrl+q")
