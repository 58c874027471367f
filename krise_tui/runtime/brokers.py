"""The embedded broker the console starts for a demo or drill room.

:class:`BrokerSupervisor` owns the private broker (a local mosquitto from the project's
config, else amqtt) and publishes its endpoint for the staff terminals and bridges on
the same machine (logins: :mod:`krise_tui.bus.login`).
"""

from __future__ import annotations

import logging

from krise_tui.bus.broker import (
    WEAK_BROKER_WARNING,
    BrokerKind,
    EmbeddedBroker,
    choose_embedded,
)
from krise_tui.bus.login import BrokerInfo, Login, resolve_login
from krise_tui.config import Settings

log = logging.getLogger(__name__)


class BrokerSupervisor:
    """Starts and stops the console's private broker (when none is configured)."""

    def __init__(self, settings: Settings, *, bridges: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.bridges = bridges
        self.broker: EmbeddedBroker | None = None
        self.info: BrokerInfo | None = None

    @property
    def embedded(self) -> bool:
        """Whether this console runs its own broker (a demo or drill room)."""
        return not self.settings.broker.host

    async def start(self) -> Login:
        """Start the private broker if there is no configured one; the console's login."""
        s = self.settings
        if s.broker.host:
            self.info = BrokerInfo(BrokerKind.EXTERNAL, s.broker.host, s.broker.port)
            return resolve_login(s, "console")
        self.broker = choose_embedded(
            s.broker.embedded, s.broker_dir, bridges=self.bridges, org=s.org
        )
        endpoint = await self.broker.start()  # also publishes endpoint.json
        warning = WEAK_BROKER_WARNING if endpoint.kind is BrokerKind.AMQTT else ""
        self.info = BrokerInfo(endpoint.kind, endpoint.host, endpoint.port, warning)
        log.info("broker in use: %s", self.info.label)
        user, password = endpoint.login("console")
        return Login(endpoint.host, endpoint.port, user, password, endpoint.kind)

    def login(self, role: str, member_id: str | None = None) -> Login:
        """A login for a bridge this console runs itself (never the console's own user)."""
        return resolve_login(self.settings, role, member_id, for_console=True)

    async def stop(self) -> None:
        """Stop the private broker and withdraw its endpoint."""
        broker, self.broker = self.broker, None
        if broker is None:
            return
        await broker.stop()  # also withdraws endpoint.json
