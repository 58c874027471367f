"""The report's two plots as plain shapes: the drill's timeline and the freeze curve.

The geometry is computed here; the SVG is written by a jinja2 template with autoescape
(``templates/figure.svg.j2``), so no label from a scenario or a post is ever trusted as
markup. Both plots are made to print in black and white: meaning is carried by shape
(triangle, circle, square, cross, diamond), line style (solid, dashed) and hatching,
never by colour alone, and every mark has a text label or a legend entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from krise_tui.drill.scoring import QUARTER, Scorecard, fmt_offset

WIDTH = 900
LEFT = 110
RIGHT = 20
TOP = 50
LANE = 34


@dataclass(frozen=True)
class Shape:
    """One SVG element: ``rect``, ``line``, ``path``, ``polygon``, ``circle`` or ``text``."""

    kind: str
    attrs: tuple[tuple[str, str], ...]
    text: str = ""
    title: str = ""
    """A tooltip (``<title>``), also read by screen readers."""


@dataclass
class Figure:
    """An SVG picture: size, a title and description (accessibility), the shapes."""

    width: int
    height: int
    title: str
    description: str
    shapes: list[Shape] = field(default_factory=list)
    hatched: bool = False

    def add(self, kind: str, text: str = "", title: str = "", **attrs: object) -> None:
        """Add one element; attribute names use ``_`` for ``-``."""
        pairs = tuple(
            (name.rstrip("_").replace("_", "-"), _num(value)) for name, value in attrs.items()
        )
        self.shapes.append(Shape(kind, pairs, text, title))


def _num(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return str(value)


def _tick_step(end: timedelta) -> timedelta:
    minutes = end.total_seconds() / 60
    for step in (5, 10, 15, 30, 60, 120, 240, 480):
        if minutes / step <= 12:
            return timedelta(minutes=step)
    return timedelta(hours=24)


def _cross(cx: float, cy: float, r: float) -> str:
    """An ×: two strokes through (cx, cy)."""
    return (
        f"M{cx - r:.1f},{cy - r:.1f} L{cx + r:.1f},{cy + r:.1f} "
        f"M{cx - r:.1f},{cy + r:.1f} L{cx + r:.1f},{cy - r:.1f}"
    )


def _diamond(cx: float, cy: float) -> str:
    """A ◆'s corners around (cx, cy)."""
    return (
        f"{cx:.1f},{cy - 7:.1f} {cx + 6:.1f},{cy:.1f} {cx:.1f},{cy + 7:.1f} {cx - 6:.1f},{cy:.1f}"
    )


LANES = ("Innlegg", "Meldinger", "Svar", "Rykter", "Frys", "Hendelser", "Feil")


def timeline_figure(card: Scorecard) -> Figure:
    """Lanes over the drill's time: posts per quarter hour, messages, answers, rumours,
    the freeze, world events, failures, and the objectives' deadlines."""
    end = max(card.end, timedelta(minutes=1))
    plot_w = WIDTH - LEFT - RIGHT
    height = TOP + LANE * len(LANES) + 50
    fig = Figure(
        WIDTH,
        height,
        "Tidslinje for øvelsen",
        f"{card.title}: innlegg, meldinger, svar, rykter, frys, hendelser og feil fra T+0 "
        f"til {fmt_offset(card.end)}",
        hatched=True,
    )

    def x(at: timedelta) -> float:
        return LEFT + plot_w * max(0.0, min(1.0, at / end))

    def lane_y(name: str) -> float:
        return TOP + LANE * LANES.index(name) + LANE / 2

    y: float
    for index, name in enumerate(LANES):
        y = TOP + LANE * index
        fig.add(
            "line",
            x1=LEFT,
            y1=y + LANE,
            x2=WIDTH - RIGHT,
            y2=y + LANE,
            stroke="#999",
            stroke_width=0.5,
        )
        fig.add("text", name, x=LEFT - 8, y=y + LANE / 2 + 4, text_anchor="end", font_size=12)
    bottom = TOP + LANE * len(LANES)
    step = _tick_step(end)
    tick = timedelta(0)
    while tick <= end:
        fig.add("line", x1=x(tick), y1=TOP, x2=x(tick), y2=bottom, stroke="#ccc", stroke_width=0.5)
        fig.add(
            "text", fmt_offset(tick), x=x(tick), y=bottom + 14, text_anchor="middle", font_size=10
        )
        tick += step
    # posts per quarter hour: bars
    quarters = {int(at // QUARTER): count for at, count in card.post_counts}
    most = max(quarters.values(), default=1)
    base = TOP + LANE * (LANES.index("Innlegg") + 1) - 3
    for quarter, count in sorted(quarters.items()):
        left = x(QUARTER * quarter)
        right = x(QUARTER * (quarter + 1))
        h = (LANE - 8) * count / most
        fig.add(
            "rect",
            title=f"{count} innlegg fra {fmt_offset(QUARTER * quarter)}",
            x=left + 1,
            y=base - h,
            width=max(1.0, right - left - 2),
            height=h,
            fill="#bbb",
            stroke="#000",
            stroke_width=0.6,
        )
    # messages: filled triangles, numbered
    y = lane_y("Meldinger")
    for n, message in enumerate(card.messages, 1):
        cx = x(message.at)
        fig.add(
            "polygon",
            title=f"Melding {n} {fmt_offset(message.at)}: {message.headline}",
            points=f"{cx - 6:.1f},{y + 6:.1f} {cx + 6:.1f},{y + 6:.1f} {cx:.1f},{y - 7:.1f}",
            fill="#000",
        )
        fig.add("text", str(n), x=cx + 8, y=y + 4, font_size=10)
    # answers: open circles
    y = lane_y("Svar")
    for row in card.timeline:
        if row.kind == "answer":
            fig.add(
                "circle",
                title=f"{fmt_offset(row.at)} {row.text}",
                cx=x(row.at),
                cy=y,
                r=5,
                fill="#fff",
                stroke="#000",
                stroke_width=1.5,
            )
    # rumours: from first sighting (cross) to correction (filled square), dashed when open
    y0 = lane_y("Rykter")
    for n, rumour in enumerate(card.rumours):
        y = y0 - 8 + (n % 4) * 5
        start = x(rumour.first_seen)
        stop = x(rumour.corrected if rumour.corrected is not None else card.end)
        dash = "" if rumour.corrected is not None else "4 3"
        fig.add(
            "line",
            title=f"Rykte {rumour.rumour_id}: {rumour.claim}",
            x1=start,
            y1=y,
            x2=stop,
            y2=y,
            stroke="#000",
            stroke_width=1.5,
            stroke_dasharray=dash or "none",
        )
        fig.add(
            "path",
            d=_cross(start, y, 4),
            stroke="#000",
            stroke_width=1.5,
        )
        if rumour.corrected is not None:
            fig.add(
                "rect",
                title=f"Rykte {rumour.rumour_id} korrigert {fmt_offset(rumour.corrected)}",
                x=stop - 4,
                y=y - 4,
                width=8,
                height=8,
                fill="#000",
            )
        fig.add("text", rumour.rumour_id, x=stop + 7, y=y + 4, font_size=10)
    # freeze: hatched bar
    y = lane_y("Frys")
    for curve in card.freezes:
        left = x(curve.since)
        right = x(curve.lifted if curve.lifted is not None else card.end)
        fig.add(
            "rect",
            title=f"Frys fra {fmt_offset(curve.since)}",
            x=left,
            y=y - 7,
            width=max(1.0, right - left),
            height=14,
            fill="url(#hatch)",
            stroke="#000",
            stroke_width=1,
        )
    # world events: diamonds, numbered
    y = lane_y("Hendelser")
    world = [r for r in card.timeline if r.kind in ("world", "broker")]
    for n, row in enumerate(world, 1):
        cx = x(row.at)
        fig.add(
            "polygon",
            title=f"{fmt_offset(row.at)} {row.text}",
            points=_diamond(cx, y),
            fill="#fff",
            stroke="#000",
            stroke_width=1.5,
        )
        fig.add("text", str(n), x=cx + 8, y=y + 4, font_size=10)
    # failures and refused actions: crosses
    y = lane_y("Feil")
    for row in card.timeline:
        if row.kind in ("failure", "action") and not row.ok:
            cx = x(row.at)
            fig.add(
                "path",
                title=f"{fmt_offset(row.at)} {row.text}",
                d=_cross(cx, y, 5),
                stroke="#000",
                stroke_width=2,
            )
    # deadlines of the objectives: dashed verticals, labels staggered so none overlap
    labelled: list[float] = []
    for objective in card.objectives:
        if objective.deadline is None or objective.deadline > end:
            continue
        dx = x(objective.deadline)
        fig.add(
            "line",
            title=f"Frist: {objective.title}",
            x1=dx,
            y1=TOP - 6,
            x2=dx,
            y2=bottom,
            stroke="#000",
            stroke_width=1,
            stroke_dasharray="2 3",
        )
        stack = sum(1 for other in labelled if abs(other - dx) < 90)
        labelled.append(dx)
        fig.add("text", objective.id, x=dx + 2, y=TOP - 10 - 10 * stack, font_size=9)
    return fig


def curve_figure(
    card: Scorecard, target: float | None = None, deadline: timedelta | None = None
) -> Figure | None:
    """The share of staff who had acknowledged the first freeze, over time (a step line),
    with the objective's target share and deadline dashed."""
    if not card.freezes:
        return None
    curve = card.freezes[0]
    end = (curve.lifted or card.end) - curve.since
    end = max(end, timedelta(minutes=1))
    height = 260
    left, bottom, top = 60, height - 40, 20
    plot_w = WIDTH - left - RIGHT
    fig = Figure(
        WIDTH,
        height,
        "Kvitteringskurve for frysen",
        f"Andel av {curve.in_scope} ansatte som har kvittert, "
        f"fra frysen ({fmt_offset(curve.since)})",
    )

    def x(at: timedelta) -> float:
        return left + plot_w * max(0.0, min(1.0, (at - curve.since) / end))

    def y(share: float) -> float:
        return bottom - (bottom - top) * share

    share: float
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        fig.add(
            "line",
            x1=left,
            y1=y(share),
            x2=WIDTH - RIGHT,
            y2=y(share),
            stroke="#ccc",
            stroke_width=0.5,
        )
        fig.add("text", f"{share:.0%}", x=left - 6, y=y(share) + 4, text_anchor="end", font_size=10)
    step = _tick_step(end)
    tick = timedelta(0)
    while tick <= end:
        fig.add(
            "text",
            f"+{fmt_offset(tick)[2:]}",
            x=x(curve.since + tick),
            y=bottom + 16,
            text_anchor="middle",
            font_size=10,
        )
        tick += step
    fig.add("line", x1=left, y1=bottom, x2=WIDTH - RIGHT, y2=bottom, stroke="#000", stroke_width=1)
    fig.add("line", x1=left, y1=top, x2=left, y2=bottom, stroke="#000", stroke_width=1)
    points = list(curve.points) or [(curve.since, 0.0)]
    d = f"M{x(points[0][0]):.1f},{y(points[0][1]):.1f}"
    share = points[0][1]
    for at, value in points[1:]:
        d += f" H{x(at):.1f} V{y(value):.1f}"
        share = value
    d += f" H{x(curve.since + end):.1f}"
    fig.add(
        "path",
        title=f"Kvittert: {share:.0%} til slutt",
        d=d,
        fill="none",
        stroke="#000",
        stroke_width=2,
    )
    if target is not None:
        fig.add(
            "line",
            title=f"Mål {target:.0%}",
            x1=left,
            y1=y(target),
            x2=WIDTH - RIGHT,
            y2=y(target),
            stroke="#000",
            stroke_width=1,
            stroke_dasharray="6 4",
        )
        fig.add(
            "text",
            f"mål {target:.0%}",
            x=WIDTH - RIGHT - 4,
            y=y(target) - 4,
            text_anchor="end",
            font_size=10,
        )
    if deadline is not None and curve.since <= deadline <= curve.since + end:
        fig.add(
            "line",
            title=f"Frist {fmt_offset(deadline)}",
            x1=x(deadline),
            y1=top,
            x2=x(deadline),
            y2=bottom,
            stroke="#000",
            stroke_width=1,
            stroke_dasharray="2 3",
        )
        fig.add(
            "text", f"frist {fmt_offset(deadline)}", x=x(deadline) + 4, y=top + 10, font_size=10
        )
    return fig
