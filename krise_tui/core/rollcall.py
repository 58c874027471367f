"""Roll-call: who has acknowledged the freeze, who has not yet, who is offline (pure).

Computed from the state (freeze, acks, presence) and the roster (staff id ->
department). With no roster (a demo without an org file) the roll-call covers every
staff terminal the console has heard from.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from krise_tui.core.state import IncidentState

NO_DEPARTMENT = "(uten avdeling)"


class StaffStatus(StrEnum):
    """A staff terminal's place in the roll-call."""

    ACKED = "acked"
    """Acknowledged the current freeze notice."""
    PENDING = "pending"
    """Online (the retained notice is delivered), not acknowledged yet."""
    OFFLINE = "offline"
    """Offline or never seen."""


STATUS_NB = {
    StaffStatus.ACKED: "kvittert",
    StaffStatus.PENDING: "ikke kvittert",
    StaffStatus.OFFLINE: "frakoblet",
}


@dataclass(frozen=True)
class StaffRow:
    """One staff terminal."""

    staff_id: str
    department: str
    status: StaffStatus
    since: datetime | None
    """Ack time, online-since, or last seen — depending on the status."""
    reminded_at: datetime | None = None


@dataclass
class DepartmentRow:
    """Counts for one department."""

    department: str
    rows: list[StaffRow] = field(default_factory=list)

    def count(self, status: StaffStatus) -> int:
        """How many of this department have ``status``."""
        return sum(1 for r in self.rows if r.status is status)


@dataclass
class RollCall:
    """The whole roll-call for the current freeze."""

    freeze_seq: int | None
    departments: list[DepartmentRow]

    def count(self, status: StaffStatus) -> int:
        """Total with ``status``."""
        return sum(d.count(status) for d in self.departments)

    @property
    def total(self) -> int:
        """Staff in scope."""
        return sum(len(d.rows) for d in self.departments)

    def ids(self, status: StaffStatus) -> list[str]:
        """Staff ids with ``status``."""
        return [r.staff_id for d in self.departments for r in d.rows if r.status is status]

    def to_csv(self) -> str:
        """The roll-call as CSV (one row per staff terminal)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["avdeling", "ansatt", "status", "siden", "påminnet"])
        for dept in self.departments:
            for row in dept.rows:
                writer.writerow(
                    [
                        dept.department,
                        row.staff_id,
                        STATUS_NB[row.status],
                        "" if row.since is None else row.since.isoformat(),
                        "" if row.reminded_at is None else row.reminded_at.isoformat(),
                    ]
                )
        return out.getvalue()


def roll_call(state: IncidentState, roster: Mapping[str, str | None] | None) -> RollCall:
    """Compute the roll-call for the current freeze."""
    freeze = state.freeze.current
    if roster is None:
        presence = state.inbound.presence
        seen = {key.split("/", 1)[1] for key in presence if key.startswith("staff/")}
        seen |= set(state.freeze.acks)
        roster = dict.fromkeys(sorted(seen))
    by_dept: dict[str, DepartmentRow] = {}
    for staff_id, department in sorted(roster.items()):
        if freeze is not None and not freeze.covers(department):
            continue
        dept_name = department or NO_DEPARTMENT
        row = by_dept.setdefault(dept_name, DepartmentRow(dept_name))
        key = f"staff/{staff_id}"
        ack = state.freeze.acks.get(staff_id)
        online = state.inbound.presence.get(key, False)
        since: datetime | None
        if freeze is not None and ack is not None and freeze.acknowledged_by(ack.seq):
            status, since = StaffStatus.ACKED, ack.at
        elif online:
            status, since = StaffStatus.PENDING, state.inbound.presence_at.get(key)
        else:
            status, since = StaffStatus.OFFLINE, state.inbound.presence_at.get(key)
        row.rows.append(
            StaffRow(staff_id, dept_name, status, since, state.freeze.reminders.get(staff_id))
        )
    return RollCall(
        freeze_seq=None if freeze is None else freeze.seq,
        departments=[by_dept[k] for k in sorted(by_dept)],
    )
