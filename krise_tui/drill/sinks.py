"""Where a drill's channels end: local sinks, never a real platform.

Every channel of the org file gets, for the drill, a bridge of its own — the real
:class:`~krise_tui.bridge.BridgeRuntime` (MQTT client with the channel's broker user,
signature and replay checks, receipts) — whose adapter is a :class:`SinkChannel`:

- the **website** is the real website adapter writing its pages into the drill's own
  directory (``sinks/<channel>/``), so the exercise's pages can be opened and read;
- every **other channel** records what it would have posted (rendered as that kind of
  platform shows it, ``ØVELSE:`` first) in ``sinks/<channel>.jsonl`` and in memory;
- a scenario may instead point a channel at an endpoint of its own (a local fake
  platform, to exercise the real adapter): that endpoint must be local.

**What "real" means.** A channel would reach a real platform when its deliveries would
go to an endpoint that is not on this machine: a URL (``http``, ``https``, ``smtp``,
``smtps``) whose host is not a loopback address (``127.0.0.0/8``, ``::1``,
``localhost``), any other kind of address, or a website directory outside the drill's
own directory (a web server may publish it). The bus counts too: a console on a
configured (shared) broker may have real bridges (``krise bridge``) listening, and a
channel whose bridge is already online is someone else's. :func:`locality` says why an
endpoint is real; :func:`refusals` lists every reason a drill must not start, and the
player refuses to start while there is one.

A sink can be taken down (``channel_down`` in the timeline): every attempt then fails at
once, permanently, with the scenario's reason, so the console's ledger shows a final
failure the leadership must re-send (bridges in a drill do not retry by themselves:
their backoff runs on the wall clock, which a virtual clock cannot govern).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from krise_tui.bridge import BridgeRuntime, QaPublisher, RetryPolicy
from krise_tui.channels.base import (
    ApprovedMessage,
    Channel,
    DeliveryResult,
    Hider,
    HideRequest,
    Replier,
    ReplyRequest,
    render_text,
    reply_text,
    sms_text,
    version_marker,
)
from krise_tui.channels.from_org import channel_from_def
from krise_tui.channels.website import QaRequest
from krise_tui.clock import Clock
from krise_tui.playbook.models import ChannelDef, ChannelKind, Org
from krise_tui.wire.delivery import Receipt

if TYPE_CHECKING:
    from krise_tui.runtime import ConsoleRuntime

log = logging.getLogger(__name__)

DEFAULT_OUTAGE = "503 Service Unavailable"
"""What a channel that is down answers, unless the scenario says otherwise."""

MASTODON_LIMIT = 500
"""Characters in a Mastodon status (the sink shows what the platform would)."""

_URL_SCHEMES = ("http", "https", "smtp", "smtps")


class DrillRefused(Exception):
    """The drill must not start: something could reach the public. ``reasons`` say what."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("the drill does not start:\n" + "\n".join(f"- {r}" for r in reasons))


def _loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def locality(endpoint: str, *, kind: ChannelKind, base: Path) -> str | None:
    """Why ``endpoint`` would reach a real platform; ``None`` when it is a local sink.

    ``base`` is the drill's own directory: a website directory must be inside it
    (relative paths are taken from it, as the bridge takes them).
    """
    parts = urlsplit(endpoint)
    if parts.scheme:
        if parts.scheme not in _URL_SCHEMES:
            return f"{endpoint!r}: a {parts.scheme}: address is not a local sink"
        try:
            host = parts.hostname or ""
        except ValueError:
            host = ""
        if not _loopback(host):
            return f"{endpoint!r} is not on this machine (only 127.0.0.1, ::1, localhost are)"
        return None
    if kind is not ChannelKind.WEBSITE:
        return f"{endpoint!r} is not a URL of this machine"
    root = base.resolve()
    path = Path(endpoint).expanduser()
    target = (path if path.is_absolute() else root / path).resolve()
    if target != root and root not in target.parents:
        return f"{endpoint!r} is outside the drill's directory {root} (a web server may publish it)"
    return None


def refusals(
    runtime: ConsoleRuntime, *, overrides: dict[str, str] | None = None, base: Path
) -> list[str]:
    """Every reason a drill on ``runtime`` could reach the public (empty: safe to start).

    Checks the broker (a configured one may have real bridges listening), the console's
    in-process bridges (their org-file endpoints), channels whose bridge is already
    online elsewhere, and the scenario's endpoint ``overrides``.
    """
    reasons: list[str] = []
    settings = runtime.settings
    if settings.broker.host and not _loopback(settings.broker.host):
        reasons.append(
            f"the console uses the broker at {settings.broker.host}: bridges there may carry "
            "the drill to real platforms (a drill runs on the console's own private broker)"
        )
    elif settings.broker.host:
        reasons.append(
            f"the console uses a configured broker ({settings.broker.host}:"
            f"{settings.broker.port}), where `krise bridge` processes may deliver to real "
            "platforms (a drill runs on the console's own private broker)"
        )
    org = runtime.org
    for channel_id, endpoint in (overrides or {}).items():
        kind = _kind(org, channel_id)
        why = locality(endpoint, kind=kind, base=base)
        if why is not None:
            reasons.append(f"channel {channel_id}: {why}")
    if org is not None:
        for channel_id in runtime.bridges:
            defn = org.channel(channel_id)
            if defn.endpoint is None:
                continue
            why = locality(defn.endpoint, kind=defn.kind, base=settings.data_dir)
            if why is not None:
                reasons.append(f"channel {channel_id} (a bridge in the console): {why}")
    return reasons


def _kind(org: Org | None, channel_id: str) -> ChannelKind:
    if org is None:
        return ChannelKind.WEBHOOK
    try:
        return org.channel(channel_id).kind
    except KeyError:
        return ChannelKind.WEBHOOK


def remote_id(channel: str, key: str) -> str:
    """A sink's id for what it received: derived from the idempotency key (replays agree)."""
    return f"{channel}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:12]}"


@dataclass
class SinkItem:
    """One thing a sink received: what the platform would have shown, and when."""

    channel: str
    what: str
    """``deliver``, ``reply``, ``hide`` or ``qa``."""
    at: datetime
    """Drill time."""
    text: str
    remote_id: str
    exercise: bool
    ref: str = ""
    """The version id (deliveries), the post replied to or hidden."""

    def to_json(self) -> dict[str, Any]:
        """A JSON line."""
        return {
            "channel": self.channel,
            "what": self.what,
            "at": self.at.isoformat(),
            "text": self.text,
            "remote_id": self.remote_id,
            "exercise": self.exercise,
            "ref": self.ref,
        }


class SinkChannel:
    """A channel adapter that never leaves the machine (see the module docstring).

    ``inner``: a real adapter to delegate to (the website writing into the drill's
    directory, or a scenario's local endpoint); ``None``: record only.
    """

    def __init__(
        self,
        name: str,
        kind: ChannelKind,
        *,
        clock: Clock,
        log_path: Path | None = None,
        inner: Channel | None = None,
    ) -> None:
        self._name = name
        self._kind = kind
        self.clock = clock
        self.inner = inner
        self.log_path = log_path
        self.items: list[SinkItem] = []
        self.down: str | None = None
        """Why the channel's platform fails now (``None``: it works)."""
        self.failures = 0

    @property
    def name(self) -> str:
        """The channel id."""
        return self._name

    @property
    def kind(self) -> str:
        """The org file's kind of the channel (the sink shows what that platform would)."""
        return self._kind.value

    def _outage(self) -> DeliveryResult | None:
        if self.down is None:
            return None
        self.failures += 1
        # Permanent: the bridge gives up at once and says so; the leadership re-sends.
        return DeliveryResult.failed(self.down, permanent=True)

    async def _record(self, item: SinkItem) -> None:
        self.items.append(item)
        if self.log_path is not None:
            line = json.dumps(item.to_json(), ensure_ascii=False) + "\n"
            await asyncio.to_thread(_append, self.log_path, line)

    def render(self, message: ApprovedMessage) -> str:
        """The message as this kind of platform shows it (bokmål)."""
        if self._kind is ChannelKind.SMS:
            return sms_text(message, "nb")
        limit = MASTODON_LIMIT if self._kind is ChannelKind.MASTODON else None
        return render_text(message, "nb", max_chars=limit, marker=version_marker(message))

    async def deliver(
        self,
        message: ApprovedMessage,
        *,
        idempotency_key: str,
        previous_remote_id: str | None = None,
        recheck: bool = False,
    ) -> DeliveryResult:
        """Record (or hand to the local adapter) one approved version."""
        failed = self._outage()
        if failed is not None:
            return failed
        if self.inner is not None:
            result = await self.inner.deliver(
                message,
                idempotency_key=idempotency_key,
                previous_remote_id=previous_remote_id,
                recheck=recheck,
            )
            rid = result.remote_id or ""
        else:
            rid = remote_id(self._name, idempotency_key)
            result = DeliveryResult.delivered(rid)
        if result.ok:
            await self._record(
                SinkItem(
                    self._name,
                    "deliver",
                    self.clock.now(),
                    self.render(message),
                    rid,
                    message.exercise,
                    message.version_id,
                )
            )
        return result

    async def reply(self, request: ReplyRequest, *, recheck: bool = False) -> DeliveryResult:
        """Record (or hand on) one reply to one asker."""
        failed = self._outage()
        if failed is not None:
            return failed
        if self.inner is not None:
            if not isinstance(self.inner, Replier):
                return DeliveryResult.failed(
                    f"the {self.inner.kind} adapter cannot reply", permanent=True
                )
            result = await self.inner.reply(request, recheck=recheck)
            rid = result.remote_id or ""
        else:
            rid = remote_id(self._name, request.idempotency_key)
            result = DeliveryResult.delivered(rid)
        if result.ok:
            await self._record(
                SinkItem(
                    self._name,
                    "reply",
                    self.clock.now(),
                    reply_text(request),
                    rid,
                    request.exercise,
                    request.to.post_id,
                )
            )
        return result

    async def hide(self, request: HideRequest, *, recheck: bool = False) -> DeliveryResult:
        """Record (or hand on) hiding one post."""
        failed = self._outage()
        if failed is not None:
            return failed
        if self.inner is not None:
            if not isinstance(self.inner, Hider):
                return DeliveryResult.failed(
                    f"the {self.inner.kind} adapter cannot hide posts", permanent=True
                )
            result = await self.inner.hide(request, recheck=recheck)
            rid = result.remote_id or ""
        else:
            rid = remote_id(self._name, request.effect_id)
            result = DeliveryResult.delivered(rid)
        if result.ok:
            text = f"skjult: {request.reason}"
            await self._record(
                SinkItem(self._name, "hide", self.clock.now(), text, rid, True, request.post_id)
            )
        return result

    async def publish_qa(self, request: QaRequest, *, recheck: bool = False) -> DeliveryResult:
        """The website's questions-and-answers page (through the website adapter)."""
        failed = self._outage()
        if failed is not None:
            return failed
        if self.inner is None or not isinstance(self.inner, QaPublisher):
            return DeliveryResult.failed(
                f"channel {self._name!r} has no questions-and-answers page", permanent=True
            )
        result = await self.inner.publish_qa(request, recheck=recheck)
        if result.ok:
            entry = request.entry
            await self._record(
                SinkItem(
                    self._name,
                    "qa",
                    self.clock.now(),
                    f"{entry.batch_id}",
                    result.remote_id or "",
                    entry.exercise,
                    entry.batch_id,
                )
            )
        return result


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)


@dataclass
class DrillBridges:
    """The drill's bridges: one real bridge per channel, each ending in a sink."""

    sinks: dict[str, SinkChannel] = field(default_factory=dict)
    bridges: dict[str, BridgeRuntime] = field(default_factory=dict)
    receipts: int = 0
    """Receipts the bridges have made (each is published, then journaled by the console)."""

    async def start(
        self,
        runtime: ConsoleRuntime,
        *,
        clock: Clock,
        directory: Path,
        overrides: dict[str, str] | None = None,
        on_receipt: Callable[[Receipt], object] | None = None,
    ) -> None:
        """Start a bridge for every channel of the org that has none in the console."""
        org = runtime.org
        signer = runtime.signer
        if org is None or signer is None:
            raise RuntimeError("the console runtime is not started (no org file, no key)")
        overrides = overrides or {}
        sinks_dir = directory / "sinks"
        state_dir = directory / "bridges"
        sinks_dir.mkdir(parents=True, exist_ok=True)
        state_dir.mkdir(parents=True, exist_ok=True)

        def counted(receipt: Receipt) -> None:
            self.receipts += 1
            if on_receipt is not None:
                on_receipt(receipt)

        for defn in org.channels:
            if defn.kind is ChannelKind.STAFF or defn.id in runtime.bridges:
                continue  # staff terminals are the console's own; in-process bridges run
            inner = _inner_adapter(defn, overrides, org, sinks_dir, state_dir)
            sink = SinkChannel(
                defn.id,
                defn.kind,
                clock=clock,
                log_path=sinks_dir / f"{defn.id}.jsonl",
                inner=inner,
            )

            def login(channel: str = defn.id) -> Any:
                return runtime.brokers.login("bridge", channel)

            first = login()
            bridge = BridgeRuntime(
                host=first.host,
                port=first.port,
                org=runtime.settings.org,
                channel_id=defn.id,
                channel=sink,
                username=first.username,
                password=first.password,
                public_keys=(signer.public_key,),
                state_file=state_dir / f"{defn.id}.seq.json",
                policy=RetryPolicy(max_attempts=1),
                protocol=first.protocol,
                resolve=login,
                on_receipt=counted,
                clock=clock,
            )
            await bridge.start()
            self.sinks[defn.id] = sink
            self.bridges[defn.id] = bridge

    async def wait_connected(self, timeout: float = 20.0) -> None:
        """Wait until every bridge is connected."""
        for bridge in self.bridges.values():
            await bridge.wait_connected(timeout)

    def idle(self) -> bool:
        """No bridge has a delivery in progress."""
        return not any(b.in_flight for b in self.bridges.values())

    @property
    def published(self) -> int:
        """Receipts the broker has taken from the bridges."""
        return sum(b.published + b.refused_receipts for b in self.bridges.values())

    def set_down(self, channel: str, reason: str | None) -> None:
        """Take a channel's platform down (``reason``) or bring it back (``None``)."""
        sink = self.sinks.get(channel)
        if sink is None:
            raise KeyError(f"no drill sink for channel {channel!r}")
        sink.down = reason

    async def stop(self) -> None:
        """Stop every bridge."""
        for bridge in self.bridges.values():
            try:
                await bridge.stop()
            except Exception:  # stopping the rest matters more than one bridge's error
                log.exception("stopping the drill bridge %s failed", bridge.channel_id)
        self.bridges.clear()


def _inner_adapter(
    defn: ChannelDef, overrides: dict[str, str], org: Org, sinks_dir: Path, state_dir: Path
) -> Channel | None:
    """The real adapter a sink hands to: the website into the drill's directory, or a
    scenario's local endpoint; ``None`` for a recording-only sink."""
    endpoint = overrides.get(defn.id)
    if endpoint is None and defn.kind is not ChannelKind.WEBSITE:
        return None
    if endpoint is None:
        endpoint = str(sinks_dir / defn.id)
        options: dict[str, Any] = {}
        credentials = None
    else:
        options = dict(defn.options)
        credentials = defn.credentials
    update: dict[str, Any] = {"endpoint": endpoint, "options": options, "credentials": credentials}
    if "exercise" in ChannelDef.model_fields:
        update["exercise"] = True  # the endpoint is the drill's own: exercise replies may go
    local = defn.model_copy(update=update)
    return channel_from_def(local, state_dir=state_dir, website_url=str(org.website))
