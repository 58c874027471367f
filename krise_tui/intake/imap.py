"""Questions by e-mail: the municipality's mailbox, polled over IMAP.

Every ``poll_interval`` the poller logs in to the mailbox the org file names (``imaps://``,
or ``imap://`` on the loopback only), opens it **read-only** and fetches, with
``BODY.PEEK[]``, the messages whose UID is above the last one published: it never marks
a message read, moves or deletes anything, so the people who work the mailbox see it as
before. The cursor (``UIDVALIDITY`` and the last UID) is saved (fsync'd) in
``{state_dir}/{channel}.intake.imap.json`` after each message reaches the broker: a
restart neither loses a message nor publishes one again (short of a crash between the
broker's acknowledgement and the save, which repeats that one message: the console
de-duplicates by post id, the message's ``Message-ID``).

At the very first start there is no cursor: messages that arrived before ``since`` (the
org file's ``inbound.since``) or before that first start are not taken (a mailbox holds
years of mail), only those after. If the server renumbers the mailbox (a new
``UIDVALIDITY``), the poller says so and takes the messages from the cursor's time on
again; the console drops any it already has.

Each message becomes a post of kind ``email``: its id is the ``Message-ID`` (what
``In-Reply-To`` needs; the UID when there is none), its text the subject and the plain
text body without quoted lines (``> …``), its author the sender's name or address, and
``meta`` the address to answer (``email``), ``message_id`` and ``subject``.
Automatic mail (``Auto-Submitted``, ``Precedence: bulk``/``list``/``junk``, bounces,
mailing lists) is skipped and counted, never answered: an answer to an out-of-office
reply would start a mail loop (RFC 3834).

``imaplib`` is the standard library's client; it blocks, so each poll runs in a worker
thread. A poll that fails (network, server) is logged and tried again next interval; a
refused login is logged at ERROR each time.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import json
import logging
import re
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any

from krise_tui.files import atomic_write
from krise_tui.intake.service import InboundSink, Trouble, UncutSteps
from krise_tui.playbook.models import imap_parts
from krise_tui.wire.inbound import InboundPost

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(minutes=2)
"""At the first start, messages this much older than the start are taken too."""
MAX_TEXT = 20_000
MAX_FETCH = 2 * 1024 * 1024
"""Bytes of one message fetched at most (its headers and text; not big attachments)."""
MAX_PER_POLL = 500
"""Messages fetched in one poll at most (the rest come next poll)."""
TIMEOUT = 30.0
"""Seconds before a silent server counts as gone."""

_QUOTED = re.compile(r"^\s*>")
_ON_WROTE = re.compile(
    r"^(on .{3,200} wrote:|den .{3,200} skrev .{0,200}:|.{3,200} skrev:)\s*$", re.IGNORECASE
)
_ID_CHARS = re.compile(r"[^\x21-\x7e]")


@dataclass(frozen=True)
class Mailbox:
    """Where to poll: ``imaps://host[:port]/MAILBOX`` (``imap://`` on the loopback only)."""

    host: str
    port: int
    tls: bool
    mailbox: str
    user: str

    @classmethod
    def from_url(cls, url: str, user: str) -> Mailbox:
        """Parse the org file's ``inbound.imap.url``; raises ``ValueError`` naming what is
        wrong."""
        host, port, tls, mailbox = imap_parts(url)
        return cls(host, port, tls, mailbox, user)


@dataclass
class Cursor:
    """What the poller keeps across restarts."""

    uidvalidity: int | None
    last_uid: int
    started_at: datetime
    """Messages that arrived before this are never taken."""

    def to_json(self) -> bytes:
        """The state file's bytes."""
        data = {
            "uidvalidity": self.uidvalidity,
            "last_uid": self.last_uid,
            "started_at": self.started_at.isoformat(),
        }
        return (json.dumps(data, indent=1) + "\n").encode("utf-8")


@dataclass
class _Fetched:
    uid: int
    arrived: datetime | None
    raw: bytes


@dataclass
class _Poll:
    uidvalidity: int
    messages: list[_Fetched] = field(default_factory=list)
    passed: int = 0
    """The highest UID of mail from before the start, passed over (not ours to answer)."""


class PollFailed(Exception):
    """A poll that did not reach the mailbox; ``permanent`` when retrying cannot help."""

    def __init__(self, text: str, *, permanent: bool = False) -> None:
        super().__init__(text)
        self.permanent = permanent


class ImapPoller:
    """Polls a mailbox and publishes each new message once (module docstring)."""

    def __init__(
        self,
        channel_id: str,
        *,
        mailbox: Mailbox,
        password: str,
        state_file: Path,
        interval: float = 30.0,
        since: datetime | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.channel_id = channel_id
        self.mailbox = mailbox
        self.password = password
        self.state_file = state_file
        self.interval = interval
        self.since = since
        self.ssl_context = ssl_context
        self.cursor: Cursor | None = None
        self.polls = 0
        """Polls that reached the mailbox and were worked through."""
        self.failures = 0
        """Polls that failed (logged)."""
        self.published = 0
        """Messages handed to the sink (and acknowledged)."""
        self.skipped = 0
        """Messages not taken: automatic mail (out-of-office, bounces, lists), and any that
        cannot be read (logged at ERROR with its UID; it stays in the mailbox)."""
        self.trouble = Trouble()
        self._poll_failed = False
        """What is wrong now, for the console: a failed poll (until one succeeds), a
        message that cannot be read (until a later one is published)."""
        self._steps = UncutSteps()

    @property
    def name(self) -> str:
        """For logs."""
        scheme = "imaps" if self.mailbox.tls else "imap"
        box = self.mailbox
        return f"e-mail {scheme}://{box.host}:{box.port}/{box.mailbox}"

    async def run(self, sink: InboundSink) -> None:
        """Poll every :attr:`interval` until cancelled (a stop lets the message being
        published finish: :class:`UncutSteps`)."""
        try:
            while True:
                await self.poll_once(sink)
                await asyncio.sleep(self.interval)  # the polling period itself
        finally:
            await self._steps.finish()

    def load_cursor(self) -> Cursor:
        """The saved cursor; a fresh one (from now, or from ``since``) when there is none."""
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            validity = data.get("uidvalidity")
            return Cursor(
                uidvalidity=None if validity is None else int(validity),
                last_uid=int(data["last_uid"]),
                started_at=datetime.fromisoformat(str(data["started_at"])),
            )
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error(
                "intake %s: %s is unreadable (%s); taking messages from now on",
                self.channel_id,
                self.state_file,
                exc,
            )
        cursor = Cursor(None, 0, self.since or datetime.now(UTC))
        self._save(cursor)
        return cursor

    def _save(self, cursor: Cursor) -> None:
        atomic_write(self.state_file, cursor.to_json(), mode=0o600)

    async def poll_once(self, sink: InboundSink) -> None:
        """Fetch new messages and publish them in UID order. Mailbox trouble is logged,
        not raised."""
        if self.cursor is None:
            self.cursor = await asyncio.to_thread(self.load_cursor)
        cursor = self.cursor
        try:
            poll = await asyncio.to_thread(self._fetch, cursor)
        except PollFailed as exc:
            self.failures += 1
            level = logging.ERROR if exc.permanent else logging.WARNING
            log.log(level, "intake %s: polling %s failed: %s", self.channel_id, self.name, exc)
            self.trouble(f"polling {self.name} failed: {exc}")
            self._poll_failed = True
            return
        if self._poll_failed:  # over (an unreadable message is said until one is taken)
            self._poll_failed = False
            self.trouble(None)
        if cursor.uidvalidity != poll.uidvalidity:
            if cursor.uidvalidity is not None:
                log.warning(
                    "intake %s: the mailbox was renumbered (UIDVALIDITY %s → %s); taking "
                    "the messages since %s again (the console drops repeats)",
                    self.channel_id,
                    cursor.uidvalidity,
                    poll.uidvalidity,
                    cursor.started_at.isoformat(),
                )
            cursor.uidvalidity = poll.uidvalidity
            cursor.last_uid = 0
        cursor.last_uid = max(cursor.last_uid, poll.passed)
        for fetched in poll.messages:
            # Publish and move the cursor as one step that a stop does not cut in two.
            await self._steps.run(self._take(sink, fetched, cursor))
        await asyncio.to_thread(self._save, cursor)
        self.polls += 1

    async def _take(self, sink: InboundSink, fetched: _Fetched, cursor: Cursor) -> None:
        try:
            post = message_post(fetched.raw, uid=fetched.uid, arrived=fetched.arrived)
        except Exception as exc:  # one unreadable message must not stop the mailbox
            log.exception("intake %s: message UID %d is unreadable", self.channel_id, fetched.uid)
            self.trouble(
                f"message UID {fetched.uid} in {self.name} cannot be read "
                f"({type(exc).__name__}: {exc}); it is left in the mailbox: read it there"
            )
            post = None
        if post is None:
            self.skipped += 1
        else:
            await sink(post)
            self.published += 1
            self.trouble(None)
        cursor.last_uid = max(cursor.last_uid, fetched.uid)
        await asyncio.to_thread(self._save, cursor)

    # --- in a worker thread -----------------------------------------------------------

    def _connect(self) -> imaplib.IMAP4:
        box = self.mailbox
        try:
            if box.tls:
                context = self.ssl_context or ssl.create_default_context()
                return imaplib.IMAP4_SSL(box.host, box.port, ssl_context=context, timeout=TIMEOUT)
            return imaplib.IMAP4(box.host, box.port, timeout=TIMEOUT)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise PollFailed(f"cannot connect: {exc}") from None

    def _fetch(self, cursor: Cursor) -> _Poll:
        client = self._connect()
        try:
            try:
                client.login(self.mailbox.user, self.password)
            except imaplib.IMAP4.error as exc:
                raise PollFailed(
                    f"login refused for {self.mailbox.user!r}: {exc}", permanent=True
                ) from None
            status, _ = client.select(_quoted(self.mailbox.mailbox), readonly=True)
            if status != "OK":
                raise PollFailed(f"no mailbox {self.mailbox.mailbox!r}", permanent=True)
            validity = int(_first(client.response("UIDVALIDITY")[1]) or 0)
            last = cursor.last_uid if cursor.uidvalidity == validity else 0
            uids = self._new_uids(client, last, cursor.started_at)
            poll = _Poll(validity)
            if last == 0:
                # No cursor: the server narrowed by day; the arrival time decides, asked for
                # alone (no bodies fetched for mail from before the start).
                oldest = cursor.started_at - CLOCK_SKEW
                arrived = self._arrivals(client, uids)
                old = [u for u in uids if (when := arrived.get(u)) is not None and when < oldest]
                poll.passed = max(old, default=0)
                uids = [u for u in uids if u > poll.passed]
            for uid in uids[:MAX_PER_POLL]:
                fetched = self._one(client, uid)
                if fetched is not None:
                    poll.messages.append(fetched)
            if len(uids) > MAX_PER_POLL:
                log.warning(
                    "intake %s: %d new messages; the first %d now, the rest next poll",
                    self.channel_id,
                    len(uids),
                    MAX_PER_POLL,
                )
            return poll
        except (OSError, imaplib.IMAP4.abort) as exc:
            raise PollFailed(f"{type(exc).__name__}: {exc}") from None
        except imaplib.IMAP4.error as exc:
            raise PollFailed(f"the server said: {exc}") from None
        finally:
            try:
                client.logout()
            except Exception:  # the connection is gone already
                pass

    def _new_uids(self, client: imaplib.IMAP4, last: int, started: datetime) -> list[int]:
        if last > 0:
            status, data = client.uid("SEARCH", "UID", f"{last + 1}:*")
        else:  # no cursor: the server narrows by day, the arrival time decides
            day = (started - CLOCK_SKEW).strftime("%d-%b-%Y")
            status, data = client.uid("SEARCH", "SINCE", day)
        if status != "OK":
            raise PollFailed(f"SEARCH failed: {data!r}")
        found = sorted({int(u) for u in (_first(data) or b"").split()})
        # "n:*" always includes the newest message, even when its UID is below n.
        return [u for u in found if u > last]

    def _arrivals(self, client: imaplib.IMAP4, uids: list[int]) -> dict[int, datetime]:
        """When each message arrived (INTERNALDATE), by UID."""
        found: dict[int, datetime] = {}
        for start in range(0, len(uids), 500):
            part = ",".join(str(u) for u in uids[start : start + 500])
            status, data = client.uid("FETCH", part, "(INTERNALDATE)")
            if status != "OK":
                raise PollFailed(f"FETCH INTERNALDATE failed: {data!r}")
            for item in data:
                line = item[0] if isinstance(item, tuple) else item
                if not isinstance(line, bytes):
                    continue
                uid = re.search(rb"UID (\d+)", line)
                when = _arrival(line)
                if uid is not None and when is not None:
                    found[int(uid.group(1))] = when
        return found

    def _one(self, client: imaplib.IMAP4, uid: int) -> _Fetched | None:
        # At most the first MAX_FETCH bytes: the text comes before large attachments, and
        # one 30 MB message must not hold up (or exhaust) the bridge.
        status, data = client.uid("FETCH", str(uid), f"(INTERNALDATE BODY.PEEK[]<0.{MAX_FETCH}>)")
        if status != "OK":
            raise PollFailed(f"FETCH {uid} failed: {data!r}")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                head, raw = item
                return _Fetched(uid, _arrival(head), bytes(raw))
        return None  # expunged meanwhile


def _arrival(response: bytes) -> datetime | None:
    """The INTERNALDATE in a FETCH response line, aware (UTC)."""
    local = imaplib.Internaldate2tuple(response)  # local time, as imaplib gives it
    return None if local is None else datetime.fromtimestamp(time.mktime(local), UTC)


def _first(data: list[Any] | None) -> bytes | None:
    if not data:
        return None
    value = data[0]
    return value if isinstance(value, bytes) else None


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- one message -> one post -----------------------------------------------------------


def is_automatic(message: EmailMessage) -> bool:
    """Mail no person wrote: out-of-office, bounces, lists (never answered, RFC 3834)."""
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    if auto and auto != "no":
        return True
    if str(message.get("Precedence", "")).strip().lower() in ("bulk", "list", "junk"):
        return True
    if message.get("List-Id") or message.get("List-Unsubscribe"):
        return True
    if str(message.get("Return-Path", "")).strip() == "<>":
        return True
    sender = _address(message)
    local = sender.split("@", 1)[0].lower() if sender else ""
    return local in ("mailer-daemon", "postmaster", "no-reply", "noreply", "do-not-reply")


def _address(message: EmailMessage) -> str:
    for header in ("Reply-To", "From"):
        for _, addr in getaddresses([str(v) for v in message.get_all(header, [])]):
            if addr and "@" in addr:
                return addr.strip()
    return ""


def _author(message: EmailMessage) -> str | None:
    for name, addr in getaddresses([str(v) for v in message.get_all("From", [])]):
        if name.strip() or addr.strip():
            return (name.strip() or addr.strip())[:500]
    return None


def body_text(message: EmailMessage) -> str:
    """The plain text a person wrote: the text part (or the HTML's text), without the
    quoted message below an answer."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset: read what can be read
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        from krise_tui.intake.mastodon import html_to_text

        content = html_to_text(content)
    lines: list[str] = []
    for line in content.splitlines():
        if _ON_WROTE.match(line.strip()):
            break  # "On …, … wrote:" / "… skrev:": the quoted message follows
        if line.rstrip() == "--":
            break  # the signature
        if not _QUOTED.match(line):
            lines.append(line.rstrip())
    return "\n".join(lines).strip()


def _subject(message: EmailMessage) -> str:
    subject = " ".join(str(message.get("Subject", "")).split())
    bare = re.sub(r"^((re|sv|fw|fwd|vs)\s*:\s*)+", "", subject, flags=re.IGNORECASE)
    return subject if bare else ""


def message_post(raw: bytes, *, uid: int, arrived: datetime | None = None) -> InboundPost | None:
    """The post for one message, or None for automatic mail (module docstring)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    if is_automatic(message):
        return None
    subject = _subject(message)
    body = body_text(message)
    text = f"{subject}\n\n{body}".strip() if subject and subject not in body else body
    text = text or subject
    message_id = " ".join(str(message.get("Message-ID", "")).split())
    post_id = _ID_CHARS.sub("", message_id)[:200] or f"uid-{uid}"
    meta: dict[str, Any] = {}
    address = _address(message)
    if address:
        meta["email"] = address[:320]
    if message_id:
        meta["message_id"] = message_id[:998]
    if subject:
        meta["subject"] = subject[:998]
    received = arrived
    if received is None:
        try:
            dated = parsedate_to_datetime(str(message.get("Date", "")))
            received = dated if dated.tzinfo is not None else None
        except (TypeError, ValueError):
            received = None
    return InboundPost(
        id=post_id,
        text=text[:MAX_TEXT],
        author=_author(message),
        received_at=received,
        kind="email",
        meta=meta,
    )
