"""The playbook in force: watched on disk, validated, turned into the engine's rules.

:class:`PlaybookService` loads the playbook at start and whenever the file changes. A
valid version is reported to the runtime (which journals its activation); a broken one
keeps the last good version in force and reports its ``file:line:column`` problems.
:meth:`PlaybookService.policy` turns the org file and the playbook into the plain
:class:`~krise_tui.core.policy.MessagePolicy` the pure engine applies.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from krise_tui.core.features.freeze import Freeze
from krise_tui.core.policy import ChannelSpec, MessagePolicy, OperatorInfo
from krise_tui.playbook.loader import Problem
from krise_tui.playbook.models import Org, Playbook
from krise_tui.playbook.watch import PlaybookWatcher

log = logging.getLogger(__name__)

Changed = Callable[[Playbook, str], Awaitable[None]]
ProblemsListener = Callable[[list[Problem]], object]


def freeze_from_playbook(playbook: Playbook) -> Freeze:
    """The freeze a playbook asks for on activation."""
    policy = playbook.freeze
    departments = () if policy.scope == "all" else tuple(policy.scope)
    notice = tuple((lang, text) for lang, text in policy.notice.items() if isinstance(text, str))
    title = playbook.title.get("nb") or playbook.id
    return Freeze(reason=str(title), departments=departments, notice=notice)


def policy_for(
    org: Org | None, playbook: Playbook | None, *, exercise: bool = False
) -> MessagePolicy:
    """The engine's rules from the org file and the playbook."""
    if org is None:
        return MessagePolicy(exercise=exercise)
    wanted = list(playbook.channels) if playbook is not None else [c.id for c in org.channels]
    website = org.website_channel().id
    if website not in wanted:
        wanted.insert(0, website)
    specs = []
    for channel_id in wanted:
        with contextlib.suppress(KeyError):
            specs.append(ChannelSpec(channel_id, str(org.channel(channel_id).kind)))
    extra = {}
    if playbook is not None:
        extra = {
            "break_glass_allowed": playbook.approval.break_glass_allowed,
            "sms_max_segments": playbook.sms_max_segments,
            "remind_after": playbook.freeze.remind_after,
            "answer_deadline": playbook.deadlines.answer_batch,
            "correction_deadline": playbook.deadlines.correct_rumour,
            "receipt_deadline": playbook.deadlines.delivery_receipt,
            "triage_keywords": {k: tuple(v) for k, v in playbook.triage_keywords.items()},
            "case_reply": dict(playbook.case_processing_reply),
        }
    return MessagePolicy(
        org_name=org.name,
        website_url=str(org.website),
        required_languages=tuple(org.required_languages),
        allowed_phones=tuple(sorted(org.phone_allowlist())),
        channels=tuple(specs),
        operators={
            op.id: OperatorInfo(op.full_name, op.title, op.role.may_approve, op.role.may_draft)
            for op in org.operators
        },
        exercise=exercise,
        **extra,  # type: ignore[arg-type]
    )


class PlaybookService:
    """Watches the playbook file; keeps the last good version and the current problems."""

    def __init__(self, path: Path | None, org: Org | None, on_valid: Changed) -> None:
        self.path = path
        self.org = org
        self.playbook: Playbook | None = None
        self.hash: str | None = None
        self.problems: list[Problem] = []
        self._on_valid = on_valid
        self._listeners: list[ProblemsListener] = []
        self._watcher: PlaybookWatcher | None = None
        self._policy: tuple[tuple[str | None, bool], MessagePolicy] | None = None
        if path is not None:
            self._watcher = PlaybookWatcher(path, org, self._changed, self._broken)

    def on_problems(self, listener: ProblemsListener) -> None:
        """Call ``listener(problems)`` on every reload (``[]`` when it is valid)."""
        self._listeners.append(listener)

    async def load(self) -> None:
        """The first load (valid, or problems reported)."""
        if self._watcher is not None:
            await self._watcher.poll()

    async def run(self) -> None:
        """Watch the file until cancelled."""
        if self._watcher is not None:
            await self._watcher.run()

    def policy(self, *, exercise: bool = False) -> MessagePolicy:
        """The engine's rules for the playbook in force (cached per version)."""
        key = (self.hash, exercise)
        if self._policy is None or self._policy[0] != key:
            self._policy = (key, policy_for(self.org, self.playbook, exercise=exercise))
        return self._policy[1]

    async def _changed(self, playbook: Playbook, digest: str) -> None:
        self.playbook, self.hash, self.problems = playbook, digest, []
        await self._on_valid(playbook, digest)
        self._tell()

    def _broken(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        for problem in problems[:5]:
            log.warning("playbook: %s", problem)
        self._tell()

    def _tell(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self.problems)
            except Exception:
                log.exception("playbook listener failed")
