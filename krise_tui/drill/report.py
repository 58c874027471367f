"""The after-action report: in the terminal (rich), as Markdown, and as one HTML page.

The HTML page is self-contained (inline CSS and SVG, no scripts, nothing fetched) so it
can be mailed, archived and printed; it is rendered by jinja2 with autoescape and
undefined values an error, so no text from a scenario, a post or an operator is ever
trusted as markup. The Markdown report links two SVG files written beside it (the same
figures). Both print in black and white (:mod:`krise_tui.drill.plots`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path

import jinja2
from rich.console import Console
from rich.table import Table
from rich.text import Text

from krise_tui.drill.plots import Figure, curve_figure, timeline_figure
from krise_tui.drill.scoring import Scorecard, fmt_duration, fmt_offset
from krise_tui.printable import printable
from krise_tui.timefmt import format_datetime

STATUS_WORDS = {"met": "nådd", "missed": "ikke nådd", "pending": "venter"}
"""An objective's status in bokmål."""

_STATUS_MARKS = {"met": "✓", "missed": "✗", "pending": "…"}


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("krise_tui.drill", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )


@dataclass(frozen=True)
class FailureRow:
    """Channel failures alike, as one row of the report."""

    channel: str
    what: str
    """``svar`` or ``svar ×10``."""
    failed: str
    """When: ``T+01:00``, or the first and the last, ``T+01:00–T+01:31``."""
    reason: str
    outcome: str
    delivered: str


def failure_rows(card: Scorecard) -> list[FailureRow]:
    """The channel failures, those alike (channel, what, reason, what became of them,
    when delivered) as one row with how many: ten SMS replies refused while the mobile
    network was down, all sent again and delivered at T+02:25, are one line, not ten.
    In the order of each group's first failure."""
    off = fmt_offset
    groups: dict[tuple[str, str, str, str, str], list[timedelta]] = {}
    for f in card.failures:
        key = (f.channel, f.what, f.reason, f.outcome(off), off(f.delivered))
        groups.setdefault(key, []).append(f.at)
    rows = []
    for (channel, what, reason, outcome, delivered), times in groups.items():
        first, last = min(times), max(times)
        rows.append(
            FailureRow(
                channel=channel,
                what=what if len(times) == 1 else f"{what} ×{len(times)}",
                failed=off(first) if first == last else f"{off(first)}–{off(last)}",
                reason=reason,
                outcome=outcome,
                delivered=delivered,
            )
        )
    return rows


def _curve(card: Scorecard) -> Figure | None:
    for objective in card.objectives:
        if objective.kind == "freeze_acknowledged":
            return curve_figure(card, objective.target, objective.deadline)
    return curve_figure(card)


def render_html(card: Scorecard) -> str:
    """The report as one self-contained HTML page."""
    template = _environment().get_template("report.html.j2")
    return template.render(
        card=card,
        failures=failure_rows(card),
        timeline=timeline_figure(card),
        curve=_curve(card),
        status_words=STATUS_WORDS,
        off=fmt_offset,
        dur=fmt_duration,
        start_text=format_datetime(card.start, card.timezone),
        duration_text=fmt_duration(card.end),
    )


def render_svg(figure: Figure, ident: str) -> str:
    """One figure as a standalone SVG document."""
    source = '{% from "figure.svg.j2" import figure %}{{ figure(fig, ident) }}\n'
    return _environment().from_string(source).render(fig=figure, ident=ident)


def _cell(value: object) -> str:
    """Text for Markdown: one line, pipes escaped (table cells), and markup characters as
    entities (Markdown renderers pass raw HTML through)."""
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|")


def render_markdown(card: Scorecard, *, figures: dict[str, str] | None = None) -> str:
    """The report as Markdown; ``figures`` maps ``timeline``/``curve`` to SVG file names."""
    off, dur = fmt_offset, fmt_duration
    lines = [
        f"# Øvingsrapport: {_cell(card.title)}",
        "",
        f"ØVELSE · scenario `{card.scenario_id}`"
        + (f" · svar «{_cell(card.response)}»" if card.response else "")
        + f" · start {format_datetime(card.start, card.timezone)} · varighet {dur(card.end)}"
        + f" · {card.posts} innlegg",
        "",
        f"## Mål: {card.met} av {len(card.objectives)} nådd",
        "",
        "| Mål | Resultat | Frist | Oppnådd | Detaljer |",
        "|---|---|---|---|---|",
    ]
    for o in card.objectives:
        lines.append(
            f"| {_cell(o.title)} ({o.id}) | {_STATUS_MARKS[o.status]} {STATUS_WORDS[o.status]} "
            f"| {off(o.deadline)} | {off(o.achieved)} | {_cell(o.detail)} |"
        )
    lines += ["", f"Tid til første melding: **{dur(card.first_message)}**."]
    if card.triage_agreement is not None:
        lines.append(
            f"Sorteringen traff scenarioets hensikt for {card.triage_agreement:.0%} av innleggene."
        )
    lines += ["", "## Tidslinje", ""]
    if figures and "timeline" in figures:
        lines += [f"![Tidslinje for øvelsen]({figures['timeline']})", ""]
    lines += ["| Tid | Hva |", "|---|---|"]
    for row in card.timeline:
        lines.append(f"| {off(row.at)} | {'✗ ' if not row.ok else ''}{_cell(row.text)} |")
    lines += ["", "## Meldinger", ""]
    if card.messages:
        lines += [
            "| Nr. | Publisert | Overskrift | Skrevet av | Godkjent av |",
            "|---|---|---|---|---|",
        ]
        for n, m in enumerate(card.messages, 1):
            lines.append(
                f"| {n} | {off(m.at)} | {_cell(m.headline)} | {_cell(m.author)} "
                f"| {_cell(m.approver)} |"
            )
    else:
        lines.append("Ingen melding ble publisert.")
    lines += ["", "## Spørsmålsgrupper", ""]
    if card.batches:
        lines += [
            "| Gruppe | Spørsmål | Første spørsmål | Besvart | Tid til svar | Resultat |",
            "|---|---|---|---|---|---|",
        ]
        for b in card.batches:
            kind = " (foreløpig)" if b.kind == "preliminary" else ""
            lines.append(
                f"| {_cell(b.title)} ({b.batch_id}) | {b.questions} | {off(b.opened)} "
                f"| {off(b.answered)}{kind} | {dur(b.time_to_answer)} "
                f"| {_STATUS_MARKS[b.status]} {STATUS_WORDS[b.status]} |"
            )
    else:
        lines.append("Ingen spørsmål som må besvares.")
    lines += ["", "## Rykter", ""]
    if card.rumours:
        lines += [
            "| Rykte | Sett første gang | Konklusjon | Korrigert | Tid til korreksjon "
            "| Sett / tilbake |",
            "|---|---|---|---|---|---|",
        ]
        for r in card.rumours:
            lines.append(
                f"| {_cell(r.claim)} ({r.rumour_id}) | {off(r.first_seen)} | {off(r.verdict)} "
                f"| {off(r.corrected)} | {dur(r.time_to_correction)} "
                f"| {r.sightings} / {r.recurrences} |"
            )
    else:
        lines.append("Ingen rykter ble registrert.")
    lines += ["", "## Frys og kvitteringer", ""]
    if card.freezes:
        if figures and "curve" in figures:
            lines += [f"![Kvitteringskurve]({figures['curve']})", ""]
        for f in card.freezes:
            final = f.points[-1][1] if f.points else 0.0
            lines.append(
                f"- Frys fra {off(f.since)}: {f.in_scope} ansatte i omfang, {final:.0%} kvittert"
                + (f", opphevet {off(f.lifted)}" if f.lifted else "")
            )
    else:
        lines.append("Publisering ble ikke fryst.")
    lines += ["", "## Kanalfeil", ""]
    if card.failures:
        lines += [
            "| Kanal | Hva | Feilet | Årsak | Sendt på nytt | Levert |",
            "|---|---|---|---|---|---|",
        ]
        for fr in failure_rows(card):
            lines.append(
                f"| {_cell(fr.channel)} | {fr.what} | {fr.failed} | {_cell(fr.reason)} "
                f"| {fr.outcome} | {fr.delivered} |"
            )
    else:
        lines.append("Ingen kanal feilet.")
    if card.refused_actions:
        lines += ["", "### Avviste handlinger", ""]
        lines += [f"- {off(r.at)}: {_cell(r.text)}" for r in card.refused_actions]
    lines += [
        "",
        "---",
        f"Journalens tilstand: `{card.state_hash or '–'}` ({card.event_count} hendelser). "
        "Alt i øvelsen var merket ØVELSE og gikk bare til lokale mottak.",
        "",
    ]
    return "\n".join(lines)


def write_report(card: Scorecard, path: Path) -> list[Path]:
    """Write the report as Markdown and HTML (``PATH.md``, ``PATH.html``, and the
    Markdown's two SVG figures beside it); returns the files written."""
    base = path.with_suffix("") if path.suffix in (".md", ".html", ".htm") else path
    base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    figures: dict[str, str] = {}
    timeline_svg = base.parent / f"{base.name}-tidslinje.svg"
    timeline_svg.write_text(render_svg(timeline_figure(card), "tl"), encoding="utf-8")
    figures["timeline"] = timeline_svg.name
    written.append(timeline_svg)
    curve = _curve(card)
    if curve is not None:
        curve_svg = base.parent / f"{base.name}-kvittering.svg"
        curve_svg.write_text(render_svg(curve, "kv"), encoding="utf-8")
        figures["curve"] = curve_svg.name
        written.append(curve_svg)
    markdown = base.with_name(f"{base.name}.md")
    markdown.write_text(render_markdown(card, figures=figures), encoding="utf-8")
    html = base.with_name(f"{base.name}.html")
    html.write_text(render_html(card), encoding="utf-8")
    return [markdown, html, *written]


def plain(text: str) -> Text:
    """Text from a scenario, a resident or a platform, for a Rich table or line: never
    read as markup (a post's ``[/b]`` stopped the report; ``[x]`` vanished) and with
    nothing in it that acts on the terminal (:func:`krise_tui.printable.printable`)."""
    return Text(printable(text))


def print_report(card: Scorecard, console: Console | None = None) -> None:
    """The report in the terminal: objectives, batches, rumours, freeze, failures."""
    out = console or Console()
    off, dur = fmt_offset, fmt_duration
    heading = plain(f"Øvingsrapport: {card.title}")
    if card.response:
        heading.append(printable(f" (svar «{card.response}»)"))
    out.rule(heading)
    table = Table(title=f"Mål: {card.met} av {len(card.objectives)} nådd", expand=True)
    for column in ("Mål", "Resultat", "Frist", "Oppnådd", "Detaljer"):
        table.add_column(column, overflow="fold")
    for o in card.objectives:
        mark = f"{_STATUS_MARKS[o.status]} {STATUS_WORDS[o.status]}"
        style = {"met": "green", "missed": "bold red", "pending": "yellow"}[o.status]
        table.add_row(
            plain(o.title),
            Text(mark, style=style),
            off(o.deadline),
            off(o.achieved),
            plain(o.detail),
        )
    out.print(table)
    out.print(f"Tid til første melding: [bold]{dur(card.first_message)}[/]   Innlegg: {card.posts}")
    if card.batches:
        batches = Table(title="Spørsmålsgrupper", expand=True)
        for column in ("Gruppe", "Spørsmål", "Første", "Besvart", "Tid til svar", "Resultat"):
            batches.add_column(column, overflow="fold")
        for b in card.batches:
            batches.add_row(
                plain(f"{b.title[:50]} ({b.batch_id})"),
                str(b.questions),
                off(b.opened),
                off(b.answered) + (" (foreløpig)" if b.kind == "preliminary" else ""),
                dur(b.time_to_answer),
                f"{_STATUS_MARKS[b.status]} {STATUS_WORDS[b.status]}",
            )
        out.print(batches)
    if card.rumours:
        rumours = Table(title="Rykter", expand=True)
        for column in ("Rykte", "Sett", "Korrigert", "Tid til korreksjon", "Sett/tilbake"):
            rumours.add_column(column, overflow="fold")
        for r in card.rumours:
            rumours.add_row(
                plain(f"{r.claim[:60]} ({r.rumour_id})"),
                off(r.first_seen),
                off(r.corrected),
                dur(r.time_to_correction),
                f"{r.sightings}/{r.recurrences}",
            )
        out.print(rumours)
    for curve in card.freezes:
        final = curve.points[-1][1] if curve.points else 0.0
        marks = _ascii_curve(curve.points, curve.since, card.end)
        out.print(
            f"Frys fra {off(curve.since)}: {curve.in_scope} i omfang, {final:.0%} kvittert  {marks}"
        )
    if card.failures:
        failures = Table(title="Kanalfeil", expand=True)
        for column in ("Kanal", "Hva", "Feilet", "Årsak", "Sendt på nytt", "Levert"):
            failures.add_column(column, overflow="fold")
        for fr in failure_rows(card):
            failures.add_row(
                *(plain(c) for c in (fr.channel, fr.what, fr.failed, fr.reason, fr.outcome)),
                plain(fr.delivered),
            )
        out.print(failures)
    for row in card.refused_actions:
        out.print(Text.assemble(("✗", "red"), f" {off(row.at)} avvist: ", plain(row.text)))


def _ascii_curve(points: list[tuple[timedelta, float]], since: timedelta, end: timedelta) -> str:
    """The acknowledgement curve as a row of block characters (one per tenth of the time)."""
    blocks = " ▁▂▃▄▅▆▇█"
    span = max(end - since, timedelta(minutes=1))
    out = []
    for i in range(1, 11):
        at = since + span * i / 10
        share = 0.0
        for when, value in points:
            if when <= at:
                share = value
        out.append(blocks[min(8, int(share * 8 + 1e-9))])
    return "".join(out)
