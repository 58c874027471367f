"""The Facebook channel: one post per version on the municipality's page (Graph API).

Uses the documented Graph API subset:

- ``POST {graph_url}/{page_id}/feed`` with ``message``, ``link`` and ``access_token``
  (a page access token) creates a post and answers ``{"id": "<page>_<post>"}``;
- ``POST {graph_url}/{post_id}`` with ``message`` edits a post: an updated or retracted
  version replaces the earlier post's text when its id is known (``previous_remote_id``),
  otherwise it is posted as a new post;
- ``GET {graph_url}/{page_id}/posts?fields=id,message,created_time`` (newest first,
  ``after`` cursors) to find a post again.

The Graph API has no idempotency key, so nothing on Facebook's side stops a second post.
The channel keeps a write-ahead ledger (``state_file``, see
:func:`~krise_tui.channels.base.deliver_once`): an attempt is recorded before the
request and its outcome after it. Every post carries the version's marker line
(``ref. v3f2a9c1b0d4e``, :func:`~krise_tui.channels.base.version_marker`). When an
attempt may have reached Facebook — the bridge died before it wrote the answer down,
the answer timed out or the connection broke, Graph said 5xx — or the operator
re-sends, the channel first reads the page's newest posts (at most ``lookup_pages``
pages, and no further back than an hour before the version was approved) and answers
with the post that carries the marker instead of posting again.

Limits: a post older than the pages read, or one an editor removed the marker from, is
not found (then it is posted again); edits are not looked up (repeating an edit sets the
same text again). The token goes in the form body or an ``Authorization`` header, never
in the URL (URLs end up in logs); reading the page's posts needs
``pages_read_engagement`` besides ``pages_manage_posts``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, ClassVar

import httpx
from pydantic import Field

from krise_tui.channels.base import (
    DEFAULT_TIMEOUT,
    ApprovedMessage,
    BaseUrl,
    CannotCheck,
    ChannelConfig,
    Check,
    DeliveryResult,
    HttpChannel,
    JsonLedger,
    LedgerEntry,
    MessageStatus,
    SecretSetting,
    cannot_check,
    deliver_once,
    failure_from_response,
    has_marker,
    register,
    render_text,
    resolve_secret,
    response_json,
    send_http,
    version_marker,
)

GRAPH_URL = "https://graph.facebook.com/v19.0"
"""The default Graph API base URL (pin a version; override it when Meta retires it)."""

TRANSIENT_GRAPH_CODES = frozenset({1, 2, 4, 17, 32, 341, 613})
"""Graph API error codes that mean "try again later" (unknown/service errors and rate
limits), although the Graph API answers them with HTTP 400."""

CLOCK_SKEW = timedelta(hours=1)
"""How far before a version's approval time its post may look (clocks differ): the
look-up stops at posts older than that."""


class FacebookConfig(ChannelConfig):
    """Configuration of a Facebook page channel."""

    page_id: Annotated[str, Field(pattern=r"^[0-9A-Za-z_.-]+$")]
    """The page's id."""
    access_token: SecretSetting
    """A page access token (``pages_manage_posts``, and ``pages_read_engagement`` to find
    a post again), as a secret reference."""
    state_file: Path
    """The write-ahead ledger of attempts (JSON); keep it with the console's data."""
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
    lookup_pages: Annotated[int, Field(ge=1, le=50)] = 4
    """Pages of the page's posts read, newest first, to find a post again."""
    lookup_page_size: Annotated[int, Field(ge=1, le=100)] = 25
    """Posts per page read."""


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

    def render(self, message: ApprovedMessage) -> str:
        """The post's text for ``message``, with its marker line.

        Raises:
            ValueError: ``max_chars`` cannot hold the link and signature.
        """
        variant = message.variant_for(self.config.lang)
        return render_text(
            message,
            variant.lang,
            max_chars=self.config.max_chars,
            marker=version_marker(message),
        )

    async def deliver(
        self,
        message: ApprovedMessage,
        *,
        idempotency_key: str,
        previous_remote_id: str | None = None,
        recheck: bool = False,
    ) -> DeliveryResult:
        """Post or edit once per key: from the ledger, found on the page, or posted now."""
        edit = message.status is not MessageStatus.PUBLISHED and bool(previous_remote_id)

        async def send(_: bool) -> DeliveryResult:
            return await self._send(message, previous_remote_id if edit else None)

        async def lookup(_: LedgerEntry | None) -> DeliveryResult | Check:
            return await self.find(message)

        return await deliver_once(
            self._ledger,
            idempotency_key,
            send=send,
            lookup=None if edit else lookup,
            recheck=recheck,
        )

    async def find(self, message: ApprovedMessage) -> DeliveryResult | Check:
        """Look for ``message``'s post on the page by its marker (newest posts first).

        Raises:
            CannotCheck: the Graph API could not be read (the reason says why).
        """
        oldest = message.published_at - CLOCK_SKEW
        url = f"{self.config.graph_url}/{self.config.page_id}/posts"
        after: str | None = None
        for _ in range(self.config.lookup_pages):
            params = {"fields": "id,message,created_time", "limit": self.config.lookup_page_size}
            if after is not None:
                params["after"] = after
            answer = await send_http(
                self._client,
                "GET",
                url,
                timeout=self.config.timeout,
                params=params,
                headers={"Authorization": f"Bearer {self._token}"},
            )
            if isinstance(answer, DeliveryResult):
                raise cannot_check(answer, "reading the page's posts")
            if not answer.is_success:
                raise cannot_check(_graph_failure(answer), "reading the page's posts")
            data = response_json(answer)
            posts = data.get("data")
            if not isinstance(posts, list):
                raise CannotCheck("reading the page's posts: the answer has no data list")
            reached_older = False
            for post in posts:
                if not isinstance(post, dict):
                    continue
                if has_marker(post.get("message"), message) and post.get("id") is not None:
                    return DeliveryResult.delivered(
                        str(post["id"]),
                        reason=(
                            "already on the platform (found by marker "
                            f"«{version_marker(message)}» on the page); not posted again"
                        ),
                        existing=True,
                    )
                created = _graph_time(post.get("created_time"))
                reached_older = reached_older or (created is not None and created < oldest)
            paging = data.get("paging")
            cursors = paging.get("cursors") if isinstance(paging, dict) else None
            after_value = cursors.get("after") if isinstance(cursors, dict) else None
            more = isinstance(paging, dict) and bool(paging.get("next"))
            if reached_older or not posts or not more or not isinstance(after_value, str):
                break
            after = after_value
        return Check.ABSENT

    async def _send(self, message: ApprovedMessage, edit_id: str | None) -> DeliveryResult:
        try:
            text = self.render(message)
        except ValueError as exc:
            return DeliveryResult.failed(f"cannot render the post: {exc}", permanent=True)
        form = {"message": text, "access_token": self._token}
        if edit_id is not None:
            url = f"{self.config.graph_url}/{edit_id}"
        else:
            url = f"{self.config.graph_url}/{self.config.page_id}/feed"
            if self.config.attach_link:
                form["link"] = message.website_url
        answer = await send_http(self._client, "POST", url, timeout=self.config.timeout, data=form)
        if isinstance(answer, DeliveryResult):
            return answer
        if not answer.is_success:
            return _graph_failure(answer)
        data = response_json(answer)
        if edit_id is not None:
            if data.get("success") is False:
                return DeliveryResult.failed(f"the Graph API did not edit post {edit_id}")
            return DeliveryResult.delivered(edit_id)
        post_id = data.get("id")
        if post_id is None:
            # Accepted, but no id to go by: the post may well exist.
            return DeliveryResult.failed(
                f"{answer.status_code} {answer.reason_phrase} without a post id", uncertain=True
            )
        return DeliveryResult.delivered(str(post_id))


def _graph_time(value: object) -> datetime | None:
    """A Graph API time (``2026-11-27T13:05:02+0000``), or None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


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
