"""Who is at the console, and proving it for an approval.

The operator comes from the configuration (``operator = "kari"``) or from signing in;
an operator the org file does not know is an error at start, never silently replaced by
someone else. Approvers prove themselves with their passphrase (scrypt, checked off the
event loop); repeated wrong passphrases lock that person out for a while.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from krise_tui.core.kernel import Rejection
from krise_tui.playbook.models import Operator, Org

log = logging.getLogger(__name__)

MAX_FAILURES = 5
LOCKOUT_SECONDS = 300.0


class UnknownOperatorError(ValueError):
    """The configured operator is not in the org file."""


@dataclass
class OperatorIdentity:
    """The person at this console and the passphrase checks of approvers."""

    org: Org | None
    operator: str | None = None
    """The operator id journaled as the actor (None: nobody has signed in yet)."""
    _failures: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.operator is not None and self.org is not None:
            self.check(self.operator)

    def check(self, operator_id: str) -> Operator:
        """The org file's operator ``operator_id`` (raises :class:`UnknownOperatorError`)."""
        assert self.org is not None
        known = [op.id for op in self.org.operators]
        if operator_id not in known:
            raise UnknownOperatorError(
                f"operator {operator_id!r} is not in {self.org.slug}'s org file "
                f"(operators: {', '.join(known)})"
            )
        return self.org.operator(operator_id)

    @property
    def actor(self) -> str:
        """Who commands are journaled under."""
        return self.operator or "operatør"

    def sign_in(self, operator_id: str) -> Operator | None:
        """Make ``operator_id`` the person at the console."""
        if self.org is None:
            self.operator = operator_id
            return None
        op = self.check(operator_id)
        self.operator = operator_id
        log.info("signed in at the console: %s", operator_id)
        return op

    def locked_for(self, operator_id: str) -> float:
        """Seconds ``operator_id`` must still wait after too many wrong passphrases."""
        now = time.monotonic()
        recent = [t for t in self._failures.get(operator_id, []) if now - t < LOCKOUT_SECONDS]
        self._failures[operator_id] = recent
        if len(recent) < MAX_FAILURES:
            return 0.0
        return LOCKOUT_SECONDS - (now - recent[-MAX_FAILURES])

    async def verify(self, operator_id: str, passphrase: str) -> Rejection | None:
        """Check ``operator_id``'s passphrase: None when right, else why not."""
        if self.org is None:
            return Rejection(
                "approval needs an org file with operators (org_file)",
                "godkjenning krever en org-fil med operatører (org_file)",
            )
        try:
            operator = self.check(operator_id)
        except UnknownOperatorError as exc:
            return Rejection(str(exc), f"{operator_id!r} står ikke i org-fila")
        if not passphrase:  # nothing typed (Enter in another field): not an attempt
            return Rejection(
                f"type {operator.full_name}'s passphrase",
                f"skriv passfrasen til {operator.full_name}",
            )
        wait = self.locked_for(operator_id)
        if wait > 0:
            return Rejection(
                f"too many wrong passphrases for {operator.full_name}: wait {wait:.0f} s",
                f"for mange feil passfraser for {operator.full_name}: vent {wait:.0f} s",
            )
        ok = await asyncio.to_thread(operator.verify, passphrase)  # scrypt: off the loop
        if not ok:
            self._failures.setdefault(operator_id, []).append(time.monotonic())
            log.warning("wrong passphrase for %s", operator_id)
            return Rejection(
                f"wrong passphrase for {operator.full_name}",
                f"feil passfrase for {operator.full_name}",
            )
        self._failures.pop(operator_id, None)
        return None
