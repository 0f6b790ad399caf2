"""Every console screen, rendered from the fake agent's fixed data.

Presses happen in `run_before` so that the snapshot is taken only once the
screen's workers have answered; each press says what the operator does.
"""

import pytest

from scb_tui.app import ConsoleApp

from .console_fake import FakeAgentLink, settle


def presses(*keys: str):
    async def run_before(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run_before


def console(up: bool = True) -> ConsoleApp:
    return ConsoleApp(FakeAgentLink(up=up))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_overview_shows_agent_counts_and_live_feed(snap_compare, size):
    assert snap_compare(console(), run_before=presses(), terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_requests_show_live_stage_and_errors(snap_compare, size):
    run_before = presses(
        "2",  # go to Requests
        "down",  # highlight the request awaiting approval: its stages below
    )
    assert snap_compare(console(), run_before=run_before, terminal_size=size)


def test_deny_asks_for_a_reason(snap_compare):
    run_before = presses(
        "2",  # go to Requests
        "down",  # highlight the request awaiting approval
        "d",  # deny it: the reason prompt opens
    )
    assert snap_compare(console(), run_before=run_before, terminal_size=(80, 24))


def test_approve_asks_for_confirmation(snap_compare):
    run_before = presses(
        "2",  # go to Requests
        "down",  # highlight the request awaiting approval
        "a",  # approve it: the confirmation opens
    )
    assert snap_compare(console(), run_before=run_before, terminal_size=(80, 24))


def test_certificates_page_with_search(snap_compare):
    run_before = presses(
        "3",  # go to Certificates
        "slash",  # focus the search box
        *"camera",  # type a search
        "enter",  # search now and go back to the table
    )
    assert snap_compare(console(), run_before=run_before, terminal_size=(80, 24))


def test_certificates_filtered_by_status(snap_compare):
    run_before = presses(
        "3",  # go to Certificates
        "s",  # status filter: valid
        "s",  # status filter: revoked
    )
    assert snap_compare(console(), run_before=run_before, terminal_size=(120, 40))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_certificate_detail_shows_x509_fields_and_pem(snap_compare, size):
    run_before = presses(
        "3",  # go to Certificates
        "enter",  # open the newest certificate
    )
    assert snap_compare(console(), run_before=run_before, terminal_size=size)


def test_revoke_offers_reasons(snap_compare):
    run_before = presses(
        "3",  # go to Certificates
        "r",  # revoke the newest: the reason picker opens
    )
    assert snap_compare(console(), run_before=run_before, terminal_size=(80, 24))


def test_revoke_confirms_the_chosen_reason(snap_compare):
    run_before = presses(
        "3",  # go to Certificates
        "r",  # revoke the newest: the reason picker opens
        "down",  # move to "superseded"
        "enter",  # choose it: the confirmation opens
    )
    assert snap_compare(console(), run_before=run_before, terminal_size=(80, 24))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_bans_list(snap_compare, size):
    run_before = presses("4")  # go to Bans
    assert snap_compare(console(), run_before=run_before, terminal_size=size)


def test_add_ban_form(snap_compare):
    run_before = presses(
        "4",  # go to Bans
        "b",  # add a ban: the form opens
        *"10.0.0.66",  # type the address
    )
    assert snap_compare(console(), run_before=run_before, terminal_size=(80, 24))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_audit_filtered(snap_compare, size):
    run_before = presses(
        "5",  # go to Audit
        "slash",  # focus the filter
        *"refused",  # type a filter
        "enter",  # filter now
    )
    assert snap_compare(console(), run_before=run_before, terminal_size=size)


def test_help_lists_the_keys(snap_compare):
    run_before = presses(
        "2",  # go to Requests
        "question_mark",  # open help
    )
    assert snap_compare(console(), run_before=run_before, terminal_size=(80, 24))


def test_agent_down_is_said_plainly(snap_compare):
    run_before = presses("2")  # go to Requests while no agent answers
    app = console(up=False)
    assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))
