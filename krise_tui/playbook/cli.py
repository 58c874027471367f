"""``krise playbook …``: check playbooks (and an org file) from the command line.

``krise playbook check FILE… [--org ORGFILE]`` prints every problem as
``file:line:column: message`` (the format editors and CI understand) and one ``OK`` line
per valid file, and exits 1 when any file has a problem. Languages still awaiting a
translator are named on the OK line; they are not errors. With ``--org`` each playbook
is also checked against the organisation: required languages, channels, staff groups,
four eyes, and a CAP area that may only narrow the org's (a playbook naming another
municipality fails here, not in a request to the police).

Hook it into the main parser with :func:`add_playbook_parser`; :func:`run_check` is the
same check as a function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from krise_tui.playbook.loader import Problem, check_org, load_org, read_limited, validate_bytes
from krise_tui.playbook.models import Org


def _looks_like_org(data: bytes) -> bool:
    """An org file (slug + operators at the top level) named where playbooks are expected."""
    head = data[:65536].decode("utf-8", errors="replace")
    keys = {line.split(":", 1)[0] for line in head.splitlines() if line[:1].isalpha()}
    return {"slug", "operators"} <= keys


def run_check(
    paths: Sequence[Path | str], org_path: Path | str | None = None, *, out: TextIO | None = None
) -> int:
    """Check playbook files (against an org file when given); 0 when all are valid, else 1."""
    stream = out if out is not None else sys.stdout
    failed = False
    org: Org | None = None
    if org_path is not None:
        problems = check_org(org_path)
        if problems:
            failed = True
            for problem in problems:
                print(problem, file=stream)
        else:
            org = load_org(org_path)
            print(f"{org_path}: OK (org {org.slug})", file=stream)
    for path in paths:
        try:
            data = read_limited(path)
        except OSError as exc:
            failed = True
            print(Problem(str(path), 1, 1, f"cannot read: {exc.strerror or exc}"), file=stream)
            continue
        if _looks_like_org(data):
            org_problems = check_org(path)
            for problem in org_problems:
                print(problem, file=stream)
            failed = failed or bool(org_problems)
            if not org_problems:
                print(f"{path}: OK (org file)", file=stream)
            continue
        playbook, problems = validate_bytes(data, file=str(path), org=org)
        if playbook is None:
            failed = True
            for problem in problems:
                print(problem, file=stream)
            continue
        note = ""
        waiting = playbook.awaiting_translation()
        if waiting:
            note = f" (awaiting translation: {', '.join(sorted(waiting))})"
        print(f"{path}: OK{note}", file=stream)
    return 1 if failed else 0


def cmd_playbook_check(args: argparse.Namespace) -> int:
    """``krise playbook check``."""
    return run_check(args.files, args.org)


def add_playbook_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``playbook check FILE… [--org ORGFILE]`` to a subparsers object.

    The leaf parser sets ``func`` to a function taking the parsed namespace and returning
    the exit code (the convention of :mod:`krise_tui.cli`).
    """
    parser = subparsers.add_parser("playbook", help="check playbooks and org files")
    sub = parser.add_subparsers(dest="playbook_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser(
        "check",
        help="validate playbooks; print file:line:column: message per problem",
        description=(
            "Validate playbook files, and with --org check them against an org file "
            "(languages, channels, staff groups, four eyes, the CAP area). "
            "Exit 0 when every file is valid, 1 otherwise."
        ),
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE", help="playbook YAML")
    check.add_argument("--org", type=Path, metavar="ORGFILE", help="org file to check against")
    check.set_defaults(func=cmd_playbook_check)
    return parser
