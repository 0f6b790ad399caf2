"""The one error hierarchy every user-caused failure belongs to.

Each error carries a JASC/1 error code so the same object can be shown to an
operator, printed by the CLI or sent on the wire without translation.
"""

ERROR_CODES = frozenset(
    {
        "bad_frame",
        "bad_request",
        "unsupported_protocol",
        "bad_csr",
        "policy_denied",
        "rate_limited",
        "banned",
        "dns_failed",
        "dns_disagreement",
        "connect_failed",
        "challenge_failed",
        "timeout",
        "denied",
        "internal",
    }
)


class ScbError(Exception):
    """A failure the user (or a peer) caused, with its JASC/1 code."""

    def __init__(self, code: str, message: str, retry_after: int | None = None):
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ConfigError(ScbError):
    """A config file, flag or environment value that cannot be used."""

    def __init__(self, message: str):
        super().__init__("bad_request", message)

    def __str__(self) -> str:
        return self.message
