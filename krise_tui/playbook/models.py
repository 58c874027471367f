"""The organisation file and the playbook, as pydantic models (structure and rules).

Two kinds of YAML document describe how a municipality communicates in a crisis:

- the **organisation file** (:class:`Org`): who may draft and approve (operators with
  roles and scrypt passphrase hashes), staff groups, channels (secrets only by
  reference), required languages, allow-listed phone numbers, the municipality's area
  (for CAP requests) and its time zone;
- the **playbook** (:class:`Playbook`), one per incident type: deadlines, checklist,
  message templates with declared placeholders, anticipated questions, triage keywords,
  freeze and approval policy, CAP defaults.

Every model forbids unknown keys. Validation happens in two layers:

1. pydantic checks the structure and each field on its own (types, formats, durations,
   deadline order, inline secrets);
2. :meth:`Org.issues` / :meth:`Playbook.issues` check what spans fields (duplicate ids,
   unknown placeholders, SMS length after filling in the example values), and
   :meth:`Playbook.org_issues` checks a playbook against an organisation (required
   languages, channel ids, freeze scope, four-eyes staffing, and that its CAP area only
   narrows the municipality's own).

Constructing a model runs layer 2 too and raises on any issue. The YAML loader
(:mod:`krise_tui.playbook.loader`) validates with the context ``{DEFER_CHECKS: True}``
instead and maps every issue's ``loc`` back to a file position.

Placeholders in template text are written ``{name}``; ``{{`` and ``}}`` are literal
braces. Text in a language that still needs a translator is marked
``{status: awaiting_translation}``: never invent South Sami (or any other) text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from krise_tui.rules.contact import EMERGENCY_NUMBERS, InvalidPhoneNumber, normalize_phone
from krise_tui.rules.sms import sms_info
from krise_tui.timefmt import DEFAULT_TIMEZONE, check_timezone
from krise_tui.wire.cap import (
    CapCategory,
    CapCertainty,
    CapSeverity,
    CapUrgency,
    circle_within,
    polygon_within,
)

DEFER_CHECKS = "krise.defer_checks"
"""Validation-context key: when true, the cross-field checks (``issues()``) are left to
the caller (the loader runs them itself to report positions)."""

STANDARD_CASE_REPLY = (
    "Vi takker for henvendelsen. Den er sendt videre til postmottak for journalføring og "
    "vil bli saksbehandlet på vanlig måte."
)
"""The guideline's prescribed reply to a post that needs case processing (quoted exactly)."""

PRIMARY_LANGUAGE = "nb"
"""The municipality's written standard: always required, and the language authors write."""

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
LANG_PATTERN = r"^[a-z]{2,3}$"
STAFF_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
PLACEHOLDER_PATTERN = r"^[^\W\d]\w{0,63}$"
MUNICIPALITY_PATTERN = r"^[0-9]{4}$"
MUNICIPALITY_GEOCODE = "kommunenummer"
"""The CAP ``geocode`` ``valueName`` of a Norwegian municipality number."""
PHONE_PATTERN = r"^\+?[0-9][0-9 .()/-]{1,38}[0-9]$"
DURATION_PATTERN = r"^(0|([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?)$"
OFFSET_PATTERN = r"^T\+(0|([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?)$"
SCRYPT_PATTERN = r"^scrypt\$[0-9]+\$[0-9]+\$[0-9]+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$"

_SECRET_KEY_RX = re.compile(
    r"(?i)^(key|pin)$|pass(word|wd|phrase)?|token|secret|api[-_]?key|private[-_]?key|"
    r"credential|auth|bearer|cookie|signature"
)


def is_secret_key(name: object) -> bool:
    """True when a key name looks like it holds a secret (``token``, ``password``…)."""
    return isinstance(name, str) and bool(_SECRET_KEY_RX.search(name))


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- small validated types -----------------------------------------------------------------


def _pattern_check(pattern: str, what: str) -> Any:
    rx = re.compile(pattern)

    def check(value: str) -> str:
        if not rx.fullmatch(value):
            raise ValueError(f"{_short(value)} is not {what}")
        return value

    return AfterValidator(check)


def _schema(pattern: str, **extra: Any) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern, **extra})


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Text = Annotated[
    str, AfterValidator(_not_blank), WithJsonSchema({"type": "string", "minLength": 1})
]
"""Non-empty text."""

Slug = Annotated[
    str,
    _pattern_check(SLUG_PATTERN, "an id (lower-case letters, digits, - and _, like flom-og-skred)"),
    _schema(SLUG_PATTERN),
]
"""An identifier: lower-case letters, digits, ``-`` and ``_``."""

Lang = Annotated[
    str,
    _pattern_check(LANG_PATTERN, "a language code (ISO 639, lower case: nb, sma, en)"),
    _schema(LANG_PATTERN),
]
"""A language code: ``nb`` (bokmål), ``nn``, ``sma`` (South Sami), ``se``/``sme``, ``en``…"""

StaffId = Annotated[
    str,
    _pattern_check(STAFF_ID_PATTERN, "a staff id (letters, digits, . _ -, like ansatt-001)"),
    _schema(STAFF_ID_PATTERN),
]
"""A staff terminal's id (its broker user name and topic segment)."""

PlaceholderName = Annotated[
    str,
    _pattern_check(PLACEHOLDER_PATTERN, "a placeholder name (letters, digits and _)"),
    _schema(PLACEHOLDER_PATTERN),
]
"""A template placeholder's name, written ``{name}`` in template text."""


def _require_primary(value: dict[str, Any]) -> dict[str, Any]:
    if PRIMARY_LANGUAGE not in value:
        raise ValueError(f"needs the {PRIMARY_LANGUAGE} text (bokmål is always required)")
    return value


LangText = Annotated[dict[Lang, Text], AfterValidator(_require_primary)]
"""Text per language code; ``nb`` is required."""


def _unique(value: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    for item in value:
        if item in seen:
            raise ValueError(f"{_short(item)} is listed twice")
        seen.add(item)
    return value


# --- durations ---------------------------------------------------------------------------

_DURATION_RX = re.compile(DURATION_PATTERN)
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_MAX_DURATION_SECONDS = 366 * 86400


def parse_duration(text: str) -> timedelta:
    """``"15m"``, ``"1h"``, ``"1h30m"``, ``"2d"``, ``"45s"`` or ``"0"`` as a timedelta.

    Raises ValueError for anything else, and for more than a year.
    """
    match = _DURATION_RX.fullmatch(text.strip()) if len(text) <= 40 else None
    if match is None or not text.strip():
        raise ValueError(
            f"{_short(text)} is not a duration: write it like 15m, 1h or 1h30m (d h m s)"
        )
    seconds = 0
    rest = text.strip()
    for unit, size in _UNITS:
        head, sep, tail = rest.partition(unit)
        if sep:
            seconds += int(head) * size
            rest = tail
    if seconds > _MAX_DURATION_SECONDS:
        raise ValueError(f"{_short(text)} is longer than a year")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`: ``timedelta(minutes=90)`` → ``"1h30m"``."""
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "0"
    parts = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _to_duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(
        f"write a duration as text like 15m, 1h or 1h30m (got {type(value).__name__} "
        f"{_short(value)})"
    )


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0")
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_to_duration),
    AfterValidator(_positive),
    PlainSerializer(format_duration, return_type=str),
    _schema(DURATION_PATTERN, examples=["15m", "1h", "1h30m"]),
]
"""A positive duration written ``15m``, ``1h``, ``1h30m`` (units d, h, m, s)."""


def _to_offset(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str) and value.startswith("T+"):
        return parse_duration(value[2:])
    raise ValueError(
        f"{_short(value)} is not an offset: write the time after activation like T+0, "
        "T+15m or T+1h30m"
    )


Offset = Annotated[
    timedelta,
    BeforeValidator(_to_offset),
    PlainSerializer(lambda value: f"T+{format_duration(value)}", return_type=str),
    _schema(OFFSET_PATTERN, examples=["T+0", "T+15m", "T+1h"]),
]
"""Time after the playbook was activated, written ``T+0``, ``T+15m``, ``T+1h30m``."""


# --- passphrases -------------------------------------------------------------------------

SCRYPT_N = 2**14
"""scrypt CPU/memory cost (16 MiB with r=8)."""
SCRYPT_R = 8
"""scrypt block size."""
SCRYPT_P = 1
"""scrypt parallelism."""
_SALT_BYTES = 16
_KEY_BYTES = 32
_MAX_SCRYPT_MEMORY = 64 * 1024 * 1024


class _ScryptParams(NamedTuple):
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes


def _check_scrypt_params(n: int, r: int, p: int) -> None:
    """Refuse scrypt costs that are malformed or could exhaust memory."""
    if n < 2 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise ValueError("scrypt parameters out of range (n a power of two, r ≤ 32, p ≤ 16)")
    if 128 * n * r > _MAX_SCRYPT_MEMORY:
        raise ValueError("scrypt parameters need too much memory (128·n·r ≤ 64 MiB)")


def _parse_scrypt(encoded: str) -> _ScryptParams:
    """Parse ``scrypt$n$r$p$salt_b64$hash_b64``."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or len(encoded) > 400:
        raise ValueError("a passphrase hash looks like scrypt$n$r$p$salt$hash")
    try:
        n, r, p = (int(part) for part in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ValueError("a passphrase hash looks like scrypt$n$r$p$salt$hash") from exc
    _check_scrypt_params(n, r, p)
    if not 8 <= len(salt) <= 64 or not 16 <= len(key) <= 64:
        raise ValueError("scrypt salt must be 8–64 bytes and the hash 16–64 bytes")
    return _ScryptParams(n, r, p, salt, key)


def _scrypt(passphrase: str, params: _ScryptParams, length: int) -> bytes:
    return hashlib.scrypt(
        passphrase.encode("utf-8"),
        salt=params.salt,
        n=params.n,
        r=params.r,
        p=params.p,
        maxmem=_MAX_SCRYPT_MEMORY + 1024 * 1024 * params.p,
        dklen=length,
    )


def hash_passphrase(
    passphrase: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P
) -> str:
    """Hash a passphrase with scrypt and a random salt: ``scrypt$n$r$p$salt_b64$hash_b64``."""
    if not passphrase:
        raise ValueError("the passphrase must not be empty")
    _check_scrypt_params(n, r, p)
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _scrypt(passphrase, _ScryptParams(n, r, p, salt, b""), _KEY_BYTES)
    salt_b64 = base64.b64encode(salt).decode("ascii")
    return f"scrypt${n}${r}${p}${salt_b64}${base64.b64encode(key).decode('ascii')}"


def verify_passphrase(passphrase: str, encoded: str) -> bool:
    """True when ``passphrase`` matches ``encoded``; False for a wrong or malformed hash.

    The comparison is constant-time.
    """
    try:
        params = _parse_scrypt(encoded)
    except ValueError:
        return False
    candidate = _scrypt(passphrase, params, len(params.key))
    return hmac.compare_digest(candidate, params.key)


def _check_scrypt(value: str) -> str:
    _parse_scrypt(value)
    return value


PassphraseHash = Annotated[str, AfterValidator(_check_scrypt), _schema(SCRYPT_PATTERN)]
"""An scrypt hash made by :func:`hash_passphrase` (never the passphrase itself)."""


# --- phone numbers -------------------------------------------------------------------------


def _check_phone(value: str) -> str:
    # Normalised by the same function the lint uses, so that a number accepted here is
    # one the lint will recognise as allowed (see krise_tui.rules.contact).
    try:
        normalize_phone(value)
    except InvalidPhoneNumber as exc:
        raise ValueError(str(exc)) from None
    return value


PhoneNumber = Annotated[str, AfterValidator(_check_phone), _schema(PHONE_PATTERN)]
"""A phone number as people write it: ``75 18 00 00``, ``+47 75180000``, ``116 117``;
kept as written, compared in :func:`~krise_tui.rules.contact.normalize_phone`'s form."""


def _check_zone(value: str) -> str:
    check_timezone(value)
    return value


TimeZoneName = Annotated[
    str,
    AfterValidator(_check_zone),
    WithJsonSchema({"type": "string", "examples": ["Europe/Oslo"]}),
]
"""An IANA time zone name, e.g. ``Europe/Oslo``."""


# --- areas ---------------------------------------------------------------------------------


def _parse_point(text: str) -> tuple[float, float]:
    lat_text, sep, lon_text = text.partition(",")
    try:
        if not sep:
            raise ValueError
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        raise ValueError(f"{_short(text)} is not a point: write latitude,longitude") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"{_short(text)} is outside latitude ±90, longitude ±180")
    return lat, lon


def _check_polygon(value: str) -> str:
    points = [_parse_point(p) for p in value.split()]
    if len(points) < 4:
        raise ValueError("a polygon needs at least four points (the first repeated last)")
    if points[0] != points[-1]:
        raise ValueError("a polygon must end where it starts (first point = last point)")
    return value


def _check_circle(value: str) -> str:
    parts = value.split()
    if len(parts) != 2:
        raise ValueError(f"{_short(value)} is not a circle: write 'latitude,longitude radius_km'")
    _parse_point(parts[0])
    try:
        radius = float(parts[1])
    except ValueError:
        raise ValueError(f"{_short(parts[1])} is not a radius in km") from None
    if not 0 <= radius <= 20000:
        raise ValueError("the radius must be between 0 and 20000 km")
    return value


Polygon = Annotated[
    str,
    AfterValidator(_check_polygon),
    WithJsonSchema({"type": "string", "description": "lat,lon lat,lon … (closed)"}),
]
"""A CAP polygon: ``"lat,lon lat,lon …"`` (WGS 84) with the first point repeated last."""

Circle = Annotated[
    str,
    AfterValidator(_check_circle),
    WithJsonSchema({"type": "string", "description": "lat,lon radius_km"}),
]
"""A CAP circle: ``"lat,lon radius_km"`` (WGS 84 centre, radius in kilometres)."""


# --- base ----------------------------------------------------------------------------------


class Issue(NamedTuple):
    """A problem found by a cross-field check, located by its path in the document."""

    loc: tuple[str | int, ...]
    """Path to the offending value, as in a pydantic error (``("templates", 2, "text")``)."""
    message: str
    """What is wrong and how to fix it."""


def format_loc(loc: Iterable[str | int]) -> str:
    """``("templates", 2, "text", "nb")`` → ``templates[2].text.nb``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class StrictModel(BaseModel):
    """Base of every playbook/org model: immutable, unknown keys are errors.

    Inputs are kept out of error texts (``hide_input_in_errors``) so that a secret written
    in the wrong place is not copied into a log.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, hide_input_in_errors=True
    )


class Document(StrictModel):
    """A whole file (org or playbook): its cross-field checks run on validation."""

    def issues(self) -> list[Issue]:
        """Cross-field problems (empty when the document is consistent)."""
        return []

    @model_validator(mode="after")
    def _run_issues(self, info: ValidationInfo) -> Self:
        context = info.context
        if isinstance(context, dict) and context.get(DEFER_CHECKS):
            return self
        found = self.issues()
        if found:
            raise ValueError(
                "; ".join(f"{format_loc(i.loc) or '(top)'}: {i.message}" for i in found)
            )
        return self


def _duplicates(out: list[Issue], base: tuple[str | int, ...], ids: list[str], what: str) -> None:
    first: dict[str, int] = {}
    for index, item in enumerate(ids):
        if item in first:
            out.append(
                Issue(
                    (*base, index, "id"),
                    f"duplicate {what} id {item!r} (already used by item {first[item]})",
                )
            )
        else:
            first[item] = index


# --- organisation --------------------------------------------------------------------------


class Role(StrEnum):
    """What an operator may do at the console."""

    KRISELEDER = "kriseleder"
    """Crisis leadership: drafts and approves (publishes)."""
    KOMMUNIKASJONSLEDER = "kommunikasjonsleder"
    """Head of communication: drafts, monitors, answers; publishing needs an approver."""
    INFORMASJONSMEDARBEIDER = "informasjonsmedarbeider"
    """Information officer: drafts and monitors."""
    OBSERVER = "observer"
    """Reads everything, changes nothing (e.g. a liaison from the police or the county)."""

    @property
    def may_approve(self) -> bool:
        """Only the crisis leadership approves (DOMAIN rule 1)."""
        return self is Role.KRISELEDER

    @property
    def may_draft(self) -> bool:
        """Everyone but observers drafts."""
        return self is not Role.OBSERVER


class Operator(StrictModel):
    """A person who may log in to the console."""

    id: Slug
    """Login id, e.g. ``kari``."""
    full_name: Text
    """Full name: messages are signed with it (DOMAIN rule 14)."""
    title: Text
    """Job title, e.g. ``kommunedirektør``: messages are signed with it too."""
    role: Role
    """``kriseleder``, ``kommunikasjonsleder``, ``informasjonsmedarbeider`` or ``observer``."""
    passphrase_hash: PassphraseHash
    """scrypt hash of the operator's passphrase (``python -c "from krise_tui.playbook.models
    import hash_passphrase; print(hash_passphrase(input()))"``)."""

    def verify(self, passphrase: str) -> bool:
        """True when ``passphrase`` is this operator's."""
        return verify_passphrase(passphrase, self.passphrase_hash)


class StaffGroup(StrictModel):
    """A department whose staff terminals a freeze can target."""

    id: Slug
    """Group id, used in a playbook's freeze scope, e.g. ``teknisk``."""
    name: Text
    """Display name, e.g. ``Tekniske tjenester``."""
    staff: Annotated[list[StaffId], AfterValidator(_unique)] | None = None
    """Staff terminal ids in this group (unset: membership is managed elsewhere)."""


class ChannelKind(StrEnum):
    """What a channel is."""

    WEBSITE = "website"
    """The municipality's own universally designed website (always used, always first)."""
    WEBHOOK = "webhook"
    """A generic HTTP endpoint."""
    MASTODON = "mastodon"
    """A Mastodon account (statuses API)."""
    FACEBOOK = "facebook"
    """A Facebook page (Graph API)."""
    EMAIL = "email"
    """E-mail over SMTP."""
    STAFF = "staff"
    """The staff terminals (over the bus)."""
    SMS = "sms"
    """An SMS gateway (HTTP)."""


_HTTP_KINDS = {ChannelKind.WEBHOOK, ChannelKind.MASTODON, ChannelKind.FACEBOOK, ChannelKind.SMS}
_URL_RX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _check_url_secrets(url: str) -> None:
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValueError(
            "inline secret: a user name or password in the URL; use credentials: "
            "{env: VARIABLE} or {file: /path} instead"
        )
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if is_secret_key(key) and value:
            raise ValueError(
                f"inline secret: the URL's {key!r} parameter holds a literal value; use "
                "credentials: {env: VARIABLE} or {file: /path} instead"
            )


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{_short(value)} is not an http(s) URL")
    _check_url_secrets(value)
    return value


HttpUrl = Annotated[
    str,
    AfterValidator(_check_http_url),
    WithJsonSchema({"type": "string", "format": "uri", "pattern": "^https?://"}),
]
"""An ``http://`` or ``https://`` URL without credentials in it."""


class SecretRef(StrictModel):
    """Where a secret lives: an environment variable or a file, never the file itself."""

    env: (
        Annotated[
            str, _pattern_check(ENV_PATTERN, "an environment variable name"), _schema(ENV_PATTERN)
        ]
        | None
    ) = None
    """Name of the environment variable holding the secret, e.g. ``KRISE_SMS_TOKEN``."""
    file: Text | None = None
    """Path of a file whose first line is the secret (keep it mode 0600)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env: VARIABLE or file: /path")
        return self

    def resolve(self) -> str:
        """Read the secret now. Raises LookupError when it is not there."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise LookupError(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        try:
            lines = Path(self.file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise LookupError(f"cannot read secret file {self.file}: {exc.strerror}") from exc
        if not lines or not lines[0].strip():
            raise LookupError(f"secret file {self.file} is empty")
        return lines[0].strip()


def _secret_ref_only(value: Any) -> Any:
    if isinstance(value, str | int | float):
        raise ValueError(
            "inline secret: credentials must be a reference, {env: VARIABLE} or "
            "{file: /path}, never the secret itself"
        )
    return value


def _check_option_key(value: str) -> str:
    if is_secret_key(value):
        raise ValueError(
            f"inline secret {value!r}: secrets never go in this file; refer to one with "
            "credentials: {env: VARIABLE} or {file: /path}"
        )
    return value


OptionKey = Annotated[str, AfterValidator(_check_option_key)]

SecretSetting = Annotated[SecretRef, BeforeValidator(_secret_ref_only)]
"""A secret by reference only (a plain string is refused as an inline secret)."""

LISTEN_PATTERN = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$"
URL_PATH_PATTERN = r"^/[A-Za-z0-9._~/-]{0,200}$"


def _check_listen(value: str) -> str:
    if not re.fullmatch(LISTEN_PATTERN, value):
        raise ValueError(f"{_short(value)} is not host:port (like 127.0.0.1:8471)")
    port = int(value.rpartition(":")[2])
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is not between 1 and 65535")
    return value


ListenAddress = Annotated[
    str,
    AfterValidator(_check_listen),
    _schema(LISTEN_PATTERN, examples=["127.0.0.1:8471", "[::1]:8471"]),
]
"""Where a server listens: ``host:port`` (an IPv6 address in brackets)."""

UrlPath = Annotated[
    str,
    _pattern_check(URL_PATH_PATTERN, "a URL path starting with / (like /inbound)"),
    _schema(URL_PATH_PATTERN),
]
"""The path part of a URL, ``/inbound``."""


class ImapParts(NamedTuple):
    """An IMAP URL taken apart."""

    host: str
    port: int
    tls: bool
    mailbox: str


def imap_parts(url: str) -> ImapParts:
    """``imaps://host[:port]/MAILBOX`` taken apart; ``ValueError`` naming what is wrong.

    ``imap://`` (no TLS) only on the loopback: a mailbox password never crosses a network
    in clear text. No user or password in the URL (``user:`` and ``secret:``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname:
        raise ValueError(f"{url!r}: not imaps://host[:port]/MAILBOX")
    if parts.username or parts.password:
        raise ValueError(f"{url!r}: no user or password in the URL (use user: and secret:)")
    tls = parts.scheme == "imaps"
    if not tls and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        raise ValueError(f"{url!r}: imap:// (no TLS) is allowed on the loopback only")
    try:
        port = parts.port or (993 if tls else 143)
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    mailbox = unquote(parts.path.lstrip("/")) or "INBOX"
    return ImapParts(parts.hostname, port, tls, mailbox)


class ImapDef(StrictModel):
    """The mailbox an e-mail channel takes questions from (read-only, never marked read)."""

    url: Annotated[str, Field(min_length=8, max_length=500)]
    """``imaps://host[:port]/MAILBOX`` (default port 993, mailbox ``INBOX``);
    ``imap://`` without TLS only on the loopback. No user or password in the URL."""
    user: Annotated[str, Field(min_length=1, max_length=320)]
    """The mailbox's login name (the password is ``inbound.secret``, by reference)."""

    @field_validator("url")
    @classmethod
    def _imap_url(cls, value: str) -> str:
        imap_parts(value)  # raises ValueError naming what is wrong
        return value


class InboundDef(StrictModel):
    """How the channel's bridge takes in posts from the public (issue 11.1).

    sms, webhook, website: a signed webhook (the SMS gateway's callback, the website's
    question form) POSTs to ``listen`` + ``path`` with an HMAC-SHA256 signature made
    with ``secret``. facebook: the page webhook (``verify_token`` for Meta's
    subscription check, ``secret`` is the app secret). mastodon: mentions are polled
    every ``poll_interval`` with the channel's own access token. email: the mailbox
    ``imap`` names is polled every ``poll_interval``; ``secret`` is its password.
    """

    imap: ImapDef | None = None
    """email only: the mailbox questions arrive in."""

    listen: ListenAddress | None = None
    """``host:port`` the intake server listens on (sms, webhook, website, facebook), e.g.
    ``127.0.0.1:8471``: keep it on the loopback behind the TLS reverse proxy the
    platform calls."""
    path: UrlPath = "/inbound"
    """The URL path the platform POSTs to."""
    secret: SecretSetting | None = None
    """The HMAC-SHA256 key the sender signs with; for facebook the app secret. By
    reference only: ``{env: VARIABLE}`` or ``{file: /path}``."""
    verify_token: SecretSetting | None = None
    """facebook only: the verify token typed into the app's webhook settings, by reference."""
    poll_interval: Duration = timedelta(seconds=30)
    """mastodon and email: how often mentions (messages) are fetched (``30s``, ``1m``)."""
    since: AwareDatetime | None = None
    """mastodon and email: at the very first start, take posts from this time on (when the
    incident opened, with its offset); default: from that first start. Later starts go
    on from where the bridge left off."""
    max_body: Annotated[StrictInt, Field(ge=1024, le=1_048_576)] = 65_536
    """The largest request body accepted, in bytes (larger ones are answered 413)."""
    timestamp_window: Duration = timedelta(minutes=5)
    """A signed webhook whose timestamp is further off than this is refused (replays)."""
    sender_per_minute: Annotated[StrictInt, Field(ge=1, le=100_000)] = 6
    """Posts one sender (phone number, Facebook user, form address) may send per minute
    before the excess is answered 429 (counted and logged, for the sender to retry)."""
    sender_burst: Annotated[StrictInt, Field(ge=1, le=100_000)] = 5
    """Posts one sender may send at once before ``sender_per_minute`` applies."""
    address_per_minute: Annotated[StrictInt, Field(ge=1, le=1_000_000)] = 600
    """Requests one network address may make per minute (the gateway is one address:
    keep this high)."""
    address_burst: Annotated[StrictInt, Field(ge=1, le=1_000_000)] = 100
    """Requests one address may make at once before ``address_per_minute`` applies."""


class ChannelDef(StrictModel):
    """An outbound (and possibly inbound) channel."""

    id: Slug
    """Channel id, used in bus topics and in playbooks, e.g. ``nettside``, ``sms``."""
    kind: ChannelKind
    """What the channel is: website, webhook, mastodon, facebook, email, staff or sms."""
    name: Text | None = None
    """Display name (default: the id)."""
    endpoint: Text | None = Field(default=None, validate_default=True)
    """Where messages go: an http(s) URL (webhook, mastodon, facebook, sms), an
    ``smtp://``/``smtps://`` URL (email), a URL or a directory (website). Staff channels
    need none (they use the bus). Never with a secret in it."""
    credentials: Annotated[SecretRef | None, BeforeValidator(_secret_ref_only)] = None
    """The channel's secret, by reference only: ``{env: VARIABLE}`` or ``{file: /path}``."""
    options: dict[OptionKey, str | StrictInt | float | StrictBool] = Field(default_factory=dict)
    """Non-secret settings for the bridge (page id, sender name…). Secret-looking keys
    (token, password, key…) are refused."""
    inbound: InboundDef | None = None
    """Posts from the public on this channel (questions, comments, mentions, SMS): how
    the bridge takes them in. Unset: the channel is outbound only."""
    exercise: StrictBool = False
    """The platform end is a drill sandbox (a test page, a test account, a fake gateway):
    exercise replies and hides may go there. Every other channel is a real one and
    refuses them, so a drill never reaches the public."""

    @model_validator(mode="after")
    def _inbound_fits_kind(self) -> Self:
        inbound = self.inbound
        if inbound is None:
            return self
        kind = self.kind
        if kind is ChannelKind.STAFF:
            raise ValueError(f"inbound: a {kind.value} channel has no intake")
        if kind is ChannelKind.EMAIL:
            extra = [name for name in ("listen", "verify_token") if getattr(inbound, name)]
            if extra:
                raise ValueError(
                    f"inbound: an email channel polls its mailbox; {', '.join(extra)} is not for it"
                )
            missing = [name for name in ("imap", "secret") if getattr(inbound, name) is None]
            if missing:
                raise ValueError(f"inbound: an email intake needs {', '.join(missing)}")
            return self
        if inbound.imap is not None:
            raise ValueError("inbound: imap is only for an email channel")
        if kind is ChannelKind.MASTODON:
            extra = [
                name for name in ("listen", "secret", "verify_token") if getattr(inbound, name)
            ]
            if extra:
                raise ValueError(
                    f"inbound: a mastodon channel polls its mentions; {', '.join(extra)} "
                    "is not for it"
                )
            return self
        missing = [name for name in ("listen", "secret") if getattr(inbound, name) is None]
        if kind is ChannelKind.FACEBOOK and inbound.verify_token is None:
            missing.append("verify_token")
        if missing:
            raise ValueError(f"inbound: a {kind.value} intake needs {', '.join(missing)}")
        if kind is not ChannelKind.FACEBOOK and inbound.verify_token is not None:
            raise ValueError("inbound: verify_token is only for a facebook channel")
        return self

    @field_validator("endpoint")
    @classmethod
    def _endpoint_fits_kind(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind is None:
            return value
        if value is None:
            if kind is ChannelKind.STAFF:
                return None
            raise ValueError(f"missing endpoint: a channel of kind {kind.value} needs one")
        is_url = bool(_URL_RX.match(value))
        if kind is ChannelKind.STAFF:
            raise ValueError("a staff channel uses the bus: leave the endpoint out")
        if kind in _HTTP_KINDS:
            _check_http_url(value)
        elif kind is ChannelKind.EMAIL:
            parts = urlsplit(value)
            if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
                raise ValueError("an email channel needs smtp://host:port or smtps://host:port")
            _check_url_secrets(value)
        elif is_url:
            _check_http_url(value)
        return value

    @property
    def label(self) -> str:
        """Display name or id."""
        return self.name or self.id


class OrgArea(StrictModel):
    """The municipality's area: what a CAP request covers unless a playbook narrows it.

    The request's geocode is the org's ``municipality_number`` (``kommunenummer``); the
    outline is optional, but a playbook can only narrow the area with a shape when the
    outline is here to check the shape against.
    """

    name: Text | None = None
    """CAP ``areaDesc``, e.g. ``Hattfjelldal kommune`` (default: the org's ``name``)."""
    polygons: list[Polygon] = Field(default_factory=list)
    """The municipality's outline as CAP polygons, ``"lat,lon lat,lon …"`` (closed)."""
    circles: list[Circle] = Field(default_factory=list)
    """Or circles covering it, ``"lat,lon radius_km"``."""

    @property
    def has_outline(self) -> bool:
        """True when polygons or circles say where the municipality is."""
        return bool(self.polygons or self.circles)


class Org(Document):
    """The organisation file: one municipality (or other public body)."""

    name: Text
    """Display name, e.g. ``Hattfjelldal kommune``."""
    slug: Slug
    """Slug used in bus topics (``krise/v1/{slug}/…``), e.g. ``hattfjelldal``."""
    municipality_number: Annotated[
        str,
        _pattern_check(MUNICIPALITY_PATTERN, 'a four-digit municipality number in quotes ("1826")'),
        _schema(MUNICIPALITY_PATTERN),
    ]
    """Kommunenummer, four digits written in quotes (``"1826"``; leading zeros count)."""
    website: HttpUrl
    """The municipality's own website, e.g. ``https://www.hattfjelldal.kommune.no``."""
    required_languages: Annotated[list[Lang], AfterValidator(_unique)]
    """Languages every public message must have; includes ``nb``. Municipalities in the
    Sami language area add theirs (Hattfjelldal: ``sma``, South Sami)."""
    recommended_languages: Annotated[list[Lang], AfterValidator(_unique)] = Field(
        default_factory=list
    )
    """Languages that should be there but do not block approval (``en`` for alerts)."""
    operators: Annotated[list[Operator], Field(min_length=1)]
    """Who may log in to the console, with their roles."""
    staff_groups: list[StaffGroup] = Field(default_factory=list)
    """Departments, for freeze scopes and the roll-call."""
    channels: Annotated[list[ChannelDef], Field(min_length=1)]
    """Every channel the municipality can publish to; exactly one is the website."""
    allowed_phone_numbers: list[PhoneNumber] = Field(default_factory=list)
    """The municipality's own numbers, allowed in messages without a warning. The emergency
    numbers 110, 112, 113 and 116 117 are always allowed and need not be listed."""
    area: OrgArea = Field(default_factory=OrgArea)
    """The municipality's area for CAP requests: its name and, optionally, its outline.
    The geocode is ``municipality_number``."""
    timezone: TimeZoneName = DEFAULT_TIMEZONE
    """IANA time zone of the times shown to people (website, feed, console, CAP preview);
    times are stored and sent in UTC."""

    @field_validator("required_languages")
    @classmethod
    def _primary_required(cls, value: list[str]) -> list[str]:
        if PRIMARY_LANGUAGE not in value:
            raise ValueError(f"must include {PRIMARY_LANGUAGE} (bokmål is always required)")
        return value

    def issues(self) -> list[Issue]:
        """Duplicate ids, the website channel, languages listed twice, a missing approver."""
        out: list[Issue] = []
        _duplicates(out, ("operators",), [o.id for o in self.operators], "operator")
        _duplicates(out, ("staff_groups",), [g.id for g in self.staff_groups], "staff group")
        _duplicates(out, ("channels",), [c.id for c in self.channels], "channel")
        websites = [c.id for c in self.channels if c.kind is ChannelKind.WEBSITE]
        if len(websites) != 1:
            out.append(
                Issue(
                    ("channels",),
                    "exactly one channel must be the website (kind: website): every message "
                    f"goes on the municipality's own website; found {len(websites)}",
                )
            )
        both = [lang for lang in self.recommended_languages if lang in self.required_languages]
        if both:
            out.append(
                Issue(
                    ("recommended_languages",),
                    f"{', '.join(both)} already required: list a language in one place only",
                )
            )
        if not any(o.role.may_approve for o in self.operators):
            out.append(
                Issue(
                    ("operators",),
                    "no operator may approve: at least one needs role: kriseleder",
                )
            )
        return out

    def website_channel(self) -> ChannelDef:
        """The website channel (a valid org has exactly one). Raises KeyError if none."""
        for channel in self.channels:
            if channel.kind is ChannelKind.WEBSITE:
                return channel
        raise KeyError("website")

    def channel(self, channel_id: str) -> ChannelDef:
        """The channel with this id. Raises KeyError."""
        for channel in self.channels:
            if channel.id == channel_id:
                return channel
        raise KeyError(channel_id)

    def operator(self, operator_id: str) -> Operator:
        """The operator with this id. Raises KeyError."""
        for operator in self.operators:
            if operator.id == operator_id:
                return operator
        raise KeyError(operator_id)

    def phone_allowlist(self) -> frozenset[str]:
        """Normalised allowed numbers (:func:`~krise_tui.rules.contact.normalize_phone`):
        the org's own plus the emergency numbers."""
        own = {normalize_phone(number) for number in self.allowed_phone_numbers}
        return frozenset(own | set(EMERGENCY_NUMBERS))

    @property
    def area_name(self) -> str:
        """The municipality's area in words (``area.name``, else ``name``)."""
        return self.area.name or self.name

    def standard_values(self) -> dict[str, str]:
        """Placeholder values the org itself supplies: ``kommune`` and ``nettside``."""
        return {"kommune": self.name, "nettside": self.website}


# --- playbook ------------------------------------------------------------------------------


class FactOwner(StrEnum):
    """Who owns the incident facts: in the acute phase often not the municipality."""

    MUNICIPALITY = "municipality"
    """The municipality owns the facts (e.g. its own drinking water)."""
    POLICE = "police"
    """The police own the facts; the municipality relays them and does not speculate."""
    RESCUE_CENTRE = "rescue_centre"
    """The joint rescue coordination centre (HRS) owns the facts."""


class SeverityLevel(StrictModel):
    """One level of the incident's severity scale."""

    id: Annotated[StrictInt, Field(ge=1, le=9)]
    """Level number, 1 = lowest (the incident's ``level``)."""
    name: Text
    """Short name, e.g. ``Gult nivå``."""
    description: Text
    """When this level applies and what it means for communication."""


class ApprovalPolicy(StrictModel):
    """Who must agree before a message goes out."""

    four_eyes: StrictBool = True
    """Author and approver must be different people (DOMAIN rule 7)."""
    break_glass_allowed: StrictBool = True
    """An approver may publish alone, with a reason, for a short time (journaled)."""
    break_glass_minutes: Annotated[StrictInt, Field(ge=1, le=240)] = 30
    """How long a break-glass window lasts, in minutes."""


class AwaitingTranslation(StrictModel):
    """A language whose text is not written yet: a translator must supply it."""

    status: Literal["awaiting_translation"]
    """Always ``awaiting_translation``."""


def _text_or_awaiting(value: Any) -> str:
    if isinstance(value, dict | AwaitingTranslation):
        return "awaiting"
    return "text"


Translatable = Annotated[
    Annotated[Text, Tag("text")] | Annotated[AwaitingTranslation, Tag("awaiting")],
    Discriminator(_text_or_awaiting),
]
"""Text, or ``{status: awaiting_translation}``."""


def _all_or_list(value: Any) -> str:
    return "all" if isinstance(value, str) else "groups"


FreezeScope = Annotated[
    Annotated[Literal["all"], Tag("all")]
    | Annotated[list[Slug], Field(min_length=1), AfterValidator(_unique), Tag("groups")],
    Discriminator(_all_or_list),
]
"""``all``, or a non-empty list of staff-group ids."""


class FreezePolicy(StrictModel):
    """The freeze on employees speaking for the municipality (DOMAIN rule 2)."""

    on_activation: StrictBool = True
    """Freeze as soon as the playbook is activated."""
    scope: FreezeScope = "all"
    """``all`` staff, or a list of staff-group ids from the org file."""
    notice: Annotated[dict[Lang, Translatable], AfterValidator(_require_primary)]
    """The freeze notice shown on staff terminals, per language (``nb`` required; other
    required languages as text or ``{status: awaiting_translation}``)."""
    remind_after: Duration = timedelta(minutes=10)
    """Remind terminals that have not acknowledged the notice this long after it."""


class Deadlines(StrictModel):
    """How fast the leadership must act, counted from activation (or from a sighting).

    Order: ``first_message`` ≤ ``correct_rumour`` ≤ ``answer_batch`` ≤ 24h. The first
    message is the most urgent; a rumour must be corrected before it spreads, which is
    sooner than a batch of questions can be answered; and questions are answered the same
    day (forvaltningsloven § 11a). ``update_cadence`` stands alone (any positive time).
    """

    first_message: Duration
    """From activation to the first approved message (typically 15–30 minutes)."""
    correct_rumour: Duration
    """From a rumour's first sighting to its published correction."""
    answer_batch: Duration
    """From a question's arrival to the shared answer of its batch."""
    update_cadence: Duration
    """How often an update is published while the incident lasts (even "no news")."""
    delivery_receipt: Duration = timedelta(minutes=10)
    """How long a channel's bridge may take to confirm a delivery before the console says
    "no receipt" and offers a re-send (the bridge's own retries happen inside it)."""

    @field_validator("correct_rumour")
    @classmethod
    def _rumour_after_first(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        first = info.data.get("first_message")
        if first is not None and value < first:
            raise ValueError(
                f"correct_rumour ({format_duration(value)}) is shorter than first_message "
                f"({format_duration(first)}): the order is first_message ≤ correct_rumour ≤ "
                "answer_batch"
            )
        return value

    @field_validator("answer_batch")
    @classmethod
    def _batch_after_rumour(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        for name in ("correct_rumour", "first_message"):
            before = info.data.get(name)
            if before is not None:
                if value < before:
                    raise ValueError(
                        f"answer_batch ({format_duration(value)}) is shorter than {name} "
                        f"({format_duration(before)}): the order is first_message ≤ "
                        "correct_rumour ≤ answer_batch"
                    )
                break
        if value > timedelta(hours=24):
            raise ValueError(
                f"answer_batch ({format_duration(value)}) is longer than 24h: questions are "
                "answered the same day (forvaltningsloven § 11a)"
            )
        return value


class ChecklistItem(StrictModel):
    """One thing to do, by whom, how long after activation."""

    id: Slug
    """Stable id (the journal records which items are done)."""
    offset: Offset
    """When, after activation: ``T+0``, ``T+15m``, ``T+1h``."""
    owner: Role
    """Which role does it."""
    text: LangText
    """What to do, per language (``nb`` required)."""


class Placeholder(StrictModel):
    """A value filled in when a template is used."""

    description: Text
    """What goes here, for the person drafting."""
    example: Text
    """A realistic example value; templates are length-checked with it."""


class TemplateText(StrictModel):
    """A template in one language, or a mark that it awaits translation."""

    status: Literal["ready", "awaiting_translation"] = "ready"
    """``ready`` (headline and body given) or ``awaiting_translation`` (no text yet)."""
    headline: Text | None = None
    """Headline (also the first line of the SMS), with ``{placeholders}``."""
    body: Text | None = None
    """Body text, with ``{placeholders}``; plain language, short paragraphs."""
    sms: Text | None = None
    """A shorter SMS version; without it the SMS is the headline, a newline and the body."""

    @model_validator(mode="after")
    def _text_matches_status(self) -> Self:
        given = [n for n in ("headline", "body", "sms") if getattr(self, n) is not None]
        if self.status == "ready":
            missing = [n for n in ("headline", "body") if getattr(self, n) is None]
            if missing:
                raise ValueError(
                    f"needs {' and '.join(missing)} (or status: awaiting_translation until a "
                    "translator has written it)"
                )
        elif given:
            raise ValueError(
                f"status awaiting_translation takes no text ({', '.join(given)} given): "
                "remove the status once the translation is in"
            )
        return self

    @property
    def ready(self) -> bool:
        """True when the text is there."""
        return self.status == "ready"

    def sms_text(self) -> str:
        """The unexpanded SMS text: ``sms`` or headline + newline + body."""
        if self.sms is not None:
            return self.sms
        return f"{self.headline or ''}\n{self.body or ''}"


def _primary_ready(value: dict[str, TemplateText]) -> dict[str, TemplateText]:
    primary = value.get(PRIMARY_LANGUAGE)
    if primary is None:
        raise ValueError(f"needs the {PRIMARY_LANGUAGE} text (bokmål is always required)")
    if not primary.ready:
        raise ValueError(f"the {PRIMARY_LANGUAGE} text cannot await translation: write it")
    return value


class Template(StrictModel):
    """A pre-written message, per language, with placeholders."""

    id: Slug
    """Template id, e.g. ``forste-melding``."""
    purpose: Text
    """When to use it (for the person drafting)."""
    text: Annotated[dict[Lang, TemplateText], AfterValidator(_primary_ready)]
    """Per language: headline and body, or ``status: awaiting_translation``."""


class Question(StrictModel):
    """A question the public will ask, answered before it is asked (DOMAIN rule 3)."""

    id: Slug
    """Question id."""
    question: LangText
    """The question, per language."""
    answer: LangText
    """The pre-written answer, per language; may use ``{placeholders}``."""
    keywords: Annotated[list[Text], Field(min_length=1)]
    """Words that match incoming posts to this question (any language)."""


class CapGeocode(StrictModel):
    """A CAP ``geocode``: a named code for the area."""

    name: Text
    """Code system, e.g. ``kommunenummer``."""
    value: Text
    """The code, e.g. ``"1826"``."""


class CapArea(StrictModel):
    """A part of the municipality a CAP request is narrowed to.

    The municipality's own area comes from the org file (:class:`OrgArea`); a playbook
    may only narrow it: a named sub-area, optionally with shapes inside the org's
    outline. It never names another municipality (checked against the org file).
    """

    area_desc: Text
    """The sub-area in words, e.g. ``Forsyningsområdet til det kommunale vannverket``;
    the request's ``areaDesc`` adds the municipality's name."""
    geocodes: list[CapGeocode] = Field(default_factory=list)
    """Not needed: the municipality number comes from the org file. Allowed only as the
    org's own ``kommunenummer`` (older playbooks wrote it out)."""
    polygons: list[Polygon] = Field(default_factory=list)
    """CAP ``polygon``: ``"lat,lon lat,lon …"`` with the first point repeated last; must
    lie inside the org file's outline."""
    circles: list[Circle] = Field(default_factory=list)
    """CAP ``circle``: ``"lat,lon radius_km"``; must lie inside the org file's outline."""

    @property
    def has_shapes(self) -> bool:
        """True when polygons or circles narrow the area geometrically."""
        return bool(self.polygons or self.circles)


class CapDefaults(StrictModel):
    """Defaults for a CAP 1.2 draft (a warning request to the police, or a CAP feed)."""

    event: LangText
    """CAP ``event`` per language, e.g. ``{nb: Flom, en: Flood}``."""
    category: Annotated[list[CapCategory], Field(min_length=1), AfterValidator(_unique)]
    """CAP ``category`` (one or more): Geo, Met, Safety, Security, Rescue, Fire, Health,
    Env, Transport, Infra, CBRNE, Other."""
    urgency: CapUrgency
    """CAP ``urgency``: Immediate, Expected, Future, Past, Unknown."""
    severity: CapSeverity
    """CAP ``severity``: Extreme, Severe, Moderate, Minor, Unknown."""
    certainty: CapCertainty
    """CAP ``certainty``: Observed, Likely, Possible, Unlikely, Unknown."""
    area: CapArea | None = None
    """Narrows the org file's area (leave it out to warn the whole municipality)."""


_MUNICIPALITY_NAME_RX = re.compile(r"\b([A-ZÆØÅ][\w-]*(?:[ -][A-ZÆØÅ][\w-]*)*\s+kommune)\b")
"""``Hattfjelldal kommune``, ``Nord-Fron kommune``: a municipality named in words."""


# --- placeholders in text ------------------------------------------------------------------


class TemplateSyntaxError(ValueError):
    """Template text with a malformed ``{placeholder}`` or a lone brace."""


_TOKEN_RX = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME_RX = re.compile(PLACEHOLDER_PATTERN)


def split_template(text: str) -> list[tuple[bool, str]]:
    """Split text into ``(is_placeholder, text_or_name)`` pieces; ``{{``/``}}`` are braces."""
    pieces: list[tuple[bool, str]] = []
    last = 0
    for match in _TOKEN_RX.finditer(text):
        if match.start() > last:
            pieces.append((False, text[last : match.start()]))
        token = match.group(0)
        if token in ("{{", "}}"):
            pieces.append((False, token[0]))
        elif match.group(1) is not None:
            name = match.group(1)
            if not _NAME_RX.fullmatch(name):
                raise TemplateSyntaxError(
                    f"{{{_short(name, 30)[1:-1]}}} is not a placeholder: names use letters, "
                    "digits and _ (like {sted}); write {{ and }} for literal braces"
                )
            pieces.append((True, name))
        else:
            raise TemplateSyntaxError(
                f"lone {token!r} at character {match.start() + 1}: write {token * 2!r} for a "
                "literal brace"
            )
        last = match.end()
    if last < len(text):
        pieces.append((False, text[last:]))
    return pieces


def template_fields(text: str) -> list[str]:
    """The placeholder names used in ``text``, in order (with repeats)."""
    return [value for is_field, value in split_template(text) if is_field]


def expand(text: str, values: Mapping[str, str]) -> str:
    """Fill in ``text``'s placeholders. Raises KeyError naming the first missing one."""
    out = []
    for is_field, value in split_template(text):
        out.append(values[value] if is_field else value)
    return "".join(out)


# --- the playbook --------------------------------------------------------------------------


class Playbook(Document):
    """How the municipality communicates during one type of incident."""

    id: Slug
    """Playbook id, e.g. ``flom-og-skred``."""
    title: LangText
    """Title per language (``nb`` required)."""
    incident_types: Annotated[list[Slug], Field(min_length=1), AfterValidator(_unique)]
    """Incident types this playbook covers, e.g. ``[flom, jordskred]``."""
    fact_owner: FactOwner = FactOwner.MUNICIPALITY
    """Who owns the incident facts: ``municipality``, ``police`` or ``rescue_centre``. When
    it is not the municipality, messages relay that owner's facts and never speculate."""
    severity_levels: Annotated[list[SeverityLevel], Field(min_length=1)]
    """The severity scale, lowest first."""
    channels: Annotated[list[Slug], Field(min_length=1), AfterValidator(_unique)]
    """Org channel ids to publish on. The org's website channel must be among them (checked
    against the org file: it is an error to leave it out, nothing is added silently)."""
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    """Approval policy: four eyes, break glass."""
    freeze: FreezePolicy
    """Freeze on employees speaking for the municipality."""
    deadlines: Deadlines
    """Deadlines; see :class:`Deadlines` for their required order."""
    sms_max_segments: Annotated[StrictInt, Field(ge=1, le=10)] = 3
    """A template's SMS text, filled in with the example values, may take at most this
    many SMS segments."""
    placeholders: dict[PlaceholderName, Placeholder] = Field(default_factory=dict)
    """Every placeholder templates and answers may use, with a description and example."""
    templates: Annotated[list[Template], Field(min_length=1)]
    """Message templates."""
    checklist: Annotated[list[ChecklistItem], Field(min_length=1)]
    """What to do and when, from activation."""
    questions: list[Question] = Field(default_factory=list)
    """Anticipated questions with pre-written answers; they seed the question batches."""
    case_processing_reply: LangText = Field(
        default_factory=lambda: {PRIMARY_LANGUAGE: STANDARD_CASE_REPLY}
    )
    """Reply to posts that need case processing (default: the guideline's exact text)."""
    triage_keywords: dict[Slug, Annotated[list[Text], Field(min_length=1)]] = Field(
        default_factory=dict
    )
    """Words that sort incoming posts into categories (category id → words)."""
    cap: CapDefaults | None = None
    """Defaults for a CAP 1.2 draft; unset when the incident type never warrants one."""

    # -- lookups ----------------------------------------------------------------------------

    def template(self, template_id: str) -> Template:
        """The template with this id. Raises KeyError."""
        for template in self.templates:
            if template.id == template_id:
                return template
        raise KeyError(template_id)

    def question(self, question_id: str) -> Question:
        """The anticipated question with this id. Raises KeyError."""
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(question_id)

    def checklist_in_order(self) -> list[ChecklistItem]:
        """Checklist items by offset (items with the same offset keep the file's order)."""
        return sorted(self.checklist, key=lambda item: item.offset)

    def example_values(self) -> dict[str, str]:
        """Each declared placeholder's example value."""
        return {name: p.example for name, p in self.placeholders.items()}

    def awaiting_translation(self) -> dict[str, list[str]]:
        """Language → what still awaits its translation (``templates.ID``, ``freeze.notice``)."""
        out: dict[str, list[str]] = {}
        for template in self.templates:
            for lang, text in template.text.items():
                if not text.ready:
                    out.setdefault(lang, []).append(f"templates.{template.id}")
        for lang, notice in self.freeze.notice.items():
            if isinstance(notice, AwaitingTranslation):
                out.setdefault(lang, []).append("freeze.notice")
        return out

    # -- checks -----------------------------------------------------------------------------

    def _text_issues(self, out: list[Issue], loc: tuple[str | int, ...], text: str) -> bool:
        """Report malformed or undeclared placeholders in ``text``; True when it is clean."""
        try:
            names = template_fields(text)
        except TemplateSyntaxError as exc:
            out.append(Issue(loc, str(exc)))
            return False
        unknown = sorted(set(names) - set(self.placeholders))
        for name in unknown:
            declared = ", ".join(sorted(self.placeholders)) or "none"
            out.append(
                Issue(
                    loc,
                    f"unknown placeholder {{{name}}}: declare it under placeholders: "
                    f"(declared: {declared})",
                )
            )
        return not unknown

    def issues(self) -> list[Issue]:
        """Duplicate ids, bad placeholders, SMS length, the severity scale's order."""
        out: list[Issue] = []
        _duplicates(out, ("templates",), [t.id for t in self.templates], "template")
        _duplicates(out, ("checklist",), [c.id for c in self.checklist], "checklist")
        _duplicates(out, ("questions",), [q.id for q in self.questions], "question")
        levels = [level.id for level in self.severity_levels]
        if levels != sorted(set(levels)):
            out.append(Issue(("severity_levels",), "level ids must be unique and in rising order"))
        examples = self.example_values()
        for index, template in enumerate(self.templates):
            for lang, text in template.text.items():
                if not text.ready:
                    continue
                base: tuple[str | int, ...] = ("templates", index, "text", lang)
                clean = True
                for part in ("headline", "body", "sms"):
                    value = getattr(text, part)
                    if value is not None:
                        clean = self._text_issues(out, (*base, part), value) and clean
                if clean:
                    self._sms_issue(out, base, text, examples)
        for index, question in enumerate(self.questions):
            for lang, answer in question.answer.items():
                self._text_issues(out, ("questions", index, "answer", lang), answer)
        return out

    def _sms_issue(
        self,
        out: list[Issue],
        base: tuple[str | int, ...],
        text: TemplateText,
        examples: Mapping[str, str],
    ) -> None:
        info = sms_info(expand(text.sms_text(), examples))
        if info.segments <= self.sms_max_segments:
            return
        unit = "septets" if info.encoding == "GSM-7" else "UTF-16 units"
        why = ""
        if info.non_gsm:
            shown = " ".join(repr(ch) for ch in info.non_gsm[:8])
            why = f"; UCS-2 because of {shown}"
        hint = "shorten it" if text.sms is not None else "shorten it or add a shorter sms: text"
        out.append(
            Issue(
                (*base, "sms") if text.sms is not None else base,
                f"too long for SMS: {info.segments} segments ({info.chars} {unit}, "
                f"{info.encoding}{why}) with the example values filled in; the limit is "
                f"sms_max_segments: {self.sms_max_segments}; {hint}",
            )
        )

    def cap_area_issues(self, org: Org) -> list[Issue]:
        """Where this playbook's CAP area does more than narrow ``org``'s area.

        A CAP request covers the org file's area (its name, its municipality number as a
        geocode, its outline). A playbook may name a sub-area and draw shapes inside the
        outline; it may not name another municipality by number or in words, nor draw a
        shape outside the outline or where the org file gives none to check against.
        """
        if self.cap is None or self.cap.area is None:
            return []
        area = self.cap.area
        base: tuple[str | int, ...] = ("cap", "area")
        owner = f"{org.area_name} ({org.municipality_number})"
        rule = "a playbook may only narrow the org file's area"
        out: list[Issue] = []
        for index, geocode in enumerate(area.geocodes):
            if geocode.name.strip().casefold() != MUNICIPALITY_GEOCODE:
                out.append(
                    Issue(
                        (*base, "geocodes", index, "name"),
                        f"geocode {geocode.name!r} cannot be checked against {owner}: {rule}; "
                        "narrow it with polygons or circles instead",
                    )
                )
            elif geocode.value.strip() != org.municipality_number:
                out.append(
                    Issue(
                        (*base, "geocodes", index, "value"),
                        f"names municipality {geocode.value.strip()}, but the org file is "
                        f"{owner}: {rule}, never name another municipality; remove the "
                        "geocode (the org file's municipality number is used)",
                    )
                )
        own = [name.casefold() for name in (org.name, org.area_name)]
        for named in _MUNICIPALITY_NAME_RX.findall(area.area_desc):
            found = named.casefold()
            if not any(found in name or name in found for name in own):
                out.append(
                    Issue(
                        (*base, "area_desc"),
                        f"names {named!r}, but the org file is {owner}: {rule}, never name "
                        "another municipality; describe the part of the municipality only",
                    )
                )
        if area.has_shapes and not org.area.has_outline:
            first = "polygons" if area.polygons else "circles"
            out.append(
                Issue(
                    (*base, first),
                    f"the org file gives no outline of {owner} (area.polygons or "
                    "area.circles), so this shape cannot be checked to lie inside it: add "
                    "the outline to the org file, or leave the shape out",
                )
            )
            return out
        outer = (org.area.polygons, org.area.circles)
        for index, polygon in enumerate(area.polygons):
            if not polygon_within(polygon, *outer):
                out.append(
                    Issue(
                        (*base, "polygons", index),
                        f"this polygon is not inside {owner} as the org file outlines it: "
                        f"{rule}; check the coordinates (latitude,longitude)",
                    )
                )
        for index, circle in enumerate(area.circles):
            if not circle_within(circle, *outer):
                out.append(
                    Issue(
                        (*base, "circles", index),
                        f"this circle is not inside {owner} as the org file outlines it: "
                        f"{rule}; check the centre (latitude,longitude) and the radius",
                    )
                )
        return out

    def org_issues(self, org: Org) -> list[Issue]:
        """Problems of this playbook against an organisation file.

        Every required language must be in every template (as text or marked
        ``awaiting_translation``) and in the freeze notice; the channels must exist and
        include the website; the freeze scope's groups must exist; four eyes must be
        possible with the org's operators; the CAP area may only narrow the org's
        (:meth:`cap_area_issues`).
        """
        out: list[Issue] = []
        for lang in org.required_languages:
            hint = f"write it, or mark it {lang}: {{status: awaiting_translation}}"
            for index, template in enumerate(self.templates):
                if lang not in template.text:
                    out.append(
                        Issue(
                            ("templates", index, "text"),
                            f"template {template.id!r} lacks {lang!r}, a required language "
                            f"of {org.name}: {hint}",
                        )
                    )
            if lang not in self.freeze.notice:
                out.append(
                    Issue(
                        ("freeze", "notice"),
                        f"the freeze notice lacks {lang!r}, a required language of "
                        f"{org.name}: {hint}",
                    )
                )
        known = {c.id for c in org.channels}
        for index, channel_id in enumerate(self.channels):
            if channel_id not in known:
                out.append(
                    Issue(
                        ("channels", index),
                        f"unknown channel {channel_id!r}: {org.slug} has "
                        f"{', '.join(sorted(known))}",
                    )
                )
        websites = [c.id for c in org.channels if c.kind is ChannelKind.WEBSITE]
        if websites and websites[0] not in self.channels:
            out.append(
                Issue(
                    ("channels",),
                    f"the website channel {websites[0]!r} must be listed: every message goes "
                    "on the municipality's own website, and other channels link to it",
                )
            )
        if isinstance(self.freeze.scope, list):
            groups = {g.id for g in org.staff_groups}
            for index, group in enumerate(self.freeze.scope):
                if group not in groups:
                    out.append(
                        Issue(
                            ("freeze", "scope", index),
                            f"unknown staff group {group!r}: {org.slug} has "
                            f"{', '.join(sorted(groups)) or 'none'}",
                        )
                    )
        out += self.cap_area_issues(org)
        if self.approval.four_eyes:
            drafters = [o for o in org.operators if o.role.may_draft]
            if len(drafters) < 2 or not any(o.role.may_approve for o in drafters):
                out.append(
                    Issue(
                        ("approval", "four_eyes"),
                        "four eyes needs at least two operators who draft, one of them a "
                        f"kriseleder; {org.slug} has {len(drafters)}",
                    )
                )
        return out
