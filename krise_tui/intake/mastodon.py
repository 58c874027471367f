"""Mentions of the municipality's Mastodon account, polled from the notifications API.

``GET {instance}/api/v1/notifications?types[]=mention&since_id=…&limit=40`` with the
channel's access token (it needs ``read:notifications``) every ``poll_interval``.
Mastodon answers newest first and, with ``since_id``, the newest page above it; a full
page is followed down with ``max_id`` until it meets ``since_id``, so a burst of more
than a page is not cut. The mentions are published oldest first; each one's
notification id becomes the new ``since_id`` once the broker has the post, saved
(fsync'd) in ``{state_dir}/{channel}.intake.mastodon.json``: a restart neither loses a
mention nor publishes one again (short of a crash between the broker's acknowledgement
and the save, which repeats that one post: the console de-duplicates by post id).

At the very first start there is no ``since_id``: the poller takes the mentions made
from ``since`` on (the org file's ``inbound.since``: when the incident opened), or from
that first start (less two minutes for the instance's clock), remembers that time in the
state file, and from its first poll on goes by ``since_id`` alone.

Each mention becomes a post of kind ``post`` whose id is the mentioning status's id
(what ``in_reply_to_id`` needs), its text the status's HTML as plain text, its author
``@acct``, and ``meta`` the status id, ``acct``, ``visibility`` (a reply keeps it) and
the notification id. A poll that fails (network, 5xx, 429) is logged and tried again at
the next interval (after ``Retry-After``); a refused token is logged at ERROR each time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx

from krise_tui.files import atomic_write
from krise_tui.intake.service import InboundSink, Trouble, UncutSteps
from krise_tui.wire.inbound import InboundPost

log = logging.getLogger(__name__)

PAGE_SIZE = 40
"""Notifications per request (Mastodon's maximum)."""
CLOCK_SKEW = timedelta(minutes=2)
"""At the first start, mentions this much older than the start are taken too: the
instance's clock may be behind ours, and a mention from just before is no harm."""
MAX_TEXT = 20_000


@dataclass
class PollState:
    """What the poller keeps across restarts."""

    since_id: str | None
    """The newest notification already published."""
    started_at: datetime
    """Mentions older than this are never taken (the first start, or ``since``)."""

    def to_json(self) -> bytes:
        """The state file's bytes."""
        data = {"since_id": self.since_id, "started_at": self.started_at.isoformat()}
        return (json.dumps(data, indent=1) + "\n").encode("utf-8")


class MastodonPoller:
    """Polls the account's mentions and publishes each one once (module docstring)."""

    def __init__(
        self,
        channel_id: str,
        *,
        base_url: str,
        token: str,
        state_file: Path,
        interval: float = 30.0,
        since: datetime | None = None,
        timeout: float = 10.0,
        max_pages: int = 25,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.channel_id = channel_id
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.state_file = state_file
        self.interval = interval
        self.since = since
        self.timeout = timeout
        self.max_pages = max_pages
        self._client = client
        self.state: PollState | None = None
        self.polls = 0
        """Polls that reached the instance and were worked through."""
        self.failures = 0
        """Polls that failed (logged)."""
        self.published = 0
        """Mentions handed to the sink (and acknowledged)."""
        self.trouble = Trouble()
        """What is wrong now, for the console: a failed poll, until one succeeds."""
        self._steps = UncutSteps()

    @property
    def name(self) -> str:
        """For logs."""
        return f"mastodon mentions {self.base_url}"

    async def run(self, sink: InboundSink) -> None:
        """Poll every :attr:`interval` until cancelled.

        A stop lets the mention being published finish (:class:`UncutSteps`): its cursor
        is saved, so the next start does not publish it again.
        """
        try:
            if self._client is not None:
                await self._poll_forever(sink, self._client)
                return
            async with httpx.AsyncClient(follow_redirects=False) as client:
                await self._poll_forever(sink, client)
        finally:
            await self._steps.finish()

    async def _poll_forever(self, sink: InboundSink, client: httpx.AsyncClient) -> None:
        while True:
            retry_after = await self.poll_once(sink, client)
            # The polling period itself, not a wait for something to happen.
            await asyncio.sleep(max(self.interval, retry_after or 0.0))

    def load_state(self) -> PollState:
        """The saved state; a fresh one (started now, or at ``since``) when there is none."""
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            since_id = data.get("since_id")
            return PollState(
                since_id=None if since_id is None else str(since_id),
                started_at=datetime.fromisoformat(str(data["started_at"])),
            )
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # Starting afresh would skip (or repeat) mentions: say so loudly.
            log.error(
                "intake %s: %s is unreadable (%s); taking mentions from now on",
                self.channel_id,
                self.state_file,
                exc,
            )
        state = PollState(since_id=None, started_at=self.since or datetime.now(UTC))
        self._save(state)
        return state

    def _save(self, state: PollState) -> None:
        atomic_write(self.state_file, state.to_json(), mode=0o600)

    async def poll_once(self, sink: InboundSink, client: httpx.AsyncClient) -> float | None:
        """Fetch new mentions and publish them oldest first; the ``Retry-After`` the
        instance asked for, if any. Platform trouble is logged, not raised."""
        if self.state is None:
            self.state = await asyncio.to_thread(self.load_state)
        state = self.state
        try:
            fresh, newest = await self._fetch(client, state)
        except _PollFailed as exc:
            self.failures += 1
            level = logging.ERROR if exc.permanent else logging.WARNING
            log.log(level, "intake %s: polling mentions failed: %s", self.channel_id, exc)
            self.trouble(f"polling {self.name} failed: {exc}")
            return exc.retry_after
        self.trouble(None)
        for notification in fresh:
            # Publish and move the cursor as one step that a stop does not cut in two.
            await self._steps.run(self._take(sink, notification, state))
        if state.since_id is None and newest is not None:
            # From now on the cursor alone decides, never the two clocks.
            state.since_id = newest
            await asyncio.to_thread(self._save, state)
        self.polls += 1
        return None

    async def _take(
        self, sink: InboundSink, notification: dict[str, Any], state: PollState
    ) -> None:
        post = mention_post(notification)
        if post is not None:
            await sink(post)
            self.published += 1
        state.since_id = str(notification["id"])
        await asyncio.to_thread(self._save, state)

    async def _fetch(
        self, client: httpx.AsyncClient, state: PollState
    ) -> tuple[list[dict[str, Any]], str | None]:
        """New mention notifications, oldest first (only those from ``started_at`` on
        when there is no ``since_id`` yet), and the newest notification id seen."""
        found: list[dict[str, Any]] = []
        newest: str | None = None
        oldest_taken = state.started_at - CLOCK_SKEW
        max_id: str | None = None
        for _ in range(self.max_pages):
            params = {"types[]": "mention", "limit": str(PAGE_SIZE)}
            if state.since_id is not None:
                params["since_id"] = state.since_id
            if max_id is not None:
                params["max_id"] = max_id
            page = await self._get(client, params)
            items = [n for n in page if isinstance(n, dict) and n.get("id") is not None]
            if newest is None and items:
                newest = str(items[0]["id"])
            older = False
            for item in items:
                if state.since_id is None:
                    created = _time(item.get("created_at"))
                    if created is not None and created < oldest_taken:
                        older = True
                        continue
                found.append(item)
            if older or len(page) < PAGE_SIZE or not items:
                break
            max_id = str(items[-1]["id"])
        else:
            log.warning(
                "intake %s: more than %d pages of new mentions; the rest come next poll",
                self.channel_id,
                self.max_pages,
            )
        unique = {str(n["id"]): n for n in found}
        return [unique[key] for key in sorted(unique, key=_id_order)], newest

    async def _get(self, client: httpx.AsyncClient, params: dict[str, str]) -> list[Any]:
        try:
            answer = await client.get(
                f"{self.base_url}/api/v1/notifications",
                params=params,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise _PollFailed(f"{type(exc).__name__}: {exc}") from None
        if answer.status_code in (401, 403):
            raise _PollFailed(
                f"{answer.status_code}: the token is refused (it needs read:notifications)",
                permanent=True,
            )
        if answer.status_code == 429 or answer.status_code >= 500:
            retry = answer.headers.get("Retry-After", "")
            raise _PollFailed(
                f"{answer.status_code} {answer.reason_phrase}",
                retry_after=float(retry) if retry.isdigit() else None,
            )
        if not answer.is_success:
            raise _PollFailed(f"{answer.status_code} {answer.reason_phrase}", permanent=True)
        try:
            data = answer.json()
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, list):
            raise _PollFailed("the answer is not a list of notifications")
        return data


class _PollFailed(Exception):
    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.retry_after = retry_after


def mention_post(notification: dict[str, Any]) -> InboundPost | None:
    """The post a mention notification carries, or None (no status, not a mention)."""
    if notification.get("type") != "mention":
        return None
    status = notification.get("status")
    if not isinstance(status, dict) or status.get("id") is None:
        return None
    account = status.get("account") or notification.get("account")
    acct = account.get("acct") if isinstance(account, dict) else None
    meta: dict[str, Any] = {
        "status_id": str(status["id"]),
        "notification_id": str(notification["id"]),
    }
    if isinstance(acct, str) and acct:
        meta["acct"] = acct
    for key in ("visibility", "language", "url"):
        value = status.get(key)
        if isinstance(value, str) and value:
            meta[key] = value[:500]
    reply_to = status.get("in_reply_to_id")
    return InboundPost(
        id=str(status["id"])[:200],
        text=html_to_text(str(status.get("content") or ""))[:MAX_TEXT],
        author=f"@{acct}"[:500] if isinstance(acct, str) and acct else None,
        received_at=_time(status.get("created_at")) or datetime.now(UTC),
        reply_to=str(reply_to)[:200] if reply_to is not None else None,
        kind="post",
        meta=meta,
    )


class _Text(HTMLParser):
    """Mastodon's status HTML as text: ``<br>`` a line end, ``</p>`` a blank line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(content: str) -> str:
    """The plain text of a status's HTML ``content``."""
    parser = _Text()
    parser.feed(content)
    parser.close()
    text = "".join(parser.parts)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _id_order(value: str) -> tuple[int, str]:
    """Mastodon ids are numbers in text: shorter is older, then by text."""
    return (len(value), value)
