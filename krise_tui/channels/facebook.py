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

Replies and hides (DOMAIN §12, :meth:`FacebookChannel.reply`, :meth:`~FacebookChannel.hide`):

- a comment is answered in its thread, ``POST {graph_url}/{comment_id}/comments`` with
  ``message``; a doubtful attempt is looked up with ``GET
  {graph_url}/{comment_id}/comments`` by the reply's marker line
  (:func:`~krise_tui.channels.base.reply_marker`);
- a Messenger message is answered with the Send API, ``POST
  {graph_url}/{page_id}/messages`` with the sender's page-scoped id (PSID) and
  ``messaging_type: RESPONSE`` (Meta allows that within 24 hours of their message; later
  the Graph API refuses, and the refusal is the receipt); a doubtful attempt is looked up
  in the conversation, ``GET {graph_url}/{page_id}/conversations?platform=messenger
  &user_id={psid}``, by the marker;
- a comment is hidden with ``POST {graph_url}/{comment_id}`` and ``is_hidden=true``:
  hidden from everyone but its author and their friends, never deleted (the post stays
  for the archive and for the author). Hiding twice is harmless, so a retry repeats it.

Replies need ``pages_manage_engagement`` (comments) and ``pages_messaging`` (Messenger),
hides ``pages_manage_engagement``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
    HideRequest,
    HttpChannel,
    Ledger,
    LedgerEntry,
    MessageStatus,
    ReplyRequest,
    SecretSetting,
    cannot_check,
    deliver_once,
    failure_from_response,
    has_marker,
    has_token,
    refuse_exercise,
    register,
    render_text,
    reply_marker,
    reply_text,
    reply_token,
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

COMMENT_MAX_CHARS = 8000
"""The longest comment the Graph API takes."""
MESSENGER_MAX_CHARS = 2000
"""The longest Messenger text message the Send API takes."""


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
        self._ledger = Ledger(config.state_file)

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

    # ------------------------------------------------------------------ replies

    async def reply(self, request: ReplyRequest, *, recheck: bool = False) -> DeliveryResult:
        """Answer a comment in its thread, or a Messenger message to its sender, once.

        The remote id is the reply comment's id or the Messenger message id.
        """
        refused = refuse_exercise(request, self.name, self.config.exercise_endpoint)
        if refused is not None:
            return refused
        if request.to.kind == "message":
            psid = request.to.meta.get("psid")
            if not isinstance(psid, str) or not psid:
                return DeliveryResult.failed(
                    "the Messenger message has no sender id (meta.psid) to answer",
                    permanent=True,
                )
            return await self._reply_once(
                request,
                recheck,
                send=lambda: self._send_message(request, psid),
                look=lambda: self._find_in_conversation(request, psid),
            )
        target = request.to.meta.get("comment_id") or request.to.post_id
        comment = str(target)
        return await self._reply_once(
            request,
            recheck,
            send=lambda: self._send_comment(request, comment),
            look=lambda: self._find_in_thread(request, comment),
        )

    async def _reply_once(
        self,
        request: ReplyRequest,
        recheck: bool,
        *,
        send: Callable[[], Awaitable[DeliveryResult]],
        look: Callable[[], Awaitable[str | None]],
    ) -> DeliveryResult:
        async def do_send(_: bool) -> DeliveryResult:
            return await send()

        async def lookup(_: LedgerEntry | None) -> DeliveryResult | Check:
            found = await look()
            if found is None:
                return Check.ABSENT
            return DeliveryResult.delivered(
                found,
                reason=(
                    f"already answered (found by marker «{reply_marker(request.idempotency_key)}»"
                    f" with {request.to.post_id}); not sent again"
                ),
                existing=True,
            )

        return await deliver_once(
            self._ledger, request.idempotency_key, send=do_send, lookup=lookup, recheck=recheck
        )

    def render_reply(self, request: ReplyRequest, limit: int) -> str:
        """The reply's text with its marker line, within ``limit`` characters.

        Raises:
            ValueError: the limit cannot hold the link and signature.
        """
        return reply_text(
            request,
            max_chars=min(limit, self.config.max_chars),
            marker=reply_marker(request.idempotency_key),
        )

    async def _send_comment(self, request: ReplyRequest, comment_id: str) -> DeliveryResult:
        try:
            text = self.render_reply(request, COMMENT_MAX_CHARS)
        except ValueError as exc:
            return DeliveryResult.failed(f"cannot render the reply: {exc}", permanent=True)
        answer = await send_http(
            self._client,
            "POST",
            f"{self.config.graph_url}/{comment_id}/comments",
            timeout=self.config.timeout,
            data={"message": text, "access_token": self._token},
        )
        return _created(answer, "id", "comment id")

    async def _send_message(self, request: ReplyRequest, psid: str) -> DeliveryResult:
        try:
            text = self.render_reply(request, MESSENGER_MAX_CHARS)
        except ValueError as exc:
            return DeliveryResult.failed(f"cannot render the reply: {exc}", permanent=True)
        answer = await send_http(
            self._client,
            "POST",
            f"{self.config.graph_url}/{self.config.page_id}/messages",
            timeout=self.config.timeout,
            json={
                "recipient": {"id": psid},
                "messaging_type": "RESPONSE",
                "message": {"text": text},
            },
            headers={"Authorization": f"Bearer {self._token}"},
        )
        return _created(answer, "message_id", "message id")

    async def _find_in_thread(self, request: ReplyRequest, comment_id: str) -> str | None:
        """The id of our reply (by its marker) among the comment's replies, or None.

        Raises:
            CannotCheck: the thread could not be read.
        """
        answer = await send_http(
            self._client,
            "GET",
            f"{self.config.graph_url}/{comment_id}/comments",
            timeout=self.config.timeout,
            params={"fields": "id,message,from", "limit": 100, "order": "reverse_chronological"},
            headers={"Authorization": f"Bearer {self._token}"},
        )
        return self._match(answer, request, "reading the comment's replies")

    async def _find_in_conversation(self, request: ReplyRequest, psid: str) -> str | None:
        """The id of our message (by its marker) in the conversation with ``psid``.

        Raises:
            CannotCheck: the conversation could not be read.
        """
        what = "reading the Messenger conversation"
        answer = await send_http(
            self._client,
            "GET",
            f"{self.config.graph_url}/{self.config.page_id}/conversations",
            timeout=self.config.timeout,
            params={
                "platform": "messenger",
                "user_id": psid,
                "fields": "messages.limit(50){id,message,from}",
            },
            headers={"Authorization": f"Bearer {self._token}"},
        )
        if isinstance(answer, DeliveryResult):
            raise cannot_check(answer, what)
        if not answer.is_success:
            raise cannot_check(_graph_failure(answer), what)
        conversations = response_json(answer).get("data")
        if not isinstance(conversations, list):
            raise CannotCheck(f"{what}: the answer has no data list")
        token = reply_token(request.idempotency_key)
        for conversation in conversations:
            messages = conversation.get("messages") if isinstance(conversation, dict) else None
            items = messages.get("data") if isinstance(messages, dict) else None
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and has_token(item.get("message"), token):
                    found = item.get("id")
                    if found is not None:
                        return str(found)
        return None

    def _match(
        self, answer: httpx.Response | DeliveryResult, request: ReplyRequest, what: str
    ) -> str | None:
        if isinstance(answer, DeliveryResult):
            raise cannot_check(answer, what)
        if not answer.is_success:
            raise cannot_check(_graph_failure(answer), what)
        items = response_json(answer).get("data")
        if not isinstance(items, list):
            raise CannotCheck(f"{what}: the answer has no data list")
        token = reply_token(request.idempotency_key)
        for item in items:
            if isinstance(item, dict) and has_token(item.get("message"), token):
                found = item.get("id")
                if found is not None:
                    return str(found)
        return None

    # ------------------------------------------------------------------ hide

    async def hide(self, request: HideRequest, *, recheck: bool = False) -> DeliveryResult:
        """Hide the comment ``request.post_id`` (``is_hidden=true``; never deleted).

        Hiding is idempotent on Facebook's side, so a doubtful attempt is repeated, not
        looked up; the ledger still answers a hide already done. The remote id is the
        comment's id.
        """
        refused = refuse_exercise(request, self.name, self.config.exercise_endpoint)
        if refused is not None:
            return refused
        key = f"hide:{self.name}:{request.post_id}"

        async def send(_: bool) -> DeliveryResult:
            answer = await send_http(
                self._client,
                "POST",
                f"{self.config.graph_url}/{request.post_id}",
                timeout=self.config.timeout,
                data={"is_hidden": "true", "access_token": self._token},
            )
            if isinstance(answer, DeliveryResult):
                return answer
            if not answer.is_success:
                return _graph_failure(answer)
            if response_json(answer).get("success") is False:
                return DeliveryResult.failed(f"the Graph API did not hide {request.post_id}")
            return DeliveryResult.delivered(request.post_id)

        return await deliver_once(self._ledger, key, send=send, recheck=recheck)


def _created(answer: httpx.Response | DeliveryResult, field: str, what: str) -> DeliveryResult:
    """The result of a creating Graph request whose answer names the new object in ``field``."""
    if isinstance(answer, DeliveryResult):
        return answer
    if not answer.is_success:
        return _graph_failure(answer)
    created = response_json(answer).get(field)
    if created is None:
        # Accepted, but no id to go by: the reply may well exist.
        return DeliveryResult.failed(
            f"{answer.status_code} {answer.reason_phrase} without a {what}", uncertain=True
        )
    return DeliveryResult.delivered(str(created))


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
