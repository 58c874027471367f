"""The signed webhook intake: an SMS gateway's callback, the website's question form.

The sender POSTs one post as JSON (:class:`WebhookPost`) to the bridge's intake server
(``listen`` + ``path`` in the org file's ``inbound:``), with two headers:

- ``X-Krise-Timestamp``: the time of sending, in whole seconds since the epoch;
- ``X-Krise-Signature``: ``sha256=`` and the lower-case hex HMAC-SHA256, under the
  shared ``secret``, of the timestamp, a full stop and the raw body
  (:func:`~krise_tui.intake.guard.webhook_signature`). Sign every attempt anew.

What the intake answers (never a silent drop: every refusal is answered and counted in
:attr:`WebhookIntake.outcomes`):

=====  ==================================================================================
200    ``{"status": "accepted"}``: the post is on the bus (the broker has acknowledged it)
200    ``{"status": "duplicate"}``: a post with this ``id`` was accepted before: not
       published again (a retry whose first answer was lost)
400    the body is not a post (the reason says why)
401    signature or timestamp missing or wrong, or the timestamp further off than
       ``timestamp_window`` (an old request replayed)
409    this very request (its signature) was accepted before: a replay
413    the body is larger than ``max_body``
429    too many requests from this address or posts from this sender (``Retry-After``)
503    the bus cannot take the post right now (``Retry-After``): send it again later
=====  ==================================================================================

Signatures are remembered for twice the window, post ids for ``id_memory``, both on
disk (:class:`~krise_tui.intake.guard.SeenMemory`), so a restarted bridge still refuses
a replay.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from krise_tui.intake.guard import SeenMemory, TokenBuckets, signature_matches, webhook_signature
from krise_tui.intake.service import InboundSink, Outcomes, refusal, remote_address, serve
from krise_tui.wire.inbound import InboundPost
from krise_tui.wire.safejson import UnsafeJson, loads_object

TIMESTAMP_HEADER = "X-Krise-Timestamp"
SIGNATURE_HEADER = "X-Krise-Signature"

PostKind = Literal["post", "comment", "message", "sms", "email", "form"]


class WebhookPost(BaseModel):
    """The body of a signed webhook request: one post from the public.

    Unknown fields are ignored (a gateway sends its own besides these).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=200)]
    """The sender's own id for the post (a gateway's message id, a form's submission id):
    the de-duplication key."""
    text: Annotated[str, Field(max_length=20_000)]
    """What was written."""
    sender: str | None = Field(default=None, alias="from", min_length=1, max_length=320)
    """The sender's number (SMS) or address: where a reply goes, and the rate limit's key."""
    email: Annotated[str, Field(min_length=3, max_length=320)] | None = None
    """An e-mail address to answer (the question form's optional field)."""
    author: Annotated[str, Field(max_length=500)] | None = None
    """A name the sender gave."""
    received_at: AwareDatetime | None = None
    """When the platform received it (default: when the bridge did)."""
    reply_to: Annotated[str, Field(max_length=200)] | None = None
    """The id of the post this one answers."""
    kind: PostKind | None = None
    """``sms``, ``form``…; default: the channel's (``sms`` for an SMS channel)."""


class WebhookIntake:
    """An HTTP server taking signed posts in (see the module docstring)."""

    def __init__(
        self,
        channel_id: str,
        *,
        host: str,
        port: int,
        path: str,
        secret: bytes,
        memory: SeenMemory,
        default_kind: PostKind,
        max_body: int = 65_536,
        timestamp_window: float = 300.0,
        id_memory: float = 2 * 86_400.0,
        sender_limits: TokenBuckets | None = None,
        address_limits: TokenBuckets | None = None,
        publish_timeout: float = 5.0,
        clock: Any = time.time,
    ) -> None:
        self.channel_id = channel_id
        self.host = host
        self.port = port
        self.path = path
        self.secret = secret
        self.memory = memory
        self.default_kind = default_kind
        self.max_body = max_body
        self.timestamp_window = timestamp_window
        self.id_memory = id_memory
        self.sender_limits = sender_limits or TokenBuckets(6, 5)
        self.address_limits = address_limits or TokenBuckets(600, 100)
        self.publish_timeout = publish_timeout
        self.outcomes = Outcomes(channel_id)
        self.trouble = self.outcomes.trouble
        """What is wrong now, for the console: refusals that look like a setup fault."""
        self.bound_port: int | None = None
        """The port listened on (once listening; also with ``port`` 0)."""
        self.listening = asyncio.Event()
        self._clock = clock
        self._sink: InboundSink | None = None
        memory.load()

    @property
    def name(self) -> str:
        """For logs."""
        return f"webhook {self.host}:{self.port}{self.path}"

    @property
    def url(self) -> str:
        """Where to POST (once listening)."""
        return f"http://{self.host}:{self.bound_port or self.port}{self.path}"

    async def run(self, sink: InboundSink) -> None:
        """Serve until cancelled."""
        self._sink = sink
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post(self.path, self.handle)
        self.listening.clear()
        try:
            await serve(app, self.host, self.port, on_listening=self._listening)
        finally:
            self.listening.clear()

    def _listening(self, port: int) -> None:
        self.bound_port = port
        self.listening.set()

    async def handle(self, request: web.Request) -> web.Response:
        """One POST: check, publish, answer (see the module docstring)."""
        address = remote_address(request)
        wait = self.address_limits.take(address)
        if wait is not None:
            self.outcomes.count("rate_limited_address", address)
            return refusal(429, "too many requests from this address", retry_after=wait)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.outcomes.count("too_large", address)
            raise
        stamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
        given = request.headers.get(SIGNATURE_HEADER)
        if not stamp.isdigit() or len(stamp) > 12 or not given:
            self.outcomes.count("unsigned", address)
            return refusal(401, f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
        expected = webhook_signature(self.secret, stamp, body)
        if not signature_matches(expected, given):
            self.outcomes.count("bad_signature", address)
            return refusal(401, "the signature does not match")
        skew = abs(self._clock() - int(stamp))
        if skew > self.timestamp_window:
            self.outcomes.count("stale", address, f"{skew:.0f} s off")
            return refusal(401, "the timestamp is outside the accepted window: sign anew")
        sig_key = f"sig:{expected}"
        if not self.memory.reserve(sig_key):
            self.outcomes.count("replay", address)
            return refusal(409, "this request was received before (a replay)")
        keys = [sig_key]
        try:
            return await self._accept(body, address, keys)
        finally:
            for key in keys:
                self.memory.release(key)  # no-op for the keys remembered

    async def _accept(self, body: bytes, address: str, keys: list[str]) -> web.Response:
        try:
            data = loads_object(body, max_bytes=self.max_body)
            post = WebhookPost.model_validate(data)
        except (UnsafeJson, ValidationError) as exc:
            self.outcomes.count("malformed", address)
            return refusal(400, _problem(exc))
        sig_key = keys[0]
        id_key = f"id:{post.id}"
        if not self.memory.reserve(id_key):
            await self.memory.remember([(sig_key, 2 * self.timestamp_window)])
            self.outcomes.count("duplicate")
            return web.json_response({"status": "duplicate", "id": post.id})
        keys.append(id_key)
        sender = post.sender or post.email or address
        wait = self.sender_limits.take(sender)
        if wait is not None:
            self.outcomes.count("rate_limited_sender", sender)
            return refusal(429, "too many posts from this sender", retry_after=wait)
        inbound = self.inbound_post(post)
        assert self._sink is not None
        try:
            await asyncio.wait_for(self._sink(inbound), self.publish_timeout)
        except Exception as exc:  # the bus is away (or refuses): the sender tries again
            self.outcomes.count("unavailable", address, f"{type(exc).__name__}: {exc}")
            return refusal(503, "the post cannot be taken right now", retry_after=5)
        await self.memory.remember([(sig_key, 2 * self.timestamp_window), (id_key, self.id_memory)])
        self.outcomes.count("accepted")
        return web.json_response({"status": "accepted", "id": post.id})

    def inbound_post(self, post: WebhookPost) -> InboundPost:
        """The bus's form of ``post`` (reply addresses in ``meta``)."""
        meta: dict[str, Any] = {}
        if post.sender is not None:
            meta["from"] = post.sender
        if post.email is not None:
            meta["email"] = post.email
        return InboundPost(
            id=post.id,
            text=post.text,
            author=post.author or post.sender,
            received_at=post.received_at or datetime.now(UTC),
            reply_to=post.reply_to,
            kind=post.kind or self.default_kind,
            meta=meta,
        )


def _problem(exc: UnsafeJson | ValidationError) -> str:
    if isinstance(exc, UnsafeJson):
        return str(exc)
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"
