"""Drill scenarios without a broker: the samples, precise errors, the schema, the clock,
the id source, what counts as a real platform, pseudonyms and the report's escaping."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import html5lib
import pytest

from krise_tui.drill.clock import ActorIds, VirtualClock
from krise_tui.drill.pseudonym import ID_REPLACEMENT, Pseudonymiser
from krise_tui.drill.report import failure_rows, render_html, render_markdown
from krise_tui.drill.scenario import (
    ScenarioError,
    check_scenario,
    load_scenario,
    parse_scenario,
)
from krise_tui.drill.schema import FILE_NAME, schema_drifted, write_schema
from krise_tui.drill.scoring import (
    ChannelFailure,
    FreezeCurve,
    ObjectiveResult,
    RumourRow,
    Scorecard,
    TimelineRow,
)
from krise_tui.drill.sinks import locality
from krise_tui.playbook.models import ChannelKind
from krise_tui.playbook.schema import DEFAULT_DIR

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "playbooks" / "scenarios").glob("*.yaml"))
FLOOD = ROOT / "playbooks" / "flom-og-skred.yaml"
ORG = ROOT / "playbooks" / "orgs" / "eksempel.yaml"

HEAD = f"""id: test
title: Test
playbook: {FLOOD}
org: {ORG}
start: 2026-11-27T14:00:00+01:00
duration: 1h
situation: {{nb: Det regner.}}
"""


def write(tmp_path: Path, body: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + body, encoding="utf-8")
    return path


def only_problem(path: Path) -> str:
    problems = check_scenario(path)
    assert len(problems) == 1, [str(p) for p in problems]
    return str(problems[0])


# --- the samples ------------------------------------------------------------------------------


def test_there_is_a_sample_scenario_for_every_sample_playbook() -> None:
    playbooks = {p.stem for p in (ROOT / "playbooks").glob("*.yaml")}
    exercised = {load_scenario(path).playbook.id for path in SCENARIOS}
    assert exercised == playbooks


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_sample_scenarios_are_valid_and_have_a_good_and_a_weak_response(path: Path) -> None:
    assert check_scenario(path) == []
    scenario = load_scenario(path).scenario
    assert set(scenario.responses) == {"god", "svak"}
    good, weak = scenario.responses["god"], scenario.responses["svak"]
    assert good.expect is not None and good.expect.missed == []
    assert weak.expect is not None and weak.expect.missed  # it misses some
    assert set(weak.expect.missed) < {o.id for o in scenario.objectives}
    assert sum(1 for _ in scenario.posts()) >= 100


def test_the_flood_is_realistic_in_volume_and_variety() -> None:
    scenario = load_scenario(ROOT / "playbooks" / "scenarios" / "flom-sentrum.yaml").scenario
    posts = [p for _, p, _ in scenario.posts()]
    assert len(posts) >= 250
    assert {p.channel for p in posts} == {"facebook", "sms", "epost", "nettside"}
    assert {p.kind for p in posts} >= {"question", "criticism", "rumour", "attack", "case"}
    assert len({p.text for p in posts}) > len(posts) // 3
    events = {i.world.event for i in scenario.timeline if i.world}
    assert {"channel_down", "channel_up", "broker_restart", "road_closed"} <= events


# --- precise errors ---------------------------------------------------------------------------


def test_a_misspelt_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "timline: []\n")
    assert only_problem(path) == f"{path}:8:1: unknown key 'timline' — did you mean 'timeline'?"


def test_an_offset_written_in_words_is_refused_where_it_stands(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "timeline:\n  - at: T+5 minutter\n    post: {channel: facebook, id: p1, text: Hei}\n",
    )
    problem = only_problem(path)
    assert problem.startswith(f"{path}:9:5: timeline[0].at: ")
    assert "is not a duration: write it like 15m" in problem


def test_a_post_on_a_channel_the_org_does_not_have(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "timeline:\n  - at: T+1m\n    post:\n      channel: twitter\n      id: p1\n"
        "      text: Hei\n",
    )
    problem = only_problem(path)
    assert problem.startswith(f"{path}:11:7: timeline[0].post.channel: no channel 'twitter'")
    assert "facebook" in problem  # the channels it could have been


def test_the_same_post_twice_is_named_at_the_second(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "timeline:\n"
        "  - {at: T+1m, post: {channel: sms, id: s1, text: Hei}}\n"
        "  - {at: T+2m, post: {channel: sms, id: s1, text: Hei igjen}}\n",
    )
    problem = only_problem(path)
    assert problem.startswith(f"{path}:10:")
    assert "post sms:s1 is already on the timeline (item 0)" in problem


def test_an_action_may_only_use_a_draft_composed_before_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "responses:\n  god:\n    actions:\n      - {at: T+5m, by: siri, approve: d9}\n",
    )
    problem = only_problem(path)
    assert problem.startswith(f"{path}:11:")
    assert "responses.god.actions[0].approve: no draft 'd9' composed before this action" in problem


def test_replies_are_sent_again_to_posts_on_the_timeline_or_to_all(tmp_path: Path) -> None:
    post = "  - {at: T+1m, post: {channel: sms, id: s1, text: Hei}}\n"
    path = write(
        tmp_path,
        f"timeline:\n{post}responses:\n  god:\n    actions:\n"
        "      - {at: T+5m, by: siri, resend_failed_replies: [s1, s2]}\n"
        "      - {at: T+6m, by: siri, resend_failed_replies: true}\n",
    )
    problem = only_problem(path)
    assert "responses.god.actions[0].resend_failed_replies[1]: no post 's2'" in problem
    path = write(
        tmp_path,
        f"timeline:\n{post}responses:\n  god:\n    actions:\n"
        "      - {at: T+5m, by: siri, resend_failed_replies: false}\n",
    )
    problems = [str(p) for p in check_scenario(path)]
    assert problems and all(
        ":13:30: responses.god.actions[0].resend_failed_replies" in p for p in problems
    )


def test_a_template_needs_its_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "responses:\n  god:\n    actions:\n"
        "      - at: T+5m\n        by: lise\n"
        "        compose: {id: d1, template: forste-melding}\n",
    )
    problems = [str(p) for p in check_scenario(path)]
    assert len(problems) == 2  # bokmål and English: both need the place
    for problem in problems:
        assert problem.startswith(f"{path}:13:9: responses.god.actions[0].compose.values: ")
        assert "no value for {sted}" in problem


def test_one_inject_is_one_thing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "timeline:\n  - at: T+1m\n    post: {channel: sms, id: s1, text: Hei}\n"
        "    world: {event: note, text: {nb: Notat}}\n",
    )
    assert "one of post, world or staff per item (found: post, world)" in only_problem(path)


def test_a_rumour_objective_names_its_rumour_and_expectations_name_objectives(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "objectives:\n  - {id: rykte, kind: rumour_corrected}\n"
        "responses:\n  svak:\n    expect: {missed: [forste]}\n",
    )
    problems = [str(p) for p in check_scenario(path)]
    assert any(":9:5: objectives[0]: a rumour_corrected objective names" in p for p in problems)
    assert any("no objective 'forste' (known: rykte)" in p for p in problems)


def test_yaml_aliases_and_unknown_operators_and_staff_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "description: &a Hei\ntitle2: *a\n")
    assert "anchors (&a) are not allowed" in only_problem(path)
    path = write(
        tmp_path,
        "staff: {terminals: 2}\ntimeline:\n"
        "  - {at: T+1m, staff: {ids: [kari.nordmann], go: online}}\n"
        "responses:\n  god:\n    actions:\n"
        "      - {at: T+5m, by: ola, freeze: {reason: Flom}}\n",
    )
    problems = [str(p) for p in check_scenario(path)]
    assert any("staff id 'kari.nordmann' has no user on the drill's broker" in p for p in problems)
    assert any("no operator 'ola' in the org file" in p for p in problems)


def test_a_broken_playbook_is_reported_with_its_own_positions(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: x\ntitle: {nb: X}\n", encoding="utf-8")
    path = tmp_path / "s.yaml"
    path.write_text(HEAD.replace(str(FLOOD), str(broken)), encoding="utf-8")
    problems = [str(p) for p in check_scenario(path)]
    assert problems[0] == f"{path}:3:1: the playbook file has problems (below)"
    assert any(p.startswith(f"{broken}:1:1: ") for p in problems[1:])


def test_parse_scenario_raises_with_every_problem() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario("id: X\n", file="x.yaml")
    assert caught.value.problems[0].file == "x.yaml"


# --- the schema -------------------------------------------------------------------------------


def test_the_committed_scenario_schema_matches_the_models() -> None:
    assert not schema_drifted(DEFAULT_DIR), (
        f"{FILE_NAME} is out of date: run `python -m krise_tui.drill.schema`"
    )


def test_schema_drift_is_detected(tmp_path: Path) -> None:
    assert schema_drifted(tmp_path)
    path = write_schema(tmp_path)
    assert not schema_drifted(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace("When.", "Whenever."), "utf-8")
    assert schema_drifted(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert '"additionalProperties": false' in text and "answer_open_batches" in text


# --- the clock and the ids --------------------------------------------------------------------


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


START = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)


def test_a_stepped_clock_moves_only_when_set_and_never_back() -> None:
    clock = VirtualClock(START)
    assert clock.stepped and clock.now() == START
    clock.set(START + timedelta(minutes=5))
    assert clock.offset == timedelta(minutes=5)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(START)


def test_a_live_clock_runs_at_its_speed_pauses_and_resumes() -> None:
    wall = Monotonic()
    clock = VirtualClock(START, speed=10, monotonic=wall)
    wall.now += 6
    assert clock.offset == timedelta(minutes=1)
    assert clock.wall_seconds_until(START + timedelta(minutes=2)) == pytest.approx(6)
    clock.pause()
    wall.now += 600
    assert clock.offset == timedelta(minutes=1)
    assert clock.wall_seconds_until(START + timedelta(minutes=2)) == float("inf")
    clock.resume()
    wall.now += 3
    assert clock.offset == timedelta(seconds=90)
    clock.set_speed(60)
    wall.now += 1
    assert clock.offset == timedelta(seconds=150)
    clock.set_stepped()
    wall.now += 100
    assert clock.offset == timedelta(seconds=150)


def test_actor_ids_are_deterministic_per_actor_and_unique() -> None:
    one, two = ActorIds("seed"), ActorIds("seed")
    first = [one.next("siri"), one.next("bus"), one.next("siri")]
    # Another interleaving of the same actors' commands gives the same ids.
    second = [two.next("bus"), two.next("siri"), two.next("siri")]
    assert sorted(first) == sorted(second)
    assert first[0] == second[1] and first[2] == second[2]
    assert len(set(first)) == 3 and all(len(i) == 32 for i in first)
    assert ActorIds("other").next("siri") != first[0]


# --- what reaches a real platform -------------------------------------------------------------


def test_only_local_endpoints_are_sinks(tmp_path: Path) -> None:
    kind = ChannelKind.FACEBOOK
    assert locality("http://127.0.0.1:8081/graph/123/feed", kind=kind, base=tmp_path) is None
    assert locality("http://localhost:9000/hook", kind=kind, base=tmp_path) is None
    assert locality("http://[::1]:9000/hook", kind=kind, base=tmp_path) is None
    assert locality("smtp://127.0.0.1:8025", kind=ChannelKind.EMAIL, base=tmp_path) is None
    real = locality("https://graph.facebook.com/v19.0/123/feed", kind=kind, base=tmp_path)
    assert real is not None and "not on this machine" in real
    assert locality("https://10.0.0.5/sms", kind=ChannelKind.SMS, base=tmp_path) is not None
    assert locality("ftp://127.0.0.1/x", kind=kind, base=tmp_path) is not None
    web = ChannelKind.WEBSITE
    assert locality("./sider", kind=web, base=tmp_path) is None
    assert locality(str(tmp_path / "sinks" / "web"), kind=web, base=tmp_path) is None
    outside = locality("/var/www/html", kind=web, base=tmp_path)
    assert outside is not None and "outside the drill's directory" in outside
    assert locality("../../var/www", kind=web, base=tmp_path) is not None


# --- pseudonyms -------------------------------------------------------------------------------


def test_pseudonyms_are_consistent_and_never_the_original() -> None:
    pseudo = Pseudonymiser(salt="t", own_phones=["+47 75 18 21 00"], own_domains=["kommune.no"])
    texts = ["Kari Nordmann ringte fra 412 34 567 (kari@example.no), fnr 17057234881."]
    pseudo.learn(texts, ["Kari Nordmann", "@kari_n"])
    name = pseudo.author("Kari Nordmann")
    assert name is not None and "Kari" not in name and "Nordmann" not in name
    assert pseudo.author("Kari  Nordmann") == name  # the same person, the same pseudonym
    assert pseudo.author("@kari_n") == pseudo.author("@KARI_N") != "@kari_n"
    phone = pseudo.author("+47 412 34 567")
    assert phone == pseudo.value("41234567") and phone is not None and "412" not in phone
    text = pseudo.text(texts[0])
    for original in ("Kari", "Nordmann", "412 34 567", "kari@example.no", "17057234881"):
        assert original not in text
    assert name in text and ID_REPLACEMENT in text and phone in text
    kept = pseudo.text("Ring 112 eller 75 18 21 00, eller skriv til post@kommune.no.")
    assert kept == "Ring 112 eller 75 18 21 00, eller skriv til post@kommune.no."
    assert pseudo.text("Hei Kari, ring meg") == f"Hei {name.split()[0]}, ring meg"


# --- the report is escaped --------------------------------------------------------------------


def hostile_card() -> Scorecard:
    hostile = '<script>alert("x")</script> | x & «Kari»'
    return Scorecard(
        title=hostile,
        scenario_id="t",
        response="god",
        start=START,
        end=timedelta(hours=1),
        timezone="Europe/Oslo",
        objectives=[
            ObjectiveResult("o1", "first_message", hostile, "missed", timedelta(minutes=20), None)
        ],
        messages=[],
        batches=[],
        rumours=[RumourRow("r1", hostile, timedelta(0), timedelta(0), None, None, "sighted", 1, 0)],
        freezes=[FreezeCurve(timedelta(0), 1, 2, [(timedelta(0), 0.0), (timedelta(1), 0.5)])],
        failures=[],
        timeline=[TimelineRow(timedelta(minutes=3), "world", hostile)],
        posts=1,
        posts_by_channel={"sms": 1},
        post_counts=[(timedelta(0), 1)],
        triage_agreement=None,
        rejected_inbound=0,
        refused_actions=[],
    )


def test_the_html_report_is_self_contained_escaped_and_well_formed() -> None:
    page = render_html(hostile_card())
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing fetched
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(page)
    assert page.count("<svg") == 2 and "<title id=" in page and 'role="img"' in page
    markdown = render_markdown(hostile_card())
    assert "<script>" not in markdown  # Markdown renderers pass raw HTML through
    row = next(line for line in markdown.splitlines() if line.startswith("| &lt;script&gt;"))
    assert "\\| x" in row  # a pipe in a text does not split the table's cells
    assert row.replace("\\|", "").count("|") == 6


def test_failures_alike_are_one_row_of_the_report() -> None:
    minutes = [timedelta(minutes=m) for m in (60, 60, 91, 120)]
    down = "503 Service Unavailable (mobilnettet er nede)"
    card = replace(
        hostile_card(),
        failures=[
            *(
                ChannelFailure("sms", at, down, "svar", True, minutes[3], minutes[3])
                for at in minutes[:3]
            ),
            ChannelFailure("sms", minutes[1], down, "melding", True, None, None, minutes[3]),
            ChannelFailure("facebook", minutes[2], "500", "svar", True),
        ],
    )
    rows = failure_rows(card)
    assert [(r.channel, r.what, r.failed, r.outcome, r.delivered) for r in rows] == [
        ("sms", "svar ×3", "T+01:00–T+01:31", "T+02:00", "T+02:00"),
        ("sms", "melding", "T+01:00", "erstattet T+02:00", "–"),
        ("facebook", "svar", "T+01:31", "–", "–"),
    ]
    markdown = render_markdown(card)
    assert f"| sms | svar ×3 | T+01:00–T+01:31 | {down} | T+02:00 | T+02:00 |" in markdown
    assert "svar ×3" in render_html(card)


def test_scenario_loading_needs_no_event_loop() -> None:
    # Loading is plain code (the console loads a scenario before its loop runs).
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    assert load_scenario(SCENARIOS[0]).scenario.id


def test_a_playbook_is_named_by_path_or_by_id(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    shutil.copyfile(FLOOD, tmp_path / "flom-og-skred.yaml")
    shutil.copyfile(FLOOD, tmp_path / "feil.yaml")
    path = tmp_path / "scenarios" / "s.yaml"
    path.write_text(HEAD.replace(str(FLOOD), "flom-og-skred"), encoding="utf-8")
    assert load_scenario(path).playbook_path == (tmp_path / "flom-og-skred.yaml").resolve()
    path.write_text(HEAD.replace(str(FLOOD), "feil"), encoding="utf-8")
    assert only_problem(path) == (
        f"{path}:3:1: playbook: {(tmp_path / 'feil.yaml').resolve()} is playbook "
        "'flom-og-skred', not 'feil'"
    )
