"""The Noark 5 export: a real journal file in, arkivstruktur.xml out, validated against
Arkivverket's v5.0 schemas (tests/data/noark5), every document present with its checksum.
"""

from __future__ import annotations

import hashlib
import sqlite3
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import xmlschema

from krise_tui import cli
from krise_tui.bus.envelope import Signer, load_private_key, write_key_pair
from krise_tui.core.features.messages import DraftVariant, SaveDraft
from krise_tui.core.kernel import EventBase
from krise_tui.exports.noark5 import NS, ArchiveContext, ExportError, build_noark5
from krise_tui.journal.head import head_path, make_head, write_head
from krise_tui.journal.store import Journal
from tests.corekit import NOW, TEST_ORG, every_kind_of_event, make_ctx, opened, run
from tests.test_sitrep import HOSTILE, write_journal

SCHEMAS = Path(__file__).parent / "data" / "noark5"
N = {"n": NS}
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


@pytest.fixture(scope="module")
def arkivstruktur() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMAS / "arkivstruktur.xsd"))


@pytest.fixture(scope="module")
def endringslogg() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMAS / "endringslogg.xsd"))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The org file from the tests, and a data directory of our own (its keys)."""
    monkeypatch.setenv("KRISE_ORG_FILE", str(TEST_ORG))
    monkeypatch.setenv("KRISE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def signed_journal(directory: Path, events: list[EventBase]) -> Path:
    """A real journal file with the console's signed head beside it."""
    path = directory / "journal.sqlite3"
    write_journal(path, events)
    keys = directory / "data" / "keys"
    write_key_pair(keys)
    signer = Signer(load_private_key(keys / "console.key"))

    async def head() -> tuple[int, str]:
        async with await Journal.open(path, read_only=True) as journal:
            return await journal.head()

    import asyncio

    seq, digest = asyncio.run(head())
    signed = make_head(
        seq=seq, hash=digest, at=NOW.isoformat(), key_id=signer.key_id, sign=signer.sign_bytes
    )
    write_head(signed, [head_path(path)])
    return path


def export(*argv: str) -> int:
    return cli.main(["journal", "export", *argv])


def test_the_whole_incident_goes_to_the_archive_valid_and_complete(
    env: Path,
    arkivstruktur: xmlschema.XMLSchema,
    endringslogg: xmlschema.XMLSchema,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state, events = every_kind_of_event()
    path = signed_journal(env, events)
    out = env / "arkiv"
    assert export(str(path), "--noark5", str(out), "--saksnummer", "2026/4711") == 0
    assert "-> " in capsys.readouterr().out

    arkivstruktur.validate(str(out / "arkivstruktur.xml"))
    endringslogg.validate(str(out / "endringslogg.xml"))
    root = ET.parse(out / "arkivstruktur.xml").getroot()
    assert root.findtext("n:arkivskaper/n:arkivskaperID", namespaces=N) == "9998"  # the org file's
    description = root.findtext("n:beskrivelse", namespaces=N) or ""
    assert f"{len(events)} hendelser" in description and "signert topp kontrollert" in description
    mappe = root.find("n:arkivdel/n:mappe", N)
    assert mappe is not None and mappe.get(XSI_TYPE) == "saksmappe"
    assert mappe.findtext("n:mappeID", namespaces=N) == "2026/4711"
    assert mappe.findtext("n:tittel", namespaces=N) == "Flom i sentrum"

    regs = mappe.findall("n:registrering", N)
    titles = [r.findtext("n:tittel", namespaces=N) or "" for r in regs]
    kinds = Counter((r.get(XSI_TYPE), r.findtext("n:journalposttype", namespaces=N)) for r in regs)
    published = [v for v in state.messages.versions.values() if v.published_at is not None]
    # every published version, the answer, the forwarded request, every freeze change
    # except the re-assertion (the same notice again), the hidden post, the journal
    assert kinds[("journalpost", "Utgående dokument")] == len(published) + 1
    assert kinds[("journalpost", "Inngående dokument")] == 1
    assert kinds[("arkivnotat", None)] == 2
    assert "Melding: Flomvarsel" in titles and "Rettelse: Dammen står" in titles
    assert any(t.startswith("Svar på spørsmål fra innbyggere: ") for t in titles)
    assert any(t.startswith("Innlegg skjult på ") and "Personangrep" in t for t in titles)
    # public titles never quote a resident: not the batch's words, not the sender's name
    answer = regs[next(i for i, t in enumerate(titles) if t.startswith("Svar på"))]
    assert answer.findtext("n:offentligTittel", namespaces=N) == "Svar på spørsmål fra innbyggere"
    case = next(
        r for r in regs if r.findtext("n:journalposttype", namespaces=N) == "Inngående dokument"
    )
    assert "+47" in (case.findtext("n:tittel", namespaces=N) or "")
    assert (
        case.findtext("n:offentligTittel", namespaces=N) == "Henvendelse fra privatperson via sms"
    )
    message = regs[titles.index("Melding: Flomvarsel")]
    notes = " ".join(t.text or "" for t in message.iterfind(".//n:merknadstekst", N))
    assert "Skrevet av Ola Hansen, godkjent av Kari Nordmann (to personer)" in notes
    assert "Levering per kanal: " in notes  # what is known, per channel
    seqs = [int(e.get("seq", "0")) for e in message.iter("{urn:x-krise:noark5:1}journalhendelse")]
    assert len(seqs) == 2 and seqs == sorted(seqs)  # approved, then published

    # every document is there, with the size and SHA-256 the archive is told
    objects = root.findall(".//n:dokumentobjekt", N)
    assert len(objects) >= len(regs)
    for obj in objects:
        data = (out / (obj.findtext("n:referanseDokumentfil", namespaces=N) or "")).read_bytes()
        assert obj.findtext("n:sjekksum", namespaces=N) == hashlib.sha256(data).hexdigest()
        assert obj.findtext("n:filstoerrelse", namespaces=N) == str(len(data))
        data.decode("utf-8")
    journal_doc = regs[-1].find(".//n:referanseDokumentfil", N)
    assert journal_doc is not None
    lines = (out / (journal_doc.text or "")).read_text("utf-8").splitlines()
    assert len(lines) == len(events)  # the journal itself, every event

    # personal data: the ID number a resident posted never reaches the archive unmasked,
    # and every file is readable by its owner only
    for file in out.rglob("*"):
        if file.is_file():
            assert b"17057234881" not in file.read_bytes()
            assert file.stat().st_mode & 0o777 == 0o600


def test_the_same_journal_gives_the_same_ids(env: Path) -> None:
    state, events = every_kind_of_event()
    rows = list(enumerate(events, start=1))
    ctx = ArchiveContext(org_name="Testkommune")
    one = build_noark5(state, rows, ctx, now=NOW + timedelta(hours=1))
    two = build_noark5(state, rows, ctx, now=NOW + timedelta(hours=1))
    assert one.files == two.files

    def ids(data: bytes) -> list[str]:
        return [e.text or "" for e in ET.fromstring(data).iter(f"{{{NS}}}systemID")]

    later = build_noark5(state, rows, ctx, now=NOW + timedelta(days=1))
    assert ids(later.files["arkivstruktur.xml"]) == ids(one.files["arkivstruktur.xml"])
    assert len(set(ids(one.files["arkivstruktur.xml"]))) == len(ids(one.files["arkivstruktur.xml"]))


def test_hostile_text_stays_text_and_the_xml_stays_valid(
    env: Path, arkivstruktur: xmlschema.XMLSchema
) -> None:
    from tests.test_sitrep import hostile_incident

    state, events = hostile_incident()
    rows = list(enumerate(events, start=1))
    exp = build_noark5(
        state, rows, ArchiveContext(org_name="Testkommune"), now=NOW, journal_lines=["{}"]
    )
    xml = exp.files["arkivstruktur.xml"]
    (env / "hostile.xml").write_bytes(xml)
    arkivstruktur.validate(str(env / "hostile.xml"))  # parses: no control character got in
    titles = [e.text or "" for e in ET.fromstring(xml).iter(f"{{{NS}}}tittel")]
    assert any("<script>alert(1)</script>" in t for t in titles)  # text, not markup
    assert b"<script>" not in xml and b"\x1b" not in xml and b"\x07" not in xml
    assert HOSTILE.split()[0] not in xml.decode("utf-8")  # escaped, never raw


def test_a_tampered_journal_is_not_exported_unless_asked(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, events = every_kind_of_event()
    path = signed_journal(env, events)
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER IF EXISTS events_append_only_update")
    con.execute("UPDATE events SET ts = '2020-01-01T00:00:00+00:00' WHERE seq = 5")
    con.commit()
    con.close()

    out = env / "arkiv"
    assert export(str(path), "--noark5", str(out)) == 1
    err = capsys.readouterr().err
    assert "BROKEN" in err and "seq 5" in err and "--allow-broken" in err
    assert not out.exists()  # nothing half-written

    assert export(str(path), "--noark5", str(out), "--allow-broken") == 0
    root = ET.parse(out / "arkivstruktur.xml").getroot()
    assert "ADVARSEL: journalen besto ikke kontrollen" in (
        root.findtext("n:beskrivelse", namespaces=N) or ""
    )
    # a second export never mixes with the first
    assert export(str(path), "--noark5", str(out), "--allow-broken") == 2
    assert "already holds an export" in capsys.readouterr().err


def test_a_drill_journal_is_checked_with_the_key_beside_it(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A drill's directory holds its journal and its console's keys; this machine's
    own console key (another one) does not make the drill's journal 'broken'."""
    _, events = every_kind_of_event()
    drill = env / "drill"
    drill.mkdir()
    path = signed_journal(drill, events)
    (drill / "data" / "keys").rename(drill / "keys")  # as a drill lays it out
    write_key_pair(env / "data" / "keys")  # this machine's console
    out = env / "arkiv"
    assert export(str(path), "--noark5", str(out)) == 0, capsys.readouterr().err
    assert "signert topp kontrollert" in (out / "arkivstruktur.xml").read_text("utf-8")


def test_bad_input_is_named(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert export(str(env / "nowhere.sqlite3"), "--noark5", str(env / "a")) == 2
    assert "no such file" in capsys.readouterr().err
    _, events = every_kind_of_event()
    path = signed_journal(env, events)
    assert export(str(path), "--noark5", str(env / "a"), "--saksnummer", "4711") == 2
    assert "expected YYYY/N" in capsys.readouterr().err

    # a journal without an incident has nothing to archive
    ctx = make_ctx("ola", now=NOW)
    state = opened(ctx)
    assert state.incident.incident_id
    draft = run(state, SaveDraft((DraftVariant("nb", "x", "y"),)), ctx).events
    with pytest.raises(ExportError, match="no opened incident"):
        from krise_tui.core.state import IncidentState

        build_noark5(IncidentState(), [(1, draft[0])], ArchiveContext(org_name="x"), now=NOW)


def test_a_drill_is_archived_and_reported_as_an_exercise(
    env: Path, arkivstruktur: xmlschema.XMLSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    """An incident opened by a console in exercise mode says so: in the journal's words,
    the archive's case title and description, and the situation report's heading."""
    import dataclasses

    from krise_tui.core.describe import describe
    from krise_tui.core.engine import decide
    from krise_tui.core.features.incident import IncidentOpened, OpenIncident
    from krise_tui.core.kernel import Accepted
    from krise_tui.core.state import fold
    from krise_tui.exports.sitrep import sitrep_markdown
    from tests.corekit import NOW, POLICY, make_ctx

    drill = make_ctx(policy=dataclasses.replace(POLICY, exercise=True))
    decision = decide(fold([]), OpenIncident("Flom i sentrum"), drill)
    assert isinstance(decision, Accepted)
    (opened,) = decision.events
    assert isinstance(opened, IncidentOpened) and opened.exercise
    assert describe(opened, "nb") == "Hendelse åpnet: Flom i sentrum (nivå 1, øvelse)"
    path = signed_journal(env, list(decision.events))
    out = env / "arkiv"
    assert export(str(path), "--noark5", str(out)) == 0, capsys.readouterr().err
    arkivstruktur.validate(str(out / "arkivstruktur.xml"))
    mappe = ET.parse(out / "arkivstruktur.xml").getroot().find("n:arkivdel/n:mappe", N)
    assert mappe is not None
    assert mappe.findtext("n:tittel", namespaces=N) == "ØVELSE: Flom i sentrum"
    assert (mappe.findtext("n:beskrivelse", namespaces=N) or "").startswith("Øvelse:")
    report = sitrep_markdown(fold(decision.events), org_name="Testkommune", now=NOW)
    assert report.startswith("# Situasjonsrapport (ØVELSE): Flom i sentrum\n")
