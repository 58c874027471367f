"""What every screen of the console shares: the runtime, the language, the header.

The status line (incident, T+ time, broker, freeze) and the banner (what needs
attention) never scroll away: every view composes them above its body. Views redraw
from the runtime's state when the app says something changed; updates are coalesced by
the app, so a storm of posts does not redraw per post.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static
from textual.worker import Worker

from krise_tui.console.i18n import Tr, translate_bindings

if TYPE_CHECKING:
    from krise_tui.console.app import ConsoleApp
    from krise_tui.runtime import ConsoleRuntime


class Localised:
    """Mixin: the app's runtime and language, and bindings in that language."""

    app: Any

    @property
    def rt(self) -> ConsoleRuntime:
        """The console's runtime."""
        return self.app.runtime

    @property
    def tr(self) -> Tr:
        """Texts in the console's language."""
        return self.app.tr

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker's state reaches only the node that runs it (the message does not
        bubble): a screen's failed action (an approval when the disk is full) vanished
        without a word. Hand it to the app, the one place that shows failures."""
        self.app.on_worker_state_changed(event)


class ViewScreen(Localised, Screen[None]):
    """A top-level view: status line, banner, the view's body, footer."""

    VIEW = ""
    """The mode name (``overview``, ``messages``…)."""

    def __init__(self) -> None:
        super().__init__()
        self._translated = False
        self._drawn_key: object = None

    def on_mount(self) -> None:
        if not self._translated:
            translate_bindings(self, self.tr.lang)
            self._translated = True
        self.refresh_view()

    def compose(self) -> ComposeResult:
        yield Static("", classes="status", markup=False)
        yield Static("", classes="banner", markup=False)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The view's own widgets."""
        yield from ()

    def refresh_view(self) -> None:
        """Redraw from the state (called by the app, coalesced)."""
        app: ConsoleApp = self.app
        for status in self.query(".status"):
            if isinstance(status, Static):
                status.update(app.status_line(self.size.width or 80))
        for banner in self.query(".banner"):
            if isinstance(banner, Static):
                text = app.banner_text()
                banner.update(text)
                banner.display = bool(text)
        key = self.body_key()
        if key is not None and key == self._drawn_key:
            return  # nothing the body shows has changed: a big table is not rebuilt
        self._drawn_key = key
        self.refresh_body()

    def body_key(self) -> object:
        """What the body depends on: it is redrawn only when this changes (None: always).

        By default the journal's length and the minute (countdowns move by minutes)."""
        rt = self.rt
        return (rt.state.event_count, rt.clock.now().replace(second=0, microsecond=0), self.size)

    def redraw(self) -> None:
        """Redraw the body now (after the view's own settings changed)."""
        self._drawn_key = None
        self.refresh_body()

    def refresh_body(self) -> None:
        """Redraw the view's own widgets."""


class Dialog(Localised, ModalScreen[Any]):
    """A dialog: its bindings in the console's language; focus on its first field."""

    def on_mount(self) -> None:
        translate_bindings(self, self.tr.lang)
