"""Intake: posts from the public, taken in by a channel's bridge and put on the bus.

A bridge carries approved messages out; its intake brings questions, comments, mentions
and SMS in (issue 11.1). Each post becomes an
:class:`~krise_tui.wire.inbound.InboundPost` that the bridge publishes on
``krise/v1/{org}/channel/{ch}/in`` (QoS 1); the console journals it, de-duplicates it by
(channel, post id) and masks ID numbers.

- :mod:`~krise_tui.intake.webhook`: a signed webhook (SMS gateway callback, the
  website's question form) — HMAC-SHA256 over timestamp and body, replays refused,
  bounded bodies, rate limits per sender and address;
- :mod:`~krise_tui.intake.facebook`: the Facebook page webhook (comments, Messenger);
- :mod:`~krise_tui.intake.mastodon`: mentions polled from the notifications API;
- :mod:`~krise_tui.intake.service`: the supervisor that restarts a dead source (logged
  at ERROR) and the aiohttp server the webhooks share;
- :mod:`~krise_tui.intake.from_org`: the intake of an org file's channel (``inbound:``).

The intake knows nothing of the console, the journal or the core: it hands posts to the
sink its bridge gives it (:meth:`krise_tui.bridge.BridgeRuntime.publish_inbound`).
"""

from __future__ import annotations

from krise_tui.intake.from_org import intake_from_def
from krise_tui.intake.service import InboundSink, Intake, Source

__all__ = ["InboundSink", "Intake", "Source", "intake_from_def"]
