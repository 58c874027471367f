"""One-line, human descriptions of events for the journal view and exports (nb / en)."""

from __future__ import annotations

from krise_tui.core.events import (
    ApprovalBlocked,
    CurrentMessageSet,
    DeliveryRetried,
    DraftSaved,
    EventBase,
    FreezeChanged,
    InboundReceived,
    InboundRejected,
    IncidentOpened,
    MessageApproved,
    MessagePublished,
    OutboxAttemptFailed,
    OutboxConfirmed,
    OutboxRequested,
    PlaybookActivated,
    PresenceChanged,
    RemindersSent,
)


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(event: EventBase, lang: str = "nb") -> str:
    """A short sentence saying what ``event`` recorded."""
    nb = lang != "en"
    match event:
        case IncidentOpened():
            return (
                f"Hendelse åpnet: {event.title} (nivå {event.level})"
                if nb
                else f"Incident opened: {event.title} (level {event.level})"
            )
        case CurrentMessageSet():
            head = "Gjeldende budskap" if nb else "Current message"
            return f"{head} v{event.version_id[:8]}: «{_short(event.text)}»"
        case OutboxRequested():
            return f"Sending bestilt: {event.topic}" if nb else f"Delivery requested: {event.topic}"
        case OutboxConfirmed():
            return (
                f"Bekreftet levert ({event.effect_id[:8]})"
                if nb
                else f"Delivery confirmed ({event.effect_id[:8]})"
            )
        case OutboxAttemptFailed():
            return (
                f"Forsøk {event.attempt} feilet: {_short(event.reason)}"
                if nb
                else f"Attempt {event.attempt} failed: {_short(event.reason)}"
            )
        case InboundReceived():
            text = str(event.body.get("text", "")) if event.kind == "post" else event.key
            where = event.channel or event.topic
            return f"{'Innkommende' if nb else 'Inbound'} {event.kind} ({where}): {_short(text)}"
        case InboundRejected():
            return f"{'Avvist' if nb else 'Rejected'}: {_short(event.reason, 90)}"
        case DraftSaved():
            return (
                f"Utkast lagret ({event.draft_id[:8]}, {event.status})"
                if nb
                else f"Draft saved ({event.draft_id[:8]}, {event.status})"
            )
        case MessageApproved():
            glass = " – NØDPROSEDYRE" if event.break_glass_reason else ""
            head = "Godkjent" if nb else "Approved"
            return f"{head} v{event.version_id[:8]} av {event.approver}{glass}"
        case ApprovalBlocked():
            head = "Godkjenning stoppet" if nb else "Approval blocked"
            return f"{head}: {', '.join(event.codes)}"
        case MessagePublished():
            head = "Publisert" if nb else "Published"
            return f"{head} v{event.version_id[:8]} til {len(event.channels)} kanaler"
        case DeliveryRetried():
            return f"{'Sendes på nytt' if nb else 'Retry'} ({event.effect_id[:8]})"
        case PlaybookActivated():
            head = "Drejebok i bruk" if nb else "Playbook in use"
            return f"{head}: {event.title} ({event.playbook_id}, {event.hash[:8]})"
        case FreezeChanged():
            words = {
                "freeze": ("Publisering fryst", "Posting frozen"),
                "extend": ("Frys forlenget", "Freeze extended"),
                "update": ("Frysmelding oppdatert", "Freeze notice updated"),
                "lift": ("Frys opphevet", "Freeze lifted"),
            }[str(event.action)]
            scope = ", ".join(event.departments) or ("alle ansatte" if nb else "all staff")
            return f"{words[0] if nb else words[1]} ({scope}): {_short(event.reason)}"
        case RemindersSent():
            n = len(event.staff_ids)
            return f"Påminnelse sendt til {n} terminaler" if nb else f"Reminder sent to {n}"
        case PresenceChanged():
            state = (
                ("tilkoblet" if nb else "online")
                if event.online
                else ("frakoblet" if nb else "offline")
            )
            return f"{event.role} {event.member_id}: {state}"
    return type(event).__name__
