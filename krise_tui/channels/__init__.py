"""Channel adapters: carry one approved message version to each outward platform.

The seam is :class:`~krise_tui.channels.base.Channel`; adapters (``website``,
``webhook``, ``mastodon``, ``facebook``, ``email``) register by kind and are built with
:func:`~krise_tui.channels.base.create_channel`. Adapter modules are imported on first
use, so importing this package costs nothing but :mod:`krise_tui.channels.base`.
"""

from __future__ import annotations

from krise_tui.channels.base import (
    ApprovedMessage,
    AttemptOutcome,
    Channel,
    ChannelConfigError,
    DeliveryResult,
    MessageStatus,
    MessageVariant,
    SecretError,
    create_channel,
    idempotency_key,
    register,
    render_text,
    resolve_secret,
    sms_text,
)

__all__ = [
    "ApprovedMessage",
    "AttemptOutcome",
    "Channel",
    "ChannelConfigError",
    "DeliveryResult",
    "MessageStatus",
    "MessageVariant",
    "SecretError",
    "create_channel",
    "idempotency_key",
    "register",
    "render_text",
    "resolve_secret",
    "sms_text",
]
