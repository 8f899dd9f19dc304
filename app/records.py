"""What a run is made of: the records every layer shares, at the bottom of the package.

The backends fill in a ``CallStats`` for every model call; the engine builds ``StepRecord``
and ``AnswerRecord`` around it; the store writes and reads them (store/rows.py maps them
to rows); evidence and the GUI read them. This module imports nothing of ``agent``,
``store``, ``evidence`` or ``gui``, so none of them has to import another one upward to
know what a step is.

The enums' values are the strings stored in the database since schema 1: existing files
read unchanged. They subclass ``str`` (``enum.StrEnum`` needs Python 3.11), so a stored
or typed string compares equal to its member, and format as their value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from app.documents.model import Rect


class _StrEnum(str, Enum):
    """``str(member)`` and f-strings give the value, as ``enum.StrEnum`` does."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)


class Mode(_StrEnum):
    AUTO = "auto"  # asked for: the planner picks one of the two below
    SINGLE_PASS = "single_pass"
    MEMORY_AGENT = "memory_agent"


class RunStatus(_StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # its process stopped (or its database failed) mid-run

    @property
    def ended(self) -> bool:
        """A run that ends with a finish time (an interrupted one can still go on)."""
        return self in (RunStatus.FINISHED, RunStatus.CANCELLED, RunStatus.FAILED)


# Runs that can be resumed (or retried) from their last stored step.
RESUMABLE = (RunStatus.RUNNING, RunStatus.INTERRUPTED, RunStatus.CANCELLED, RunStatus.FAILED)


@dataclass(frozen=True)
class Question:
    """A question as asked: ``q_core`` drives the reading of every chunk, ``q_inst``
    (the answer's format) is used only for the final answer."""

    text: str
    q_core: str
    q_inst: str = ""
    mode: Mode = Mode.AUTO


@dataclass(frozen=True)
class Chunk:
    """A slice of the document the model reads in one memory step."""

    index: int  # 0-based
    start: int  # character offsets into Document.text
    end: int
    tokens: int
    page_first: int = 1
    page_last: int = 1


@dataclass(frozen=True)
class CallStats:
    """One model call as stored: the whole output, its thinking, what it cost and why it
    stopped. Its field names are the columns of the ``steps`` and ``answers`` tables."""

    raw_output: str = ""  # everything generated, thinking included
    thinking: str = ""  # raw_output before the last ``</think>``
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens reused from the KV cache (prefix reuse)
    prompt_ms: float = 0.0  # the backend's own prompt-evaluation time
    generation_ms: float = 0.0  # the backend's own token-generation time
    wall_ms: float = 0.0
    stop_reason: str = "stop"  # stop | length | loop | thinking_cap
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepRecord:
    """Everything one memory step produced: the checkpoint the store keeps."""

    index: int
    chunk: Chunk
    memory: str
    plan: str
    stats: CallStats
    malformed: bool = False


@dataclass(frozen=True)
class AnswerRecord:
    text: str  # the answer shown to the user (content after thinking)
    stats: CallStats


MIN_CONFIDENCE = 0.34  # below this overlap, a fact is reported as unsupported


@dataclass(frozen=True)
class Evidence:
    """Where one fact of the final memory (or sentence of the answer) stands in the
    document (app/evidence/provenance.py finds it)."""

    claim: str
    quote: str
    step_first: int  # index of the step that first brought the fact in (-1: unknown)
    step_last_changed: int
    char_start: int
    char_end: int
    page: int
    rects: tuple[tuple[int, Rect], ...]
    confidence: float

    @property
    def supported(self) -> bool:
        return self.confidence >= MIN_CONFIDENCE and self.char_end > self.char_start


@dataclass
class RunRecord:
    """A stored run with its steps and latest answer, as ``Store.get_run`` reads it."""

    id: int
    session_id: int
    document_id: int
    question: str
    q_core: str
    q_inst: str
    mode: Mode
    mode_reason: str
    status: RunStatus
    error: str | None
    model_backend: str
    model_name: str
    model_path: str
    model_sha256: str
    n_ctx: int
    settings: dict[str, Any]
    chunks: list[Chunk]
    created_at: str
    finished_at: str | None
    steps: list[StepRecord] = field(default_factory=list)
    answer: AnswerRecord | None = None
    answer_id: int | None = None

    @property
    def asked(self) -> Question:
        return Question(self.question, self.q_core, self.q_inst, self.mode)
