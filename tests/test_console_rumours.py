"""A rumour is registered from the post that carries it, with one key: in the rumours
view (posts triaged as rumours that no rumour holds are listed there) and on a post in
the questions view. The post becomes its first sighting: where and when it was first
seen. Against a real mosquitto and SQLite journal, the console driven by keys."""

from __future__ import annotations

import json
from collections.abc import Callable

from textual.widgets import DataTable, Input, Static

from krise_tui.bus import topics
from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.config import Settings
from krise_tui.console.app import ConsoleApp
from krise_tui.console.screens.dialogs import ChoiceScreen, PromptScreen
from krise_tui.console.screens.overview import OverviewScreen
from krise_tui.console.screens.questions import QuestionsScreen
from krise_tui.console.screens.rumours import POST_PREFIX, RumoursScreen
from krise_tui.runtime import ConsoleRuntime
from tests.conftest import client_for, eventually
from tests.consolekit import WAIT, ready, showing, text_of
from tests.corekit import console_settings

POSTS = (
    ("r1", "Hørte at demningen ved Storvatnet har brast!!"),
    ("r2", "Noen sier at skolen på Moen er stengt hele uka"),
)


async def test_a_rumour_is_registered_from_its_post_in_either_view(
    mosquitto: MosquittoBroker, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    runtime = ConsoleRuntime(console_settings(make_settings, mosquitto.endpoint), signer=signer)
    app = ConsoleApp(runtime)
    async with app.run_test(size=(140, 36)) as pilot:
        await ready(pilot, app, "ola", title="Flom")
        async with client_for(mosquitto.endpoint, "bridge-sms") as bridge:
            for post_id, text in POSTS:
                body = json.dumps({"id": post_id, "text": text, "kind": "sms"})
                await bridge.publish(topics.channel_in("test", "sms"), body, qos=1)
        qs = runtime.state.questions.questions
        await eventually(
            lambda: all(qs.get(f"sms:{p}") and qs[f"sms:{p}"].label == "rumour" for p, _ in POSTS),
            timeout=WAIT,
            what="both posts triaged as rumours",
        )
        rumours = runtime.state.rumours.rumours

        # The rumours view lists them; Tab to the list, pick the first post, `i`.
        await pilot.press("r")
        await eventually(lambda: showing(app, RumoursScreen), what="rumours view")
        listed = app.screen.query_one("#sightings", DataTable)
        keys = [f"{POST_PREFIX}sms:{p}" for p, _ in POSTS]
        await eventually(
            lambda: {str(k.value) for k in listed.rows} == set(keys), what="the untracked posts"
        )
        assert str(listed.get_row(keys[0])[2]) == "rykte? (i)"
        listed.focus()
        await pilot.pause()
        listed.move_cursor(row=listed.get_row_index(keys[0]))
        await pilot.press("i")
        await eventually(lambda: showing(app, PromptScreen), what="the claim")
        prompt = app.screen
        assert "lenkes som første treff" in prompt.title_text
        assert prompt.query_one("#answer", Input).value == POSTS[0][1]  # to start from
        prompt.query_one("#answer", Input).value = "Demningen ved Storvatnet har brast"
        await pilot.press("enter")
        await eventually(lambda: showing(app, ChoiceScreen), what="the fact owner")
        await pilot.press("enter")
        await eventually(lambda: "r1" in rumours, what="registered")
        first = rumours["r1"]
        assert first.claim == "Demningen ved Storvatnet har brast"
        assert [s.post_key for s in first.sightings] == ["sms:r1"]
        assert first.first_seen == runtime.state.inbound.posts["sms:r1"].received_at
        await eventually(
            lambda: (
                keys[0] not in {str(k.value) for k in listed.rows}
                and keys[1] in {str(k.value) for k in listed.rows}
            ),
            what="the post no longer untracked",
        )

        # In the questions view: the other post, `i` on it.
        await pilot.press("q")
        await eventually(lambda: showing(app, QuestionsScreen), what="questions view")
        view = app.screen
        assert isinstance(view, QuestionsScreen)
        posts = view.query_one("#posts", DataTable)
        await eventually(lambda: posts.row_count >= 1, what="posts outside batches")
        posts.focus()
        await pilot.pause()
        posts.move_cursor(row=posts.get_row_index("sms:r2"))
        await pilot.press("i")
        await eventually(lambda: showing(app, PromptScreen), what="the claim")
        await pilot.press("enter")  # the post's words as they are
        await eventually(lambda: showing(app, ChoiceScreen), what="the fact owner")
        await pilot.press("enter")
        await eventually(lambda: "r2" in rumours, what="registered from the questions view")
        assert rumours["r2"].claim == POSTS[1][1]
        assert [s.post_key for s in rumours["r2"].sightings] == ["sms:r2"]
        # The overview counts down to each correction deadline, naming the claim.
        await pilot.press("o")
        await eventually(lambda: showing(app, OverviewScreen), what="overview")
        deadlines = app.screen.query_one("#ov-deadlines", Static)
        await eventually(
            lambda: "! rykte «Demningen ved Storvatnet har brast» om " in text_of(deadlines),
            what="the rumour's deadline by its claim",
        )
        await pilot.press("ctrl+q")
