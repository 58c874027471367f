"""JSON Schema for playbooks and org files, generated from the pydantic models.

The schemas are committed under ``playbooks/schema/`` so that editors (the YAML language
server, via the ``# yaml-language-server: $schema=…`` line at the top of each file) offer
completion and hover help from the models' field docstrings. A test fails when the
committed files drift from the models; regenerate them with::

    python -m krise_tui.playbook.schema            # writes playbooks/schema/*.schema.json
    python -m krise_tui.playbook.schema --out DIR

The schema checks structure only: cross-field rules (placeholders, SMS length, required
languages) need ``krise playbook check``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from krise_tui.playbook.models import Org, Playbook

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema dialect pydantic generates."""

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "playbooks" / "schema"
"""Where the committed schemas live in a source checkout."""

SCHEMAS: dict[str, type[BaseModel]] = {
    "playbook.schema.json": Playbook,
    "org.schema.json": Org,
}
"""File name → model."""


def schema_for(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of ``model``, with ``$schema`` first."""
    return {"$schema": SCHEMA_DIALECT, **model.model_json_schema()}


def schema_text(model: type[BaseModel]) -> str:
    """The schema as the committed file's text (stable key order, trailing newline)."""
    return json.dumps(schema_for(model), indent=2, ensure_ascii=False) + "\n"


def schema_texts() -> dict[str, str]:
    """File name → text, for every schema."""
    return {name: schema_text(model) for name, model in SCHEMAS.items()}


def write_schemas(directory: Path = DEFAULT_DIR) -> list[Path]:
    """Write every schema into ``directory``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_texts().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def schema_drift(directory: Path = DEFAULT_DIR) -> list[str]:
    """Names of the schema files in ``directory`` that are missing or differ from the models."""
    drifted = []
    for name, text in schema_texts().items():
        path = directory / name
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != text:
            drifted.append(name)
    return drifted


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the schemas."""
    parser = argparse.ArgumentParser(
        prog="python -m krise_tui.playbook.schema",
        description="Write the JSON Schemas of playbooks and org files.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="target directory")
    args = parser.parse_args(argv)
    for path in write_schemas(args.out):
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
