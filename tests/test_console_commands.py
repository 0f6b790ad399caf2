"""The console's keys: every action in the palette, remappable ids, ? and q;
and a stuck agent call never holds them up."""

import asyncio

from textual.binding import Binding

from scb_tui.app import ConsoleApp
from scb_tui.chrome import SECTIONS
from scb_tui.screens.agent_screen import RELOAD_DELAY
from scb_tui.screens.ban_form import BanForm
from scb_tui.screens.certificate_detail import CertificateDetailScreen
from scb_tui.screens.confirm import ConfirmScreen
from scb_tui.screens.help import HelpScreen
from scb_tui.screens.prompt import PromptScreen
from scb_tui.screens.revoke import RevokeScreen

from .console_fake import LEAF_SERIAL, T0, FakeAgentLink

EVERY_SCREEN = [
    *ConsoleApp.MODES.values(),
    CertificateDetailScreen,
    BanForm,
    ConfirmScreen,
    HelpScreen,
    PromptScreen,
    RevokeScreen,
]


def palette_titles(app: ConsoleApp) -> list[str]:
    return [command.title for command in app.get_system_commands(app.screen)]


def test_every_binding_has_an_id_to_remap_it_by():
    bindings = [*ConsoleApp.BINDINGS]
    for screen in EVERY_SCREEN:
        bindings += screen.BINDINGS
    ids = [binding.id for binding in bindings if isinstance(binding, Binding)]

    assert len(ids) == len(bindings) and all(ids)
    assert len(set(ids)) == len(ids), "two bindings share an id"


async def test_palette_lists_every_action_of_every_section():
    app = ConsoleApp(FakeAgentLink())
    async with app.run_test(size=(120, 40)):
        titles = palette_titles(app)

    for _, _, title in SECTIONS:
        assert f"Go to {title}" in titles
    for screen in ConsoleApp.MODES.values():
        for binding in screen.BINDINGS:
            assert f"{screen.SUB_TITLE}: {binding.description}" in titles
    assert "Help" in titles and "Quit" in titles


async def test_palette_on_a_certificate_offers_its_own_actions():
    app = ConsoleApp(FakeAgentLink())
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(CertificateDetailScreen(LEAF_SERIAL))
        await pilot.pause()
        titles = palette_titles(app)

    assert "Certificate: Revoke" in titles
    assert "Certificate: Copy PEM" in titles


async def test_question_mark_opens_help_and_escape_closes_it():
    app = ConsoleApp(FakeAgentLink())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")  # go to Requests
        await pilot.press("question_mark")  # open help
        assert isinstance(app.screen, HelpScreen)

        await pilot.press("escape")  # close it
        assert not isinstance(app.screen, HelpScreen)


async def test_q_quits():
    app = ConsoleApp(FakeAgentLink())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0
        assert not app.is_running


class StuckAgentLink(FakeAgentLink):
    """Answers `status` and the feed, but never a certificates listing."""

    def __init__(self):
        super().__init__()
        self.asked = asyncio.Event()

    async def call(self, name: str, **args):
        if name == "certificates":
            self.asked.set()
            await asyncio.Event().wait()  # an agent stuck on a huge listing
        return await super().call(name, **args)


async def test_a_stuck_agent_call_never_freezes_the_console():
    link = StuckAgentLink()
    app = ConsoleApp(link)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")  # go to Certificates: its listing never comes
        await asyncio.wait_for(link.asked.wait(), 10)

        await pilot.press("4")  # the keys still work: go to Bans
        await pilot.pause()
        assert app.screen.SECTION == "bans"
        assert app.screen.query_one("#bans").row_count == len(link._bans())


class LiveAgentLink(FakeAgentLink):
    """A fake agent whose events the test pushes while the console runs."""

    def __init__(self):
        super().__init__(events=[])
        self.pushed: asyncio.Queue = asyncio.Queue()

    async def feed(self):
        yield {"event": "connected"}
        while True:
            yield await self.pushed.get()


async def test_a_section_left_behind_asks_the_agent_nothing_until_shown_again():
    link = LiveAgentLink()
    app = ConsoleApp(link)
    async with app.run_test(size=(110, 30)) as pilot:
        await pilot.press("3")  # Certificates loads, then stays subscribed
        await pilot.pause()
        await pilot.press("5")  # Audit is shown now
        await pilot.pause()
        link.calls.clear()

        issued = {"event": "issued", "at": T0, "request_id": "r1",
                  "serial": "0A", "names": ["a.home.arpa"]}  # fmt: skip
        await link.pushed.put(issued)
        await asyncio.sleep(RELOAD_DELAY * 3)
        await pilot.pause()
        while_hidden = [name for name, _ in link.calls]

        await pilot.press("3")
        await pilot.pause()
        once_shown = [name for name, _ in link.calls]

    assert "audit" in while_hidden  # the section on screen follows the feed
    assert "certificates" not in while_hidden
    assert "status" not in while_hidden  # nor does Overview, left at start
    assert "certificates" in once_shown


async def test_a_burst_of_request_events_redraws_the_table_once():
    link = LiveAgentLink()
    app = ConsoleApp(link)
    async with app.run_test(size=(110, 30)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        screen = app.screen
        redraws = []
        draw = screen._show_rows
        screen._show_rows = lambda: (redraws.append(1), draw())

        for n in range(20):
            await link.pushed.put(
                {"event": "request_received", "at": T0 + n, "request_id": f"burst{n}",
                 "peer": "10.20.0.40"}
            )  # fmt: skip
        await asyncio.sleep(0.2)
        await pilot.pause()
        table = screen.query_one("#requests")

        assert all(f"burst{n}" in screen.requests for n in range(20))
        assert table.row_count == len(screen.requests)
        assert 1 <= len(redraws) < 20
