"""The channel bridges a console runs itself, and which channels can deliver right now.

By default every channel's bridge runs inside the console (one process for a small
municipality or a drill); with ``bridges_in_process = false`` they run as
``krise bridge CHANNEL`` near the internet and the console only sees their presence.
:meth:`BridgeHost.readiness` tells, per channel, whether a publish there will be
delivered — the console asks before the operator says yes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from krise_tui.bus.broker import BrokerError
from krise_tui.core.policy import STAFF_KIND, MessagePolicy
from krise_tui.core.state import IncidentState
from krise_tui.playbook.models import Org

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from krise_tui.bridge import BridgeRuntime
    from krise_tui.bus.login import Login

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Readiness:
    """Whether a channel can deliver now, and why not."""

    channel: str
    ready: bool
    reason: str = ""
    """Why not (bokmål): no bridge, a missing secret, the bridge is offline…"""
    reason_en: str = ""


class BridgeHost:
    """Starts the in-process bridges and answers which channels can deliver."""

    def __init__(self, org: Org | None, data_dir: Path, *, in_process: bool) -> None:
        self.org = org
        self.data_dir = data_dir
        self.in_process = in_process
        self.bridges: dict[str, BridgeRuntime] = {}
        self.errors: dict[str, str] = {}
        """Channel id -> why its bridge could not start (shown in the console)."""

    async def start(
        self,
        *,
        org_slug: str,
        broker: Login,
        login_for: Callable[[str, str | None], Login],
        public_key: Ed25519PublicKey,
        keepalive: int = 30,
    ) -> None:
        """Run each channel's bridge in this process (the embedded default)."""
        from krise_tui.bridge import BridgeRuntime
        from krise_tui.channels.from_org import channel_from_def
        from krise_tui.intake import intake_from_def

        if self.org is None or not self.in_process:
            return
        state_dir = self.data_dir / "bridges"
        state_dir.mkdir(parents=True, exist_ok=True)
        for defn in self.org.channels:
            if str(defn.kind) == STAFF_KIND:
                continue  # staff terminals are served by the console itself
            try:
                adapter = channel_from_def(
                    defn,
                    state_dir=state_dir,
                    website_url=str(self.org.website),
                    base_dir=self.data_dir,
                )
                intake = intake_from_def(defn, state_dir)
                login = login_for("bridge", defn.id)
            except (ValueError, BrokerError, OSError) as exc:
                self.errors[defn.id] = str(exc)
                log.warning("bridge %s not started: %s", defn.id, exc)
                continue
            bridge = BridgeRuntime(
                host=broker.host,
                port=broker.port,
                org=org_slug,
                channel_id=defn.id,
                channel=adapter,
                username=login.username,
                password=login.password,
                public_keys=(public_key,),
                state_file=state_dir / f"{defn.id}.seq.json",
                keepalive=keepalive,
                protocol=login.protocol,
                intake=intake,
            )
            await bridge.start()
            self.bridges[defn.id] = bridge

    async def stop(self) -> None:
        """Stop every in-process bridge."""
        for bridge in self.bridges.values():
            with contextlib.suppress(Exception):
                await bridge.stop()
        self.bridges.clear()

    def readiness(self, policy: MessagePolicy, state: IncidentState) -> list[Readiness]:
        """Per channel of the playbook: will a publish now be delivered?"""
        out: list[Readiness] = []
        for spec in policy.channels:
            if spec.kind == STAFF_KIND:
                out.append(Readiness(spec.id, True))
                continue
            if spec.id in self.errors:
                why = self.errors[spec.id]
                out.append(
                    Readiness(spec.id, False, f"kan ikke startes: {why}", f"cannot start: {why}")
                )
                continue
            bridge = self.bridges.get(spec.id)
            if bridge is not None:
                if bridge.connected:
                    out.append(Readiness(spec.id, True))
                else:
                    out.append(
                        Readiness(
                            spec.id,
                            False,
                            "broen er ikke tilkoblet megleren (leveres når den kommer tilbake)",
                            "the bridge is not connected (delivered when it is back)",
                        )
                    )
                continue
            online = state.inbound.presence.get(f"bridge/bridge-{spec.id}")
            if online:
                out.append(Readiness(spec.id, True))
            elif self.in_process:
                out.append(
                    Readiness(spec.id, False, "ingen bro for kanalen", "no bridge for the channel")
                )
            else:
                out.append(
                    Readiness(
                        spec.id,
                        False,
                        "broen (krise bridge) er frakoblet – leveres når den kobler til",
                        "the bridge (krise bridge) is offline – delivered when it connects",
                    )
                )
        return out
