"""Frozen events the engine yields; the CLI prints them and the GUI re-emits them as signals."""

from __future__ import annotations

from dataclasses import dataclass, field

# The records themselves live in app/records.py; named here too for the GUI's imports.
from app.records import AnswerRecord, Chunk, Mode, StepRecord

__all__ = [
    "AnswerRecord",
    "AnswerStarted",
    "Chunk",
    "DatabaseWaiting",
    "Event",
    "RunCancelled",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "StepFinished",
    "StepRecord",
    "StepStarted",
    "TokenStreamed",
]


@dataclass(frozen=True)
class RunStarted:
    run_id: int
    mode: Mode  # SINGLE_PASS or MEMORY_AGENT
    mode_reason: str
    q_core: str
    q_inst: str
    chunks: tuple[Chunk, ...]
    resumed_from: int = 0  # number of steps already done when this run (re)started


@dataclass(frozen=True)
class StepStarted:
    run_id: int
    chunk: Chunk
    total: int


@dataclass(frozen=True)
class TokenStreamed:
    run_id: int
    step: int  # chunk index, or -1 for the final answer
    text: str
    thinking: bool


@dataclass(frozen=True)
class StepFinished:
    run_id: int
    step: StepRecord
    total: int
    memory_diff: str  # unified diff of the memory against the previous step
    eta_s: float | None = None


@dataclass(frozen=True)
class AnswerStarted:
    run_id: int


@dataclass(frozen=True)
class RunFinished:
    run_id: int
    answer: AnswerRecord


@dataclass(frozen=True)
class RunCancelled:
    run_id: int
    steps_done: int


@dataclass(frozen=True)
class RunFailed:
    run_id: int  # 0: the run was never created (e.g. planning failed)
    message: str
    steps_done: int
    details: dict[str, str] = field(default_factory=dict)
    exit_code: int = 1  # the CLI's code: app.errors' (database 5, server 6...), 1 for a bug


@dataclass(frozen=True)
class DatabaseWaiting:
    """A write (a finished step, the answer) waits because another program has locked the
    database or its disk is full; what was computed is kept in memory meanwhile. Sent
    again every few seconds while it lasts; the next other event of the run means the
    wait is over."""

    run_id: int
    what: str  # "step 3", "the answer"...
    waited_s: float
    limit_s: float  # the wait gives up (the run stops, resumable) after this long
    reason: str


Event = (
    RunStarted
    | StepStarted
    | TokenStreamed
    | StepFinished
    | AnswerStarted
    | RunFinished
    | RunCancelled
    | RunFailed
    | DatabaseWaiting
)
