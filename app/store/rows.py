"""Rows back into the engine's dataclasses."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from app.agent.events import AnswerRecord, Chunk, StepRecord


def step_from_row(row: dict[str, Any]) -> StepRecord:
    chunk = Chunk(
        row["idx"],
        row["char_start"],
        row["char_end"],
        row["chunk_tokens"],
        row["page_first"],
        row["page_last"],
    )
    return StepRecord(
        index=row["idx"],
        chunk=chunk,
        memory=row["memory"],
        plan=row["plan"],
        thinking=row["thinking"],
        raw_output=row["raw_output"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        prompt_ms=row["prompt_ms"],
        generation_ms=row["generation_ms"],
        wall_ms=row["wall_ms"],
        malformed=bool(row["malformed"]),
        stop_reason=row["stop_reason"],
        notes=tuple(json.loads(row["notes"])),
    )


def answer_from_row(row: dict[str, Any]) -> AnswerRecord:
    return AnswerRecord(
        text=row["text"],
        thinking=row["thinking"],
        raw_output=row["raw_output"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        prompt_ms=row["prompt_ms"],
        generation_ms=row["generation_ms"],
        wall_ms=row["wall_ms"],
        cached_tokens=row["cached_tokens"],
        stop_reason=row["stop_reason"],
        notes=tuple(json.loads(row["notes"])),
    )


@dataclass
class RunRecord:
    id: int
    session_id: int
    document_id: int
    question: str
    q_core: str
    q_inst: str
    mode: str
    mode_reason: str
    status: str
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

    @classmethod
    def from_row(
        cls, row: dict[str, Any], steps: list[StepRecord], answer_row: dict[str, Any] | None
    ) -> RunRecord:
        return cls(
            id=row["id"],
            session_id=row["session_id"],
            document_id=row["document_id"],
            question=row["question"],
            q_core=row["q_core"],
            q_inst=row["q_inst"],
            mode=row["mode"],
            mode_reason=row["mode_reason"],
            status=row["status"],
            error=row["error"],
            model_backend=row["model_backend"],
            model_name=row["model_name"],
            model_path=row["model_path"],
            model_sha256=row["model_sha256"],
            n_ctx=row["n_ctx"],
            settings=json.loads(row["settings"]),
            chunks=[Chunk(**c) for c in json.loads(row["chunks"])],
            created_at=row["created_at"],
            finished_at=row["finished_at"],
            steps=steps,
            answer=answer_from_row(answer_row) if answer_row else None,
            answer_id=answer_row["id"] if answer_row else None,
        )
