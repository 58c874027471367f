"""Status in words and symbols, the same on every screen (colour is only a second cue)."""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from krise_tui.console.i18n import Tr
from krise_tui.core.features.messages import Delivery, DeliveryStatus
from krise_tui.core.rollcall import RollCall, StaffStatus

DELIVERY_WORDS = {
    DeliveryStatus.QUEUED: ("○", "i kø", "queued"),
    DeliveryStatus.HANDED: ("…", "overlevert", "handed over"),
    DeliveryStatus.DELIVERED: ("✓", "levert", "delivered"),
    DeliveryStatus.FAILED: ("✗", "feilet", "failed"),
    DeliveryStatus.NO_RECEIPT: ("?", "ingen kvittering", "no receipt"),
}

STAFF_WORDS = {
    StaffStatus.ACKED: ("✓", "kvittert", "acknowledged"),
    StaffStatus.PENDING: ("…", "ikke kvittert", "not acknowledged"),
    StaffStatus.OFFLINE: ("○", "frakoblet", "offline"),
}


def delivery_symbol(delivery: Delivery, tr: Tr) -> str:
    """``✓ levert`` / ``✗ feilet`` (short, for one line of channels)."""
    symbol, nb, en = DELIVERY_WORDS[delivery.status]
    return f"{symbol} {tr(nb, en)}"


def delivery_word(delivery: Delivery, tr: Tr) -> str:
    """The full status of one channel: with the platform's reason, and retries."""
    word = delivery_symbol(delivery, tr)
    if delivery.status is DeliveryStatus.FAILED and delivery.reason:
        word += f": {delivery.reason}"
    elif delivery.retrying and delivery.reason:
        word += tr(
            f" – forsøk {delivery.attempts} feilet: {delivery.reason} (broen prøver igjen)",
            f" – attempt {delivery.attempts} failed: {delivery.reason} (the bridge retries)",
        )
    return word


def staff_word(status: StaffStatus, tr: Tr) -> str:
    """``✓ kvittert`` / ``○ frakoblet``."""
    symbol, nb, en = STAFF_WORDS[status]
    return f"{symbol} {tr(nb, en)}"


def rollcall_counts(rc: RollCall) -> tuple[int, int, int, int]:
    """``(acknowledged, not yet, offline, total)``."""
    return (
        rc.count(StaffStatus.ACKED),
        rc.count(StaffStatus.PENDING),
        rc.count(StaffStatus.OFFLINE),
        rc.total,
    )


_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]"
)
"""Control characters, terminal escapes' introducers, invisible and direction marks."""


def one_line(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` with ``…``; control characters removed."""
    flat = " ".join(_UNPRINTABLE.sub(" ", text[: width * 4 + 64]).split())
    return flat if len(flat) <= width else flat[: max(1, width - 1)] + "…"


class PlainTable(DataTable[Any]):
    """A DataTable whose text cells are shown as written: never parsed as markup (a
    staff id or a post's author from outside must not style or hide anything)."""

    def add_row(
        self, *cells: Any, height: int | None = 1, key: str | None = None, label: Any = None
    ) -> Any:
        return super().add_row(
            *(Text(c) if isinstance(c, str) else c for c in cells),
            height=height,
            key=key,
            label=label,
        )


SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(counts: list[int]) -> str:
    """One block character per count, scaled to the largest (a blank for none)."""
    top = max(counts, default=0)
    if top == 0:
        return " " * len(counts)
    steps = len(SPARK_BLOCKS)
    return "".join(
        " " if n <= 0 else SPARK_BLOCKS[max(0, (n * steps + top - 1) // top - 1)] for n in counts
    )
