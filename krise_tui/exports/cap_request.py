"""A CAP 1.2 warning *request* for an approved message version (``krise cap export``).

Maps a journaled version and the playbook's CAP defaults onto
:func:`krise_tui.exports.cap.build_cap_alert`: one ``info`` block per written
language, ``Alert`` for a first message, ``Update``/``Cancel`` (with ``references`` to
the version it replaces) for an update or a retraction, status ``Exercise`` in drills.
Public warning by cell broadcast (Nødvarsel) is sent only by the police: krise drafts
the request, and says so in the alert's ``note``.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from krise_tui.core.state import IncidentState, Version
from krise_tui.exports.cap import (
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
from krise_tui.playbook.models import Org, Playbook

MSG_TYPES = {
    "published": CapMsgType.ALERT,
    "updated": CapMsgType.UPDATE,
    "retracted": CapMsgType.CANCEL,
}


class CapExportError(ValueError):
    """The request cannot be drafted (no such version, no CAP defaults…)."""


def cap_sender(org: Org) -> str:
    """The ``sender`` of the municipality's CAP messages (no spaces or commas)."""
    host = urlsplit(str(org.website)).hostname or f"{org.slug}.kommune.no"
    return f"krise@{host.removeprefix('www.')}"


def _defaults(playbook: Playbook) -> CapDefaults:
    cap = playbook.cap
    if cap is None:
        raise CapExportError(f"playbook {playbook.id} has no cap: section")
    return CapDefaults(
        event=cap.event.get("nb") or next(iter(cap.event.values())),
        category=list(cap.category),
        urgency=cap.urgency,
        severity=cap.severity,
        certainty=cap.certainty,
        area=CapArea(
            area_desc=cap.area.area_desc,
            geocodes=[CapGeocode(value_name=g.name, value=g.value) for g in cap.area.geocodes],
            polygons=list(cap.area.polygons),
            circles=list(cap.area.circles),
        ),
    )


def cap_request(
    state: IncidentState,
    *,
    org: Org,
    playbook: Playbook,
    version_id: str | None = None,
    sent: datetime,
    exercise: bool = False,
) -> str:
    """CAP 1.2 XML for ``version_id`` (default: the published version)."""
    wanted = version_id or state.published_version
    version: Version | None = None
    if wanted is not None:
        matches = [v for k, v in state.versions.items() if k.startswith(wanted)]
        version = matches[0] if len(matches) == 1 else None
    if version is None:
        raise CapExportError(f"no single approved version matches {wanted!r}")
    sender = cap_sender(org)
    number = org.municipality_number
    references = []
    if version.supersedes is not None:
        earlier = state.versions.get(version.supersedes)
        if earlier is None:
            raise CapExportError(f"version {version.supersedes[:8]} it replaces is unknown")
        references.append(
            CapReference(
                sender=sender,
                identifier=cap_identifier(number, earlier.version_id),
                sent=earlier.published_at or earlier.approved_at,
            )
        )
    events = playbook.cap.event if playbook.cap is not None else {}
    infos = [
        CapInfoText(
            language=v["lang"],
            headline=v["headline"] or v["body"][:80],
            description=v["body"],
            event=events.get(v["lang"]),
        )
        for v in version.variants
        if v.get("body")
    ]
    return build_cap_alert(
        identifier=cap_identifier(number, version.version_id),
        sender=sender,
        sent=sent,
        status=CapStatus.EXERCISE if exercise else CapStatus.ACTUAL,
        msg_type=MSG_TYPES.get(version.status, CapMsgType.ALERT),
        references=references,
        infos=infos,
        defaults=_defaults(playbook),
        web=str(org.website),
    )
