"""Human-readable quantities shared by the window, the CLI and downloads."""

from __future__ import annotations


def human_duration(seconds: float) -> str:
    """'45 s', '12 min' or '2.5 h': estimates and ETAs, rounded as a person says them."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
