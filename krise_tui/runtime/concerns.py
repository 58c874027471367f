"""What needs the console's attention now: named concerns, the banners' words.

A concern is a name (``journal``, ``loop:timers``, ``intake:epost:…``, ``flood`` …) and
what it says, in bokmål and English; it is set while the trouble lasts and cleared
(``None``) when it is over. The console shows each one as a banner, ``krise console
--headless`` logs them, and drills stop on ``fatal``. :class:`Concerns` keeps them and
words the ones the runtime's services report: the journal that cannot be written, its
signed head, a crashed loop, a bridge's intake trouble (from its journaled presence),
and a flood of refused bus messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from krise_tui.core.features.inbound import InboundRejected, PresenceChanged
from krise_tui.core.kernel import EventBase
from krise_tui.core.state import IncidentState
from krise_tui.runtime.flood import FloodWatch, flood_text

log = logging.getLogger(__name__)

ConcernListener = Callable[[str, str | None], object]
"""``(concern, text or None when it is cleared)``: what the console's banner shows."""

MAX_TROUBLE = 300
"""Characters of an intake's trouble shown in the banner (the log has all of it)."""


class Concerns:
    """The concerns in force, their words, and who is told when they change."""

    def __init__(self, flood_watch: FloodWatch | None = None) -> None:
        self.now: dict[str, str] = {}
        """Concern → what it says, in bokmål (:meth:`text` gives the English)."""
        self._en: dict[str, str] = {}
        self._listeners: list[ConcernListener] = []
        self.flood_watch = flood_watch or FloodWatch()
        """Refused bus messages per topic, for the flood concern (:mod:`.flood`)."""
        self._flood_recheck: asyncio.TimerHandle | None = None

    def on_change(self, listener: ConcernListener) -> None:
        """Call ``listener(concern, text | None)`` when a concern is set or cleared."""
        self._listeners.append(listener)

    def text(self, name: str, lang: str = "nb") -> str | None:
        """What concern ``name`` says now, in ``lang`` (bokmål when it has no English)."""
        text = self.now.get(name)
        if text is not None and lang == "en":
            return self._en.get(name, text)
        return text

    def set(self, name: str, text: str | None, en: str | None = None) -> None:
        """Say ``text`` (``en`` in English) for ``name``; ``None`` clears it."""
        if text:
            self.now[name] = text
            self._en[name] = en or text
        else:
            self.now.pop(name, None)
            self._en.pop(name, None)
        for listener in list(self._listeners):
            try:
                listener(name, text)
            except Exception:
                log.exception("concern listener failed")

    def close(self) -> None:
        """Stop looking again at a flood (the runtime is stopping)."""
        if self._flood_recheck is not None:
            self._flood_recheck.cancel()
            self._flood_recheck = None

    # --- what the services report ------------------------------------------------------

    def journal_trouble(self, why: str | None) -> None:
        """The journal cannot be written (``why``), or can again (``None``)."""
        said = en = None
        if why is not None:
            said = (
                f"! Journalen kan ikke skrives ({why}). Innkommende venter hos megleren og "
                "tas inn når det går igjen; det dere gjør nå, blir ikke utført. Frigjør plass "
                "på disken (eller rett feilen) – konsollen prøver selv igjen."
            )
            en = (
                f"! The journal cannot be written ({why}). Inbound waits at the broker and "
                "comes in when it works again; what you do now is not carried out. Free "
                "space on the disk (or fix the fault) – the console retries by itself."
            )
        self.set("journal", said, en)

    def head_trouble(self, where: str | None) -> None:
        """The journal's signed head cannot be written to ``where`` (``None``: it can)."""
        self.set(
            "journal-head",
            None if where is None else f"Journalens signerte hode kan ikke skrives til {where}",
            None if where is None else f"The journal's signed head cannot be written to {where}",
        )

    def loop_crashed(self, name: str, error: str | None) -> None:
        """A long-lived loop crashed with ``error`` (``None``: it runs again)."""
        self.set(f"loop:{name}", None if error is None else f"{name}: {error}")

    def intake_trouble(self, channel: str, source: str, problem: str | None) -> None:
        """A bridge cannot take in posts from ``source`` on ``channel`` (``None``: it can)."""
        # The text may carry a remote server's words: one line, printable, bounded.
        said = en = None
        if problem is not None:
            line = "".join(c if c.isprintable() else " " for c in " ".join(problem.split()))
            said = f"Innkommende på {channel}: {line[:MAX_TROUBLE]}"
            en = f"Inbound on {channel}: {line[:MAX_TROUBLE]}"
        self.set(f"intake:{channel}:{source}", said, en)

    def show_intake_trouble(self, state: IncidentState) -> None:
        """Each bridge's intake trouble as the journal has it (from its presence), one
        concern per source: shown while the bridge says it, cleared when it no longer
        does or goes offline."""
        now: dict[str, tuple[str, str, str]] = {}
        for key, trouble in state.inbound.trouble.items():
            role, _, member = key.partition("/")
            if role != "bridge":
                continue
            channel = member.removeprefix("bridge-")
            for source, problem in trouble.items():
                now[f"intake:{channel}:{source}"] = (channel, source, problem)
        for name in [n for n in self.now if n.startswith("intake:") and n not in now]:
            self.set(name, None)
        for channel, source, problem in now.values():
            self.intake_trouble(channel, source, problem)

    def after_events(self, state: IncidentState, events: list[EventBase]) -> None:
        """Look at what was just journaled: bridges' presence, refused messages."""
        if any(isinstance(e, PresenceChanged) and e.role == "bridge" for e in events):
            self.show_intake_trouble(state)
        refused = [e.topic for e in events if isinstance(e, InboundRejected)]
        for topic in refused:
            self.flood_watch.refused(topic)
        if refused or "flood" in self.now:
            self.show_flood()

    def show_flood(self) -> None:
        """Say a flood of refusals while it lasts; look again a window later (a flood
        that stops sends nothing more that would clear it)."""
        flooding = self.flood_watch.flooding()
        if not flooding:
            self.set("flood", None)
            return
        nb, en = flood_text(flooding, self.flood_watch.window)
        self.set("flood", nb, en)
        if self._flood_recheck is None or self._flood_recheck.cancelled():
            loop = asyncio.get_running_loop()

            def again() -> None:
                self._flood_recheck = None
                self.show_flood()

            self._flood_recheck = loop.call_later(self.flood_watch.window / 4, again)
