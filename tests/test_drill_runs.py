"""Drills against a real console: a recorded drill replayed to the same state hash, the
recorder's pseudonyms, refusals to reach a real platform, pause and jump, the demo beside
a running console, and the command line.

A small scenario (half an hour, a dozen posts, an outage, a broker restart, staff coming
and going) keeps each drill to a few seconds; every drill is a real console with its own
private mosquitto and SQLite journal.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import aiomqtt
import pytest

from krise_tui.bus import topics
from krise_tui.bus.login import resolve_login
from krise_tui.channels.base import EXERCISE_LABEL
from krise_tui.config import BrokerSettings, Settings
from krise_tui.core.features.messages import (
    DraftSaved,
    DraftVariant,
    MessageApproved,
    PublishVersion,
    SaveDraft,
)
from krise_tui.core.kernel import Accepted
from krise_tui.drill import cli
from krise_tui.drill.cli import score_result
from krise_tui.drill.demo import DemoPlan, plan_demo, start_demo
from krise_tui.drill.player import RUN_FILE, DrillResult, LogEntry, Player, drill_settings
from krise_tui.drill.recorder import record_journal
from krise_tui.drill.scenario import ChannelOverride, check_scenario, load_scenario
from krise_tui.drill.sinks import DrillRefused, refusals
from krise_tui.runtime import ConsoleRuntime
from tests.conftest import eventually

ROOT = Path(__file__).resolve().parents[1]
FLOOD = ROOT / "playbooks" / "flom-og-skred.yaml"
ORG = ROOT / "playbooks" / "orgs" / "eksempel.yaml"

WEB = "https://www.eksempel.kommune.no"

FNR = "17057234881"
"""A national identity number that passes the control digits (a test number)."""

TINY = f"""
id: liten-flom
title: Liten flom
playbook: {FLOOD}
org: {ORG}
start: 2026-11-27T14:00:00+01:00
duration: 30m
situation: {{nb: Det regner i sentrum.}}
seed: 3
staff: {{terminals: 8, ack_within: [30s, 4m], never_ack: 1, offline: 1}}
timeline:
  - at: T+1m
    post:
      channel: facebook
      id: fb-1
      author: Kari Nordmann
      text: Må vi som bor i Elvegata evakuere nå? Ring meg på 412 34 567. Hilsen Kari Nordmann
  - at: T+1m30s
    post:
      channel: sms
      id: sms-1
      author: "+47 412 34 567"
      text: Må jeg forlate huset i Elvegata?
      meta: {{from: "+47 412 34 567"}}
  - at: T+2m
    post:
      channel: epost
      id: ep-1
      author: Ola Hansen
      text: Kan vi drikke vannet? Fødselsnummeret mitt er {FNR}, svar til ola.hansen@example.no
      meta: {{from: ola.hansen@example.no}}
  - at: T+3m
    post:
      channel: facebook
      id: fb-2
      author: "@kari_n"
      kind: rumour
      text: Hørte at demningen ved Storvatnet har brast!! @per_h sier det samme
  - at: T+3m30s
    post:
      channel: facebook
      id: fb-3
      author: Kari Nordmann
      text: Hvor skal vi sove i natt hvis vi må ut fra Elvegata?
  - at: T+4m
    post: {{channel: facebook, id: fb-4, author: Troll, kind: attack, text: Ordføreren er en idiot}}
  - at: T+5m
    post:
      channel: sms
      id: sms-2
      author: "+47 987 65 432"
      kind: case
      text: Jeg vil klage på vedtaket om byggetillatelse.
      meta: {{from: "+47 987 65 432"}}
  - {{at: T+6m, world: {{event: channel_down, channel: sms}}}}
  - at: T+8m
    post:
      channel: nettside
      id: web-1
      author: Per Hansen
      text: Er Fv. 7 stengt ved Elvebakken?
  - {{at: T+10m, staff: {{count: 2, go: offline}}}}
  - {{at: T+12m, world: {{event: broker_restart, text: {{nb: Meldingsbussen startes på nytt.}}}}}}
  - {{at: T+14m, world: {{event: channel_up, channel: sms}}}}
  - at: T+15m
    post:
      channel: facebook
      id: fb-5
      author: Per Hansen
      kind: rumour
      text: Er det sant at dammen ved Storvatnet har revnet?
  - {{at: T+16m, staff: {{count: 1, go: online}}}}
  - at: T+20m
    post: {{channel: facebook, id: fb-6, author: Kari Nordmann, kind: praise, text: Takk for svar!}}
objectives:
  - {{id: forste-melding, kind: first_message}}
  - {{id: samlesvar, kind: batches_answered, within: 15m}}
  - {{id: demning, kind: rumour_corrected, rumour: demning, by: T+20m}}
  - {{id: kvittering, kind: freeze_acknowledged, share: 0.7, by: T+10m}}
  - {{id: leveranser, kind: deliveries, within: 10m}}
responses:
  god:
    actions:
      - at: T+2m
        by: lise
        compose:
          id: d1
          template: forste-melding
          values: {{sted: Elvegata og Elvebakken, neste_oppdatering: kl. 15.00}}
      - {{at: T+4m, by: siri, approve: d1}}
      - {{at: T+4m, by: siri, publish: d1}}
      - at: T+5m
        by: lise
        register_rumour:
          id: demning
          claim: Demningen ved Storvatnet har brast
          owner: police
          posts: [fb-2]
      - at: T+5m
        by: lise
        rumour_state: {{rumour: demning, state: checking, checker: lise, checking_with: politiet}}
      - {{at: T+6m, by: siri, rumour_state: {{rumour: demning, state: "false", source: Politiet}}}}
      - at: T+6m
        by: lise
        compose:
          id: d2
          template: rykte-korrigering
          values: {{rykte: at demningen har brast, fakta: Politiet sier at demningen er hel.}}
      - {{at: T+6m, by: lise, link_correction: {{rumour: demning, draft: d2}}}}
      - {{at: T+7m, by: siri, approve: d2}}
      - {{at: T+7m, by: siri, publish: d2}}
      - {{at: T+7m, by: lise, reply_to_spreaders: demning}}
      - {{at: T+8m, by: siri, relabel: {{post: fb-4, label: attack}}}}
      - {{at: T+8m, by: siri, hide: {{post: fb-4, reason: Personangrep}}}}
      - {{at: T+15m, by: lise, forward_case: sms-2}}
      - {{at: T+9m, by: lise, answer: {{id: a1, batch: q-drikkevann, question: drikkevann}}}}
      - {{at: T+9m, by: siri, approve_answer: a1}}
      - {{at: T+9m, by: siri, publish_answer: a1}}
      - at: T+9m
        by: jon
        answer_open_batches:
          kind: preliminary
          approver: siri
          text: {{nb: "Vi svarer innen en time på https://www.eksempel.kommune.no"}}
      - {{at: T+10m, by: lise, move_question: {{post: web-1, batch: q-stengte-veier}}}}
      - {{at: T+15m, by: siri, retry_delivery: {{draft: d2, channel: sms}}}}
      - {{at: T+15m, by: siri, resend_failed_replies: true}}
      - at: T+16m
        by: jon
        answer_open_batches:
          kind: preliminary
          approver: siri
          text: {{nb: "Vi svarer innen en time på https://www.eksempel.kommune.no"}}
      - {{at: T+21m, by: lise, acknowledge_recurrence: demning}}
"""

PERSONAL = (
    "Kari",
    "Nordmann",
    "kari_n",
    "per_h",
    "Ola Hansen",
    "Hansen",
    "412 34 567",
    "41234567",
    "987 65 432",
    "ola.hansen@example.no",
    FNR,
    "170572",
)
"""Everything personal in TINY: none of it may be in a pseudonymised recording."""


def fast_directory() -> Path:
    """A fresh directory for a drill: in memory (tmpfs) where there is one, since every
    journal commit is fsync'd; the files are the same either way."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="krise-drill-test-", dir=base))


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    directory = fast_directory()
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def tiny(workdir: Path) -> Path:
    path = workdir / "liten-flom.yaml"
    path.write_text(TINY, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cache(workdir: Path) -> Path:
    return workdir / "cache"


@pytest.fixture(scope="module")
def original(tiny: Path, workdir: Path, cache: Path) -> DrillResult:
    """The small scenario played once with its scripted response (several tests read it)."""
    player = Player(
        load_scenario(tiny), directory=workdir / "original", response="god", cache_dir=cache
    )
    return asyncio.run(player.run())


# --- replay and recording ---------------------------------------------------------------------


def test_the_small_drill_plays_everything_through_the_sinks(original: DrillResult) -> None:
    card = asyncio.run(score_result(original))
    assert card.posts == 10 and card.rejected_inbound == 0
    assert [o.id for o in card.objectives if o.status == "met"] == [
        "forste-melding",
        "samlesvar",
        "demning",
        "kvittering",
        "leveranser",
    ]
    # Everything that failed while the SMS gateway was down was sent again and arrived:
    # the correction (retry_delivery) and the replies (resend_failed_replies).
    assert {f.what for f in card.failures} == {"melding", "svar"}
    assert all(f.channel == "sms" and f.resent and f.delivered for f in card.failures)
    assert any(row.kind == "broker" for row in card.timeline)  # the restart happened
    sinks = original.sinks
    assert {i.what for i in sinks["facebook"]} >= {"deliver", "reply", "hide"}
    assert any(i.what == "reply" for i in sinks["sms"])  # the standard case reply
    assert all(i.exercise for items in sinks.values() for i in items)
    assert all(
        i.text.startswith(f"{EXERCISE_LABEL}: ")
        for items in sinks.values()
        for i in items
        if i.what in ("deliver", "reply")
    )


def test_a_recorded_drill_replayed_with_its_actions_gives_the_same_state_hash(
    original: DrillResult, workdir: Path, cache: Path
) -> None:
    scenario = workdir / "recorded" / "opptak.yaml"
    asyncio.run(record_journal(original.journal, scenario, actions=True, pseudonymise=False))
    loaded = load_scenario(scenario)
    assert loaded.scenario.staff.simulate is False  # every acknowledgement is in it
    assert any(i.world and i.world.event == "broker_restart" for i in loaded.scenario.timeline)
    (resend,) = [
        a for a in loaded.scenario.responses["opptak"].actions if a.verb == "resend_failed_replies"
    ]
    assert isinstance(resend.resend_failed_replies, list) and resend.resend_failed_replies
    replay = asyncio.run(
        Player(loaded, directory=workdir / "replay", response="opptak", cache_dir=cache).run()
    )
    assert replay.state_hash == original.state_hash
    assert replay.event_count == original.event_count


def test_the_recorder_pseudonymises_every_person_consistently(
    original: DrillResult, workdir: Path, cache: Path
) -> None:
    scenario = workdir / "shared" / "opptak.yaml"
    asyncio.run(
        record_journal(original.journal, scenario, actions=True, pseudonymise=True, salt="t")
    )
    text = scenario.read_text(encoding="utf-8")
    for personal in PERSONAL:
        assert personal not in text, personal
    loaded = load_scenario(scenario)
    posts = {p.id: p for _, p, _ in loaded.scenario.posts()}
    kari = posts["fb-1"].author
    assert kari and kari == posts["fb-3"].author == posts["fb-6"].author  # one person
    assert posts["fb-5"].author == posts["web-1"].author != kari  # Per Hansen, another
    phone = posts["sms-1"].author
    assert phone and phone == posts["sms-1"].meta["from"] and phone in posts["fb-1"].text
    assert kari in posts["fb-1"].text  # the signature in the text is the same pseudonym
    assert posts["ep-1"].meta["from"] == "innbygger001@eksempel.invalid"
    assert "[fødselsnummer fjernet]" in posts["ep-1"].text
    # The shared drill runs.
    replay = asyncio.run(
        Player(loaded, directory=workdir / "shared-run", response="opptak", cache_dir=cache).run()
    )
    assert len(replay.state_hash) == 64


# --- refusals -----------------------------------------------------------------------------------


def test_a_real_platform_endpoint_refuses_the_drill_before_anything_starts(
    tiny: Path, workdir: Path
) -> None:
    graph = "https://graph.facebook.com/v19.0/123/feed"
    real = workdir / "real.yaml"
    real.write_text(
        TINY.replace(
            "staff: {terminals",
            f"channels: {{facebook: {{endpoint: '{graph}'}}}}\nstaff: {{terminals",
        ),
        encoding="utf-8",
    )
    # The check names the place in the file…
    problems = [str(p) for p in check_scenario(real)]
    assert problems == [
        f"{real}:10:23: channels.facebook.endpoint: '{graph}' is not on this machine (only "
        "127.0.0.1, ::1, localhost are): a drill never reaches a real platform (it refuses "
        "to start)"
    ]
    args = parse(["drill", "run", str(real), "--headless", "--dir", str(workdir / "never2")])
    err = io.StringIO()
    with redirect_stderr(err):
        assert cli.run(args, out=io.StringIO()) == 2  # cannot run, not "scored badly"
    assert problems[0] in err.getvalue()
    # …and the player refuses a scenario made in code, before it starts anything.
    loaded = load_scenario(tiny)
    channels = {"facebook": ChannelOverride(endpoint=graph)}
    loaded = replace(loaded, scenario=loaded.scenario.model_copy(update={"channels": channels}))
    directory = workdir / "never"
    with pytest.raises(DrillRefused) as caught:
        asyncio.run(Player(loaded, directory=directory, response="god").run())
    assert f"channel facebook: '{graph}' is not on this machine" in str(caught.value)
    assert not directory.exists()  # no journal, no broker, no bridge was started


def test_a_console_on_a_configured_broker_is_refused(tiny: Path, workdir: Path) -> None:
    settings = drill_settings(load_scenario(tiny), workdir / "configured")
    runtime = ConsoleRuntime(
        settings.model_copy(update={"broker": BrokerSettings(host="mqtt.kommune.no")}),
        exercise=True,
    )
    reasons = refusals(runtime, base=workdir)
    assert reasons and "mqtt.kommune.no" in reasons[0]
    local = ConsoleRuntime(
        settings.model_copy(update={"broker": BrokerSettings(host="127.0.0.1", port=1883)}),
        exercise=True,
    )
    assert "krise bridge" in refusals(local, base=workdir)[0]  # a shared broker, even local


# --- steering a live drill ------------------------------------------------------------------


async def test_a_paused_drill_stands_still_and_a_jump_plays_to_the_end(
    tiny: Path, workdir: Path, cache: Path
) -> None:
    player = Player(
        load_scenario(tiny), directory=workdir / "live", response="god", speed=1.0, cache_dir=cache
    )
    player.pause()
    started = asyncio.Event()
    entries: list[LogEntry] = []
    player.on_log(entries.append)
    player.on_log(lambda e: started.set() if e.text.startswith("Øvelsen starter") else None)
    task = asyncio.create_task(player.run())
    await asyncio.wait_for(started.wait(), 60)
    assert player.paused and player.offset == timedelta(0)
    assert player.runtime is not None and not player.runtime.state.inbound.posts
    player.resume()
    player.jump(timedelta(minutes=30))  # at speed 1 the rest would take half an hour
    result = await asyncio.wait_for(task, 120)
    assert result.end - result.start >= timedelta(minutes=30)
    assert any(e.kind == "posts" for e in entries)


def test_demos_started_in_the_same_second_get_a_journal_each(
    tiny: Path, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    """The demo's directory was named for the minute: a demo started again within it
    (after a crash, say) opened the first one's journal, found its bridges journaled as
    online, and refused to start."""
    base = make_settings(data_dir=tmp_path / "data")
    first = plan_demo(base, scenario=tiny)
    (first.directory / "journal.sqlite3").write_bytes(b"the first demo's")
    second = plan_demo(base, scenario=tiny)
    third = plan_demo(base, scenario=tiny)
    directories = {first.directory, second.directory, third.directory}
    assert len(directories) == 3
    for directory in directories:
        assert directory.parent == base.data_dir / "demo" and directory.is_dir()
    assert not list(second.directory.iterdir()) and not list(third.directory.iterdir())
    assert second.settings.journal_path.parent == second.directory


async def test_the_demo_plays_beside_a_running_console(tiny: Path, workdir: Path) -> None:
    plan = plan_demo(scenario=tiny, speed=300, directory=workdir / "demo")
    runtime = ConsoleRuntime(plan.settings, **plan.runtime_kwargs())
    await runtime.start()
    try:
        demo = await start_demo(runtime, plan)
        assert demo.player.fleet is not None and demo.player.fleet.online_ids()
        await asyncio.wait_for(demo.player.ended.wait(), 120)
        state = runtime.state
        assert len(state.inbound.posts) == 10
        assert state.messages.published_version is not None
        assert state.freeze.acks  # simulated staff acknowledged
        result = await demo.stop()
        assert result is not None and result.response == "god"
    finally:
        await runtime.stop()


# --- the command line -----------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="krise")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.add_parser(sub)
    cli.add_demo_parser(sub)
    return parser.parse_args(argv)


def test_the_command_line_runs_checks_records_and_reports(
    tiny: Path,
    original: DrillResult,
    workdir: Path,
    cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = io.StringIO()
    report = workdir / "cli" / "rapport"
    args = parse(
        [
            "drill",
            "run",
            str(tiny),
            "--headless",
            "--quiet",
            "--dir",
            str(workdir / "cli-run"),
            "--cache",
            str(cache),
            "--report",
            str(report),
        ]
    )
    noisy = logging.getLogger(cli.NOISY[0])
    noisy.setLevel(logging.INFO)
    assert cli.run(args, out=out) == 0
    assert noisy.level == logging.INFO  # the drill quietens its reconnects only while it runs
    printed = out.getvalue()
    assert f"state hash: {original.state_hash}" in printed  # the same drill, the same hash
    assert report.with_suffix(".html").exists() and report.with_suffix(".md").exists()
    assert (workdir / "cli-run" / RUN_FILE).exists()

    broken = workdir / "broken.yaml"
    broken.write_text(TINY.replace("duration: 30m", "duration: en halvtime"), encoding="utf-8")
    out = io.StringIO()
    assert cli.run(parse(["drill", "check", str(broken), str(tiny)]), out=out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"{broken}:7:1: duration: ")
    assert lines[-1] == f"{tiny}: OK"
    # A drill that cannot run exits 2; one that runs and scores otherwise than its
    # response expects exits 1: a CI job tells a broken scenario from a regression.
    capsys.readouterr()
    assert cli.run(parse(["drill", "run", str(broken), "--headless"]), out=io.StringIO()) == 2
    assert f"{broken}:7:1: duration: " in capsys.readouterr().err
    wrong = workdir / "wrong-expectation.yaml"
    wrong.write_text(
        TINY.replace("  god:\n", "  god:\n    expect: {missed: [kvittering]}\n"),
        encoding="utf-8",
    )
    out = io.StringIO()
    args = parse(["drill", "run", str(wrong), "--headless", "--quiet", "--cache", str(cache)])
    assert cli.run(args, out=out) == 1
    assert "Ikke som forventet" in out.getvalue()

    recorded = workdir / "cli" / "opptak.yaml"
    out = io.StringIO()
    args = parse(["drill", "record", str(original.journal), "-o", str(recorded), "--salt", "x"])
    assert cli.run(args, out=out) == 0
    assert "pseudonymisert" in out.getvalue() and "Kari" not in recorded.read_text("utf-8")
    again = workdir / "cli" / "fra-mappen.yaml"  # the drill's directory is enough
    args = parse(["drill", "record", str(original.journal.parent), "-o", str(again), "--salt", "x"])
    assert cli.run(args, out=io.StringIO()) == 0
    assert again.read_text("utf-8") == recorded.read_text("utf-8")

    out = io.StringIO()
    args = parse(["drill", "report", str(original.journal), "--scenario", str(tiny)])
    assert cli.run(args, out=out) == 0
    assert "Mål: 5 av 5 nådd" in out.getvalue()
    # The directory `drill run` wrote is enough: its run file names the scenario.
    out = io.StringIO()
    assert cli.run(parse(["drill", "report", str(workdir / "cli-run")]), out=out) == 0
    assert "Mål: 5 av 5 nådd" in out.getvalue()
    other = workdir / "other.yaml"
    other.write_text(TINY.replace(f"id: {loaded_id(tiny)}", "id: en-annen"), encoding="utf-8")
    args = parse(["drill", "report", str(workdir / "cli-run"), "--scenario", str(other)])
    capsys.readouterr()
    assert cli.run(args, out=io.StringIO()) == 2  # said, not a traceback
    assert "played from the scenario 'liten-flom'" in capsys.readouterr().err


def loaded_id(path: Path) -> str:
    return load_scenario(path).scenario.id


async def test_a_real_console_journal_becomes_a_shareable_drill(
    tiny: Path, workdir: Path, cache: Path
) -> None:
    """Not a drill's journal: a console as an operator runs it (random ids, wall-clock
    times, no run file). Its posts and actions become a scenario that plays."""
    loaded = load_scenario(tiny)
    settings = drill_settings(loaded, workdir / "real-console").model_copy(
        update={"operator": "lise"}
    )
    runtime = ConsoleRuntime(settings)
    await runtime.start()
    try:
        assert runtime.session is not None
        await runtime.session.wait_connected(30)
        login = resolve_login(runtime.settings, "bridge", "drill", for_console=True)
        posts = [
            ("facebook", "p1", "Kari Nordmann", "Må vi evakuere fra Elvegata? Ring 412 34 567"),
            ("sms", "s1", "+47 412 34 567", "Kan vi drikke vannet i Elvegata?"),
        ]
        async with aiomqtt.Client(
            login.host, login.port, username=login.username, password=login.password
        ) as client:
            for channel, post_id, author, text in posts:
                body = json.dumps({"id": post_id, "text": text, "author": author})
                await client.publish(topics.channel_in("eksempel", channel), body, qos=1)
        await eventually(lambda: len(runtime.state.inbound.posts) == 2, what="two posts")
        variant = DraftVariant("nb", "Flom i sentrum", "Hold deg unna elva. " + WEB)
        saved = await runtime.save_draft(SaveDraft((variant,)))
        assert isinstance(saved, Accepted)
        draft = saved.events[0]
        assert isinstance(draft, DraftSaved)
        approved = await runtime.approve(draft.draft_id, approver="siri", passphrase="passord-siri")
        assert isinstance(approved, Accepted)
        version = approved.events[0]
        assert isinstance(version, MessageApproved)
        await runtime.submit(PublishVersion(version.version_id), actor="siri")
    finally:
        await runtime.stop()
    out = workdir / "from-real" / "opptak.yaml"
    await record_journal(settings.journal_path, out, actions=True, org_ref=str(ORG), salt="real")
    text = out.read_text(encoding="utf-8")
    assert "Kari" not in text and "412 34 567" not in text
    recorded = load_scenario(out)
    assert [p.id for _, p, _ in recorded.scenario.posts()] == ["p1", "s1"]
    verbs = [a.verb for a in recorded.scenario.responses["opptak"].actions]
    assert verbs == ["compose", "approve", "publish"]
    replay = await Player(
        recorded, directory=workdir / "from-real-run", response="opptak", cache_dir=cache
    ).run()
    card = await score_result(replay)
    assert card.posts == 2 and card.messages and card.messages[0].headline == "Flom i sentrum"


def test_krise_demo_hands_the_console_a_plan_for_the_flood(tiny: Path) -> None:
    plans: list[DemoPlan] = []

    def console(plan: DemoPlan) -> int:
        plans.append(plan)
        return 0

    parser = argparse.ArgumentParser(prog="krise")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.add_demo_parser(sub, console=console)
    args = parser.parse_args(["demo", "--speed", "20"])
    assert args.func(args) == 0
    (plan,) = plans
    assert plan.loaded.scenario.id == "flom-sentrum" and plan.response == "god"
    assert plan.clock.speed == 20 and plan.runtime_kwargs()["exercise"] is True
    assert plan.settings.bridges_in_process is False and plan.settings.broker.host is None
    args = parser.parse_args(["demo", "--no-script", "--scenario", str(tiny)])
    assert args.func(args) == 0
    assert plans[1].response is None and plans[1].loaded.scenario.id == "liten-flom"
    assert plans[1].settings.lang == "nb"
    args = parser.parse_args(["demo", "--lang", "en"])  # was refused: "unrecognized"
    assert args.func(args) == 0
    assert plans[2].settings.lang == "en"
