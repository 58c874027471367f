"""Lint a message before approval: blocks and warnings with reasons in nb and en (pure).

:func:`lint_message` runs the DOMAIN rules on every language variant of a message:

- ``id-number`` (block): a national identity number of any kind (rule 16). It stays a
  hard block unless the number is written like a bank account number (4.2.5 groups);
  then the approver may override it with a reason (see
  :func:`krise_tui.rules.idnumbers.override_allowed`).
- ``phone`` / ``email`` (warning): not on the allow-list (rule 17).
- ``missing-link`` (warning): no link to the municipality's website (rule 6; 22).
- ``missing-language`` (warning, needs a reason): a required language variant is
  missing, empty or awaiting translation (rule 21).
- ``placeholder`` (warning): ``{name}`` or a configured placeholder left in the text.
- ``speculation`` (warning): words that comment on rumours or speculate (rule 15).

Places are given per field: ``headline`` or ``body`` and the 1-based line within it; a
message says "overskrift" or "linje 3". No message contains an ID number's digits, so a
report can be shown and journaled as it is. Per-channel checks (SMS segments, length
limits) plug in through ``extra_checks``.

:func:`lint_free_text` is the ID-number block for every other free text that leaves the
console (freeze and lift reasons, notices, CAP texts, answers, rumour corrections,
reasons that are journaled); its findings name the field ("i begrunnelsen for frysen").

ID numbers are found after Unicode normalisation (see :mod:`krise_tui.rules.idnumbers`):
zero-width characters, soft hyphens, other digit scripts, mixed separators and glued
letters do not hide a number. Spans always refer to the text as given.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol
from urllib.parse import urlsplit

from krise_tui.rules.contact import ContactKind, find_contacts
from krise_tui.rules.idnumbers import IdNumberFinding, find_id_numbers, line_of

Field = Literal["headline", "body"]
"""The fields of a message variant. Findings from :func:`lint_free_text` carry the
free-text field's key instead (``freeze-reason``), so :attr:`LintFinding.field` is a str."""


class Severity(StrEnum):
    """How a finding affects approval."""

    BLOCK = "block"
    WARNING = "warning"


class Override(StrEnum):
    """What the approver must do to approve despite a finding."""

    NOT_NEEDED = "not-needed"
    """A warning: the approver sees it and may approve."""
    WITH_REASON = "with-reason"
    """Approval needs a written reason, which is journaled."""
    NOT_ALLOWED = "not-allowed"
    """A hard block: change the message."""


class LintCode(StrEnum):
    """The built-in rules. Extra checks may use codes of their own."""

    ID_NUMBER = "id-number"
    PHONE = "phone"
    EMAIL = "email"
    MISSING_LINK = "missing-link"
    MISSING_LANGUAGE = "missing-language"
    PLACEHOLDER = "placeholder"
    SPECULATION = "speculation"
    CONTROL_CHARACTER = "control-character"


class VariantText(Protocol):
    """What lint reads from one language variant (any object with these attributes)."""

    @property
    def headline(self) -> str: ...

    @property
    def body(self) -> str: ...

    @property
    def awaiting_translation(self) -> bool: ...


@dataclass(frozen=True)
class MessageVariant:
    """One language variant of a message."""

    headline: str = ""
    body: str = ""
    awaiting_translation: bool = False
    """Set while the text is a stand-in until a translator delivers."""


@dataclass(frozen=True)
class LintFinding:
    """One reason to stop or to look twice, in both interface languages."""

    severity: Severity
    code: str
    """A :class:`LintCode`, or an extra check's own code (e.g. ``sms-length``)."""
    language: str
    message_nb: str
    message_en: str
    field: str | None = None
    """``headline`` or ``body`` (a :data:`Field`), a free-text field's key such as
    ``freeze-reason`` (see :data:`FREE_TEXT_FIELDS`), or None for the whole variant."""
    line: int | None = None
    """1-based line within ``field``; None for findings about the whole variant."""
    start: int | None = None
    """Span in the field's text (``end`` exclusive), for highlighting."""
    end: int | None = None
    excerpt: str | None = None
    """What was found, safe to show: a redacted ID number, a phone number, a phrase."""
    override: Override = Override.NOT_NEEDED

    def message(self, lang: str = "nb") -> str:
        """The message in ``lang`` (``en`` or, for anything else, ``nb``)."""
        return self.message_en if lang == "en" else self.message_nb


Check = Callable[[str, VariantText], Iterable[LintFinding]]
"""An extra check: called with (language, variant) for every variant that has text."""


@dataclass(frozen=True)
class LintReport:
    """The findings for one message, blocks first."""

    findings: tuple[LintFinding, ...] = ()

    @property
    def blocked(self) -> bool:
        """True when a finding blocks approval (some may be overridable with a reason)."""
        return any(f.severity is Severity.BLOCK for f in self.findings)

    @property
    def hard_blocked(self) -> bool:
        """True when a finding blocks approval and cannot be overridden."""
        return any(
            f.severity is Severity.BLOCK and f.override is Override.NOT_ALLOWED
            for f in self.findings
        )

    @property
    def blocks(self) -> tuple[LintFinding, ...]:
        """The findings that block approval."""
        return tuple(f for f in self.findings if f.severity is Severity.BLOCK)

    @property
    def warnings(self) -> tuple[LintFinding, ...]:
        """The findings that only warn."""
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def needs_reason(self) -> tuple[LintFinding, ...]:
        """The findings an approver can only pass with a written reason."""
        return tuple(f for f in self.findings if f.override is Override.WITH_REASON)

    def render(self, lang: str = "nb") -> list[str]:
        """One line per finding for a terminal: ``✗ [nb] fødselsnummer … funnet (linje 3) …``.

        ``✗`` marks a block and ``⚠`` a warning, so nothing relies on colour. With no
        findings, a single ``✓`` line says so.
        """
        if not self.findings:
            return ["✓ no findings" if lang == "en" else "✓ ingen funn"]
        return [
            f"{'✗' if f.severity is Severity.BLOCK else '⚠'} [{f.language}] {f.message(lang)}"
            for f in self.findings
        ]


# --- speculation -------------------------------------------------------------------------

SPECULATION_PATTERNS: tuple[str, ...] = (
    # bokmål
    r"rykte\w*",
    r"spekula\w*",
    r"spekuler\w*",
    r"det\s+sies",
    r"det\s+påstås",
    r"angivelig\w*",
    r"visstnok",
    r"trolig",
    r"sannsynligvis",
    r"antakelig\w*",
    r"antagelig\w*",
    r"muligens",
    r"vi\s+tror",
    r"vi\s+antar",
    r"ubekreft\w*",
    # nynorsk
    r"ryktast",
    r"truleg",
    r"vi\s+trur",
    r"moglegvis",
    # English
    r"rumou?r\w*",
    r"speculat\w*",
    r"allegedly",
    r"alleged",
    r"reportedly",
    r"supposedly",
    r"it\s+is\s+said",
    r"we\s+believe",
    r"we\s+think",
    r"probably",
    r"possibly",
    r"unconfirmed",
    r"unverified",
)
"""Words and phrases that comment on rumours or speculate (DOMAIN rule 15), as regexes.

Applied to every language variant, case-insensitively, on word boundaries. A heuristic:
it warns so that the approver double-checks, it does not decide. South Sami has no list
yet; a Norwegian or English word inside a Sami text is still found.
"""

_SPECULATION = re.compile(
    r"(?<!\w)(?:" + "|".join(SPECULATION_PATTERNS) + r")(?!\w)", re.IGNORECASE
)
_PLACEHOLDER = re.compile(r"\{\{?[ ]*\w[\w. -]{0,40}?[ ]*\}\}?")
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
"""Control characters that are not white space (ESC, BEL, NUL, C1 …): nothing a text to
the public needs; they act on terminals and garble SMS (tab, line breaks, the vertical
tab Word pastes for a soft break, and NEL are white space and pass)."""
_CONTROL_NAMES = {
    "\x00": "NUL",
    "\x07": "BELL",
    "\x08": "BACKSPACE",
    "\x1b": "ESCAPE",
    "\x7f": "DELETE",
}
"""Names for the control characters most often met (Unicode gives them none)."""
_DIRECTION = re.compile("[\u202a-\u202e\u2066-\u2069]")
"""Bidirectional embeddings, overrides and isolates: they reorder how the text around
them is shown (a reversed phone number, a hidden word). The marks LRM, RLM and ALM that
right-to-left languages need are not among them."""


def _where(field: Field, line: int) -> tuple[str, str]:
    if field == "headline":
        return "overskrift", "headline"
    return f"linje {line}", f"line {line}"


def _overlaps(start: int, end: int, ids: Sequence[IdNumberFinding]) -> bool:
    return any(start < f.end and f.start < end for f in ids)


def _id_finding(language: str, field: Field, found: IdNumberFinding) -> LintFinding:
    nb_where, en_where = _where(field, found.line)
    nb = f"{found.kind.label('nb')} {found.redacted} funnet ({nb_where}) – kan ikke godkjennes"
    en = f"{found.kind.label('en')} {found.redacted} found ({en_where}) – cannot be approved"
    override = Override.NOT_ALLOWED
    if found.account_layout:
        override = Override.WITH_REASON
        nb += " (er det et kontonummer, kan det overstyres med begrunnelse)"
        en += " (if it is a bank account number, it can be overridden with a reason)"
    return LintFinding(
        severity=Severity.BLOCK,
        code=LintCode.ID_NUMBER,
        language=language,
        message_nb=nb,
        message_en=en,
        field=field,
        line=found.line,
        start=found.start,
        end=found.end,
        excerpt=found.redacted,
        override=override,
    )


FREE_TEXT_FIELDS: Mapping[str, tuple[str, str]] = {
    "freeze-reason": ("begrunnelsen for frysen", "the freeze reason"),
    "lift-reason": ("begrunnelsen for å oppheve frysen", "the reason for lifting the freeze"),
    "freeze-notice": ("frysmeldingen til de ansatte", "the freeze notice to staff"),
    "notice": ("kunngjøringen", "the notice"),
    "cap-headline": ("overskriften i CAP-anmodningen", "the headline of the CAP request"),
    "cap-description": ("beskrivelsen i CAP-anmodningen", "the description of the CAP request"),
    "cap-instruction": ("instruksjonen i CAP-anmodningen", "the instruction of the CAP request"),
    "cap-area": ("områdebeskrivelsen i CAP-anmodningen", "the area of the CAP request"),
    "answer": ("svaret på spørsmålene", "the answer to the questions"),
    "rumour-correction": ("korrigeringen av ryktet", "the rumour correction"),
    "hide-reason": ("begrunnelsen for å skjule innlegget", "the reason for hiding the post"),
    "override-reason": ("begrunnelsen for overstyringen", "the override reason"),
    "break-glass-reason": (
        "begrunnelsen for å godkjenne egen melding",
        "the reason for approving one's own message",
    ),
}
"""Free-text fields :func:`lint_free_text` can name: key → (nb, en) noun phrase, definite
form, as it reads after "i" / "in"."""

OUTWARD_FREE_TEXT = frozenset(
    {
        "freeze-reason",
        "lift-reason",
        "freeze-notice",
        "notice",
        "cap-headline",
        "cap-description",
        "cap-instruction",
        "cap-area",
        "answer",
        "rumour-correction",
    }
)
"""The free texts that reach the public or the staff: checked for control characters as
well. The others (a rumour's claim copied from a post, hide and override reasons) stay
in the journal, where such a character is shown, never acted on."""


def _field_phrases(field: str, field_nb: str | None, field_en: str | None) -> tuple[str, str]:
    known = FREE_TEXT_FIELDS.get(field)
    nb = field_nb or (known[0] if known else f"feltet «{field}»")
    en = field_en or (known[1] if known else f"the field “{field}”")
    return nb, en


def lint_free_text(
    text: str,
    *,
    field: str,
    lang: str = "nb",
    field_nb: str | None = None,
    field_en: str | None = None,
) -> list[LintFinding]:
    """The ID-number block for a free text that leaves the console but is not a message,
    and for one that reaches the public or the staff (:data:`OUTWARD_FREE_TEXT`) the
    control-character block of :func:`lint_message`.

    DOMAIN rule 16 applies to everything the public or the staff may read or the journal
    keeps: freeze and lift reasons, notices, CAP texts, answers to questions, rumour
    corrections, override and hide reasons. Every ID number in ``text`` gives a block
    that names the field: "fødselsnummer 170572 ***** i begrunnelsen for frysen – …" /
    "national identity number 170572 ***** in the freeze reason – …". Findings hold only
    the redacted form, never the number. As in :func:`lint_message`, a number written
    plainly as a bank account (4.2.5) can be overridden with a reason
    (:attr:`Override.WITH_REASON`); any other is :attr:`Override.NOT_ALLOWED`. Callers
    with no override path should treat every finding as a block.

    Args:
        text: the free text as it will be sent or stored.
        field: a key of :data:`FREE_TEXT_FIELDS` (``freeze-reason``, ``answer``, …) or
            any other key; it is kept in :attr:`LintFinding.field`.
        lang: the language the text is written in (:attr:`LintFinding.language`); every
            finding has its message in both nb and en.
        field_nb, field_en: how to name the field in a sentence ("frysmeldingen (sma)" /
            "the freeze notice (sma)"), overriding the table; needed for unknown keys,
            which are otherwise named "feltet «key»" / "the field “key”".
    """
    found = find_id_numbers(text)
    nb_field, en_field = _field_phrases(field, field_nb, field_en)
    multiline = "\n" in text

    def where(at: int) -> tuple[str, str]:
        if not multiline:
            return f"i {nb_field}", f"in {en_field}"
        line = line_of(text, at)
        return f"i {nb_field}, linje {line}", f"in {en_field}, line {line}"

    findings = (
        _invisible_findings(text, language=lang, field=field, where=where)
        if field in OUTWARD_FREE_TEXT
        else []
    )
    for number in found:
        nb_where = f" (linje {number.line})" if multiline else ""
        en_where = f" (line {number.line})" if multiline else ""
        nb = f"{number.kind.label('nb')} {number.redacted} i {nb_field}{nb_where}"
        en = f"{number.kind.label('en')} {number.redacted} in {en_field}{en_where}"
        if number.account_layout:
            override = Override.WITH_REASON
            nb += " – kan ikke sendes (er det et kontonummer, kan det overstyres med begrunnelse)"
            en += (
                " – cannot be sent (if it is a bank account number, it can be overridden"
                " with a reason)"
            )
        else:
            override = Override.NOT_ALLOWED
            nb += " – fjern nummeret før teksten sendes"
            en += " – remove the number before the text is sent"
        findings.append(
            LintFinding(
                severity=Severity.BLOCK,
                code=LintCode.ID_NUMBER,
                language=lang,
                message_nb=nb,
                message_en=en,
                field=field,
                line=number.line,
                start=number.start,
                end=number.end,
                excerpt=number.redacted,
                override=override,
            )
        )
    return findings


def _invisible_findings(
    text: str, *, language: str, field: str, where: Callable[[int], tuple[str, str]]
) -> list[LintFinding]:
    """A block for the first control character in ``text`` (never sendable) and one for
    the first bidirectional control (sendable with a reason: a right-to-left text may need
    one), each naming the character, where it is, and how many more there are."""
    findings: list[LintFinding] = []
    for pattern, override in ((_CONTROL, Override.NOT_ALLOWED), (_DIRECTION, Override.WITH_REASON)):
        matches = list(pattern.finditer(text))
        if not matches:
            continue
        first = matches[0]
        char = first.group()
        name = unicodedata.name(char, "") or _CONTROL_NAMES.get(char, "")
        shown = f"U+{ord(char):04X} {name}".rstrip()
        nb_where, en_where = where(first.start())
        more_nb = f" og {len(matches) - 1} til" if len(matches) > 1 else ""
        more_en = f" and {len(matches) - 1} more" if len(matches) > 1 else ""
        if override is Override.NOT_ALLOWED:
            nb = f"usynlig styretegn {shown} ({nb_where}){more_nb} – fjern det før teksten sendes"
            en = f"invisible control character {shown} ({en_where}){more_en} – remove it"
        else:
            nb = (
                f"retningstegn {shown} ({nb_where}){more_nb} snur eller skjuler tekst – "
                "fjern det, eller overstyr med begrunnelse"
            )
            en = (
                f"direction control {shown} ({en_where}){more_en} reorders or hides text – "
                "remove it, or override with a reason"
            )
        findings.append(
            LintFinding(
                severity=Severity.BLOCK,
                code=LintCode.CONTROL_CHARACTER,
                language=language,
                message_nb=nb,
                message_en=en,
                field=field,
                line=line_of(text, first.start()),
                start=first.start(),
                end=first.end(),
                excerpt=shown,
                override=override,
            )
        )
    return findings


def _warning(
    code: LintCode,
    language: str,
    field: Field,
    text: str,
    span: tuple[int, int],
    excerpt: str,
    nb: str,
    en: str,
) -> LintFinding:
    line = line_of(text, span[0])
    nb_where, en_where = _where(field, line)
    return LintFinding(
        severity=Severity.WARNING,
        code=code,
        language=language,
        message_nb=f"{nb} ({nb_where})",
        message_en=f"{en} ({en_where})",
        field=field,
        line=line,
        start=span[0],
        end=span[1],
        excerpt=excerpt,
    )


def _placeholder_patterns(known: Iterable[str]) -> list[re.Pattern[str]]:
    """Bare names (``sted``) are ``{sted}`` and found anyway; other entries are literal."""
    patterns = [_PLACEHOLDER]
    for token in known:
        token = token.strip()
        if token and not re.fullmatch(r"\w+", token):
            patterns.append(re.compile(re.escape(token), re.IGNORECASE))
    return patterns


def _lint_field(
    language: str,
    field: Field,
    text: str,
    *,
    allowed_phones: Sequence[str],
    allowed_emails: Sequence[str],
    placeholders: Sequence[re.Pattern[str]],
) -> list[LintFinding]:
    ids = find_id_numbers(text)
    findings = [_id_finding(language, field, found) for found in ids]
    findings += _invisible_findings(
        text,
        language=language,
        field=field,
        where=lambda at: _where(field, line_of(text, at)),
    )
    for contact in find_contacts(
        text, allowed_phones=allowed_phones, allowed_emails=allowed_emails
    ):
        if contact.allowed:
            continue
        if contact.kind is ContactKind.PHONE:
            code = LintCode.PHONE
            nb = f"telefonnummer {contact.shown} er ikke på listen"
            en = f"phone number {contact.shown} is not on the allow-list"
        else:
            code = LintCode.EMAIL
            nb = f"e-postadresse {contact.shown} er ikke på listen"
            en = f"e-mail address {contact.shown} is not on the allow-list"
        span = (contact.start, contact.end)
        findings.append(_warning(code, language, field, text, span, contact.shown, nb, en))
    seen: set[tuple[int, int]] = set()
    for pattern in placeholders:
        for match in pattern.finditer(text):
            if match.span() in seen or _overlaps(*match.span(), ids):
                continue
            seen.add(match.span())
            token = match.group()
            nb = f"plassholder {token} er ikke fylt ut"
            en = f"placeholder {token} is not filled in"
            findings.append(
                _warning(LintCode.PLACEHOLDER, language, field, text, match.span(), token, nb, en)
            )
    reported: set[tuple[int, str]] = set()
    for match in _SPECULATION.finditer(text):
        phrase = " ".join(match.group().split())
        line = line_of(text, match.start())
        if (line, phrase.lower()) in reported:
            continue
        reported.add((line, phrase.lower()))
        nb = f"mulig rykte eller spekulasjon: «{phrase}» – bare kjente fakta"
        en = f"possible rumour or speculation: “{phrase}” – known facts only"
        findings.append(
            _warning(LintCode.SPECULATION, language, field, text, match.span(), phrase, nb, en)
        )
    return findings


def website_host(website_url: str) -> str:
    """The host of ``website_url`` without ``www.``, in lower case (``''`` if none)."""
    url = website_url.strip()
    if "//" not in url:
        url = "//" + url
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def links_to(text: str, website_url: str) -> bool:
    """True when ``text`` contains ``website_url`` or any link to its host (± ``www.``)."""
    host = website_host(website_url)
    if not host:
        return False
    # Not inside another address: not after a path's "/", a query's "=", "&" or "?", a
    # user's "@", or a longer name's "." or "-".
    inside = r"(?<![\w.@/=?&#%+~-])"
    pattern = inside + r"(?:https?://)?(?:www\.)?" + re.escape(host) + r"(?![\w-]|\.[\w-])"
    return re.search(pattern, text, re.IGNORECASE) is not None


def _is_blank(variant: VariantText) -> bool:
    return not variant.headline.strip() and not variant.body.strip()


def _missing_language(language: str, variant: VariantText | None) -> LintFinding | None:
    if variant is not None and variant.awaiting_translation:
        nb = f"{language} venter på oversettelse – godkjenning krever overstyring med begrunnelse"
        en = f"{language} is awaiting translation – approval needs an override with a reason"
    elif variant is None or _is_blank(variant):
        nb = f"språkversjon {language} mangler – godkjenning krever overstyring med begrunnelse"
        en = f"{language} version is missing – approval needs an override with a reason"
    else:
        return None
    return LintFinding(
        severity=Severity.WARNING,
        code=LintCode.MISSING_LANGUAGE,
        language=language,
        message_nb=nb,
        message_en=en,
        override=Override.WITH_REASON,
    )


def lint_message(
    variants: Mapping[str, VariantText],
    *,
    required_languages: Sequence[str],
    allowed_phones: Iterable[str],
    allowed_emails: Iterable[str],
    website_url: str | None,
    known_placeholders: Iterable[str] = (),
    extra_checks: Sequence[Check] = (),
) -> LintReport:
    """Lint every language variant of a message; blocks first, then by language and place.

    Args:
        variants: language code → variant (headline, body, awaiting_translation).
        required_languages: languages the playbook requires (e.g. ``["nb", "sma"]``).
            A required variant that is missing, blank or awaiting translation gives a
            ``missing-language`` warning that needs a reason to override.
        allowed_phones: the organisation's own numbers, any format; emergency numbers
            are always allowed.
        allowed_emails: own addresses, or ``@domain`` for a whole domain.
        website_url: the organisation's website; every variant must link to its host.
            None skips the check (no website configured).
        known_placeholders: extra placeholder tokens as they appear in templates
            (``[STED]``, ``XX:XX``); ``{name}`` is always found.
        extra_checks: more checks (e.g. per-channel length), run on every variant that
            has text. They must not echo ID numbers in their messages.

    Content checks run on every variant that has text, also one awaiting translation:
    whatever text is there could still be approved with an override.
    """
    phones = list(allowed_phones)
    emails = list(allowed_emails)
    placeholders = _placeholder_patterns(known_placeholders)
    findings: list[LintFinding] = []
    for language, variant in variants.items():
        if _is_blank(variant):
            continue
        parts: tuple[tuple[Field, str], ...] = (
            ("headline", variant.headline),
            ("body", variant.body),
        )
        for field, text in parts:
            findings += _lint_field(
                language,
                field,
                text,
                allowed_phones=phones,
                allowed_emails=emails,
                placeholders=placeholders,
            )
        if website_url and not links_to(f"{variant.headline}\n{variant.body}", website_url):
            host = website_host(website_url) or website_url
            findings.append(
                LintFinding(
                    severity=Severity.WARNING,
                    code=LintCode.MISSING_LINK,
                    language=language,
                    message_nb=f"lenke til nettsiden ({host}) mangler",
                    message_en=f"link to the website ({host}) is missing",
                )
            )
        for check in extra_checks:
            findings.extend(check(language, variant))
    for language in required_languages:
        missing = _missing_language(language, variants.get(language))
        if missing is not None:
            findings.append(missing)
    order: dict[str, int] = {}
    for lang in [*required_languages, *variants]:
        order.setdefault(lang, len(order))
    fields = {"headline": 0, "body": 1, None: 2}
    findings.sort(
        key=lambda f: (
            f.severity is not Severity.BLOCK,
            order.get(f.language, len(order)),
            fields.get(f.field, 2),
            f.line or 0,
            f.start or 0,
        )
    )
    return LintReport(tuple(findings))
