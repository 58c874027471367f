"""The Facebook channel: one post per version on the municipality's page (Graph API).

Uses the documented Graph API subset:

- ``POST {graph_url}/{page_id}/feed`` with ``message``, ``link`` and ``access_token``
  (a page access token) creates a post and answers ``{"id": "<page>_<post>"}``;
- ``POST {graph_url}/{post_id}`` with ``message`` edits a post: an updated or retracted
  version replaces the earlier post's text when its id is known (``previous_remote_id``),
  otherwise it is posted as a new post.

The Graph API has no idempotency header, so the channel keeps a ledger (``state_file``,
JSON, idempotency key → post id, written atomically): a key found there is answered
with the stored id instead of posting twice. The token goes in the form body, never in
the URL (URLs end up in logs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

import httpx
from pydantic import Field

from krise_tui.channels.base import (
    DEFAULT_TIMEOUT,
    ApprovedMessage,
    BaseUrl,
    ChannelConfig,
    ChannelConfigError,
    DeliveryResult,
    HttpChannel,
    JsonLedger,
    MessageStatus,
    SecretRef,
    failure_from_response,
    register,
    render_text,
    resolve_secret,
    response_json,
    send_http,
)

GRAPH_URL = "https://graph.facebook.com/v19.0"
"""The default Graph API base URL (pin a version; override it when Meta retires it)."""

TRANSIENT_GRAPH_CODES = frozenset({1, 2, 4, 17, 32, 341, 613})
"""Graph API error codes that mean "try again later" (unknown/service errors and rate
limits), although the Graph API answers them with HTTP 400."""


class FacebookConfig(ChannelConfig):
    """Configuration of a Facebook page channel."""

    page_id: Annotated[str, Field(pattern=r"^[0-9A-Za-z_.-]+$")]
    """The page's id."""
    access_token: SecretRef
    """A page access token (``pages_manage_posts``), as a secret reference."""
    state_file: Path
    """The ledger of delivered keys (JSON); keep it with the console's data."""
    graph_url: BaseUrl = GRAPH_URL
    """Graph API base URL including the version."""
    lang: str = "nb"
    """Which language variant to post (``nb`` when the message lacks it)."""
    max_chars: Annotated[int, Field(ge=50)] = 63206
    """Post length limit."""
    attach_link: bool = True
    """Send ``link`` (the website) so the post shows a link preview."""
    timeout: Annotated[float, Field(gt=0)] = DEFAULT_TIMEOUT
    """Seconds to wait for the Graph API."""


@register("facebook")
class FacebookChannel(HttpChannel[FacebookConfig]):
    """Posts (or edits) one page post per version, once per idempotency key."""

    kind: ClassVar[str] = "facebook"
    config_model = FacebookConfig

    def __init__(
        self, name: str, config: FacebookConfig, *, client: httpx.AsyncClient | None = None
    ) -> None:
        super().__init__(name, config, client=client)
        self._token = resolve_secret(config.access_token)
        self._ledger = JsonLedger(config.state_file)

    async def deliver(
        self,
        message: ApprovedMessage,
        *,
        idempotency_key: str,
        previous_remote_id: str | None = None,
    ) -> DeliveryResult:
        """Post or edit, unless the ledger says this key was already delivered."""
        async with self._ledger.lock:
            try:
                known = await self._ledger.get(idempotency_key)
            except (OSError, ChannelConfigError) as exc:
                return DeliveryResult.failed(f"cannot read the ledger: {exc}")
            if known is not None:
                return DeliveryResult.delivered(known)
            result = await self._send(message, previous_remote_id)
            if result.ok and result.remote_id is not None:
                try:
                    await self._ledger.put(idempotency_key, result.remote_id)
                except OSError as exc:
                    return DeliveryResult.failed(f"posted, but cannot write the ledger: {exc}")
            return result

    async def _send(
        self, message: ApprovedMessage, previous_remote_id: str | None
    ) -> DeliveryResult:
        variant = message.variant_for(self.config.lang)
        try:
            text = render_text(message, variant.lang, max_chars=self.config.max_chars)
        except ValueError as exc:
            return DeliveryResult.failed(f"cannot render the post: {exc}", permanent=True)
        form = {"message": text, "access_token": self._token}
        if message.status is not MessageStatus.PUBLISHED and previous_remote_id:
            url = f"{self.config.graph_url}/{previous_remote_id}"
            remote_id: str | None = previous_remote_id
        else:
            url = f"{self.config.graph_url}/{self.config.page_id}/feed"
            remote_id = None
            if self.config.attach_link:
                form["link"] = message.website_url
        answer = await send_http(self._client, "POST", url, timeout=self.config.timeout, data=form)
        if isinstance(answer, DeliveryResult):
            return answer
        if not answer.is_success:
            return _graph_failure(answer)
        data = response_json(answer)
        if remote_id is None:
            post_id = data.get("id")
            if post_id is None:
                return DeliveryResult.failed(
                    f"{answer.status_code} {answer.reason_phrase} without a post id"
                )
            remote_id = str(post_id)
        elif data.get("success") is False:
            return DeliveryResult.failed(f"the Graph API did not edit post {remote_id}")
        return DeliveryResult.delivered(remote_id)


def _graph_failure(response: httpx.Response) -> DeliveryResult:
    """Like :func:`failure_from_response`, but Graph rate limits are not permanent."""
    result = failure_from_response(response)
    error = response_json(response).get("error")
    code = error.get("code") if isinstance(error, dict) else None
    if result.permanent and code in TRANSIENT_GRAPH_CODES:
        return DeliveryResult.failed(
            f"{result.reason} (Graph error {code}: try again later)",
            retry_after=result.retry_after,
        )
    return result
