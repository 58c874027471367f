"""The topic layout of the bus (versioned, one tree per organisation).

| topic                                   | writer          | retained |
|-----------------------------------------|-----------------|----------|
| krise/v1/{org}/freeze                   | console         | yes      |
| krise/v1/{org}/message/current          | console         | yes      |
| krise/v1/{org}/channel/{ch}/out         | console         | no       |
| krise/v1/{org}/channel/{ch}/receipt     | bridge          | no       |
| krise/v1/{org}/channel/{ch}/in          | bridge, drill   | no       |
| krise/v1/{org}/staff/{id}/ack           | staff terminal  | no       |
| krise/v1/{org}/staff/{id}/remind        | console         | no       |
| krise/v1/{org}/presence/{role}/{id}     | everyone (will) | yes      |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "krise/v1"
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class TopicError(ValueError):
    """A topic segment is not allowed (wildcards, slashes, empty)."""


def _seg(value: str, what: str) -> str:
    if not _SEGMENT.match(value):
        raise TopicError(f"{what} {value!r} must be 1-64 of A-Z a-z 0-9 _ . -")
    return value


def freeze(org: str) -> str:
    """Retained, signed freeze state."""
    return f"{ROOT}/{_seg(org, 'org')}/freeze"


def message_current(org: str) -> str:
    """Retained, signed currently approved message."""
    return f"{ROOT}/{_seg(org, 'org')}/message/current"


def channel_out(org: str, channel: str) -> str:
    """Approved message version for one channel's bridge."""
    return f"{ROOT}/{_seg(org, 'org')}/channel/{_seg(channel, 'channel')}/out"


def channel_receipt(org: str, channel: str) -> str:
    """Delivery receipts from a bridge."""
    return f"{ROOT}/{_seg(org, 'org')}/channel/{_seg(channel, 'channel')}/receipt"


def channel_in(org: str, channel: str) -> str:
    """Inbound posts from a bridge (or the drill player)."""
    return f"{ROOT}/{_seg(org, 'org')}/channel/{_seg(channel, 'channel')}/in"


def staff_ack(org: str, staff_id: str) -> str:
    """A staff terminal's acknowledgement."""
    return f"{ROOT}/{_seg(org, 'org')}/staff/{_seg(staff_id, 'staff id')}/ack"


def staff_remind(org: str, staff_id: str) -> str:
    """A signed reminder to one staff terminal to acknowledge the freeze."""
    return f"{ROOT}/{_seg(org, 'org')}/staff/{_seg(staff_id, 'staff id')}/remind"


def presence(org: str, role: str, member_id: str) -> str:
    """Retained online/offline presence (set as last will)."""
    return f"{ROOT}/{_seg(org, 'org')}/presence/{_seg(role, 'role')}/{_seg(member_id, 'id')}"


def console_subscriptions(org: str) -> list[str]:
    """What the console listens to."""
    base = f"{ROOT}/{_seg(org, 'org')}"
    return [
        f"{base}/channel/+/in",
        f"{base}/channel/+/receipt",
        f"{base}/staff/+/ack",
        f"{base}/presence/+/+",
        # Its own retained notice: an older one found there is re-asserted.
        f"{base}/freeze",
    ]


def staff_subscriptions(org: str, staff_id: str) -> list[str]:
    """What a staff terminal listens to."""
    return [freeze(org), message_current(org), staff_remind(org, staff_id)]


@dataclass(frozen=True)
class ParsedTopic:
    """A topic split into its meaning."""

    org: str
    kind: str
    """``freeze``, ``message``, ``channel.in``, ``channel.out``, ``channel.receipt``,
    ``staff.ack``, ``staff.remind`` or ``presence``."""
    channel: str | None = None
    member_id: str | None = None
    role: str | None = None


def parse(topic: str) -> ParsedTopic | None:
    """Recognise a krise topic; ``None`` when it is not one of ours."""
    parts = topic.split("/")
    if len(parts) < 4 or f"{parts[0]}/{parts[1]}" != ROOT:
        return None
    if not all(_SEGMENT.match(p) for p in parts[2:]):
        return None  # an id the console would show or key by must be a plain segment
    org, rest = parts[2], parts[3:]
    match rest:
        case ["freeze"]:
            return ParsedTopic(org, "freeze")
        case ["message", "current"]:
            return ParsedTopic(org, "message")
        case ["channel", ch, ("in" | "out" | "receipt") as leaf]:
            return ParsedTopic(org, f"channel.{leaf}", channel=ch)
        case ["staff", sid, "ack"]:
            return ParsedTopic(org, "staff.ack", member_id=sid)
        case ["staff", sid, "remind"]:
            return ParsedTopic(org, "staff.remind", member_id=sid)
        case ["presence", role, mid]:
            return ParsedTopic(org, "presence", member_id=mid, role=role)
        case _:
            return None
