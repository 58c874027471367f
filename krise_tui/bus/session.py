"""One long-lived MQTT 5 session with reconnects (aiomqtt 2.x), and its failures made visible.

aiomqtt has no reconnect inside one client context, so :class:`BusSession` runs a loop:
a fresh client per attempt, ``clean_start=False`` with a session expiry (the broker
keeps subscriptions and queues QoS 1 messages while we are away), re-subscribe on every
connect, capped exponential backoff with jitter between attempts, a retained last-will
presence message, and every incoming message handed straight to a handler (which
journals it) before the next is read.

MQTT 5 because the broker says no there: a publish the ACL denies gets a PUBACK with
reason 0x87 (under 3.1.1 it gets a plain PUBACK and is dropped), so :meth:`publish`
raises :class:`PublishRefusedError`; a refused subscription raises
:class:`SubscribeRefusedError` and fails the connect attempt. aiomqtt 2.5 drops the
PUBACK reason code that paho 2 passes to its ``on_publish`` callback, so
:class:`_Client` keeps it (a subclass tied to aiomqtt 2.x internals: ``_client``,
``_on_publish``, ``_disconnected``; ``tests/test_session_mqtt5.py`` breaks if they go).

Identity: with a user name, the client id sent is the user name. The shipped mosquitto
config (``use_username_as_clientid``) makes it so anyway, which means a client's
session *is* its user's: two processes logged in as one user take the session from
each other, over and over, so every krise process needs a user of its own. (mosquitto
2.0.11 just closes the older connection; brokers that send DISCONNECT 0x8E get it shown
as "session taken over".)

Where: ``SessionConfig.resolve`` (optional) is called before every connect attempt and
returns host, port and credentials, so a client re-reads a local broker's
``endpoint.json`` when the broker comes back on another port or with new passwords.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import aiomqtt
import paho.mqtt.client as mqtt
from aiomqtt import ProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes, bool], Awaitable[None]]
"""``(topic, payload, retained)``: must not raise; exceptions are logged and skipped."""

SESSION_EXPIRY = 14 * 24 * 3600
"""Seconds the broker keeps an offline client's session (and its queued messages): as
long as mosquitto.conf's ``persistent_client_expiration`` keeps 3.1.1 sessions."""


class LinkState(StrEnum):
    """Connection state as shown to people."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


class BusError(Exception):
    """Something on the bus did not happen."""


class NotConnectedError(BusError):
    """Publishing needs a live connection; the outbox will retry."""


class PublishRefusedError(BusError):
    """The broker refused a publish (MQTT 5 PUBACK reason ≥ 0x80, e.g. 0x87 Not authorized).

    Retrying does not help until the broker's ACL or limits change: show it to people.
    """

    def __init__(self, topic: str, reason_code: int, reason: str) -> None:
        super().__init__(f"broker refused publish to {topic}: {reason} (0x{reason_code:02X})")
        self.topic = topic
        self.reason_code = reason_code
        self.reason = reason


class SubscribeRefusedError(BusError):
    """The broker refused a subscription (SUBACK reason ≥ 0x80)."""

    def __init__(self, topic: str, reason_code: int, reason: str) -> None:
        super().__init__(f"broker refused subscription to {topic}: {reason} (0x{reason_code:02X})")
        self.topic = topic
        self.reason_code = reason_code
        self.reason = reason


class BrokerAddress(Protocol):
    """Where and as whom to connect (e.g. ``runtime.Login``, ``broker.LocalLogin``)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def username(self) -> str | None: ...

    @property
    def password(self) -> str | None: ...


@dataclass
class SessionConfig:
    """How one participant connects."""

    host: str
    port: int
    client_id: str
    """Sent only when there is no user name (anonymous brokers): with one, the client
    id is the user name (see the module docstring)."""
    username: str | None = None
    password: str | None = None
    subscriptions: list[str] = field(default_factory=list)
    presence_topic: str | None = None
    """Retained ``{"status": "online"|"offline"}``; ``offline`` is also the last will."""
    keepalive: int = 30
    backoff_min: float = 0.2
    backoff_max: float = 10.0
    timeout: float = 10.0
    resolve: Callable[[], BrokerAddress] | None = None
    """Called before every connect attempt for host, port, user name and password
    (instead of the fields above); an exception counts as a failed attempt."""
    session_expiry: int = SESSION_EXPIRY
    """MQTT 5 session expiry interval in seconds (how long queued messages wait)."""
    protocol: ProtocolVersion = ProtocolVersion.V5
    """MQTT 5 so that refusals are visible. The embedded amqtt 0.12 speaks only 3.1.1
    and does not even refuse an MQTT 5 CONNECT (it waits for bytes that never come):
    pass ``ProtocolVersion.V311`` for a ``BrokerKind.AMQTT`` endpoint."""
    allow_v311: bool = True
    """When the broker refuses MQTT 5 in its CONNACK (an old broker), continue with
    3.1.1 and log it: the broker then drops a refused publish without saying so."""
    manual_ack: bool = False
    """PUBACK an incoming QoS 1 message only when it is safe, not on receipt: after the
    handler returns, or later if the handler takes the acknowledgement with
    :meth:`BusSession.defer_ack` (the console acks once the message is journaled, so a
    crash in between means the broker sends it again, never that it is lost)."""


def presence_payload(status: str, trouble: dict[str, str] | None = None) -> bytes:
    """The JSON presence body (``trouble``: what is wrong with a bridge's intake now)."""
    body: dict[str, object] = {"status": status}
    if trouble:
        body["trouble"] = trouble
    return json.dumps(body, ensure_ascii=False).encode()


_RC_REASONS = {
    # MQTT 3.1.1 CONNACK codes, and the MQTT 5 codes paho maps them to.
    1: "unacceptable protocol version",
    2: "client id rejected",
    3: "broker unavailable",
    4: "bad user name or password",
    5: "not authorised (check user name, password and ACL)",
    132: "unacceptable protocol version",
    133: "client id rejected",
    134: "bad user name or password",
    135: "not authorised (check user name, password and ACL)",
    136: "broker unavailable",
    # MQTT 5 only (CONNACK and the broker's DISCONNECT).
    137: "broker busy",
    138: "banned by the broker",
    139: "broker shutting down",
    141: "keep-alive timeout",
    142: "session taken over: another connection logged in as this user",
    151: "quota exceeded",
    156: "broker says: use another server",
    157: "broker moved",
}
_PROTOCOL_REFUSED = {1, 132}


def connack_code(exc: BaseException | None) -> int | None:
    """The numeric CONNACK/reason code of an aiomqtt error (or what caused it), if any."""
    while exc is not None:
        rc = getattr(exc, "rc", None)
        rc = getattr(rc, "value", rc)  # paho gives a ReasonCode object for MQTT 5 codes
        if isinstance(rc, int) and rc != 0:
            return rc
        exc = exc.__cause__
    return None


def describe_error(exc: BaseException) -> str:
    """A short, human reason for a connection failure."""
    code = connack_code(exc)
    if code is not None and code in _RC_REASONS:
        return _RC_REASONS[code]
    if isinstance(exc, BusError):
        return str(exc)
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "[Errno 111]" in text:
        return "connection refused (is the broker running?)"
    return text


def _code(value: int | ReasonCode) -> tuple[int, str]:
    if isinstance(value, ReasonCode):
        return int(value.value), value.getName()
    return int(value), "failure" if value >= 0x80 else f"granted QoS {value}"


def check_suback(
    subscriptions: Sequence[str], codes: Sequence[int | ReasonCode], *, qos: int = 1
) -> None:
    """Raise :class:`SubscribeRefusedError` for the first refused subscription.

    ``codes`` is what aiomqtt's ``subscribe`` returns (one per topic; MQTT 5 reason
    codes, or 3.1.1 granted QoS with 0x80 for failure). A lower QoS than asked for is
    logged: QoS 0 means nothing is queued while the client is away.
    """
    if len(codes) != len(subscriptions):
        raise SubscribeRefusedError(", ".join(subscriptions), 0x80, "malformed SUBACK")
    for topic, raw in zip(subscriptions, codes, strict=True):
        value, name = _code(raw)
        if value >= 0x80:
            raise SubscribeRefusedError(topic, value, name)
        if value < qos:
            log.warning("broker granted QoS %s (asked %s) for %s", value, qos, topic)


class _Client(aiomqtt.Client):
    """aiomqtt's client, plus :meth:`publish_acked`: the PUBACK's reason code."""

    def __init__(self, *args: Any, manual_ack: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acks: dict[int, asyncio.Future[ReasonCode]] = {}
        # Before connecting: a resumed session's queued messages arrive right after the
        # CONNACK, and paho would PUBACK them on receipt.
        self._client.manual_ack_set(manual_ack)

    def ack_message(self, mid: int, qos: int) -> None:
        """PUBACK one received message (manual acknowledgement)."""
        self._client.ack(mid, qos)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        # paho calls this from loop_read, which aiomqtt runs on the event loop's thread.
        fut = self._acks.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(reason_code)
        super()._on_publish(client, userdata, mid, reason_code, properties)

    async def publish_acked(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int,
        retain: bool,
        timeout: float | None = None,
    ) -> ReasonCode | None:
        """Publish; for QoS ≥ 1 return the broker's reason code once it acknowledges.

        Raises ``aiomqtt.MqttError`` when the message cannot be sent, the connection
        drops before the acknowledgement, or ``timeout`` passes.
        """
        info = self._client.publish(topic, payload, qos, retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
        if qos == 0:
            return None
        # Registered before the loop runs again, so before paho can read the PUBACK.
        fut: asyncio.Future[ReasonCode] = asyncio.get_running_loop().create_future()
        self._acks[info.mid] = fut
        try:
            waiting: set[asyncio.Future[Any]] = {fut, self._disconnected}
            done, _ = await asyncio.wait(
                waiting,
                timeout=self.timeout if timeout is None else timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if fut in done:
                return fut.result()
            if done:  # fail now rather than wait out the timeout for a dead connection
                raise aiomqtt.MqttError("connection lost before the PUBACK")
            raise aiomqtt.MqttError("Operation timed out")
        finally:
            self._acks.pop(info.mid, None)


async def cancel_and_wait(
    *tasks: asyncio.Task[Any], tries: int = 40, interval: float = 0.25
) -> None:
    """Cancel ``tasks`` and wait until they have really ended.

    A single ``cancel()`` is not enough on Python 3.11: a cancellation that lands just
    as an inner ``asyncio.wait_for`` completes (aiomqtt's publish, subscribe, connect)
    is swallowed and the task carries on. So cancel again until each task is done.
    """
    current = asyncio.current_task()
    pending = {t for t in tasks if t is not current and not t.done()}
    for _ in range(tries):
        if not pending:
            break
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=interval)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.debug("task %s ended with %r", task.get_name(), task.exception())
    if pending:
        log.error("tasks did not stop: %s", ", ".join(t.get_name() for t in pending))


class BusSession:
    """Keeps one MQTT connection alive and feeds incoming messages to a handler."""

    def __init__(
        self,
        config: SessionConfig,
        on_message: MessageHandler,
        *,
        on_state: Callable[[LinkState, str], None] | None = None,
    ) -> None:
        self.config = config
        self._on_message = on_message
        self._on_state = on_state
        self._client: _Client | None = None
        self._pending_ack: Callable[[], None] | None = None
        self._connected = asyncio.Event()
        self._stopping = False
        self.state = LinkState.CONNECTING
        self.last_error = ""
        self.connects = 0
        self.host = config.host
        """Where the current (or latest) attempt went: ``resolve`` may change it."""
        self.port = config.port
        self.username = config.username
        self.protocol = config.protocol
        """The protocol in use: 3.1.1 after a fallback (see ``allow_v311``)."""
        self._task: asyncio.Task[None] | None = None
        self._trouble: dict[str, str] = {}

    def _set_state(self, state: LinkState, detail: str = "") -> None:
        self.state = state
        if detail:
            self.last_error = detail
        if self._on_state is not None:
            try:
                self._on_state(state, detail)
            except Exception:  # a view's callback must never take the session down
                log.exception("state callback failed")

    @property
    def connected(self) -> bool:
        """Whether a connection is up right now."""
        return self._connected.is_set()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait for a live connection (raises ``TimeoutError``)."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    def _target(self) -> BrokerAddress:
        cfg = self.config
        if cfg.resolve is None:
            return cfg
        try:
            return cfg.resolve()
        except Exception as exc:  # the caller's lookup: any failure is a failed attempt
            raise BusError(f"cannot find the broker: {exc}") from exc

    def _new_client(self, target: BrokerAddress) -> _Client:
        cfg = self.config
        will = (
            aiomqtt.Will(cfg.presence_topic, presence_payload("offline"), qos=1, retain=True)
            if cfg.presence_topic
            else None
        )
        common: dict[str, Any] = {
            "username": target.username,
            "password": target.password,
            # The broker binds client ids to user names; send the same so that every
            # broker, bound or not, sees one identity per user.
            "identifier": target.username or cfg.client_id,
            "keepalive": cfg.keepalive,
            "will": will,
            "timeout": cfg.timeout,
            "manual_ack": cfg.manual_ack,
        }
        if self.protocol is ProtocolVersion.V5:
            connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            connect.SessionExpiryInterval = cfg.session_expiry
            # clean_start=False on *every* attempt: aiomqtt's default (clean on the
            # first connect of a client object) would drop the session each time, as
            # every attempt uses a fresh client.
            return _Client(
                target.host,
                target.port,
                protocol=ProtocolVersion.V5,
                clean_start=False,
                properties=connect,
                **common,
            )
        return _Client(
            target.host, target.port, protocol=self.protocol, clean_session=False, **common
        )

    async def run(self) -> None:
        """Connect, consume, reconnect — until :meth:`stop` or cancellation."""
        cfg = self.config
        delay = cfg.backoff_min
        self._task = asyncio.current_task()
        while not self._stopping:
            self._set_state(LinkState.CONNECTING)
            try:
                target = self._target()
                self.host, self.port, self.username = target.host, target.port, target.username
                async with self._new_client(target) as client:
                    self._client = client
                    await self._set_up(client)
                    self.connects += 1
                    delay = cfg.backoff_min
                    self._connected.set()
                    self._set_state(LinkState.CONNECTED)
                    async for message in client.messages:
                        await self._dispatch(message)
                    # The iterator ends only when the connection is gone.
                    raise aiomqtt.MqttError("connection lost")
            except (aiomqtt.MqttError, BusError) as exc:
                self._connected.clear()
                self._client = None
                if self._stopping:
                    break
                if self._fall_back(exc):
                    continue
                reason = describe_error(exc)
                self._set_state(LinkState.DISCONNECTED, reason)
                log.warning(
                    "MQTT %s:%s: %s; retrying in %.1f s", self.host, self.port, reason, delay
                )
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(cfg.backoff_max, delay * 2)
            finally:
                self._connected.clear()
                self._client = None
        self._set_state(LinkState.STOPPED)

    def _fall_back(self, exc: BaseException) -> bool:
        """Switch to 3.1.1 when the broker refused MQTT 5 (and that is allowed)."""
        if (
            self.protocol is ProtocolVersion.V5
            and self.config.allow_v311
            and connack_code(exc) in _PROTOCOL_REFUSED
        ):
            self.protocol = ProtocolVersion.V311
            log.warning(
                "MQTT %s:%s does not speak MQTT 5: using 3.1.1, where the broker drops a"
                " refused publish without saying so",
                self.host,
                self.port,
            )
            return True
        return False

    async def _set_up(self, client: _Client) -> None:
        """Subscribe and say online; a refusal fails the attempt, visibly."""
        cfg = self.config
        if cfg.subscriptions:
            wanted = [(topic, 1) for topic in cfg.subscriptions]
            codes = await client.subscribe(wanted)
            check_suback(cfg.subscriptions, codes, qos=1)
        if cfg.presence_topic:
            said: dict[str, str] | None = None
            # Until what is said is what is wrong now: set_trouble() while this publish
            # waits for its PUBACK only stores (not connected yet), so say it here again.
            while said != self._trouble:
                said = dict(self._trouble)
                code = await client.publish_acked(
                    cfg.presence_topic, presence_payload("online", said), qos=1, retain=True
                )
                _raise_if_refused(cfg.presence_topic, code)

    async def _dispatch(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        if isinstance(payload, str):
            raw = payload.encode()
        elif isinstance(payload, bytes | bytearray):
            raw = bytes(payload)
        else:
            raw = b"" if payload is None else str(payload).encode()
        ack = self._acker(message) if self.config.manual_ack else None
        self._pending_ack = ack
        try:
            await self._on_message(str(message.topic), raw, bool(message.retain))
        except Exception:
            log.exception("handler failed for a message on %s", message.topic)
        finally:
            if self._pending_ack is not None:  # the handler did not take it: done now
                self._pending_ack()
            self._pending_ack = None

    def _acker(self, message: aiomqtt.Message) -> Callable[[], None]:
        """The PUBACK of ``message``, for the connection it came on (a message that
        arrived on an earlier connection is not acknowledged on a later one: the broker
        sends it again on the new one, and the journal counts it once)."""
        client, mid, qos = self._client, message.mid, int(message.qos)

        def ack() -> None:
            if qos > 0 and client is not None and client is self._client:
                client.ack_message(mid, qos)

        return ack

    def defer_ack(self) -> Callable[[], None] | None:
        """Called by a handler: take the current message's acknowledgement, to call when
        the message is safe (None when the session acknowledges on receipt)."""
        ack, self._pending_ack = self._pending_ack, None
        return ack

    async def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Publish and, for QoS ≥ 1, return only after the broker's PUBACK.

        Raises :class:`NotConnectedError` when there is no connection or it is lost
        before the PUBACK (retry later), :class:`PublishRefusedError` when the broker
        acknowledged with a failure reason (MQTT 5; retrying will not help).
        """
        client = self._client
        if client is None or not self._connected.is_set():
            raise NotConnectedError(self.last_error or "not connected to the broker")
        try:
            code = await client.publish_acked(
                topic, payload, qos=qos, retain=retain, timeout=timeout
            )
        except aiomqtt.MqttError as exc:
            raise NotConnectedError(describe_error(exc)) from exc
        _raise_if_refused(topic, code)

    async def set_trouble(self, trouble: dict[str, str]) -> None:
        """Say what is wrong now (empty: nothing) in the retained online presence: at
        once when connected, else with the next connection's presence. Raises like
        :meth:`publish` (the new trouble is kept and said at the next connect anyway)."""
        self._trouble = dict(trouble)
        topic = self.config.presence_topic
        if topic is None or not self._connected.is_set():
            return
        await self.publish(topic, presence_payload("online", self._trouble), retain=True)

    async def stop(self) -> None:
        """Say offline (cleanly) and end the loop."""
        self._stopping = True
        client = self._client
        if client is not None and self.config.presence_topic and self._connected.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    client.publish(
                        self.config.presence_topic,
                        presence_payload("offline"),
                        qos=1,
                        retain=True,
                    ),
                    2,
                )
        self._connected.clear()
        if self._task is not None:
            await cancel_and_wait(self._task)


def _raise_if_refused(topic: str, code: ReasonCode | None) -> None:
    if code is not None and code.is_failure:
        raise PublishRefusedError(topic, int(code.value), code.getName())
