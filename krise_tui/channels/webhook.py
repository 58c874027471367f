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
    JsonLedger,
    SecretError,
    deliver_once,
    failure_from_response,
    register,
    resolve_secret,
    response_json,
    send_http,
    text_fields,
)

_ENV_REF = re.compile(r"\{env:([A-Za-z_][A-Za-z0-9_]*)\}")

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
        try:
            unknown = template_fields(config.body) - TEMPLATE_FIELDS
        except ValueError as exc:
            raise ChannelConfigError(f"channel {name!r}: body: {exc}") from None
        if unknown:
            known = ", ".join(f"{{{field}}}" for field in sorted(TEMPLATE_FIELDS))
            bad = ", ".join(f"{{{field}}}" for field in sorted(unknown))
            raise ChannelConfigError(
                f"channel {name!r}: body: unknown template field(s) {bad} (known: {known})"
            )
        try:
            self._headers = {key: resolve_env_refs(value) for key, value in config.headers.items()}
        except SecretError as exc:
            raise SecretError(f"channel {name!r}: headers: {exc}") from None
        self._ledger = JsonLedger(config.state_file)

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
        headers = {**self._headers, "Idempotency-Key": idempotency_key}
        answer = await send_http(
            self._client,
            self.config.method,
            self.config.url,
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
