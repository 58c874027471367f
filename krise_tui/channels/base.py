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
- Delivery is idempotent, and never a second public post. The outbox retries with the
  same key, :func:`idempotency_key` = ``"{version_id}:{channel name}"``. Every adapter
  keeps a :class:`Ledger` that it writes *before* it calls the platform (an attempt
  for this key is in flight) and again after the answer (delivered with the remote id,
  or failed). :func:`deliver_once` runs that protocol: a key delivered before is
  answered from the ledger; a key whose last attempt may have reached the platform (a
  crash mid-attempt, a timeout or reset after sending, a 5xx) is first looked up on the
  platform where the platform can be asked (Facebook, Mastodon: by the version marker
  :func:`version_marker` that every post carries), and is sent again only when the
  platform does not have it. Platforms that cannot be asked get the same key again (the
  ``Idempotency-Key`` header, the e-mail ``Message-ID``) and de-duplicate on it.

Adapters that can answer one asker where they asked implement :class:`Replier`
(``reply``, a :class:`~krise_tui.wire.delivery.ReplyRequest`), and those that can hide a
post on a page the municipality runs implement :class:`Hider` (``hide``). Both keep the
same promise through :func:`deliver_once` under the request's own idempotency key
(``{answer}:{channel}:{post}``): a reply carries a marker line derived from that key
(:func:`reply_marker`) so that a doubtful attempt can be looked up where the platform can
be asked. A drill's request never reaches a platform the org file does not mark as a
drill sandbox (:func:`refuse_exercise`).

Adapters register themselves by kind with :func:`register`; :func:`create_channel` builds
one from a plain config mapping (TOML/YAML). Secrets are never inline in that config:
they are :class:`~krise_tui.playbook.models.SecretRef` references, ``{"env": "NAME"}``
or ``{"file": "/path"}`` (the one definition the org file uses too), read by
:func:`resolve_secret`.

The text helpers :func:`render_text` and :func:`sms_text` make sure every text ends with
the link to the municipality's own website (DOMAIN rule 6) and the signature with full
name and title (rule 14), cutting the body, never the link, to fit a platform's limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, Protocol, Self, TypeVar, runtime_checkable

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

# One definition of a secret reference, the org file's; re-exported for the adapters'
# configs.
from krise_tui.playbook.models import SecretRef as SecretRef

# The message, reply and hide models are wire formats (one definition, krise_tui.wire);
# re-exported here because every adapter takes them.
from krise_tui.wire.delivery import HideRequest as HideRequest
from krise_tui.wire.delivery import PostRef as PostRef
from krise_tui.wire.delivery import ReplyRequest as ReplyRequest
from krise_tui.wire.message import LANG_PATTERN as LANG_PATTERN
from krise_tui.wire.message import VERSION_ID_PATTERN as VERSION_ID_PATTERN
from krise_tui.wire.message import ApprovedMessage as ApprovedMessage
from krise_tui.wire.message import MessageStatus as MessageStatus
from krise_tui.wire.message import MessageVariant as MessageVariant

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

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- message


def idempotency_key(message: ApprovedMessage, channel_name: str) -> str:
    """The key every delivery of ``message`` to ``channel_name`` carries, retries too."""
    return f"{message.version_id}:{channel_name}"


MARKER_DIGITS = 12
"""Hex digits of the version id in a post's marker (48 bits: unique on one page)."""


def version_marker(message: ApprovedMessage) -> str:
    """The marker line a social post carries: ``ref. v3f2a9c1b0d4e``.

    It is the start of the version id the console shows (``v3f2a9c1b``), so a reader or
    an operator can tell versions apart, and the adapter can find its own post again
    after a crash (:func:`has_marker`).
    """
    return f"ref. {marker_token(message)}"


def marker_token(message: ApprovedMessage) -> str:
    """The searchable part of :func:`version_marker`: ``v`` and 12 hex digits."""
    return f"v{message.version_id[:MARKER_DIGITS]}"


def has_marker(text: object, message: ApprovedMessage) -> bool:
    """Whether ``text`` (a post's text, or its HTML) carries ``message``'s marker."""
    if not isinstance(text, str):
        return False
    token = re.escape(marker_token(message))
    return re.search(rf"(?<![0-9A-Za-z]){token}(?![0-9A-Za-z])", text) is not None


# --------------------------------------------------------------------------- results


class AttemptOutcome(StrEnum):
    """The outcome of one delivery attempt by an adapter (not the console's ledger state)."""

    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one delivery attempt achieved."""

    status: AttemptOutcome
    """Delivered or failed."""
    remote_id: str | None = None
    """The platform's id for the post (status id, post id, page URL, Message-ID)."""
    reason: str | None = None
    """Why it failed, in words an operator understands (``"503 Service Unavailable"``);
    for a delivery, a note when there is one (``"already on the platform …"``)."""
    retry_after: float | None = None
    """Seconds the platform asked us to wait before retrying (``Retry-After``)."""
    permanent: bool = False
    """Retrying the same request cannot succeed (bad token, bad config, rejected)."""
    uncertain: bool = False
    """Failed, but the request may have reached the platform (a timeout or reset after
    sending, a 5xx): the next attempt checks before it sends again."""
    existing: bool = False
    """Delivered earlier, not now: found in the ledger or on the platform."""

    @property
    def ok(self) -> bool:
        """True when delivered."""
        return self.status is AttemptOutcome.DELIVERED

    @classmethod
    def delivered(
        cls, remote_id: str | None, *, reason: str | None = None, existing: bool = False
    ) -> DeliveryResult:
        """A successful delivery."""
        return cls(AttemptOutcome.DELIVERED, remote_id=remote_id, reason=reason, existing=existing)

    @classmethod
    def failed(
        cls,
        reason: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        uncertain: bool = False,
    ) -> DeliveryResult:
        """A failed delivery with a human reason."""
        return cls(
            AttemptOutcome.FAILED,
            reason=reason,
            retry_after=retry_after,
            permanent=permanent,
            uncertain=uncertain,
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
        recheck: bool = False,
    ) -> DeliveryResult:
        """Deliver ``message``; never raises for platform errors.

        Args:
            message: the approved version.
            idempotency_key: ``"{version_id}:{channel name}"``; the same on every retry.
            previous_remote_id: the remote id of the delivery of ``message.supersedes``
                on this channel, when known: adapters that can edit a post edit it.
            recheck: an operator re-sends after a final failure: look on the platform
                first even when the ledger has no doubt (where the platform can be asked).
        """
        ...


@runtime_checkable
class Replier(Protocol):
    """A channel that can answer one asker where they asked (DOMAIN §12)."""

    async def reply(self, request: ReplyRequest, *, recheck: bool = False) -> DeliveryResult:
        """Send ``request.text`` to the author of ``request.to``, once per
        ``request.idempotency_key``; never raises for platform errors.

        ``recheck``: an operator re-sends after a final failure: look on the platform
        first (where it can be asked) even when the ledger has no doubt.
        """
        ...


@runtime_checkable
class Hider(Protocol):
    """A channel that can hide (never delete) a post on a page the municipality runs."""

    async def hide(self, request: HideRequest, *, recheck: bool = False) -> DeliveryResult:
        """Hide ``request.post_id``; hiding twice is harmless, so a retry just repeats."""
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


def _no_inline_secret(value: object) -> object:
    if isinstance(value, str):
        raise ValueError(
            'secrets are never inline: use {"env": "NAME"} or {"file": "/path"} instead'
        )
    return value


SecretSetting = Annotated[SecretRef, BeforeValidator(_no_inline_secret)]
"""A config field holding a :class:`SecretRef` (a plain string is rejected by name)."""


def resolve_secret(ref: SecretRef | Mapping[str, Any]) -> str:
    """Read the secret ``ref`` points at (:meth:`SecretRef.resolve`).

    Raises:
        SecretError: the variable is unset or empty, the file is missing, unreadable or
            empty, or ``ref`` is not an env/file reference. The message names it.
    """
    if isinstance(ref, Mapping):
        if set(ref) not in ({"env"}, {"file"}):
            wanted = '{"env": "NAME"} or {"file": "/path"}'
            raise SecretError(f"a secret reference is {wanted}, not {sorted(ref)}")
        try:
            ref = SecretRef.model_validate(dict(ref))
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"]
            raise SecretError(f"bad secret reference {dict(ref)!r}: {problem}") from None
    try:
        return ref.resolve()
    except LookupError as exc:
        raise SecretError(str(exc)) from None


class ChannelConfig(BaseModel):
    """Fields every channel config shares. Unknown fields are errors (typos)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str | None = None
    """The adapter kind; allowed here so a whole ``[channels.x]`` table can be passed."""
    exercise_endpoint: bool = False
    """The platform end is a drill sandbox (the org file's ``exercise: true``): exercise
    replies and hides may go there. Every other channel refuses them
    (:func:`refuse_exercise`)."""


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


def render_text(
    message: ApprovedMessage,
    lang: str,
    *,
    max_chars: int | None = None,
    marker: str | None = None,
) -> str:
    """The message as plain text in ``lang`` (``nb`` when missing) for a social channel.

    Layout: labelled headline, blank line, body, blank line, the ``marker`` line when
    given (:func:`version_marker`), website link, signature line. When ``max_chars``
    applies, the body is shortened at a word boundary with ``…`` (dropped entirely if
    need be), then the headline; marker, link and signature are never cut. Length is
    counted in code points (platforms that count links as fewer characters only leave
    room to spare).

    Raises:
        ValueError: ``max_chars`` is too small to hold the link and the signature.
    """
    variant = message.variant_for(lang)
    head = headline_text(message, variant.lang)
    body = variant.body.strip()
    ref = f"{marker}\n" if marker else ""
    tail = f"\n\n{ref}{message.website_url}\n{message.signature_line}"
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


# --------------------------------------------------------------------------- replies


def reply_marker(idempotency_key: str) -> str:
    """The marker line a reply carries, ``ref. r3f2a9c1b0d4e``: derived from its key, so
    the adapter can find its own reply again after a crash (:func:`has_token`)."""
    return f"ref. {reply_token(idempotency_key)}"


def reply_token(idempotency_key: str) -> str:
    """The searchable part of :func:`reply_marker`: ``r`` and 12 hex digits."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()
    return f"r{digest[:MARKER_DIGITS]}"


def has_token(text: object, token: str) -> bool:
    """Whether ``text`` (a post's text or HTML) carries ``token`` as a whole word."""
    if not isinstance(text, str):
        return False
    escaped = re.escape(token)
    return re.search(rf"(?<![0-9A-Za-z]){escaped}(?![0-9A-Za-z])", text) is not None


def reply_text(
    request: ReplyRequest,
    *,
    max_chars: int | None = None,
    mention: str | None = None,
    marker: str | None = None,
) -> str:
    """A reply as plain text: ``ØVELSE:`` in drills, the ``mention`` (``@acct``), the
    approved text, the ``marker`` line, the link to the full answer and the signature.

    Like :func:`render_text`, only the approved text is shortened (at a word boundary,
    with ``…``) to fit ``max_chars``; the link to the whole answer and the signature never
    are.

    Raises:
        ValueError: ``max_chars`` cannot hold the mention, link and signature.
    """
    head = f"{EXERCISE_LABEL}: " if request.exercise else ""
    if mention:
        head += f"{mention} "
    body = request.text.strip()
    ref = f"{marker}\n" if marker else ""
    tail = f"\n\n{ref}{request.website_url}\n{request.signature}"
    full = head + body + tail
    if max_chars is None or len(full) <= max_chars:
        return full
    room = max_chars - len(head) - len(tail)
    if room < 10:
        raise ValueError(
            f"a limit of {max_chars} characters cannot hold the link and the signature "
            f"({len(head + tail.strip())} characters)"
        )
    return head + shorten(body, room) + tail


def refuse_exercise(
    request: ReplyRequest | HideRequest, channel: str, exercise_endpoint: bool
) -> DeliveryResult | None:
    """A permanent failure when a drill's request would reach a real platform, else None.

    "Real" is every channel the org file does not mark ``exercise: true``: krise cannot
    tell a sandbox from the public by its address (a relay on 127.0.0.1 still mails the
    world), so the municipality says which endpoints are drill sandboxes, and everything
    else is refused. Replies and hides both carry the flag.
    """
    if request.exercise and not exercise_endpoint:
        what = "reply" if isinstance(request, ReplyRequest) else "hide"
        return DeliveryResult.failed(
            f"{EXERCISE_LABEL}: an exercise {what} is never sent to a real platform; channel "
            f"{channel!r} is not marked exercise: true in the org file",
            permanent=True,
        )
    return None


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
    # A 5xx may come from a proxy or an application that did the work and then failed to
    # answer (the Graph API is known to): the post may exist.
    return DeliveryResult.failed(
        reason, retry_after=retry_after, permanent=permanent, uncertain=code >= 500
    )


NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors that happen before a request leaves: the platform never saw it."""


def failure_from_exception(exc: httpx.HTTPError, *, timeout: float) -> DeliveryResult:
    """A failed, retryable result for a transport error (timeout, refused, reset).

    Only errors before the request left (:data:`NOT_SENT_ERRORS`, a bad URL) are
    certain; a read timeout or a reset may come after the platform acted: ``uncertain``.
    """
    if isinstance(exc, httpx.TimeoutException):
        return DeliveryResult.failed(
            f"timeout after {format_seconds(timeout)}",
            uncertain=not isinstance(exc, NOT_SENT_ERRORS),
        )
    target = ""
    with contextlib.suppress(RuntimeError):
        target = f" {exc.request.url.host}:{exc.request.url.port or ''}".rstrip(":")
    if isinstance(exc, httpx.ConnectError):
        return DeliveryResult.failed(f"cannot connect to{target}: {exc or 'connection failed'}")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return DeliveryResult.failed(f"bad URL: {exc}", permanent=True)
    return DeliveryResult.failed(f"{type(exc).__name__}:{target} {exc}".strip(), uncertain=True)


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

from krise_tui.files import atomic_write as atomic_write  # noqa: E402
from krise_tui.files import create_private  # noqa: E402

# --------------------------------------------------------------------------- ledger


class AttemptState(StrEnum):
    """What the ledger knows about one idempotency key."""

    IN_FLIGHT = "in_flight"
    """An attempt was started and may have reached the platform: it was cut short (a
    crash, a cancellation), or it failed in a way that does not tell (a timeout after
    sending, a reset, a 5xx). Check the platform before sending again."""
    DELIVERED = "delivered"
    """The platform has it (``remote_id``)."""
    FAILED = "failed"
    """No attempt reached the platform, or the platform refused it: sending is safe."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """The ledger's record of one idempotency key."""

    state: AttemptState
    remote_id: str | None = None
    """The platform's id, when delivered."""
    started_at: datetime | None = None
    """When the first attempt of the current doubt began (an in-flight entry keeps it
    across retries: Mastodon's Idempotency-Key window counts from there)."""
    reason: str | None = None
    """The last failure's reason."""

    def to_json(self) -> dict[str, Any]:
        """The ledger file's form."""
        data: dict[str, Any] = {"state": self.state.value}
        if self.remote_id is not None:
            data["remote_id"] = self.remote_id
        if self.started_at is not None:
            data["started_at"] = self.started_at.isoformat()
        if self.reason is not None:
            data["reason"] = self.reason
        return data

    @classmethod
    def from_json(cls, value: object) -> LedgerEntry:
        """Parse :meth:`to_json`; a bare string is a delivered key's remote id (the
        format of ledgers written before attempts were recorded ahead)."""
        if isinstance(value, str):
            return cls(AttemptState.DELIVERED, remote_id=value)
        if not isinstance(value, dict):
            raise ValueError(f"an entry must be an object, not {type(value).__name__}")
        started = value.get("started_at")
        remote_id = value.get("remote_id")
        reason = value.get("reason")
        return cls(
            AttemptState(str(value.get("state"))),
            remote_id=None if remote_id is None else str(remote_id),
            started_at=None if started is None else datetime.fromisoformat(str(started)),
            reason=None if reason is None else str(reason),
        )


class LedgerUnavailable(OSError):
    """The ledger's database cannot be read or written now (a full disk, an I/O error,
    a lock held too long): as an OSError, :func:`deliver_once` handles it as it does any
    failure to record, never as a bug in the adapter."""


class Ledger:
    """A write-ahead ledger of delivery attempts: idempotency key → :class:`LedgerEntry`.

    One SQLite file (one row per key, WAL, ``synchronous=FULL``: a change is on disk when
    :meth:`record` returns), mode 0600, or memory when ``path`` is None (then it protects
    one process only). :func:`deliver_once` writes ``in_flight`` before it calls the
    platform and the outcome after, so a crash between the platform's answer and the
    ledger write leaves ``in_flight`` behind, and the next attempt checks the platform
    instead of posting blind.

    A look-up or a change costs the same with ten entries or a hundred thousand (a reply
    to every asker of a large crisis is an entry each). Earlier krise kept the ledger as
    one JSON file rewritten whole on every change (``….ledger.json``): when that file is
    found beside the database (same name, ``.json``), or given as ``path``, its entries
    are taken over at first use and it is renamed ``….json.migrated``.
    """

    def __init__(self, path: Path | None, *, moved_from: Path | None = None) -> None:
        self.path = path
        self.db_path: Path | None = None
        """The database file (``path`` itself, or beside an old ``.json`` ledger)."""
        if path is not None:
            self.db_path = path.with_suffix(".sqlite3") if path.suffix == ".json" else path
        self.moved_from = moved_from
        """Where an earlier krise kept this ledger (a SQLite file): its entries are taken
        over at first use and the old file removed."""
        self._memory: dict[str, LedgerEntry] = {}
        self._con: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._io = asyncio.Lock()
        self._keys: dict[str, asyncio.Lock] = {}

    @property
    def lock(self) -> asyncio.Lock:
        """A lock over the whole ledger, for a caller that serialises every delivery."""
        return self._lock

    def key_lock(self, key: str) -> asyncio.Lock:
        """Held around look-up, delivery and outcome of ``key`` so that it posts once;
        other keys go on meanwhile (one hanging platform call holds up only its key)."""
        return self._keys.setdefault(key, asyncio.Lock())

    # --- in a worker thread, one call at a time (``_io``) ---------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._con is not None:
            return self._con
        assert self.db_path is not None
        create_private(self.db_path)
        con = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        try:
            con.execute("PRAGMA busy_timeout = 10000")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = FULL")
            con.execute("CREATE TABLE IF NOT EXISTS ledger (key TEXT PRIMARY KEY, entry TEXT)")
            self._take_over_json(con)
            self._take_over_moved(con)
        except sqlite3.DatabaseError as exc:
            con.close()
            raise ChannelConfigError(
                f"ledger {self.db_path} is not a ledger database ({exc}): fix or move it; "
                "it records what was already delivered"
            ) from None
        self._con = con
        return con

    def _take_over_json(self, con: sqlite3.Connection) -> None:
        """Move an old JSON ledger's entries in (once; repeating it after a crash is
        harmless: entries already here win)."""
        assert self.db_path is not None
        old = self.db_path.with_suffix(".json")
        if not old.exists():
            return
        entries = _read_json_ledger(old)
        with con:  # one transaction
            con.execute("BEGIN")
            con.executemany(
                "INSERT OR IGNORE INTO ledger(key, entry) VALUES (?, ?)",
                [(key, json.dumps(entry.to_json())) for key, entry in entries.items()],
            )
        old.rename(old.with_name(old.name + ".migrated"))
        log.info("ledger %s: %d entries taken over from %s", self.db_path, len(entries), old)

    def _take_over_moved(self, con: sqlite3.Connection) -> None:
        """Move the entries of the ledger at :attr:`moved_from` in, then delete that file
        (and its WAL): once; repeating it after a crash is harmless (entries here win)."""
        old = self.moved_from
        if old is None or not old.exists() or old == self.db_path:
            return
        source = sqlite3.connect(f"file:{old}?mode=ro", uri=True)
        try:
            rows = source.execute("SELECT key, entry FROM ledger").fetchall()
        except sqlite3.DatabaseError as exc:
            raise ChannelConfigError(
                f"ledger {old} (moved to {self.db_path}) cannot be read ({exc}): fix or "
                "move it; it records what was already delivered"
            ) from None
        finally:
            source.close()
        with con:  # one transaction, on disk before the old file goes
            con.execute("BEGIN")
            con.executemany("INSERT OR IGNORE INTO ledger(key, entry) VALUES (?, ?)", rows)
        for suffix in ("", "-wal", "-shm", "-journal"):
            old.with_name(old.name + suffix).unlink(missing_ok=True)
        log.info("ledger %s: %d entries taken over from %s", self.db_path, len(rows), old)

    def _get(self, key: str) -> LedgerEntry | None:
        if self.db_path is None:
            return self._memory.get(key)
        row = self._connect().execute("SELECT entry FROM ledger WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return LedgerEntry.from_json(json.loads(row[0]))
        except (TypeError, ValueError) as exc:
            raise ChannelConfigError(
                f"ledger {self.db_path}: entry {key!r} is not understood ({exc}): fix or "
                "move the file; it records what was already delivered"
            ) from None

    def _put(self, key: str, entry: LedgerEntry) -> None:
        if self.db_path is None:
            self._memory[key] = entry
            return
        self._connect().execute(
            "INSERT OR REPLACE INTO ledger(key, entry) VALUES (?, ?)",
            (key, json.dumps(entry.to_json(), ensure_ascii=False)),
        )

    # --- the API ---------------------------------------------------------------------------

    async def entry(self, key: str) -> LedgerEntry | None:
        """What the ledger knows about ``key`` (None: nothing)."""
        async with self._io:
            if self.db_path is None:
                return self._get(key)
            try:
                return await asyncio.to_thread(self._get, key)
            except sqlite3.Error as exc:
                raise LedgerUnavailable(f"ledger {self.db_path} cannot be read: {exc}") from exc

    async def get(self, key: str) -> str | None:
        """The remote id recorded for a delivered ``key`` (``""`` when it has none), or
        None when the key is not delivered."""
        entry = await self.entry(key)
        if entry is None or entry.state is not AttemptState.DELIVERED:
            return None
        return entry.remote_id if entry.remote_id is not None else ""

    async def record(self, key: str, entry: LedgerEntry) -> None:
        """Store ``entry`` for ``key``; on disk before this returns."""
        async with self._io:
            if self.db_path is None:
                self._put(key, entry)
                return
            try:
                await asyncio.to_thread(self._put, key, entry)
            except sqlite3.Error as exc:
                # sqlite3's errors are not OSErrors: a full disk here was taken for a
                # bug in the adapter (a final failure, though the post had gone out).
                raise LedgerUnavailable(f"ledger {self.db_path} cannot be written: {exc}") from exc

    async def put(self, key: str, remote_id: str) -> None:
        """Record ``key`` as delivered with ``remote_id``."""
        await self.record(key, LedgerEntry(AttemptState.DELIVERED, remote_id=remote_id))

    def close(self) -> None:
        """Close the database (a later call opens it again)."""
        con, self._con = self._con, None
        if con is not None:
            con.close()


def _read_json_ledger(path: Path) -> dict[str, LedgerEntry]:
    """The entries of a JSON ledger as krise before 0.2 wrote it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ChannelConfigError(
            f"ledger {path} is not valid JSON (line {exc.lineno}): "
            "fix or move it; it records what was already delivered"
        ) from None
    if not isinstance(data, dict):
        raise ChannelConfigError(f"ledger {path} must hold a JSON object")
    entries: dict[str, LedgerEntry] = {}
    for key, value in data.items():
        try:
            entries[str(key)] = LedgerEntry.from_json(value)
        except (TypeError, ValueError) as exc:
            raise ChannelConfigError(
                f"ledger {path}: entry {key!r} is not understood ({exc}): fix or "
                "move the file; it records what was already delivered"
            ) from None
    return entries


# --------------------------------------------------------------------------- protocol


class Check(Enum):
    """A look-up's answer when it did not find the version."""

    ABSENT = "absent"
    """The platform was asked and does not have it: sending is safe."""
    NOT_CHECKED = "not checked"
    """Not asked: the idempotency key still covers a retry (Mastodon within its window)."""


class CannotCheck(Exception):
    """The platform could not be asked whether it has the version (network, 5xx, no
    permission): the adapter must not send again blind."""

    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


Lookup = Callable[[LedgerEntry | None], Awaitable[DeliveryResult | Check]]
"""Asks the platform whether it has the version: a delivered result when found (with
``existing=True`` and a reason saying how), else a :class:`Check`; raises
:class:`CannotCheck`."""

Send = Callable[[bool], Awaitable[DeliveryResult]]
"""Sends once; the argument says whether an earlier attempt may have reached the platform
(so the adapter can say in the result that this repeats the same key)."""


def cannot_check(result: DeliveryResult, what: str) -> CannotCheck:
    """A :class:`CannotCheck` from a failed look-up request (``what`` it asked)."""
    return CannotCheck(
        f"{what}: {result.reason}", permanent=result.permanent, retry_after=result.retry_after
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def deliver_once(
    ledger: Ledger,
    key: str,
    *,
    send: Send,
    lookup: Lookup | None = None,
    recheck: bool = False,
    now: Callable[[], datetime] = _utcnow,
) -> DeliveryResult:
    """Deliver under ``key`` at most once, with the intent written ahead in ``ledger``.

    1. A key the ledger has as delivered is answered from it (``existing``).
    2. When the last attempt may have reached the platform (``in_flight``), or the
       operator re-sends (``recheck``), ``lookup`` asks the platform first. Found: it is
       recorded and answered as delivered, nothing is sent. When the platform cannot be
       asked right now, the attempt fails rather than posting blind. Without ``lookup``
       (SMTP, webhooks) the same key goes out again and the receiver de-duplicates on it.
    3. ``in_flight`` is written (fsync'd) before ``send``, the outcome after. A failure
       that may have reached the platform, or any failure while an earlier doubt was not
       cleared by a look-up, stays ``in_flight``.
    """
    async with ledger.key_lock(key):
        try:
            entry = await ledger.entry(key)
        except (OSError, ChannelConfigError) as exc:
            return DeliveryResult.failed(f"cannot read the ledger: {exc}")
        if entry is not None and entry.state is AttemptState.DELIVERED:
            return DeliveryResult.delivered(
                entry.remote_id or None,
                reason="already delivered (recorded in the ledger); not sent again",
                existing=True,
            )
        doubt = entry is not None and entry.state is AttemptState.IN_FLIGHT
        if (doubt or recheck) and lookup is not None:
            try:
                found = await lookup(entry)
            except CannotCheck as exc:
                return DeliveryResult.failed(
                    "an earlier attempt may have reached the platform and it cannot be "
                    f"checked now ({exc.reason}); not sending again blind",
                    permanent=exc.permanent,
                    retry_after=exc.retry_after,
                    uncertain=True,
                )
            if isinstance(found, DeliveryResult):
                await _record_quietly(
                    ledger, key, LedgerEntry(AttemptState.DELIVERED, remote_id=found.remote_id)
                )
                return found
            if found is Check.ABSENT:
                doubt = False  # asked: the earlier attempt left nothing behind
        started = entry.started_at if doubt and entry is not None else None
        started = started or now()
        try:
            await ledger.record(key, LedgerEntry(AttemptState.IN_FLIGHT, started_at=started))
        except OSError as exc:
            return DeliveryResult.failed(f"cannot record the attempt before sending: {exc}")
        result = await send(doubt)
        if result.ok:
            outcome = LedgerEntry(AttemptState.DELIVERED, remote_id=result.remote_id)
        elif result.uncertain or doubt:
            outcome = LedgerEntry(AttemptState.IN_FLIGHT, started_at=started, reason=result.reason)
        else:
            outcome = LedgerEntry(AttemptState.FAILED, reason=result.reason)
        try:
            await ledger.record(key, outcome)
        except OSError as exc:
            # The entry stays in flight, so the next attempt checks before it sends.
            log.warning("ledger %s: cannot record %s: %s", ledger.path, key, exc)
            if result.ok:
                note = f"the ledger could not be written ({exc})"
                return replace(result, reason=f"{result.reason}; {note}" if result.reason else note)
        return result


async def _record_quietly(ledger: Ledger, key: str, entry: LedgerEntry) -> None:
    """Record a delivery found on the platform; if that fails, the next attempt looks again."""
    try:
        await ledger.record(key, entry)
    except OSError as exc:
        log.warning("ledger %s: cannot record %s: %s", ledger.path, key, exc)
