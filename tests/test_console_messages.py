"""The console's compose → approve → publish flow and the delivery ledger, under run_test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.widgets import DataTable, Input, Select, Static, TextArea

from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.config import Settings
from krise_tui.console.app import ConsoleApp
from krise_tui.console.screens.dialogs import ConfirmScreen
from krise_tui.console.screens.messages import ApproveScreen, ComposeScreen, MessagesScreen
from krise_tui.core.features.messages import DeliveryStatus
from krise_tui.core.kernel import Accepted
from krise_tui.runtime import ConsoleRuntime
from tests.conftest import eventually, writes_allowed, writes_refused
from tests.consolekit import WAIT, banner, ready, showing, status

ROOT = Path(__file__).resolve().parents[1]


async def step(predicate: Callable[[], object], *, what: str, timeout: float = WAIT) -> None:
    """Wait for one step of a flow (generous on a loaded machine)."""
    await eventually(lambda: bool(predicate()), what=what, timeout=timeout)


async def test_compose_lint_approve_publish_and_ledger(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    settings = make_settings(
        mosquitto.endpoint,
        org_file=ROOT / "playbooks" / "orgs" / "eksempel.yaml",
        playbook=ROOT / "playbooks" / "flom-og-skred.yaml",
        operator="jon",
    )
    runtime = ConsoleRuntime(settings, signer=signer)
    app = ConsoleApp(runtime)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app, "jon")
        await step(lambda: "MQTT ✓" in status(app), what="connected")
        assert "Kanaler uten bro" in banner(app)  # the connect did not hide it
        assert "KRISE_FACEBOOK_TOKEN" in banner(app)  # which secret is missing, by name
        await pilot.press("n")
        await step(lambda: showing(app, ComposeScreen), what="compose")
        await pilot.pause()  # its widgets mounted before they are set
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        screen.query_one("#template", Select).value = "forste-melding"
        await pilot.pause()
        body = screen.query_one("#body-nb", TextArea).text
        assert "www.eksempel.kommune.no" in body  # the org's own values are filled in
        lint = lambda: str(screen.query_one("#lint", Static).render())  # noqa: E731
        await step(lambda: "{sted}" in lint() or "plassholder" in lint(), what="lint")
        screen.query_one("#headline-nb", Input).value = "Flom i sentrum"
        screen.query_one(
            "#body-nb", TextArea
        ).text = "Rv73 er stengt ved Svenskvollen. Les mer på https://www.eksempel.kommune.no"
        screen.query_one("#headline-en", Input).value = ""
        screen.query_one("#body-en", TextArea).text = ""
        await step(lambda: "✓ ingen funn" in lint(), what=f"clean lint, not {lint()}")
        await pilot.press("ctrl+g")
        await step(lambda: showing(app, ApproveScreen), what="approval")
        await pilot.pause()  # its widgets mounted before they are set
        approve = app.screen
        assert isinstance(approve, ApproveScreen)
        approve.query_one("#approver", Select).value = "siri"
        approve.query_one("#passphrase", Input).value = "feil passfrase"
        approve.query_one("#passphrase", Input).focus()
        await pilot.press("enter")
        await step(lambda: not runtime.state.messages.versions and bool(app._notifications),
                         what="a refusal")  # fmt: skip
        assert isinstance(app.screen, ApproveScreen)  # still waiting for the right one
        approve.query_one("#passphrase", Input).value = "passord-siri"
        approve.query_one("#passphrase", Input).focus()
        await pilot.press("enter")
        await step(lambda: showing(app, ConfirmScreen), what="confirm")
        question = str(app.screen.query_one("#question").render())
        assert "Publiser versjon" in question and "til 5 kanaler" in question
        await pilot.press("j")
        await step(lambda: bool(runtime.state.messages.published_version), what="published")
        ledger = {d.channel: d for d in runtime.state.messages.ledger()}
        await step(
            lambda: ledger["ansatte"].status is DeliveryStatus.DELIVERED, what="staff delivered"
        )
        await pilot.press("m")
        await step(lambda: showing(app, MessagesScreen), what="ledger")
        table = app.screen.query_one("#deliveries", DataTable)
        await step(lambda: table.row_count == 5, what="a row per channel")
        rows = {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[1])
                for i in range(table.row_count)}  # fmt: skip
        assert next(iter(rows)) == "nettside"  # the website first
        assert rows["ansatte"] == "✓ levert"
        # No bridge can take it from the broker: the row says so, not just "handed over".
        assert rows["facebook"].startswith(("○ i kø – kan ikke startes:", "… overlevert – kan"))
        assert "KRISE_FACEBOOK_TOKEN" in rows["facebook"]
        assert "kan ikke startes" not in rows["ansatte"] + rows["nettside"]
        await pilot.press("u")  # update: the editor opens with the published text
        await step(lambda: showing(app, ComposeScreen), what="update editor")
        update = app.screen
        assert isinstance(update, ComposeScreen) and update.status == "updated"
        assert update.supersedes == runtime.state.messages.published_version
        assert update.query_one("#headline-nb", Input).value == "Flom i sentrum"
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def _to_approval(pilot: Any, app: ConsoleApp, author: str) -> ApproveScreen:
    """Sign in as ``author``, write a clean message, and hand it over for approval."""
    await ready(pilot, app, author)
    await pilot.press("n")
    await step(lambda: showing(app, ComposeScreen), what="compose")
    screen = app.screen
    screen.query_one("#headline-nb", Input).value = "Flom i sentrum"
    screen.query_one("#body-nb", TextArea).text = "Les mer på https://www.eksempel.kommune.no"
    await pilot.press("ctrl+g")
    await step(lambda: showing(app, ApproveScreen), what="approval")
    await pilot.pause()  # its widgets mounted before they are set
    approve = app.screen
    assert isinstance(approve, ApproveScreen)
    return approve


def _sample_console(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> ConsoleRuntime:
    settings = make_settings(
        mosquitto.endpoint,
        org_file=ROOT / "playbooks" / "orgs" / "eksempel.yaml",
        playbook=ROOT / "playbooks" / "flom-og-skred.yaml",
    )
    return ConsoleRuntime(settings, signer=signer)


async def test_approval_by_another_person_has_no_break_glass_field(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    """Tried by hand: after picking the approver, Tab went to the break-glass field (shown
    always, though it applies only to the author approving their own message), and the
    approver's passphrase was typed there in clear text; Enter in it did nothing."""
    runtime = _sample_console(mosquitto, make_settings, signer)
    app = ConsoleApp(runtime)
    async with app.run_test(size=(120, 40)) as pilot:
        approve = await _to_approval(pilot, app, "jon")
        glass = approve.query_one("#break-glass", Input)
        passphrase = approve.query_one("#passphrase", Input)
        assert not glass.display
        await pilot.press("enter", "down", "enter")  # the list: Siri, the only approver
        await step(lambda: approve.query_one("#approver", Select).value == "siri", what="siri")
        assert app.focused is passphrase and not glass.display
        await pilot.press("tab")
        assert app.focused is not glass  # on to the buttons, never into a hidden field
        passphrase.focus()
        await pilot.press("enter")  # nothing typed yet: said, and not a wrong attempt
        await step(lambda: bool(app._notifications), what="a notice")
        assert "Skriv passfrasen" in str(list(app._notifications)[-1].message)
        assert not runtime.identity._failures.get("siri")  # no failed attempt counted
        assert not runtime.state.messages.versions
        await pilot.press(*"passord-siri", "enter")
        await step(lambda: showing(app, ConfirmScreen), what="approved")
        version = next(iter(runtime.state.messages.versions.values()))
        assert version.approver == "siri" and version.break_glass_reason is None
        await pilot.press("n", "ctrl+q")


async def test_the_author_approving_their_own_message_is_asked_why(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    runtime = _sample_console(mosquitto, make_settings, signer)
    app = ConsoleApp(runtime)
    async with app.run_test(size=(120, 40)) as pilot:
        approve = await _to_approval(pilot, app, "siri")
        glass = approve.query_one("#break-glass", Input)
        assert not glass.display
        approve.query_one("#approver", Select).value = "siri"
        await step(lambda: glass.display, what="the break-glass field")
        approve.query_one("#passphrase", Input).focus()
        await pilot.press(*"passord-siri", "enter")
        await step(lambda: bool(app._notifications), what="a refusal")
        assert "begrunnelse" in str(list(app._notifications)[-1].message)
        glass.focus()
        await pilot.press(*"Jon er utilgjengelig")
        approve.query_one("#passphrase", Input).value = "passord-siri"
        await pilot.press("enter")  # Enter in the reason field approves too
        await step(lambda: showing(app, ConfirmScreen), what="approved")
        version = next(iter(runtime.state.messages.versions.values()))
        assert version.break_glass_reason == "Jon er utilgjengelig"
        await pilot.press("n", "ctrl+q")


async def test_an_unwritable_journal_is_in_the_banner_until_the_approval_goes_through(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    """The journal's disk refuses writes while a message waits for approval (read-only
    after an error; a full disk alike, but a small write may still fit in a page already
    there). The banner says the journal cannot be written and that the approval failed;
    writable again, the approval goes through and both are gone (the action's failure
    stayed in the banner for good)."""
    runtime = _sample_console(mosquitto, make_settings, signer)
    app = ConsoleApp(runtime)
    async with app.run_test(size=(120, 40)) as pilot:
        approve = await _to_approval(pilot, app, "jon")
        assert runtime.journal is not None

        await runtime.journal._call(writes_refused)
        approve.query_one("#approver", Select).value = "siri"
        approve.query_one("#passphrase", Input).value = "passord-siri"
        approve.query_one("#passphrase", Input).focus()
        await pilot.press("enter")

        failed = "✗ Godkjenningen feilet: attempt to write a readonly database"
        await step(lambda: failed in banner(app), what="failed")
        assert "Journalen kan ikke skrives (attempt to write a readonly database)" in banner(app)
        assert not runtime.state.messages.versions
        await runtime.journal._call(writes_allowed)
        approve.query_one("#passphrase", Input).value = "passord-siri"
        approve.query_one("#passphrase", Input).focus()
        await pilot.press("enter")
        await step(lambda: showing(app, ConfirmScreen), what="approved")
        await step(lambda: "✗" not in banner(app), what="the failure cleared")
        assert "Journalen" not in banner(app)
        await pilot.press("n", "ctrl+q")


async def test_a_drill_s_console_asks_the_police_as_an_exercise(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    """`c` in a console in exercise mode saves a CAP request with status Exercise: a
    request marked Actual must never come out of a drill."""
    import xml.etree.ElementTree as ET

    from tests.corekit import publish_via

    settings = make_settings(
        mosquitto.endpoint,
        org_file=ROOT / "playbooks" / "orgs" / "eksempel.yaml",
        playbook=ROOT / "playbooks" / "flom-og-skred.yaml",
        operator="jon",
    )
    runtime = ConsoleRuntime(settings, signer=signer, exercise=True)
    app = ConsoleApp(runtime)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app, "jon")
        await step(lambda: "ØVELSE" in status(app), what="the exercise shown")
        text = "Rv73 er stengt ved Svenskvollen. Les mer på https://www.eksempel.kommune.no"
        published = await publish_via(
            runtime, "Flom i sentrum", text, approver="siri", passphrase="passord-siri"
        )
        assert isinstance(published, Accepted), published
        await pilot.press("c")
        await step(lambda: showing(app, ConfirmScreen), what="confirm the request")
        await pilot.press("j")
        saved = lambda: sorted(settings.data_dir.glob("cap-anmodning-*.xml"))  # noqa: E731
        await step(lambda: saved(), what="the request saved")
        cap = ET.fromstring(saved()[0].read_bytes())
        ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
        assert cap.findtext("cap:status", namespaces=ns) == "Exercise"
