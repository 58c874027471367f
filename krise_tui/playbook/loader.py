"""Safe YAML loading of playbooks and org files, with ``file:line:column`` errors.

The YAML is read with a :class:`yaml.SafeLoader` subclass that

- records the position (1-based line and column) of every mapping key and sequence
  item, so that a pydantic error's ``loc`` maps back to the place in the file;
- refuses anchors and aliases (``&a`` / ``*a``): no billion-laughs expansion, and
  nothing a playbook needs;
- refuses nesting deeper than :data:`MAX_DEPTH`, more than :data:`MAX_NODES` values,
  files over :data:`MAX_FILE_BYTES`, numbers over 40 characters and any tag beyond the
  plain scalar/list/mapping ones, so that no input takes long;
- reports duplicate keys (YAML says they are errors; PyYAML silently keeps the last);
- resolves scalars by the YAML 1.2 core schema: ``yes``/``no``/``on``/``off`` stay text
  (the "Norway problem"), ``12:30`` stays text, dates stay text.

Where a problem is reported: an unknown or duplicate key at the key; a wrong value at
its key (or at the item, in a list); a missing key at the mapping that lacks it (its
key, or line 1 column 1 for the top level); a YAML syntax error where the parser
stopped.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from krise_tui.playbook.models import (
    DEFER_CHECKS,
    Document,
    Issue,
    Org,
    Playbook,
    TemplateSyntaxError,
    TemplateText,
    format_loc,
    is_secret_key,
    split_template,
)

MAX_FILE_BYTES = 1024 * 1024
"""Largest file the loader reads (1 MiB; real playbooks are a few tens of KiB)."""
MAX_DEPTH = 32
"""Deepest nesting of lists and mappings accepted (real playbooks use about 6)."""
MAX_NODES = 20_000
"""Most values (scalars, lists, mappings) accepted in one file (real playbooks have ~700):
this bounds the time the pure-Python YAML parser can take."""
MAX_PROBLEMS = 100
"""At most this many problems are reported per file."""
_MAX_NUMBER_CHARS = 40

D = TypeVar("D", bound=Document)


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One problem in one file, printed as ``file:line:column: message``."""

    file: str
    """The file's path as given."""
    line: int
    """1-based line."""
    column: int
    """1-based column."""
    message: str
    """What is wrong and, where possible, how to fix it."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class PlaybookError(Exception):
    """A playbook or org file is invalid; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems) or "invalid file")


class TemplateError(ValueError):
    """A template cannot be rendered (unknown id or language, missing value…)."""


# --- positions -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pos:
    """Where a value is written, and where its children are."""

    line: int
    column: int
    children: dict[Any, _Pos] | list[_Pos] | None = None


class _Refused(Exception):
    """The YAML uses something the loader refuses (alias, anchor, depth, tag…)."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


# YAML 1.2 core schema resolvers (no yes/no booleans, no sexagesimal numbers, no dates).
_CORE_RESOLVERS: list[tuple[str, re.Pattern[str], list[str]]] = [
    ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    (
        "tag:yaml.org,2002:int",
        re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
        list("-+0123456789"),
    ),
    (
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+.0123456789"),
    ),
    ("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
]


class _PositionLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, anchors and deep nesting while composing."""

    yaml_implicit_resolvers: dict[Any, Any] = {}

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                event.start_mark,
                f"aliases (*{event.anchor}) are not allowed: write the value out in full",
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _Refused(
                event.start_mark,
                f"anchors (&{anchor}) are not allowed: write each value out in full",
            )
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _Refused(event.start_mark, f"more than {MAX_NODES} values in one file")
        if isinstance(event, yaml.CollectionStartEvent):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(event.start_mark, f"nested deeper than {MAX_DEPTH} levels")
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)


for _tag, _regexp, _first in _CORE_RESOLVERS:
    _PositionLoader.add_implicit_resolver(_tag, _regexp, _first)

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


def _mark_pos(mark: Any) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def _scalar(node: ScalarNode) -> Any:
    tag, value = node.tag, node.value
    if tag == _STR:
        return value
    if tag == "tag:yaml.org,2002:null":
        if value not in ("", "~", "null", "Null", "NULL"):
            raise _Refused(node.start_mark, f"{value!r} is not null")
        return None
    if tag == "tag:yaml.org,2002:bool":
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise _Refused(node.start_mark, f"{value!r} is not a boolean: write true or false")
        return lowered == "true"
    if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
        if len(value) > _MAX_NUMBER_CHARS:
            raise _Refused(node.start_mark, f"number longer than {_MAX_NUMBER_CHARS} characters")
        try:
            if tag == "tag:yaml.org,2002:float":
                text = value.lower().replace(".inf", "inf").replace(".nan", "nan")
                return float(text)
            if value.startswith(("0o", "0x")):
                return int(value[2:], 8 if value[1] == "o" else 16)
            return int(value, 10)
        except ValueError:
            raise _Refused(node.start_mark, f"{value!r} is not a number") from None
    raise _Refused(node.start_mark, f"tag {tag} is not allowed: write plain text, numbers, lists")


class _Builder:
    """Turns composed nodes into plain data plus a position tree."""

    def __init__(self) -> None:
        self.problems: list[tuple[int, int, str]] = []

    def build(self, node: Node) -> tuple[Any, _Pos]:
        line, column = _mark_pos(node.start_mark)
        if isinstance(node, ScalarNode):
            return _scalar(node), _Pos(line, column)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                raise _Refused(node.start_mark, f"tag {node.tag} is not allowed")
            items: list[Any] = []
            positions: list[_Pos] = []
            for child in node.value:
                value, pos = self.build(child)
                items.append(value)
                positions.append(pos)
            return items, _Pos(line, column, positions)
        if isinstance(node, MappingNode):
            if node.tag != _MAP:
                raise _Refused(node.start_mark, f"tag {node.tag} is not allowed")
            data: dict[Any, Any] = {}
            children: dict[Any, _Pos] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    raise _Refused(key_node.start_mark, "keys must be plain text")
                key = _scalar(key_node)
                key_line, key_column = _mark_pos(key_node.start_mark)
                value, pos = self.build(value_node)
                if key in children:
                    if len(self.problems) >= MAX_PROBLEMS:
                        continue
                    first = children[key]
                    self.problems.append(
                        (
                            key_line,
                            key_column,
                            f"duplicate key {key!r} (first at line {first.line}); "
                            "each key may appear once",
                        )
                    )
                    continue
                data[key] = value
                children[key] = _Pos(key_line, key_column, pos.children)
            return data, _Pos(line, column, children)
        raise _Refused(node.start_mark, "unsupported YAML node")  # pragma: no cover


# --- reading -----------------------------------------------------------------------------


def _line_col(text: str, index: int) -> tuple[int, int]:
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def read_limited(path: Path | str) -> bytes:
    """A file's bytes, at most one byte past :data:`MAX_FILE_BYTES` (enough to refuse it).

    Raises OSError.
    """
    with Path(path).open("rb") as handle:
        return handle.read(MAX_FILE_BYTES + 1)


def _parse_yaml(data: bytes | str, file: str) -> tuple[Any, _Pos | None, list[Problem]]:
    """YAML text → (data, positions, problems); data is None when problems say why."""
    # Lone surrogates in a str survive encoding and are then reported as invalid UTF-8.
    raw = data.encode("utf-8", errors="surrogatepass") if isinstance(data, str) else data
    if len(raw) > MAX_FILE_BYTES:
        return None, None, [Problem(file, 1, 1, f"file larger than {MAX_FILE_BYTES} bytes")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        return None, None, [Problem(file, line, column, f"not UTF-8 text ({exc.reason})")]
    try:
        loader = _PositionLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
        if node is None:
            return None, None, [Problem(file, 1, 1, "the file is empty")]
        builder = _Builder()
        value, pos = builder.build(node)
    except _Refused as exc:
        line, column = _mark_pos(exc.mark) if exc.mark else (1, 1)
        return None, None, [Problem(file, line, column, exc.message)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = _mark_pos(mark) if mark else (1, 1)
        what = exc.problem or "invalid YAML"
        if exc.context:
            what = f"{what} ({exc.context}"
            if exc.context_mark is not None and exc.context_mark is not mark:
                what += f" at line {exc.context_mark.line + 1}"
            what += ")"
        return None, None, [Problem(file, line, column, f"YAML syntax error: {what}")]
    except yaml.reader.ReaderError as exc:
        line, column = _line_col(text, exc.position)
        return None, None, [Problem(file, line, column, f"YAML syntax error: {exc.reason}")]
    except yaml.YAMLError as exc:
        return None, None, [Problem(file, 1, 1, f"YAML syntax error: {exc}")]
    except RecursionError:
        return None, None, [Problem(file, 1, 1, "nested too deeply")]
    problems = [Problem(file, line, column, message) for line, column, message in builder.problems]
    if problems:
        return None, None, problems
    return value, pos, []


# --- mapping validation errors to positions -------------------------------------------------


def _resolve(root: _Pos, loc: tuple[Any, ...]) -> tuple[_Pos, list[Any]]:
    """Follow ``loc`` through the position tree as far as it goes.

    Elements that do not name a child (pydantic's union tags, ``[key]``) are skipped.
    Returns the deepest position reached and the elements that led there.
    """
    pos, path = root, []
    for part in loc:
        children = pos.children
        child: _Pos | None = None
        if isinstance(children, dict):
            try:
                child = children.get(part)
            except TypeError:
                child = None
        elif isinstance(children, list) and isinstance(part, int) and 0 <= part < len(children):
            child = children[part]
        if child is not None:
            pos = child
            path.append(part)
    return pos, path


def _unwrap(tp: Any) -> list[Any]:
    """The concrete types behind an annotation (Annotated stripped, unions split)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        out: list[Any] = []
        for arg in typing.get_args(tp):
            out.extend(_unwrap(arg))
        return out
    return [tp]


def _allowed_keys(model: type[BaseModel], loc: list[Any]) -> list[str]:
    """Field names of the model found at ``loc`` (empty when it is not a model)."""
    current: list[Any] = [model]
    for part in loc:
        following: list[Any] = []
        for tp in current:
            for concrete in _unwrap(tp):
                origin = typing.get_origin(concrete)
                if isinstance(concrete, type) and issubclass(concrete, BaseModel):
                    if isinstance(part, str) and part in concrete.model_fields:
                        following.append(concrete.model_fields[part].annotation)
                elif origin is list and isinstance(part, int):
                    following.append(typing.get_args(concrete)[0])
                elif origin is dict:
                    following.append(typing.get_args(concrete)[1])
        if following:
            current = following
    names: list[str] = []
    for tp in current:
        for concrete in _unwrap(tp):
            if isinstance(concrete, type) and issubclass(concrete, BaseModel):
                names.extend(n for n in concrete.model_fields if n not in names)
    return names


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return "text"
    return type(value).__name__


_HINTS = {
    "bool_type": "write true or false",
    "int_type": "write a whole number",
}


@dataclass(frozen=True, slots=True)
class _Mapped:
    """A validation error mapped to a position, with what it says about keys."""

    problem: Problem
    parent: tuple[Any, ...]
    missing: str | None = None
    suggested: str | None = None


def _located(file: str, pos: _Pos, where: str, message: str) -> Problem:
    return Problem(file, pos.line, pos.column, f"{where}: {message}" if where else message)


def _map_error(file: str, root: _Pos, model: type[BaseModel], error: Any) -> _Mapped:
    loc = tuple(error.get("loc", ()))
    kind = str(error.get("type", ""))
    message = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    pos, path = _resolve(root, loc)
    if kind == "extra_forbidden" and path and loc and path[-1] == loc[-1]:
        key = path[-1]
        parent = tuple(path[:-1])
        allowed = _allowed_keys(model, list(parent))
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        suggested = close[0] if close else None
        if is_secret_key(key):
            message = (
                f"inline secret {key!r}: secrets never go in this file; refer to one with "
                "credentials: {env: VARIABLE} or {file: /path}"
            )
            if suggested:
                message += f" (or did you mean {suggested!r}?)"
        elif suggested:
            message = f"unknown key {key!r} — did you mean {suggested!r}?"
        elif allowed:
            message = f"unknown key {key!r} (expected: {', '.join(allowed)})"
        else:
            message = f"unknown key {key!r}"
        problem = _located(file, pos, format_loc(parent), message)
        return _Mapped(problem, parent, suggested=suggested)
    if kind == "missing" and loc:
        key = str(loc[-1])
        problem = _located(file, pos, format_loc(path), f"missing required key {key!r}")
        return _Mapped(problem, tuple(path), missing=key)
    if kind.endswith("_type") and "input" in error:
        got = error["input"]
        message = f"{message} (got {_describe(got)})"
        if kind == "string_type" and isinstance(got, int | float) and not isinstance(got, bool):
            message += ": put it in quotes"
        elif kind in _HINTS:
            message += f": {_HINTS[kind]}"
    return _Mapped(_located(file, pos, format_loc(path), message), tuple(path))


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(set(problems), key=lambda p: (p.line, p.column, p.message))


def _error_problems(
    file: str, root: _Pos, model: type[BaseModel], error: ValidationError
) -> list[Problem]:
    # Enough errors to find the first MAX_PROBLEMS after merging; a huge broken list must
    # not cost a position lookup per item.
    errors = error.errors(include_url=False)[: MAX_PROBLEMS * 10]
    mapped = [_map_error(file, root, model, e) for e in errors]
    # A misspelt key is reported once: "did you mean 'title'?" covers "missing 'title'".
    suggested = {(m.parent, m.suggested) for m in mapped if m.suggested}
    kept = [m.problem for m in mapped if (m.parent, m.missing) not in suggested]
    return _sorted(kept)[:MAX_PROBLEMS]


def _issue_problem(file: str, root: _Pos, issue: Issue) -> Problem:
    # An issue's loc has no union tags: name it in full even where the file relies on a
    # default (``approval.four_eyes`` when there is no ``approval:``).
    pos, _ = _resolve(root, issue.loc)
    return _located(file, pos, format_loc(issue.loc), issue.message)


def _validate(
    model: type[D], data: bytes | str, file: str, org: Org | None = None
) -> tuple[D | None, list[Problem]]:
    value, root, problems = _parse_yaml(data, file)
    if problems or root is None:
        return None, problems
    if not isinstance(value, dict):
        found = f"expected a mapping of keys at the top level, found {_describe(value)}"
        return None, [Problem(file, root.line, root.column, found)]
    root = _Pos(1, 1, root.children)
    try:
        document = model.model_validate(value, context={DEFER_CHECKS: True})
    except ValidationError as exc:
        return None, _error_problems(file, root, model, exc)
    issues = document.issues()
    if org is not None and isinstance(document, Playbook):
        issues += document.org_issues(org)
    if issues:
        return None, _sorted([_issue_problem(file, root, i) for i in issues])[:MAX_PROBLEMS]
    return document, []


def _read(path: Path | str) -> tuple[bytes | None, list[Problem]]:
    file = str(path)
    try:
        data = read_limited(path)
    except OSError as exc:
        return None, [Problem(file, 1, 1, f"cannot read: {exc.strerror or exc}")]
    return data, []


# --- public API --------------------------------------------------------------------------


def parse_playbook(
    data: bytes | str, *, file: str = "<playbook>", org: Org | None = None
) -> Playbook:
    """Validate playbook YAML text (checked against ``org`` when given).

    Raises :class:`PlaybookError`.
    """
    playbook, problems = _validate(Playbook, data, file, org)
    if playbook is None:
        raise PlaybookError(problems)
    return playbook


def parse_org(data: bytes | str, *, file: str = "<org>") -> Org:
    """Validate org-file YAML text. Raises :class:`PlaybookError`."""
    org, problems = _validate(Org, data, file)
    if org is None:
        raise PlaybookError(problems)
    return org


def load_playbook(path: Path | str, *, org: Org | None = None) -> Playbook:
    """Load and validate a playbook file. Raises :class:`PlaybookError`."""
    data, problems = _read(path)
    if data is None:
        raise PlaybookError(problems)
    return parse_playbook(data, file=str(path), org=org)


def load_org(path: Path | str) -> Org:
    """Load and validate an org file. Raises :class:`PlaybookError`."""
    data, problems = _read(path)
    if data is None:
        raise PlaybookError(problems)
    return parse_org(data, file=str(path))


def check_playbook(path: Path | str, org: Org | None = None) -> list[Problem]:
    """Every problem of a playbook file (against ``org`` when given); empty when valid.

    Languages marked ``awaiting_translation`` are not problems: see
    :meth:`Playbook.awaiting_translation`.
    """
    data, problems = _read(path)
    if data is None:
        return problems
    return _validate(Playbook, data, str(path), org)[1]


def check_org(path: Path | str) -> list[Problem]:
    """Every problem of an org file; empty when valid."""
    data, problems = _read(path)
    if data is None:
        return problems
    return _validate(Org, data, str(path))[1]


def playbook_hash(path: Path | str) -> str:
    """SHA-256 (hex) of the file's bytes: identifies the playbook version in the journal."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def validate_bytes(
    data: bytes, *, file: str, org: Org | None = None
) -> tuple[Playbook | None, list[Problem]]:
    """Validate playbook bytes without raising: ``(playbook, [])`` or ``(None, problems)``."""
    return _validate(Playbook, data, file, org)


# --- templates ---------------------------------------------------------------------------


def _fill(text: str, values: Mapping[str, str], playbook: Playbook, what: str) -> str:
    try:
        pieces = split_template(text)
    except TemplateSyntaxError as exc:  # pragma: no cover - validated playbooks are clean
        raise TemplateError(f"{what}: {exc}") from exc
    out: list[str] = []
    for is_field, value in pieces:
        if not is_field:
            out.append(value)
            continue
        if value not in values:
            declared = playbook.placeholders.get(value)
            hint = f" ({declared.description}, e.g. {declared.example!r})" if declared else ""
            raise TemplateError(f"{what}: no value for {{{value}}}{hint}")
        out.append(str(values[value]))
    return "".join(out)


def _template_text(playbook: Playbook, template_id: str, lang: str) -> TemplateText:
    try:
        template = playbook.template(template_id)
    except KeyError:
        known = ", ".join(t.id for t in playbook.templates)
        raise TemplateError(f"no template {template_id!r} in {playbook.id} ({known})") from None
    text = template.text.get(lang)
    if text is None:
        raise TemplateError(f"template {template_id!r} has no {lang!r} text")
    if not text.ready:
        raise TemplateError(f"template {template_id!r} is awaiting translation into {lang!r}")
    return text


def render_template(
    playbook: Playbook, template_id: str, lang: str, values: Mapping[str, str]
) -> tuple[str, str]:
    """Fill in a template: ``(headline, body)``.

    Values not used by the template are ignored. Raises :class:`TemplateError` for an
    unknown template, a missing or untranslated language, or a missing value.
    """
    text = _template_text(playbook, template_id, lang)
    where = f"template {template_id!r} ({lang})"
    return (
        _fill(text.headline or "", values, playbook, where),
        _fill(text.body or "", values, playbook, where),
    )


def render_sms(playbook: Playbook, template_id: str, lang: str, values: Mapping[str, str]) -> str:
    """Fill in a template's SMS text (its ``sms`` text, or headline + newline + body)."""
    text = _template_text(playbook, template_id, lang)
    return _fill(text.sms_text(), values, playbook, f"template {template_id!r} ({lang}) SMS")


def render_answer(
    playbook: Playbook, question_id: str, lang: str, values: Mapping[str, str]
) -> str:
    """Fill in an anticipated question's answer. Raises :class:`TemplateError`."""
    try:
        question = playbook.question(question_id)
    except KeyError:
        raise TemplateError(f"no question {question_id!r} in {playbook.id}") from None
    answer = question.answer.get(lang)
    if answer is None:
        raise TemplateError(f"question {question_id!r} has no {lang!r} answer")
    return _fill(answer, values, playbook, f"answer {question_id!r} ({lang})")


__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "PlaybookError",
    "Problem",
    "TemplateError",
    "check_org",
    "check_playbook",
    "load_org",
    "load_playbook",
    "parse_org",
    "parse_playbook",
    "playbook_hash",
    "read_limited",
    "render_answer",
    "render_sms",
    "render_template",
    "validate_bytes",
]
