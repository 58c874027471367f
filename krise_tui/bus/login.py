"""Where the broker is and as whom to log in (console, staff terminals, bridges).

The configured broker (``[broker]`` in ``krise.toml``) if there is one, else the private
broker a local console started (its ``endpoint.json``). Clients resolve this again before
every connect attempt, so a broker that came back elsewhere is found.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiomqtt import ProtocolVersion

from krise_tui.bus.broker import BrokerError, BrokerKind, read_endpoint
from krise_tui.config import Settings


@dataclass
class BrokerInfo:
    """What the views show about the broker."""

    kind: BrokerKind
    host: str
    port: int
    warning: str = ""

    @property
    def label(self) -> str:
        """E.g. ``mosquitto 127.0.0.1:41234``."""
        return f"{self.kind} {self.host}:{self.port}"


@dataclass
class Login:
    """Resolved broker address and credentials for one participant."""

    host: str
    port: int
    username: str | None
    password: str | None
    kind: BrokerKind

    @property
    def protocol(self) -> ProtocolVersion:
        """MQTT 5 (refusals are visible), except for the embedded amqtt (3.1.1 only)."""
        return ProtocolVersion.V311 if self.kind is BrokerKind.AMQTT else ProtocolVersion.V5


def resolve_login(
    settings: Settings, role: str, member_id: str | None = None, *, for_console: bool = False
) -> Login:
    """Where and as whom to connect: the configured broker, else the local embedded one.

    ``for_console``: a bridge the console runs itself needs a login of its own from
    ``[broker.bridges.ID]`` (a ``krise bridge`` process uses its configured user).
    """
    b = settings.broker
    if b.host:
        if role == "bridge" and member_id is not None and (for_console or member_id in b.bridges):
            bridge = b.bridges.get(member_id)
            if bridge is None:
                raise BrokerError(
                    f"no broker login for the {member_id} bridge: set [broker.bridges.{member_id}]"
                    " (each bridge logs in as its own user), or run `krise bridge "
                    f"{member_id}` with its own configuration"
                )
            return Login(
                b.host,
                b.port,
                bridge.username or f"bridge-{member_id}",
                bridge.secret(),
                BrokerKind.EXTERNAL,
            )
        return Login(b.host, b.port, b.username, b.secret(), BrokerKind.EXTERNAL)
    endpoint = read_endpoint(settings.broker_dir / "endpoint.json")
    user, password = endpoint.login(role, member_id)
    return Login(endpoint.host, endpoint.port, user, password, endpoint.kind)
