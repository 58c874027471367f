"""The situation report: every kind of event, hostile texts, real parsers, a real journal.

The HTML is parsed as a browser would (html5lib, strict: any parse error fails) and the
Markdown is rendered by a real CommonMark implementation (markdown-it-py, with GFM
tables) and that HTML parsed again: a hostile text must come out as the same text, never
as markup, in both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import html5lib
import pytest
from markdown_it import MarkdownIt

from krise_tui.channels.a11y import check_html
from krise_tui.core.features.messages import (
    ApproveDraft,
    DraftSaved,
    DraftVariant,
    MessageApproved,
    PublishVersion,
    SaveDraft,
)
from krise_tui.core.features.outbox import ConfirmEffect
from krise_tui.core.features.questions import AssignToBatch, RelabelPost
from krise_tui.core.features.rumours import RegisterRumour
from krise_tui.core.kernel import Context, EventBase
from krise_tui.core.policy import ChannelSpec, MessagePolicy
from krise_tui.core.state import IncidentState
from krise_tui.exports.sitrep import (
    build_sitrep,
    clean,
    format_duration,
    sitrep_html,
    sitrep_markdown,
)
from krise_tui.exports.sitrep_cli import add_parser, read_journal
from krise_tui.journal.store import Journal
from tests.corekit import NOW, POLICY, TEST_ORG, WEB, Ids, bus, every_kind_of_event, make_ctx, run

REPORT_AT = NOW + timedelta(hours=2)
ROSTER: dict[str, str | None] = {"ansatt-001": "helse", "ansatt-002": "skole"}
DEPARTMENTS = {"helse": "Helse", "skole": "Skole"}
OPERATORS = {"ola": "Ola Hansen", "kari": "Kari Nordmann"}
HOSTILE = (
    '<script>alert(1)</script>"><img src=x onerror=alert(1)> \x1b[31mrød\x07 '
    "\u202eevil\u202c | *x* _y_ [lenke](javascript:alert(1)) &amp; <!-- c --> `kode` # \\"
)
"""Markup, a terminal escape, a bell, a bidi override, and Markdown syntax of every kind."""
UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
SEEN = clean(HOSTILE)
APPROVABLE = re.sub("[\x00-\x08\x0e-\x1f\x7f-\x9f]", "", HOSTILE)
"""The hostile text as a message can be approved: the lint blocks control characters
(the post, the receipt's reason and the rumour keep them); the bidi override passes with
a reason."""
BIDI_REASON = (("control-character", "nb", "Testen vil ha et retningstegn med"),)
"""The hostile text as the report must show it: every character kept except the unsafe."""
REPORT_ELEMENTS = {
    "html", "head", "meta", "title", "style", "body", "header", "main", "footer", "section",
    "h1", "h2", "p", "dl", "dt", "dd", "table", "caption", "thead", "tbody", "tr", "th", "td",
    "time", "span", "strong",
}  # fmt: skip
"""Every element a report may contain: the template's own, nothing from the input."""


def options(**extra: Any) -> dict[str, Any]:
    return {
        "org_name": "Testkommune",
        "tz": "Europe/Oslo",
        "lang": "nb",
        "now": REPORT_AT,
        "roster": ROSTER,
        "department_names": DEPARTMENTS,
        "operators": OPERATORS,
        **extra,
    }


def hostile_incident() -> tuple[IncidentState, list[EventBase]]:
    """Every kind of event, then hostile texts in a message, a post, a rumour, a reason."""
    state, events = every_kind_of_event()
    policy = MessagePolicy(
        **{**POLICY.__dict__, "channels": (*POLICY.channels, ChannelSpec("sms", "webhook"))}
    )
    ids = Ids("h")

    def go(command: object, actor: str = "ola", minutes: int = 60) -> list[EventBase]:
        ctx: Context = make_ctx(
            actor, now=NOW + timedelta(minutes=minutes), roster=ROSTER, ids=ids, policy=policy
        )
        decided = run(state, command, ctx).events
        events.extend(decided)
        return decided

    message = DraftVariant("nb", APPROVABLE, f"{APPROVABLE}\n\nLes mer på {WEB}")
    saved = go(SaveDraft((message,)))
    draft = saved[0]
    assert isinstance(draft, DraftSaved)
    approved = go(ApproveDraft(draft.draft_id, "kari", BIDI_REASON), "kari", 61)[0]
    assert isinstance(approved, MessageApproved)
    go(PublishVersion(approved.version_id), "kari", 62)
    web = next(d for d in state.messages.ledger() if d.channel == "nettside")
    go(ConfirmEffect(web.effect_id), "outbox", 62)
    receipt = {"effect_id": web.effect_id, "status": "failed", "attempt": 3, "final": True}
    go(bus("krise/v1/test/channel/nettside/receipt", {**receipt, "reason": HOSTILE}), "bus", 63)
    post = {"id": "x1", "text": HOSTILE, "author": "<b>per</b>"}
    go(bus("krise/v1/test/channel/sms/in", post), "bus", 64)
    go(RelabelPost("sms:x1", "service_question"), "kari", 64)
    go(AssignToBatch("sms:x1", "b-x", 1.0, True, {"kind": "add"}), "batching", 65)
    go(RegisterRumour(HOSTILE, "police", ("sms:x1",)), "ola", 66)
    return state, events


def strict_html(text: str, *, fragment: bool = False) -> ET.Element:
    """Parse as a browser would, failing on any parse error."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    tree = parser.parseFragment(text) if fragment else parser.parse(text)
    assert isinstance(tree, ET.Element)
    return tree


def text_of(element: ET.Element) -> str:
    return "".join(element.itertext())


def tables(tree: ET.Element) -> dict[str, list[list[str]]]:
    """Caption -> the body rows' cell texts."""
    found = {}
    for table in tree.iter("table"):
        caption = table.find("caption")
        assert caption is not None
        body = table.find("tbody")
        assert body is not None
        found[text_of(caption)] = [[text_of(c) for c in row] for row in body.iter("tr")]
    return found


def facts(tree: ET.Element) -> dict[str, str]:
    """Every ``<dt>``'s text -> its ``<dd>``'s (the last one when a term repeats)."""
    out = {}
    for dl in tree.iter("dl"):
        children = list(dl)
        for dt, dd in zip(children[::2], children[1::2], strict=True):
            assert (dt.tag, dd.tag) == ("dt", "dd")
            out[text_of(dt)] = text_of(dd)
    return out


def markdown_tree(markdown: str) -> ET.Element:
    """The Markdown rendered by a real CommonMark implementation, parsed as HTML."""
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    return strict_html(html, fragment=True)


def test_every_section_says_what_happened() -> None:
    state, events = every_kind_of_event()
    tree = strict_html(sitrep_html(state, **options(history=events)))
    assert tree.get("lang") == "nb"
    (h1,) = (text_of(h) for h in tree.iter("h1"))
    assert h1 == "Situasjonsrapport: Flom i sentrum"
    assert [text_of(h) for h in tree.iter("h2")] == [
        "Hendelse og dreiebok",
        "Publiserte meldinger",
        "Frys og opprop",
        "Spørsmål fra publikum",
        "Rykter",
        "Leveranser med feil",
    ]
    said = facts(tree)
    assert said["Hendelse"] == "Flom i sentrum"
    assert said["Nivå"] == "2"
    assert said["Åpnet"] == "27.11.2026 kl. 15:00"  # 14:00 UTC is 15:00 in Oslo in November
    assert said["Åpnet av"] == "Ola Hansen (ola)"
    assert said["Tid siden åpning"] == "T+02:00 (2 t)"
    assert said["Dreiebok"] == "Flom og skred (flom, aaaaaaaa)"
    assert said["Status"] == "aktiv: ansattes publisering er fryst"
    assert said["Gjelder"] == "alle ansatte"
    assert said["Frysmelding nr."] == str(state.freeze.current.seq if state.freeze.current else 0)
    assert said["Kvittert"] == "⚠ 0 av 2"  # ansatt-001 acknowledged an older notice
    assert said["Svarfrist"].startswith("8 t (")
    assert said["Grupper uten svar"] == "⚠ 1"
    assert said["Avvist ved mottak (feil format)"] == "1"
    assert said["Frist for korreksjon"].startswith("1 t (")

    found = tables(tree)
    assert found["Tidslinje for publiserte versjoner"] == [
        [
            f"v{state.messages.versions[v].version_id[:8]}" + suffix,
            published,
            "ny",
            headline,
            "Kari Nordmann (kari)",
            delivered,
            failed,
            underway,
        ]
        for v, suffix, published, headline, delivered, failed, underway in [
            (
                next(iter(state.messages.versions)),
                "",
                "15:04",
                "Flomvarsel",
                "ansatte",
                "⚠ nettside (ingen kvittering innen fristen)",
                "sms (sendt)",
            ),
            (
                state.messages.published_version or "",
                " (gjeldende)",
                "15:54",
                "Dammen står",
                "ingen",
                "ingen",
                "nettside (i kø), ansatte (i kø), sms (i kø)",
            ),
        ]
    ]
    assert found["Opprop per avdeling"] == [
        ["Helse", "0", "1", "0", "1"],
        ["Skole", "0", "0", "1", "1"],
        ["Totalt", "0", "1", "1", "2"],
    ]
    assert found["Spørsmålsgrupper"] == [
        ["b2", "Er skolen stengt?", "1", "15:44", "1 t 16 min", "23:44", "ikke besvart: "
         "6 t 44 min igjen"],
        ["b1", "Når kommer strømmen?", "2", "15:44", "1 t 16 min", "23:44",
         "besvart 15:48 (innen fristen)"],
    ]  # fmt: skip
    assert found["Rykter og korreksjoner"] == [
        ["r1", "Dammen har brast", "kommunen", "korrigert", "⚠ 2 (1 etter korreksjonen): sms 2",
         "15:44", "korrigert etter 10 min (innen fristen)"],
    ]  # fmt: skip
    assert found["Leveranser som har feilet eller prøves på nytt"] == [
        ["nettside", f"melding v{next(iter(state.messages.versions))[:8]}", "⚠ ingen kvittering",
         "1", "1", "ingen kvittering innen fristen", "15:30"],
    ]  # fmt: skip
    # The 503 was cleared from the ledger by the re-send; the journal still has it.
    history = found["Feilede forsøk i journalen"]
    assert [row[1:] for row in history] == [
        ["nettside (megleren)", history[0][2], "1", "not connected"],
        ["nettside", history[0][2], "1", "⚠ 503"],
        ["sms", "svar til sms:q0", "1", "⚠ gw"],  # the reply re-sent since
    ]
    for time in tree.iter("time"):
        stamp = datetime.fromisoformat(time.get("datetime", ""))
        assert stamp.utcoffset() == timedelta(hours=1), time.get("datetime")


def test_the_markdown_says_the_same() -> None:
    state, events = every_kind_of_event()
    markdown = sitrep_markdown(state, **options(history=events))
    assert markdown.startswith("# Situasjonsrapport: Flom i sentrum\n")
    tree = markdown_tree(markdown)
    html_tables = tables(strict_html(sitrep_html(state, **options(history=events))))
    md_tables = [
        [[text_of(c) for c in row] for row in t.iter("tr")][1:] for t in tree.iter("table")
    ]
    assert md_tables == list(html_tables.values())


def test_deadlines_missed_are_said_in_words() -> None:
    state, _ = hostile_incident()
    late = options(
        now=NOW + timedelta(hours=10),
        answer_deadline=timedelta(minutes=2),
        correction_deadline=timedelta(minutes=5),
    )
    found = tables(strict_html(sitrep_html(state, **late)))
    batches = {row[0]: row[-1] for row in found["Spørsmålsgrupper"]}
    assert batches == {
        "b-x": "⚠ ikke besvart: fristen gikk ut for 8 t 54 min siden",
        "b2": "⚠ ikke besvart: fristen gikk ut for 9 t 14 min siden",
        # the report is made the next day: the date is said too
        "b1": "⚠ besvart 27.11.2026 kl. 15:48 (2 min etter fristen)",
    }
    # The most urgent first: unanswered by due time, then the answered.
    assert list(batches) == ["b2", "b-x", "b1"]
    rumours = {row[0]: row[-1] for row in found["Rykter og korreksjoner"]}
    assert rumours == {
        "r1": "⚠ korrigert etter 10 min (5 min etter fristen)",
        "r2": "⚠ ikke korrigert: fristen gikk ut for 8 t 51 min siden",
    }
    on_time = tables(strict_html(sitrep_html(state, **options())))
    rumours = {row[0]: row[-1] for row in on_time["Rykter og korreksjoner"]}
    assert rumours["r2"] == "ikke korrigert: 4 min igjen"


def test_english_report() -> None:
    state, events = every_kind_of_event()
    html = sitrep_html(state, **options(lang="en", history=events))
    tree = strict_html(html)
    assert tree.get("lang") == "en"
    assert next(text_of(h) for h in tree.iter("h2")) == "Incident and playbook"
    said = facts(tree)
    assert said["Opened"] == "27 Nov 2026, 15:00"
    assert said["Time since opening"] == "T+02:00 (2 h)"
    # Bokmål texts inside the English report say which language they are in.
    headlines = [span for span in tree.iter("span") if span.get("lang") == "nb"]
    assert {text_of(span) for span in headlines} >= {"Flomvarsel", "Dammen står"}
    assert check_html(html) == []
    # A terminal outside the departments is counted under a name in English too.
    extra = sitrep_html(state, **options(lang="en", roster={**ROSTER, "vikar-1": None}))
    departments = [row[0] for row in tables(strict_html(extra))["Roll-call per department"]]
    assert "(no department)" in departments and "(uten avdeling)" not in departments


def test_hostile_texts_stay_text_in_html() -> None:
    state, events = hostile_incident()
    html = sitrep_html(state, **options(org_name="Test <i>kommune</i>", history=events))
    assert not UNSAFE.search(html)
    assert check_html(html) == []
    tree = strict_html(html)
    for element in tree.iter():
        assert element.tag in REPORT_ELEMENTS, element.tag
        for name in element.attrib:
            # Self-contained and inert: nothing to load or follow, no handlers.
            assert name in {"lang", "charset", "name", "content", "id", "aria-labelledby",
                            "scope", "datetime", "class"}, (element.tag, name)  # fmt: skip
    assert text_of(next(tree.iter("header"))).strip().startswith("Kommune: Test <i>kommune</i>")
    found = tables(tree)
    (hostile_version,) = [
        r for r in found["Tidslinje for publiserte versjoner"] if "(gjeldende)" in r[0]
    ]
    assert hostile_version[3] == SEEN
    assert hostile_version[6] == f"⚠ nettside ({SEEN})"
    (batch,) = [r for r in found["Spørsmålsgrupper"] if r[0] == "b-x"]
    assert batch[1] == SEEN
    (rumour,) = [r for r in found["Rykter og korreksjoner"] if r[0] == "r2"]
    assert rumour[1:3] == [SEEN, "politiet"]
    causes = [r[5] for r in found["Leveranser som har feilet eller prøves på nytt"]]
    assert SEEN in causes
    assert [r[-1] for r in found["Feilede forsøk i journalen"]][-1] == f"⚠ {SEEN}"
    # Every alert says so in words and a sign, never by its colour alone.
    for strong in tree.iter("strong"):
        if strong.get("class") == "alert":
            assert text_of(strong).startswith("⚠ ")


def test_hostile_texts_stay_text_in_markdown() -> None:
    state, events = hostile_incident()
    markdown = sitrep_markdown(state, **options(org_name="Test <i>kommune</i>", history=events))
    assert not UNSAFE.search(markdown)
    tree = markdown_tree(markdown)
    allowed = {"DOCUMENT_FRAGMENT", "h1", "h2", "p", "strong", "em", "br", "ul", "li", "table",
               "thead", "tbody", "tr", "th", "td", "hr"}  # fmt: skip
    for element in tree.iter():
        assert element.tag in allowed, element.tag
        assert not element.attrib or set(element.attrib) == {"style"}, element.attrib  # alignment
    rows = [[text_of(c) for c in row] for table in tree.iter("table") for row in table.iter("tr")]
    cells = {cell for row in rows for cell in row}
    assert SEEN in cells  # the batch's question and the rumour's claim
    assert f"⚠ nettside ({SEEN})" in cells
    assert text_of(next(tree.iter("p"))).startswith("Kommune: Test <i>kommune</i>")
    # A table row stays one row: no hostile pipe or newline split it or added a cell.
    for table in tree.iter("table"):
        header, *body = table.iter("tr")
        assert all(len(row) == len(header) for row in body)


def test_no_incident_yet() -> None:
    empty = IncidentState()
    html = sitrep_html(empty, **options())
    assert check_html(html) == []
    tree = strict_html(html)
    assert text_of(next(tree.iter("h1"))) == "Situasjonsrapport"
    assert "Ingen hendelse er åpnet i journalen." in text_of(tree)
    assert "Ingen melding er publisert ennå." in text_of(tree)
    assert "Ingen frys er sendt" in text_of(tree)
    markdown = sitrep_markdown(empty, **options(lang="en"))
    assert "*No message has been published yet.*" in markdown
    assert "T+--:--" in markdown


def test_pure_and_strict() -> None:
    state, events = every_kind_of_event()
    first = sitrep_html(state, **options(history=events))
    assert sitrep_html(state, **options(history=events)) == first
    assert build_sitrep(state, **options()) == build_sitrep(state, **options())
    with pytest.raises(ValueError, match="timezone-aware"):
        sitrep_markdown(state, **options(now=datetime(2026, 11, 27, 16, 0)))
    with pytest.raises(ValueError, match="nb or en"):
        sitrep_markdown(state, **options(lang="de"))
    # Printable on its own: the style sheet is inside, with rules for paper.
    assert "@media print" in first and "@page" in first


def test_durations() -> None:
    assert format_duration(timedelta(seconds=59), "nb") == "0 min"
    assert format_duration(timedelta(minutes=65), "nb") == "1 t 05 min"
    assert format_duration(timedelta(hours=8), "en") == "8 h"
    assert format_duration(timedelta(days=2, hours=3, minutes=9), "nb") == "2 d 3 t"
    assert format_duration(timedelta(minutes=-5), "en") == "0 min"


# --- the CLI, on a real journal ------------------------------------------------------------


def write_journal(path: Path, events: list[EventBase]) -> None:
    """A real journal file holding ``events`` (the CLI runs its own event loop: these
    tests are synchronous, as ``krise sitrep`` is)."""

    async def write() -> None:
        async with await Journal.open(path) as journal:
            await journal.append(events)

    asyncio.run(write())


def sitrep_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="krise")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sitrep", *argv])
    return int(args.func(args))


def files_in(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Each file's bytes and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def test_the_journal_gives_the_same_report(tmp_path: Path) -> None:
    state, events = hostile_incident()
    path = tmp_path / "journal.sqlite3"
    write_journal(path, events)
    loaded, history = asyncio.run(read_journal(path))
    assert {type(e).__name__ for e in history} == {"DeliveryReceipt", "OutboxAttemptFailed"}
    assert sitrep_html(loaded, **options(history=history)) == sitrep_html(
        state, **options(history=events)
    )


def test_cli_reads_the_journal_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, events = hostile_incident()
    journal_dir = tmp_path / "journal"
    path = journal_dir / "journal.sqlite3"
    write_journal(path, events)
    before = files_in(journal_dir)
    monkeypatch.setenv("KRISE_ORG_FILE", str(TEST_ORG))

    assert sitrep_cli("--journal", str(path)) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("# Situasjonsrapport: Flom i sentrum\n")
    assert "**Kommune:** Testkommune" in markdown  # from the org file
    assert "Kari Nordmann (kari)" in markdown
    assert "| Helse | 0 | 1 | 1 | 2 |" in markdown  # the org file's departments and staff

    out = tmp_path / "rapport.html"
    assert sitrep_cli("--journal", str(path), "--html", str(out), "--lang", "en") == 0
    assert f"wrote {out}" in capsys.readouterr().err
    assert out.stat().st_mode & 0o777 == 0o600  # it quotes residents' posts
    html = out.read_text(encoding="utf-8")
    assert strict_html(html).get("lang") == "en"
    assert check_html(html) == []
    # Nothing written: the journal is byte for byte as it was. (A read-only SQLite reader
    # of a WAL-mode file may leave the shared-memory index and an empty -wal beside it.)
    after = files_in(journal_dir)
    assert after["journal.sqlite3"] == before["journal.sqlite3"]
    assert set(after) - set(before) <= {"journal.sqlite3-shm", "journal.sqlite3-wal"}
    assert after.get("journal.sqlite3-wal", (b"", 0))[0] == b""


def test_cli_without_a_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.sqlite3"
    assert sitrep_cli("--journal", str(missing)) == 2
    assert "no such journal" in capsys.readouterr().err
    assert not missing.exists()  # a report never creates a journal


def test_cli_with_a_broken_playbook_still_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, events = every_kind_of_event()
    path = tmp_path / "journal.sqlite3"
    write_journal(path, events)
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed\n", encoding="utf-8")
    monkeypatch.setenv("KRISE_ORG_FILE", str(TEST_ORG))
    monkeypatch.setenv("KRISE_PLAYBOOK", str(broken))
    assert sitrep_cli("--journal", str(path), "--html", "-") == 0
    captured = capsys.readouterr()
    assert f"playbook {broken}:" in captured.err and "using the defaults" in captured.err
    said = facts(strict_html(captured.out))
    assert said["Svarfrist"].startswith("8 t (")  # the engine's default


def test_cli_reports_a_drill_s_journal_as_of_the_drill_s_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A drill ran on its own clock with its own playbook: the report is as of its end
    (not months of 'overdue' by the wall clock) and by that playbook's deadlines."""
    from krise_tui.drill.player import RUN_FILE
    from krise_tui.exports.sitrep_cli import DRILL_RUN_FILE

    assert DRILL_RUN_FILE == RUN_FILE  # the exports may not import the drill's constant
    _, events = every_kind_of_event()  # dated 2026-11-27, around 14:00 UTC
    path = tmp_path / "journal.sqlite3"
    write_journal(path, events)
    root = Path(__file__).resolve().parents[1]
    playbook = root / "playbooks" / "forurenset-drikkevann.yaml"
    org = root / "playbooks" / "orgs" / "eksempel.yaml"
    run = {"start": "2026-11-27T15:00:00+01:00", "duration": 3 * 3600.0}
    (tmp_path / RUN_FILE).write_text(
        json.dumps({**run, "playbook": str(playbook), "org": str(org)}), encoding="utf-8"
    )
    monkeypatch.setenv("KRISE_PLAYBOOK", str(tmp_path / "not-this-one.yaml"))
    assert sitrep_cli("--journal", str(path), "--html", "-") == 0
    captured = capsys.readouterr()
    assert "as of the drill's end, 2026-11-27T18:00:00+01:00" in captured.err
    assert "not-this-one" not in captured.err  # the drill's playbook, not the configured
    said = facts(strict_html(captured.out))
    assert said["Svarfrist"].startswith("1 t (")  # forurenset-drikkevann: answer_batch 1h
    assert said["Tid siden åpning"].startswith("T+0")  # hours, not the months since
