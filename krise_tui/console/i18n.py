"""The console's language: Norwegian bokmål first, English with ``--lang en``.

Texts are written as pairs where they are used (``tr("Publiser", "Publish")``): the
Norwegian one is what the crisis team expects, the English one sits beside it so the two
never drift apart. Key bindings are declared with their Norwegian description and
translated here once, for the footer, the help screen and the command palette.
Times are shown in the municipality's time zone (:mod:`krise_tui.timefmt`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from krise_tui import bindings
from krise_tui.timefmt import DEFAULT_TIMEZONE, format_datetime, format_time

BINDING_EN: dict[str, str] = {
    "oversikt": "overview",
    "meldinger": "messages",
    "spørsmål": "questions",
    "rykter": "rumours",
    "ansatte": "staff",
    "logg": "journal",
    "ny melding": "new message",
    "frys/opphev": "freeze/lift",
    "hjelp": "help",
    "avslutt": "quit",
    "tilbake": "back",
    "avbryt": "cancel",
    "lagre utkast": "save draft",
    "be om godkjenning": "ask for approval",
    "send på nytt": "re-send",
    "oppdater": "update",
    "trekk tilbake": "retract",
    "påminn": "remind",
    "eksporter": "export",
    "svar": "answer",
    "send svaret": "send the answer",
    "slå sammen": "merge",
    "flytt": "move",
    "skill ut": "split out",
    "kategori": "label",
    "skjul": "hide",
    "til postmottak": "to the post office",
    "automatisk svar": "auto-answer",
    "rykte": "rumour",
    "åpne": "open",
    "nytt rykte": "new rumour",
    "sjekkes": "checking",
    "konklusjon": "verdict",
    "korreksjon": "correction",
    "svar spredere": "reply to spreaders",
    "sett varsel": "seen alert",
    "følg med": "monitor",
    "lukk": "close",
    "søk": "search",
    "filter": "filter",
    "CAP til politiet": "CAP to the police",
    "situasjonsrapport": "situation report",
    "tema": "theme",
    "ja": "yes",
    "nei": "no",
    "logg inn": "sign in",
    "start hendelsen": "start the incident",
    "ferdig": "done",
    "velg": "select",
    "ny": "new",
    "frys": "freeze",
    "CAP": "CAP",
    "publiser": "publish",
    "bekreft treff": "confirm match",
    "aktør": "actor",
    "type": "type",
    "nullstill": "clear",
    "rapport": "report",
    "ny melding til alle kanaler": "new message to every channel",
    "frys eller opphev ansattes publisering": "freeze or lift staff posting",
    "CAP-anmodning til politiet": "CAP request to the police",
    "situasjonsrapport (Markdown og HTML)": "situation report (Markdown and HTML)",
    "alle taster": "every key",
    "avslutt (spør hvis noe venter)": "quit (asks when something is pending)",
}
"""Binding descriptions: bokmål → English."""


ACTIONS: dict[str, tuple[str, str]] = {
    "answer": ("Svaret", "The answer"),
    "approve": ("Godkjenningen", "The approval"),
    "checklist": ("Sjekklisten", "The checklist"),
    "export-rollcall": ("Eksporten av oppropet", "The roll-call export"),
    "freeze": ("Frysen", "The freeze"),
    "open-incident": ("Starten av hendelsen", "Starting the incident"),
    "publish-version": ("Publiseringen", "Publishing"),
    "questions-action": ("Handlingen på spørsmål", "The questions action"),
    "questions-op": ("Handlingen på spørsmål", "The questions action"),
    "remind": ("Påminnelsen", "The reminder"),
    "request-approval": ("Forespørselen om godkjenning", "The request for approval"),
    "retry": ("Den nye sendingen", "The re-send"),
    "rumours-action": ("Handlingen på rykter", "The rumours action"),
    "save-cap": ("Lagringen av CAP-forespørselen", "Saving the CAP request"),
    "save-draft": ("Lagringen av utkastet", "Saving the draft"),
    "save-sitrep": ("Situasjonsrapporten", "The situation report"),
    "sign-in": ("Innloggingen", "Signing in"),
    "start-runtime": ("Oppstarten", "Start-up"),
}
"""A failed action (a Textual worker's name) in words, for the banner."""


def action_failed(name: str, error: object, lang: str) -> str:
    """``✗ Godkjenningen feilet: …`` / ``✗ The approval failed: …`` (the worker's own
    name when it has no words yet)."""
    nb, en = ACTIONS.get(name, (name, name))
    return f"✗ {en} failed: {error}" if lang == "en" else f"✗ {nb} feilet: {error}"


def binding_text(description: str, lang: str) -> str:
    """A binding's description in ``lang``."""
    return BINDING_EN.get(description, description) if lang == "en" else description


def translate_bindings(node: Any, lang: str) -> None:
    """Give a screen's (or the app's) bindings their English descriptions."""
    if lang == "en":
        bindings.translate_bindings(node, BINDING_EN)


class Tr:
    """Picks the text for the console's language."""

    def __init__(self, lang: str = "nb", tz: str = DEFAULT_TIMEZONE) -> None:
        self.lang = "en" if lang == "en" else "nb"
        self.tz = tz

    def __call__(self, nb: str, en: str) -> str:
        return en if self.lang == "en" else nb

    def time(self, when: datetime | None) -> str:
        """``14:05`` in the municipality's time zone (``–`` for none)."""
        return "–" if when is None else format_time(when, self.tz)

    def date_time(self, when: datetime | None) -> str:
        """``27.11.2026 kl. 14:05`` / ``27 Nov 2026, 14:05``."""
        return "–" if when is None else format_datetime(when, self.tz, lang=self.lang)

    def t_plus(self, opened: datetime | None, now: datetime) -> str:
        """``T+hh:mm (HH:MM)``: relative and absolute time."""
        if opened is None:
            return "T+--:--"
        return f"{clock(now - opened, sign='T+')} ({self.time(now)})"

    def due(self, deadline: datetime, now: datetime) -> str:
        """``om 00:18`` / ``FORSINKET 00:05`` (overdue is a word, not a colour)."""
        left = deadline - now
        if left >= timedelta(0):
            return self(f"om {clock(left)}", f"in {clock(left)}")
        return self(f"FORSINKET {clock(-left)}", f"OVERDUE {clock(-left)}")


def clock(span: timedelta, *, sign: str = "") -> str:
    """``hh:mm`` of a duration (never negative)."""
    minutes = max(0, int(span.total_seconds() // 60))
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
