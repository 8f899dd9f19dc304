"""Human-readable quantities shared by the window, the CLI and downloads: durations and
bytes (decimal units, as model pages list GGUF sizes), counts of things."""

from __future__ import annotations


def human_duration(seconds: float) -> str:
    """'45 s', '12 min' or '2.5 h': estimates and ETAs, rounded as a person says them."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def human_size(n: float) -> str:
    """Decimal units, as model pages list GGUF sizes."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def count_of(n: int, thing: str) -> str:
    """'1 page', '12 pages', '1,204 pages'."""
    return f"{n:,} {thing}" + ("" if n == 1 else "s")
