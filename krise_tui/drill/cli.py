"""``krise drill …`` and ``krise demo``: the command lines of drills.

::

    krise drill run SCENARIO [--response NAME | --headless] [--speed max|N] [--report PATH]
    krise drill check SCENARIO…                   # file:line:column problems; exit 1 on any
    krise drill record JOURNAL -o SCENARIO [--actions] [--keep-personal-data]
    krise drill report JOURNAL --scenario SCENARIO [--report PATH]
    krise demo [--headless] [--speed N] [--no-script]

``run`` plays a scenario against its own console (a private broker, a journal in a new
directory, every channel a local sink), prints the timeline as it goes, the final state
hash and the scored report; ``--report PATH`` also writes ``PATH.md`` and ``PATH.html``.
``--headless`` runs the leadership's scripted response (the first one, or
``--response``) and exits 1 when the score is not what the response ``expect``s (or the
drill got stuck), so CI can run drills; 2 when it could not run at all (an invalid or
unreadable scenario, one that would reach a real platform, bad options). Without a
response nobody answers: the score shows what that costs.

Hook them into the main parser with :func:`add_parser` and :func:`add_demo_parser` (which
takes the console's function that shows a demo plan); each sets ``func`` (:func:`run`,
:func:`run_demo`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.text import Text

from krise_tui.drill.player import DrillResult, DrillStuck, LogEntry, Player, default_cache_dir
from krise_tui.drill.scenario import ScenarioError, check_scenario, load_scenario
from krise_tui.drill.scoring import Scorecard, fmt_offset, score
from krise_tui.drill.sinks import DrillRefused
from krise_tui.printable import printable

if TYPE_CHECKING:
    from krise_tui.drill.demo import DemoPlan

log = logging.getLogger("krise.drill")

NOISY = ("krise_tui.bus.session", "krise_tui.bridge", "mqtt", "krise_tui.runtime.supervisor")
"""Loggers that report every reconnect: a drill restarts the broker on purpose."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``krise drill …`` (run, check, record, report)."""
    p = subparsers.add_parser("drill", help="drills: play, check, record and score scenarios")
    dsub = p.add_subparsers(dest="drill_command", metavar="SUBCOMMAND", required=True)

    r = dsub.add_parser("run", help="play a scenario against a private console and score it")
    r.add_argument("scenario", type=Path, help="scenario file (playbooks/scenarios/*.yaml)")
    r.add_argument("--response", help="the scripted response to play (default: none)")
    r.add_argument(
        "--headless",
        action="store_true",
        help="nobody at the console: play a scripted response (the first one unless "
        "--response) and exit 1 when the score is not what it expects, 2 when the drill "
        "cannot run (an invalid scenario)",
    )
    r.add_argument(
        "--speed",
        default="max",
        help="max (as fast as the console keeps up, deterministic) or a factor: 1, 10…",
    )
    r.add_argument("--report", type=Path, help="also write PATH.md and PATH.html")
    r.add_argument(
        "--dir", type=Path, help="where the drill's journal, sinks and broker go (new or empty)"
    )
    r.add_argument("--org", type=Path, help="another org file than the scenario's")
    r.add_argument(
        "--cache",
        type=Path,
        default=None,
        help=f"embeddings kept between drills (default {default_cache_dir()})",
    )
    r.add_argument("--no-cache", action="store_true", help="embed every post again")
    r.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto")
    r.add_argument("--quiet", action="store_true", help="no timeline while it plays")
    r.set_defaults(func=run)

    c = dsub.add_parser("check", help="check scenario files (file:line:column problems)")
    c.add_argument("scenarios", nargs="+", type=Path)
    c.add_argument("--org", type=Path, help="check against this org file")
    c.set_defaults(func=run)

    rec = dsub.add_parser("record", help="turn a journal into a scenario (a shareable drill)")
    rec.add_argument("journal", type=Path, help="a journal, or the directory a drill wrote")
    rec.add_argument("-o", "--out", type=Path, required=True, help="the scenario file to write")
    rec.add_argument("--actions", action="store_true", help="also record the leadership's actions")
    rec.add_argument(
        "--keep-personal-data",
        action="store_true",
        help="do not pseudonymise names, handles, numbers and addresses (own drills only)",
    )
    rec.add_argument("--org", type=Path, help="the org file the journal was made with")
    rec.add_argument("--playbook", type=Path, help="the playbook (default: as journaled)")
    rec.add_argument("--salt", help="pseudonyms from this salt (default: random)")
    rec.set_defaults(func=run)

    rep = dsub.add_parser("report", help="score a drill's journal against its scenario")
    rep.add_argument(
        "journal", type=Path, help="the drill's journal, or the directory `drill run` wrote"
    )
    rep.add_argument(
        "--scenario",
        type=Path,
        help="the scenario it played (default: as its drill-run.json beside it says)",
    )
    rep.add_argument(
        "--response",
        help="the response that was played, for the heading (default: as drill-run.json says)",
    )
    rep.add_argument("--report", type=Path, help="also write PATH.md and PATH.html")
    rep.set_defaults(func=run)


DemoConsole = Callable[["DemoPlan"], int]
"""Runs the console on a demo plan (the console's own code): its exit code."""


def add_demo_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    console: DemoConsole | None = None,
) -> None:
    """``krise demo``: the flood drill in the console. ``console(plan)`` starts the
    console's screen on a :class:`~krise_tui.drill.demo.DemoPlan` (and
    :func:`~krise_tui.drill.demo.start_demo` beside its runtime); ``--headless`` runs the
    demo without a screen, printing its timeline."""
    p = subparsers.add_parser("demo", help="the flood drill in a console, to see krise move")
    p.add_argument("--speed", type=float, default=10.0, help="times the wall clock (10)")
    p.add_argument("--scenario", type=Path, help="another scenario than the flood")
    p.add_argument(
        "--no-script", action="store_true", help="you are the leadership: nothing scripted"
    )
    p.add_argument("--headless", action="store_true", help="no screen: print the timeline")
    p.add_argument("--lang", choices=["nb", "en"], help="the console's language (default nb)")
    p.set_defaults(func=functools.partial(run_demo, console=console))


# --- running --------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet(verbose: bool = False) -> Iterator[None]:
    """Warnings only, and not the reconnects a drill causes; the levels are put back after
    (a drill run in-process must not silence the host's loggers for good)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    loggers = [] if verbose else [logging.getLogger(name) for name in NOISY]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, before, strict=True):
            logger.setLevel(level)


def run(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Run one ``krise drill`` subcommand; the exit code."""
    stream = out or sys.stdout
    command = args.drill_command
    if command == "check":
        return _check(args, stream)
    try:
        with _quiet():
            if command == "run":
                return asyncio.run(_run(args, stream))
            if command == "record":
                return asyncio.run(_record(args, stream))
            if command == "report":
                return asyncio.run(_report(args, stream))
    except ScenarioError as exc:  # could not run: 2, apart from "not as expected" (1)
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except (DrillRefused, FileExistsError, ValueError) as exc:
        print(f"krise drill: {exc}", file=sys.stderr)
        return 2
    except DrillStuck as exc:  # it ran, and the console under drill failed to go on
        print(f"krise drill: {exc}", file=sys.stderr)
        return 1
    raise ValueError(f"unknown drill command {command!r}")


def _check(args: argparse.Namespace, stream: TextIO) -> int:
    failed = False
    for path in args.scenarios:
        problems = check_scenario(path, org_path=args.org)
        for problem in problems:
            print(problem, file=stream)
        if problems:
            failed = True
        else:
            print(f"{path}: OK", file=stream)
    return 1 if failed else 0


def _speed(text: str) -> float | None:
    if text.lower() == "max":
        return None
    value = float(text)
    if value <= 0:
        raise ValueError(f"--speed must be max or above 0, not {text}")
    return value


async def _run(args: argparse.Namespace, stream: TextIO) -> int:
    loaded = load_scenario(args.scenario, org_path=args.org)
    scenario = loaded.scenario
    response = args.response
    if args.headless and response is None:
        if not scenario.responses:
            raise ValueError(
                f"{args.scenario}: no scripted response to run headless (add responses:)"
            )
        response = next(iter(scenario.responses))
    directory = args.dir or Path(tempfile.mkdtemp(prefix=f"krise-drill-{scenario.id}-"))
    cache = None if args.no_cache else (args.cache or default_cache_dir())
    console = Console(file=stream, highlight=False)
    player = Player(
        loaded,
        directory=directory,
        response=response,
        speed=_speed(args.speed),
        cache_dir=cache,
        broker=args.broker,
    )
    if not args.quiet:
        player.on_log(lambda entry: _print_entry(console, entry))
    console.print(
        Text.assemble(
            "ØVELSE ",
            (printable(scenario.title), "bold"),
            printable(
                f" ({scenario.id}) · dreiebok {loaded.playbook.id} · "
                f"svar: {response or 'ingen (ingen svarer)'} · fart: {args.speed}"
            ),
        )
    )
    result = await player.run()
    card = await score_result(result)
    from krise_tui.drill.report import print_report, write_report

    print_report(card, console)
    console.print(f"Journal: {result.journal}")
    if args.report is not None:
        for path in write_report(card, args.report):
            console.print(f"Rapport: {path}")
    console.print(f"state hash: {result.state_hash}")
    return _expectation(card, loaded.scenario.responses.get(response or ""), console)


def _expectation(card: Scorecard, response: object, console: Console) -> int:
    expect = getattr(response, "expect", None)
    if expect is None:
        return 0
    wanted = sorted(expect.missed)
    missed = sorted(card.missed)
    if missed == wanted:
        console.print(f"Som forventet: {len(missed)} mål ikke nådd ({', '.join(missed) or '–'})")
        return 0
    console.print(
        f"[bold red]Ikke som forventet[/]: ikke nådd {', '.join(missed) or '–'}, "
        f"forventet {', '.join(wanted) or '–'}"
    )
    return 1


async def score_result(result: DrillResult) -> Scorecard:
    """Score a finished drill from its journal."""
    from krise_tui.journal.store import Journal

    async with await Journal.open(result.journal, read_only=True) as journal:
        events = await journal.read_events()
    return score(
        events,
        result.loaded,
        response=result.response,
        log=result.log,
        end=result.end,
        state_hash=result.state_hash,
    )


def _print_entry(console: Console, entry: LogEntry) -> None:
    """One line of the timeline; the inject's text is a resident's or a platform's, never
    markup and never acting on the terminal (see :func:`krise_tui.drill.report.plain`)."""
    line = Text(f"{fmt_offset(entry.offset):>10} {entry.kind:<7} ")
    if not entry.ok:
        line.append("✗ ", style="red")
    line.append(printable(entry.text))
    if entry.detail:
        line.append(printable(f" ({entry.detail})"), style="dim")
    console.print(line)


def _journal_in(path: Path) -> Path:
    """A drill's journal: the file itself, or the directory `krise drill run` wrote."""
    from krise_tui.journal.store import JOURNAL_FILE

    return path / JOURNAL_FILE if path.is_dir() else path


async def _record(args: argparse.Namespace, stream: TextIO) -> int:
    from krise_tui.drill.recorder import record_journal
    from krise_tui.playbook.loader import load_org

    org = load_org(args.org) if args.org is not None else None
    out = await record_journal(
        _journal_in(args.journal),
        args.out,
        actions=args.actions,
        pseudonymise=not args.keep_personal_data,
        org=org,
        org_ref=str(args.org.resolve()) if args.org is not None else None,
        playbook_ref=str(args.playbook.resolve()) if args.playbook is not None else None,
        salt=args.salt,
    )
    what = "med handlinger" if args.actions else "uten handlinger"
    data = "personopplysninger beholdt" if args.keep_personal_data else "pseudonymisert"
    print(f"{out}: scenario skrevet ({what}, {data})", file=stream)
    return 0


async def _report(args: argparse.Namespace, stream: TextIO) -> int:
    import json

    from krise_tui.drill.player import LOG_FILE, RUN_FILE
    from krise_tui.drill.report import print_report, write_report
    from krise_tui.journal.store import Journal

    journal_path = _journal_in(args.journal)
    directory = journal_path.parent
    run_data: dict[str, Any] = {}
    if (directory / RUN_FILE).exists():
        try:
            run_data = json.loads((directory / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{directory / RUN_FILE}: cannot be read ({exc})") from None
    scenario_path = args.scenario or (
        Path(run_data["scenario"]) if isinstance(run_data.get("scenario"), str) else None
    )
    if scenario_path is None:
        raise ValueError(
            f"which scenario did {journal_path} play? give --scenario "
            f"(there is no {RUN_FILE} beside it to say)"
        )
    loaded = load_scenario(scenario_path)
    played = run_data.get("scenario_id")
    if isinstance(played, str) and played != loaded.scenario.id:
        raise ValueError(
            f"{journal_path} was played from the scenario {played!r} ({RUN_FILE}), "
            f"not {loaded.scenario.id!r} ({scenario_path}): scoring it against another "
            "scenario's goals means nothing"
        )
    async with await Journal.open(journal_path, read_only=True) as journal:
        events = await journal.read_events()
    log_entries: list[LogEntry] = []
    if (directory / LOG_FILE).exists():
        raw = json.loads((directory / LOG_FILE).read_text(encoding="utf-8"))
        log_entries = [LogEntry.from_json(item) for item in raw]
    end = None
    if run_data:
        start = datetime.fromisoformat(run_data["start"])
        end = start + timedelta(seconds=float(run_data["duration"]))
    response = args.response or (
        run_data["response"] if isinstance(run_data.get("response"), str) else None
    )
    card = score(events, loaded, response=response, log=log_entries, end=end)
    console = Console(file=stream, highlight=False)
    print_report(card, console)
    if args.report is not None:
        for path in write_report(card, args.report):
            console.print(f"Rapport: {path}")
    return 0


def run_demo(
    args: argparse.Namespace, *, console: DemoConsole | None = None, out: TextIO | None = None
) -> int:
    """``krise demo``: the console on the demo's plan, or ``--headless`` without a screen."""
    stream = out or sys.stdout
    if args.headless:
        with _quiet():
            return asyncio.run(_demo_headless(args, stream))
    if console is None:
        print("krise demo: no console to show it in; use --headless", file=sys.stderr)
        return 2
    from krise_tui.config import load_settings
    from krise_tui.drill.demo import plan_demo

    base = load_settings()
    plan = plan_demo(
        base,
        scenario=args.scenario,
        response=None if args.no_script else "god",
        speed=args.speed,
        lang=getattr(args, "lang", None) or base.lang,  # --lang, else KRISE_LANG / krise.toml
    )
    return console(plan)


async def _demo_headless(args: argparse.Namespace, stream: TextIO) -> int:
    from krise_tui.drill.demo import plan_demo, start_demo
    from krise_tui.runtime import ConsoleRuntime

    directory = Path(tempfile.mkdtemp(prefix="krise-demo-"))
    plan = plan_demo(
        scenario=args.scenario,
        response=None if args.no_script else "god",
        speed=args.speed,
        directory=directory / "run",
    )
    console = Console(file=stream, highlight=False)
    runtime = ConsoleRuntime(plan.settings, **plan.runtime_kwargs())
    await runtime.start()
    try:
        demo = await start_demo(runtime, plan)
        demo.player.on_log(lambda entry: _print_entry(console, entry))
        started = datetime.now(UTC)
        console.print(f"Demo startet {started:%H:%M:%S} UTC i {plan.directory} (ctrl+c stopper)")
        ended = asyncio.ensure_future(demo.player.ended.wait())
        await asyncio.wait({ended, demo.task}, return_when=asyncio.FIRST_COMPLETED)
        ended.cancel()
        result = await demo.stop()
        if result is not None:
            console.print(f"state hash: {result.state_hash}")
    finally:
        await runtime.stop()
    return 0
