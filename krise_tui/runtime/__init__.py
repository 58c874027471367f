"""The runtimes behind the console: the headless services the Textual app talks to.

See :mod:`krise_tui.runtime.console` for how :class:`ConsoleRuntime` is composed.
"""

from __future__ import annotations

from krise_tui.bus.login import BrokerInfo, Login, resolve_login
from krise_tui.runtime.console import ConsoleRuntime, ensure_signer, roster_from_org, source_for

__all__ = [
    "BrokerInfo",
    "ConsoleRuntime",
    "Login",
    "ensure_signer",
    "resolve_login",
    "roster_from_org",
    "source_for",
]
