"""The recorder: a journal turned into a scenario, so an incident can be drilled again.

:func:`record` reads a journal's events and writes a scenario (YAML, valid against the
scenario schema) with

- **injects**: every post from the public at the time it arrived, staff terminals coming
  and going and acknowledging (``staff.simulate: false``: the recording carries every
  acknowledgement), and the world: a drill's own log gives its world events (outages,
  broker restarts, notes); for any other journal a channel whose delivery failed for
  good is taken down then, and brought back when it next delivered;
- optionally (``actions=True``) a scripted response ``opptak`` with the leadership's
  actions (drafts, approvals, publishing, freezes, answers, rumours, batch changes,
  re-sends), so the incident can be replayed without a person;
- with personal data pseudonymised (:mod:`krise_tui.drill.pseudonym`) unless asked
  otherwise: names, handles, numbers, addresses and ID numbers in posts, authors and
  platform details, and in the recorded actions' texts.

A journal written by a drill has its run file beside it (``drill-run.json``): the
recording then keeps the drill's start, length and seed, so replaying it with its actions
at ``--speed max`` gives the same final state hash as the original run (when the personal
data is kept: pseudonyms change the texts, and so the state). What the console decided
by itself — triage, batching, rumour sightings, the playbook's freeze, reminders — is not
recorded: the replay decides it again.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from krise_tui.bus.broker import DEMO_STAFF, SIM_PREFIX, sim_staff_id
from krise_tui.core.features.freeze import (
    FreezeAction,
    FreezeChanged,
    RemindersSent,
    StaffAcknowledged,
)
from krise_tui.core.features.inbound import PostReceived, PresenceChanged
from krise_tui.core.features.incident import IncidentOpened, PlaybookActivated
from krise_tui.core.features.messages import (
    ApprovalBlocked,
    DeliveryReceipt,
    DeliveryRetried,
    DraftSaved,
    MessageApproved,
    MessagePublished,
)
from krise_tui.core.features.questions import (
    AnswerApproved,
    AnswerPublished,
    AnswerSaved,
    AutoAnswerSet,
    BatchesMerged,
    BatchSplit,
    CaseForwarded,
    PostHidden,
    PostTriaged,
    QuestionMoved,
    ReplyRetried,
)
from krise_tui.core.features.rumours import (
    CorrectionLinked,
    RecurrenceAcknowledged,
    RumourRegistered,
    RumourSighted,
    RumourStateChanged,
    SpreadersAnswered,
)
from krise_tui.core.kernel import EventBase
from krise_tui.drill.player import LOG_FILE, RUN_FILE
from krise_tui.drill.pseudonym import Pseudonymiser
from krise_tui.drill.scenario import ScenarioError, parse_scenario
from krise_tui.journal.store import Journal
from krise_tui.playbook.loader import read_limited
from krise_tui.playbook.models import Org, format_duration
from krise_tui.rules.idnumbers import mask_id_numbers
from krise_tui.rules.triage import Label
from krise_tui.wire.delivery import ReceiptStatus

RESPONSE = "opptak"
"""The name of the recorded response."""

SYSTEM_ACTORS = frozenset({"system", "bus", "outbox", "triage", "batching", "matching", "drill"})
"""Actors that are the console itself, not a person: their events are not actions."""

LABEL_KINDS = {
    Label.SERVICE_QUESTION: "question",
    Label.FACTUAL_ERROR: "rumour",
    Label.DISSATISFIED: "criticism",
    Label.CRITICISM: "criticism",
    Label.RUMOUR: "rumour",
    Label.CASE_PROCESSING: "case",
    Label.ATTACK: "attack",
    Label.IRRELEVANT: "other",
}


def _offset(value: timedelta) -> str:
    return f"T+{format_duration(value)}" if value > timedelta(0) else "T+0"


@dataclass
class _Recording:
    """The recorder's working memory (one journal)."""

    start: datetime
    pseudo: Pseudonymiser | None
    org: Org | None
    drafts: dict[str, str] = field(default_factory=dict)
    """Draft id → script name (``d1``…)."""
    versions: dict[str, str] = field(default_factory=dict)
    """Version id → draft id."""
    answers: dict[str, str] = field(default_factory=dict)
    """Answer id → script name (``a1``…)."""
    staff: dict[str, str] = field(default_factory=dict)
    """Staff id → the id it gets in the recording (a user of the drill's broker)."""
    effects: dict[str, str] = field(default_factory=dict)
    """Delivery effect id → version id."""
    timeline: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def at(self, event: EventBase) -> str:
        return _offset(max(event.ts - self.start, timedelta(0)))

    def text(self, value: str) -> str:
        return self.pseudo.text(value) if self.pseudo is not None else value

    def staff_id(self, original: str) -> str:
        """The broker user a recorded terminal logs in as (ids stay stable)."""
        if original in self.staff:
            return self.staff[original]
        kept = original in DEMO_STAFF or (
            original.startswith(SIM_PREFIX) and original.removeprefix(SIM_PREFIX).isdigit()
        )
        if kept:
            chosen = original
        else:
            n = 1
            taken = set(self.staff.values())
            while sim_staff_id(n) in taken or sim_staff_id(n) in self.staff:
                n += 1
            chosen = sim_staff_id(n)
        self.staff[original] = chosen
        return chosen

    def skip(self, what: str) -> None:
        self.skipped[what] = self.skipped.get(what, 0) + 1


def record(
    events: Sequence[EventBase],
    *,
    org: Org | None = None,
    org_ref: str = "../orgs/eksempel.yaml",
    playbook_ref: str | None = None,
    run: dict[str, Any] | None = None,
    log: Sequence[dict[str, Any]] | None = None,
    objectives: list[dict[str, Any]] | None = None,
    actions: bool = False,
    pseudonymise: bool = True,
    salt: str | None = None,
    title: str | None = None,
    scenario_id: str | None = None,
) -> dict[str, Any]:
    """The scenario (as YAML-ready data) that replays ``events``; see the module doc.

    ``run`` is the drill's run file (start, duration, seed) and ``log`` its log (world
    events, which the journal does not hold) when the journal is a drill's; then the
    world events come from the log and not from the receipts, and presence changes at a
    broker restart are left to the restart. ``objectives`` default to the first message
    and the answered batches.
    """
    opened = next((e for e in events if isinstance(e, IncidentOpened)), None)
    if opened is None:
        raise ValueError("the journal has no opened incident to record")
    activated = next((e for e in events if isinstance(e, PlaybookActivated)), None)
    start = datetime.fromisoformat(run["start"]) if run else opened.ts
    pseudo = None
    if pseudonymise:
        pseudo = Pseudonymiser(
            salt=salt if salt is not None else secrets.token_hex(8),
            own_phones=[str(p) for p in org.allowed_phone_numbers] if org else [],
            own_domains=[_domain(str(org.website))] if org else [],
            keep=_keep(org),
        )
        posts = [e for e in events if isinstance(e, PostReceived)]
        pseudo.learn(
            [p.post.text for p in posts],
            [p.post.author for p in posts if p.post.author],
        )
    rec = _Recording(start=start, pseudo=pseudo, org=org)
    labels = {e.key: e.label for e in events if isinstance(e, PostTriaged) and not e.corrected}
    world = [entry for entry in log or [] if entry.get("world")]
    restarts = {
        start + timedelta(seconds=float(e["offset"]))
        for e in world
        if e["world"].get("event") == "broker_restart"
    }
    _injects(events, rec, labels, infer_world=log is None, restarts=restarts)
    for entry in world:
        at = _offset(timedelta(seconds=float(entry["offset"])))
        world_data = dict(entry["world"])
        if "text" in world_data and pseudo is not None:
            texts = world_data["text"].items()
            world_data["text"] = {lang: pseudo.text(str(t)) for lang, t in texts}
        rec.timeline.append({"at": at, "world": world_data})
    rec.timeline.sort(key=lambda item: _seconds(item["at"]))
    if actions:
        _actions(events, rec)
    last = max((e.ts for e in events), default=start)
    if run:
        duration = timedelta(seconds=float(run["duration"]))
    else:
        duration = timedelta(minutes=int((last - start).total_seconds() // 60) + 1)
    playbook = playbook_ref or (activated.path if activated else "")
    data: dict[str, Any] = {
        "id": scenario_id or f"opptak-{(run or {}).get('scenario_id') or opened.incident_id[:8]}",
        "title": title or f"Opptak: {opened.title}",
        "description": _description(rec, pseudonymise),
        "playbook": playbook,
        "org": org_ref,
        "start": start.isoformat(),
        "duration": format_duration(duration),
        "situation": {"nb": f"Opptak av hendelsen «{opened.title}» (nivå {opened.level})."},
        "seed": int(run["seed"]) if run else 1,
        "staff": {"terminals": 0, "simulate": False},
        "timeline": rec.timeline,
        "objectives": objectives
        or [
            {"id": "forste-melding", "kind": "first_message"},
            {"id": "samlesvar", "kind": "batches_answered"},
        ],
    }
    if actions:
        data["responses"] = {
            RESPONSE: {
                "description": "Det kriseledelsen gjorde, slik journalen viser det.",
                "actions": rec.actions,
            }
        }
    return data


def _domain(url: str) -> str:
    host = url.split("://", 1)[-1].split("/", 1)[0].lower()
    return host.removeprefix("www.")


def _keep(org: Org | None) -> set[str]:
    """Words the pseudonymiser leaves: the org's operators sign messages by name."""
    if org is None:
        return set()
    keep = {org.name}
    for operator in org.operators:
        keep.add(operator.full_name)
        keep.update(operator.full_name.split())
    return keep


def _description(rec: _Recording, pseudonymised: bool) -> str:
    text = "Tatt opp fra en journal."
    if pseudonymised:
        text += " Navn, brukernavn, telefonnumre, e-postadresser og fødselsnumre er byttet ut."
    if rec.skipped:
        left = ", ".join(f"{n} {what}" for what, n in sorted(rec.skipped.items()))
        text += f" Ikke med: {left}."
    return text


# --- injects ------------------------------------------------------------------------------


def _injects(
    events: Sequence[EventBase],
    rec: _Recording,
    labels: dict[str, str],
    *,
    infer_world: bool,
    restarts: set[datetime],
) -> None:
    down: dict[str, str] = {}
    for event in events:
        if isinstance(event, PostReceived):
            rec.timeline.append({"at": rec.at(event), "post": _post(event, rec, labels)})
        elif isinstance(event, PresenceChanged) and event.role == "staff":
            if event.ts in restarts:
                continue  # the broker restart takes them off and back again

            go = "online" if event.online else "offline"
            _staff(rec, event, {"go": go}, event.member_id)
        elif isinstance(event, StaffAcknowledged):
            _staff(rec, event, {"ack": True, "seq": event.seq}, event.staff_id)
        elif isinstance(event, DeliveryReceipt) and infer_world:
            receipt = event.receipt
            final_failure = receipt.status is ReceiptStatus.FAILED and (
                receipt.final or receipt.permanent
            )
            if final_failure and event.channel not in down:
                reason = receipt.reason or "503 Service Unavailable"
                down[event.channel] = reason
                world = {"event": "channel_down", "channel": event.channel, "reason": reason[:500]}
                rec.timeline.append({"at": rec.at(event), "world": world})
            elif receipt.status is ReceiptStatus.DELIVERED and event.channel in down:
                del down[event.channel]
                world = {"event": "channel_up", "channel": event.channel}
                rec.timeline.append({"at": rec.at(event), "world": world})
            elif receipt.status is ReceiptStatus.FAILED and not final_failure:
                rec.skip("mislykkede forsøk som broen prøvde igjen")


def _post(event: PostReceived, rec: _Recording, labels: dict[str, str]) -> dict[str, Any]:
    post = event.post
    pseudo = rec.pseudo
    out: dict[str, Any] = {"channel": event.channel, "id": post.id}
    author = pseudo.author(post.author) if pseudo is not None else post.author
    if author:
        out["author"] = author
    label = labels.get(event.key)
    if label is not None:
        out["kind"] = LABEL_KINDS.get(Label(label), "other")
    out["via"] = post.kind
    text = post.text if pseudo is not None or not event.masked else _unmasked(post.text)
    out["text"] = rec.text(text)
    if post.reply_to:
        out["reply_to"] = post.reply_to
    if post.meta:
        meta = {
            str(k): (pseudo.value(v) if pseudo is not None else v)
            for k, v in post.meta.items()
            if isinstance(v, str | int | bool) or v is None
        }
        if meta:
            out["meta"] = meta
    return out


_MASKED = re.compile(r"(?<![0-9])([0-9]{6})\*{5}")


def _unmasked(text: str) -> str:
    """The journal keeps an ID number masked (its first six digits and five stars): put a
    made-up number in its place that masks back to the same text, so a replay journals
    the same post (masked, and counted as masked) without anyone's real number."""

    def made_up(match: re.Match[str]) -> str:
        head = match.group(1)
        for individual in range(1000):
            candidate = f"{head}{individual:03d}"
            for k1 in range(10):
                for k2 in range(10):
                    number = f"{candidate}{k1}{k2}"
                    if mask_id_numbers(number) == (match.group(0), 1):
                        return number
        return match.group(0)  # no number fits: keep it masked (the replay counts none)

    return _MASKED.sub(made_up, text)


def _staff(rec: _Recording, event: EventBase, what: dict[str, Any], staff_id: str) -> None:
    """One staff inject; terminals doing the same at the same time share it."""
    at = rec.at(event)
    sid = rec.staff_id(staff_id)
    last = rec.timeline[-1] if rec.timeline else None
    if last is not None and last["at"] == at and "staff" in last:
        staff = last["staff"]
        if {k: v for k, v in staff.items() if k != "ids"} == what and sid not in staff["ids"]:
            staff["ids"].append(sid)
            return
    rec.timeline.append({"at": at, "staff": {"ids": [sid], **what}})


# --- actions --------------------------------------------------------------------------------


def _actions(events: Sequence[EventBase], rec: _Recording) -> None:
    from krise_tui.core.features.outbox import OutboxRequested

    for event in events:
        if isinstance(event, OutboxRequested) and event.version_id and event.channel:
            rec.effects[event.effect_id] = event.version_id
    registered_with: dict[str, list[str]] = {}
    # Replies sent again, per decision (the run of events with one actor and time): a
    # decision that publishes an answer or replies to spreaders sends its own failed ones
    # again when replayed as well; others are recorded with the posts they went to.
    resent: dict[int, list[str] | None] = {}
    start = 0
    for index, event in enumerate(events):
        if index and (events[index - 1].actor, events[index - 1].ts) != (event.actor, event.ts):
            start = index
        actor = event.actor
        if actor in SYSTEM_ACTORS:
            continue
        at = rec.at(event)

        def add(verb: str, value: Any, *, by: str = actor, at: str = at) -> None:
            rec.actions.append({"at": at, "by": by, verb: value})

        if isinstance(event, DraftSaved):
            name = rec.drafts.get(event.draft_id)
            if name is None:
                name = rec.drafts[event.draft_id] = f"d{len(rec.drafts) + 1}"
            compose: dict[str, Any] = {"id": name}
            if event.template_id:
                compose["template"] = event.template_id
            compose["text"] = {str(v["lang"]): _variant(v, rec) for v in event.variants}
            compose["channels"] = list(event.channels)
            if event.status != "published":
                compose["status"] = event.status
            if event.supersedes:
                superseded = rec.versions.get(event.supersedes)
                if superseded is None or superseded not in rec.drafts:
                    rec.skip("utkast som erstatter en ukjent versjon")
                    continue
                compose["supersedes"] = rec.drafts[superseded]
            add("compose", compose)
        elif isinstance(event, MessageApproved):
            rec.versions[event.version_id] = event.draft_id
            name = rec.drafts.get(event.draft_id)
            if name is None:
                rec.skip("godkjenninger av ukjente utkast")
                continue
            spec: dict[str, Any] = {"draft": name}
            if event.overrides:
                spec["overrides"] = [
                    {"code": o["code"], "lang": o["lang"], "reason": rec.text(o["reason"])}
                    for o in event.overrides
                ]
            if event.break_glass_reason:
                spec["break_glass"] = rec.text(event.break_glass_reason)
            add("approve", spec if len(spec) > 1 else name, by=event.approver)
        elif isinstance(event, ApprovalBlocked):
            if event.draft_id and event.draft_id in rec.drafts:
                add("approve", rec.drafts[event.draft_id])
            else:
                rec.skip("stoppede lagringer (teksten er aldri journalført)")
        elif isinstance(event, MessagePublished):
            draft = rec.versions.get(event.version_id)
            if draft is None or draft not in rec.drafts:
                rec.skip("publiseringer av ukjente versjoner")
                continue
            add("publish", rec.drafts[draft])
        elif isinstance(event, FreezeChanged):
            _freeze(event, rec, add)
        elif isinstance(event, RemindersSent):
            add("remind", [rec.staff_id(s) for s in event.staff_ids])
        elif isinstance(event, AnswerSaved):
            name = rec.answers.get(event.answer_id)
            if name is None:
                name = rec.answers[event.answer_id] = f"a{len(rec.answers) + 1}"
            text = {str(v["lang"]): rec.text(str(v.get("body", ""))) for v in event.variants}
            add("answer", {"id": name, "batch": event.batch_id, "text": text, "kind": event.kind})
        elif isinstance(event, AnswerApproved):
            name = rec.answers.get(event.answer_id)
            if name is None:
                rec.skip("godkjenninger av ukjente svar")
                continue
            spec = {"answer": name}
            if event.overrides:
                spec["overrides"] = [
                    {"code": o["code"], "lang": o["lang"], "reason": rec.text(o["reason"])}
                    for o in event.overrides
                ]
            if event.break_glass_reason:
                spec["break_glass"] = rec.text(event.break_glass_reason)
            add("approve_answer", spec if len(spec) > 1 else name, by=event.approver)
        elif isinstance(event, AnswerPublished):
            resent[start] = None
            name = rec.answers.get(event.answer_id)
            if name is not None:
                add("publish_answer", name)
        elif isinstance(event, RumourRegistered):
            posts = []
            for later in events[index + 1 :]:
                if not (
                    isinstance(later, RumourSighted)
                    and later.rumour_id == event.rumour_id
                    and later.actor == actor
                    and later.ts == event.ts
                ):
                    break
                posts.append(later.post_key)
            registered_with[event.rumour_id] = list(posts)
            spec = {
                "id": event.rumour_id,
                "claim": rec.text(event.claim),
                "owner": event.fact_owner,
            }
            if posts:
                spec["posts"] = posts
            add("register_rumour", spec)
        elif isinstance(event, RumourSighted):
            if event.post_key in registered_with.get(event.rumour_id, []):
                registered_with[event.rumour_id].remove(event.post_key)
                continue
            add("link_sighting", {"rumour": event.rumour_id, "post": event.post_key})
        elif isinstance(event, RumourStateChanged):
            spec = {"rumour": event.rumour_id, "state": event.state}
            for key, value in (
                ("checker", event.checker),
                ("checking_with", event.checking_with),
                ("source", event.source),
            ):
                if value is not None:
                    spec[key] = rec.text(value)
            add("rumour_state", spec)
        elif isinstance(event, CorrectionLinked):
            name = rec.drafts.get(event.draft_id)
            if name is not None:
                add("link_correction", {"rumour": event.rumour_id, "draft": name})
        elif isinstance(event, SpreadersAnswered):
            resent[start] = None
            add("reply_to_spreaders", event.rumour_id)
        elif isinstance(event, ReplyRetried):
            if start not in resent:  # a reply sent again on its own: name its post
                to: list[str] = []
                resent[start] = to
                add("resend_failed_replies", to)
            posts_of = resent[start]
            if posts_of is not None and event.post_key not in posts_of:
                posts_of.append(event.post_key)
        elif isinstance(event, RecurrenceAcknowledged):
            add("acknowledge_recurrence", event.rumour_id)
        elif isinstance(event, BatchesMerged):
            add("merge_batches", {"kept": event.kept, "absorbed": event.absorbed})
        elif isinstance(event, QuestionMoved):
            add("move_question", {"post": event.key, "batch": event.batch_id})
        elif isinstance(event, BatchSplit):
            add("split_batch", {"posts": list(event.keys), "id": event.new_batch_id})
        elif isinstance(event, PostTriaged) and event.corrected:
            add("relabel", {"post": event.key, "label": event.label})
        elif isinstance(event, PostHidden):
            add("hide", {"post": event.key, "reason": rec.text(event.reason)})
        elif isinstance(event, CaseForwarded):
            add("forward_case", event.key)
        elif isinstance(event, AutoAnswerSet):
            add("auto_answer", {"batch": event.batch_id, "on": event.on})
        elif isinstance(event, DeliveryRetried):
            version = rec.effects.get(event.effect_id)
            draft = rec.versions.get(version or "")
            if draft is None or draft not in rec.drafts:
                rec.skip("nye sendinger av ukjente leveringer")
                continue
            add("retry_delivery", {"draft": rec.drafts[draft], "channel": event.channel})
    rec.actions.sort(key=lambda a: _seconds(a["at"]))


def _variant(variant: dict[str, Any], rec: _Recording) -> dict[str, Any]:
    out: dict[str, Any] = {
        "headline": rec.text(str(variant.get("headline", ""))),
        "body": rec.text(str(variant.get("body", ""))),
    }
    if variant.get("awaiting_translation"):
        out["awaiting_translation"] = True
    return out


def _freeze(event: FreezeChanged, rec: _Recording, add: Any) -> None:
    expires = format_duration(event.expires_at - event.ts) if event.expires_at is not None else None
    if event.action is FreezeAction.FREEZE:
        spec: dict[str, Any] = {"reason": rec.text(event.reason)}
        if event.departments:
            spec["departments"] = list(event.departments)
        if expires:
            spec["expires"] = expires
        add("freeze", spec)
    elif event.action is FreezeAction.EXTEND:
        spec = {"reason": rec.text(event.reason)}
        if expires:
            spec["expires"] = expires
        add("extend_freeze", spec)
    elif event.action is FreezeAction.LIFT:
        add("lift_freeze", {"reason": rec.text(event.reason)})


def _seconds(offset: str) -> float:
    from krise_tui.playbook.models import parse_duration

    return parse_duration(offset.removeprefix("T+")).total_seconds()


# --- files ----------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style, text as written (Norwegian letters, no line folding inside words), and
    never an anchor: the scenario loader refuses them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def to_yaml(data: dict[str, Any]) -> str:
    """The scenario as YAML with the schema line editors use."""
    body = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    return "# yaml-language-server: $schema=../schema/scenario.schema.json\n" + body


async def record_journal(
    journal: Path,
    out: Path,
    *,
    actions: bool = False,
    pseudonymise: bool = True,
    org: Org | None = None,
    org_ref: str | None = None,
    playbook_ref: str | None = None,
    salt: str | None = None,
) -> Path:
    """Record ``journal`` into the scenario file ``out`` (validated before it is written).

    Paths in the scenario (playbook, org) are written relative to ``out``'s directory.
    """
    async with await Journal.open(journal, read_only=True) as store:
        events = await store.read_events()
    run_file = journal.parent / RUN_FILE
    run = json.loads(run_file.read_text(encoding="utf-8")) if run_file.exists() else None
    log_file = journal.parent / LOG_FILE
    log = json.loads(log_file.read_text(encoding="utf-8")) if run and log_file.exists() else None
    objectives = _objectives_of(run)
    base = out.resolve().parent
    playbook = playbook_ref or (run["playbook"] if run else None)
    if playbook is None:
        activated = next((e for e in events if isinstance(e, PlaybookActivated)), None)
        playbook = activated.path if activated else None
    if playbook is None:
        raise ValueError("the journal names no playbook: give one")
    org_path = org_ref or (run["org"] if run else None)
    if org_path is None:
        raise ValueError("name the org file the recording runs against")
    data = record(
        events,
        org=org,
        org_ref=_relative(org_path, base),
        playbook_ref=_relative(playbook, base),
        run=run,
        log=log,
        objectives=objectives,
        actions=actions,
        pseudonymise=pseudonymise,
        salt=salt,
    )
    text = to_yaml(data)
    parse_scenario(text, file=str(out))  # the recorder's own output must be a valid scenario
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def _objectives_of(run: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The drilled scenario's objectives (when its file is still there), as data."""
    if not run or not run.get("scenario"):
        return None
    try:
        scenario = parse_scenario(read_limited(Path(run["scenario"])), file=run["scenario"])
    except (OSError, ScenarioError):
        return None
    return [o.model_dump(mode="json", exclude_none=True) for o in scenario.objectives]


def _relative(path: str, base: Path) -> str:
    target = Path(path)
    if not target.is_absolute():
        return path
    try:
        return str(target.resolve().relative_to(base))
    except ValueError:
        import os

        return os.path.relpath(target.resolve(), base)
