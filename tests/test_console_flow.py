"""The console as a crisis team uses it, with keys alone, under ``App.run_test()``.

Sign in → start the incident → compose → approve (another person) → publish → freeze →
answer a batch → correct a rumour, against a real mosquitto and real SQLite files,
asserting on the state and the journal — and what the console refuses along the way.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from textual.widgets import DataTable, Input, Label, Select, Static, TextArea

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.config import Settings
from krise_tui.console.app import ConsoleApp
from krise_tui.console.screens.dialogs import (
    ChoiceScreen,
    ConfirmScreen,
    FreezeScreen,
    PromptScreen,
)
from krise_tui.console.screens.help import HelpScreen
from krise_tui.console.screens.journal import EventScreen, JournalScreen
from krise_tui.console.screens.messages import ApproveScreen, ComposeScreen, MessagesScreen
from krise_tui.console.screens.overview import OverviewScreen
from krise_tui.console.screens.questions import AnswerScreen
from krise_tui.console.screens.rumours import RumoursScreen
from krise_tui.console.screens.start import SignInScreen
from krise_tui.core.events import event_from_json
from krise_tui.core.features.messages import DeliveryStatus
from krise_tui.core.features.rumours import RecordSighting, RumourState
from krise_tui.core.kernel import Accepted
from krise_tui.journal.store import Journal
from krise_tui.runtime import ConsoleRuntime
from tests.conftest import client_for, eventually
from tests.consolekit import (
    PASSPHRASES,
    WAIT,
    questions_at,
    ready,
    showing,
    sign_in,
    status,
    text_of,
)
from tests.corekit import console_settings

QUESTIONS = [
    ("a1", "Når kommer strømmen tilbake i sentrum?"),
    ("a2", "Når er strømmen tilbake?"),
    ("b1", "Er skolen åpen i morgen?"),
]


async def step(predicate: Callable[[], object], *, what: str, timeout: float = WAIT) -> None:
    """Wait for one step of a flow (generous on a loaded machine)."""
    await eventually(lambda: bool(predicate()), what=what, timeout=timeout)


async def journal_types(runtime: ConsoleRuntime) -> list[str]:
    async with await Journal.open(runtime.settings.journal_path, read_only=True) as journal:
        return [event_from_json(row.body).type for row in await journal.tail(10_000)]  # type: ignore[attr-defined]


async def test_sign_in_is_proven_and_journaled_and_a_wrong_passphrase_is_refused(
    make_settings: Callable[..., Settings], signer: Signer
) -> None:
    runtime = ConsoleRuntime(console_settings(make_settings, None), signer=signer, start_bus=False)
    app = ConsoleApp(runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await step(lambda: app.started, what="console start")
        await step(lambda: showing(app, SignInScreen), what="sign-in")
        assert not runtime.signed_in  # the configured operator is only preselected
        await pilot.press(*"feil", "enter")  # focus is on the passphrase: ola is preselected
        await step(lambda: bool(app._notifications), what="a refusal")
        assert "feil passfrase for Ola Hansen" in str(list(app._notifications)[-1].message)
        assert isinstance(app.screen, SignInScreen) and not runtime.signed_in
        await pilot.press("n", "m", "f")  # view keys do nothing while signing in
        assert isinstance(app.screen, SignInScreen)
        await sign_in(pilot, app, "kari")
        await pilot.press("enter")  # the start screen: the playbook's title, Enter
        await step(lambda: runtime.state.is_open, what="opened")
        assert "kari" in status(app) or runtime.operator == "kari"
        await pilot.press("ctrl+q")
    types = await journal_types(runtime)
    assert types.index("operator.signed_in") < types.index("incident.opened")


async def test_the_whole_flow_with_keys_alone(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    runtime = ConsoleRuntime(console_settings(make_settings, mosquitto.endpoint), signer=signer)
    app = ConsoleApp(runtime)
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app, "ola", title="Flom i sentrum")
        await step(lambda: "MQTT ✓" in status(app), what="connected")
        await step(
            lambda: status(app).startswith(" Flom i sentrum · nivå 1 · T+00:00"), what="header"
        )
        # compose: focus starts in the headline; letters are text, not view keys
        await pilot.press("n")
        await step(lambda: showing(app, ComposeScreen), what="composer")
        compose = app.screen
        await pilot.press(*"Rv73 er stengt")
        assert compose.query_one("#headline-nb", Input).value == "Rv73 er stengt"
        await pilot.press("tab")
        await pilot.press(*"Les mer på https://www.test.kommune.no")
        await pilot.press("tab", "tab", "m", "q")  # off the fields: still no view switch
        assert app.screen is compose
        assert "Les mer" in compose.query_one("#body-nb", TextArea).text
        await pilot.press("ctrl+g")
        await step(lambda: showing(app, ApproveScreen), what="approval")
        await pilot.pause()  # its widgets mounted before they are set
        approve = app.screen
        approve.query_one("#approver", Select).value = "kari"
        await pilot.pause()
        assert app.focused is approve.query_one("#passphrase", Input)
        await pilot.press(*PASSPHRASES["kari"], "enter")
        await step(lambda: showing(app, ConfirmScreen), what="confirmation")
        question = text_of(app.screen.query_one("#question", Label))
        assert "Publiser versjon" in question and "til 2 kanaler" in question
        await pilot.press("j")
        await step(lambda: runtime.state.messages.published_version is not None, what="published")
        await step(
            lambda: all(
                d.status is DeliveryStatus.DELIVERED for d in runtime.state.messages.ledger()
            ),
            what="delivered",
        )
        await pilot.press("m")
        await step(lambda: showing(app, MessagesScreen), what="messages view")
        table = app.screen.query_one("#deliveries", DataTable)
        await step(lambda: table.row_count == 2, what="ledger rows")
        assert [str(table.get_row_at(i)[0]) for i in range(2)] == ["nettside", "ansatte"]
        assert all(str(table.get_row_at(i)[1]) == "✓ levert" for i in range(2))
        # freeze, with the expiry in the header
        await pilot.press("f")
        await step(lambda: showing(app, FreezeScreen), what="freeze dialog")
        await pilot.press(*"Flom i sentrum", "tab", "tab", *"30", "enter")
        await step(lambda: showing(app, ConfirmScreen), what="confirm freeze")
        await pilot.press("j")
        await step(lambda: runtime.state.freeze.active, what="frozen")
        await step(lambda: "FRYS ● 0/3 kvittert til" in status(app), what="header")
        # questions arrive, are batched; one shared answer goes to every asker
        async with client_for(mosquitto.endpoint, "bridge-sms") as bridge:
            for post_id, text in QUESTIONS:
                body = json.dumps({"id": post_id, "text": text, "kind": "sms"})
                await bridge.publish(topics.channel_in("test", "sms"), body, qos=1)
        qs = lambda: runtime.state.questions  # noqa: E731
        await step(
            lambda: len(qs().questions) == 3 and all(q.batch_id for q in qs().questions.values()),
            timeout=60,
            what="batched",
        )
        batch_id = qs().resolve(qs().questions["sms:a1"].batch_id or "")
        view = await questions_at(pilot, app, batch_id)
        await pilot.press("a")
        await step(lambda: showing(app, AnswerScreen), what="answer dialog")
        await pilot.pause()  # its widgets mounted before they are set
        answer = app.screen
        await pilot.press(*"Strømmen er tilbake i sentrum innen kl. 18.")
        await pilot.press("shift+tab")  # the question as the website's Q&A page shows it
        await pilot.press(*"Når kommer strømmen tilbake?")
        answer.query_one("#approver", Select).value = "kari"
        await pilot.pause()
        await pilot.press(*PASSPHRASES["kari"], "enter")
        await step(lambda: showing(app, ConfirmScreen), what="confirm answer")
        assert "til 2 spørre(re)" in text_of(app.screen.query_one("#question", Label))
        await pilot.press("j")
        await step(lambda: qs().batches[batch_id].answered, what="answered")
        table = view.query_one("#batches", DataTable)
        await step(lambda: "✓ besvart" in str(table.get_row(batch_id)[3]), what="shown as answered")
        qa = runtime.settings.data_dir / "nettside-ut" / "qa.html"
        await step(lambda: qa.exists(), what="the website's Q&A page")
        page = qa.read_text(encoding="utf-8")
        assert "Når kommer strømmen tilbake?" in page and "innen kl. 18" in page
        # a rumour: registered, checked, found false, corrected by an approved message
        await pilot.press("r")
        await step(lambda: showing(app, RumoursScreen), what="rumours view")
        await pilot.press("i", *"Demningen har brast", "enter")
        await step(lambda: showing(app, ChoiceScreen), what="fact owner")
        await pilot.press("enter")  # the municipality owns these facts
        rumours = lambda: runtime.state.rumours.rumours  # noqa: E731

        def prompt_says(words: str) -> bool:
            screen = app.screen
            return isinstance(screen, PromptScreen) and words in screen.title_text

        await step(lambda: "r1" in rumours(), what="registered")
        listed = app.screen.query_one("#rumours", DataTable)
        await step(lambda: listed.row_count == 1, what="the rumour listed")
        # an asker's SMS turns out to repeat it: linked by hand, it shows where and when
        linked = await runtime.submit(RecordSighting("r1", "sms:a1"), actor="ola")
        assert isinstance(linked, Accepted), linked
        detail = app.screen.query_one("#r-claim", Static)
        await step(lambda: "Sett på: sms 1" in text_of(detail), what="seen on, per channel")
        assert "Per time, siste 6: " in text_of(detail) and ": 1" in text_of(detail)
        assert str(listed.get_row("r1")[3]) == "1" and str(listed.get_row("r1")[4]).strip()
        await pilot.press("k")
        await step(lambda: prompt_says("Hvem sjekker"), what="who checks")
        await pilot.press("enter")  # the one signed in
        await step(lambda: prompt_says("Med hvem"), what="with whom")
        await pilot.press("enter")  # nobody else
        await step(lambda: rumours()["r1"].state is RumourState.CHECKING, what="checking")
        await pilot.press("v", "enter")  # the first verdict offered: false
        await step(lambda: showing(app, PromptScreen), what="source")
        await pilot.press(*"Teknisk vakt har sjekket demningen", "enter")
        await step(lambda: rumours()["r1"].state is RumourState.FALSE, what="false")
        await pilot.press("w")
        await step(lambda: showing(app, ComposeScreen), what="correction")
        await pilot.press(*"Demningen holder", "tab")
        await pilot.press(*"Ryktet stemmer ikke. Les mer på https://www.test.kommune.no")
        await pilot.press("ctrl+g")
        await step(lambda: showing(app, ApproveScreen), what="approve it")
        await pilot.pause()  # its widgets mounted before they are set
        app.screen.query_one("#approver", Select).value = "kari"
        await pilot.pause()
        await pilot.press(*PASSPHRASES["kari"], "enter")
        await step(lambda: showing(app, ConfirmScreen), what="confirm it")
        await pilot.press("j")
        await step(lambda: rumours()["r1"].state is RumourState.CORRECTED, what="corrected")
        version = rumours()["r1"].correction_version or ""
        await step(
            lambda: str(listed.get_row("r1")[5]) == f"v{version[:8]}",
            what="the linked correction in the rumour's row",
        )
        corrected_at = rumours()["r1"].corrected_at
        assert corrected_at is not None  # "frist" says when it was met, not a bare time
        assert str(listed.get_row("r1")[2]) == f"✓ {app.screen.tr.time(corrected_at)}"
        # seen again after the correction: said on every view until marked seen
        assert "tilbake" not in app.banner_text()
        async with client_for(mosquitto.endpoint, "bridge-sms") as bridge:
            body = json.dumps({"id": "c1", "text": "Demningen har brast!", "kind": "sms"})
            await bridge.publish(topics.channel_in("test", "sms"), body, qos=1)
        posts = runtime.state.inbound.posts
        await step(lambda: "sms:c1" in posts, what="a new post")
        again = await runtime.submit(RecordSighting("r1", "sms:c1"), actor="ola")
        assert isinstance(again, Accepted), again  # (or the matcher linked it first)
        await step(lambda: runtime.state.rumours.alerts == ["r1"], what="the recurrence")
        await pilot.press("o")
        await step(lambda: showing(app, OverviewScreen), what="overview")
        banner = app.screen.query_one(".banner", Static)
        await step(
            lambda: "⚠ Korrigert rykte er tilbake: «Demningen har brast» (r1)" in text_of(banner),
            what="the recurrence on the overview's banner",
        )
        await pilot.press("r")
        await step(lambda: showing(app, RumoursScreen), what="back to rumours")
        await pilot.press("a")
        await step(lambda: "tilbake" not in app.banner_text(), what="the alert marked seen")
        # the journal view: search, and Enter opens an event
        await pilot.press("j")
        await step(lambda: showing(app, JournalScreen), what="journal view")
        await pilot.press("slash", *"frys", "enter")
        journal = app.screen.query_one("#journal", DataTable)
        await step(lambda: journal.row_count >= 1, what="search hits")
        assert all("rys" in str(journal.get_row_at(i)[3]).lower() for i in range(journal.row_count))
        journal.focus()
        await pilot.press("enter")
        await step(lambda: showing(app, EventScreen), what="event opened")
        await pilot.press("escape")
        await pilot.press("question_mark")
        await step(lambda: showing(app, HelpScreen), what="help")
        await pilot.press("escape")
        await pilot.press("ctrl+q")
    types = await journal_types(runtime)
    for kind in (
        "operator.signed_in",
        "incident.opened",
        "message.approved",
        "message.published",
        "freeze.changed",
        "question.answer_published",
        "rumour.corrected",
    ):
        assert kind in types, kind
