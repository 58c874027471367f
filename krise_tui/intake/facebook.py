"""The Facebook page webhook: comments on the page's posts and Messenger messages.

Meta calls the bridge's intake server (``listen`` + ``path``) as its Webhooks
documentation describes:

- ``GET`` with ``hub.mode=subscribe``, ``hub.verify_token`` and ``hub.challenge`` when
  the subscription is set up: the intake answers the challenge (as plain text) when the
  token is the configured ``verify_token``, and 403 otherwise;
- ``POST`` with a JSON body ``{"object": "page", "entry": [...]}`` and
  ``X-Hub-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the raw body under the
  app secret. Each entry's ``changes`` with ``field: feed`` and ``item: comment`` (or a
  visitor's ``item: post``) and ``verb: add`` become a post of kind ``comment`` (``post``)
  with ``meta.comment_id``, ``post_id``, ``parent_id``, ``from_id``: what a reply in the
  thread and a hide need; each entry's ``messaging`` with a ``message`` becomes a post
  of kind ``message`` with ``meta.psid`` (the sender's page-scoped id, for the Send API)
  and ``mid``.

The page's own comments (``from.id`` is the page, e.g. our replies) and Messenger echoes
of our own messages are skipped: the municipality does not ask itself questions.

Meta signs the body alone (no timestamp) and retries a delivery it did not get a 200
for, with the same body, for up to 36 hours. Replays are therefore refused by post id
(:class:`~krise_tui.intake.guard.SeenMemory`, on disk): a body whose posts were all
published before is answered 200 and publishes nothing. A sender over their rate limit
makes the answer 429 after the others' posts are published: Meta's retry brings only
the held-back ones in. A 503 (the bus is away) makes Meta retry the whole body; what
was published already is skipped by id.
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from krise_tui.intake.guard import (
    SIGNATURE_PREFIX,
    SeenMemory,
    TokenBuckets,
    hmac_hex,
    signature_matches,
)
from krise_tui.intake.service import InboundSink, Outcomes, refusal, remote_address, serve
from krise_tui.wire.inbound import InboundPost
from krise_tui.wire.safejson import UnsafeJson, loads_object

SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_TEXT = 20_000


class FacebookIntake:
    """An HTTP server for the page webhook (see the module docstring)."""

    def __init__(
        self,
        channel_id: str,
        *,
        host: str,
        port: int,
        path: str,
        app_secret: bytes,
        verify_token: str,
        memory: SeenMemory,
        max_body: int = 262_144,
        id_memory: float = 2 * 86_400.0,
        sender_limits: TokenBuckets | None = None,
        address_limits: TokenBuckets | None = None,
        publish_timeout: float = 5.0,
    ) -> None:
        self.channel_id = channel_id
        self.host = host
        self.port = port
        self.path = path
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.memory = memory
        self.max_body = max_body
        self.id_memory = id_memory
        self.sender_limits = sender_limits or TokenBuckets(6, 5)
        self.address_limits = address_limits or TokenBuckets(600, 100)
        self.publish_timeout = publish_timeout
        self.outcomes = Outcomes(channel_id)
        self.trouble = self.outcomes.trouble
        """What is wrong now, for the console: refusals that look like a setup fault."""
        self.bound_port: int | None = None
        self.listening = asyncio.Event()
        self._sink: InboundSink | None = None
        memory.load()

    @property
    def name(self) -> str:
        """For logs."""
        return f"facebook webhook {self.host}:{self.port}{self.path}"

    @property
    def url(self) -> str:
        """The callback URL (once listening)."""
        return f"http://{self.host}:{self.bound_port or self.port}{self.path}"

    async def run(self, sink: InboundSink) -> None:
        """Serve until cancelled."""
        self._sink = sink
        app = web.Application(client_max_size=self.max_body)
        app.router.add_get(self.path, self.verify)
        app.router.add_post(self.path, self.handle)
        self.listening.clear()
        try:
            await serve(app, self.host, self.port, on_listening=self._listening)
        finally:
            self.listening.clear()

    def _listening(self, port: int) -> None:
        self.bound_port = port
        self.listening.set()

    async def verify(self, request: web.Request) -> web.Response:
        """Meta's subscription check: echo ``hub.challenge`` for the right token."""
        query = request.query
        token = query.get("hub.verify_token", "")
        challenge = query.get("hub.challenge", "")
        right = hmac.compare_digest(token.encode("utf-8"), self.verify_token.encode("utf-8"))
        if query.get("hub.mode") != "subscribe" or not right or not challenge:
            self.outcomes.count("bad_verification", remote_address(request))
            return web.Response(status=403, text="verification refused")
        self.outcomes.count("verified")
        return web.Response(text=challenge[:200], content_type="text/plain")

    async def handle(self, request: web.Request) -> web.Response:
        """One POST of page events: check, publish each new post, answer."""
        address = remote_address(request)
        wait = self.address_limits.take(address)
        if wait is not None:
            self.outcomes.count("rate_limited_address", address)
            return refusal(429, "too many requests", retry_after=wait)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.outcomes.count("too_large", address)
            raise
        expected = SIGNATURE_PREFIX + hmac_hex(self.app_secret, body)
        if not signature_matches(expected, request.headers.get(SIGNATURE_HEADER)):
            self.outcomes.count("bad_signature", address)
            return refusal(401, "the signature does not match")
        try:
            data = loads_object(body, max_bytes=self.max_body)
        except UnsafeJson as exc:
            self.outcomes.count("malformed", address)
            return refusal(400, str(exc))
        if data.get("object") != "page":
            self.outcomes.count("malformed", address, f"object {data.get('object')!r}")
            return refusal(400, "not a page event")
        held: float | None = None
        assert self._sink is not None
        for sender, post in page_posts(data):
            key = f"id:{post.id}"
            if not self.memory.reserve(key):
                self.outcomes.count("duplicate")
                continue
            try:
                wait = self.sender_limits.take(sender)
                if wait is not None:
                    # Held back, not dropped: the 429 makes Meta send the body again.
                    self.outcomes.count("rate_limited_sender", sender)
                    held = wait if held is None else min(held, wait)
                    continue
                try:
                    await asyncio.wait_for(self._sink(post), self.publish_timeout)
                except Exception as exc:
                    self.outcomes.count("unavailable", address, f"{type(exc).__name__}: {exc}")
                    return refusal(503, "the posts cannot be taken right now", retry_after=5)
                await self.memory.remember([(key, self.id_memory)])
                self.outcomes.count("accepted")
            finally:
                self.memory.release(key)
        if held is not None:
            return refusal(429, "too many posts from one sender", retry_after=held)
        return web.Response(text="EVENT_RECEIVED", content_type="text/plain")


def page_posts(data: dict[str, Any]) -> list[tuple[str, InboundPost]]:
    """Every new post from the public in one page event body, with its sender's id.

    Anything else (edits, removals, reactions, the page's own comments, echoes, read
    receipts) is skipped; so is a malformed item (the rest of the body still counts).
    """
    out: list[tuple[str, InboundPost]] = []
    entries = data.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        page = str(entry.get("id", ""))
        changes = entry.get("changes")
        for change in changes if isinstance(changes, list) else []:
            found = _feed_post(change, page)
            if found is not None:
                out.append(found)
        messaging = entry.get("messaging")
        for event in messaging if isinstance(messaging, list) else []:
            found = _message(event, page)
            if found is not None:
                out.append(found)
    return out


def _feed_post(change: object, page: str) -> tuple[str, InboundPost] | None:
    if not isinstance(change, dict) or change.get("field") != "feed":
        return None
    value = change.get("value")
    if not isinstance(value, dict) or value.get("verb") != "add":
        return None
    item = value.get("item")
    sender = value.get("from")
    sender_id = str(sender.get("id", "")) if isinstance(sender, dict) else ""
    if not sender_id or sender_id == page:
        return None  # the page's own comment (our reply) or an anonymous one
    name = sender.get("name") if isinstance(sender, dict) else None
    text = value.get("message")
    when = _unix(value.get("created_time"))
    if item == "comment":
        comment_id = value.get("comment_id")
        if not isinstance(comment_id, str) or not comment_id:
            return None
        post_id = str(value.get("post_id") or "")
        parent_id = str(value.get("parent_id") or post_id)
        meta = {"comment_id": comment_id, "post_id": post_id, "parent_id": parent_id}
        return sender_id, InboundPost(
            id=comment_id[:200],
            text=str(text or "")[:MAX_TEXT],
            author=str(name)[:500] if name else None,
            received_at=when,
            reply_to=parent_id[:200] or None,
            kind="comment",
            meta={**meta, "from_id": sender_id},
        )
    if item in ("post", "status"):
        visitor_post = value.get("post_id")
        if not isinstance(visitor_post, str) or not visitor_post:
            return None
        return sender_id, InboundPost(
            id=visitor_post[:200],
            text=str(text or "")[:MAX_TEXT],
            author=str(name)[:500] if name else None,
            received_at=when,
            kind="post",
            # A visitor's post is answered and hidden like a comment: by its own id.
            meta={"post_id": visitor_post, "comment_id": visitor_post, "from_id": sender_id},
        )
    return None


def _message(event: object, page: str) -> tuple[str, InboundPost] | None:
    if not isinstance(event, dict):
        return None
    message = event.get("message")
    sender = event.get("sender")
    psid = str(sender.get("id", "")) if isinstance(sender, dict) else ""
    if not isinstance(message, dict) or message.get("is_echo") or not psid or psid == page:
        return None
    mid = message.get("mid")
    if not isinstance(mid, str) or not mid:
        return None
    text = message.get("text")
    attachments = message.get("attachments")
    count = len(attachments) if isinstance(attachments, list) else 0
    if not isinstance(text, str) and not count:
        return None
    meta: dict[str, Any] = {"psid": psid, "mid": mid}
    if count:
        meta["attachments"] = count
    return psid, InboundPost(
        id=mid[:200],
        text=(text if isinstance(text, str) else "")[:MAX_TEXT],
        received_at=_unix(event.get("timestamp"), millis=True),
        kind="message",
        meta=meta,
    )


def _unix(value: object, *, millis: bool = False) -> datetime:
    """A Graph/Messenger time (seconds, or milliseconds), or now when it is not one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if millis else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return datetime.now(UTC)
