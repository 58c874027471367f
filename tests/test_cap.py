"""CAP 1.2 export: schema-valid alerts, offsets not "Z", references, polygons, escaping."""

from __future__ import annotations

import importlib.resources
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import pytest
import xmlschema
from pydantic import ValidationError

from krise_tui.wire.cap import (
    CAP_NAMESPACE,
    CAP_REQUEST_NOTE,
    CAP_REQUEST_NOTE_EN,
    CAP_REQUEST_NOTE_NB,
    CapArea,
    CapCategory,
    CapCertainty,
    CapDefaults,
    CapGeocode,
    CapInfoText,
    CapMsgType,
    CapReference,
    CapResponseType,
    CapSeverity,
    CapStatus,
    CapUrgency,
    build_cap_alert,
    cap_identifier,
    cap_language,
    circle_within,
    distance_km,
    format_cap_time,
    polygon_within,
)

NS = {"cap": CAP_NAMESPACE}
SENT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
OSLO_WINTER = timezone(timedelta(hours=1))
SENDER = "postmottak@hattfjelldal.kommune.no"
VERSION = "3f2a9c0d1e4b5a67" + "0" * 48
POLYGON = "65.55,13.90 65.70,14.10 65.50,14.25 65.55,13.90"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    xsd = importlib.resources.files("krise_tui.exports").joinpath("schemas/CAP-v1.2.xsd")
    with importlib.resources.as_file(xsd) as path:
        return xmlschema.XMLSchema(str(path))


def defaults() -> CapDefaults:
    return CapDefaults(
        event="Flom",
        category=[CapCategory.MET, CapCategory.GEO],
        urgency=CapUrgency.IMMEDIATE,
        severity=CapSeverity.SEVERE,
        certainty=CapCertainty.LIKELY,
        area=CapArea(
            area_desc="Hattfjelldal kommune, langs Vefsna",
            geocodes=[CapGeocode(value_name="kommunenummer", value="1826")],
            polygons=[POLYGON],
            circles=["65.60,13.99 5"],
        ),
        response_type=[CapResponseType.EVACUATE, CapResponseType.MONITOR],
        sender_name="Hattfjelldal kommune",
    )


def infos() -> list[CapInfoText]:
    return [
        CapInfoText(
            language="nb",
            headline="Flom i Vefsna",
            description="Vannstanden stiger raskt ved Hattfjelldal sentrum.",
            instruction="Hold deg unna elvebredden.",
        ),
        CapInfoText(
            language="sma",
            headline="Tjaetsie Vaapstesne",
            description="Tjaetsie læjhta.",
        ),
        CapInfoText(
            language="en",
            headline="Flooding in the Vefsna river",
            description="The water level is rising quickly near Hattfjelldal centre.",
            instruction="Keep away from the riverbank.",
            event="Flood",
        ),
    ]


def alert(**overrides: object) -> str:
    kwargs: dict[str, object] = {
        "identifier": cap_identifier("1826", VERSION),
        "sender": SENDER,
        "sent": SENT,
        "status": CapStatus.ACTUAL,
        "msg_type": CapMsgType.ALERT,
        "infos": infos(),
        "defaults": defaults(),
        "web": "https://www.hattfjelldal.kommune.no/",
        "note": None,
    }
    kwargs.update(overrides)
    return build_cap_alert(**kwargs)  # type: ignore[arg-type]


def reference() -> CapReference:
    return CapReference(sender=SENDER, identifier=cap_identifier("1826", VERSION), sent=SENT)


def text_of(xml: str, path: str) -> list[str]:
    root = ET.fromstring(xml)
    return [element.text or "" for element in root.findall(path, NS)]


# --- schema validity -----------------------------------------------------------------


def test_alert_with_three_languages_is_schema_valid(schema: xmlschema.XMLSchema) -> None:
    xml = alert()
    schema.validate(xml)
    assert text_of(xml, "cap:info/cap:language") == ["nb-NO", "sma", "en-US"]
    assert text_of(xml, "cap:info/cap:event") == ["Flom", "Flom", "Flood"]
    assert text_of(xml, "cap:info/cap:area/cap:polygon") == [POLYGON] * 3
    assert text_of(xml, "cap:info/cap:area/cap:geocode/cap:value") == ["1826"] * 3
    assert text_of(xml, "cap:info/cap:category")[:2] == ["Met", "Geo"]
    assert text_of(xml, "cap:identifier") == ["no.kommune.1826.krise.3f2a9c0d1e4b5a67"]
    assert ET.fromstring(xml).tag == f"{{{CAP_NAMESPACE}}}alert"


def test_default_note_says_it_is_a_request_to_the_police(schema: xmlschema.XMLSchema) -> None:
    xml = alert()
    assert text_of(xml, "cap:note") == [CAP_REQUEST_NOTE]
    assert CAP_REQUEST_NOTE_NB in CAP_REQUEST_NOTE and CAP_REQUEST_NOTE_EN in CAP_REQUEST_NOTE
    assert "politiet" in CAP_REQUEST_NOTE_NB and "police" in CAP_REQUEST_NOTE_EN
    custom = alert(note="Kun til test")
    schema.validate(custom)
    assert text_of(custom, "cap:note") == ["Kun til test"]


def test_drill_uses_exercise_status(schema: xmlschema.XMLSchema) -> None:
    xml = alert(status=CapStatus.EXERCISE)
    schema.validate(xml)
    assert text_of(xml, "cap:status") == ["Exercise"]


def test_update_carries_references(schema: xmlschema.XMLSchema) -> None:
    second = "9" * 64
    earlier = CapReference(
        sender=SENDER, identifier="no.kommune.1826.krise.0000000000000001", sent=SENT
    )
    xml = alert(
        identifier=cap_identifier("1826", second),
        sent=SENT + timedelta(hours=1),
        msg_type=CapMsgType.UPDATE,
        references=[earlier, reference()],
    )
    schema.validate(xml)
    assert text_of(xml, "cap:references") == [
        f"{SENDER},no.kommune.1826.krise.0000000000000001,2026-11-27T10:00:00-00:00 "
        f"{SENDER},no.kommune.1826.krise.3f2a9c0d1e4b5a67,2026-11-27T10:00:00-00:00"
    ]
    assert text_of(xml, "cap:msgType") == ["Update"]


def test_cancel_is_schema_valid(schema: xmlschema.XMLSchema) -> None:
    xml = alert(
        identifier=cap_identifier("1826", VERSION, suffix="cancel"),
        msg_type=CapMsgType.CANCEL,
        references=[reference()],
        infos=infos()[:1],
    )
    schema.validate(xml)
    assert text_of(xml, "cap:identifier") == ["no.kommune.1826.krise.3f2a9c0d1e4b5a67.cancel"]
    assert text_of(xml, "cap:msgType") == ["Cancel"]


def test_broken_document_fails_validation(schema: xmlschema.XMLSchema) -> None:
    root = ET.fromstring(alert())
    sender = root.find("cap:sender", NS)
    assert sender is not None
    root.remove(sender)
    broken = ET.tostring(root, encoding="unicode")
    assert not schema.is_valid(broken)
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        schema.validate(broken)
    assert not schema.is_valid(alert().replace("-00:00</sent>", "Z</sent>"))


# --- times ---------------------------------------------------------------------------


def test_times_have_offsets_and_never_z(schema: xmlschema.XMLSchema) -> None:
    xml = alert(
        sent=datetime(2026, 11, 27, 11, 0, 0, 123456, tzinfo=OSLO_WINTER),
        msg_type=CapMsgType.UPDATE,
        references=[reference()],
        expires=SENT + timedelta(hours=6),
    )
    schema.validate(xml)
    assert "Z<" not in xml
    assert text_of(xml, "cap:sent") == ["2026-11-27T11:00:00+01:00"]
    assert text_of(xml, "cap:info/cap:expires")[0] == "2026-11-27T16:00:00-00:00"
    stamps = re.findall(r"\d{4}-\d\d-\d\dT[^<, ]+", xml)
    assert stamps and all(re.fullmatch(r".*[+-]\d\d:\d\d", s) for s in stamps)


def test_format_cap_time() -> None:
    assert format_cap_time(SENT) == "2026-11-27T10:00:00-00:00"
    assert format_cap_time(SENT.astimezone(OSLO_WINTER)) == "2026-11-27T11:00:00+01:00"
    newfoundland = timezone(-timedelta(hours=3, minutes=30))
    assert format_cap_time(SENT.astimezone(newfoundland)) == "2026-11-27T06:30:00-03:30"
    with pytest.raises(ValueError, match="naive"):
        format_cap_time(datetime(2026, 11, 27, 10, 0))


def test_naive_sent_is_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        alert(sent=datetime(2026, 11, 27, 10, 0))
    with pytest.raises(ValidationError):
        CapReference(sender=SENDER, identifier="x", sent=datetime(2026, 11, 27, 10, 0))


# --- rules ---------------------------------------------------------------------------


@pytest.mark.parametrize("msg_type", [CapMsgType.UPDATE, CapMsgType.CANCEL])
def test_update_and_cancel_without_references_raise(msg_type: CapMsgType) -> None:
    with pytest.raises(ValueError, match="reference"):
        alert(msg_type=msg_type)
    with pytest.raises(ValueError, match="reference"):
        alert(msg_type=msg_type, references=[])


def test_other_misuse_raises() -> None:
    with pytest.raises(ValueError, match="one info block per language"):
        alert(infos=[*infos(), infos()[0]])
    with pytest.raises(ValueError, match="at least one info"):
        alert(infos=[])
    with pytest.raises(ValueError, match="spaces, commas"):
        alert(sender="Hattfjelldal kommune")
    with pytest.raises(ValueError, match="spaces, commas"):
        alert(identifier="a,b")
    with pytest.raises(ValueError, match="web"):
        alert(web="www.hattfjelldal.kommune.no")


@pytest.mark.parametrize(
    "polygon",
    [
        "65.5,13.9 65.7,14.1 65.5,13.9",  # only 3 points
        "65.5,13.9 65.7,14.1 65.5,14.2 65.6,13.9",  # not closed
        "95.0,13.9 65.7,14.1 65.5,14.2 95.0,13.9",  # latitude out of range
        "65.5,190 65.7,14.1 65.5,14.2 65.5,190",  # longitude out of range
        "65.5;13.9 65.7,14.1 65.5,14.2 65.5;13.9",  # wrong separator
        "65.5,abc 65.7,14.1 65.5,14.2 65.5,abc",  # not numeric
        "",
    ],
)
def test_invalid_polygons_are_rejected(polygon: str) -> None:
    with pytest.raises(ValidationError):
        CapArea(area_desc="x", polygons=[polygon])


@pytest.mark.parametrize("circle", ["65.6,13.99", "65.6,13.99 -1", "91,13 5", "65.6 13.99 5"])
def test_invalid_circles_are_rejected(circle: str) -> None:
    with pytest.raises(ValidationError):
        CapArea(area_desc="x", circles=[circle])


def test_models_forbid_extra_fields_and_need_a_category() -> None:
    with pytest.raises(ValidationError):
        CapGeocode(value_name="a", value="b", extra="c")  # type: ignore[call-arg]
    data = defaults().model_dump()
    data["category"] = []
    with pytest.raises(ValidationError):
        CapDefaults.model_validate(data)
    data["category"] = ["Weather"]
    with pytest.raises(ValidationError):
        CapDefaults.model_validate(data)


def test_defaults_load_from_playbook_style_data() -> None:
    loaded = CapDefaults.model_validate(
        {
            "event": "Skogbrann",
            "category": ["Fire"],
            "urgency": "Expected",
            "severity": "Moderate",
            "certainty": "Possible",
            "area": {
                "area_desc": "Hattfjelldal",
                "geocodes": [{"value_name": "kommunenummer", "value": "1826"}],
            },
            "response_type": ["AllClear", "None"],
        }
    )
    assert loaded.category == [CapCategory.FIRE]
    assert loaded.response_type == [CapResponseType.ALL_CLEAR, CapResponseType.NONE]


def test_language_mapping() -> None:
    assert cap_language("nb") == "nb-NO"
    assert cap_language("en") == "en-US"
    assert cap_language("sma") == "sma"
    assert cap_language("en-GB") == "en-GB"
    with pytest.raises(ValueError):
        cap_language("norsk bokmål")


def test_cap_identifier_is_stable() -> None:
    assert cap_identifier("1826", VERSION) == cap_identifier("1826", VERSION.upper())
    assert cap_identifier("1826", VERSION) == "no.kommune.1826.krise.3f2a9c0d1e4b5a67"
    with pytest.raises(ValueError):
        cap_identifier("Hattfjelldal", VERSION)
    with pytest.raises(ValueError):
        cap_identifier("1826", "")


# --- escaping ------------------------------------------------------------------------


def test_special_characters_survive_round_trip(schema: xmlschema.XMLSchema) -> None:
    tricky = CapInfoText(
        language="nb-NO",
        headline="Rv73 <stengt> & \"omkjøring\" via 'Fv7270'",
        description="Vannstand > 3 m & stigende; <script>alert(1)</script> ]]> æøå ÆØÅ",
        instruction="Følg «skilting» & råd fra politiet.\nNy linje.",
    )
    area = CapArea(area_desc='Sentrum <nord> & "sør"', polygons=[POLYGON])
    xml = alert(
        infos=[tricky],
        defaults=defaults().model_copy(update={"area": area, "sender_name": "A & B <c>"}),
        note='Merk: <ikke> & "send"',
    )
    schema.validate(xml)
    assert text_of(xml, "cap:info/cap:headline") == [tricky.headline]
    assert text_of(xml, "cap:info/cap:description") == [tricky.description]
    assert text_of(xml, "cap:info/cap:instruction") == [tricky.instruction]
    assert text_of(xml, "cap:info/cap:area/cap:areaDesc") == [area.area_desc]
    assert text_of(xml, "cap:info/cap:senderName") == ["A & B <c>"]
    assert text_of(xml, "cap:note") == ['Merk: <ikke> & "send"']


def test_characters_xml_cannot_carry_are_removed(schema: xmlschema.XMLSchema) -> None:
    controls = CapInfoText(
        language="nb",
        headline="Flom\x00 i\x1b Vefsna\ufffe",
        description="Linje 1\r\nLinje 2\tmed tab\x0b\x0c.",
    )
    xml = alert(infos=[controls])
    schema.validate(xml)  # the parser behind it rejects any of those characters
    assert text_of(xml, "cap:info/cap:headline") == ["Flom i Vefsna"]
    # XML parsers turn \r\n into \n; tab and newline are XML characters and stay.
    assert text_of(xml, "cap:info/cap:description") == ["Linje 1\nLinje 2\tmed tab."]


# --- geometry: a shape inside an area ---------------------------------------------------

SQUARE = "65.0,13.0 65.0,14.5 66.0,14.5 66.0,13.0 65.0,13.0"
# An L-shaped (concave) outline: the square without its north-east quarter.
ELL = "65.0,13.0 65.0,14.5 65.5,14.5 65.5,13.75 66.0,13.75 66.0,13.0 65.0,13.0"


def test_distance() -> None:
    assert distance_km((65.0, 13.0), (65.0, 13.0)) == 0
    # One degree of latitude is about 111.2 km.
    assert distance_km((65.0, 13.0), (66.0, 13.0)) == pytest.approx(111.2, abs=0.1)
    # Oslo–Bergen as the crow flies, about 305 km.
    assert distance_km((59.9139, 10.7522), (60.3913, 5.3221)) == pytest.approx(305, abs=3)


@pytest.mark.parametrize(
    ("polygon", "inside"),
    [
        ("65.2,13.2 65.2,13.8 65.4,13.8 65.2,13.2", True),
        (SQUARE, True),  # the outline itself
        ("65.0,13.0 65.0,14.0 65.3,13.5 65.0,13.0", True),  # along the southern edge
        ("65.2,13.2 65.2,14.6 65.4,13.8 65.2,13.2", False),  # one corner just outside
        ("64.0,13.0 64.0,14.0 64.5,13.5 64.0,13.0", False),  # wholly south of it
        # Every corner inside the L, but an edge crosses the missing quarter.
        ("65.4,13.6 65.4,14.4 65.45,14.4 65.9,13.6 65.4,13.6", False),
    ],
)
def test_polygon_within(polygon: str, inside: bool) -> None:
    outer = ELL if polygon.startswith("65.4,13.6") else SQUARE
    assert polygon_within(polygon, [outer], []) is inside


def test_polygon_within_the_concave_outline() -> None:
    assert polygon_within("65.1,13.1 65.1,14.4 65.4,14.4 65.1,13.1", [ELL], [])
    assert not polygon_within("65.6,14.0 65.6,14.4 65.9,14.4 65.6,14.0", [ELL], [])


@pytest.mark.parametrize(
    ("circle", "inside"),
    [
        ("65.5,13.75 20", True),
        ("65.5,13.75 0", True),
        ("65.5,13.75 40", False),  # 40 km reaches past the eastern and western edges
        ("65.02,13.75 5", False),  # crosses the southern edge
        ("70.0,20.0 1", False),
    ],
)
def test_circle_within(circle: str, inside: bool) -> None:
    assert circle_within(circle, [SQUARE], []) is inside


def test_a_union_of_outer_shapes() -> None:
    discs = ["65.5,13.5 20", "65.5,14.0 20"]
    # Spans both circles, in neither alone.
    bridging = "65.45,13.3 65.45,14.2 65.55,14.2 65.55,13.3 65.45,13.3"
    assert polygon_within(bridging, [], discs)
    assert not polygon_within(bridging, [], discs[:1])
    assert circle_within("65.5,13.75 12", [], discs)
    assert not polygon_within(bridging, [], [])  # nothing contains nothing
    assert circle_within("65.5,13.2 5", [SQUARE], discs[1:])
