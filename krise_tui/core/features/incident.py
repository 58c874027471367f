"""The incident itself: opening it, and which playbook (version) the console follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from krise_tui.core.kernel import Accepted, Context, Decision, EventBase, Rejection
from krise_tui.core.registry import Feature

if TYPE_CHECKING:
    from krise_tui.core.state import IncidentState

feature = Feature("incident")


# --- state ---------------------------------------------------------------------------


@dataclass
class IncidentSlice:
    """The incident's identity and the playbook in force."""

    org: str = ""
    incident_id: str = ""
    title: str = ""
    level: int = 0
    opened_at: datetime | None = None
    opened_by: str = ""
    playbook_id: str | None = None
    playbook_hash: str | None = None
    playbook_title: str | None = None
    playbook_path: str | None = None
    exercise: bool = False
    """Opened by a drill's console: an exercise, and everything it sent says so."""
    operators: dict[str, datetime] = field(default_factory=dict)
    """Operator id -> when they last signed in at a console."""
    checklist_done: dict[str, str] = field(default_factory=dict)
    """Checklist item id -> who marked it done."""


# --- commands ------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenIncident:
    """Open the incident (once)."""

    title: str
    level: int = 1


@dataclass(frozen=True)
class ActivatePlaybook:
    """Follow this playbook (version) from now on."""

    playbook_id: str
    title: str
    hash: str
    path: str


@dataclass(frozen=True)
class SignIn:
    """An operator signs in at the console (the runtime checked the passphrase)."""

    operator: str


@dataclass(frozen=True)
class MarkChecklistItem:
    """A checklist item from the playbook is done."""

    item_id: str


# --- events --------------------------------------------------------------------------


@feature.event
class IncidentOpened(EventBase):
    """The crisis leadership opened an incident."""

    type: Literal["incident.opened"] = "incident.opened"
    title: str
    level: int = 1
    exercise: bool = False
    """Opened by a console in exercise mode (a drill, the demo)."""


@feature.event
class PlaybookActivated(EventBase):
    """A playbook (version) became the one the console follows."""

    type: Literal["playbook.activated"] = "playbook.activated"
    playbook_id: str
    title: str
    hash: str
    """SHA-256 of the playbook file: every later journal row records it too."""
    path: str


@feature.event
class OperatorSignedIn(EventBase):
    """Who is at the console from now on (actor = the operator)."""

    type: Literal["operator.signed_in"] = "operator.signed_in"
    operator: str


@feature.event
class ChecklistItemDone(EventBase):
    """A playbook checklist item was done (actor = who marked it)."""

    type: Literal["checklist.done"] = "checklist.done"
    item_id: str


# --- decide --------------------------------------------------------------------------


@feature.decides(OpenIncident)
def open_incident(state: IncidentState, cmd: OpenIncident, ctx: Context) -> Decision:
    """Open the incident once, with a title and a level 1–5."""
    if state.is_open:
        return Rejection(
            f"incident {state.incident.incident_id} is already open",
            f"hendelsen {state.incident.incident_id} er allerede åpnet",
        )
    title = " ".join(cmd.title.split())
    if not title:
        return Rejection("an incident needs a title", "en hendelse trenger en tittel")
    if not 1 <= cmd.level <= 5:
        return Rejection(
            f"level must be 1-5, not {cmd.level}", f"nivå må være 1–5, ikke {cmd.level}"
        )
    base = ctx.base(state)
    base["incident_id"] = ctx.incident_id
    return Accepted(
        [IncidentOpened(**base, title=title, level=cmd.level, exercise=ctx.policy.exercise)]
    )


@feature.decides(ActivatePlaybook)
def activate_playbook(state: IncidentState, cmd: ActivatePlaybook, ctx: Context) -> Decision:
    """Record the playbook version in force (nothing when it is the same one)."""
    if state.incident.playbook_hash == cmd.hash:
        return Accepted([])
    return Accepted(
        [
            PlaybookActivated(
                **ctx.base(state),
                playbook_id=cmd.playbook_id,
                title=cmd.title,
                hash=cmd.hash,
                path=cmd.path,
            )
        ]
    )


@feature.decides(SignIn)
def sign_in(state: IncidentState, cmd: SignIn, ctx: Context) -> Decision:
    """Journal who is at the console (the org file knows them: the runtime checked)."""
    if ctx.policy.operators and cmd.operator not in ctx.policy.operators:
        return Rejection(
            f"{cmd.operator!r} is not an operator in the org file",
            f"{cmd.operator!r} er ikke operatør i org-fila",
        )
    base = ctx.base(state)
    base["actor"] = cmd.operator
    return Accepted([OperatorSignedIn(**base, operator=cmd.operator)])


@feature.decides(MarkChecklistItem)
def mark_checklist(state: IncidentState, cmd: MarkChecklistItem, ctx: Context) -> Decision:
    """Mark a checklist item done (once)."""
    if not state.is_open:
        return Rejection("open an incident first", "åpne en hendelse først")
    if cmd.item_id in state.incident.checklist_done:
        return Accepted([])
    return Accepted([ChecklistItemDone(**ctx.base(state), item_id=cmd.item_id)])


# --- fold ----------------------------------------------------------------------------


@feature.applies(IncidentOpened)
def _opened(state: IncidentState, event: IncidentOpened) -> None:
    inc = state.incident
    inc.incident_id = event.incident_id
    inc.title = event.title
    inc.level = event.level
    inc.opened_at = event.ts
    inc.opened_by = event.actor
    inc.exercise = event.exercise


@feature.applies(PlaybookActivated)
def _activated(state: IncidentState, event: PlaybookActivated) -> None:
    inc = state.incident
    inc.playbook_id = event.playbook_id
    inc.playbook_hash = event.hash
    inc.playbook_title = event.title
    inc.playbook_path = event.path


@feature.applies(OperatorSignedIn)
def _signed_in(state: IncidentState, event: OperatorSignedIn) -> None:
    state.incident.operators[event.operator] = event.ts


@feature.applies(ChecklistItemDone)
def _checked(state: IncidentState, event: ChecklistItemDone) -> None:
    state.incident.checklist_done[event.item_id] = event.actor


# --- describe ------------------------------------------------------------------------


@feature.describes(IncidentOpened)
def _d_opened(event: IncidentOpened, lang: str) -> str:
    if lang == "en":
        drill = ", an exercise" if event.exercise else ""
        return f"Incident opened: {event.title} (level {event.level}{drill})"
    drill = ", øvelse" if event.exercise else ""
    return f"Hendelse åpnet: {event.title} (nivå {event.level}{drill})"


@feature.describes(PlaybookActivated)
def _d_activated(event: PlaybookActivated, lang: str) -> str:
    head = "Playbook in use" if lang == "en" else "Dreiebok i bruk"
    return f"{head}: {event.title} ({event.playbook_id}, {event.hash[:8]})"


@feature.describes(OperatorSignedIn)
def _d_signed_in(event: OperatorSignedIn, lang: str) -> str:
    return f"{event.operator} {'signed in' if lang == 'en' else 'logget inn'}"


@feature.describes(ChecklistItemDone)
def _d_checked(event: ChecklistItemDone, lang: str) -> str:
    head = "Checklist done" if lang == "en" else "Sjekkpunkt utført"
    return f"{head}: {event.item_id}"
