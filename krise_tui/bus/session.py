"""One long-lived MQTT session with reconnects (aiomqtt 2.x).

aiomqtt has no reconnect inside one client context, so :class:`BusSession` runs a loop:
a fresh client per attempt with a fixed client id and ``clean_session=False`` (the
broker keeps subscriptions and queues QoS 1 messages while we are away), re-subscribe
on every connect, capped exponential backoff with jitter between attempts, a retained
last-will presence message, and every incoming message handed straight to a handler
(which journals it) before the next is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiomqtt

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes, bool], Awaitable[None]]
"""``(topic, payload, retained)``: must not raise; exceptions are logged and skipped."""


class LinkState(StrEnum):
    """Connection state as shown to people."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


class NotConnectedError(Exception):
    """Publishing needs a live connection; the outbox will retry."""


@dataclass
class SessionConfig:
    """How one participant connects."""

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    subscriptions: list[str] = field(default_factory=list)
    presence_topic: str | None = None
    """Retained ``{"status": "online"|"offline"}``; ``offline`` is also the last will."""
    keepalive: int = 30
    backoff_min: float = 0.2
    backoff_max: float = 10.0
    timeout: float = 10.0


def presence_payload(status: str) -> bytes:
    """The JSON presence body."""
    return json.dumps({"status": status}).encode()


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
}


def connack_code(exc: BaseException) -> int | None:
    """The numeric CONNACK/reason code of an aiomqtt error, if it has one."""
    rc = getattr(exc, "rc", None)
    rc = getattr(rc, "value", rc)  # paho gives a ReasonCode object for CONNACK failures
    return rc if isinstance(rc, int) else None


def describe_error(exc: BaseException) -> str:
    """A short, human reason for a connection failure."""
    code = connack_code(exc)
    if code is not None and code in _RC_REASONS:
        return _RC_REASONS[code]
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "[Errno 111]" in text:
        return "connection refused (is the broker running?)"
    return text


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
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._stopping = False
        self.state = LinkState.CONNECTING
        self.last_error = ""
        self.connects = 0
        self._task: asyncio.Task[None] | None = None

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

    async def run(self) -> None:
        """Connect, consume, reconnect — until :meth:`stop` or cancellation."""
        cfg = self.config
        delay = cfg.backoff_min
        self._task = asyncio.current_task()
        while not self._stopping:
            self._set_state(LinkState.CONNECTING)
            will = (
                aiomqtt.Will(cfg.presence_topic, presence_payload("offline"), qos=1, retain=True)
                if cfg.presence_topic
                else None
            )
            try:
                async with aiomqtt.Client(
                    cfg.host,
                    cfg.port,
                    username=cfg.username,
                    password=cfg.password,
                    identifier=cfg.client_id,
                    clean_session=False,
                    keepalive=cfg.keepalive,
                    will=will,
                    timeout=cfg.timeout,
                ) as client:
                    self._client = client
                    for topic in cfg.subscriptions:
                        await client.subscribe(topic, qos=1)
                    if cfg.presence_topic:
                        await client.publish(
                            cfg.presence_topic, presence_payload("online"), qos=1, retain=True
                        )
                    self.connects += 1
                    delay = cfg.backoff_min
                    self._connected.set()
                    self._set_state(LinkState.CONNECTED)
                    async for message in client.messages:
                        await self._dispatch(message)
                    # The iterator ends only when the connection is gone.
                    raise aiomqtt.MqttError("connection lost")
            except aiomqtt.MqttError as exc:
                reason = describe_error(exc)
                self._connected.clear()
                self._client = None
                if self._stopping:
                    break
                self._set_state(LinkState.DISCONNECTED, reason)
                log.warning("MQTT %s:%s: %s; retrying in %.1f s", cfg.host, cfg.port, reason, delay)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(cfg.backoff_max, delay * 2)
            finally:
                self._connected.clear()
                self._client = None
        self._set_state(LinkState.STOPPED)

    async def _dispatch(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        if isinstance(payload, str):
            raw = payload.encode()
        elif isinstance(payload, bytes | bytearray):
            raw = bytes(payload)
        else:
            raw = b"" if payload is None else str(payload).encode()
        try:
            await self._on_message(str(message.topic), raw, bool(message.retain))
        except Exception:
            log.exception("handler failed for a message on %s", message.topic)

    async def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Publish and, for QoS ≥ 1, return only after the broker's PUBACK."""
        client = self._client
        if client is None or not self._connected.is_set():
            raise NotConnectedError(self.last_error or "not connected to the broker")
        try:
            await client.publish(topic, payload, qos=qos, retain=retain, timeout=timeout)
        except aiomqtt.MqttError as exc:
            raise NotConnectedError(describe_error(exc)) from exc

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
