"""``krise`` — the command-line entry point.

Subcommands are thin: they load settings, build a runtime or call a core function, and
turn errors into one clear line and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from krise_tui import __version__
from krise_tui.bus.broker import (
    STANDARD_BRIDGES,
    WEAK_BROKER_WARNING,
    BrokerError,
    BrokerKind,
    bridge_acl_block,
    choose_embedded,
    write_endpoint,
    write_password_file,
)
from krise_tui.bus.envelope import KeyFileError, write_key_pair
from krise_tui.config import Settings, load_settings
from krise_tui.journal.store import JournalError, verify_file
from krise_tui.playbook.loader import PlaybookError

log = logging.getLogger("krise")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    for name in ("org", "journal", "data_dir", "lang", "operator"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return load_settings(**overrides)


def _setup_logging(settings: Settings, *, to_file: bool) -> None:
    level = os.environ.get("KRISE_LOG_LEVEL", "INFO").upper()
    if to_file:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        logging.basicConfig(
            filename=settings.data_dir / "krise.log",
            level=level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")


# --- subcommands ---------------------------------------------------------------------------


def cmd_console(args: argparse.Namespace) -> int:
    from krise_tui.console.app import ConsoleApp
    from krise_tui.runtime import ConsoleRuntime

    settings = _settings(args)
    _setup_logging(settings, to_file=True)
    ConsoleApp(ConsoleRuntime(settings)).run()
    return 0


def cmd_staff(args: argparse.Namespace) -> int:
    if args.simulate:
        return cmd_simulate(args)
    if not args.id:
        print("krise staff: --id is required (or --simulate N)", file=sys.stderr)
        return 2
    from krise_tui.runtime import StaffRuntime
    from krise_tui.staff.app import StaffApp

    settings = _settings(args)
    _setup_logging(settings, to_file=True)
    department, website = args.dept, None
    if settings.org_file is not None:
        from krise_tui.playbook.loader import load_org
        from krise_tui.runtime import roster_from_org

        org = load_org(settings.org_file)
        settings = settings.model_copy(update={"org": org.slug, "org_name": org.name})
        department = department or (roster_from_org(org) or {}).get(args.id)
        website = str(org.website)
    runtime = StaffRuntime(settings, args.id, department=department)
    StaffApp(runtime, settings.org_name, website).run()
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run N headless staff terminals against the local (or configured) broker."""
    import time

    from krise_tui.bus.broker import read_endpoint, sim_staff_id
    from krise_tui.simulate import SimConfig, start_simulation

    settings = _settings(args)
    _setup_logging(settings, to_file=False)
    if settings.broker.host:
        host, port = settings.broker.host, settings.broker.port
        password = settings.broker.secret()
    else:
        endpoint = read_endpoint(settings.broker_dir / "endpoint.json")
        host, port = endpoint.host, endpoint.port
        creds = endpoint.credentials
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
    settings = _settings(args)
    _setup_logging(settings, to_file=False)

    async def run() -> None:
        broker = choose_embedded(args.kind, settings.broker_dir)
        if args.port:
            broker.port = args.port
        endpoint = await broker.start()
        write_endpoint(settings.broker_dir / "endpoint.json", endpoint)
        print(f"krise broker: {endpoint.kind} on {endpoint.host}:{endpoint.port}", flush=True)
        print(f"endpoint and local credentials: {settings.broker_dir / 'endpoint.json'}")
        if endpoint.kind is BrokerKind.AMQTT:
            print(WEAK_BROKER_WARNING)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await broker.stop()
        with contextlib.suppress(FileNotFoundError):
            (settings.broker_dir / "endpoint.json").unlink()

    asyncio.run(run())
    return 0


def cmd_broker_users(args: argparse.Namespace) -> int:
    users: dict[str, str] = {}
    for name in args.console:
        users[name] = secrets.token_urlsafe(18)
    for sid in args.staff:
        users[sid] = secrets.token_urlsafe(18)
    for channel in args.bridge:
        users[f"bridge-{channel}"] = secrets.token_urlsafe(18)
    if not users:
        print(
            "krise broker users: name at least one --console, --staff or --bridge user",
            file=sys.stderr,
        )
        return 2
    write_password_file(Path(args.passwd), users)
    print(f"# wrote {len(users)} users to {args.passwd} (mode 0600); passwords follow, once:")
    for name, password in users.items():
        print(f"{name} {password}")
    extra = [ch for ch in args.bridge if ch not in STANDARD_BRIDGES]
    if extra:
        print("\n# add these blocks to broker/acl for the new bridges:")
        for ch in extra:
            print(bridge_acl_block(ch))
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    """Lint a message text (file or stdin); exit 1 when it must not be approved."""
    from krise_tui.rules.lint import MessageVariant, lint_message

    if args.file in (None, "-"):
        text = sys.stdin.read()
    else:
        text = Path(args.file).read_text(encoding="utf-8")
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
    from krise_tui.exports.cap_request import CapExportError, cap_request
    from krise_tui.journal.store import Journal
    from krise_tui.playbook.loader import load_org, load_playbook

    settings = _settings(args)
    if settings.org_file is None or settings.playbook is None:
        print(
            "krise cap export: needs org_file and playbook (krise.toml or KRISE_*)", file=sys.stderr
        )
        return 2
    org = load_org(settings.org_file)
    playbook = load_playbook(settings.playbook, org=org)

    async def state() -> object:
        async with await Journal.open(settings.journal_path) as journal:
            return await journal.load_state()

    from datetime import UTC, datetime

    from krise_tui.core.state import IncidentState

    loaded = asyncio.run(state())
    assert isinstance(loaded, IncidentState)
    try:
        xml = cap_request(
            loaded,
            org=org,
            playbook=playbook,
            version_id=args.version,
            sent=datetime.now(UTC),
            exercise=args.exercise,
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

    settings = _settings(args)
    _setup_logging(settings, to_file=False)
    return asyncio.run(run_bridge_cli(settings, args.channel))


def cmd_keys_init(args: argparse.Namespace) -> int:
    settings = _settings(args)
    directory = Path(args.dir) if args.dir else settings.keys_path
    priv, pub = write_key_pair(directory, overwrite=args.force)
    print(f"private key: {priv} (0600, keep it on the console machine)")
    print(f"public key:  {pub} (copy to staff terminals and bridges)")
    return 0


def cmd_journal_verify(args: argparse.Namespace) -> int:
    report = verify_file(Path(args.path), expect_head=args.expect_head)
    if report.ok:
        print(f"{args.path}: OK, {report.rows} events, head {report.head_hash}")
        return 0
    where = f" (first bad seq {report.bad_seq})" if report.bad_seq is not None else ""
    print(f"{args.path}: BROKEN{where}: {report.reason}", file=sys.stderr)
    return 1


def cmd_journal_show(args: argparse.Namespace) -> int:
    from krise_tui.core.describe import describe
    from krise_tui.core.events import event_from_json
    from krise_tui.journal.store import Journal

    async def run() -> None:
        async with await Journal.open(Path(args.path)) as journal:
            for row in await journal.tail(args.tail):
                event = event_from_json(row.body)
                print(f"{row.seq:>6}  {row.ts[:19]}  {describe(event, args.lang)}")

    asyncio.run(run())
    return 0


# --- parser ------------------------------------------------------------------------------


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
    p.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    p.set_defaults(func=cmd_broker)
    bsub = p.add_subparsers(dest="broker_command", metavar="SUBCOMMAND")
    u = bsub.add_parser("users", help="write a mosquitto password file with generated passwords")
    u.add_argument("--passwd", required=True, help="password file to write (0600)")
    u.add_argument("--console", action="append", default=[], metavar="USER")
    u.add_argument("--staff", action="append", default=[], metavar="STAFF_ID")
    u.add_argument("--bridge", action="append", default=[], metavar="CHANNEL")
    u.set_defaults(func=cmd_broker_users)

    from krise_tui.playbook.cli import add_playbook_parser

    add_playbook_parser(sub)

    p = sub.add_parser(
        "lint", help="check a message before approval (exit 1 when blocked, e.g. an ID number)"
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
    j = jsub.add_parser("verify", help="check the hash chain; exit 1 naming the first bad row")
    j.add_argument("path")
    j.add_argument("--expect-head", help="hash the newest row must have (detects truncation)")
    j.set_defaults(func=cmd_journal_verify)
    j = jsub.add_parser("show", help="print the newest events")
    j.add_argument("path")
    j.add_argument("--tail", type=int, default=50)
    j.add_argument("--lang", choices=["nb", "en"], default="nb")
    j.set_defaults(func=cmd_journal_show)
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
        print(f"krise: invalid configuration:\n{exc}", file=sys.stderr)
        return 1
    except PlaybookError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
