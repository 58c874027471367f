"""The Mastodon channel: one status per version on the municipality's account.

Uses the documented REST API subset:

- ``POST /api/v1/statuses`` with ``status``, ``visibility`` and ``language``, and the
  ``Idempotency-Key`` header: Mastodon answers a repeated key with the status it already
  created instead of posting twice, so an outbox retry is safe;
- ``PUT /api/v1/statuses/:id`` to edit: an updated or retracted version replaces the
  text of the earlier status when its id (``previous_remote_id``) is known, so readers
  who saw the old text see the correction in place. Without it, the new version is
  posted as a new status (its headline says "Oppdatert:" / "Trukket tilbake:").

The text is :func:`~krise_tui.channels.base.render_text` in the configured language
within ``max_chars`` (500 on a default instance), always ending with the website link
and the signature.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import httpx
from pydantic import Field

from krise_tui.channels.base import (
    DEFAULT_TIMEOUT,
    ApprovedMessage,
    BaseUrl,
    ChannelConfig,
    DeliveryResult,
    HttpChannel,
    MessageStatus,
    SecretRef,
    failure_from_response,
    register,
    render_text,
    resolve_secret,
    response_json,
    send_http,
)


class MastodonConfig(ChannelConfig):
    """Configuration of a Mastodon channel."""

    base_url: BaseUrl
    """The instance, e.g. ``https://mastodon.example``."""
    access_token: SecretRef
    """The account's access token (scope ``write:statuses``), as a secret reference."""
    visibility: Literal["public", "unlisted", "private", "direct"] = "public"
    """Status visibility."""
    lang: str = "nb"
    """Which language variant to post (``nb`` when the message lacks it)."""
    max_chars: Annotated[int, Field(ge=50)] = 500
    """The instance's status length limit."""
    timeout: Annotated[float, Field(gt=0)] = DEFAULT_TIMEOUT
    """Seconds to wait for the instance."""


@register("mastodon")
class MastodonChannel(HttpChannel[MastodonConfig]):
    """Posts (or edits) one status per version."""

    kind: ClassVar[str] = "mastodon"
    config_model = MastodonConfig

    def __init__(
        self, name: str, config: MastodonConfig, *, client: httpx.AsyncClient | None = None
    ) -> None:
        super().__init__(name, config, client=client)
        self._token = resolve_secret(config.access_token)

    def render(self, message: ApprovedMessage) -> tuple[str, str]:
        """The status text and its language for ``message``."""
        variant = message.variant_for(self.config.lang)
        return render_text(message, variant.lang, max_chars=self.config.max_chars), variant.lang

    async def deliver(
        self,
        message: ApprovedMessage,
        *,
        idempotency_key: str,
        previous_remote_id: str | None = None,
    ) -> DeliveryResult:
        """Post the status, or edit the earlier one for an update/retraction.

        The remote id is the status id (the edited status's id for an edit).
        """
        try:
            text, lang = self.render(message)
        except ValueError as exc:
            return DeliveryResult.failed(f"cannot render the status: {exc}", permanent=True)
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Idempotency-Key": idempotency_key,
        }
        fields: dict[str, str] = {"status": text, "language": lang}
        edit = message.status is not MessageStatus.PUBLISHED and previous_remote_id
        if edit:
            method, url = "PUT", f"{self.config.base_url}/api/v1/statuses/{previous_remote_id}"
        else:
            method, url = "POST", f"{self.config.base_url}/api/v1/statuses"
            fields["visibility"] = self.config.visibility
        answer = await send_http(
            self._client, method, url, timeout=self.config.timeout, json=fields, headers=headers
        )
        if isinstance(answer, DeliveryResult):
            return answer
        if not answer.is_success:
            return failure_from_response(answer)
        status_id = response_json(answer).get("id")
        if status_id is None:
            return DeliveryResult.failed(
                f"{answer.status_code} {answer.reason_phrase} without a status id"
            )
        return DeliveryResult.delivered(str(status_id))
