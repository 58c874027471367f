"""The scenario's JSON Schema, generated from the models and committed.

``playbooks/schema/scenario.schema.json`` gives editors completion and hover help for
scenario files (the ``# yaml-language-server: $schema=…`` line at their top), from the
models' field docstrings. A test fails when the committed file drifts from the models;
regenerate it with::

    python -m krise_tui.drill.schema            # writes playbooks/schema/scenario.schema.json
    python -m krise_tui.drill.schema --out DIR

The schema checks structure only: references (posts, drafts, rumours), the playbook's
templates and the org's channels need ``krise drill check``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from krise_tui.drill.scenario import Scenario
from krise_tui.playbook.schema import DEFAULT_DIR, schema_text

FILE_NAME = "scenario.schema.json"


def scenario_schema_text() -> str:
    """The committed file's text (stable key order, trailing newline)."""
    return schema_text(Scenario)


def write_schema(directory: Path = DEFAULT_DIR) -> Path:
    """Write the schema into ``directory``; returns the file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    path.write_text(scenario_schema_text(), encoding="utf-8")
    return path


def schema_drifted(directory: Path = DEFAULT_DIR) -> bool:
    """Whether the committed schema is missing or differs from the models."""
    try:
        current = (directory / FILE_NAME).read_text(encoding="utf-8")
    except OSError:
        return True
    return current != scenario_schema_text()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the schema."""
    parser = argparse.ArgumentParser(
        prog="python -m krise_tui.drill.schema",
        description="Write the JSON Schema of drill scenario files.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="target directory")
    args = parser.parse_args(argv)
    print(write_schema(args.out))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
