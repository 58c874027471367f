"""``krise`` — the command-line entry point.

Subcommands are thin: they load settings, build a runtime or call a core function, and
turn errors into one clear line and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.handlers
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from krise_tui import __version__
from krise_tui.bus.broker import (
    ENDPOINT_FILE,
    WEAK_BROKER_WARNING,
    BrokerError,
    BrokerKind,
    bridge_user,
    choose_embedded,
    generate_acl,
    sim_staff_id,
    write_atomic,
    write_password_file,
)
from krise_tui.bus.envelope import KeyFileError, write_key_pair
from krise_tui.config import ConfigFileError, Settings, load_settings
from krise_tui.files import UnreadableInput, create_private, read_text_input
from krise_tui.journal.store import JournalError
from krise_tui.playbook.loader import PlaybookError
from krise_tui.printable import printable
from krise_tui.signals import stop_on_signals
from krise_tui.timefmt import DEFAULT_TIMEZONE

log = logging.getLogger("krise")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    for name in ("org", "journal", "data_dir", "lang", "operator"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return load_settings(**overrides)


class InertFormatter(logging.Formatter):
    """Log lines that residents' text cannot act in: a post logged with an escape
    sequence would clear the screen of whoever runs ``tail -f krise.log``, and a line
    break in one would forge a log line. The message is one line with such characters
    shown as escapes (:func:`krise_tui.printable.printable`); a traceback keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return printable(super().formatException(ei), one_line=False)


LINT_LIMIT = 16 * 1024 * 1024
"""The longest text ``krise lint`` reads: far beyond any message, short of a device."""
LOG_MAX_BYTES = 20 * 1024 * 1024
"""``krise.log`` is rotated at this size, keeping :data:`LOG_BACKUPS` older files: a flood
of poison on the bus (each refusal is logged, and journaled) must not fill the disk the
journal needs."""
LOG_BACKUPS = 5


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose every file is created readable by its owner only (the log can
    hold citizens' posts; the standard handler creates each new file by the umask)."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


def _setup_logging(settings: Settings, *, to_file: bool) -> None:
    level = os.environ.get("KRISE_LOG_LEVEL", "INFO").upper()
    handler: logging.Handler
    if to_file:
        # The log can hold citizens' posts: readable by its owner only.
        log_file = settings.data_dir / "krise.log"
        create_private(log_file)
        handler = PrivateRotatingFileHandler(
            log_file, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
        handler.setFormatter(InertFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(InertFormatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


# --- subcommands ---------------------------------------------------------------------------


def cmd_console(args: argparse.Namespace) -> int:
    from krise_tui.runtime import ConsoleRuntime

    settings = _settings(args)
    if args.serve:
        if args.headless:
            print("krise console: --serve and --headless exclude each other", file=sys.stderr)
            return 2
        from krise_tui.console.serve import serve

        passed = ["--open-without-playbook"] if args.open_without_playbook else []
        if args.theme:
            passed += ["--theme", args.theme]
        try:
            serve(settings, args.host, args.port, public_url=args.public_url, console_args=passed)
        except (ValueError, OSError) as exc:  # a bad port or host, the port in use
            print(f"krise console: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.headless:
        _setup_logging(settings, to_file=False)
        runtime = ConsoleRuntime(settings, open_without_playbook=args.open_without_playbook)
        return asyncio.run(run_headless(runtime))
    from krise_tui.console.app import ConsoleApp

    _setup_logging(settings, to_file=True)
    runtime = ConsoleRuntime(settings, open_without_playbook=args.open_without_playbook)
    ConsoleApp(runtime, theme=args.theme).run()
    return 0


def show_demo(plan: Any) -> int:
    """``krise demo``: the console on a drill's plan, the scenario playing beside it."""
    from krise_tui.console.app import ConsoleApp
    from krise_tui.drill.demo import Demo, start_demo
    from krise_tui.runtime import ConsoleRuntime

    _setup_logging(plan.settings, to_file=True)
    runtime = ConsoleRuntime(plan.settings, **plan.runtime_kwargs())
    running: list[Demo] = []

    async def started(rt: ConsoleRuntime) -> None:
        running.append(await start_demo(rt, plan))

    async def stopping(_rt: ConsoleRuntime) -> None:
        for demo in running:
            await demo.stop()

    ConsoleApp(runtime, on_started=started, on_stopping=stopping, ask_start=False).run()
    return 0


async def run_headless(runtime: object) -> int:
    """``krise console --headless``: the runtime without a screen until SIGTERM/SIGINT.

    Journal, bus, outbox, bridges and timers run as in the console; logs go to stderr,
    with what the console's banner would show (a channel's intake trouble, a broken
    playbook) as warnings. A signal stops it cleanly (exit 0); a runtime that gives up (a
    loop that keeps crashing) exits 1.
    """
    from krise_tui.runtime import ConsoleRuntime

    assert isinstance(runtime, ConsoleRuntime)

    def said(name: str, text: str | None) -> None:
        """What the console's banner would show, in the log instead."""
        if text:
            log.warning("krise console --headless: %s", text)
        else:
            log.info("krise console --headless: over: %s", name)

    runtime.on_concern(said)
    stop = asyncio.Event()
    with stop_on_signals(stop):
        try:
            await runtime.start()
        except Exception as exc:
            log.error("krise console --headless: cannot start: %s", exc)
            await runtime.stop()
            return 2
        log.info(
            "krise console --headless: %s, incident %r, journal %s",
            runtime.settings.org,
            runtime.state.incident.title,
            runtime.settings.journal_path,
        )
        fatal = asyncio.ensure_future(runtime.stopped.wait())
        signalled = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({fatal, signalled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            fatal.cancel()
            signalled.cancel()
            await runtime.stop()
    if runtime.stopped.is_set() and not stop.is_set():
        log.error("krise console --headless: stopped: %s", runtime.concerns.get("fatal", ""))
        return 1
    log.info("krise console --headless: stopped cleanly")
    return 0


def cmd_staff(args: argparse.Namespace) -> int:
    if args.simulate:
        return cmd_simulate(args)
    if not args.id:
        print("krise staff: --id is required (or --simulate N)", file=sys.stderr)
        return 2
    from krise_tui.staff.app import StaffApp
    from krise_tui.staff.runtime import StaffRuntime

    settings = _settings(args)
    _setup_logging(settings, to_file=True)
    department, website, timezone = args.dept, None, DEFAULT_TIMEZONE
    if settings.org_file is not None:
        from krise_tui.playbook.loader import load_org
        from krise_tui.runtime import roster_from_org

        org = load_org(settings.org_file)
        settings = settings.model_copy(update={"org": org.slug, "org_name": org.name})
        department = department or (roster_from_org(org) or {}).get(args.id)
        website, timezone = str(org.website), org.timezone
    runtime = StaffRuntime(settings, args.id, department=department, timezone=timezone)
    StaffApp(runtime, settings.org_name, website).run()
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run N headless staff terminals against the local (or configured) broker."""
    import time

    from aiomqtt import ProtocolVersion

    from krise_tui.bus.broker import read_endpoint, sim_staff_id
    from krise_tui.simulate import SimConfig, start_simulation

    settings = _settings(args)
    _setup_logging(settings, to_file=False)
    protocol = ProtocolVersion.V5
    if settings.broker.host:
        host, port = settings.broker.host, settings.broker.port
        password = settings.broker.secret()
    else:
        endpoint = read_endpoint(settings.broker_dir / "endpoint.json")
        host, port = endpoint.host, endpoint.port
        creds = endpoint.credentials
        if endpoint.kind is BrokerKind.AMQTT:
            protocol = ProtocolVersion.V311  # the embedded amqtt speaks 3.1.1 only
        if creds is not None and args.simulate > creds.simulated:
            print(
                f"krise staff: this broker has {creds.simulated} simulated users;"
                f" --simulate {args.simulate} is too many",
                file=sys.stderr,
            )
            return 2
        password = None if creds is None else creds.sim_password
    cfg = SimConfig(
        host=host,
        port=port,
        org=settings.org,
        public_key_pem=settings.public_key_path.read_bytes(),
        staff_ids=tuple(sim_staff_id(i) for i in range(1, args.simulate + 1)),
        password=password,
        ack_delay=(0.0, args.ack_delay),
        department=args.dept,
        protocol=protocol,
    )
    sim = start_simulation(cfg, processes=args.processes)
    counts: dict[str, int] = {}
    print(f"simulating {args.simulate} staff terminals in {args.processes} processes; ctrl+c stops")
    try:
        while True:
            for report in sim.reports(timeout=1.0):
                counts[report.kind] = counts.get(report.kind, 0) + 1
            print(
                f"\rready {counts.get('ready', 0)} · notices {counts.get('freeze', 0)}"
                f" · acked {counts.get('acked', 0)} · lifts {counts.get('lifted', 0)}"
                f" · errors {counts.get('error', 0)}   ",
                end="",
                flush=True,
            )
            time.sleep(0.5)
    except KeyboardInterrupt:
        print()
    finally:
        sim.stop()
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    """Run a private broker for ``--org`` until SIGINT/SIGTERM (a drill room's broker).

    The broker writes ``endpoint.json`` when it listens and removes it when it stops;
    it keeps its port for the next start unless ``--port`` says otherwise.
    """
    settings = _settings(args)
    _setup_logging(settings, to_file=False)

    async def run() -> None:
        broker = choose_embedded(args.kind, settings.broker_dir, org=settings.org)
        if args.port:
            broker.port = args.port
        endpoint = await broker.start()
        try:
            print(f"krise broker: {endpoint.kind} on {endpoint.host}:{endpoint.port}", flush=True)
            print(f"endpoint and local credentials: {settings.broker_dir / ENDPOINT_FILE}")
            if endpoint.kind is BrokerKind.AMQTT:
                print(WEAK_BROKER_WARNING)
            stop = asyncio.Event()
            with stop_on_signals(stop):
                await stop.wait()
        finally:
            await broker.stop()

    asyncio.run(run())
    return 0


def cmd_broker_users(args: argparse.Namespace) -> int:
    """Write a password file with generated passwords and the org's ACL for those users.

    The ACL has one block per user, so it is regenerated with the users, never edited
    by hand; without ``--acl`` it is printed for the operator to save. Without
    ``--passwd`` only the ACL is made (for users added with ``mosquitto_passwd``, so
    that the others keep their passwords).
    """
    org = _settings(args).org
    if not (args.console or args.staff or args.bridge or args.simulated):
        print(
            "krise broker users: name at least one --console, --staff, --bridge or"
            " --simulated user",
            file=sys.stderr,
        )
        return 2
    acl = generate_acl(  # checks every name before any file is written
        org,
        console=tuple(args.console),
        staff_ids=tuple(args.staff),
        bridges=tuple(args.bridge),
        simulated=args.simulated,
    )
    if args.passwd:  # without it: only the ACL (users added with mosquitto_passwd)
        users = {name: secrets.token_urlsafe(18) for name in (*args.console, *args.staff)}
        users |= {bridge_user(ch): secrets.token_urlsafe(18) for ch in args.bridge}
        sims = [sim_staff_id(i) for i in range(1, args.simulated + 1)]
        sim_password = secrets.token_urlsafe(18)
        write_password_file(Path(args.passwd), users | dict.fromkeys(sims, sim_password))
        count = len(users) + len(sims)
        print(f"# wrote {count} users to {args.passwd} (mode 0600); passwords follow, once:")
        for name, password in users.items():
            print(f"{name} {password}")
        if sims:
            print(f"# {sims[0]} … {sims[-1]} share one password:")
            print(f"sim-* {sim_password}")
    if args.acl:
        write_atomic(Path(args.acl), acl, mode=0o644)  # no secrets; mosquitto must read it
        print(f"# wrote the ACL for org {org!r} to {args.acl}")
    else:
        print(f"\n# the ACL for org {org!r}: save it as the broker's acl_file (broker/acl)")
        print(acl)
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    """Lint a message text (file or stdin); exit 1 when it must not be approved, 2 when
    the text cannot be read."""
    from krise_tui.rules.lint import MessageVariant, lint_message

    try:
        _, text = read_text_input(args.file, limit=LINT_LIMIT)
    except UnreadableInput as exc:  # exit 2: 1 means blocked
        print(f"krise lint: {exc}", file=sys.stderr)
        return 2
    headline, _, body = text.partition("\n")
    report = lint_message(
        {args.language: MessageVariant(headline=headline.strip(), body=body)},
        required_languages=[args.language],
        allowed_phones=args.allow_phone,
        allowed_emails=args.allow_email,
        website_url=args.website,
    )
    for line in report.render(args.lang or "nb"):
        print(line)
    return 1 if report.blocked else 0


def cmd_cap_export(args: argparse.Namespace) -> int:
    """Draft a CAP 1.2 request to the police for an approved version."""
    from krise_tui.core.features.messages import published_as_exercise
    from krise_tui.exports.cap_request import CapExportError, cap_message, cap_request
    from krise_tui.journal.store import Journal, JournalError
    from krise_tui.playbook.loader import load_org, load_playbook, playbook_hash

    settings = _settings(args)
    if settings.org_file is None or settings.playbook is None:
        print(
            "krise cap export: needs org_file and playbook (krise.toml or KRISE_*)", file=sys.stderr
        )
        return 2
    org = load_org(settings.org_file)

    async def state() -> object:
        async with await Journal.open(settings.journal_path, read_only=True) as journal:
            return await journal.load_state()

    from datetime import UTC, datetime

    from krise_tui.core.state import IncidentState

    try:
        loaded = asyncio.run(state())
    except JournalError as exc:
        print(f"krise cap export: {exc}", file=sys.stderr)
        return 2
    assert isinstance(loaded, IncidentState)
    # The CAP's event and category come from the playbook the incident ran with (its hash
    # is journaled); the configured one may be another incident type's.
    chosen = Path(settings.playbook)
    active, recorded = loaded.incident.playbook_hash, loaded.incident.playbook_path

    def is_active(path: Path) -> bool:
        try:
            return playbook_hash(path) == active
        except OSError:  # not there (any more): not the one
            return False

    if active is not None and not is_active(chosen):
        if recorded and is_active(Path(recorded)):
            chosen = Path(recorded)
            print(f"krise cap export: the incident's playbook: {chosen}", file=sys.stderr)
        else:
            print(
                f"krise cap export: {chosen} is not the playbook the incident ran with "
                f"({recorded or 'unknown'}, {active[:8]}); its cap section is used",
                file=sys.stderr,
            )
    playbook = load_playbook(chosen, org=org)
    try:
        version = cap_message(loaded.messages, args.version).version_id
        # A version a drill published is an exercise, whatever the flag says: a request
        # marked Actual must never come out of a drill's journal.
        drill = loaded.incident.exercise or published_as_exercise(loaded, version)
        if drill and not args.exercise:
            print(
                f"krise cap export: version {version[:8]} was published in a drill "
                "(marked as an exercise): status Exercise",
                file=sys.stderr,
            )
        xml = cap_request(
            loaded,
            org=org,
            playbook=playbook,
            version_id=version,
            sent=datetime.now(UTC),
            exercise=args.exercise or drill,
        )
    except CapExportError as exc:
        print(f"krise cap export: {exc}", file=sys.stderr)
        return 1
    if args.out:
        Path(args.out).write_text(xml, encoding="utf-8")
    else:
        sys.stdout.write(xml)
    print(
        "Dette er en ANMODNING til politiet om varsling – bare politiet sender Nødvarsel. / "
        "This is a REQUEST to the police; only the police send public warnings.",
        file=sys.stderr,
    )
    return 0


def cmd_bridge(args: argparse.Namespace) -> int:
    """Run one channel's bridge as its own process."""
    from krise_tui.bridge import run_bridge_cli
    from krise_tui.intake import intake_from_def

    settings = _settings(args)
    _setup_logging(settings, to_file=False)
    return asyncio.run(run_bridge_cli(settings, args.channel, intake_factory=intake_from_def))


def cmd_keys_init(args: argparse.Namespace) -> int:
    settings = _settings(args)
    directory = Path(args.dir) if args.dir else settings.keys_path
    priv, pub = write_key_pair(directory, overwrite=args.force)
    print(f"private key: {priv} (0600, keep it on the console machine)")
    print(f"public key:  {pub} (copy to staff terminals and bridges)")
    return 0


def cmd_journal_verify(args: argparse.Namespace) -> int:
    """Check the hash chain, every row's columns, the snapshots and the signed head."""
    from krise_tui.journal.store import directory_problem
    from krise_tui.journal.verify import public_key_for, verify_with_head

    path = Path(args.path)
    if (problem := directory_problem(path)) is not None:
        print(f"krise journal verify: {problem}", file=sys.stderr)
        return 2
    if not path.exists():  # nothing to check: not a broken journal (exit 1)
        print(f"krise journal verify: {path}: no such file", file=sys.stderr)
        return 2
    key = Path(args.public_key) if args.public_key else None
    if key is None and not args.no_head:
        key = public_key_for(path, _settings(args).public_key_path)
    result = verify_with_head(
        path,
        public_key=key,
        extra_heads=[Path(p) for p in args.head],
        expect_head=args.expect_head,
        with_head=not args.no_head,
    )
    if result.ok:
        print(f"{args.path}: OK, {result.report.rows} events, head {result.report.head_hash}")
        for line in result.notes:
            print(f"  {line}")
        return 0
    if result.unchecked:
        print(
            f"{args.path}: NOT VERIFIED: the chain is sound ({result.report.rows} events), "
            f"but {result.reason}; give --public-key FILE (or --no-head for the chain only)",
            file=sys.stderr,
        )
        return 1
    print(f"{args.path}: BROKEN: {result.reason}", file=sys.stderr)
    return 1


def cmd_journal_export(args: argparse.Namespace) -> int:
    """The incident for the Noark 5 archive (see :mod:`krise_tui.exports.noark5_cli`)."""
    from krise_tui.exports import noark5_cli

    return noark5_cli.run(args)


def cmd_journal_show(args: argparse.Namespace) -> int:
    """The newest events in words, or every event as one JSON object per line."""
    import json

    from krise_tui.core.describe import describe
    from krise_tui.core.events import event_from_json
    from krise_tui.journal.store import Journal, JournalRow

    path = Path(args.path)
    if not path.exists():
        print(f"krise journal show: {path}: no such file", file=sys.stderr)
        return 2

    def as_json(row: JournalRow) -> str:
        data = json.loads(row.body)
        base = {k: data.pop(k) for k in ("id", "org", "incident_id", "actor", "ts", "type")}
        out: dict[str, object] = {
            "seq": row.seq,
            "type": base["type"],
            "actor": base["actor"],
            "time": base["ts"],
            "id": base["id"],
            "incident_id": base["incident_id"],
        }
        if "topic" in data:
            out["topic"] = data.pop("topic")
        out["body"] = data
        return json.dumps(out, ensure_ascii=False, sort_keys=False)

    async def run() -> None:
        async with await Journal.open(path, read_only=True) as journal:
            rows = journal.rows() if args.json and args.tail is None else None
            if rows is not None:
                async for row in rows:
                    print(as_json(row))
                return
            for row in await journal.tail(args.tail or 20):
                if args.json:
                    print(as_json(row))
                else:
                    event = event_from_json(row.body)
                    # Posts are residents' text: nothing in one may act on this terminal
                    # or start a line of its own.
                    said = printable(describe(event, args.lang or "nb"))
                    # UTC, and marked so: the console shows the municipality's wall time,
                    # and an unmarked 10:00 here read as an hour before the console's 11:00.
                    print(f"{row.seq:>6}  {row.ts[:19]}Z  {said}")

    try:
        asyncio.run(run())
    except JournalError as exc:
        print(f"krise journal show: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `| head` closed the pipe: not an error
        return 0
    return 0


# --- parser ------------------------------------------------------------------------------


def _validation_lines(exc: ValidationError) -> str:
    """One line per wrong setting: where, what, the value given (no links to pydantic's
    documentation: the reader is the municipality's IT, not a pydantic user)."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(settings)"
        given = f" (given: {printable(repr(error['input']))[:80]})" if "input" in error else ""
        lines.append(f"  {where}: {error['msg']}{given}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="krise",
        description="Kriseledelsens kommunikasjonssentral / crisis-communication command centre.",
    )
    parser.add_argument("--version", action="version", version=f"krise {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--org", help="organisation slug (overrides KRISE_ORG / krise.toml)")
    common.add_argument("--data-dir", type=Path, help="where journal, keys and broker files live")
    common.add_argument("--journal", type=Path, help="journal file (SQLite)")
    common.add_argument("--lang", choices=["nb", "en"], help="interface language")
    common.add_argument("--operator", help="who is at this console")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("console", parents=[common], help="run the crisis leadership's console")
    p.add_argument(
        "--headless",
        action="store_true",
        help="the runtime without a screen (journal, bus, outbox, bridges, timers); logs to stderr",
    )
    p.add_argument(
        "--open-without-playbook",
        action="store_true",
        help="open the incident even when the playbook has problems",
    )
    p.add_argument(
        "--theme",
        choices=["textual-dark", "textual-light", "krise-high-contrast"],
        help="colours (also from the command palette, ctrl+p)",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="serve the console to a web browser (textual-serve; one session at a time)",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="with --serve: address (default: this machine only)"
    )
    p.add_argument("--port", type=int, default=8765, help="with --serve: port (default 8765)")
    p.add_argument(
        "--public-url", help="with --serve: the URL the browser uses (behind a TLS proxy)"
    )
    p.set_defaults(func=cmd_console)

    p = sub.add_parser("staff", parents=[common], help="run a staff terminal")
    p.add_argument("--id", help="this terminal's staff id (its broker user)")
    p.add_argument("--dept", help="this terminal's department (freeze scope)")
    p.add_argument(
        "--simulate", type=int, default=0, metavar="N", help="run N headless simulated terminals"
    )
    p.add_argument("--processes", type=int, default=2, help="processes for --simulate")
    p.add_argument(
        "--ack-delay", type=float, default=30.0, help="simulated acks within this many seconds"
    )
    p.set_defaults(func=cmd_staff)

    p = sub.add_parser(
        "broker", parents=[common], help="run a broker for a drill room, or manage users"
    )
    p.add_argument("--kind", choices=["auto", "mosquitto", "amqtt"], default="auto")
    p.add_argument(
        "--port", type=int, default=0, help="TCP port (default: the last one, if still free)"
    )
    p.set_defaults(func=cmd_broker)
    bsub = p.add_subparsers(dest="broker_command", metavar="SUBCOMMAND")
    u = bsub.add_parser(
        "users", help="write a password file with generated passwords, and the org's ACL"
    )
    u.add_argument("--passwd", help="password file to write (0600); omitted: only the ACL")
    u.add_argument("--acl", help="ACL file to write (default: print it)")
    # SUPPRESS: given here or before `users`, without one hiding the other.
    u.add_argument("--org", default=argparse.SUPPRESS, help="organisation slug of the ACL")
    u.add_argument("--console", action="append", default=[], metavar="USER")
    u.add_argument("--staff", action="append", default=[], metavar="STAFF_ID")
    u.add_argument("--bridge", action="append", default=[], metavar="CHANNEL")
    u.add_argument(
        "--simulated", type=int, default=0, metavar="N", help="N simulated staff sim-00001…"
    )
    u.set_defaults(func=cmd_broker_users)

    from krise_tui.playbook.cli import add_playbook_parser

    add_playbook_parser(sub)

    from krise_tui.drill import cli as drill_cli
    from krise_tui.exports import sitrep_cli
    from krise_tui.text import batch_cli, rumours_cli

    batch_cli.add_parser(sub)
    sitrep_cli.add_parser(sub)
    drill_cli.add_parser(sub)
    drill_cli.add_demo_parser(sub, console=show_demo)
    rumours_cli.add_parser(sub)

    p = sub.add_parser(
        "lint",
        help="check a message before approval (exit 1 when blocked, e.g. an ID number; "
        "2 when the text cannot be read)",
    )
    p.add_argument("file", nargs="?", help="text file (first line = headline); - or none: stdin")
    p.add_argument("--language", default="nb", help="language of the text (default nb)")
    p.add_argument("--website", help="the municipality's website URL the text must link to")
    p.add_argument("--allow-phone", action="append", default=[], metavar="NUMBER")
    p.add_argument("--allow-email", action="append", default=[], metavar="ADDRESS")
    p.add_argument("--lang", choices=["nb", "en"], help="language of the report")
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser(
        "bridge", parents=[common], help="run one channel's bridge (bus -> platform) on its own"
    )
    p.add_argument("channel", help="channel id from the org file, e.g. nettside, sms")
    p.set_defaults(func=cmd_bridge)

    p = sub.add_parser("cap", help="CAP 1.2 warning requests (only the police send Nødvarsel)")
    csub = p.add_subparsers(dest="cap_command", metavar="SUBCOMMAND", required=True)
    c = csub.add_parser(
        "export", parents=[common], help="draft a CAP 1.2 request for an approved version"
    )
    c.add_argument("--version", help="version id (prefix); default: the published version")
    c.add_argument("--exercise", action="store_true", help="status Exercise (drills)")
    c.add_argument("--out", help="write the XML here instead of stdout")
    c.set_defaults(func=cmd_cap_export)

    p = sub.add_parser("keys", help="signing keys")
    ksub = p.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)
    k = ksub.add_parser("init", parents=[common], help="create the console's Ed25519 key pair")
    k.add_argument("--dir", help="directory (default: {data_dir}/keys)")
    k.add_argument("--force", action="store_true", help="overwrite an existing key")
    k.set_defaults(func=cmd_keys_init)

    p = sub.add_parser("journal", help="inspect and verify journals")
    jsub = p.add_subparsers(dest="journal_command", metavar="SUBCOMMAND", required=True)
    j = jsub.add_parser(
        "verify",
        parents=[common],
        help="check the hash chain and the signed head; exit 1 naming the first problem",
    )
    j.add_argument("path")
    j.add_argument(
        "--public-key", help="the console's public key (default: {data_dir}/keys/console.pub)"
    )
    j.add_argument(
        "--head", action="append", default=[], help="another copy of the signed head to check"
    )
    j.add_argument("--no-head", action="store_true", help="check the chain only")
    j.add_argument("--expect-head", help="hash the newest row must have (detects truncation)")
    j.set_defaults(func=cmd_journal_verify)
    j = jsub.add_parser("show", help="print the events (newest, in words; or all as JSON lines)")
    j.add_argument("path")
    j.add_argument("--tail", type=int, default=None, help="only the newest N events")
    j.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per event and line: seq, type, actor, time, body (and topic)",
    )
    j.add_argument("--lang", choices=["nb", "en"], default="nb")
    j.set_defaults(func=cmd_journal_show)
    j = jsub.add_parser(
        "export",
        help="the incident for the Noark 5 archive (arkivstruktur.xml and documents)",
        description=(
            "Verify the journal, then write one saksmappe for the incident: a journalpost "
            "per published message, shared answer, forwarded request and freeze, an "
            "arkivnotat per hidden post and for the journal itself, as Noark 5 (v5.0) "
            "arkivstruktur.xml with UTF-8 text documents and SHA-256 checksums."
        ),
    )
    j.set_defaults(func=cmd_journal_export)
    from krise_tui.exports.noark5_cli import add_arguments as add_export_arguments

    add_export_arguments(j)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (BrokerError, KeyFileError, JournalError, FileNotFoundError) as exc:
        print(f"krise: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        print(f"krise: invalid configuration:\n{_validation_lines(exc)}", file=sys.stderr)
        return 1
    except ConfigFileError as exc:
        print(f"krise: invalid configuration: {exc}", file=sys.stderr)
        return 1
    except PlaybookError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`krise batch … | head`): not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        # A file the command was told to write or read cannot be (a directory that is
        # a file, a full disk, no permission): said with its name, not a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"krise: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
