"""The Textual console and staff terminal under App.run_test(), against a real mosquitto."""

from __future__ import annotations

from collections.abc import Callable

from textual.widgets import DataTable, Input, Label, Static

from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer, Verifier
from krise_tui.config import Settings
from krise_tui.console.app import ConfirmScreen, ConsoleApp
from krise_tui.runtime import ConsoleRuntime
from krise_tui.staff.app import StaffApp
from krise_tui.staff.runtime import StaffRuntime
from tests.conftest import eventually
from tests.corekit import console_settings, publish_via


def static_text(app: ConsoleApp | StaffApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


async def test_typed_text_never_becomes_a_message_without_approval(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    """The skeleton's plain input is gone: typing and Enter and j publish nothing."""
    runtime = ConsoleRuntime(console_settings(make_settings, mosquitto.endpoint), signer=signer)
    console = ConsoleApp(runtime)
    fnr = "01010112377"
    async with console.run_test(size=(100, 30)) as pilot:
        await eventually(lambda: console.started, what="console start")
        await eventually(lambda: "MQTT ✓" in static_text(console, "#status"), what="connected")
        for _ in range(4):
            await pilot.press("tab")
            await pilot.press(*f"Kontakt Ola {fnr}")
            await pilot.press("enter", "j")
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert not console.query(Input)  # no free text field on the main screen
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
        await eventually(lambda: console.started, what="console start")
        await eventually(lambda: "MQTT ✓" in static_text(console, "#status"), what="connected")
        assert "Testkommune" in static_text(console, "#status") or "Hendelse" in static_text(
            console, "#status"
        )
        await publish_via(runtime, "Rv73 er stengt.")
        await eventually(lambda: "ansatte ✓" in static_text(console, "#current"), what="delivered")
        assert "Rv73 er stengt." in static_text(console, "#current")
        table = console.query_one("#journal", DataTable)
        seqs = [int(str(table.get_row_at(i)[0])) for i in range(table.row_count)]
        assert seqs == sorted(set(seqs))  # each event's own sequence number, in order
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

    runtime = ConsoleRuntime(console_settings(make_settings, mosquitto.endpoint), signer=signer)
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
            lambda: "FRYS ● 0/3 kvittert" in static_text(console, "#status"), what="frozen"
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
                lambda: "1/3 kvittert" in static_text(console, "#status"), what="ack counted"
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
