"""The generic webhook channel: a JSON POST for SMS gateways, intranets and the like.

The request body comes from a template: a JSON-like mapping whose strings may name
message fields in braces, ``{"to": "varsling", "message": "{sms_text}"}``. The fields
are :data:`~krise_tui.channels.base.TEMPLATE_FIELDS` (``headline``, ``body``, ``text``,
``link``, ``version_id``, ``lang``, ``signature``, ``sms_text``, plus ``status``,
``org_name``, ``published_at``, ``supersedes``); ``{{`` and ``}}`` are literal braces.
A template that names anything else is a config error when the channel is built, not
when a crisis message is on its way.

Header values may reference environment variables as ``{env:NAME}``
(``"Authorization": "Bearer {env:SMS_TOKEN}"``), resolved when the channel is built.

Every request carries ``Idempotency-Key: {version_id}:{channel name}``, the same on every
retry. **The receiving gateway must honour it**: a request with a key it has seen
answers the first request's result instead of sending a second SMS. A gateway cannot be
asked afterwards whether it sent something, so after an attempt whose outcome is unknown
(a crash mid-request, a timeout or reset after sending, a 5xx) the channel sends again
under the same key and relies on the gateway's de-duplication, and says so in the
result. The ledger (``state_file``, written ahead of every attempt, see
:func:`~krise_tui.channels.base.deliver_once`; in memory without one) stops a key that
was delivered from going out again, which also covers a receiver that ignores the key
once it has answered; a receiver that ignores the key and also lost its answer can
still get a message twice.

Replies (:meth:`WebhookChannel.reply`: a batch's approved answer to one asker, an SMS
back to the number that asked) go to ``reply_url`` (default: ``url``) with a body from
``reply_body``, a template over :data:`REPLY_TEMPLATE_FIELDS`: ``{to}`` is the asker's
address from the post's ``meta`` (``reply_to_field``, ``from`` by default: the sender's
number as the intake put it there), ``{text}`` the answer with the link to the full
answer and the signature. They carry the request's own ``Idempotency-Key``
(``{answer}:{channel}:{post}``) and are written ahead in the same ledger, so the same
guarantee holds: never a second SMS from krise, and a repeat under the same key for the
gateway to de-duplicate. A channel without ``reply_body`` cannot reply.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import httpx
from pydantic import Field, field_validator

from krise_tui.channels.base import (
    DEFAULT_TIMEOUT,
    TEMPLATE_FIELDS,
    ApprovedMessage,
    ChannelConfig,
    ChannelConfigError,
    DeliveryResult,
    HttpChannel,
    Ledger,
    ReplyRequest,
    SecretError,
    deliver_once,
    failure_from_response,
    refuse_exercise,
    register,
    reply_text,
    resolve_secret,
    response_json,
    send_http,
    text_fields,
)

_ENV_REF = re.compile(r"\{env:([A-Za-z_][A-Za-z0-9_]*)\}")

REPLY_TEMPLATE_FIELDS = frozenset(
    ["to", "text", "body", "post_id", "author", "kind", "lang", "link", "signature"]
)
"""The names a reply body template may reference: ``{to}`` (the asker's address),
``{text}`` (the answer, link and signature), ``{body}`` (the answer alone), ``{post_id}``,
``{author}``, ``{kind}``, ``{lang}``, ``{link}``, ``{signature}``."""

JsonTemplate = dict[str, Any]


class WebhookConfig(ChannelConfig):
    """Configuration of a webhook channel."""

    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    """Where to send the request."""
    method: Literal["POST", "PUT"] = "POST"
    """HTTP method."""
    body: JsonTemplate = Field(default_factory=lambda: {"text": "{text}", "id": "{version_id}"})
    """The JSON body template (strings may contain ``{field}`` placeholders)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra headers; values may contain ``{env:NAME}``."""
    lang: str = "nb"
    """Which language variant fills the fields (``nb`` when the message lacks it)."""
    max_chars: Annotated[int, Field(gt=0)] | None = None
    """Optional limit for ``{text}`` (the body is shortened, never the link)."""
    timeout: Annotated[float, Field(gt=0)] = DEFAULT_TIMEOUT
    """Seconds to wait for the receiver."""
    remote_id_field: str | None = "id"
    """Top-level field of a JSON answer that holds the receiver's id for the message."""
    state_file: Path | None = None
    """The write-ahead ledger of attempts (JSON); without it, it lives in memory."""
    reply_body: JsonTemplate | None = None
    """The JSON body template of a reply (``{to}``, ``{text}``… see
    :data:`REPLY_TEMPLATE_FIELDS`); without it the channel cannot reply."""
    reply_url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    """Where replies go (default: ``url``)."""
    reply_to_field: Annotated[str, Field(min_length=1, max_length=64)] = "from"
    """The key in the post's ``meta`` that holds the asker's address (number, e-mail)."""

    @field_validator("headers")
    @classmethod
    def _no_reserved_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in ("idempotency-key", "content-type", "content-length"):
                raise ValueError(f"header {name} is set by krise itself")
        return value


def template_fields(template: object) -> set[str]:
    """Every ``{field}`` name used anywhere in ``template`` (strings in dicts/lists).

    Raises:
        ValueError: a placeholder is malformed or uses conversions, format specs or
            attribute/index access (``{body!r}``, ``{body:10}``, ``{body.upper}``).
    """
    names: set[str] = set()
    if isinstance(template, str):
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ValueError(f"bad placeholder in {template!r}: {exc}") from None
        for _, field, spec, conversion in parsed:
            if field is None:
                continue
            if spec or conversion:
                raise ValueError(f"placeholder {{{field}}} in {template!r}: use plain {{name}}")
            names.add(field)
    elif isinstance(template, Mapping):
        for value in template.values():
            names |= template_fields(value)
    elif isinstance(template, list | tuple):
        for value in template:
            names |= template_fields(value)
    return names


def fill_template(template: object, fields: Mapping[str, str]) -> object:
    """``template`` with every string formatted from ``fields`` (other values as they are)."""
    if isinstance(template, str):
        return template.format_map(_SafeFields(fields))
    if isinstance(template, Mapping):
        return {key: fill_template(value, fields) for key, value in template.items()}
    if isinstance(template, list | tuple):
        return [fill_template(value, fields) for value in template]
    return template


class _SafeFields(dict[str, str]):
    """A format mapping that names the unknown field instead of a bare KeyError."""

    def __missing__(self, key: str) -> str:
        raise ChannelConfigError(f"unknown template field {{{key}}}")


def _check_fields(name: str, what: str, template: object, known: frozenset[str]) -> None:
    """Raise :class:`ChannelConfigError` when ``template`` names a field not in ``known``."""
    try:
        unknown = template_fields(template) - known
    except ValueError as exc:
        raise ChannelConfigError(f"channel {name!r}: {what}: {exc}") from None
    if unknown:
        names = ", ".join(f"{{{field}}}" for field in sorted(known))
        bad = ", ".join(f"{{{field}}}" for field in sorted(unknown))
        raise ChannelConfigError(
            f"channel {name!r}: {what}: unknown template field(s) {bad} (known: {names})"
        )


def resolve_env_refs(value: str) -> str:
    """Replace every ``{env:NAME}`` in ``value`` with the variable's value.

    Raises:
        SecretError: a named variable is unset or empty.
    """
    return _ENV_REF.sub(lambda match: resolve_secret({"env": match.group(1)}), value)


@register("webhook")
class WebhookChannel(HttpChannel[WebhookConfig]):
    """POSTs a JSON body built from a template, with ``Idempotency-Key``."""

    kind: ClassVar[str] = "webhook"
    config_model = WebhookConfig

    def __init__(
        self, name: str, config: WebhookConfig, *, client: httpx.AsyncClient | None = None
    ) -> None:
        super().__init__(name, config, client=client)
        _check_fields(name, "body", config.body, TEMPLATE_FIELDS)
        if config.reply_body is not None:
            _check_fields(name, "reply_body", config.reply_body, REPLY_TEMPLATE_FIELDS)
        try:
            self._headers = {key: resolve_env_refs(value) for key, value in config.headers.items()}
        except SecretError as exc:
            raise SecretError(f"channel {name!r}: headers: {exc}") from None
        self._ledger = Ledger(config.state_file)

    def render_body(self, message: ApprovedMessage) -> object:
        """The JSON body this channel sends for ``message``."""
        fields = text_fields(message, self.config.lang, max_chars=self.config.max_chars)
        return fill_template(self.config.body, fields)

    async def deliver(
        self,
        message: ApprovedMessage,
        *,
        idempotency_key: str,
        previous_remote_id: str | None = None,
        recheck: bool = False,
    ) -> DeliveryResult:
        """Send the rendered body; the receiver's ``id`` (if any) is the remote id.

        ``previous_remote_id`` is unused: a webhook receives every version as it comes
        (``{status}`` and ``{supersedes}`` tell the receiver what it replaces).
        ``recheck`` changes nothing: a gateway cannot be asked, the key protects it.
        """

        async def send(repeat: bool) -> DeliveryResult:
            result = await self._send(message, idempotency_key)
            if result.ok and repeat:
                note = (
                    f"sent again with the same Idempotency-Key {idempotency_key} after an "
                    "attempt with an unknown outcome; the gateway de-duplicates on it"
                )
                return DeliveryResult.delivered(result.remote_id, reason=note)
            return result

        return await deliver_once(self._ledger, idempotency_key, send=send, recheck=recheck)

    async def _send(self, message: ApprovedMessage, idempotency_key: str) -> DeliveryResult:
        try:
            body = self.render_body(message)
        except ValueError as exc:
            return DeliveryResult.failed(f"cannot render the message: {exc}", permanent=True)
        return await self._post(self.config.url, body, idempotency_key)

    # ------------------------------------------------------------------ replies

    def render_reply(self, request: ReplyRequest) -> object:
        """The JSON body of the reply to ``request.to``.

        Raises:
            ValueError: the channel has no ``reply_body``, or the post has no address.
        """
        if self.config.reply_body is None:
            raise ValueError(f"channel {self.name!r} has no reply_body: it cannot reply")
        to = request.to.meta.get(self.config.reply_to_field)
        if not isinstance(to, str) or not to.strip():
            raise ValueError(
                f"the post has no address to answer (meta.{self.config.reply_to_field})"
            )
        fields = {
            "to": to.strip(),
            "text": reply_text(request, max_chars=self.config.max_chars),
            "body": request.text,
            "post_id": request.to.post_id,
            "author": request.to.author or "",
            "kind": request.to.kind,
            "lang": request.lang,
            "link": request.website_url,
            "signature": request.signature,
        }
        return fill_template(self.config.reply_body, fields)

    async def reply(self, request: ReplyRequest, *, recheck: bool = False) -> DeliveryResult:
        """Send the answer to the asker's address, once per key (the gateway's id is the
        remote id). ``recheck`` changes nothing: a gateway cannot be asked."""
        refused = refuse_exercise(request, self.name, self.config.exercise_endpoint)
        if refused is not None:
            return refused
        key = request.idempotency_key

        async def send(repeat: bool) -> DeliveryResult:
            try:
                body = self.render_reply(request)
            except ValueError as exc:
                return DeliveryResult.failed(f"cannot render the reply: {exc}", permanent=True)
            result = await self._post(self.config.reply_url or self.config.url, body, key)
            if result.ok and repeat:
                note = (
                    f"sent again with the same Idempotency-Key {key} after an attempt with "
                    "an unknown outcome; the gateway de-duplicates on it"
                )
                return DeliveryResult.delivered(result.remote_id, reason=note)
            return result

        return await deliver_once(self._ledger, key, send=send, recheck=recheck)

    async def _post(self, url: str, body: object, idempotency_key: str) -> DeliveryResult:
        headers = {**self._headers, "Idempotency-Key": idempotency_key}
        answer = await send_http(
            self._client,
            self.config.method,
            url,
            timeout=self.config.timeout,
            json=body,
            headers=headers,
        )
        if isinstance(answer, DeliveryResult):
            return answer
        if not answer.is_success:
            return failure_from_response(answer)
        remote_id = None
        if self.config.remote_id_field:
            value = response_json(answer).get(self.config.remote_id_field)
            if value is not None:
                remote_id = str(value)
        return DeliveryResult.delivered(remote_id)
