"""A situation report (sitrep) of the incident so far, in Markdown or printable HTML.

The report is read by people who were not at the console: the next shift, the crisis
leadership's meeting, the county governor. It says, from the state alone:

- the incident, the playbook in force and how long it has lasted (``T+hh:mm``);
- every published message version: when, who approved it, which channels delivered it
  and which failed;
- the freeze of employee posting and the roll-call per department;
- the batches of questions from the public, their age against the answer deadline and
  whether they are answered;
- the rumours: their state, where they were seen, the time to correction against the
  deadline;
- the deliveries (messages and replies) that failed, with the platforms' reasons, and,
  when the caller passes the journal's events, every failed attempt on the way.

:func:`build_sitrep` turns the state into a :class:`Sitrep`: plain, already translated
words (bokmål or English), times in the municipality's time zone. :func:`sitrep_markdown`
and :func:`sitrep_html` render it. Both are pure: the same state, options and ``now`` give
the same text, so a report can be re-made from the journal at any time.

Texts from outside (citizens' posts, message headlines, platform error messages) are
never trusted as markup: the HTML is rendered by jinja2 with autoescaping on, the
Markdown escapes every character Markdown would read as syntax, and both drop control
characters and bidi overrides first (they can hide or reverse the text beside them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from functools import cache

import jinja2

from krise_tui.core.features.messages import FINAL_FAILURES, DeliveryReceipt, DeliveryStatus
from krise_tui.core.features.outbox import OutboxAttemptFailed
from krise_tui.core.features.questions import Batch, Question, post_of
from krise_tui.core.features.rumours import OWNER_WORDS, Rumour, RumourState, state_text
from krise_tui.core.kernel import EventBase
from krise_tui.core.policy import MessagePolicy
from krise_tui.core.rollcall import NO_DEPARTMENT, StaffStatus, roll_call
from krise_tui.core.state import IncidentState
from krise_tui.timefmt import DEFAULT_TIMEZONE, format_datetime, format_time, iso_local, local_time
from krise_tui.wire.delivery import ReceiptStatus

LANGS = ("nb", "en")
"""The languages a report can be written in."""

DEFAULT_ANSWER_DEADLINE = MessagePolicy().answer_deadline
"""The engine's default when no playbook says otherwise (one source: the policy)."""
DEFAULT_CORRECTION_DEADLINE = MessagePolicy().correction_deadline

ALERT = "⚠"
"""Marks what needs attention, always beside words that say why (never colour alone)."""

TEXT_LIMIT = 200
"""Characters of an outside text (a post, a headline, a reason) shown in a table cell."""

# Characters no report may carry (the website's rule, see channels.website.clean_text):
# C0/C1 controls can hide text or break a terminal that cats the Markdown; the bidi
# embeddings, overrides and isolates can reverse the text around them; noncharacters
# and lone surrogates are not text. Whitespace runs become one space (cells are one line).
_NONCHARACTERS = "".join(
    f"{chr(plane + 0xFFFE)}-{chr(plane + 0xFFFF)}" for plane in range(0, 0x110000, 0x10000)
)
_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
    f"\ud800-\udfff\ufdd0-\ufdef{_NONCHARACTERS}]"
)
_LANG_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

# Markdown syntax that may appear inside a line. Every outside text is placed after a
# fixed label or inside a table cell, never at the start of a line, so the line-start
# constructs (lists, headings, quotes) cannot be triggered and need no escaping.
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_\[\]<>|~&#])")


# --- the report as data ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One value: plain text (never markup), maybe a time, another language, an alert."""

    text: str
    iso: str | None = None
    """A time: its ISO 8601 local form for ``<time datetime>``."""
    lang: str | None = None
    """The text's language when it is not the report's (a bokmål headline in English)."""
    alert: bool = False
    """Needs attention (a missed deadline, a failure): rendered bold with ⚠."""


@dataclass(frozen=True, slots=True)
class Table:
    """A table with a caption and column headers; ``empty`` says what no rows means."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    empty: str
    row_headers: bool = False
    """The first cell of each row names the row (``<th scope="row">``)."""


@dataclass(frozen=True, slots=True)
class Section:
    """A part of the report: a heading, facts (term: value), tables, a closing note."""

    id: str
    heading: str
    facts: tuple[tuple[str, Cell], ...] = ()
    tables: tuple[Table, ...] = ()
    note: str = ""


@dataclass(frozen=True, slots=True)
class Sitrep:
    """The whole report, translated and cleaned, ready to render."""

    lang: str
    title: str
    org_name: str
    generated: Cell
    t_plus: str
    sections: tuple[Section, ...]
    labels: Mapping[str, str]
    """Fixed words the renderers need (``org``, ``generated``, ``footer``)."""


# --- words -----------------------------------------------------------------------------

_WORDS: dict[str, tuple[str, str]] = {
    "title": ("Situasjonsrapport", "Situation report"),
    "org": ("Kommune", "Municipality"),
    "generated": ("Laget", "Made"),
    "footer": (
        "Intern rapport laget av krise fra hendelsesjournalen. Den gjengir henvendelser fra "
        "innbyggere: del den bare med dem som trenger den.",
        "Internal report made by krise from the incident journal. It quotes messages from "
        "residents: share it only with those who need it.",
    ),
    "none": ("ingen", "none"),
    "dash": ("–", "–"),
    # incident
    "incident": ("Hendelse og dreiebok", "Incident and playbook"),
    "no_incident": ("Ingen hendelse er åpnet i journalen.", "No incident has been opened."),
    "incident_title": ("Hendelse", "Incident"),
    "level": ("Nivå", "Level"),
    "incident_id": ("Hendelses-ID", "Incident id"),
    "opened": ("Åpnet", "Opened"),
    "opened_by": ("Åpnet av", "Opened by"),
    "status": ("Status", "Status"),
    "cause": ("Årsak", "Cause"),
    "elapsed": ("Tid siden åpning", "Time since opening"),
    "playbook": ("Dreiebok", "Playbook"),
    "no_playbook": ("ingen dreiebok er aktivert", "no playbook activated"),
    "current": ("Gjeldende budskap", "Current message"),
    "no_current": ("ingen ennå", "none yet"),
    "events": ("Hendelser i journalen", "Events in the journal"),
    # messages
    "messages": ("Publiserte meldinger", "Published messages"),
    "timeline": ("Tidslinje for publiserte versjoner", "Timeline of published versions"),
    "no_messages": ("Ingen melding er publisert ennå.", "No message has been published yet."),
    "version": ("Versjon", "Version"),
    "published": ("Publisert", "Published"),
    "kind": ("Type", "Kind"),
    "headline": ("Overskrift", "Headline"),
    "approver": ("Godkjent av", "Approved by"),
    "delivered": ("Levert", "Delivered"),
    "failed": ("Feilet", "Failed"),
    "underway": ("Underveis", "Under way"),
    "current_mark": ("gjeldende", "current"),
    "break_glass": ("nødprosedyre", "break-glass"),
    "status_published": ("ny", "new"),
    "status_updated": ("oppdatering", "update"),
    "status_retracted": ("tilbaketrekking", "retraction"),
    # freeze
    "freeze": ("Frys og opprop", "Freeze and roll-call"),
    "freeze_active": ("aktiv: ansattes publisering er fryst", "active: staff posting is frozen"),
    "freeze_lifted": ("opphevet", "lifted"),
    "freeze_never": ("ingen frys er sendt", "no freeze has been sent"),
    "scope": ("Gjelder", "Applies to"),
    "all_staff": ("alle ansatte", "all staff"),
    "reason": ("Grunn", "Reason"),
    "since": ("Fryst siden", "Frozen since"),
    "changed": ("Sist endret", "Last changed"),
    "changed_by": ("Endret av", "Changed by"),
    "expires": ("Utløper", "Expires"),
    "no_expiry": ("når den oppheves", "when lifted"),
    "notice_no": ("Frysmelding nr.", "Notice no."),
    "acked_total": ("Kvittert", "Acknowledged"),
    "of": ("av", "of"),
    "reminded": ("Påminnet", "Reminded"),
    "rollcall": ("Opprop per avdeling", "Roll-call per department"),
    "no_rollcall": ("Ingen ansatte i omfanget.", "No staff in scope."),
    "department": ("Avdeling", "Department"),
    "no_department": ("(uten avdeling)", "(no department)"),
    "acked": ("Kvittert", "Acknowledged"),
    "pending": ("Ikke kvittert", "Not acknowledged"),
    "offline": ("Frakoblet", "Offline"),
    "in_all": ("I alt", "Total"),
    "total": ("Totalt", "Total"),
    "no_freeze_note": (
        "Ingen frys er sendt, så det finnes ikke noe opprop.",
        "No freeze has been sent, so there is no roll-call.",
    ),
    # questions
    "questions": ("Spørsmål fra publikum", "Questions from the public"),
    "answer_deadline": ("Svarfrist", "Answer deadline"),
    "answer_deadline_note": (
        "fra et spørsmål kommer inn til gruppens felles svar er publisert",
        "from a question's arrival to its batch's shared answer",
    ),
    "questions_received": ("Innlegg mottatt", "Posts received"),
    "rejected": ("Avvist ved mottak (feil format)", "Refused on arrival (malformed)"),
    "unanswered_batches": ("Grupper uten svar", "Batches without an answer"),
    "batches": ("Spørsmålsgrupper", "Question batches"),
    "no_batches": ("Ingen spørsmål er gruppert.", "No questions have been batched."),
    "batch": ("Gruppe", "Batch"),
    "question": ("Spørsmål", "Question"),
    "size": ("Antall", "Size"),
    "first_received": ("Først mottatt", "First received"),
    "age": ("Alder", "Age"),
    "due": ("Frist", "Due"),
    "answer": ("Svar", "Answer"),
    # rumours
    "rumours": ("Rykter", "Rumours"),
    "correction_deadline": ("Frist for korreksjon", "Correction deadline"),
    "correction_deadline_note": (
        "fra ryktet først ble sett til korreksjonen er publisert",
        "from a rumour's first sighting to its published correction",
    ),
    "open_rumours": ("Åpne rykter", "Open rumours"),
    "recurrence_alerts": ("Varsler om gjentakelse", "Recurrence alerts"),
    "rumour_table": ("Rykter og korreksjoner", "Rumours and corrections"),
    "no_rumours": ("Ingen rykter er registrert.", "No rumours have been registered."),
    "rumour": ("Rykte", "Rumour"),
    "claim": ("Påstand", "Claim"),
    "owner": ("Faktaeier", "Fact owner"),
    "sightings": ("Observasjoner", "Sightings"),
    "after_correction": ("etter korreksjonen", "after the correction"),
    "first_seen": ("Først sett", "First seen"),
    "to_correction": ("Tid til korreksjon", "Time to correction"),
    # deliveries
    "failures": ("Leveranser med feil", "Deliveries with failures"),
    "failing": (
        "Leveranser som har feilet eller prøves på nytt",
        "Deliveries that failed or are being retried",
    ),
    "no_failing": ("Ingen leveranser har feilet.", "No delivery has failed."),
    "channel": ("Kanal", "Channel"),
    "about": ("Gjelder", "About"),
    "attempts": ("Forsøk", "Attempts"),
    "resends": ("Sendt på nytt", "Re-sent"),
    "updated": ("Sist endret", "Last changed"),
    "history": ("Feilede forsøk i journalen", "Failed attempts in the journal"),
    "no_history": ("Ingen feilede forsøk.", "No failed attempts."),
    "time": ("Tid", "Time"),
    "attempt": ("Forsøk nr.", "Attempt no."),
    "message_version": ("melding", "message"),
    "reply_to": ("svar til", "reply to"),
    "broker": ("megleren", "the broker"),
    "no_receipt_reason": ("ingen kvittering innen fristen", "no receipt within the deadline"),
    "retrying": ("prøver igjen", "retrying"),
    "unknown_reason": ("ukjent årsak", "unknown reason"),
}

_DELIVERY_WORDS = {
    DeliveryStatus.QUEUED: ("i kø", "queued"),
    DeliveryStatus.HANDED: ("sendt", "sent"),
    DeliveryStatus.DELIVERED: ("levert", "delivered"),
    DeliveryStatus.FAILED: ("feilet", "failed"),
    DeliveryStatus.NO_RECEIPT: ("ingen kvittering", "no receipt"),
}
"""The ledger's words, as the console shows them (i kø / sendt / levert / feilet)."""


class _Words:
    """The report's fixed words in one language."""

    def __init__(self, lang: str) -> None:
        self.en = lang == "en"

    def __call__(self, key: str) -> str:
        nb, en = _WORDS[key]
        return en if self.en else nb

    def pick(self, pair: tuple[str, str]) -> str:
        """The bokmål or English one of ``pair``."""
        return pair[1] if self.en else pair[0]


# --- helpers ---------------------------------------------------------------------------


def clean(text: str, limit: int | None = TEXT_LIMIT) -> str:
    """``text`` as one safe line: unsafe characters dropped, whitespace runs as one space,
    cut at ``limit`` characters with an ellipsis."""
    line = " ".join(_UNSAFE.sub("", text).split())
    if limit is not None and len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


def markdown_escape(text: str) -> str:
    """``text`` with every character Markdown could read as inline syntax backslash-escaped
    (CommonMark lets any ASCII punctuation be escaped: the result reads as ``text``)."""
    return _MARKDOWN_SYNTAX.sub(r"\\\1", text)


def format_duration(span: timedelta, lang: str) -> str:
    """``45 min``, ``2 t 05 min`` / ``2 h 05 min``, ``8 t``, ``3 d 4 t`` (rounded down)."""
    minutes = max(0, int(span.total_seconds() // 60))
    hours, mins = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    h = "h" if lang == "en" else "t"
    if days:
        return f"{days} d {hours} {h}" if hours else f"{days} d"
    if hours:
        return f"{hours} {h} {mins:02d} min" if mins else f"{hours} {h}"
    return f"{mins} min"


def t_plus(opened: datetime | None, now: datetime) -> str:
    """``T+hh:mm`` since the incident opened (``T+--:--`` before it has)."""
    if opened is None:
        return "T+--:--"
    minutes = max(0, int((now - opened).total_seconds() // 60))
    return f"T+{minutes // 60:02d}:{minutes % 60:02d}"


def _lang_tag(lang: str | None, report_lang: str) -> str | None:
    """A text's language, when it is a valid tag and not the report's own."""
    if not lang or lang == report_lang or not _LANG_TAG.match(lang):
        return None
    return lang


class _Clock:
    """Times as the report shows them: local, with the date only when it is not today."""

    def __init__(self, tz: str | tzinfo, lang: str, now: datetime) -> None:
        self.tz, self.lang, self.now = tz, lang, now
        self.today = local_time(now, tz).date()

    def cell(self, when: datetime | None, words: _Words) -> Cell:
        if when is None:
            return Cell(words("dash"))
        if local_time(when, self.tz).date() == self.today:
            text = format_time(when, self.tz, self.lang)
        else:
            text = format_datetime(when, self.tz, self.lang)
        return Cell(text, iso=iso_local(when, self.tz))

    def long(self, when: datetime) -> Cell:
        return Cell(format_datetime(when, self.tz, self.lang), iso=iso_local(when, self.tz))


def _person(actor: str, operators: Mapping[str, str]) -> str:
    """``Kari Nordmann (kari)`` when the org file names the operator, else the id."""
    name = operators.get(actor)
    return clean(f"{name} ({actor})" if name else actor, 120)


# --- sections --------------------------------------------------------------------------


def _incident(
    state: IncidentState, w: _Words, clock: _Clock, operators: Mapping[str, str]
) -> Section:
    inc = state.incident
    if inc.opened_at is None:
        return Section("hendelse", w("incident"), note=w("no_incident"))
    opened_by = _person(inc.opened_by, operators)
    elapsed = clock.now - inc.opened_at
    facts: list[tuple[str, Cell]] = [
        (w("incident_title"), Cell(clean(inc.title))),
        (w("level"), Cell(str(inc.level))),
        (w("incident_id"), Cell(clean(inc.incident_id))),
        (w("opened"), clock.long(inc.opened_at)),
        (w("opened_by"), Cell(opened_by)),
        (
            w("elapsed"),
            Cell(f"{t_plus(inc.opened_at, clock.now)} ({format_duration(elapsed, clock.lang)})"),
        ),
    ]
    if inc.playbook_id:
        title = clean(inc.playbook_title or inc.playbook_id)
        facts.append(
            (
                w("playbook"),
                Cell(f"{title} ({clean(inc.playbook_id, 80)}, {(inc.playbook_hash or '')[:8]})"),
            )
        )
    else:
        facts.append((w("playbook"), Cell(w("no_playbook"), alert=True)))
    current = state.messages.current
    if current is None:
        facts.append((w("current"), Cell(w("no_current"))))
    else:
        facts.append(
            (
                w("current"),
                Cell(
                    f"v{current.version_id[:8]}: {clean(current.text)}",
                    lang=_lang_tag("nb", clock.lang),
                ),
            )
        )
    facts.append((w("events"), Cell(str(state.event_count))))
    return Section("hendelse", w("incident"), facts=tuple(facts))


def _messages(
    state: IncidentState, w: _Words, clock: _Clock, operators: Mapping[str, str]
) -> Section:
    msgs = state.messages
    published = sorted(
        (v for v in msgs.versions.values() if v.published_at is not None),
        key=lambda v: (v.published_at, v.version_id),
    )
    rows: list[tuple[Cell, ...]] = []
    for v in published:
        label = f"v{v.version_id[:8]}"
        if v.version_id == msgs.published_version:
            label += f" ({w('current_mark')})"
        nb = next(
            (x for x in v.variants if x.get("lang") == "nb"), v.variants[0] if v.variants else {}
        )
        headline = clean(str(nb.get("headline") or nb.get("body") or ""))
        approver = _person(v.approver, operators)
        if v.break_glass_reason:
            approver += f" – {w('break_glass')}: {clean(v.break_glass_reason, 120)}"
        delivered, failed, underway = [], [], []
        for d in msgs.ledger(v.version_id):
            channel = clean(d.channel, 60)
            if d.status is DeliveryStatus.DELIVERED:
                delivered.append(channel)
            elif d.status in FINAL_FAILURES:
                failed.append(f"{channel} ({_delivery_reason(d.status, d.reason, w)})")
            else:
                word = w.pick(_DELIVERY_WORDS[d.status])
                if d.retrying:
                    word += f", {w('retrying')}"
                underway.append(f"{channel} ({word})")
        kind = _WORDS.get(f"status_{v.status}")
        rows.append(
            (
                Cell(label),
                clock.cell(v.published_at, w),
                Cell(w.pick(kind) if kind else clean(v.status, 40)),
                Cell(headline, lang=_lang_tag(str(nb.get("lang") or "nb"), clock.lang)),
                Cell(approver, alert=bool(v.break_glass_reason)),
                Cell(", ".join(delivered) or w("none")),
                Cell(", ".join(failed) or w("none"), alert=bool(failed)),
                Cell(", ".join(underway) or w("none")),
            )
        )
    table = Table(
        caption=w("timeline"),
        headers=(
            w("version"),
            w("published"),
            w("kind"),
            w("headline"),
            w("approver"),
            w("delivered"),
            w("failed"),
            w("underway"),
        ),
        rows=tuple(rows),
        empty=w("no_messages"),
        row_headers=True,
    )
    return Section("meldinger", w("messages"), tables=(table,))


def _delivery_reason(status: DeliveryStatus, reason: str | None, w: _Words) -> str:
    if reason:
        return clean(reason)
    if status is DeliveryStatus.NO_RECEIPT:
        return w("no_receipt_reason")
    return w("unknown_reason")


def _freeze(
    state: IncidentState,
    w: _Words,
    clock: _Clock,
    operators: Mapping[str, str],
    roster: Mapping[str, str | None] | None,
    department_names: Mapping[str, str],
) -> Section:
    current = state.freeze.current
    if current is None:
        facts = ((w("status"), Cell(w("freeze_never"))),)
        return Section("frys", w("freeze"), facts=facts, note=w("no_freeze_note"))
    scope = ", ".join(clean(department_names.get(d, d), 80) for d in current.departments)
    rc = roll_call(state, roster)
    acked = rc.count(StaffStatus.ACKED)
    facts_list: list[tuple[str, Cell]] = [
        (
            w("status"),
            Cell(w("freeze_active") if current.active else w("freeze_lifted")),
        ),
        (w("scope"), Cell(scope or w("all_staff"))),
        (w("reason"), Cell(clean(current.reason))),
        (w("since"), clock.long(current.since)),
        (w("changed"), clock.long(current.changed_at)),
        (w("changed_by"), Cell(_person(current.by, operators))),
    ]
    if current.active:
        facts_list.append(
            (
                w("expires"),
                clock.long(current.expires_at) if current.expires_at else Cell(w("no_expiry")),
            )
        )
    facts_list += [
        (w("notice_no"), Cell(str(current.seq))),
        (
            w("acked_total"),
            Cell(
                f"{acked} {w('of')} {rc.total}",
                alert=current.active and acked < rc.total,
            ),
        ),
        (w("reminded"), Cell(str(len(state.freeze.reminders)))),
    ]
    rows = [
        (
            Cell(clean(department_names.get(d.department, d.department), 80)),
            Cell(str(d.count(StaffStatus.ACKED))),
            Cell(str(d.count(StaffStatus.PENDING))),
            Cell(str(d.count(StaffStatus.OFFLINE))),
            Cell(str(len(d.rows))),
        )
        for d in rc.departments
    ]
    if rows:
        rows.append(
            (
                Cell(w("total")),
                Cell(str(acked)),
                Cell(str(rc.count(StaffStatus.PENDING))),
                Cell(str(rc.count(StaffStatus.OFFLINE))),
                Cell(str(rc.total)),
            )
        )
    table = Table(
        caption=w("rollcall"),
        headers=(w("department"), w("acked"), w("pending"), w("offline"), w("in_all")),
        rows=tuple(rows),
        empty=w("no_rollcall"),
        row_headers=True,
    )
    return Section("frys", w("freeze"), facts=tuple(facts_list), tables=(table,))


def _say(lang: str, nb: str, en: str) -> str:
    """The bokmål or the English of a sentence with values in it."""
    return en if lang == "en" else nb


def _against_deadline(
    *, done_at: datetime | None, due: datetime, now: datetime, lang: str
) -> tuple[str, bool]:
    """Where something stands against its deadline, in words, and whether it is late."""
    if done_at is not None:
        if done_at <= due:
            return _say(lang, "innen fristen", "within the deadline"), False
        late = format_duration(done_at - due, lang)
        return _say(lang, f"{late} etter fristen", f"{late} after the deadline"), True
    if now <= due:
        left = format_duration(due - now, lang)
        return _say(lang, f"{left} igjen", f"{left} left"), False
    over = format_duration(now - due, lang)
    return _say(lang, f"fristen gikk ut for {over} siden", f"overdue by {over}"), True


def _questions(state: IncidentState, w: _Words, clock: _Clock, deadline: timedelta) -> Section:
    qs = state.questions
    lang = clock.lang
    entries: list[tuple[tuple[int, datetime, str], tuple[Cell, ...]]] = []
    unanswered = 0
    for batch in qs.batches.values():
        members = [qs.questions[k] for k in batch.members if k in qs.questions]
        if batch.merged_into is not None or not members:
            continue  # merged away (its questions live on in the other), or still empty
        received = {q.key: post_of(state, q).received_at for q in members}
        first = min(received.values())
        due = first + deadline
        answer = qs.answers.get(batch.answer_id) if batch.answer_id else None
        answered_at = answer.published_at if answer is not None else None
        where, late = _against_deadline(done_at=answered_at, due=due, now=clock.now, lang=lang)
        if answered_at is not None:
            at = clock.cell(answered_at, w).text
            status = _say(lang, f"besvart {at} ({where})", f"answered {at} ({where})")
            status += _after_answer(batch, members, received, answered_at, lang)
            order = (1, answered_at, batch.batch_id)
        else:
            unanswered += 1
            status = _say(lang, f"ikke besvart: {where}", f"not answered: {where}")
            if batch.preliminary_id is not None:
                status += _say(lang, "; foreløpig svar sendt", "; preliminary answer sent")
            order = (0, due, batch.batch_id)
        # The title is the first question's text unless the playbook seeded the batch.
        opener = members[0] if batch.title == post_of(state, members[0]).text[:200] else None
        row = (
            Cell(clean(batch.batch_id, 60)),
            Cell(clean(batch.title), lang=_lang_tag(opener.language if opener else None, lang)),
            Cell(str(len(members))),
            clock.cell(first, w),
            Cell(format_duration(clock.now - first, lang)),
            clock.cell(due, w),
            Cell(status, alert=late),
        )
        entries.append((order, row))
    entries.sort(key=lambda entry: entry[0])  # unanswered first, the most urgent on top
    facts = (
        (
            w("answer_deadline"),
            Cell(f"{format_duration(deadline, lang)} ({w('answer_deadline_note')})"),
        ),
        (w("questions_received"), Cell(str(len(state.inbound.posts)))),
        (w("unanswered_batches"), Cell(str(unanswered), alert=unanswered > 0)),
        (w("rejected"), Cell(str(state.inbound.rejected))),
    )
    table = Table(
        caption=w("batches"),
        headers=(
            w("batch"),
            w("question"),
            w("size"),
            w("first_received"),
            w("age"),
            w("due"),
            w("answer"),
        ),
        rows=tuple(row for _, row in entries),
        empty=w("no_batches"),
        row_headers=True,
    )
    return Section("sporsmal", w("questions"), facts=facts, tables=(table,))


def _after_answer(
    batch: Batch,
    members: list[Question],
    received: dict[str, datetime],
    answered_at: datetime,
    lang: str,
) -> str:
    """Askers who joined after the answer and got no reply (auto-answer was off)."""
    if batch.auto_answer:
        return ""
    later = sum(1 for q in members if received[q.key] > answered_at and not q.replies)
    if not later:
        return ""
    return _say(
        lang,
        f"; {later} nye spørsmål etter svaret (automatisk svar er av)",
        f"; {later} new question(s) after the answer (auto-answer is off)",
    )


def _rumours(state: IncidentState, w: _Words, clock: _Clock, deadline: timedelta) -> Section:
    rumours = sorted(state.rumours.rumours.values(), key=lambda r: (r.first_seen, r.rumour_id))
    facts = (
        (
            w("correction_deadline"),
            Cell(f"{format_duration(deadline, clock.lang)} ({w('correction_deadline_note')})"),
        ),
        (w("open_rumours"), Cell(str(sum(1 for r in rumours if r.open)))),
        (
            w("recurrence_alerts"),
            Cell(str(len(state.rumours.alerts)), alert=bool(state.rumours.alerts)),
        ),
    )
    table = Table(
        caption=w("rumour_table"),
        headers=(
            w("rumour"),
            w("claim"),
            w("owner"),
            w("status"),
            w("sightings"),
            w("first_seen"),
            w("to_correction"),
        ),
        rows=tuple(_rumour_row(r, w, clock, deadline) for r in rumours),
        empty=w("no_rumours"),
        row_headers=True,
    )
    return Section("rykter", w("rumours"), facts=facts, tables=(table,))


def _rumour_row(r: Rumour, w: _Words, clock: _Clock, deadline: timedelta) -> tuple[Cell, ...]:
    lang = clock.lang
    due = r.first_seen + deadline
    sightings = str(len(r.sightings))
    if r.recurrences:
        sightings += f" ({r.recurrences} {w('after_correction')})"
    if r.sightings:  # where it was seen: per channel, most first
        sightings += ": " + ", ".join(f"{channel} {n}" for channel, n in r.seen_on())
    late = False
    if r.corrected_at is not None:
        where, late = _against_deadline(done_at=r.corrected_at, due=due, now=clock.now, lang=lang)
        took = format_duration(r.corrected_at - r.first_seen, lang)
        progress = _say(
            lang, f"korrigert etter {took} ({where})", f"corrected after {took} ({where})"
        )
    elif r.state is RumourState.CLOSED:
        progress = _say(lang, "lukket uten korreksjon", "closed without a correction")
    else:
        where, late = _against_deadline(done_at=None, due=due, now=clock.now, lang=lang)
        progress = _say(lang, f"ikke korrigert: {where}", f"not corrected: {where}")
    return (
        Cell(clean(r.rumour_id, 60)),
        Cell(clean(r.claim)),
        Cell(w.pick(OWNER_WORDS[r.fact_owner])),
        Cell(state_text(r.state, lang)),
        Cell(sightings, alert=bool(r.recurrences)),
        clock.cell(r.first_seen, w),
        Cell(progress, alert=late),
    )


def _failures(
    state: IncidentState, w: _Words, clock: _Clock, history: Iterable[EventBase] | None
) -> Section:
    rows: list[tuple[Cell, ...]] = []
    deliveries = state.messages.deliveries
    for d in sorted(deliveries.values(), key=lambda d: (d.requested_at, d.effect_id)):
        if not (d.status in FINAL_FAILURES or d.retrying or d.reason or d.resends):
            continue
        status = w.pick(_DELIVERY_WORDS[d.status])
        if d.retrying:
            status += f", {w('retrying')}"
        rows.append(
            (
                Cell(clean(d.channel, 60)),
                Cell(f"{w('message_version')} v{d.version_id[:8]}"),
                Cell(status, alert=d.status in FINAL_FAILURES),
                Cell(str(d.attempts)),
                Cell(str(d.resends)),
                Cell(
                    _delivery_reason(d.status, d.reason, w)
                    if (d.reason or d.status in FINAL_FAILURES)
                    else w("dash")
                ),
                clock.cell(d.updated_at or d.requested_at, w),
            )
        )
    replies = state.questions.replies
    for reply in sorted(replies.values(), key=lambda r: (r.requested_at, r.effect_id)):
        if not (reply.status in FINAL_FAILURES or reply.reason):
            continue
        rows.append(
            (
                Cell(clean(reply.channel, 60)),
                Cell(f"{w('reply_to')} {clean(reply.post_key, 80)}"),
                Cell(w.pick(_DELIVERY_WORDS[reply.status]), alert=reply.status in FINAL_FAILURES),
                Cell(str(reply.attempts)),
                Cell(w("dash")),  # a reply has no operator re-send
                Cell(_delivery_reason(reply.status, reply.reason, w)),
                clock.cell(reply.requested_at, w),
            )
        )
    failing = Table(
        caption=w("failing"),
        headers=(
            w("channel"),
            w("about"),
            w("status"),
            w("attempts"),
            w("resends"),
            w("cause"),
            w("updated"),
        ),
        rows=tuple(rows),
        empty=w("no_failing"),
        row_headers=True,
    )
    tables = [failing]
    if history is not None:
        tables.append(_history(state, w, clock, history))
    return Section("leveranser", w("failures"), tables=tuple(tables))


def _history(state: IncidentState, w: _Words, clock: _Clock, history: Iterable[EventBase]) -> Table:
    """Every failed attempt the journal recorded, also those a later re-send cleared."""
    deliveries = state.messages.deliveries
    replies = state.questions.replies

    def about(effect_id: str) -> tuple[str, str] | None:
        if (d := deliveries.get(effect_id)) is not None:
            return d.channel, f"{w('message_version')} v{d.version_id[:8]}"
        if (r := replies.get(effect_id)) is not None:
            return r.channel, f"{w('reply_to')} {clean(r.post_key, 80)}"
        return None

    rows: list[tuple[Cell, ...]] = []
    for event in history:
        if isinstance(event, DeliveryReceipt):
            receipt = event.receipt
            if receipt.status is not ReceiptStatus.FAILED:
                continue
            found = about(event.effect_id)
            if found is None:
                continue
            channel, what = found
            reason = clean(receipt.reason or w("unknown_reason"))
            final = receipt.final or receipt.permanent
            rows.append(
                (
                    clock.cell(event.ts, w),
                    Cell(clean(channel, 60)),
                    Cell(what),
                    Cell(str(receipt.attempt)),
                    Cell(reason if final else f"{reason} ({w('retrying')})", alert=final),
                )
            )
        elif isinstance(event, OutboxAttemptFailed):
            found = about(event.effect_id)
            if found is None:
                continue
            channel, what = found
            rows.append(
                (
                    clock.cell(event.ts, w),
                    Cell(f"{clean(channel, 60)} ({w('broker')})"),
                    Cell(what),
                    Cell(str(event.attempt)),
                    Cell(clean(event.reason)),
                )
            )
    return Table(
        caption=w("history"),
        headers=(w("time"), w("channel"), w("about"), w("attempt"), w("cause")),
        rows=tuple(rows),
        empty=w("no_history"),
    )


# --- the report ------------------------------------------------------------------------


def build_sitrep(
    state: IncidentState,
    *,
    org_name: str,
    tz: str | tzinfo = DEFAULT_TIMEZONE,
    lang: str = "nb",
    now: datetime,
    roster: Mapping[str, str | None] | None = None,
    department_names: Mapping[str, str] | None = None,
    operators: Mapping[str, str] | None = None,
    answer_deadline: timedelta = DEFAULT_ANSWER_DEADLINE,
    correction_deadline: timedelta = DEFAULT_CORRECTION_DEADLINE,
    history: Iterable[EventBase] | None = None,
) -> Sitrep:
    """The report as data (see the module docstring for what it holds).

    ``roster`` (staff id → department id) and ``department_names`` come from the org
    file, as do ``operators`` (id → full name); the deadlines come from the playbook.
    ``history`` is the journal's events (or just its failed attempts): given, the report
    lists every failed delivery attempt, also those a later re-send has cleared from the
    ledger. ``now`` must be timezone-aware.
    """
    if lang not in LANGS:
        raise ValueError(f"a report is written in {' or '.join(LANGS)}, not {lang!r}")
    w = _Words(lang)
    clock = _Clock(tz, lang, now)
    people = operators or {}
    depts = {NO_DEPARTMENT: w("no_department"), **(department_names or {})}
    title = w("title")
    if state.incident.exercise:  # a drill's report is never mistaken for an incident's
        title += " (ØVELSE)" if lang == "nb" else " (EXERCISE)"
    if state.incident.title:
        title += f": {clean(state.incident.title)}"
    sections = (
        _incident(state, w, clock, people),
        _messages(state, w, clock, people),
        _freeze(state, w, clock, people, roster, depts),
        _questions(state, w, clock, answer_deadline),
        _rumours(state, w, clock, correction_deadline),
        _failures(state, w, clock, history),
    )
    return Sitrep(
        lang=lang,
        title=title,
        org_name=clean(org_name, 120),
        generated=clock.long(now),
        t_plus=t_plus(state.incident.opened_at, now),
        sections=sections,
        labels={"org": w("org"), "generated": w("generated"), "footer": w("footer")},
    )


def render_markdown(report: Sitrep) -> str:
    """The report as Markdown (CommonMark with GFM tables); every text escaped."""

    def text(cell: Cell) -> str:
        escaped = markdown_escape(cell.text)
        return f"**{ALERT} {escaped}**" if cell.alert else escaped

    labels = report.labels
    lines = [
        f"# {markdown_escape(report.title)}",
        "",
        f"**{markdown_escape(labels['org'])}:** {markdown_escape(report.org_name)}  ",
        f"**{markdown_escape(labels['generated'])}:** {text(report.generated)} ({report.t_plus})",
    ]
    for section in report.sections:
        lines += ["", f"## {markdown_escape(section.heading)}", ""]
        for term, value in section.facts:
            lines.append(f"- **{markdown_escape(term)}:** {text(value)}")
        for table in section.tables:
            if lines[-1]:
                lines.append("")
            lines.append(f"**{markdown_escape(table.caption)}**")
            lines.append("")
            if not table.rows:
                lines.append(f"*{markdown_escape(table.empty)}*")
                continue
            lines.append("| " + " | ".join(markdown_escape(h) for h in table.headers) + " |")
            lines.append("|" + "|".join(" --- " for _ in table.headers) + "|")
            for row in table.rows:
                lines.append("| " + " | ".join(text(c) for c in row) + " |")
        if section.note:
            if lines[-1]:
                lines.append("")
            lines.append(markdown_escape(section.note))
    lines += ["", "---", "", markdown_escape(labels["footer"]), ""]
    return "\n".join(lines)


@cache
def _environment() -> jinja2.Environment:
    """HTML autoescaping on (every template here is HTML), a missing value is an error."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("krise_tui.exports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(report: Sitrep) -> str:
    """The report as one self-contained, printable, accessible HTML page."""
    return _environment().get_template("sitrep.html.j2").render(r=report, alert=ALERT)


def sitrep_markdown(
    state: IncidentState,
    *,
    org_name: str,
    tz: str | tzinfo = DEFAULT_TIMEZONE,
    lang: str = "nb",
    now: datetime,
    roster: Mapping[str, str | None] | None = None,
    department_names: Mapping[str, str] | None = None,
    operators: Mapping[str, str] | None = None,
    answer_deadline: timedelta = DEFAULT_ANSWER_DEADLINE,
    correction_deadline: timedelta = DEFAULT_CORRECTION_DEADLINE,
    history: Iterable[EventBase] | None = None,
) -> str:
    """The situation report as Markdown (see :func:`build_sitrep` for the options)."""
    return render_markdown(
        build_sitrep(
            state,
            org_name=org_name,
            tz=tz,
            lang=lang,
            now=now,
            roster=roster,
            department_names=department_names,
            operators=operators,
            answer_deadline=answer_deadline,
            correction_deadline=correction_deadline,
            history=history,
        )
    )


def sitrep_html(
    state: IncidentState,
    *,
    org_name: str,
    tz: str | tzinfo = DEFAULT_TIMEZONE,
    lang: str = "nb",
    now: datetime,
    roster: Mapping[str, str | None] | None = None,
    department_names: Mapping[str, str] | None = None,
    operators: Mapping[str, str] | None = None,
    answer_deadline: timedelta = DEFAULT_ANSWER_DEADLINE,
    correction_deadline: timedelta = DEFAULT_CORRECTION_DEADLINE,
    history: Iterable[EventBase] | None = None,
) -> str:
    """The situation report as printable HTML (see :func:`build_sitrep` for the options)."""
    return render_html(
        build_sitrep(
            state,
            org_name=org_name,
            tz=tz,
            lang=lang,
            now=now,
            roster=roster,
            department_names=department_names,
            operators=operators,
            answer_deadline=answer_deadline,
            correction_deadline=correction_deadline,
            history=history,
        )
    )
