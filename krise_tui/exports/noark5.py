"""The incident's record for the municipality's Noark 5 archive (arkivstruktur.xml, v5.0).

The guideline: social platforms are not an archive; every piece of information given and
every decision goes to the archive. One export is one *saksmappe* (the incident) in one
*arkivdel*, holding a *journalpost* or *arkivnotat* per thing that was said or decided:

===========================  ==========================  ===============================
what happened                registrering                 documents (UTF-8 text files)
===========================  ==========================  ===============================
a message version published  journalpost, U, Ekspedert    one per language (nb first)
a shared answer published    journalpost, U, Ekspedert    one per language
a request for case           journalpost, I, Midlertidig  the resident's post (ID numbers
processing (forwarded)       registrering                 already masked on arrival)
a freeze, extension or lift  journalpost, X, Ekspedert    reason and notice texts
a post hidden                arkivnotat                   the hidden post and the reason
the journal itself           arkivnotat                   every event, one JSON per line
===========================  ==========================  ===============================

Who wrote and who approved (four eyes), where each message was delivered or failed, and
which rumour a message corrects are *merknader*; each registrering names the journal
events it was made from (``virksomhetsspesifikkeMetadata``), so an archivist can check
it against the journal, whose verified chain head the *arkiv*'s description states.
``endringslogg.xml`` records each message's journal status going from approved
("Godkjent av leder") to sent ("Ekspedert").

Identifiers are UUIDs derived from the incident and the event (a second export of the same
journal gives the same ids); case and journal numbers are provisional (``--saksnummer``),
since the archive system assigns its own on import. The export is a package for import,
not a full deposit (*arkivuttrekk*): no ADDML ``arkivuttrekk.xml``, no running or public
journal reports.

:func:`build_noark5` is pure (events in, files out as bytes); :func:`write_noark5` writes
them, each file readable by its owner only (the documents quote residents' posts).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from krise_tui.core.features.freeze import FreezeAction, FreezeChanged
from krise_tui.core.features.messages import DeliveryStatus, MessageApproved, MessagePublished
from krise_tui.core.features.questions import AnswerPublished, CaseForwarded, PostHidden
from krise_tui.core.kernel import EventBase
from krise_tui.core.state import IncidentState
from krise_tui.files import atomic_write
from krise_tui.timefmt import DEFAULT_TIMEZONE, format_datetime, local_time

NS = "http://www.arkivverket.no/standarder/noark5/arkivstruktur"
NS_LOG = "http://www.arkivverket.no/standarder/noark5/endringslogg"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_KRISE = "urn:x-krise:noark5:1"
"""Our own namespace for the business-specific metadata (journal sequence numbers)."""

SCHEMA_VERSION = "5.0"
TEXT_FORMAT = "x-fmt/111"
"""PRONOM: plain text (the archive formats allow UTF-8 text)."""

_ID_NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-5e9f-9c1d-2b7a4e6f8d10")
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""Characters XML 1.0 cannot carry (a resident's post may hold any of them)."""

ET.register_namespace("", NS)
ET.register_namespace("xsi", NS_XSI)
ET.register_namespace("krise", NS_KRISE)


class ExportError(Exception):
    """The journal cannot be exported (no incident in it)."""


@dataclass(frozen=True)
class ArchiveContext:
    """What the export needs besides the journal: who the municipality and people are."""

    org_name: str
    municipality_number: str = "0000"
    tz: str = DEFAULT_TIMEZONE
    operators: Mapping[str, str] = field(default_factory=dict)
    """Operator id -> full name (ids are used where a name is missing)."""
    channel_names: Mapping[str, str] = field(default_factory=dict)
    case_year: int | None = None
    case_number: int = 1
    unit: str = "Kriseledelsen"
    """administrativEnhet: the unit responsible for the case."""
    producer: str = "krise"
    journal_name: str = "journal.sqlite3"
    chain_note: str = ""
    """What the journal's verification said (head hash, event count, signed head)."""


@dataclass(frozen=True)
class Noark5Export:
    """The files of one export: path relative to the export directory -> bytes."""

    files: dict[str, bytes]
    registrations: int
    documents: int


def _text(value: str) -> str:
    return _XML_UNSAFE.sub("", value)


def _sub(parent: ET.Element, name: str, text: str | int | None = None) -> ET.Element:
    element = ET.SubElement(parent, f"{{{NS}}}{name}")
    if text is not None:
        element.text = _text(str(text))
    return element


class _Builder:
    def __init__(
        self,
        state: IncidentState,
        events: Sequence[EventBase],
        seqs: Mapping[str, int],
        ctx: ArchiveContext,
        now: datetime,
    ) -> None:
        self.state = state
        self.events = events
        self.seqs = seqs
        self.ctx = ctx
        self.now = now
        self.files: dict[str, bytes] = {}
        self.journal_number = 0
        self.documents = 0
        self.changes: list[tuple[str, datetime, str, str, str]] = []

    # -- small parts --------------------------------------------------------------------

    def sysid(self, *parts: str) -> str:
        return str(uuid.uuid5(_ID_NAMESPACE, "/".join((self.state.incident.incident_id, *parts))))

    def when(self, dt: datetime) -> str:
        return local_time(dt, self.ctx.tz).replace(microsecond=0).isoformat()

    def day(self, dt: datetime) -> str:
        return local_time(dt, self.ctx.tz).date().isoformat()

    def person(self, actor: str) -> str:
        return self.ctx.operators.get(actor) or actor or "ukjent"

    def channel(self, channel_id: str) -> str:
        return self.ctx.channel_names.get(channel_id) or channel_id

    def document(
        self,
        reg: ET.Element,
        key: str,
        number: int,
        title: str,
        text: str,
        author: str,
        at: datetime,
        *,
        main: bool,
    ) -> None:
        """A dokumentbeskrivelse with one dokumentobjekt: ``text`` as a UTF-8 file."""
        self.documents += 1
        name = f"dokumenter/{self.journal_number:04d}-{number}.txt"
        data = (_text(text).rstrip("\n") + "\n").encode("utf-8")
        self.files[name] = data
        d = _sub(reg, "dokumentbeskrivelse")
        _sub(d, "systemID", self.sysid(key, "dokument", str(number)))
        _sub(d, "dokumenttype", "Brev")
        _sub(d, "dokumentstatus", "Dokumentet er ferdigstilt")
        _sub(d, "tittel", title)
        _sub(d, "forfatter", author)
        _sub(d, "opprettetDato", self.when(at))
        _sub(d, "opprettetAv", author)
        _sub(d, "dokumentmedium", "Elektronisk arkiv")
        _sub(d, "tilknyttetRegistreringSom", "Hoveddokument" if main else "Vedlegg")
        _sub(d, "dokumentnummer", number)
        _sub(d, "tilknyttetDato", self.when(self.now))
        _sub(d, "tilknyttetAv", self.ctx.producer)
        o = _sub(d, "dokumentobjekt")
        _sub(o, "systemID", self.sysid(key, "dokumentobjekt", str(number)))
        _sub(o, "versjonsnummer", 1)
        _sub(o, "variantformat", "Arkivformat")
        _sub(o, "format", TEXT_FORMAT)
        _sub(o, "formatDetaljer", "UTF-8")
        _sub(o, "opprettetDato", self.when(self.now))
        _sub(o, "opprettetAv", self.ctx.producer)
        _sub(o, "referanseDokumentfil", name)
        _sub(o, "sjekksum", hashlib.sha256(data).hexdigest())
        _sub(o, "sjekksumAlgoritme", "SHA256")
        _sub(o, "filstoerrelse", len(data))

    def variant_documents(
        self,
        reg: ET.Element,
        key: str,
        variants: Sequence[Mapping[str, Any]],
        title: Callable[[str], str],
        author: str,
        at: datetime,
    ) -> None:
        """One document per language variant, in the order given (the first is the main
        document), titled ``title(lang)``."""
        for number, variant in enumerate(variants, start=1):
            lang = str(variant.get("lang", ""))
            text = f"{variant.get('headline') or ''}\n\n{variant.get('body') or ''}".strip()
            self.document(reg, key, number, title(lang), text, author, at, main=number == 1)

    def registration(
        self,
        mappe: ET.Element,
        kind: str,
        key: str,
        created: datetime,
        created_by: str,
    ) -> ET.Element:
        """A registrering of xsi:type ``kind`` with the fields every one starts with."""
        self.journal_number += 1
        reg = _sub(mappe, "registrering")
        reg.set(f"{{{NS_XSI}}}type", kind)
        _sub(reg, "systemID", self.sysid(key))
        _sub(reg, "opprettetDato", self.when(created))
        _sub(reg, "opprettetAv", created_by)
        _sub(reg, "arkivertDato", self.when(self.now))
        _sub(reg, "arkivertAv", self.ctx.producer)
        return reg

    def describe(
        self,
        reg: ET.Element,
        title: str,
        *,
        public_title: str | None = None,
        description: str | None = None,
        authors: Iterable[str] = (),
        events: Iterable[EventBase] = (),
        notes: Iterable[tuple[str, datetime, str]] = (),
        parties: Iterable[tuple[str, str]] = (),
    ) -> None:
        """The fields after the documents, in the schema's order."""
        _sub(reg, "tittel", title)
        if public_title:
            _sub(reg, "offentligTittel", public_title)
        if description:
            _sub(reg, "beskrivelse", description)
        for author in dict.fromkeys(authors):
            _sub(reg, "forfatter", author)
        _sub(reg, "dokumentmedium", "Elektronisk arkiv")
        sources = [e for e in events if e.id in self.seqs]
        if sources:
            meta = _sub(reg, "virksomhetsspesifikkeMetadata")
            for e in sources:
                ref = ET.SubElement(meta, f"{{{NS_KRISE}}}journalhendelse")
                ref.set("seq", str(self.seqs[e.id]))
                ref.set("type", e.type)  # type: ignore[attr-defined]
                ref.set("id", e.id)
        for text, at, by in notes:
            m = _sub(reg, "merknad")
            _sub(m, "merknadstekst", text)
            _sub(m, "merknadsdato", self.when(at))
            _sub(m, "merknadRegistrertAv", by)
        for kind, name in parties:
            p = _sub(reg, "korrespondansepart")
            _sub(p, "korrespondanseparttype", kind)
            _sub(p, "korrespondansepartNavn", name)

    def journal_fields(
        self,
        reg: ET.Element,
        post_type: str,
        status: str,
        journal_date: datetime,
        *,
        document_date: datetime | None = None,
        received: datetime | None = None,
        sent: datetime | None = None,
    ) -> None:
        _sub(reg, "journalaar", local_time(journal_date, self.ctx.tz).year)
        _sub(reg, "journalsekvensnummer", self.journal_number)
        _sub(reg, "journalpostnummer", self.journal_number)
        _sub(reg, "journalposttype", post_type)
        _sub(reg, "journalstatus", status)
        _sub(reg, "journaldato", self.day(journal_date))
        if document_date is not None:
            _sub(reg, "dokumentetsDato", self.day(document_date))
        if received is not None:
            _sub(reg, "mottattDato", self.when(received))
        if sent is not None:
            _sub(reg, "sendtDato", self.when(sent))

    # -- what was said and decided ------------------------------------------------------

    def message(self, mappe: ET.Element, event: MessagePublished) -> None:
        version = self.state.messages.versions.get(event.version_id)
        if version is None:
            return
        approved = next(
            (
                e
                for e in self.events
                if isinstance(e, MessageApproved) and e.version_id == event.version_id
            ),
            None,
        )
        key = f"melding/{event.version_id}"
        author, approver = self.person(version.author), self.person(version.approver)
        reg = self.registration(mappe, "journalpost", key, version.approved_at, author)
        variants = _bokmal_first(version.variants)
        headline = next((str(v.get("headline") or "") for v in variants), "") or "Melding"
        self.variant_documents(
            reg, key, variants, lambda lang: f"{headline} ({lang})", author, version.approved_at
        )
        kind = _VERSION_WORDS.get(version.status, "Melding")
        if any(
            r.correction_version == event.version_id for r in self.state.rumours.rumours.values()
        ):
            kind = "Rettelse"
        notes = [
            (
                f"Skrevet av {author}, godkjent av {approver} (to personer) "
                f"{format_datetime(version.approved_at, self.ctx.tz)}.",
                version.approved_at,
                approver,
            )
        ]
        if version.break_glass_reason:
            notes.append(
                (
                    f"Godkjent uten full kontroll (nødprosedyre): {version.break_glass_reason}",
                    version.approved_at,
                    approver,
                )
            )
        if version.supersedes:
            older = self.state.messages.versions.get(version.supersedes)
            what = older.variants[0].get("headline") if older and older.variants else None
            notes.append(
                (
                    f"Erstatter versjon {version.supersedes}" + (f" («{what}»)." if what else "."),
                    event.ts,
                    approver,
                )
            )
        for rumour in self.state.rumours.rumours.values():
            if rumour.correction_version == event.version_id:
                notes.append((f"Korrigerer ryktet: {rumour.claim}", event.ts, approver))
        lines = []
        for d in self.state.messages.ledger(event.version_id):
            where = "ansattterminaler" if d.staff else self.channel(d.channel)
            state = _DELIVERY_WORDS.get(d.status, str(d.status))
            reason = (
                f" ({d.reason})" if d.reason and d.status is not DeliveryStatus.DELIVERED else ""
            )
            lines.append(f"{where}: {state}{reason}")
        if lines:
            notes.append(("Levering per kanal: " + "; ".join(lines) + ".", self.now, "krise"))
        channels = ", ".join(self.channel(c) for c in event.channels) or "ingen kanaler"
        self.describe(
            reg,
            f"{kind}: {headline}",
            public_title=f"{kind}: {headline}",
            description=f"Publisert til {channels}.",
            authors=[author],
            events=[e for e in (approved, event) if e is not None],
            notes=notes,
            parties=[("Mottaker", "Allmennheten")],
        )
        self.journal_fields(
            reg,
            "Utgående dokument",
            "Ekspedert",
            event.ts,
            document_date=version.approved_at,
            sent=event.ts,
        )
        self.changes.append(
            (self.sysid(key), event.ts, self.person(event.actor), "Godkjent av leder", "Ekspedert")
        )

    def answer(self, mappe: ET.Element, event: AnswerPublished) -> None:
        answer = self.state.questions.answers.get(event.answer_id)
        batch = self.state.questions.batches.get(event.batch_id)
        if answer is None or not event.posts:
            return  # nothing new said: failed replies sent again are the same documents
        key = f"svar/{event.answer_id}/{event.id}"
        author = self.person(answer.author)
        approver = self.person(answer.approver or "")
        approved_at = answer.approved_at or event.ts
        reg = self.registration(mappe, "journalpost", key, answer.saved_at, author)
        topic = batch.title if batch else event.batch_id
        variants = _bokmal_first(answer.variants)
        self.variant_documents(
            reg, key, variants, lambda lang: f"Svar: {topic} ({lang})", author, approved_at
        )
        channels = sorted(
            {
                self.channel(post.channel)
                for k in event.posts
                if (post := self.state.inbound.posts.get(k)) is not None
            }
        )
        notes = [
            (
                f"Skrevet av {author}, godkjent av {approver} (to personer).",
                approved_at,
                approver,
            ),
            (
                f"Felles svar sendt til {len(event.posts)} spørrere"
                + (f" på {', '.join(channels)}" if channels else "")
                + " og lagt ut på nettsidens spørsmål og svar.",
                event.ts,
                self.person(event.actor),
            ),
        ]
        # The batch's title may be a resident's own words: the public title uses only the
        # approved answer's headline.
        headline = next((str(v.get("headline") or "") for v in variants if v.get("headline")), "")
        self.describe(
            reg,
            f"Svar på spørsmål fra innbyggere: {topic}",
            public_title="Svar på spørsmål fra innbyggere" + (f": {headline}" if headline else ""),
            authors=[author],
            events=[event],
            notes=notes,
            parties=[("Mottaker", f"Innbyggere som spurte ({len(event.posts)})")],
        )
        self.journal_fields(
            reg,
            "Utgående dokument",
            "Ekspedert",
            event.ts,
            document_date=approved_at,
            sent=event.ts,
        )

    def case(self, mappe: ET.Element, event: CaseForwarded) -> None:
        post = self.state.inbound.posts.get(event.key)
        if post is None:
            return
        key = f"henvendelse/{event.key}"
        where = self.channel(post.channel)
        sender = post.author or str(post.meta.get("from") or "") or "ukjent avsender"
        by = self.person(event.actor)
        reg = self.registration(mappe, "journalpost", key, post.received_at, by)
        self.document(
            reg,
            key,
            1,
            f"Henvendelse via {where}",
            post.text,
            sender,
            post.received_at,
            main=True,
        )
        self.describe(
            reg,
            f"Henvendelse fra {sender} via {where}",
            public_title=f"Henvendelse fra privatperson via {where}",
            description="Be om saksbehandling; fikk standardsvaret og er sendt til postmottak.",
            events=[event],
            notes=[
                (
                    "Standardsvar sendt på samme kanal. Personnummer i innlegget er maskert.",
                    event.ts,
                    self.person(event.actor),
                )
            ],
            parties=[("Avsender", sender)],
        )
        self.journal_fields(
            reg,
            "Inngående dokument",
            "Midlertidig registrering av innkommet dokument",
            event.ts,
            received=post.received_at,
        )

    def freeze(self, mappe: ET.Element, event: FreezeChanged) -> None:
        if event.action not in _FREEZE_WORDS:
            return
        title = _FREEZE_WORDS[event.action]
        key = f"frys/{event.seq}/{event.id}"
        by = self.person(event.actor)
        reg = self.registration(mappe, "journalpost", key, event.ts, by)
        parts = [f"{title}.", f"Begrunnelse: {event.reason}"]
        if event.departments:
            parts.append("Gjelder: " + ", ".join(event.departments))
        else:
            parts.append("Gjelder: alle ansatte")
        if event.expires_at is not None:
            parts.append(f"Varer til {format_datetime(event.expires_at, self.ctx.tz)}")
        for lang, text in sorted(event.notice.items()):
            parts.append(f"\nMelding til ansatte ({lang}):\n{text}")
        for lang, text in sorted(event.message_variants.items()):
            parts.append(f"\nGjeldende melding ({lang}):\n{text}")
        self.document(reg, key, 1, title, "\n".join(parts), by, event.ts, main=True)
        self.describe(
            reg,
            f"{title}: {event.reason}",
            public_title=title,
            authors=[by],
            events=[event],
            parties=[("Intern mottaker", "Ansatte")],
        )
        self.journal_fields(
            reg, "Organinternt dokument uten oppfølging", "Ekspedert", event.ts, sent=event.ts
        )

    def hidden(self, mappe: ET.Element, event: PostHidden) -> None:
        post = self.state.inbound.posts.get(event.key)
        key = f"skjult/{event.key}/{event.id}"
        by = self.person(event.actor)
        reg = self.registration(mappe, "arkivnotat", key, event.ts, by)
        where = self.channel(post.channel) if post else event.key
        text = f"Skjult på {where}: {event.reason}\n\nInnlegget:\n{post.text if post else ''}"
        self.document(reg, key, 1, f"Skjult innlegg på {where}", text, by, event.ts, main=True)
        self.describe(
            reg,
            f"Innlegg skjult på {where}: {event.reason}",
            public_title=f"Innlegg skjult på {where}",
            description="Skjult, ikke slettet (retningslinjen: ingen dialog med angrep).",
            authors=[by],
            events=[event],
        )
        _sub(reg, "dokumentetsDato", self.day(event.ts))

    def journal_note(self, mappe: ET.Element, lines: Sequence[str]) -> None:
        key = "journal"
        last = self.events[-1].ts if self.events else self.now
        reg = self.registration(mappe, "arkivnotat", key, last, self.ctx.producer)
        self.document(
            reg,
            key,
            1,
            "Krisejournalen (én hendelse per linje, JSON)",
            "\n".join(lines),
            self.ctx.producer,
            last,
            main=True,
        )
        self.describe(
            reg,
            "Logg over krisehåndteringen (krisejournal)",
            description=(
                f"Alle {len(lines)} hendelser fra {self.ctx.journal_name}, i rekkefølge. "
                + self.ctx.chain_note
            ).strip(),
        )
        _sub(reg, "dokumentetsDato", self.day(last))


def _bokmal_first(variants: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Language variants with bokmål first, then by language code."""
    return sorted(variants, key=lambda v: (v.get("lang") != "nb", str(v.get("lang"))))


_DELIVERY_WORDS = {
    DeliveryStatus.DELIVERED: "levert",
    DeliveryStatus.FAILED: "feilet",
    DeliveryStatus.QUEUED: "i kø, ikke sendt",
    DeliveryStatus.HANDED: "sendt, levering ikke bekreftet",
    DeliveryStatus.NO_RECEIPT: "ingen kvittering innen fristen",
}
_VERSION_WORDS = {
    "published": "Melding",
    "updated": "Oppdatert melding",
    "retracted": "Tilbaketrekking",
}
_FREEZE_WORDS = {
    FreezeAction.FREEZE: "Ansatte bedt om å ikke publisere (frys)",
    FreezeAction.EXTEND: "Frysen forlenget",
    FreezeAction.UPDATE: "Ny gjeldende melding til ansatte under frys",
    FreezeAction.LIFT: "Frysen opphevet",
}


def build_noark5(
    state: IncidentState,
    rows: Sequence[tuple[int, EventBase]],
    ctx: ArchiveContext,
    *,
    now: datetime,
    journal_lines: Sequence[str] = (),
) -> Noark5Export:
    """The export of one incident: its state, its journal's ``(seq, event)`` rows in order,
    and (optionally) the journal as JSON lines to attach. Pure: same input, same bytes."""
    incident = state.incident
    if not incident.incident_id or incident.opened_at is None:
        raise ExportError("the journal holds no opened incident: nothing to archive")
    events = [e for _, e in rows]
    b = _Builder(state, events, {e.id: seq for seq, e in rows}, ctx, now)
    opened = incident.opened_at
    last = events[-1].ts if events else opened
    year = ctx.case_year or local_time(opened, ctx.tz).year

    arkiv = ET.Element(f"{{{NS}}}arkiv")
    _sub(arkiv, "systemID", b.sysid("arkiv"))
    _sub(arkiv, "tittel", f"{ctx.org_name}: kriseledelsens kommunikasjon")
    _sub(
        arkiv,
        "beskrivelse",
        f"Eksport fra krise av {ctx.journal_name}. {ctx.chain_note}".strip(),
    )
    _sub(arkiv, "arkivstatus", "Avsluttet")
    _sub(arkiv, "dokumentmedium", "Elektronisk arkiv")
    _sub(arkiv, "opprettetDato", b.when(now))
    _sub(arkiv, "opprettetAv", ctx.producer)
    _sub(arkiv, "avsluttetDato", b.when(now))
    _sub(arkiv, "avsluttetAv", ctx.producer)
    skaper = _sub(arkiv, "arkivskaper")
    _sub(skaper, "arkivskaperID", ctx.municipality_number)
    _sub(skaper, "arkivskaperNavn", ctx.org_name)

    del_ = _sub(arkiv, "arkivdel")
    _sub(del_, "systemID", b.sysid("arkivdel"))
    _sub(del_, "tittel", f"Krisekommunikasjon: {incident.title}")
    _sub(del_, "arkivdelstatus", "Avsluttet periode")
    _sub(del_, "dokumentmedium", "Elektronisk arkiv")
    _sub(del_, "opprettetDato", b.when(now))
    _sub(del_, "opprettetAv", ctx.producer)
    _sub(del_, "avsluttetDato", b.when(now))
    _sub(del_, "avsluttetAv", ctx.producer)
    _sub(del_, "arkivperiodeStartDato", b.day(opened))
    _sub(del_, "arkivperiodeSluttDato", b.day(last))

    mappe = _sub(del_, "mappe")
    mappe.set(f"{{{NS_XSI}}}type", "saksmappe")
    _sub(mappe, "systemID", b.sysid("saksmappe"))
    _sub(mappe, "mappeID", f"{year}/{ctx.case_number}")
    # A drill's journal is archived as what it was: an exercise.
    drill = "ØVELSE: " if incident.exercise else ""
    _sub(mappe, "tittel", drill + (incident.title or "Hendelse"))
    _sub(mappe, "offentligTittel", drill + (incident.title or "Hendelse"))
    about = [f"Krisenivå {incident.level}."]
    if incident.exercise:
        about.insert(0, "Øvelse: alt som ble sendt ut, var merket som øvelse.")
    if incident.playbook_title:
        about.append(f"Beredskapsplan: {incident.playbook_title} ({incident.playbook_hash}).")
    _sub(mappe, "beskrivelse", " ".join(about))
    _sub(mappe, "dokumentmedium", "Elektronisk arkiv")
    _sub(mappe, "opprettetDato", b.when(opened))
    _sub(mappe, "opprettetAv", b.person(incident.opened_by))
    _sub(mappe, "avsluttetDato", b.when(last))
    _sub(mappe, "avsluttetAv", ctx.producer)

    for event in events:
        if isinstance(event, MessagePublished):
            b.message(mappe, event)
        elif isinstance(event, AnswerPublished):
            b.answer(mappe, event)
        elif isinstance(event, CaseForwarded):
            b.case(mappe, event)
        elif isinstance(event, FreezeChanged):
            b.freeze(mappe, event)
        elif isinstance(event, PostHidden):
            b.hidden(mappe, event)
    if journal_lines:
        b.journal_note(mappe, journal_lines)

    _sub(mappe, "saksaar", year)
    _sub(mappe, "sakssekvensnummer", ctx.case_number)
    _sub(mappe, "saksdato", b.day(opened))
    _sub(mappe, "administrativEnhet", ctx.unit)
    _sub(mappe, "saksansvarlig", b.person(incident.opened_by))
    _sub(mappe, "saksstatus", "Under behandling")

    files = {"arkivstruktur.xml": _serialise(arkiv)}
    if b.changes:
        log = ET.Element(f"{{{NS_LOG}}}endringslogg")
        for ref, at, by, before, after in b.changes:
            change = ET.SubElement(log, f"{{{NS_LOG}}}endring")
            for name, value in (
                ("referanseArkivenhet", ref),
                ("referanseMetadata", "journalstatus"),
                ("endretDato", b.when(at)),
                ("endretAv", by),
                ("tidligereVerdi", before),
                ("nyVerdi", after),
            ):
                ET.SubElement(change, f"{{{NS_LOG}}}{name}").text = _text(value)
        files["endringslogg.xml"] = _serialise(log)
    files.update(b.files)
    return Noark5Export(files=files, registrations=b.journal_number, documents=b.documents)


def _serialise(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body + b"\n"


def event_line(seq: int, body: Mapping[str, Any]) -> str:
    """One journal event as the export's JSON line (the shape of ``journal show --json``)."""
    data = dict(body)
    out: dict[str, Any] = {"seq": seq}
    for k in ("type", "actor", "ts", "id", "incident_id"):
        out["time" if k == "ts" else k] = data.pop(k, None)
    data.pop("org", None)
    if "topic" in data:
        out["topic"] = data.pop("topic")
    out["body"] = data
    return json.dumps(out, ensure_ascii=False)


def write_noark5(export: Noark5Export, out_dir: Path) -> list[Path]:
    """Write the export's files under ``out_dir`` (created; each file 0600, atomically).

    Refuses a directory that already holds an ``arkivstruktur.xml`` (an export is never
    mixed with another)."""
    if (out_dir / "arkivstruktur.xml").exists():
        raise FileExistsError(f"{out_dir} already holds an export (arkivstruktur.xml)")
    written = []
    for name, data in export.files.items():
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, data, mode=0o600)
        written.append(path)
    return written
