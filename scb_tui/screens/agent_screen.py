"""What every screen backed by the agent shares.

The chrome (navigation bar, agent-down banner, footer), the live feed, and
the one route from a failed worker to the operator:
`ConsoleApp.report_failure`.
"""

from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from ..chrome import AgentBanner, NavBar

RELOAD_DELAY = 0.3


class AgentScreen(Screen):
    """A screen that loads from the agent and follows its event feed."""

    SECTION = ""
    _reload_timer = None
    _stale = False  # changed while hidden: reload when shown again
    _width = 0

    def compose(self) -> ComposeResult:
        yield NavBar(self.SECTION)
        yield AgentBanner()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets, between the chrome."""
        yield from ()

    def on_mount(self) -> None:
        self._width = self.app.size.width
        self.fit(self._width)
        self.app.agent_events.subscribe(self, self._on_agent_event)
        self.reload()

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self.fit(self._width)

    def fit(self, width: int) -> None:
        """Lay the screen out for a terminal `width` columns wide."""

    def _on_agent_event(self, event: dict) -> None:
        if event["event"] != "connected":
            self.agent_event(event)
        elif self.is_current:
            self.reload()
        else:
            self._stale = True

    def on_screen_resume(self) -> None:
        if self._stale:
            self._stale = False
            self.reload()

    def reload(self) -> None:
        """Ask the agent for everything this screen shows."""

    def reload_soon(self) -> None:
        """Reload once for a burst of events, not once per event.

        A screen the operator has left (its mode or one below another) keeps
        its subscription but asks the agent nothing until it is shown again.
        """
        if not self.is_current:
            self._stale = True
        elif self._reload_timer is None:
            self._reload_timer = self.set_timer(RELOAD_DELAY, self._reload_now)

    def _reload_now(self) -> None:
        self._reload_timer = None
        self.reload()

    def agent_event(self, event: dict) -> None:
        """Follow one change the agent pushed."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.app.report_failure(event.worker.error)
