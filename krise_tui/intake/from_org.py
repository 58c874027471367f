"""Build a channel's intake from the org file's ``inbound:`` section.

==========  ===========================================================================
kind        intake
==========  ===========================================================================
sms         a signed webhook (:mod:`krise_tui.intake.webhook`): the gateway's callback;
            posts of kind ``sms``, the sender's number in ``meta.from``
webhook     a signed webhook; posts of kind ``form`` unless the body says otherwise
website     a signed webhook for the website's question form; posts of kind ``form``
facebook    the page webhook (:mod:`krise_tui.intake.facebook`): ``secret`` is the app
            secret, ``verify_token`` Meta's subscription token
mastodon    the mention poller (:mod:`krise_tui.intake.mastodon`) with the channel's own
            access token (``credentials``), every ``poll_interval``
email       the mailbox poller (:mod:`krise_tui.intake.imap`): ``imap`` names the
            mailbox, ``secret`` is its password, every ``poll_interval``
==========  ===========================================================================

The org file's model checks which settings each kind needs; secrets are resolved here,
when the bridge starts, and a missing one is an error naming the channel. The replay
memory and the poller's cursor live in ``state_dir`` beside the bridge's other state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import httpx

from krise_tui.channels.base import ChannelConfigError, SecretError, resolve_secret
from krise_tui.channels.from_org import mastodon_instance
from krise_tui.intake.facebook import FacebookIntake
from krise_tui.intake.guard import SeenMemory, TokenBuckets
from krise_tui.intake.imap import ImapPoller, Mailbox
from krise_tui.intake.mastodon import MastodonPoller
from krise_tui.intake.service import Intake, Source
from krise_tui.intake.webhook import WebhookIntake
from krise_tui.playbook.models import ChannelDef, ChannelKind, InboundDef, SecretRef

_DEFAULT_KINDS: dict[ChannelKind, Literal["sms", "form"]] = {
    ChannelKind.SMS: "sms",
    ChannelKind.WEBHOOK: "form",
    ChannelKind.WEBSITE: "form",
}


def intake_from_def(
    defn: ChannelDef,
    state_dir: Path,
    *,
    client: httpx.AsyncClient | None = None,
) -> Intake | None:
    """The intake of channel ``defn``, or None when it has no ``inbound:`` section.

    Raises:
        ChannelConfigError: (a ``ValueError``) a secret cannot be read, or the kind has
            no intake; the message names the channel.
    """
    inbound = defn.inbound
    if inbound is None:
        return None
    source = _source(defn, inbound, state_dir, client)
    return Intake(defn.id, [source])


def _source(
    defn: ChannelDef, inbound: InboundDef, state_dir: Path, client: httpx.AsyncClient | None
) -> Source:
    if defn.kind is ChannelKind.MASTODON:
        if defn.endpoint is None or defn.credentials is None:
            raise _error(defn, "a mastodon intake needs the endpoint and credentials")
        try:
            base_url = mastodon_instance(defn.endpoint)
        except ValueError as exc:
            raise _error(defn, str(exc)) from None
        return MastodonPoller(
            defn.id,
            base_url=base_url,
            token=_secret(defn, defn.credentials, "credentials"),
            state_file=state_dir / f"{defn.id}.intake.mastodon.json",
            interval=inbound.poll_interval.total_seconds(),
            since=inbound.since,
            client=client,
        )
    if defn.kind is ChannelKind.EMAIL:
        if inbound.imap is None or inbound.secret is None:
            raise _error(defn, "an email intake needs inbound.imap and inbound.secret")
        return ImapPoller(
            defn.id,
            mailbox=Mailbox.from_url(inbound.imap.url, inbound.imap.user),
            password=_secret(defn, inbound.secret, "inbound.secret"),
            state_file=state_dir / f"{defn.id}.intake.imap.json",
            interval=inbound.poll_interval.total_seconds(),
            since=inbound.since,
        )
    if inbound.listen is None or inbound.secret is None:
        raise _error(defn, "inbound needs listen and secret")
    host, _, port = inbound.listen.rpartition(":")
    memory = SeenMemory(state_dir / f"{defn.id}.intake.seen.jsonl")
    senders = TokenBuckets(inbound.sender_per_minute, inbound.sender_burst)
    addresses = TokenBuckets(inbound.address_per_minute, inbound.address_burst)
    secret = _secret(defn, inbound.secret, "inbound.secret").encode("utf-8")
    if defn.kind is ChannelKind.FACEBOOK:
        if inbound.verify_token is None:
            raise _error(defn, "a facebook intake needs inbound.verify_token")
        return FacebookIntake(
            defn.id,
            host=host,
            port=int(port),
            path=inbound.path,
            app_secret=secret,
            verify_token=_secret(defn, inbound.verify_token, "inbound.verify_token"),
            memory=memory,
            max_body=inbound.max_body,
            sender_limits=senders,
            address_limits=addresses,
        )
    kind = _DEFAULT_KINDS.get(defn.kind)
    if kind is None:
        raise _error(defn, f"a {defn.kind.value} channel has no intake")
    return WebhookIntake(
        defn.id,
        host=host,
        port=int(port),
        path=inbound.path,
        secret=secret,
        memory=memory,
        default_kind=kind,
        max_body=inbound.max_body,
        timestamp_window=inbound.timestamp_window.total_seconds(),
        sender_limits=senders,
        address_limits=addresses,
    )


def _secret(defn: ChannelDef, ref: SecretRef, where: str) -> str:
    try:
        return resolve_secret(ref)
    except SecretError as exc:
        raise _error(defn, f"{where}: {exc}") from None


def _error(defn: ChannelDef, text: str) -> ChannelConfigError:
    return ChannelConfigError(f"channel {defn.id!r} ({defn.kind.value}): {text}")
