"""Playbooks and org files: the samples, every kind of mistake at its exact position,
templates, passphrases, the JSON Schema, the CLI check and the watcher."""

from __future__ import annotations

import argparse
import hashlib
import io
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from krise_tui.playbook.cli import add_playbook_parser, run_check
from krise_tui.playbook.loader import (
    PlaybookError,
    Problem,
    TemplateError,
    check_org,
    check_playbook,
    load_org,
    load_playbook,
    parse_org,
    parse_playbook,
    playbook_hash,
    render_answer,
    render_sms,
    render_template,
)
from krise_tui.playbook.models import (
    STANDARD_CASE_REPLY,
    FactOwner,
    Org,
    Playbook,
    Role,
    SecretRef,
    expand,
    format_duration,
    hash_passphrase,
    parse_duration,
    template_fields,
    verify_passphrase,
)
from krise_tui.playbook.schema import DEFAULT_DIR, schema_drift, schema_texts, write_schemas
from krise_tui.playbook.watch import PlaybookWatcher

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = ROOT / "playbooks"
SAMPLES = sorted(PLAYBOOKS.glob("*.yaml"))
ORG_FILES = {name: PLAYBOOKS / "orgs" / f"{name}.yaml" for name in ("hattfjelldal", "eksempel")}
DEMO_PASSPHRASES = {
    "hattfjelldal": ["kari", "ola", "anne", "per", "eva"],
    "eksempel": ["siri", "jon", "lise"],
}
WATCH_INTERVAL = 0.02

HASH = hash_passphrase("test-passfrase", n=2**10)

# Line numbers matter: the tests below point at lines of these texts.
MINIMAL = """\
id: test
title:
  nb: Testhendelse
incident_types: [test]
severity_levels:
  - id: 1
    name: Lav
    description: Lavt nivå.
channels: [nettside]
freeze:
  notice:
    nb: Kriseledelsen har overtatt all kommunikasjon.
deadlines:
  first_message: 15m
  correct_rumour: 30m
  answer_batch: 1h
  update_cadence: 1h
placeholders:
  sted:
    description: Hvor det skjer.
    example: sentrum
templates:
  - id: forste
    purpose: Første melding.
    text:
      nb:
        headline: Hendelse i {sted}
        body: Følg med på nettsiden.
checklist:
  - id: start
    offset: T+0
    owner: kriseleder
    text:
      nb: Sett kriseledelsen.
"""

ORG = f"""\
name: Testkommune
slug: test
municipality_number: "1826"
website: https://www.test.kommune.no
required_languages: [nb, sma]
operators:
  - id: kari
    full_name: Kari Nordmann
    title: kommunedirektør
    role: kriseleder
    passphrase_hash: {HASH}
  - id: per
    full_name: Per Olsen
    title: rådgiver
    role: informasjonsmedarbeider
    passphrase_hash: {HASH}
staff_groups:
  - id: teknisk
    name: Tekniske tjenester
channels:
  - id: nettside
    kind: website
    endpoint: /tmp/nettside
  - id: sms
    kind: sms
    endpoint: https://sms.example/api
    credentials: {{env: KRISE_SMS_TOKEN}}
"""


def edit(text: str, line: int, new: str) -> str:
    """Replace 1-based ``line`` of ``text`` with ``new`` (which may span lines)."""
    lines = text.splitlines()
    assert line in range(1, len(lines) + 1), f"no line {line}"
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str, name: str = "playbook.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def located(problems: list[Problem]) -> list[tuple[int, int]]:
    return [(p.line, p.column) for p in problems]


def with_sma_awaiting(text: str) -> str:
    """MINIMAL with South Sami marked as awaiting translation (two lines longer)."""
    awaiting = "{status: awaiting_translation}"
    text = text.replace(
        "    nb: Kriseledelsen har overtatt all kommunikasjon.",
        f"    nb: Kriseledelsen har overtatt.\n    sma: {awaiting}",
    )
    return text.replace(
        "        body: Følg med på nettsiden.", f"        body: Følg med.\n      sma: {awaiting}"
    )


@pytest.fixture
def org() -> Org:
    return parse_org(ORG, file="org.yaml")


# --- the real documents ------------------------------------------------------------------


def test_the_four_sample_playbooks_exist() -> None:
    names = {p.stem for p in SAMPLES}
    assert names == {
        "flom-og-skred",
        "strom-og-ekombrudd",
        "forurenset-drikkevann",
        "alvorlig-hendelse-skole",
    }


@pytest.mark.parametrize("org_name", sorted(ORG_FILES))
def test_org_files_are_valid(org_name: str) -> None:
    assert check_org(ORG_FILES[org_name]) == []
    org = load_org(ORG_FILES[org_name])
    assert org.slug == org_name
    assert "nb" in org.required_languages
    assert org.website_channel().kind == "website"


def test_hattfjelldal_org() -> None:
    org = load_org(ORG_FILES["hattfjelldal"])
    assert org.name == "Hattfjelldal kommune"
    assert org.municipality_number == "1826"
    assert org.website == "https://www.hattfjelldal.kommune.no"
    assert org.required_languages == ["nb", "sma"]
    assert org.recommended_languages == ["en"]
    assert {"110", "112", "113", "116117"} <= org.phone_allowlist()
    assert org.area_name == "Hattfjelldal kommune"
    assert org.timezone == "Europe/Oslo"


def test_eksempel_org_needs_only_bokmal() -> None:
    org = load_org(ORG_FILES["eksempel"])
    assert org.name == "Eksempel kommune"
    assert org.required_languages == ["nb"]
    assert (org.area_name, org.municipality_number) == ("Eksempel kommune", "9999")


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_no_sample_playbook_names_a_municipality(path: Path) -> None:
    """The playbooks are shared by every org: the area comes from the org file."""
    playbook = load_playbook(path)
    assert playbook.cap is not None
    if playbook.cap.area is not None:
        assert not playbook.cap.area.geocodes
        assert not playbook.cap.area.has_shapes
        assert "kommune " not in playbook.cap.area.area_desc + " "


@pytest.mark.parametrize("org_name", sorted(ORG_FILES))
def test_demo_passphrases_in_the_comments_match(org_name: str) -> None:
    org = load_org(ORG_FILES[org_name])
    assert [o.id for o in org.operators] == DEMO_PASSPHRASES[org_name]
    text = ORG_FILES[org_name].read_text(encoding="utf-8")
    for operator in org.operators:
        assert f"{operator.id}: passord-{operator.id}" in text
        assert operator.verify(f"passord-{operator.id}")
        assert not operator.verify("feil-passord")


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_playbooks_check_clean(path: Path) -> None:
    assert check_playbook(path) == []
    for org_file in ORG_FILES.values():
        assert check_playbook(path, load_org(org_file)) == []


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_playbooks_leave_south_sami_to_a_translator(path: Path) -> None:
    playbook = load_playbook(path, org=load_org(ORG_FILES["hattfjelldal"]))
    waiting = playbook.awaiting_translation()
    assert set(waiting) == {"sma"}
    assert "freeze.notice" in waiting["sma"]
    assert {f"templates.{t.id}" for t in playbook.templates} <= set(waiting["sma"])
    for template in playbook.templates:
        assert template.text["sma"].status == "awaiting_translation"
        assert template.text["sma"].headline is None
        assert template.text["nb"].ready and template.text["en"].ready


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_playbooks_are_complete(path: Path) -> None:
    playbook = load_playbook(path)
    assert playbook.id == path.stem
    assert {"nb", "en"} <= set(playbook.title)
    assert timedelta(minutes=15) <= playbook.deadlines.first_message <= timedelta(minutes=30)
    assert "nettside" in playbook.channels
    assert playbook.approval.four_eyes
    assert len(playbook.templates) >= 5
    assert len(playbook.questions) >= 5
    assert len(playbook.checklist) >= 8
    assert playbook.checklist == playbook.checklist_in_order()
    assert playbook.case_processing_reply["nb"] == STANDARD_CASE_REPLY
    assert playbook.triage_keywords
    assert playbook.cap is not None
    for question in playbook.questions:
        assert {"nb", "en"} <= set(question.question) and {"nb", "en"} <= set(question.answer)
    # Every declared placeholder is used somewhere, and templates render with the examples.
    examples = playbook.example_values()
    for template in playbook.templates:
        headline, body = render_template(playbook, template.id, "nb", examples)
        assert "{" not in headline + body


def test_school_playbook_leaves_the_facts_to_the_police() -> None:
    playbook = load_playbook(PLAYBOOKS / "alvorlig-hendelse-skole.yaml")
    assert playbook.fact_owner is FactOwner.POLICE
    first = playbook.template("forste-melding").text["nb"]
    assert "Politiet leder" in (first.body or "")
    assert "ikke kom til skolen" in (first.body or "")


def test_water_playbook_gives_boil_water_advice() -> None:
    playbook = load_playbook(PLAYBOOKS / "forurenset-drikkevann.yaml")
    body = playbook.template("kokeanbefaling").text["nb"].body or ""
    assert "Kok opp vannet" in body
    assert "116 117" in body
    assert playbook.question("hvor-hente-vann").answer["nb"].count("{vannpost}") == 1


# --- each kind of mistake, at its position ------------------------------------------------


def test_minimal_playbook_is_valid(tmp_path: Path, org: Org) -> None:
    path = write(tmp_path, MINIMAL)
    assert check_playbook(path) == []
    playbook = load_playbook(path)
    assert playbook.fact_owner is FactOwner.MUNICIPALITY
    assert playbook.approval.four_eyes and playbook.freeze.scope == "all"
    assert playbook.sms_max_segments == 3
    assert playbook.case_processing_reply == {"nb": STANDARD_CASE_REPLY}


def test_unknown_key_points_at_the_typo(tmp_path: Path) -> None:
    path = write(tmp_path, edit(MINIMAL, 4, "incident_typs: [test]"))
    problems = check_playbook(path)
    assert [str(p) for p in problems] == [
        f"{path}:4:1: unknown key 'incident_typs' — did you mean 'incident_types'?"
    ]


def test_unknown_nested_key(tmp_path: Path) -> None:
    path = write(tmp_path, edit(MINIMAL, 24, "    purpsoe: Første melding."))
    (problem,) = check_playbook(path)
    assert (problem.line, problem.column) == (24, 5)
    assert problem.message == "templates[0]: unknown key 'purpsoe' — did you mean 'purpose'?"


def test_unknown_key_without_a_near_match_lists_the_keys(tmp_path: Path) -> None:
    path = write(tmp_path, edit(MINIMAL, 17, "  update_cadence: 1h\n  hvaskjer: 2h"))
    (problem,) = check_playbook(path)
    assert (problem.line, problem.column) == (18, 3)
    assert "unknown key 'hvaskjer' (expected: first_message, correct_rumour" in problem.message


def test_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "sms_max_segments: tre\n")
    (problem,) = check_playbook(path)
    assert (problem.line, problem.column) == (35, 1)
    assert problem.message.startswith("sms_max_segments: Input should be a valid integer")


def test_wrong_type_of_duration(tmp_path: Path) -> None:
    path = write(tmp_path, edit(MINIMAL, 14, "  first_message: 15"))
    (problem,) = check_playbook(path)
    assert (problem.line, problem.column) == (14, 3)
    assert problem.message.startswith("deadlines.first_message: write a duration as text")


def test_number_where_text_is_expected_says_to_quote_it(tmp_path: Path) -> None:
    path = write(tmp_path, edit(MINIMAL, 21, "    example: 1826"))
    (problem,) = check_playbook(path)
    assert (problem.line, problem.column) == (21, 5)
    assert problem.message.endswith("(got the number 1826): put it in quotes")


def test_yes_is_not_a_boolean(tmp_path: Path) -> None:
    """YAML 1.2 core schema: ``yes`` stays text (no Norway problem)."""
    path = write(tmp_path, MINIMAL + "approval:\n  four_eyes: yes\n")
    (problem,) = check_playbook(path)
    assert (problem.line, problem.column) == (36, 3)
    assert "approval.four_eyes" in problem.message and "true or false" in problem.message


def test_missing_key_points_at_the_mapping_that_lacks_it(tmp_path: Path) -> None:
    path = write(tmp_path, edit(MINIMAL, 24, ""))
    (problem,) = check_playbook(path)
    assert (problem.line, problem.column) == (23, 5)
    assert problem.message == "templates[0]: missing required key 'purpose'"


def test_missing_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, edit(MINIMAL, 4, ""))
    (problem,) = check_playbook(path)
    assert str(problem) == f"{path}:1:1: missing required key 'incident_types'"


def test_missing_required_language(tmp_path: Path, org: Org) -> None:
    path = write(tmp_path, MINIMAL)
    assert check_playbook(path) == []  # only the org requires sma
    problems = check_playbook(path, org)
    assert located(problems) == [(11, 3), (25, 5)]
    assert problems[0].message.startswith("freeze.notice: the freeze notice lacks 'sma'")
    assert problems[1].message.startswith("templates[0].text: template 'forste' lacks 'sma'")
    assert "status: awaiting_translation" in problems[1].message


def test_awaiting_translation_is_not_an_error_but_is_visible(tmp_path: Path, org: Org) -> None:
    path = write(tmp_path, with_sma_awaiting(MINIMAL))
    assert check_playbook(path, org) == []
    playbook = load_playbook(path, org=org)
    assert playbook.awaiting_translation() == {"sma": ["templates.forste", "freeze.notice"]}
    with pytest.raises(TemplateError, match="awaiting translation"):
        render_template(playbook, "forste", "sma", {"sted": "sentrum"})


def test_awaiting_translation_takes_no_text(tmp_path: Path) -> None:
    sma = "      sma:\n        status: awaiting_translation\n        body: Gjetning"
    text = edit(MINIMAL, 28, f"        body: Følg med.\n{sma}")
    (problem,) = check_playbook(write(tmp_path, text))
    assert (problem.line, problem.column) == (29, 7)
    assert "awaiting_translation takes no text (body given)" in problem.message


def test_bokmal_is_required(tmp_path: Path) -> None:
    (problem,) = check_playbook(write(tmp_path, edit(MINIMAL, 3, "  en: Test incident")))
    assert (problem.line, problem.column) == (2, 1)
    assert problem.message == "title: needs the nb text (bokmål is always required)"


def test_unknown_placeholder(tmp_path: Path) -> None:
    path = write(tmp_path, edit(MINIMAL, 27, "        headline: Hendelse i {stedet}"))
    (problem,) = check_playbook(path)
    assert (problem.line, problem.column) == (27, 9)
    assert problem.message == (
        "templates[0].text.nb.headline: unknown placeholder {stedet}: declare it under "
        "placeholders: (declared: sted)"
    )


def test_lone_brace_in_a_template(tmp_path: Path) -> None:
    path = write(tmp_path, edit(MINIMAL, 28, "        body: 'Se {nettsiden'"))
    (problem,) = check_playbook(path)
    assert (problem.line, problem.column) == (28, 9)
    assert "lone '{'" in problem.message


def test_template_too_long_for_sms(tmp_path: Path) -> None:
    # 18 + 1 + 439 = 458 septets fit three segments; a 39-character example needs four.
    body = "Følg med. " * 44
    text = edit(MINIMAL, 28, f"        body: {body.strip()}")
    assert check_playbook(write(tmp_path, text)) == []
    text = edit(text, 21, "    example: " + "Sentrum, ved brua over elva og nordover")
    (problem,) = check_playbook(write(tmp_path, text))
    assert (problem.line, problem.column) == (26, 7)
    assert problem.message.startswith("templates[0].text.nb: too long for SMS: 4 segments")
    assert "sms_max_segments: 3" in problem.message


def test_sms_text_is_checked_instead_of_the_body(tmp_path: Path) -> None:
    body = "Følg med. " * 60
    text = edit(MINIMAL, 28, f"        body: {body.strip()}\n        sms: Hendelse i {{sted}}.")
    assert check_playbook(write(tmp_path, text)) == []
    text = edit(text, 29, "        sms: «Hendelse» i {sted}. " + "Følg med. " * 20)
    (problem,) = check_playbook(write(tmp_path, text))
    assert (problem.line, problem.column) == (29, 9)
    assert "UCS-2 because of '«' '»'" in problem.message


def test_sms_limit_is_set_by_the_playbook(tmp_path: Path) -> None:
    text = edit(MINIMAL, 28, "        body: " + "Følg med. " * 20) + "sms_max_segments: 1\n"
    (problem,) = check_playbook(write(tmp_path, text))
    assert (problem.line, problem.column) == (26, 7)
    assert "2 segments" in problem.message


def test_deadlines_in_the_wrong_order(tmp_path: Path) -> None:
    (problem,) = check_playbook(write(tmp_path, edit(MINIMAL, 15, "  correct_rumour: 10m")))
    assert (problem.line, problem.column) == (15, 3)
    assert problem.message.startswith(
        "deadlines.correct_rumour: correct_rumour (10m) is shorter than first_message (15m)"
    )
    (problem,) = check_playbook(write(tmp_path, edit(MINIMAL, 16, "  answer_batch: 20m")))
    assert (problem.line, problem.column) == (16, 3)
    assert "answer_batch (20m) is shorter than correct_rumour (30m)" in problem.message
    (problem,) = check_playbook(write(tmp_path, edit(MINIMAL, 16, "  answer_batch: 2d")))
    assert (problem.line, problem.column) == (16, 3)
    assert "longer than 24h" in problem.message
    (problem,) = check_playbook(write(tmp_path, edit(MINIMAL, 17, "  update_cadence: 0m")))
    assert (problem.line, problem.column) == (17, 3)
    assert "longer than 0" in problem.message


def test_bad_duration_and_offset(tmp_path: Path) -> None:
    (problem,) = check_playbook(write(tmp_path, edit(MINIMAL, 14, "  first_message: 15 min")))
    assert (problem.line, problem.column) == (14, 3)
    assert "is not a duration: write it like 15m, 1h or 1h30m" in problem.message
    (problem,) = check_playbook(write(tmp_path, edit(MINIMAL, 31, "    offset: 15m")))
    assert (problem.line, problem.column) == (31, 5)
    assert "is not an offset" in problem.message


def test_yaml_syntax_error(tmp_path: Path) -> None:
    (problem,) = check_playbook(write(tmp_path, edit(MINIMAL, 3, "  nb: Test: feil")))
    assert (problem.line, problem.column) == (3, 11)
    assert problem.message == "YAML syntax error: mapping values are not allowed here"


def test_unclosed_flow_sequence(tmp_path: Path) -> None:
    (problem,) = check_playbook(write(tmp_path, edit(MINIMAL, 4, "incident_types: [test")))
    assert (problem.line, problem.column) == (5, 16)
    assert problem.message.startswith("YAML syntax error: expected ',' or ']'")
    assert "at line 4" in problem.message


def test_bad_indentation(tmp_path: Path) -> None:
    (problem,) = check_playbook(write(tmp_path, edit(MINIMAL, 3, " nb: Test\n  en: Test")))
    assert (problem.line, problem.column) == (4, 5)
    assert problem.message == "YAML syntax error: mapping values are not allowed here"


def test_duplicate_key(tmp_path: Path) -> None:
    path = write(tmp_path, edit(MINIMAL, 17, "  update_cadence: 1h\n  first_message: 20m"))
    (problem,) = check_playbook(path)
    assert str(problem) == (
        f"{path}:18:3: duplicate key 'first_message' (first at line 14); each key may appear once"
    )


def test_duplicate_ids(tmp_path: Path) -> None:
    text = (
        MINIMAL + "  - id: start\n    offset: T+5m\n    owner: observer\n    text:\n      nb: To.\n"
    )
    (problem,) = check_playbook(write(tmp_path, text))
    assert (problem.line, problem.column) == (35, 5)
    assert (
        problem.message
        == "checklist[1].id: duplicate checklist id 'start' (already used by item 0)"
    )


def test_anchors_and_aliases_are_refused(tmp_path: Path) -> None:
    text = edit(MINIMAL, 3, "  nb: &tittel Testhendelse\n  en: *tittel")
    (problem,) = check_playbook(write(tmp_path, text))
    assert (problem.line, problem.column) == (3, 7)
    assert problem.message.startswith("anchors (&tittel) are not allowed")


def test_python_tags_are_refused(tmp_path: Path) -> None:
    text = edit(MINIMAL, 1, "id: !!python/object/apply:os.system ['true']")
    (problem,) = check_playbook(write(tmp_path, text))
    assert (problem.line, problem.column) == (1, 5)
    assert "not allowed" in problem.message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    (problem,) = check_playbook(write(tmp_path, "- en\n- to\n"))
    assert str(problem).endswith(":1:1: expected a mapping of keys at the top level, found a list")
    (problem,) = check_playbook(write(tmp_path, "# bare en kommentar\n"))
    assert problem.message == "the file is empty"


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    (problem,) = check_playbook(tmp_path / "finnes-ikke.yaml")
    assert (problem.line, problem.column) == (1, 1) and "cannot read" in problem.message
    path = tmp_path / "latin1.yaml"
    path.write_bytes("id: test\ntitle:\n  nb: Flom på ".encode() + "Røst".encode("latin-1"))
    (problem,) = check_playbook(path)
    assert (problem.line, problem.column) == (3, 16)
    assert problem.message.startswith("not UTF-8 text")


def test_too_large_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "#" * (1024 * 1024))
    (problem,) = check_playbook(path)
    assert "larger than 1048576 bytes" in problem.message


def test_problems_sort_by_position_and_format(tmp_path: Path) -> None:
    text = edit(edit(MINIMAL, 15, "  correct_rumour: 10m"), 4, "incident_typs: [test]")
    problems = check_playbook(write(tmp_path, text))
    assert located(problems) == [(4, 1), (15, 3)]
    with pytest.raises(PlaybookError) as info:
        load_playbook(write(tmp_path, text))
    assert info.value.problems == problems
    assert str(info.value).splitlines() == [str(p) for p in problems]


# --- the playbook against the org ---------------------------------------------------------


def test_website_must_be_listed(tmp_path: Path, org: Org) -> None:
    text = MINIMAL.replace("channels: [nettside]", "channels: [sms, twitter]")
    problems = check_playbook(write(tmp_path, text), org)
    channel_problems = [p for p in problems if p.line == 9]
    assert located(channel_problems) == [(9, 1), (9, 17)]
    assert "the website channel 'nettside' must be listed" in channel_problems[0].message
    assert channel_problems[1].message.startswith("channels[1]: unknown channel 'twitter'")


def test_freeze_scope_groups_must_exist(tmp_path: Path, org: Org) -> None:
    text = edit(with_sma_awaiting(MINIMAL), 10, "freeze:\n  scope: [teknisk, skole]")
    (problem,) = check_playbook(write(tmp_path, text), org)
    assert (problem.line, problem.column) == (11, 20)
    assert problem.message.startswith("freeze.scope[1]: unknown staff group 'skole'")


def test_four_eyes_needs_two_operators(tmp_path: Path) -> None:
    lone = parse_org(ORG.replace("role: informasjonsmedarbeider", "role: observer"))
    path = write(tmp_path, with_sma_awaiting(MINIMAL))
    assert check_playbook(path, parse_org(ORG)) == []
    (problem,) = check_playbook(path, lone)
    assert (problem.line, problem.column) == (1, 1)
    assert problem.message.startswith("approval.four_eyes: four eyes needs at least two")
    path = write(tmp_path, with_sma_awaiting(MINIMAL) + "approval:\n  four_eyes: false\n")
    assert check_playbook(path, lone) == []


# --- the CAP area: the org's, which a playbook may only narrow -------------------------------

CAP = """\
cap:
  event: {nb: Flom}
  category: [Met]
  urgency: Expected
  severity: Severe
  certainty: Likely
"""
CAP_AREA_LINE = 35 + 6  # MINIMAL is 34 lines; ``area:`` follows the six lines of CAP

# A square around the inner part of the municipality (not its real outline).
OUTLINE = "65.0,13.0 65.0,14.5 66.0,14.5 66.0,13.0 65.0,13.0"


def area_org(number: str = "1826", name: str = "Testkommune", area: str = "") -> Org:
    text = ORG.replace("required_languages: [nb, sma]", "required_languages: [nb]")
    text = text.replace('"1826"', f'"{number}"').replace("Testkommune", name)
    return parse_org(text + area)


def area_problems(tmp_path: Path, area: str, org: Org) -> list[Problem]:
    return check_playbook(write(tmp_path, MINIMAL + CAP + area), org)


def test_a_playbook_without_an_area_uses_the_org_s(tmp_path: Path) -> None:
    assert area_problems(tmp_path, "", area_org()) == []
    named = "  area:\n    area_desc: Sentrum\n"
    assert area_problems(tmp_path, named, area_org()) == []
    own = named + '    geocodes: [{name: kommunenummer, value: "1826"}]\n'
    assert area_problems(tmp_path, own, area_org()) == []


def test_another_municipality_s_number_is_reported_at_its_value(tmp_path: Path) -> None:
    area = "  area:\n    area_desc: Sentrum\n    geocodes:\n      - name: kommunenummer\n"
    area += '        value: "1826"\n'
    org = area_org(number="9999", name="Eksempel kommune")
    (problem,) = area_problems(tmp_path, area, org)
    assert (problem.line, problem.column) == (CAP_AREA_LINE + 4, 9)
    assert problem.message.startswith("cap.area.geocodes[0].value: names municipality 1826")
    assert "Eksempel kommune (9999)" in problem.message
    assert check_playbook(write(tmp_path, MINIMAL + CAP + area)) == []  # no org: no check


def test_another_municipality_s_name_is_reported(tmp_path: Path) -> None:
    area = "  area:\n    area_desc: Sentrum, Hattfjelldal kommune\n"
    org = area_org(number="9999", name="Eksempel kommune")
    (problem,) = area_problems(tmp_path, area, org)
    assert (problem.line, problem.column) == (CAP_AREA_LINE + 1, 5)
    assert "names 'Hattfjelldal kommune'" in problem.message
    own = "  area:\n    area_desc: Sentrum i Eksempel kommune\n"
    assert area_problems(tmp_path, own, org) == []


def test_a_geocode_of_another_kind_cannot_be_checked(tmp_path: Path) -> None:
    area = '  area:\n    area_desc: Sentrum\n    geocodes: [{name: postnummer, value: "8690"}]\n'
    (problem,) = area_problems(tmp_path, area, area_org())
    assert problem.message.startswith("cap.area.geocodes[0].name: geocode 'postnummer'")


def test_a_shape_needs_the_org_s_outline_to_be_checked(tmp_path: Path) -> None:
    area = '  area:\n    area_desc: Sentrum\n    circles: ["65.5,13.5 2"]\n'
    (problem,) = area_problems(tmp_path, area, area_org())
    assert (problem.line, problem.column) == (CAP_AREA_LINE + 2, 5)
    assert "gives no outline" in problem.message


@pytest.mark.parametrize(
    ("shape", "inside"),
    [
        ('polygons: ["65.2,13.2 65.2,13.8 65.8,13.8 65.2,13.2"]', True),
        # Along the outline's own edge: inside (within the tolerance).
        ('polygons: ["65.0,13.0 65.0,14.5 65.5,14.0 65.0,13.0"]', True),
        ('polygons: ["65.2,13.2 65.2,15.0 65.8,13.8 65.2,13.2"]', False),  # one corner out
        ('polygons: ["60.0,10.0 60.0,10.5 60.5,10.5 60.0,10.0"]', False),  # far away
        ('circles: ["65.5,13.75 10"]', True),
        ('circles: ["65.5,14.4 10"]', False),  # the rim crosses the eastern edge
        ('circles: ["65.5,13.75 0"]', True),
    ],
)
def test_a_shape_must_lie_inside_the_org_s_outline(
    tmp_path: Path, shape: str, inside: bool
) -> None:
    org = area_org(area=f'area:\n  polygons: ["{OUTLINE}"]\n')
    area = f"  area:\n    area_desc: Sentrum\n    {shape}\n"
    problems = area_problems(tmp_path, area, org)
    if inside:
        assert problems == []
    else:
        (problem,) = problems
        # The position is the offending item in the flow list.
        assert (problem.line, problem.column) == (CAP_AREA_LINE + 2, shape.index('"') + 5)
        assert "is not inside Testkommune (1826)" in problem.message


def test_an_outline_of_circles_counts_too(tmp_path: Path) -> None:
    org = area_org(area='area:\n  circles: ["65.5,13.5 20", "65.5,14.0 20"]\n')
    bridging = '  area:\n    area_desc: Sentrum\n    circles: ["65.5,13.75 15"]\n'
    assert area_problems(tmp_path, bridging, org) == []
    beyond = '  area:\n    area_desc: Sentrum\n    circles: ["65.5,14.3 15"]\n'
    assert len(area_problems(tmp_path, beyond, org)) == 1


def test_org_area_and_time_zone(tmp_path: Path) -> None:
    org = parse_org(ORG)
    assert (org.area_name, org.timezone) == ("Testkommune", "Europe/Oslo")
    named = parse_org(ORG + "area:\n  name: Testkommune – Tjïelte\ntimezone: UTC\n")
    assert (named.area_name, named.timezone) == ("Testkommune – Tjïelte", "UTC")
    cases = [
        ("timezone: Europe/Osloo\n", (28, 1), "timezone: 'Europe/Osloo' is not an IANA"),
        ("timezone: ../../etc/passwd\n", (28, 1), "is not an IANA time zone"),
        ('area:\n  polygons: ["65,13 66,13 66,14"]\n', (29, 14), "at least four points"),
        ('area:\n  circles: ["65,13"]\n', (29, 13), "is not a circle"),
        ("area:\n  nmae: X\n", (29, 3), "unknown key 'nmae'"),
    ]
    for extra, position, message in cases:
        (problem,) = check_org(write(tmp_path, ORG + extra, "org.yaml"))
        assert (problem.line, problem.column) == position, extra
        assert message in problem.message, (extra, problem.message)


# --- org files ------------------------------------------------------------------------------


def test_minimal_org_is_valid(org: Org) -> None:
    assert org.operator("kari").role is Role.KRISELEDER
    assert org.operator("kari").verify("test-passfrase")
    assert org.channel("sms").credentials == SecretRef(env="KRISE_SMS_TOKEN")
    assert org.standard_values() == {
        "kommune": "Testkommune",
        "nettside": "https://www.test.kommune.no",
    }
    assert Role.KRISELEDER.may_approve and not Role.KOMMUNIKASJONSLEDER.may_approve
    assert Role.INFORMASJONSMEDARBEIDER.may_draft and not Role.OBSERVER.may_draft


SECRETS = [
    (27, "    token: hemmelig", (27, 5), "channels[1]: inline secret 'token'"),
    (27, "    credentials: hemmelig", (27, 5), "channels[1].credentials: inline secret"),
    (27, "    credentials: {token: hemmelig}", (27, 19), "channels[1].credentials: inline secret"),
    (27, "    options: {api_key: hemmelig}", (27, 15), "channels[1].options.api_key: inline"),
    (26, "    endpoint: https://bruker:hemmelig@sms.example/api", (26, 5), "channels[1].endpoint"),
    (26, "    endpoint: https://sms.example/api?token=hemmelig", (26, 5), "channels[1].endpoint"),
    (11, "    passphrase: passord", (11, 5), "operators[0]: inline secret 'passphrase'"),
]


@pytest.mark.parametrize(("line", "replacement", "position", "message"), SECRETS)
def test_inline_secrets_are_refused(
    tmp_path: Path, line: int, replacement: str, position: tuple[int, int], message: str
) -> None:
    problems = check_org(write(tmp_path, edit(ORG, line, replacement), "org.yaml"))
    assert len(problems) == 1, problems
    assert (problems[0].line, problems[0].column) == position
    assert problems[0].message.startswith(message)
    assert "inline secret" in problems[0].message
    assert "hemmelig" not in problems[0].message


def test_org_mistakes(tmp_path: Path) -> None:
    cases = [
        (3, "municipality_number: 1826", (3, 1), "put it in quotes"),
        (5, "required_languages: [sma]", (5, 1), "must include nb"),
        (10, "    role: sjef", (10, 5), "Input should be 'kriseleder'"),
        (11, "    passphrase_hash: passord", (11, 5), "a passphrase hash looks like"),
        (12, "  - id: kari", (12, 5), "operators[1].id: duplicate operator id 'kari'"),
        (25, "    kind: website", (20, 1), "exactly one channel must be the website"),
        (26, "    endpoint: ftp://sms.example", (26, 5), "is not an http(s) URL"),
        (27, "    credentials: {env: A, file: /b}", (27, 5), "give exactly one of env"),
    ]
    for line, replacement, position, message in cases:
        problems = check_org(write(tmp_path, edit(ORG, line, replacement), "org.yaml"))
        assert len(problems) == 1, (replacement, problems)
        assert (problems[0].line, problems[0].column) == position, replacement
        assert message in problems[0].message, replacement


def test_secret_ref_resolves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRISE_TEST_SECRET", "s3")
    assert SecretRef(env="KRISE_TEST_SECRET").resolve() == "s3"
    secret = tmp_path / "secret"
    secret.write_text("fra-fil\n", encoding="utf-8")
    assert SecretRef(file=str(secret)).resolve() == "fra-fil"
    with pytest.raises(LookupError, match="KRISE_NOT_SET"):
        SecretRef(env="KRISE_NOT_SET").resolve()
    with pytest.raises(LookupError, match="cannot read"):
        SecretRef(file=str(tmp_path / "nope")).resolve()


def test_org_phone_numbers_use_the_lint_s_normal_form(tmp_path: Path) -> None:
    numbers = '["+47 75 18 00 00", "0047 412 34 567", "22.00.00.00", "116 117", "+46 8 123 456"]'
    org = parse_org(ORG + f"allowed_phone_numbers: {numbers}\n")
    assert org.allowed_phone_numbers[0] == "+47 75 18 00 00"  # kept as written
    assert org.phone_allowlist() == {
        "75180000",
        "41234567",
        "22000000",
        "116117",
        "+468123456",
        "110",
        "112",
        "113",
    }


def test_an_invalid_org_phone_number_is_reported_where_it_is(tmp_path: Path) -> None:
    text = ORG + "allowed_phone_numbers:\n  - 75 18 00 00\n  - 12 34 56 78\n"
    (problem,) = check_org(write(tmp_path, text, "org.yaml"))
    assert (problem.line, problem.column) == (30, 5)
    assert problem.message.startswith("allowed_phone_numbers[1]:")
    assert "not a valid phone number" in problem.message
    letters = ORG + "allowed_phone_numbers: [75 18 00 AB]\n"
    (problem,) = check_org(write(tmp_path, letters, "org.yaml"))
    assert "is not a phone number" in problem.message


# --- passphrases ----------------------------------------------------------------------------


def test_passphrase_hash_round_trip() -> None:
    encoded = hash_passphrase("riktig hest batteri stift")
    assert encoded.startswith("scrypt$16384$8$1$")
    assert verify_passphrase("riktig hest batteri stift", encoded)
    assert not verify_passphrase("riktig hest batteri", encoded)
    assert hash_passphrase("samme") != hash_passphrase("samme")  # random salt


ZEROS_8 = "AAAAAAAAAAA="
ZEROS_16 = "AAAAAAAAAAAAAAAAAAAAAA=="
MALFORMED_HASHES = [
    "",
    "scrypt",
    "bcrypt$1$2$3$a$b",
    "scrypt$16384$8$1$!!$!!",
    f"scrypt$1000$8$1${ZEROS_8}${ZEROS_16}",  # n not a power of two
    f"scrypt$4194304$8$1${ZEROS_8}${ZEROS_16}",  # 4 GiB of memory
]


@pytest.mark.parametrize("encoded", MALFORMED_HASHES)
def test_malformed_hashes_never_verify(encoded: str) -> None:
    assert not verify_passphrase("x", encoded)


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_passphrase("")


# --- durations and templates ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("15m", 15), ("1h", 60), ("1h30m", 90), ("2d", 2880), ("0", 0), ("90s", 1.5)],
)
def test_durations(text: str, minutes: float) -> None:
    assert parse_duration(text) == timedelta(minutes=minutes)


def test_durations_format_back() -> None:
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert format_duration(timedelta(0)) == "0"
    for bad in ("", "15", "m", "1h 30m", "1.5h", "-5m", "15min"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_playbook_dumps_durations_as_written() -> None:
    playbook = parse_playbook(MINIMAL)
    dumped = playbook.model_dump(mode="json")
    assert dumped["deadlines"] == {
        "first_message": "15m",
        "correct_rumour": "30m",
        "answer_batch": "1h",
        "update_cadence": "1h",
        "delivery_receipt": "10m",  # the default
    }
    assert dumped["checklist"][0]["offset"] == "T+0"
    assert parse_playbook_from_dump(dumped) == playbook


def parse_playbook_from_dump(data: dict[str, object]) -> Playbook:
    return Playbook.model_validate(data)


def test_template_placeholder_syntax() -> None:
    assert template_fields("Flom i {sted} {tidspunkt}, {sted}") == ["sted", "tidspunkt", "sted"]
    assert expand("{{sted}} er {sted}", {"sted": "sentrum"}) == "{sted} er sentrum"
    assert template_fields("Åpent på {møtested}") == ["møtested"]
    for bad in ("{", "}", "{a b}", "{1a}", "{a.b}", "{}"):
        with pytest.raises(ValueError):
            template_fields(bad)


def test_render_template() -> None:
    playbook = load_playbook(PLAYBOOKS / "flom-og-skred.yaml")
    org = load_org(ORG_FILES["hattfjelldal"])
    values = {
        **org.standard_values(),
        "sted": "Susendalen",
        "tidspunkt": "kl. 14.30",
        "neste_oppdatering": "kl. 16.00",
    }
    headline, body = render_template(playbook, "forste-melding", "nb", values)
    assert headline == "Flom og fare for jordskred i Susendalen"
    assert body.startswith("Kriseledelsen i Hattfjelldal kommune er satt kl. 14.30.")
    assert body.endswith("Ny melding kl. 16.00 på https://www.hattfjelldal.kommune.no")
    sms = render_sms(playbook, "forste-melding", "en", values)
    assert sms.startswith("Flooding and risk of landslides in Susendalen\nThe crisis leadership")


def test_render_template_errors() -> None:
    playbook = load_playbook(PLAYBOOKS / "flom-og-skred.yaml")
    with pytest.raises(TemplateError, match=r"no value for \{neste_oppdatering\} \(Når neste"):
        render_template(
            playbook, "forste-melding", "nb", {"sted": "x", "kommune": "y", "tidspunkt": "z"}
        )
    with pytest.raises(TemplateError, match="no template 'finnes-ikke'"):
        render_template(playbook, "finnes-ikke", "nb", {})
    with pytest.raises(TemplateError, match="has no 'de' text"):
        render_template(playbook, "forste-melding", "de", {})
    with pytest.raises(TemplateError, match="awaiting translation into 'sma'"):
        render_template(playbook, "forste-melding", "sma", {})


def test_render_answer() -> None:
    playbook = load_playbook(PLAYBOOKS / "forurenset-drikkevann.yaml")
    answer = render_answer(
        playbook, "hvor-hente-vann", "nb", {"vannpost": "brannstasjonen", "telefon": "12 34 56 78"}
    )
    assert answer.startswith("Rent vann deles ut på brannstasjonen.")
    with pytest.raises(TemplateError, match="no value for"):
        render_answer(playbook, "hvor-hente-vann", "nb", {})


def test_models_check_cross_field_rules_when_built_directly() -> None:
    playbook = parse_playbook(MINIMAL)
    data = playbook.model_dump(mode="json")
    data["templates"][0]["text"]["nb"]["headline"] = "Hendelse i {stedet}"
    with pytest.raises(ValidationError, match=r"unknown placeholder \{stedet\}"):
        Playbook.model_validate(data)


def test_cap_area_shapes(tmp_path: Path) -> None:
    cap = """\
cap:
  event: {nb: Flom}
  category: [Met]
  urgency: Expected
  severity: Severe
  certainty: Likely
  area:
    area_desc: Sentrum
    polygons: ["65.6,13.9 65.7,13.9 65.7,14.0 65.6,13.9"]
    circles: ["65.6,13.9 5"]
"""
    assert check_playbook(write(tmp_path, MINIMAL + cap)) == []
    open_polygon = cap.replace("65.7,14.0 65.6,13.9", "65.7,14.0 65.6,14.0")
    (problem,) = check_playbook(write(tmp_path, MINIMAL + open_polygon))
    assert (problem.line, problem.column) == (43, 16)
    assert "must end where it starts" in problem.message
    bad_category = cap.replace("[Met]", "[Weather]")
    (problem,) = check_playbook(write(tmp_path, MINIMAL + bad_category))
    assert (problem.line, problem.column) == (37, 14)
    assert "cap.category[0]" in problem.message


# --- JSON Schema --------------------------------------------------------------------------


def test_committed_json_schemas_match_the_models() -> None:
    drifted = schema_drift(DEFAULT_DIR)
    assert drifted == [], (
        f"{', '.join(drifted)} out of date: run `python -m krise_tui.playbook.schema`"
    )


def test_schema_drift_is_detected(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    assert schema_drift(tmp_path) == []
    path = tmp_path / "playbook.schema.json"
    path.write_text(
        path.read_text(encoding="utf-8").replace("first_message", "first"), encoding="utf-8"
    )
    (tmp_path / "org.schema.json").unlink()
    assert schema_drift(tmp_path) == ["playbook.schema.json", "org.schema.json"]


def test_schemas_carry_the_field_docs() -> None:
    texts = schema_texts()
    assert '"additionalProperties": false' in texts["playbook.schema.json"]
    assert "From activation to the first approved message" in texts["playbook.schema.json"]
    assert "never the file itself" in texts["org.schema.json"]


# --- CLI ------------------------------------------------------------------------------------


def test_cli_check_ok(tmp_path: Path) -> None:
    out = io.StringIO()
    code = run_check(SAMPLES, ORG_FILES["hattfjelldal"], out=out)
    lines = out.getvalue().splitlines()
    assert code == 0
    assert lines[0] == f"{ORG_FILES['hattfjelldal']}: OK (org hattfjelldal)"
    assert lines[1:] == [f"{p}: OK (awaiting translation: sma)" for p in SAMPLES]


def test_cli_check_reports_and_fails(tmp_path: Path) -> None:
    good = write(tmp_path, MINIMAL, "god.yaml")
    bad = write(tmp_path, edit(MINIMAL, 4, "incident_typs: [test]"), "feil.yaml")
    out = io.StringIO()
    assert run_check([good, bad], out=out) == 1
    assert out.getvalue().splitlines() == [
        f"{good}: OK",
        f"{bad}:4:1: unknown key 'incident_typs' — did you mean 'incident_types'?",
    ]
    out = io.StringIO()
    assert (
        run_check(
            [good], write(tmp_path, edit(ORG, 5, "required_languages: [sma]"), "o.yaml"), out=out
        )
        == 1
    )
    assert ":5:1: required_languages: must include nb" in out.getvalue()
    assert run_check([tmp_path / "mangler.yaml"], out=io.StringIO()) == 1


def test_cli_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="krise")
    add_playbook_parser(parser.add_subparsers(dest="command", required=True))
    path = write(tmp_path, MINIMAL)
    args = parser.parse_args(["playbook", "check", str(path), "--org", str(ORG_FILES["eksempel"])])
    assert args.func(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{path}: OK"


# --- hash and watcher ---------------------------------------------------------------------


def test_playbook_hash_is_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    assert playbook_hash(path) == hashlib.sha256(MINIMAL.encode()).hexdigest()


async def test_watcher_reports_changes_and_keeps_the_last_good(
    tmp_path: Path, wait_for: Callable[..., Awaitable[None]]
) -> None:
    path = write(tmp_path, MINIMAL)
    changes: list[tuple[Playbook, str]] = []
    errors: list[list[Problem]] = []

    async def on_change(playbook: Playbook, digest: str) -> None:
        changes.append((playbook, digest))

    watcher = PlaybookWatcher(path, None, on_change, errors.append, interval=WATCH_INTERVAL)
    async with watcher:
        await wait_for(lambda: len(changes) == 1, what="the first load")
        first, digest = changes[0]
        assert digest == playbook_hash(path)
        assert watcher.playbook is first and watcher.hash == digest

        write(tmp_path, edit(MINIMAL, 15, "  correct_rumour: 10m"))
        await wait_for(lambda: len(errors) == 1, what="the broken version")
        assert located(errors[0]) == [(15, 3)]
        assert watcher.playbook is first and watcher.hash == digest

        write(tmp_path, edit(MINIMAL, 3, "  nb: Ny tittel"))
        await wait_for(lambda: len(changes) == 2, what="the fixed version")
        second, new_digest = changes[1]
        assert second.title["nb"] == "Ny tittel"
        assert new_digest == playbook_hash(path) != digest
        assert watcher.playbook is second and watcher.problems == []
    assert len(errors) == 1


async def test_watcher_reports_a_broken_file_once(tmp_path: Path) -> None:
    path = tmp_path / "playbook.yaml"
    errors: list[list[Problem]] = []
    changes: list[str] = []
    watcher = PlaybookWatcher(path, None, lambda p, h: changes.append(h), errors.append)
    assert await watcher.poll() is True  # missing file
    assert "cannot read" in errors[0][0].message
    assert await watcher.poll() is False
    write(tmp_path, "id: [")
    assert await watcher.poll() is True
    assert await watcher.poll() is False
    assert len(errors) == 2 and changes == []
    write(tmp_path, MINIMAL)
    assert await watcher.poll() is True
    assert changes == [playbook_hash(path)]


async def test_watcher_survives_a_failing_callback(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)

    def boom(playbook: Playbook, digest: str) -> None:
        raise RuntimeError("boom")

    watcher = PlaybookWatcher(path, None, boom, lambda problems: None)
    assert await watcher.poll() is True
    assert watcher.playbook is not None
    task = watcher.start()
    assert watcher.start() is task
    await watcher.stop()
    assert task.cancelled()


async def test_watcher_checks_against_the_org(tmp_path: Path, org: Org) -> None:
    path = write(tmp_path, MINIMAL)
    errors: list[list[Problem]] = []
    watcher = PlaybookWatcher(path, org, lambda p, h: None, errors.append)
    await watcher.poll()
    assert located(errors[0]) == [(11, 3), (25, 5)]


def test_the_delivery_receipt_deadline_comes_from_the_playbook(tmp_path: Path) -> None:
    from datetime import timedelta

    from krise_tui.runtime.playbooks import policy_for

    sample = PLAYBOOKS / "flom-og-skred.yaml"
    eksempel = load_org(ORG_FILES["eksempel"])
    default = load_playbook(sample, org=eksempel)
    assert policy_for(eksempel, default).receipt_deadline == timedelta(minutes=10)
    text = sample.read_text(encoding="utf-8").replace(
        "  update_cadence: 1h\n", "  update_cadence: 1h\n  delivery_receipt: 3m\n", 1
    )
    quick = load_playbook(write(tmp_path, text), org=eksempel)
    assert policy_for(eksempel, quick).receipt_deadline == timedelta(minutes=3)
