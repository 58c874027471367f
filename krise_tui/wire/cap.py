"""CAP 1.2 (Common Alerting Protocol) export: a *request* for a public warning.

krise only ever drafts a CAP 1.2 *request* to the police. Public warning by cell
broadcast (Nødvarsel) is sent only by the police; the console never sends one and never
claims to have sent one (DOMAIN.md rule 8). The document built here is handed to the
police (or published as a CAP feed); its ``<note>`` says so by default.

The models in this module are pure data: the playbook's ``cap:`` section is a
:class:`CapDefaults`, and :func:`build_cap_alert` turns defaults plus per-language texts
into CAP 1.2 XML (namespace ``urn:oasis:names:tc:emergency:cap:1.2``) with the element
order of the OASIS schema (DOMAIN.md rule 25). The XML is written by
:mod:`xml.etree.ElementTree`, which escapes every text; characters XML 1.0 cannot carry
at all (C0 controls, lone surrogates) are removed first.

:func:`polygon_within` and :func:`circle_within` check that a shape lies inside an area
(the municipality's outline from the org file), so that a playbook can only narrow the
area of a request, never move it.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise

from pydantic import BaseModel, ConfigDict, Field, field_validator

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
"""The CAP 1.2 XML namespace."""

CAP_REQUEST_NOTE_NB = (
    "Anmodning om varsling til politiet. Dette er et utkast fra kommunen; "
    "Nødvarsel (varsling på mobil via cell broadcast) sendes bare av politiet."
)
"""Default ``<note>`` (bokmål): this is a request to the police, not a sent warning."""

CAP_REQUEST_NOTE_EN = (
    "Request for a public warning, addressed to the police. This is a draft from the "
    "municipality; Nødvarsel (cell broadcast public warning) is sent only by the police."
)
"""Default ``<note>`` (English): this is a request to the police, not a sent warning."""

CAP_REQUEST_NOTE = f"{CAP_REQUEST_NOTE_NB}\n{CAP_REQUEST_NOTE_EN}"
"""The ``<note>`` used when :func:`build_cap_alert` is given none (bokmål, then English)."""


class CapCategory(StrEnum):
    """CAP 1.2 ``category`` values."""

    GEO = "Geo"
    MET = "Met"
    SAFETY = "Safety"
    SECURITY = "Security"
    RESCUE = "Rescue"
    FIRE = "Fire"
    HEALTH = "Health"
    ENV = "Env"
    TRANSPORT = "Transport"
    INFRA = "Infra"
    CBRNE = "CBRNE"
    OTHER = "Other"


class CapUrgency(StrEnum):
    """CAP 1.2 ``urgency`` values."""

    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


class CapSeverity(StrEnum):
    """CAP 1.2 ``severity`` values."""

    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class CapCertainty(StrEnum):
    """CAP 1.2 ``certainty`` values."""

    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


class CapResponseType(StrEnum):
    """CAP 1.2 ``responseType`` values."""

    SHELTER = "Shelter"
    EVACUATE = "Evacuate"
    PREPARE = "Prepare"
    EXECUTE = "Execute"
    AVOID = "Avoid"
    MONITOR = "Monitor"
    ASSESS = "Assess"
    ALL_CLEAR = "AllClear"
    NONE = "None"


class CapStatus(StrEnum):
    """CAP 1.2 ``status`` values (drills use ``Exercise``)."""

    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class CapMsgType(StrEnum):
    """CAP 1.2 ``msgType`` values (``Update`` and ``Cancel`` need references)."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


class CapScope(StrEnum):
    """CAP 1.2 ``scope`` values."""

    PUBLIC = "Public"
    RESTRICTED = "Restricted"
    PRIVATE = "Private"


def _parse_point(text: str, where: str) -> tuple[float, float]:
    """Parse ``"lat,lon"`` (WGS 84 decimal degrees) and check the ranges."""
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"{where}: point {text!r} is not 'lat,lon'")
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"{where}: point {text!r} is not numeric 'lat,lon'") from None
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"{where}: latitude {lat} is outside [-90, 90]")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"{where}: longitude {lon} is outside [-180, 180]")
    return lat, lon


def _check_polygon(text: str) -> str:
    """Validate a CAP polygon ``"lat,lon lat,lon ..."``; return it whitespace-normalised."""
    points = text.split()
    if len(points) < 4:
        raise ValueError(f"polygon needs at least 4 points (got {len(points)})")
    parsed = [_parse_point(p, "polygon") for p in points]
    if parsed[0] != parsed[-1]:
        raise ValueError("polygon is not closed: the first and last points must be equal")
    return " ".join(points)


def _check_circle(text: str) -> str:
    """Validate a CAP circle ``"lat,lon radius_km"``; return it whitespace-normalised."""
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(f"circle {text!r} is not 'lat,lon radius_km'")
    _parse_point(parts[0], "circle")
    try:
        radius = float(parts[1])
    except ValueError:
        raise ValueError(f"circle radius {parts[1]!r} is not a number") from None
    if radius < 0:
        raise ValueError(f"circle radius {radius} is negative")
    return " ".join(parts)


# --- geometry: does a shape lie inside an area? -------------------------------------------

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), for distances between WGS 84 points."""

EDGE_TOLERANCE_KM = 0.05
"""A point this close to an outer edge counts as inside: a sub-area drawn along the
municipality's border must not fail on rounding in the last decimal."""

_EDGE_SAMPLES = 16
_CIRCLE_SAMPLES = 36


def parse_polygon(text: str) -> list[tuple[float, float]]:
    """A CAP polygon ``"lat,lon lat,lon …"`` as (lat, lon) points; ValueError if malformed."""
    return [_parse_point(point, "polygon") for point in _check_polygon(text).split()]


def parse_circle(text: str) -> tuple[tuple[float, float], float]:
    """A CAP circle ``"lat,lon radius_km"`` as ((lat, lon), radius_km); ValueError if bad."""
    centre, radius = _check_circle(text).split()
    return _parse_point(centre, "circle"), float(radius)


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon) points (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _destination(centre: tuple[float, float], bearing: float, km: float) -> tuple[float, float]:
    lat1, lon1 = map(math.radians, centre)
    angle = km / EARTH_RADIUS_KM
    lat2 = math.asin(
        math.sin(lat1) * math.cos(angle) + math.cos(lat1) * math.sin(angle) * math.cos(bearing)
    )
    lon2 = lon1 + math.atan2(
        math.sin(bearing) * math.sin(angle) * math.cos(lat1),
        math.cos(angle) - math.sin(lat1) * math.sin(lat2),
    )
    return math.degrees(lat2), (math.degrees(lon2) + 540) % 360 - 180


def _near_edge(point: tuple[float, float], ring: list[tuple[float, float]]) -> bool:
    """Within :data:`EDGE_TOLERANCE_KM` of an edge of ``ring`` (local flat projection)."""
    lat0, lon0 = point
    kx = math.cos(math.radians(lat0)) * math.pi * EARTH_RADIUS_KM / 180
    ky = math.pi * EARTH_RADIUS_KM / 180
    flat = [((lon - lon0) * kx, (lat - lat0) * ky) for lat, lon in ring]
    for (x1, y1), (x2, y2) in pairwise(flat):
        dx, dy = x2 - x1, y2 - y1
        length2 = dx * dx + dy * dy
        t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(x1 * dx + y1 * dy) / length2))
        if math.hypot(x1 + t * dx, y1 + t * dy) <= EDGE_TOLERANCE_KM:
            return True
    return False


def _in_ring(point: tuple[float, float], ring: list[tuple[float, float]]) -> bool:
    """Ray casting in the (lon, lat) plane; fine at a municipality's scale in Norway (no
    shape here crosses the antimeridian or a pole)."""
    lat, lon = point
    inside = False
    for (lat1, lon1), (lat2, lon2) in pairwise(ring):
        if (lat1 > lat) != (lat2 > lat):
            crossing = lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1)
            if lon < crossing:
                inside = not inside
    return inside


def _covered(
    point: tuple[float, float],
    rings: list[list[tuple[float, float]]],
    discs: list[tuple[tuple[float, float], float]],
) -> bool:
    if any(distance_km(point, centre) <= radius + EDGE_TOLERANCE_KM for centre, radius in discs):
        return True
    return any(_in_ring(point, ring) or _near_edge(point, ring) for ring in rings)


def _outer(
    polygons: Sequence[str], circles: Sequence[str]
) -> tuple[list[list[tuple[float, float]]], list[tuple[tuple[float, float], float]]]:
    return [parse_polygon(p) for p in polygons], [parse_circle(c) for c in circles]


def polygon_within(polygon: str, polygons: Sequence[str], circles: Sequence[str]) -> bool:
    """True when ``polygon`` lies inside the union of ``polygons`` and ``circles``.

    Checked on points along every edge (each vertex and 15 between), not by exact
    geometry: it catches a sub-area in another municipality or a mistyped coordinate,
    which is what it is for; it is no GIS. Empty ``polygons`` and ``circles`` contain
    nothing.
    """
    rings, discs = _outer(polygons, circles)
    points = parse_polygon(polygon)
    for (lat1, lon1), (lat2, lon2) in pairwise(points):
        for step in range(_EDGE_SAMPLES):
            t = step / _EDGE_SAMPLES
            if not _covered((lat1 + t * (lat2 - lat1), lon1 + t * (lon2 - lon1)), rings, discs):
                return False
    return True


def circle_within(circle: str, polygons: Sequence[str], circles: Sequence[str]) -> bool:
    """True when ``circle`` lies inside the union of ``polygons`` and ``circles``.

    Checked on its centre and 36 points of its rim, like :func:`polygon_within`.
    """
    rings, discs = _outer(polygons, circles)
    centre, radius = parse_circle(circle)
    points = [centre]
    if radius > 0:
        points += [
            _destination(centre, 2 * math.pi * step / _CIRCLE_SAMPLES, radius)
            for step in range(_CIRCLE_SAMPLES)
        ]
    return all(_covered(point, rings, discs) for point in points)


class CapGeocode(BaseModel):
    """A CAP ``geocode`` (e.g. ``valueName="kommunenummer"``, ``value="1826"``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value_name: str = Field(min_length=1)
    """The geocode system, e.g. ``kommunenummer``."""
    value: str = Field(min_length=1)
    """The code in that system, e.g. ``1826`` for Hattfjelldal."""


class CapArea(BaseModel):
    """A CAP ``area``: a description plus geocodes, polygons and circles."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    area_desc: str = Field(min_length=1)
    """Human description of the area (``areaDesc``), e.g. ``Hattfjelldal kommune``."""
    geocodes: list[CapGeocode] = []
    """Geocodes covering the area."""
    polygons: list[str] = []
    """Polygons ``"lat,lon lat,lon ..."`` (WGS 84), at least 4 points, first == last."""
    circles: list[str] = []
    """Circles ``"lat,lon radius_km"`` (WGS 84 centre, radius in kilometres)."""

    @field_validator("polygons")
    @classmethod
    def _valid_polygons(cls, value: list[str]) -> list[str]:
        return [_check_polygon(p) for p in value]

    @field_validator("circles")
    @classmethod
    def _valid_circles(cls, value: list[str]) -> list[str]:
        return [_check_circle(c) for c in value]


class CapDefaults(BaseModel):
    """Per-playbook CAP defaults: everything in an ``<info>`` block except the texts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: str = Field(min_length=1)
    """The type of event, e.g. ``Flom`` or ``Skogbrann``."""
    category: list[CapCategory] = Field(min_length=1)
    """One or more CAP categories (at least one is required by the schema)."""
    urgency: CapUrgency
    """How soon responsive action should be taken."""
    severity: CapSeverity
    """How severe the event is."""
    certainty: CapCertainty
    """How certain the event is."""
    area: CapArea
    """The affected area."""
    response_type: list[CapResponseType] = []
    """Recommended actions for the public (``responseType``)."""
    sender_name: str | None = None
    """Human-readable sender (``senderName``), e.g. ``Hattfjelldal kommune``."""


# --- identifiers, times, languages -------------------------------------------------------

_FORBIDDEN_ID_CHARS = re.compile(r"[\s,<&]")
"""CAP 1.2: identifier and sender must not contain spaces, commas, ``<`` or ``&``."""

_LANGUAGE = re.compile(r"^[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*$")
"""The ``xs:language`` lexical form (RFC 3066 / BCP 47 shape)."""

_SHORT_LANGUAGES: dict[str, str] = {
    "nb": "nb-NO",
    "nn": "nn-NO",
    "no": "nb-NO",
    "en": "en-US",
    "se": "se-NO",
    "sma": "sma",
    "smj": "smj",
}
"""krise's short language codes and the CAP ``language`` tag each maps to."""


def _check_cap_id(value: str, what: str) -> str:
    """Reject CAP identifiers/senders that are empty or contain forbidden characters."""
    if not value:
        raise ValueError(f"CAP {what} must not be empty")
    if _FORBIDDEN_ID_CHARS.search(value):
        raise ValueError(f"CAP {what} {value!r} must not contain spaces, commas, '<' or '&'")
    return value


def cap_language(code: str) -> str:
    """Map a krise language code to a CAP ``language`` tag.

    Short codes are expanded (``nb`` → ``nb-NO``, ``nn`` → ``nn-NO``, ``en`` → ``en-US``,
    ``se`` → ``se-NO``); South and Lule Sami (``sma``, ``smj``) stay as they are, since
    they are written on both sides of the border. Any other well-formed tag (``en-GB``,
    ``sv-SE``) passes through unchanged.
    """
    tag = code.strip()
    mapped = _SHORT_LANGUAGES.get(tag.lower())
    if mapped is not None:
        return mapped
    if not _LANGUAGE.fullmatch(tag):
        raise ValueError(f"{code!r} is not a language tag (e.g. 'nb-NO', 'sma', 'en-US')")
    return tag


def format_cap_time(value: datetime) -> str:
    """Format an aware datetime as CAP 1.2 wants it: ``2026-11-27T10:00:00-00:00``.

    The datetime keeps its own offset; a zero offset (UTC) is written ``-00:00`` per the
    CAP convention, never ``Z``. Fractional seconds are dropped (the schema's pattern has
    none). Naive datetimes, and offsets that are not whole minutes, are rejected.
    """
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"CAP times must be timezone-aware, got naive {value.isoformat()}")
    if offset % timedelta(minutes=1):
        raise ValueError(f"CAP time offsets must be whole minutes, got {offset}")
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes > 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{value.replace(microsecond=0, tzinfo=None).isoformat()}{sign}{hours:02d}:{mins:02d}"


def cap_identifier(org_number: str, version_id: str, *, suffix: str | None = None) -> str:
    """A stable CAP identifier for one message version of one municipality.

    The form is ``no.kommune.<org_number>.krise.<first 16 characters of version_id>``,
    e.g. ``no.kommune.1826.krise.3f2a9c0d1e4b5a67`` for Hattfjelldal. ``version_id`` is the
    SHA-256 of the approved message (the id every channel carries), so drafting the request
    twice for the same message gives the same identifier, and the identifier points back to
    the journal entry. 16 hex characters (64 bits) keep it short but collision-free in
    practice. An Update or Cancel is a *new* CAP message and needs its own identifier: for a
    new message version that comes naturally; a Cancel of the same version passes
    ``suffix`` (e.g. ``"cancel"``), giving ``...krise.<prefix>.cancel``.
    """
    org = org_number.strip()
    if not org.isdigit() or not org.isascii():
        raise ValueError(f"org_number must be digits (e.g. '1826'), got {org_number!r}")
    prefix = version_id.strip().lower()[:16]
    if not prefix or not re.fullmatch(r"[0-9a-z_-]+", prefix):
        raise ValueError(f"version_id {version_id!r} is not a usable id")
    identifier = f"no.kommune.{org}.krise.{prefix}"
    if suffix is not None:
        identifier = f"{identifier}.{suffix}"
    return _check_cap_id(identifier, "identifier")


# --- message parts ---------------------------------------------------------------------


class CapReference(BaseModel):
    """An earlier CAP message referred to by an Update, Cancel, Ack or Error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sender: str
    """The earlier message's ``sender``."""
    identifier: str
    """The earlier message's ``identifier``."""
    sent: datetime
    """The earlier message's ``sent`` time (timezone-aware)."""

    @field_validator("sender", "identifier")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return _check_cap_id(value, "reference sender/identifier")

    @field_validator("sent")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        format_cap_time(value)
        return value

    def cap_text(self) -> str:
        """The reference as CAP writes it: ``sender,identifier,sent``."""
        return f"{self.sender},{self.identifier},{format_cap_time(self.sent)}"


class CapInfoText(BaseModel):
    """The texts of one ``<info>`` block: one per language."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    language: str
    """CAP language tag; short krise codes are mapped by :func:`cap_language`."""
    headline: str = Field(min_length=1)
    """Short headline (keep it under about 160 characters for onward channels)."""
    description: str = Field(min_length=1)
    """What is happening."""
    instruction: str | None = None
    """What people should do, if anything."""
    event: str | None = None
    """The event type in this language; :attr:`CapDefaults.event` when ``None``."""

    @field_validator("language")
    @classmethod
    def _map_language(cls, value: str) -> str:
        return cap_language(value)


# --- the alert -------------------------------------------------------------------------

_NEEDS_REFERENCES = frozenset(
    {CapMsgType.UPDATE, CapMsgType.CANCEL, CapMsgType.ACK, CapMsgType.ERROR}
)
_NEEDS_INFO = frozenset({CapMsgType.ALERT, CapMsgType.UPDATE})


_NOT_XML = re.compile("[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\ud800-\\udfff\\ufffe\\uffff]")
"""Characters outside XML 1.0's ``Char``: ElementTree would write them, and every XML
parser (the police's included) would then reject the whole document."""


def _sub(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    """Append a CAP-namespaced child ``name`` with optional ``text``."""
    child = ET.SubElement(parent, f"{{{CAP_NAMESPACE}}}{name}")
    if text is not None:
        child.text = _NOT_XML.sub("", text)
    return child


def _area(parent: ET.Element, area: CapArea) -> None:
    """Append an ``<area>`` in schema order: areaDesc, polygon*, circle*, geocode*."""
    element = _sub(parent, "area")
    _sub(element, "areaDesc", area.area_desc)
    for polygon in area.polygons:
        _sub(element, "polygon", polygon)
    for circle in area.circles:
        _sub(element, "circle", circle)
    for geocode in area.geocodes:
        code = _sub(element, "geocode")
        _sub(code, "valueName", geocode.value_name)
        _sub(code, "value", geocode.value)


def _info(
    parent: ET.Element,
    text: CapInfoText,
    defaults: CapDefaults,
    web: str | None,
    expires: datetime | None,
) -> None:
    """Append one ``<info>`` block in schema order."""
    info = _sub(parent, "info")
    _sub(info, "language", text.language)
    for category in defaults.category:
        _sub(info, "category", category.value)
    _sub(info, "event", text.event or defaults.event)
    for response in defaults.response_type:
        _sub(info, "responseType", response.value)
    _sub(info, "urgency", defaults.urgency.value)
    _sub(info, "severity", defaults.severity.value)
    _sub(info, "certainty", defaults.certainty.value)
    if expires is not None:
        _sub(info, "expires", format_cap_time(expires))
    if defaults.sender_name is not None:
        _sub(info, "senderName", defaults.sender_name)
    _sub(info, "headline", text.headline)
    _sub(info, "description", text.description)
    if text.instruction is not None:
        _sub(info, "instruction", text.instruction)
    if web is not None:
        _sub(info, "web", web)
    _area(info, defaults.area)


def build_cap_alert(
    *,
    identifier: str,
    sender: str,
    sent: datetime,
    status: CapStatus,
    msg_type: CapMsgType,
    scope: CapScope = CapScope.PUBLIC,
    references: list[CapReference] | None = None,
    infos: list[CapInfoText],
    defaults: CapDefaults,
    web: str | None = None,
    note: str | None = None,
    expires: datetime | None = None,
    restriction: str | None = None,
    addresses: str | None = None,
) -> str:
    """Build a CAP 1.2 ``<alert>`` (a warning *request* to the police) as XML text.

    One ``<info>`` block is written per entry in ``infos`` (one per language, in the given
    order), each carrying ``defaults`` (category, event, urgency, severity, certainty,
    responseType, senderName, area) plus ``web`` and ``expires``. ``note`` defaults to
    :data:`CAP_REQUEST_NOTE`; a caller-supplied note replaces it. ``references`` are
    required for Update, Cancel, Ack and Error; ``restriction`` for scope Restricted and
    ``addresses`` for scope Private. Raises :class:`ValueError` on any of these, on
    duplicate languages, on a naive time, or on an identifier/sender with spaces, commas,
    ``<`` or ``&``. The result is UTF-8 XML text with an XML declaration.
    """
    refs = list(references or [])
    _check_cap_id(identifier, "identifier")
    _check_cap_id(sender, "sender")
    if msg_type in _NEEDS_REFERENCES and not refs:
        raise ValueError(
            f"a CAP {msg_type.value} must reference the message(s) it updates or cancels "
            "(references=[CapReference(sender=..., identifier=..., sent=...)])"
        )
    if msg_type in _NEEDS_INFO and not infos:
        raise ValueError(f"a CAP {msg_type.value} needs at least one info text")
    languages = [text.language for text in infos]
    duplicates = sorted({lang for lang in languages if languages.count(lang) > 1})
    if duplicates:
        raise ValueError(f"one info block per language; duplicated: {', '.join(duplicates)}")
    if scope is CapScope.RESTRICTED and not restriction:
        raise ValueError("scope Restricted needs a restriction text")
    if scope is CapScope.PRIVATE and not addresses:
        raise ValueError("scope Private needs addresses")
    if web is not None and (not re.match(r"^https?://", web) or re.search(r"\s", web)):
        raise ValueError(f"web must be an absolute http(s) URL without spaces, got {web!r}")

    alert = ET.Element(f"{{{CAP_NAMESPACE}}}alert")
    _sub(alert, "identifier", identifier)
    _sub(alert, "sender", sender)
    _sub(alert, "sent", format_cap_time(sent))
    _sub(alert, "status", status.value)
    _sub(alert, "msgType", msg_type.value)
    _sub(alert, "scope", scope.value)
    if restriction:
        _sub(alert, "restriction", restriction)
    if addresses:
        _sub(alert, "addresses", addresses)
    _sub(alert, "note", CAP_REQUEST_NOTE if note is None else note)
    if refs:
        _sub(alert, "references", " ".join(ref.cap_text() for ref in refs))
    for text in infos:
        _info(alert, text, defaults, web, expires)

    ET.indent(alert, space="  ")
    body = ET.tostring(alert, encoding="unicode", default_namespace=CAP_NAMESPACE)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
