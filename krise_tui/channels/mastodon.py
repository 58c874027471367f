"""The Mastodon channel: one status per version on the municipality's account.

Uses the documented REST API subset:

- ``POST /api/v1/statuses`` with ``status``, ``visibility`` and ``language``, and the
  ``Idempotency-Key`` header: Mastodon answers a repeated key with the status it already
  created instead of posting twice;
- ``PUT /api/v1/statuses/:id`` to edit: an updated or retracted version replaces the
  text of the earlier status when its id (``previous_remote_id``) is known, so readers
  who saw the old text see the correction in place. Without it, the new version is
  posted as a new status (its headline says "Oppdatert:" / "Trukket tilbake:");
- ``GET /api/v1/accounts/verify_credentials`` and ``GET /api/v1/accounts/:id/statuses``
  (newest first, ``max_id`` paging) to find a status again.

Mastodon keeps an Idempotency-Key for about an hour. The channel writes each attempt
ahead in a ledger (:func:`~krise_tui.channels.base.deliver_once`), and every status
carries the version's marker line (``ref. v3f2a9c1b0d4e``). When an attempt may have
reached the instance (a crash before the answer was written down, a timeout, a reset, a
5xx), a retry within ``idempotency_window`` of the first attempt simply sends again
with the same key; a later one, or an operator's re-send, first reads the account's
newest statuses (at most ``lookup_pages`` pages) and answers with the status that
carries the marker. A server that ignores Idempotency-Key (some other ActivityPub
servers) wants ``idempotency_window = 0``: then every doubt is looked up.

The text is :func:`~krise_tui.channels.base.render_text` in the configured language
within ``max_chars`` (500 on a default instance), always ending with the marker, the
website link and the signature. The token needs ``write:statuses``, and
``read:accounts`` plus ``read:statuses`` to find a status again (and
``read:notifications`` for the bridge's intake of mentions, :mod:`krise_tui.intake`).

Replies (:meth:`MastodonChannel.reply`, a batch's approved answer to one asker) are
statuses too: ``in_reply_to_id`` is the asker's status, the text starts with the
asker's ``@acct`` (so they are notified), the visibility is the mention's own (a
direct mention is answered directly, never in public), and the same protections apply:
the ``Idempotency-Key`` is the request's key, each attempt is written ahead in the
ledger, and a doubtful attempt beyond the key's window is looked up on the account by
the reply's marker (:func:`~krise_tui.channels.base.reply_marker`) among the replies to
that status. Mastodon has no way for an account to hide a reply to it: no ``hide``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import httpx
from pydantic import Field

from krise_tui.channels.base import (
    DEFAULT_TIMEOUT,
    ApprovedMessage,
    AttemptState,
    BaseUrl,
    CannotCheck,
    ChannelConfig,
    Check,
    DeliveryResult,
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

IDEMPOTENCY_WINDOW = 3000.0
"""Seconds a retry relies on the Idempotency-Key alone: Mastodon keeps a key for an
hour; ten minutes less leaves room for clocks and slow first attempts."""

CLOCK_SKEW = timedelta(hours=1)
"""How far before a version's approval time its status may look: the look-up stops at
statuses older than that."""

VISIBILITIES = ("public", "unlisted", "private", "direct")
"""Mastodon's visibilities, most public first."""

StatusMatch = Callable[[dict[str, Any]], bool]


class MastodonConfig(ChannelConfig):
    """Configuration of a Mastodon channel."""

    base_url: BaseUrl
    """The instance, e.g. ``https://mastodon.example``."""
    access_token: SecretSetting
    """The account's access token (``write:statuses``, and ``read:accounts``
    ``read:statuses`` to find a status again), as a secret reference."""
    visibility: Literal["public", "unlisted", "private", "direct"] = "public"
    """Status visibility."""
    lang: str = "nb"
    """Which language variant to post (``nb`` when the message lacks it)."""
    max_chars: Annotated[int, Field(ge=50)] = 500
    """The instance's status length limit."""
    timeout: Annotated[float, Field(gt=0)] = DEFAULT_TIMEOUT
    """Seconds to wait for the instance."""
    state_file: Path | None = None
    """The write-ahead ledger of attempts (JSON). Without it the ledger lives in memory
    and protects only this process (the bridge always gives one)."""
    idempotency_window: Annotated[float, Field(ge=0)] = IDEMPOTENCY_WINDOW
    """Seconds after a doubtful attempt in which a retry relies on the Idempotency-Key
    alone; 0 for servers that ignore the key (every doubt is looked up)."""
    lookup_pages: Annotated[int, Field(ge=1, le=50)] = 5
    """Pages of the account's statuses read, newest first, to find a status again."""


@register("mastodon")
class MastodonChannel(HttpChannel[MastodonConfig]):
    """Posts (or edits) one status per version, once per idempotency key."""

    kind: ClassVar[str] = "mastodon"
    config_model = MastodonConfig

    PAGE_SIZE: ClassVar[int] = 40
    """Statuses per page read (Mastodon's maximum)."""

    def __init__(
        self, name: str, config: MastodonConfig, *, client: httpx.AsyncClient | None = None
    ) -> None:
        super().__init__(name, config, client=client)
        self._token = resolve_secret(config.access_token)
        self._ledger = Ledger(config.state_file)
        self._account_id: str | None = None

    def render(self, message: ApprovedMessage) -> tuple[str, str]:
        """The status text (with its marker line) and its language for ``message``."""
        variant = message.variant_for(self.config.lang)
        text = render_text(
            message, variant.lang, max_chars=self.config.max_chars, marker=version_marker(message)
        )
        return text, variant.lang

    async def deliver(
        self,
        message: ApprovedMessage,
        *,
        idempotency_key: str,
        previous_remote_id: str | None = None,
        recheck: bool = False,
    ) -> DeliveryResult:
        """Post the status, or edit the earlier one for an update/retraction.

        The remote id is the status id (the edited status's id for an edit).
        """
        edit = message.status is not MessageStatus.PUBLISHED and bool(previous_remote_id)

        async def send(_: bool) -> DeliveryResult:
            return await self._send(message, idempotency_key, previous_remote_id if edit else None)

        async def lookup(entry: LedgerEntry | None) -> DeliveryResult | Check:
            if not recheck and self._key_still_covers(entry):
                return Check.NOT_CHECKED
            return await self.find(message)

        return await deliver_once(
            self._ledger,
            idempotency_key,
            send=send,
            lookup=None if edit else lookup,
            recheck=recheck,
        )

    def _key_still_covers(self, entry: LedgerEntry | None) -> bool:
        """Whether Mastodon still remembers the key of the doubtful attempt in ``entry``."""
        if entry is None or entry.state is not AttemptState.IN_FLIGHT:
            return False
        if entry.started_at is None:
            return False
        age = (datetime.now(UTC) - entry.started_at).total_seconds()
        return 0 <= age < self.config.idempotency_window

    async def find(self, message: ApprovedMessage) -> DeliveryResult | Check:
        """Look for ``message``'s status on the account by its marker (newest first).

        Raises:
            CannotCheck: the instance could not be read (the reason says why).
        """
        found = await self._search(
            lambda status: has_marker(status.get("content"), message),
            oldest=message.published_at - CLOCK_SKEW,
        )
        if found is None:
            return Check.ABSENT
        return DeliveryResult.delivered(
            found,
            reason=(
                f"already on the platform (found by marker «{version_marker(message)}» on "
                "the account); not posted again"
            ),
            existing=True,
        )

    async def _search(self, match: StatusMatch, *, oldest: datetime) -> str | None:
        """The id of the account's newest status that ``match`` accepts, reading back to
        ``oldest`` (at most ``lookup_pages`` pages); None when there is none.

        Raises:
            CannotCheck: the instance could not be read (the reason says why).
        """
        headers = {"Authorization": f"Bearer {self._token}"}
        account = await self._account(headers)
        url = f"{self.config.base_url}/api/v1/accounts/{account}/statuses"
        max_id: str | None = None
        for _ in range(self.config.lookup_pages):
            params = {"limit": str(self.PAGE_SIZE), "exclude_reblogs": "true"}
            if max_id is not None:
                params["max_id"] = max_id
            answer = await send_http(
                self._client,
                "GET",
                url,
                timeout=self.config.timeout,
                params=params,
                headers=headers,
            )
            if isinstance(answer, DeliveryResult):
                raise cannot_check(answer, "reading the account's statuses")
            if not answer.is_success:
                raise cannot_check(failure_from_response(answer), "reading the account's statuses")
            try:
                statuses = answer.json()
            except (ValueError, UnicodeDecodeError):
                statuses = None
            if not isinstance(statuses, list):
                raise CannotCheck("reading the account's statuses: the answer is not a list")
            reached_older = False
            for status in statuses:
                if not isinstance(status, dict) or status.get("id") is None:
                    continue
                if match(status):
                    return str(status["id"])
                created = _mastodon_time(status.get("created_at"))
                reached_older = reached_older or (created is not None and created < oldest)
            if reached_older or len(statuses) < self.PAGE_SIZE:
                break
            max_id = str(statuses[-1].get("id")) if isinstance(statuses[-1], dict) else None
            if max_id is None:
                break
        return None

    # ------------------------------------------------------------------ replies

    async def reply(self, request: ReplyRequest, *, recheck: bool = False) -> DeliveryResult:
        """Answer the asker's status with a status of our own, once per key.

        The remote id is the reply's status id.
        """
        refused = refuse_exercise(request, self.name, self.config.exercise_endpoint)
        if refused is not None:
            return refused
        key = request.idempotency_key

        async def send(_: bool) -> DeliveryResult:
            return await self._send_reply(request)

        async def lookup(entry: LedgerEntry | None) -> DeliveryResult | Check:
            if not recheck and self._key_still_covers(entry):
                return Check.NOT_CHECKED
            since = entry.started_at if entry is not None and entry.started_at else None
            token = reply_token(key)
            found = await self._search(
                lambda status: (
                    str(status.get("in_reply_to_id")) == request.to.post_id
                    and has_token(status.get("content"), token)
                ),
                oldest=(since or datetime.now(UTC)) - CLOCK_SKEW,
            )
            if found is None:
                return Check.ABSENT
            return DeliveryResult.delivered(
                found,
                reason=(
                    f"already answered (found by marker «{reply_marker(key)}» among the "
                    f"replies to {request.to.post_id}); not posted again"
                ),
                existing=True,
            )

        return await deliver_once(self._ledger, key, send=send, lookup=lookup, recheck=recheck)

    def render_reply(self, request: ReplyRequest) -> tuple[str, str]:
        """The reply's text (mention first, marker line last but link and signature) and
        its visibility.

        Raises:
            ValueError: no author to mention, or ``max_chars`` cannot hold the reply.
        """
        acct = request.to.meta.get("acct") or request.to.author
        if not isinstance(acct, str) or not acct.strip("@ "):
            raise ValueError("the post has no author to answer (meta.acct)")
        mention = "@" + acct.strip().lstrip("@")
        text = reply_text(
            request,
            max_chars=self.config.max_chars,
            mention=mention,
            marker=reply_marker(request.idempotency_key),
        )
        asked = request.to.meta.get("visibility")
        # As the mention was: a direct question is never answered in public. Unknown:
        # the most private choice.
        visibility = asked if isinstance(asked, str) and asked in VISIBILITIES else "direct"
        return text, visibility

    async def _send_reply(self, request: ReplyRequest) -> DeliveryResult:
        try:
            text, visibility = self.render_reply(request)
        except ValueError as exc:
            return DeliveryResult.failed(f"cannot render the reply: {exc}", permanent=True)
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Idempotency-Key": request.idempotency_key,
        }
        fields = {
            "status": text,
            "in_reply_to_id": request.to.post_id,
            "visibility": visibility,
            "language": request.lang,
        }
        answer = await send_http(
            self._client,
            "POST",
            f"{self.config.base_url}/api/v1/statuses",
            timeout=self.config.timeout,
            json=fields,
            headers=headers,
        )
        if isinstance(answer, DeliveryResult):
            return answer
        if not answer.is_success:
            return failure_from_response(answer)
        status_id = response_json(answer).get("id")
        if status_id is None:
            return DeliveryResult.failed(
                f"{answer.status_code} {answer.reason_phrase} without a status id",
                uncertain=True,
            )
        return DeliveryResult.delivered(str(status_id))

    async def _account(self, headers: dict[str, str]) -> str:
        """The account's id (asked once per channel)."""
        if self._account_id is not None:
            return self._account_id
        answer = await send_http(
            self._client,
            "GET",
            f"{self.config.base_url}/api/v1/accounts/verify_credentials",
            timeout=self.config.timeout,
            headers=headers,
        )
        if isinstance(answer, DeliveryResult):
            raise cannot_check(answer, "asking for the account")
        if not answer.is_success:
            raise cannot_check(failure_from_response(answer), "asking for the account")
        account = response_json(answer).get("id")
        if account is None:
            raise CannotCheck("asking for the account: the answer has no id")
        self._account_id = str(account)
        return self._account_id

    async def _send(
        self, message: ApprovedMessage, idempotency_key: str, edit_id: str | None
    ) -> DeliveryResult:
        try:
            text, lang = self.render(message)
        except ValueError as exc:
            return DeliveryResult.failed(f"cannot render the status: {exc}", permanent=True)
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Idempotency-Key": idempotency_key,
        }
        fields: dict[str, str] = {"status": text, "language": lang}
        if edit_id is not None:
            method, url = "PUT", f"{self.config.base_url}/api/v1/statuses/{edit_id}"
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
            # Accepted, but no id to go by: the status may well exist.
            return DeliveryResult.failed(
                f"{answer.status_code} {answer.reason_phrase} without a status id",
                uncertain=True,
            )
        return DeliveryResult.delivered(str(status_id))


def _mastodon_time(value: object) -> datetime | None:
    """A Mastodon time (``2026-11-27T13:05:02.000Z``), or None."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
