"""The admin `bans`, `ban` and `unban` commands, over the agent's guard.

`scb-agent admin ban|unban|bans` and the console's bans screen arrive here.
A ban names an address, a CIDR network or a DNS name; `for` (or `duration`)
is "30m", "2h", "7d" and the like, or empty for a ban until lifted.
"""

from scb_core.errors import ScbError

from .admin import command


@command("bans")
async def bans(agent, **_):
    """The active bans, oldest first, as the store's rows."""
    return agent.guard.active_bans()


@command("ban")
async def ban(
    agent,
    value: str,
    reason: str = "",
    actor: str = "operator",
    duration: str | None = None,
    **extra,
):
    # `for` is what the console sends; it cannot be a Python parameter name.
    duration = extra.pop("for", duration)
    if extra:
        raise ScbError("bad_request", f"unknown ban arguments: {', '.join(extra)}")
    for name, text in (("value", value), ("reason", reason), ("for", duration)):
        if text is not None and not isinstance(text, str):
            raise ScbError("bad_request", f"ban {name} {text!r} must be text")
    reason = reason.strip() or "no reason given"
    return await agent.guard.ban(value, duration, reason, str(actor))


@command("unban")
async def unban(agent, id_or_value, actor: str = "operator"):
    return await agent.guard.unban(str(id_or_value), str(actor))
