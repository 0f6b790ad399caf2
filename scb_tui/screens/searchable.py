"""A table screen with a search box that asks the agent once typing pauses."""

from textual.widgets import DataTable, Input

from .agent_screen import AgentScreen

SEARCH_PAUSE = 0.25  # seconds without a key press before the agent is asked


class SearchableScreen(AgentScreen):
    """Typing searches after SEARCH_PAUSE, Enter at once, Escape back to the table.

    Subclasses name their widgets and say what a new search shows.
    """

    SEARCH_BOX = ""  # the Input's id
    TABLE = ""  # the DataTable's id
    search = ""
    _search_timer = None

    def focus_search(self) -> None:
        self.query_one(f"#{self.SEARCH_BOX}", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(SEARCH_PAUSE, self._search_now)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._search_now()
        self.query_one(f"#{self.TABLE}", DataTable).focus()

    def key_escape(self) -> None:
        self.query_one(f"#{self.TABLE}", DataTable).focus()

    def _search_now(self) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
            self._search_timer = None
        self.search = self.query_one(f"#{self.SEARCH_BOX}", Input).value.strip()
        self.searched()

    def searched(self) -> None:
        """Show what matches the new `search`."""
