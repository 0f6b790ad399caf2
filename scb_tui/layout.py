"""How the tables fit the terminal: every field from WIDE columns on, the ones
an operator acts on below that (80×24 over SSH must still read well)."""

WIDE = 110


def is_wide(width: int) -> bool:
    return width >= WIDE


def rest(width: int, fixed: list[int], minimum: int = 16) -> int:
    """The width left for the one column that takes what the others leave.

    Each column has a cell of padding either side; the scrollbar takes one.
    """
    padding = 2 * (len(fixed) + 1) + 1
    return max(minimum, width - sum(fixed) - padding)
