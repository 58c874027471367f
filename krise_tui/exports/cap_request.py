"""A CAP 1.2 warning *request* for an approved message version (``krise cap export``).

Maps an approved version, the org file and the playbook's CAP defaults onto
:func:`krise_tui.wire.cap.build_cap_alert`: one ``info`` block per written language,
``Alert`` for a first message, ``Update``/``Cancel`` (with ``references`` to the version
it replaces) for an update or a retraction, status ``Exercise`` in drills. Public
warning by cell broadcast (Nødvarsel) is sent only by the police: krise drafts the
request, and says so in the alert's ``note``.

The area is the municipality's own, from the org file (:func:`cap_area`): its name, its
municipality number as a ``kommunenummer`` geocode, and its outline when the org file
has one. A playbook may only narrow it (a named sub-area, shapes inside the outline);
a playbook that names another municipality is refused here as it is by
``krise playbook check --org``.

:func:`build_cap_request` is pure: it takes plain inputs (:class:`CapMessage`, built by
the caller from whatever state it keeps) and returns the XML together with a short
summary for a preview (:class:`CapRequest`). :func:`cap_message` builds that input from
the core's state (anything shaped like its messages slice, :class:`VersionStore`), and
:func:`cap_request` does both and returns the XML, for the CLI. This module does not
import the core: it reads the state through those small protocols.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from krise_tui.playbook.models import MUNICIPALITY_GEOCODE, Org, Playbook, format_loc
from krise_tui.timefmt import format_datetime
from krise_tui.wire.cap import (
    CapArea,
    CapDefaults,
    CapGeocode,
    CapInfoText,
    CapMsgType,
    CapReference,
    CapStatus,
    build_cap_alert,
    cap_identifier,
)

MSG_TYPES = {
    "published": CapMsgType.ALERT,
    "updated": CapMsgType.UPDATE,
    "retracted": CapMsgType.CANCEL,
}
"""A version's status → the CAP ``msgType`` of the request for it."""


class CapExportError(ValueError):
    """The request cannot be drafted (no such version, no CAP defaults, a wrong area…)."""


@dataclass(frozen=True, slots=True)
class CapText:
    """One language of the approved version."""

    lang: str
    """krise language code (``nb``, ``sma``, ``en``); mapped to a CAP tag."""
    headline: str
    """The headline (may be empty: the body's start is used)."""
    body: str
    """The body; a language with an empty body gets no ``info`` block."""


@dataclass(frozen=True, slots=True)
class CapPrevious:
    """The version an update or retraction replaces: the request references it."""

    version_id: str
    """Its version id (its CAP identifier is derived from it)."""
    sent: datetime
    """When it was published (timezone-aware): the referenced message's ``sent``."""


@dataclass(frozen=True, slots=True)
class CapMessage:
    """What a CAP request needs of one approved version."""

    version_id: str
    """The version's id (SHA-256 hex); the CAP identifier is derived from it."""
    status: str
    """``published``, ``updated`` or ``retracted`` (→ Alert, Update, Cancel)."""
    texts: Sequence[CapText]
    """The written languages, ``nb`` first."""
    previous: CapPrevious | None = None
    """The version it replaces; required for ``updated`` and ``retracted``."""


@dataclass(frozen=True, slots=True)
class CapRequest:
    """A drafted request: the XML to hand to the police, and what a preview shows."""

    xml: str
    """The CAP 1.2 document (UTF-8 text with an XML declaration), valid against the XSD."""
    identifier: str
    """CAP ``identifier``, ``no.kommune.<number>.krise.<version prefix>``."""
    sender: str
    """CAP ``sender``, ``krise@<the municipality's domain>``."""
    status: str
    """CAP ``status``: ``Actual``, or ``Exercise`` in a drill."""
    msg_type: str
    """CAP ``msgType``: ``Alert``, ``Update`` or ``Cancel``."""
    headline: str
    """The first (``nb``) info block's headline."""
    languages: tuple[str, ...]
    """CAP language tags of the info blocks, in order (``nb-NO``, ``sma``, ``en-US``)."""
    area_desc: str
    """CAP ``areaDesc``."""
    geocodes: tuple[tuple[str, str], ...]
    """CAP geocodes as ``(valueName, value)``: ``(("kommunenummer", "9999"),)``."""
    polygons: tuple[str, ...]
    """CAP polygons of the area."""
    circles: tuple[str, ...]
    """CAP circles of the area."""
    sent: datetime
    """CAP ``sent`` (UTC; the XML writes it ``…-00:00``)."""
    sent_local: str
    """``sent`` as the org's people read it, ``27.11.2026 kl. 11:00``."""
    references: tuple[str, ...]
    """CAP ``references`` entries (``sender,identifier,sent``) for an Update/Cancel."""

    def summary_lines(self) -> list[str]:
        """The preview in Norwegian, one fact per line (what the confirm dialog shows)."""
        codes = ", ".join(f"{name} {value}" for name, value in self.geocodes) or "ingen"
        lines = [
            "ANMODNING om varsling til politiet – bare politiet sender Nødvarsel.",
            f"Type: {self.msg_type} · status: {self.status}",
            f"Overskrift: {self.headline}",
            f"Område: {self.area_desc} (geokode: {codes})",
        ]
        if self.polygons or self.circles:
            lines.append(
                f"Former: {len(self.polygons)} polygon(er), {len(self.circles)} sirkel(er)"
            )
        lines.append(f"Språk: {', '.join(self.languages)}")
        lines.append(f"Sendt: {self.sent_local}")
        if self.references:
            lines.append(f"Viser til: {'; '.join(self.references)}")
        return lines


def cap_sender(org: Org) -> str:
    """The ``sender`` of the municipality's CAP messages (no spaces or commas)."""
    host = urlsplit(str(org.website)).hostname or f"{org.slug}.kommune.no"
    return f"krise@{host.removeprefix('www.')}"


def cap_area(org: Org, playbook: Playbook) -> CapArea:
    """The area of a request: the org file's, narrowed by the playbook when it says so.

    - no ``cap.area`` in the playbook: ``areaDesc`` is the org's area name, the geocode
      its municipality number, plus the org's outline if it has one;
    - a named sub-area without shapes: ``areaDesc`` is ``"<sub-area>, <org area>"``;
      geocode and outline stay the municipality's (the request still covers it all,
      the words say where in it);
    - a sub-area with shapes: ``areaDesc`` as above and only the playbook's shapes, which
      lie inside the org's outline. The geocode is left out, because CAP 1.2 takes an
      area as the union of all its polygons, circles and geocodes: the municipality
      number would widen the area back to the whole municipality.

    Raises :class:`CapExportError` when the playbook's area does more than narrow
    (:meth:`~krise_tui.playbook.models.Playbook.cap_area_issues`).
    """
    issues = playbook.cap_area_issues(org)
    if issues:
        raise CapExportError(
            f"playbook {playbook.id}: "
            + "; ".join(f"{format_loc(issue.loc)}: {issue.message}" for issue in issues)
        )
    whole = org.area_name
    municipality = CapGeocode(value_name=MUNICIPALITY_GEOCODE, value=org.municipality_number)
    sub = playbook.cap.area if playbook.cap is not None else None
    if sub is None:
        return CapArea(
            area_desc=whole,
            geocodes=[municipality],
            polygons=list(org.area.polygons),
            circles=list(org.area.circles),
        )
    # "Sentrum, Eksempel kommune" — unless the playbook already wrote the name out.
    desc = sub.area_desc.strip()
    if whole.casefold() not in desc.casefold():
        desc = f"{desc}, {whole}"
    if sub.has_shapes:
        return CapArea(area_desc=desc, polygons=list(sub.polygons), circles=list(sub.circles))
    return CapArea(
        area_desc=desc,
        geocodes=[municipality],
        polygons=list(org.area.polygons),
        circles=list(org.area.circles),
    )


def _defaults(org: Org, playbook: Playbook) -> CapDefaults:
    cap = playbook.cap
    if cap is None:
        raise CapExportError(f"playbook {playbook.id} has no cap: section")
    return CapDefaults(
        event=cap.event.get("nb") or next(iter(cap.event.values())),
        category=list(cap.category),
        urgency=cap.urgency,
        severity=cap.severity,
        certainty=cap.certainty,
        area=cap_area(org, playbook),
        sender_name=org.name,
    )


def build_cap_request(
    message: CapMessage,
    *,
    org: Org,
    playbook: Playbook,
    sent: datetime,
    exercise: bool = False,
) -> CapRequest:
    """Draft the CAP 1.2 request for ``message`` (pure: no I/O, no clock).

    ``sent`` must be timezone-aware; it is written in UTC (``2026-11-27T10:00:00-00:00``,
    DOMAIN rule 25) and shown in the org's time zone in :attr:`CapRequest.sent_local`.
    ``exercise`` gives status ``Exercise``. Raises :class:`CapExportError` when the
    playbook has no ``cap:`` section, its area does more than narrow the org's, an update
    or retraction lacks ``previous``, no language has a body, or the inputs cannot make
    a valid CAP message.
    """
    if sent.tzinfo is None or sent.utcoffset() is None:
        raise CapExportError(f"sent must be timezone-aware, got {sent.isoformat()}")
    defaults = _defaults(org, playbook)
    sender = cap_sender(org)
    number = org.municipality_number
    msg_type = MSG_TYPES.get(message.status, CapMsgType.ALERT)
    references: list[CapReference] = []
    if message.previous is not None:
        references.append(
            CapReference(
                sender=sender,
                identifier=cap_identifier(number, message.previous.version_id),
                sent=message.previous.sent.astimezone(UTC),
            )
        )
    elif msg_type is not CapMsgType.ALERT:
        raise CapExportError(
            f"a {message.status} version needs the version it replaces (previous=…)"
        )
    events = playbook.cap.event if playbook.cap is not None else {}
    try:
        infos = [
            CapInfoText(
                language=text.lang,
                headline=text.headline.strip() or text.body.strip()[:80],
                description=text.body,
                event=events.get(text.lang),
            )
            for text in message.texts
            if text.body.strip()
        ]
        if not infos:
            raise CapExportError(f"version {message.version_id[:8]} has no text to send")
        identifier = cap_identifier(number, message.version_id)
        status = CapStatus.EXERCISE if exercise else CapStatus.ACTUAL
        utc_sent = sent.astimezone(UTC)
        xml = build_cap_alert(
            identifier=identifier,
            sender=sender,
            sent=utc_sent,
            status=status,
            msg_type=msg_type,
            references=references,
            infos=infos,
            defaults=defaults,
            web=str(org.website),
        )
    except CapExportError:
        raise
    except ValueError as exc:  # pydantic's ValidationError is a ValueError too
        raise CapExportError(f"cannot draft the CAP request: {exc}") from exc
    area = defaults.area
    return CapRequest(
        xml=xml,
        identifier=identifier,
        sender=sender,
        status=status.value,
        msg_type=msg_type.value,
        headline=infos[0].headline,
        languages=tuple(info.language for info in infos),
        area_desc=area.area_desc,
        geocodes=tuple((g.value_name, g.value) for g in area.geocodes),
        polygons=tuple(area.polygons),
        circles=tuple(area.circles),
        sent=utc_sent,
        sent_local=format_datetime(utc_sent, org.timezone, "nb"),
        references=tuple(ref.cap_text() for ref in references),
    )


class VersionLike(Protocol):
    """What :func:`cap_message` reads of an approved version in the core's state."""

    @property
    def version_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def supersedes(self) -> str | None: ...
    @property
    def variants(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def approved_at(self) -> datetime: ...
    @property
    def published_at(self) -> datetime | None: ...


class VersionStore(Protocol):
    """Where approved versions are kept (the core state's messages slice)."""

    @property
    def versions(self) -> Mapping[str, VersionLike]: ...
    @property
    def published_version(self) -> str | None: ...


@runtime_checkable
class HasMessages(Protocol):
    """A state whose ``messages`` slice keeps the versions."""

    @property
    def messages(self) -> VersionStore: ...


def cap_message(store: VersionStore, version_id: str | None = None) -> CapMessage:
    """The :class:`CapMessage` of ``version_id`` (a unique prefix; default: published).

    ``store`` is anything with ``versions`` and ``published_version`` (the state's
    messages slice). Raises :class:`CapExportError` when no single approved version
    matches, or the version it replaces is unknown.
    """
    wanted = version_id or store.published_version
    version: VersionLike | None = None
    if wanted is not None:
        matches = [v for k, v in store.versions.items() if k.startswith(wanted)]
        version = matches[0] if len(matches) == 1 else None
    if version is None:
        raise CapExportError(f"no single approved version matches {wanted!r}")
    previous = None
    if version.supersedes is not None:
        earlier = store.versions.get(version.supersedes)
        if earlier is None:
            raise CapExportError(f"version {version.supersedes[:8]} it replaces is unknown")
        previous = CapPrevious(
            version_id=earlier.version_id, sent=earlier.published_at or earlier.approved_at
        )
    texts = tuple(
        CapText(
            lang=str(v["lang"]),
            headline=str(v.get("headline") or ""),
            body=str(v.get("body") or ""),
        )
        for v in version.variants
    )
    return CapMessage(
        version_id=version.version_id, status=version.status, texts=texts, previous=previous
    )


def cap_request(
    state: VersionStore | HasMessages,
    *,
    org: Org,
    playbook: Playbook,
    version_id: str | None = None,
    sent: datetime,
    exercise: bool = False,
) -> str:
    """CAP 1.2 XML for ``version_id`` (default: the published version) of ``state``.

    ``state`` is the core state (its ``messages`` slice is used) or the slice itself.
    """
    store = state.messages if isinstance(state, HasMessages) else state
    message = cap_message(store, version_id)
    return build_cap_request(message, org=org, playbook=playbook, sent=sent, exercise=exercise).xml
