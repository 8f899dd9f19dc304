"""What a running download reports (progress, cancel, result), for the dialog and the CLI."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.errors import Cancelled
from app.units import human_duration, human_size


# -- progress and cancel ------------------------------------------------------------------
@dataclass(frozen=True)
class DownloadProgress:
    file_name: str
    done: int  # bytes of the file on disk so far, resumed part included
    total: int | None  # None while the server has not said
    rate: float  # bytes per second over the last few seconds (0 when checking)
    resumed_from: int = 0
    phase: str = "downloading"  # "checking" while the kept .part is hashed, then "downloading"

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None

    @property
    def eta_s(self) -> float | None:
        if not self.total or self.rate <= 0:
            return None
        return max(self.total - self.done, 0) / self.rate

    def describe(self) -> str:
        """One line: 'Q4_K_M.gguf: 42% 7.9 GB of 18.7 GB, 12.3 MB/s, 14 min left'."""
        if self.phase == "looking":
            return f"{self.file_name}: looking for the file..."
        if self.phase == "checking":
            of = f" of {human_size(self.done)}" if self.total is None else ""
            return f"{self.file_name}: checking the partial download{of}..."
        size = human_size(self.done)
        if self.total:
            size = f"{self.done * 100 // self.total}% {size} of {human_size(self.total)}"
        line = f"{self.file_name}: {size}, {human_size(self.rate)}/s"
        eta = self.eta_s
        if eta is not None:
            line += f", {human_duration(eta)} left"
        return line


ProgressCallback = Callable[[DownloadProgress], None]


class DownloadCancelled(Cancelled):
    """The user cancelled; the ``.part`` is kept and the next download resumes it.
    ``part`` is None when the cancel came while the file was still being looked for."""

    def __init__(self, part: Path | None, done: int, total: int | None) -> None:
        super().__init__(f"download cancelled, {part.name} kept" if part else "download cancelled")
        self.part = part
        self.done = done
        self.total = total


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    size: int
    sha256: str  # "" when the file was already there and not hashed again
    verified_by: str  # "--sha256" | "Hub" | "server ETag" | "" (nothing to compare)
    downloaded: int  # bytes fetched by this call
    resumed_from: int  # bytes of .part that were kept
    already_present: bool = False
    repo: str = ""  # the repository it came from ("" for a plain URL)


RATE_WINDOW_S = 5.0


class RateMeter:
    """Bytes per second over the last RATE_WINDOW_S."""

    def __init__(self, done: int) -> None:
        self.samples: deque[tuple[float, int]] = deque([(time.monotonic(), done)])

    def update(self, done: int, now: float) -> float:
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= RATE_WINDOW_S:
            self.samples.popleft()
        t0, d0 = self.samples[0]
        return (done - d0) / (now - t0) if now > t0 else 0.0
