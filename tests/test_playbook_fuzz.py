"""Hostile input never crashes the loader with anything but PlaybookError, and stays bounded.

Hypothesis throws random structures (dumped to YAML), mutated playbooks and org files,
random text and random bytes at the loader; hand-written bombs cover billion laughs, deep
nesting, huge scalars and huge lists. Time is bounded by hypothesis deadlines and a
per-test timeout, never by asserting on a stopwatch.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krise_tui.playbook.loader import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    MAX_PROBLEMS,
    PlaybookError,
    parse_org,
    parse_playbook,
)
from krise_tui.playbook.models import Org, Playbook, TemplateSyntaxError, template_fields
from tests.test_playbook import MINIMAL, ORG

FUZZ = settings(
    max_examples=120,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
BOMB_TIMEOUT = 20

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(
        ["15m", "T+0", "nb", "sma", "kriseleder", "{sted}", "{", "awaiting_translation"]
    )
    # Durations and offsets with absurd numbers (once an OverflowError in timedelta).
    | st.from_regex(r"\A(T\+)?[0-9]{1,25}[dhms]([0-9]{1,25}[dhms])?\Z")
    # Coordinates, circles and scrypt-like strings for the CAP and passphrase validators.
    | st.from_regex(r"\A-?[0-9]{1,4}(\.[0-9]{0,3})?,-?[0-9]{1,4}( [0-9e.+-]{1,8})?\Z")
    | st.from_regex(r"\Ascrypt(\$[0-9]{1,9}){3}\$[A-Za-z0-9+/=]{0,30}\$[A-Za-z0-9+/=]{0,60}\Z")
)
keys = (
    st.text(max_size=12)
    | st.integers()
    | st.sampled_from(
        ["id", "nb", "sma", "text", "status", "headline", "body", "env", "token", "options"]
    )
)
structures = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=40,
)

PLAYBOOK_DATA: dict[str, Any] = yaml.safe_load(MINIMAL)
ORG_DATA: dict[str, Any] = yaml.safe_load(ORG)
ORG_OBJECT = parse_org(ORG)

FRAGMENTS = [
    "a", "id", "nb", ":", ": ", "-", "- ", "[", "]", "{", "}", ",", "&a", "*a", "!!str ", "!x ",
    "? ", "|", ">", "'", '"', "#", "\n", "  ", "    ", "\t", "---\n", "...\n", "%YAML 1.2\n",
    "1", "0x1f", ".inf", "~", "true", "yes", "ï", "\\", "\u2028", "\ufeff", "\x00",
]  # fmt: skip


def loads_or_refuses(data: bytes | str, *, org: Org | None = None) -> Playbook | None:
    """The loader's only outcomes: a playbook, or PlaybookError with located problems."""
    try:
        return parse_playbook(data, file="fuzz.yaml", org=org)
    except PlaybookError as exc:
        assert exc.problems
        assert len(exc.problems) <= MAX_PROBLEMS
        for problem in exc.problems:
            assert problem.file == "fuzz.yaml"
            assert problem.line >= 1 and problem.column >= 1
            assert problem.message
            assert len(problem.message) < 2000
        return None


def org_loads_or_refuses(data: bytes | str) -> None:
    try:
        parse_org(data, file="fuzz-org.yaml")
    except PlaybookError as exc:
        assert exc.problems


def dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def mutate(draw: st.DrawFn, data: Any, depth: int = 0) -> Any:
    """Replace, drop or add one thing somewhere inside ``data``."""
    if isinstance(data, dict) and data and depth < 6:
        key = draw(st.sampled_from(sorted(data, key=str)))
        action = draw(st.sampled_from(["descend", "replace", "drop", "add"]))
        copy = dict(data)
        if action == "descend":
            copy[key] = mutate(draw, copy[key], depth + 1)
        elif action == "replace":
            copy[key] = draw(structures)
        elif action == "drop":
            del copy[key]
        else:
            copy[draw(keys)] = draw(structures)
        return copy
    if isinstance(data, list) and data and depth < 6:
        index = draw(st.integers(0, len(data) - 1))
        copy = list(data)
        copy[index] = mutate(draw, copy[index], depth + 1)
        return copy
    return draw(structures)


@FUZZ
@given(structures)
def test_random_structures(data: Any) -> None:
    loads_or_refuses(dump(data))


@FUZZ
@given(st.data())
def test_mutated_playbooks(data: st.DataObject) -> None:
    mutated = mutate(data.draw, PLAYBOOK_DATA)
    org = data.draw(st.sampled_from([None, ORG_OBJECT]))
    loads_or_refuses(dump(mutated), org=org)


@FUZZ
@given(st.data())
def test_mutated_org_files(data: st.DataObject) -> None:
    org_loads_or_refuses(dump(mutate(data.draw, ORG_DATA)))


@FUZZ
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join))
def test_yaml_like_text(text: str) -> None:
    loads_or_refuses(text)
    org_loads_or_refuses(text)


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    loads_or_refuses(text)


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("update_cadence: 1h", "update_cadence: 99999999999999999999d"),
        ("update_cadence: 1h", "update_cadence: 367d"),
        ("offset: T+0", "offset: T+9999999999999h"),
    ],
)
def test_absurd_durations_are_refused(line: str, value: str) -> None:
    assert "longer than a year" in refused(MINIMAL.replace(line, value))


def test_lone_surrogates_in_text_are_reported() -> None:
    assert refused("id: \ud800\n").startswith("not UTF-8 text")


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    loads_or_refuses(data)
    org_loads_or_refuses(data)


@FUZZ
@given(st.text(max_size=200))
def test_template_text_never_crashes(text: str) -> None:
    try:
        names = template_fields(text)
    except TemplateSyntaxError:
        return
    assert all(name.isidentifier() for name in names)


def test_the_unmutated_documents_load() -> None:
    """The fuzz seeds are valid, so mutations explore the deep validators."""
    assert loads_or_refuses(dump(PLAYBOOK_DATA)) is not None
    assert loads_or_refuses(dump(PLAYBOOK_DATA), org=ORG_OBJECT) is None  # lacks sma
    parse_org(dump(ORG_DATA))


# --- bombs ----------------------------------------------------------------------------------


def refused(data: bytes | str) -> str:
    with pytest.raises(PlaybookError) as info:
        parse_playbook(data, file="bomb.yaml")
    return info.value.problems[0].message


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.mark.timeout(BOMB_TIMEOUT)
def test_billion_laughs() -> None:
    assert refused(BILLION_LAUGHS).startswith("anchors (&a) are not allowed")
    assert refused("a: 1\nb: *a\n").startswith("aliases (*a) are not allowed")


@pytest.mark.timeout(BOMB_TIMEOUT)
def test_quadratic_alias_blowup_without_anchors_in_front() -> None:
    # An alias to an undefined anchor is refused before PyYAML looks it up.
    assert refused("a: [*x, *x, *x]\n").startswith("aliases (*x)")


@pytest.mark.timeout(BOMB_TIMEOUT)
@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "{a: " * 50_000,
        "".join(" " * i + "a:\n" for i in range(200)),
        "".join("  " * i + "-\n" for i in range(200)),
        "? " * 10_000,
    ],
    ids=["flow-lists", "flow-maps", "block-maps", "block-lists", "complex-keys"],
)
def test_deep_nesting(text: str) -> None:
    assert refused(text) == f"nested deeper than {MAX_DEPTH} levels"


@pytest.mark.timeout(BOMB_TIMEOUT)
def test_nesting_within_the_limit_is_fine() -> None:
    text = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert refused(text).startswith("missing required key")


@pytest.mark.timeout(BOMB_TIMEOUT)
def test_huge_inputs() -> None:
    assert refused(b"a" * (MAX_FILE_BYTES + 1)) == f"file larger than {MAX_FILE_BYTES} bytes"
    message = refused("id: " + "x" * (MAX_FILE_BYTES - 10))
    assert message.startswith("id: 'xxx") and len(message) < 200
    assert refused("incident_types: [" + "a," * 100_000 + "a]") == (
        f"more than {MAX_NODES} values in one file"
    )
    assert refused("".join(f"k{i}: 1\n" for i in range(50_000))).startswith("more than")
    assert refused("sms_max_segments: " + "9" * 5000) == "number longer than 40 characters"


@pytest.mark.timeout(BOMB_TIMEOUT)
def test_many_errors_are_capped() -> None:
    unknown_keys = "".join(f"k{i}: 1\n" for i in range(200))
    text = "severity_levels: [" + ", ".join(["x"] * 5000) + "]\n" + unknown_keys
    with pytest.raises(PlaybookError) as info:
        parse_playbook(text)
    assert len(info.value.problems) == MAX_PROBLEMS
