"""The channel seam: one approved message version, carried to one platform.

A channel adapter takes an :class:`ApprovedMessage` (every language variant of one
approved version, with its ``version_id``) and delivers it to one platform: the
municipality's website, a webhook (SMS gateway, intranet), Mastodon, a Facebook page,
e-mail. Every adapter implements the :class:`Channel` protocol:

- ``deliver`` never raises for platform trouble. Timeouts, refused connections and
  4xx/5xx answers become a failed :class:`DeliveryResult` with a human reason
  (``"503 Service Unavailable"``, ``"timeout after 10 s"``), a ``retry_after`` hint when
  the platform gave one, and ``permanent=True`` when retrying cannot help (4xx other
  than 408 and 429). Only a programming error escapes.
- Delivery is idempotent. The outbox retries with the same key,
  :func:`idempotency_key` = ``"{version_id}:{channel name}"``: a platform that honours
  an ``Idempotency-Key`` header gets it; for one that does not, the adapter keeps a
  :class:`JsonLedger` of keys it has delivered and answers from it.

Adapters register themselves by kind with :func:`register`; :func:`create_channel` builds
one from a plain config mapping (TOML/YAML). Secrets are never inline in that config:
they are ``{"env": "NAME"}`` or ``{"file": "/path"}`` references read by
:func:`resolve_secret`.

The text helpers :func:`render_text` and :func:`sms_text` make sure every text ends with
the link to the municipality's own website (DOMAIN rule 6) and the signature with full
name and title (rule 14), cutting the body, never the link, to fit a platform's limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, Protocol, Self, TypeVar

import httpx
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

VERSION_ID_PATTERN = r"^[0-9a-f]{64}$"
"""A version id: SHA-256 over the message's canonical content, lower-case hex."""

LANG_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
"""A BCP 47 language tag as krise uses them: ``nb``, ``sma``, ``en``, ``se-Latn``…"""

DEFAULT_TIMEOUT = 10.0
"""Seconds an HTTP or SMTP channel waits for the platform by default."""

EXERCISE_LABEL = "ØVELSE"
"""Label on every text of a drill, in every language (the word Norwegian drills use)."""

STATUS_LABELS: dict[str, dict[str, str]] = {
    "updated": {"nb": "Oppdatert", "en": "Updated"},
    "retracted": {"nb": "Trukket tilbake", "en": "Retracted"},
}
"""Headline labels for updated and retracted versions; other languages use ``nb``."""

ELLIPSIS = "…"


# --------------------------------------------------------------------------- message


class MessageStatus(StrEnum):
    """What a version does to the message before it."""

    PUBLISHED = "published"
    """A new message."""
    UPDATED = "updated"
    """Replaces the version named by ``supersedes`` with new content."""
    RETRACTED = "retracted"
    """Withdraws the version named by ``supersedes``; its text says why."""


class MessageVariant(BaseModel):
    """One language version of a message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lang: Annotated[str, Field(pattern=LANG_PATTERN)]
    """Language tag: ``nb`` (always), ``sma``, ``en``…"""
    headline: Annotated[str, Field(min_length=1)]
    """The headline, one line, plain text."""
    body: str
    """The body, plain text; blank lines separate paragraphs."""

    @field_validator("headline")
    @classmethod
    def _one_line(cls, value: str) -> str:
        value = value.strip()
        if not value or "\n" in value:
            raise ValueError("a headline is one non-empty line")
        return value


class ApprovedMessage(BaseModel):
    """One approved, signed version of the message, as every channel carries it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version_id: Annotated[str, Field(pattern=VERSION_ID_PATTERN)]
    """SHA-256 hex over the message's canonical content; every channel carries it."""
    org_name: Annotated[str, Field(min_length=1)]
    """The municipality's name, e.g. ``Hattfjelldal kommune``."""
    website_url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    """The municipality's own crisis page; every other channel links to it (rule 6)."""
    variants: tuple[MessageVariant, ...]
    """Language versions, ``nb`` first; ``sma`` and ``en`` when present."""
    signature: Annotated[str, Field(min_length=1)]
    """Full name and title of the approver, e.g. ``Kari Nordmann, kriseleder``."""
    published_at: AwareDatetime
    """When this version was approved for publication (timezone-aware)."""
    status: MessageStatus = MessageStatus.PUBLISHED
    """Published, updated or retracted."""
    supersedes: Annotated[str, Field(pattern=VERSION_ID_PATTERN)] | None = None
    """The version this one updates or retracts."""
    exercise: bool = False
    """A drill: every text is labelled ``ØVELSE``."""

    @field_validator("variants")
    @classmethod
    def _nb_first(cls, value: tuple[MessageVariant, ...]) -> tuple[MessageVariant, ...]:
        if not value or value[0].lang != "nb":
            raise ValueError("the first variant must be nb (the written standard)")
        langs = [variant.lang for variant in value]
        if len(set(langs)) != len(langs):
            raise ValueError(f"duplicate language variants: {', '.join(langs)}")
        return value

    @field_validator("signature")
    @classmethod
    def _signature_has_title(cls, value: str) -> str:
        value = " ".join(value.split())
        if "," not in value:
            raise ValueError("sign with full name and title, e.g. 'Kari Nordmann, kriseleder'")
        return value

    @property
    def langs(self) -> tuple[str, ...]:
        """The language tags of the variants, ``nb`` first."""
        return tuple(variant.lang for variant in self.variants)

    def variant(self, lang: str) -> MessageVariant | None:
        """The variant in ``lang``, or None."""
        for variant in self.variants:
            if variant.lang == lang:
                return variant
        return None

    def variant_for(self, lang: str) -> MessageVariant:
        """The variant in ``lang``, falling back to ``nb`` when there is none."""
        return self.variant(lang) or self.variants[0]

    @property
    def signature_line(self) -> str:
        """The signature, with the municipality's name unless it already says it."""
        if self.org_name.casefold() in self.signature.casefold():
            return self.signature
        return f"{self.signature}, {self.org_name}"


def idempotency_key(message: ApprovedMessage, channel_name: str) -> str:
    """The key every delivery of ``message`` to ``channel_name`` carries, retries too."""
    return f"{message.version_id}:{channel_name}"


# --------------------------------------------------------------------------- results


class DeliveryStatus(StrEnum):
    """The outcome of one delivery attempt."""

    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one delivery attempt achieved."""

    status: DeliveryStatus
    """Delivered or failed."""
    remote_id: str | None = None
    """The platform's id for the post (status id, post id, page URL, Message-ID)."""
    reason: str | None = None
    """Why it failed, in words an operator understands (``"503 Service Unavailable"``)."""
    retry_after: float | None = None
    """Seconds the platform asked us to wait before retrying (``Retry-After``)."""
    permanent: bool = False
    """Retrying the same request cannot succeed (bad token, bad config, rejected)."""

    @property
    def ok(self) -> bool:
        """True when delivered."""
        return self.status is DeliveryStatus.DELIVERED

    @classmethod
    def delivered(cls, remote_id: str | None) -> DeliveryResult:
        """A successful delivery."""
        return cls(DeliveryStatus.DELIVERED, remote_id=remote_id)

    @classmethod
    def failed(
        cls, reason: str, *, retry_after: float | None = None, permanent: bool = False
    ) -> DeliveryResult:
        """A failed delivery with a human reason."""
        return cls(
            DeliveryStatus.FAILED, reason=reason, retry_after=retry_after, permanent=permanent
        )


class Channel(Protocol):
    """One outward channel: carries an approved message version to one platform."""

    @property
    def name(self) -> str:
        """The configured channel name (unique per organisation), e.g. ``facebook-side``."""
        ...

    @property
    def kind(self) -> str:
        """The adapter kind, e.g. ``website``, ``webhook``, ``mastodon``."""
        ...

    async def deliver(
        self,
        message: ApprovedMessage,
        *,
        idempotency_key: str,
        previous_remote_id: str | None = None,
    ) -> DeliveryResult:
        """Deliver ``message``; never raises for platform errors.

        Args:
            message: the approved version.
            idempotency_key: ``"{version_id}:{channel name}"``; the same on every retry.
            previous_remote_id: the remote id of the delivery of ``message.supersedes``
                on this channel, when known: adapters that can edit a post edit it.
        """
        ...


class ConfigurableChannel(Channel, Protocol):
    """A channel class that can be built from a plain config mapping."""

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Self:
        """Build the channel; raise :class:`ChannelConfigError` for bad config."""
        ...


# --------------------------------------------------------------------------- config


class ChannelConfigError(ValueError):
    """A channel's configuration is wrong: the message names the channel and the field."""


class SecretError(ChannelConfigError):
    """A secret reference cannot be resolved: the message names the variable or file."""


class EnvSecret(BaseModel):
    """A secret read from an environment variable: ``{"env": "NAME"}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class FileSecret(BaseModel):
    """A secret read from a file (first line, stripped): ``{"file": "/path"}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: Path


def _no_inline_secret(value: object) -> object:
    if isinstance(value, str):
        raise ValueError(
            'secrets are never inline: use {"env": "NAME"} or {"file": "/path"} instead'
        )
    return value


SecretRef = Annotated[EnvSecret | FileSecret, BeforeValidator(_no_inline_secret)]
"""A config field holding a secret reference (a plain string is rejected)."""


def resolve_secret(ref: EnvSecret | FileSecret | Mapping[str, Any]) -> str:
    """Read the secret ``ref`` points at.

    Raises:
        SecretError: the variable is unset or empty, the file is missing, unreadable or
            empty, or ``ref`` is not an env/file reference. The message names it.
    """
    if isinstance(ref, Mapping):
        try:
            if set(ref) == {"env"}:
                ref = EnvSecret.model_validate(ref)
            elif set(ref) == {"file"}:
                ref = FileSecret.model_validate(ref)
            else:
                raise SecretError(
                    f'a secret reference is {{"env": "NAME"}} or {{"file": "/path"}}, '
                    f"not {sorted(ref)}"
                )
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"]
            raise SecretError(f"bad secret reference {dict(ref)!r}: {problem}") from None
    if isinstance(ref, EnvSecret):
        value = os.environ.get(ref.env, "")
        if not value:
            raise SecretError(f"environment variable {ref.env} is not set (or empty)")
        return value
    try:
        lines = ref.file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise SecretError(f"secret file {ref.file} does not exist") from None
    except OSError as exc:
        raise SecretError(f"secret file {ref.file} cannot be read: {exc.strerror}") from None
    value = lines[0].strip() if lines else ""
    if not value:
        raise SecretError(f"secret file {ref.file} is empty")
    return value


class ChannelConfig(BaseModel):
    """Fields every channel config shares. Unknown fields are errors (typos)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str | None = None
    """The adapter kind; allowed here so a whole ``[channels.x]`` table can be passed."""


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def parse_config(model: type[ConfigT], name: str, config: Mapping[str, Any]) -> ConfigT:
    """Validate ``config`` for channel ``name``; errors name the channel and the field."""
    try:
        return model.model_validate(dict(config))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(config)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ChannelConfigError(f"channel {name!r}: {problems}") from None


BaseUrl = Annotated[
    str, Field(pattern=r"^https?://\S+$"), AfterValidator(lambda url: url.rstrip("/"))
]
"""An http(s) base URL, kept without a trailing slash so paths can be appended."""


class HttpChannel(Generic[ConfigT]):
    """What the HTTP adapters share: a name, a validated config, an optional pooled client.

    Without a client each delivery opens (and closes) its own; a long-lived owner such
    as a bridge lends one pooled client with :meth:`lend_client` for its lifetime.
    """

    config_model: ClassVar[type[Any]]
    """The adapter's config model (validated by :meth:`from_config`)."""

    def __init__(
        self, name: str, config: ConfigT, *, client: httpx.AsyncClient | None = None
    ) -> None:
        self.name = name
        self.config = config
        self._client = client

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Self:
        """Build from a plain mapping (see the adapter's config model)."""
        return cls(name, parse_config(cls.config_model, name, config))

    def lend_client(self, client: httpx.AsyncClient | None) -> bool:
        """Use ``client`` from now on (``None`` gives it back); False if one was given."""
        if client is not None and self._client is not None:
            return False
        self._client = client
        return True


# --------------------------------------------------------------------------- registry

ChannelFactory = Callable[[str, Mapping[str, Any]], Channel]

_FACTORIES: dict[str, ChannelFactory] = {}

BUILTIN_KINDS: dict[str, str] = {
    "website": "krise_tui.channels.website",
    "webhook": "krise_tui.channels.webhook",
    "mastodon": "krise_tui.channels.mastodon",
    "facebook": "krise_tui.channels.facebook",
    "email": "krise_tui.channels.email",
}
"""Built-in kinds and the module that registers each (imported on first use)."""

C = TypeVar("C", bound=ConfigurableChannel)


def register(kind: str) -> Callable[[type[C]], type[C]]:
    """Class decorator: make ``create_channel(kind, …)`` build this class.

    Raises:
        ValueError: another class is already registered for ``kind``.
    """

    def decorate(cls: type[C]) -> type[C]:
        existing = _FACTORIES.get(kind)
        factory: ChannelFactory = cls.from_config
        if existing is not None and getattr(existing, "__self__", None) is not cls:
            raise ValueError(f"channel kind {kind!r} is already registered")
        _FACTORIES[kind] = factory
        return cls

    return decorate


def registered_kinds() -> list[str]:
    """Every kind :func:`create_channel` knows, built-in ones included."""
    return sorted(set(_FACTORIES) | set(BUILTIN_KINDS))


def create_channel(kind: str, name: str, config: Mapping[str, Any]) -> Channel:
    """Build the channel ``name`` of adapter ``kind`` from ``config``.

    Raises:
        ChannelConfigError: unknown kind, or the config is invalid (the message says
            which channel and which field), or a secret cannot be resolved.
    """
    if kind not in _FACTORIES and kind in BUILTIN_KINDS:
        importlib.import_module(BUILTIN_KINDS[kind])
    factory = _FACTORIES.get(kind)
    if factory is None:
        known = ", ".join(registered_kinds())
        raise ChannelConfigError(f"channel {name!r}: unknown kind {kind!r} (known: {known})")
    config_kind = config.get("kind")
    if config_kind is not None and config_kind != kind:
        raise ChannelConfigError(f"channel {name!r}: config says kind {config_kind!r}, not {kind}")
    return factory(name, config)


# --------------------------------------------------------------------------- text


def label_prefix(message: ApprovedMessage, lang: str) -> str:
    """``"ØVELSE: "`` for drills, then ``"Oppdatert: "`` / ``"Trukket tilbake: "``."""
    parts: list[str] = []
    if message.exercise:
        parts.append(EXERCISE_LABEL)
    labels = STATUS_LABELS.get(message.status.value)
    if labels is not None:
        parts.append(labels.get(lang, labels["nb"]))
    return "".join(f"{part}: " for part in parts)


def headline_text(message: ApprovedMessage, lang: str) -> str:
    """The headline in ``lang`` (``nb`` fallback) with the drill and status labels."""
    return label_prefix(message, lang) + message.variant_for(lang).headline


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, with ``…``."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[:limit] if limit > 0 else ""
    cut = text[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    newline = cut.rfind("\n")
    boundary = max(space, newline)
    if boundary >= len(cut) // 2:
        cut = cut[:boundary]
    return cut.rstrip() + ELLIPSIS


def render_text(message: ApprovedMessage, lang: str, *, max_chars: int | None = None) -> str:
    """The message as plain text in ``lang`` (``nb`` when missing) for a social channel.

    Layout: labelled headline, blank line, body, blank line, website link, signature
    line. When ``max_chars`` applies, the body is shortened at a word boundary with
    ``…`` (dropped entirely if need be), then the headline; the link and signature are
    never cut. Length is counted in code points (platforms that count links as fewer
    characters only leave room to spare).

    Raises:
        ValueError: ``max_chars`` is too small to hold the link and the signature.
    """
    variant = message.variant_for(lang)
    head = headline_text(message, variant.lang)
    body = variant.body.strip()
    tail = f"\n\n{message.website_url}\n{message.signature_line}"
    full = head + (f"\n\n{body}" if body else "") + tail
    if max_chars is None or len(full) <= max_chars:
        return full
    room = max_chars - len(head) - len(tail) - 2
    if body and room >= 10:
        return f"{head}\n\n{shorten(body, room)}{tail}"
    room = max_chars - len(tail)
    if room < 10:
        raise ValueError(
            f"a limit of {max_chars} characters cannot hold the link and the signature "
            f"({len(tail.strip())} characters)"
        )
    return shorten(head, room) + tail


def sms_text(message: ApprovedMessage, lang: str = "nb") -> str:
    """Short text for SMS (rule 22): labelled headline, website link, signature."""
    return f"{headline_text(message, lang)}\n{message.website_url}\n{message.signature_line}"


def text_fields(
    message: ApprovedMessage, lang: str, *, max_chars: int | None = None
) -> dict[str, str]:
    """The fields a template may use: ``headline``, ``body``, ``text``, ``link``…"""
    variant = message.variant_for(lang)
    return {
        "headline": headline_text(message, variant.lang),
        "body": variant.body,
        "text": render_text(message, variant.lang, max_chars=max_chars),
        "link": message.website_url,
        "version_id": message.version_id,
        "lang": variant.lang,
        "signature": message.signature_line,
        "sms_text": sms_text(message, variant.lang),
        "status": message.status.value,
        "org_name": message.org_name,
        "published_at": message.published_at.isoformat(),
        "supersedes": message.supersedes or "",
    }


TEMPLATE_FIELDS = frozenset(
    [
        "headline",
        "body",
        "text",
        "link",
        "version_id",
        "lang",
        "signature",
        "sms_text",
        "status",
        "org_name",
        "published_at",
        "supersedes",
    ]
)
"""The names a webhook body template may reference, ``{headline}`` etc."""


# --------------------------------------------------------------------------- HTTP


def format_seconds(seconds: float) -> str:
    """``10`` → ``"10 s"``, ``0.25`` → ``"0.25 s"``."""
    return f"{seconds:g} s"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _error_detail(response: httpx.Response) -> str:
    """The platform's own error text from a JSON body (Mastodon, Graph API…), if any."""
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        return ""
    detail: object = None
    if isinstance(data, dict):
        detail = data.get("error") or data.get("message") or data.get("detail")
        if isinstance(detail, dict):
            detail = detail.get("message")
    if not isinstance(detail, str):
        return ""
    return shorten(" ".join(detail.split()), 200)


def failure_from_response(response: httpx.Response) -> DeliveryResult:
    """A failed result for a non-2xx answer: reason, ``retry_after`` and permanence."""
    code = response.status_code
    reason = f"{code} {response.reason_phrase}".strip()
    detail = _error_detail(response)
    if detail and detail.casefold() != response.reason_phrase.casefold():
        reason = f"{reason}: {detail}"
    retry_after = None
    if code in (429, 503):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if 300 <= code < 400:
        target = response.headers.get("Location", "?")
        return DeliveryResult.failed(
            f"{reason} (redirect to {target}: fix the URL)", permanent=True
        )
    permanent = 400 <= code < 500 and code not in (408, 429)
    return DeliveryResult.failed(reason, retry_after=retry_after, permanent=permanent)


def failure_from_exception(exc: httpx.HTTPError, *, timeout: float) -> DeliveryResult:
    """A failed, retryable result for a transport error (timeout, refused, reset)."""
    if isinstance(exc, httpx.TimeoutException):
        return DeliveryResult.failed(f"timeout after {format_seconds(timeout)}")
    target = ""
    with contextlib.suppress(RuntimeError):
        target = f" {exc.request.url.host}:{exc.request.url.port or ''}".rstrip(":")
    if isinstance(exc, httpx.ConnectError):
        return DeliveryResult.failed(f"cannot connect to{target}: {exc or 'connection failed'}")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return DeliveryResult.failed(f"bad URL: {exc}", permanent=True)
    return DeliveryResult.failed(f"{type(exc).__name__}:{target} {exc}".strip())


@contextlib.asynccontextmanager
async def http_client(client: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    """Use the shared ``client`` when given, else a fresh one closed afterwards."""
    if client is not None:
        yield client
        return
    async with httpx.AsyncClient(follow_redirects=False) as fresh:
        yield fresh


async def send_http(
    client: httpx.AsyncClient | None,
    method: str,
    url: str,
    *,
    timeout: float,
    **kwargs: Any,
) -> httpx.Response | DeliveryResult:
    """Send one request; a transport error becomes a failed :class:`DeliveryResult`."""
    try:
        async with http_client(client) as http:
            return await http.request(method, url, timeout=timeout, **kwargs)
    except httpx.HTTPError as exc:
        return failure_from_exception(exc, timeout=timeout)


def response_json(response: httpx.Response) -> dict[str, Any]:
    """The JSON object in ``response``, or ``{}`` when it is not one."""
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- files


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> bool:
    """Write ``data`` to ``path`` atomically (temp file, fsync, ``os.replace``).

    Returns False without touching the file when it already holds exactly ``data``,
    so an idempotent re-delivery leaves files (and their mtimes) as they were.
    """
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return True


class JsonLedger:
    """A small JSON file: idempotency key → remote id, written atomically.

    For platforms without an idempotency header: a key found here was delivered and
    is answered from the ledger instead of posting again. A crash between the
    platform's answer and the ledger write can still post twice; that window is one
    local file write.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()

    @property
    def lock(self) -> asyncio.Lock:
        """Hold this around look-up, delivery and :meth:`put` so a key posts once."""
        return self._lock

    def _load(self) -> dict[str, str]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ChannelConfigError(
                f"ledger {self.path} is not valid JSON (line {exc.lineno}): "
                "fix or move it; it records what was already delivered"
            ) from None
        if not isinstance(data, dict):
            raise ChannelConfigError(f"ledger {self.path} must hold a JSON object")
        return {str(key): str(value) for key, value in data.items()}

    async def get(self, key: str) -> str | None:
        """The remote id recorded for ``key``, or None."""
        return (await asyncio.to_thread(self._load)).get(key)

    async def put(self, key: str, remote_id: str) -> None:
        """Record ``key`` → ``remote_id`` (atomic rewrite of the file, mode 0600)."""

        def write() -> None:
            data = self._load()
            data[key] = remote_id
            text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
            atomic_write(self.path, text.encode("utf-8"), mode=0o600)

        await asyncio.to_thread(write)
