"""A CAP 1.2 request for an approved version: the org's area, valid against the XSD."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from krise_tui.exports.cap_request import (
    CapExportError,
    CapMessage,
    CapPrevious,
    CapText,
    build_cap_request,
    cap_area,
    cap_message,
    cap_request,
)
from krise_tui.playbook.loader import load_org, load_playbook, parse_org, parse_playbook
from krise_tui.playbook.models import Org, Playbook

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = ROOT / "playbooks"
NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
SENT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
FIRST = "a1" * 32
SECOND = "b2" * 32
OUTLINE = "65.0,13.0 65.0,14.5 66.0,14.5 66.0,13.0 65.0,13.0"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    xsd = resources.files("krise_tui.exports").joinpath("schemas/CAP-v1.2.xsd")
    with resources.as_file(xsd) as path:
        return xmlschema.XMLSchema(str(path))


@pytest.fixture(scope="module")
def eksempel() -> Org:
    return load_org(PLAYBOOKS / "orgs" / "eksempel.yaml")


@pytest.fixture(scope="module")
def hattfjelldal() -> Org:
    return load_org(PLAYBOOKS / "orgs" / "hattfjelldal.yaml")


def playbook(name: str = "flom-og-skred") -> Playbook:
    return load_playbook(PLAYBOOKS / f"{name}.yaml")


def with_area(org: Org, area: str) -> Playbook:
    """The flood playbook with its ``cap.area`` replaced (checked against ``org``)."""
    text = (PLAYBOOKS / "flom-og-skred.yaml").read_text(encoding="utf-8")
    return parse_playbook(text + area, org=org)


def alert(text: str = "Rv73 er stengt ved Eksempelbrua.") -> CapMessage:
    return CapMessage(
        version_id=FIRST,
        status="published",
        texts=(CapText("nb", "Flomvarsel", text), CapText("en", "Flood warning", text)),
    )


def update() -> CapMessage:
    return CapMessage(
        version_id=SECOND,
        status="updated",
        texts=(CapText("nb", "Flomvarsel oppdatert", "Rv73 er åpnet igjen."),),
        previous=CapPrevious(FIRST, datetime(2026, 11, 27, 9, 0, tzinfo=UTC)),
    )


def area_of(xml: str) -> list[ET.Element]:
    return ET.fromstring(xml).findall("cap:info/cap:area", NS)


def geocodes(area: ET.Element) -> list[tuple[str | None, str | None]]:
    return [
        (g.findtext("cap:valueName", namespaces=NS), g.findtext("cap:value", namespaces=NS))
        for g in area.findall("cap:geocode", NS)
    ]


def test_the_area_is_the_org_s_not_hattfjelldal_s(
    schema: xmlschema.XMLSchema, eksempel: Org
) -> None:
    for name in ("flom-og-skred", "strom-og-ekombrudd", "alvorlig-hendelse-skole"):
        request = build_cap_request(alert(), org=eksempel, playbook=playbook(name), sent=SENT)
        schema.validate(request.xml)
        assert "1826" not in request.xml and "Hattfjelldal" not in request.xml
        for area in area_of(request.xml):  # one per language
            assert area.findtext("cap:areaDesc", namespaces=NS) == "Eksempel kommune"
            assert geocodes(area) == [("kommunenummer", "9999")]
        assert (request.area_desc, request.geocodes) == (
            "Eksempel kommune",
            (("kommunenummer", "9999"),),
        )


def test_hattfjelldal_gets_its_own_area(schema: xmlschema.XMLSchema, hattfjelldal: Org) -> None:
    request = build_cap_request(alert(), org=hattfjelldal, playbook=playbook(), sent=SENT)
    schema.validate(request.xml)
    (area, _) = area_of(request.xml)
    assert area.findtext("cap:areaDesc", namespaces=NS) == "Hattfjelldal kommune"
    assert geocodes(area) == [("kommunenummer", "1826")]
    assert request.identifier == f"no.kommune.1826.krise.{FIRST[:16]}"
    assert request.sender == "krise@hattfjelldal.kommune.no"


def test_a_sub_area_named_by_the_playbook(schema: xmlschema.XMLSchema, eksempel: Org) -> None:
    water = playbook("forurenset-drikkevann")
    request = build_cap_request(alert(), org=eksempel, playbook=water, sent=SENT)
    schema.validate(request.xml)
    assert request.area_desc == ("Forsyningsområdet til det kommunale vannverket, Eksempel kommune")
    # Words narrow the description; the codes still cover the whole municipality.
    assert request.geocodes == (("kommunenummer", "9999"),)


def test_a_sub_area_with_a_shape_replaces_the_municipality_s_codes(
    schema: xmlschema.XMLSchema,
) -> None:
    text = (PLAYBOOKS / "orgs" / "eksempel.yaml").read_text(encoding="utf-8")
    outlined = f'area:\n  name: Eksempel kommune\n  polygons: ["{OUTLINE}"]\n'
    org = parse_org(text.replace("area:\n  name: Eksempel kommune\n", outlined))
    inner = "65.2,13.2 65.2,13.8 65.8,13.8 65.2,13.2"
    flood = with_area(org, f'  area:\n    area_desc: Langs elva\n    polygons: ["{inner}"]\n')
    request = build_cap_request(alert(), org=org, playbook=flood, sent=SENT)
    schema.validate(request.xml)
    (area, _) = area_of(request.xml)
    assert area.findtext("cap:areaDesc", namespaces=NS) == "Langs elva, Eksempel kommune"
    assert [p.text for p in area.findall("cap:polygon", NS)] == [inner]
    # CAP takes the union of an area's shapes and codes: the municipality number would
    # widen the request back to the whole municipality.
    assert geocodes(area) == []
    whole = build_cap_request(alert(), org=org, playbook=playbook(), sent=SENT)
    (area, _) = area_of(whole.xml)
    assert [p.text for p in area.findall("cap:polygon", NS)] == [OUTLINE]
    assert geocodes(area) == [("kommunenummer", "9999")]


def test_a_playbook_naming_another_municipality_is_refused(eksempel: Org) -> None:
    old = "  area:\n    area_desc: Hattfjelldal kommune\n    geocodes:\n"
    old += '      - name: kommunenummer\n        value: "1826"\n'
    text = (PLAYBOOKS / "flom-og-skred.yaml").read_text(encoding="utf-8") + old
    unchecked = parse_playbook(text)  # loaded without the org, as a stale file might be
    with pytest.raises(CapExportError, match=r"names municipality 1826.*Eksempel kommune"):
        build_cap_request(alert(), org=eksempel, playbook=unchecked, sent=SENT)
    with pytest.raises(CapExportError, match="names municipality 1826"):
        cap_area(eksempel, unchecked)


def test_drills_times_and_the_preview(schema: xmlschema.XMLSchema, eksempel: Org) -> None:
    oslo_noon = datetime(2026, 11, 27, 11, 0, tzinfo=UTC)
    request = build_cap_request(
        alert(), org=eksempel, playbook=playbook(), sent=oslo_noon, exercise=True
    )
    schema.validate(request.xml)
    root = ET.fromstring(request.xml)
    assert root.findtext("cap:status", namespaces=NS) == "Exercise"
    assert root.findtext("cap:msgType", namespaces=NS) == "Alert"
    assert root.findtext("cap:sent", namespaces=NS) == "2026-11-27T11:00:00-00:00"
    assert (request.status, request.msg_type, request.headline) == (
        "Exercise",
        "Alert",
        "Flomvarsel",
    )
    assert request.languages == ("nb-NO", "en-US")
    assert request.sent == oslo_noon and request.sent_local == "27.11.2026 kl. 12:00"
    assert root.findtext("cap:info/cap:senderName", namespaces=NS) == "Eksempel kommune"
    lines = request.summary_lines()
    assert lines[0].startswith("ANMODNING om varsling til politiet")
    assert "Område: Eksempel kommune (geokode: kommunenummer 9999)" in lines
    assert "Sendt: 27.11.2026 kl. 12:00" in lines


def test_sent_is_written_in_utc_whatever_zone_it_comes_in(eksempel: Org) -> None:
    summer = datetime(2026, 7, 1, 14, 0, tzinfo=UTC).astimezone()  # the machine's zone
    request = build_cap_request(alert(), org=eksempel, playbook=playbook(), sent=summer)
    assert ET.fromstring(request.xml).findtext("cap:sent", namespaces=NS) == (
        "2026-07-01T14:00:00-00:00"
    )
    assert request.sent_local == "01.07.2026 kl. 16:00"  # CEST in Europe/Oslo
    elsewhere = eksempel.model_copy(update={"timezone": "America/St_Johns"})
    assert (
        build_cap_request(alert(), org=elsewhere, playbook=playbook(), sent=summer).sent_local
        == "01.07.2026 kl. 11:30"
    )
    with pytest.raises(CapExportError, match="timezone-aware"):
        build_cap_request(
            alert(), org=eksempel, playbook=playbook(), sent=datetime(2026, 7, 1, 14, 0)
        )


def test_an_update_references_what_it_replaces(schema: xmlschema.XMLSchema, eksempel: Org) -> None:
    request = build_cap_request(update(), org=eksempel, playbook=playbook(), sent=SENT)
    schema.validate(request.xml)
    root = ET.fromstring(request.xml)
    assert root.findtext("cap:msgType", namespaces=NS) == "Update"
    expected = f"krise@eksempel.kommune.no,no.kommune.9999.krise.{FIRST[:16]},"
    expected += "2026-11-27T09:00:00-00:00"
    assert root.findtext("cap:references", namespaces=NS) == expected
    assert request.references == (expected,)
    orphan = CapMessage(SECOND, "retracted", update().texts)
    with pytest.raises(CapExportError, match="needs the version it replaces"):
        build_cap_request(orphan, org=eksempel, playbook=playbook(), sent=SENT)


def test_what_cannot_be_drafted(eksempel: Org) -> None:
    no_cap = playbook().model_copy(update={"cap": None})
    with pytest.raises(CapExportError, match="no cap: section"):
        build_cap_request(alert(), org=eksempel, playbook=no_cap, sent=SENT)
    empty = CapMessage(FIRST, "published", (CapText("nb", "Tittel", "  "),))
    with pytest.raises(CapExportError, match="no text"):
        build_cap_request(empty, org=eksempel, playbook=playbook(), sent=SENT)


def test_hostile_text_stays_text(schema: xmlschema.XMLSchema, eksempel: Org) -> None:
    hostile = 'Se <script>alert(1)</script> ]]> & "x" \x01\x0b slutt'
    request = build_cap_request(alert(hostile), org=eksempel, playbook=playbook(), sent=SENT)
    schema.validate(request.xml)
    description = ET.fromstring(request.xml).findtext("cap:info/cap:description", namespaces=NS)
    assert description == 'Se <script>alert(1)</script> ]]> & "x"  slutt'


# --- from the core's state ---------------------------------------------------------------


@dataclass
class FakeVersion:
    """Shaped like the core's approved version (what cap_message reads)."""

    version_id: str
    variants: list[dict[str, Any]]
    approved_at: datetime
    status: str = "published"
    supersedes: str | None = None
    published_at: datetime | None = None


@dataclass
class FakeMessages:
    versions: dict[str, FakeVersion] = field(default_factory=dict)
    published_version: str | None = None


@dataclass
class FakeState:
    messages: FakeMessages


def test_cap_message_reads_a_state_like_store(schema: xmlschema.XMLSchema, eksempel: Org) -> None:
    at = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    variants = [{"lang": "nb", "headline": "Flom", "body": "Rv73 er stengt."}]
    store = FakeMessages(
        versions={
            FIRST: FakeVersion(FIRST, variants, at, published_at=at + timedelta(minutes=1)),
            SECOND: FakeVersion(
                SECOND, variants, at, status="updated", supersedes=FIRST, published_at=at
            ),
        },
        published_version=SECOND,
    )
    message = cap_message(store)
    assert message.version_id == SECOND and message.status == "updated"
    assert message.previous == CapPrevious(FIRST, at + timedelta(minutes=1))
    assert message.texts == (CapText("nb", "Flom", "Rv73 er stengt."),)
    assert cap_message(store, FIRST[:8]).previous is None
    xml = cap_request(FakeState(store), org=eksempel, playbook=playbook(), sent=SENT)
    schema.validate(xml)
    assert ET.fromstring(xml).findtext("cap:msgType", namespaces=NS) == "Update"
    assert cap_request(store, org=eksempel, playbook=playbook(), sent=SENT) == xml
    with pytest.raises(CapExportError, match="no single approved version"):
        cap_message(store, "ff")
    with pytest.raises(CapExportError, match="no single approved version"):
        cap_message(FakeMessages())


def test_a_minimal_org_without_an_area_uses_its_name(eksempel: Org) -> None:
    text = (PLAYBOOKS / "orgs" / "eksempel.yaml").read_text(encoding="utf-8")
    text = text.replace("area:\n  name: Eksempel kommune\n", "")
    org = parse_org(text)
    assert org.area.name is None
    assert cap_area(org, playbook()).area_desc == "Eksempel kommune"


@pytest.mark.parametrize("drill", [False, True])
def test_the_command_marks_a_drill_s_version_as_an_exercise(
    drill: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`krise cap export` on a journal: a version a drill published (its deliveries are
    marked as an exercise) gives status Exercise without --exercise; a real one Actual."""
    import asyncio
    import dataclasses

    from krise_tui.cli import main
    from krise_tui.core.features.incident import ActivatePlaybook, OpenIncident
    from krise_tui.core.kernel import EventBase
    from krise_tui.core.state import IncidentState
    from krise_tui.journal.store import Journal
    from krise_tui.playbook.loader import playbook_hash
    from tests.corekit import POLICY, WEB, make_ctx, publish_text, run

    policy = dataclasses.replace(POLICY, exercise=drill)
    state = IncidentState()
    events: list[EventBase] = []
    run(state, OpenIncident("Drikkevannet"), make_ctx("ola", policy=policy), events=events)
    water = PLAYBOOKS / "forurenset-drikkevann.yaml"
    activate = ActivatePlaybook("vann", "Drikkevann", playbook_hash(water), str(water))
    run(state, activate, make_ctx("system", policy=policy), events=events)
    publish_text(state, "Rv73 er stengt", f"Se {WEB}", policy=policy, events=events)
    journal = tmp_path / "journal.sqlite3"

    async def write() -> None:
        async with await Journal.open(journal) as j:
            await j.append(events)

    asyncio.run(write())
    monkeypatch.setenv("KRISE_ORG_FILE", str(PLAYBOOKS / "orgs" / "eksempel.yaml"))
    monkeypatch.setenv("KRISE_PLAYBOOK", str(PLAYBOOKS / "flom-og-skred.yaml"))
    monkeypatch.setenv("KRISE_DATA_DIR", str(tmp_path / "data"))
    assert main(["cap", "export", "--journal", str(journal)]) == 0
    out, err = capsys.readouterr()
    cap = ET.fromstring(out.encode())
    assert cap.findtext("cap:status", namespaces=NS) == ("Exercise" if drill else "Actual")
    # The playbook the incident ran with (journaled), not the configured flood playbook.
    assert cap.findtext("cap:info/cap:event", namespaces=NS) == "Forurenset drikkevann"
    assert f"the incident's playbook: {water}" in err
    assert ("published in a drill" in err) is drill
    assert main(["cap", "export", "--journal", str(tmp_path / "none.sqlite3")]) == 2
    assert "no such journal" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite3").exists()  # read, never created
