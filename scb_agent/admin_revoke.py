"""The admin `revoke` command: an operator takes a certificate back.

`scb-agent admin revoke` and the console's revoke both arrive here; the
work, and the CRL that follows, is in revocation.
"""

from .admin import command
from .revocation import revoke_certificate


@command("revoke")
async def revoke(
    agent, serial: str, reason: str = "unspecified", actor: str = "operator"
):
    return await revoke_certificate(agent, serial, reason, str(actor))
