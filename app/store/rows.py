"""Records to rows and back: the one place that knows how a record maps to columns.

A ``CallStats``'s field names are its columns, so a step's or an answer's row is its
own fields plus the stats' (notes as a JSON list). Rows are written with sqlite-utils'
``insert`` from these dicts, as simonw/llm logs each exchange.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any

from app.records import (
    AnswerRecord,
    CallStats,
    Chunk,
    Evidence,
    Mode,
    RunRecord,
    RunStatus,
    StepRecord,
)

_STATS = tuple(f.name for f in fields(CallStats))


def stats_row(stats: CallStats) -> dict[str, Any]:
    return {**asdict(stats), "notes": json.dumps(list(stats.notes))}


def stats_from_row(row: dict[str, Any]) -> CallStats:
    values = {name: row[name] for name in _STATS if name in row}
    values["notes"] = tuple(json.loads(row.get("notes") or "[]"))
    return CallStats(**values)


def step_row(run_id: int, step: StepRecord) -> dict[str, Any]:
    c = step.chunk
    return {
        "run_id": run_id,
        "idx": step.index,
        "char_start": c.start,
        "char_end": c.end,
        "page_first": c.page_first,
        "page_last": c.page_last,
        "chunk_tokens": c.tokens,
        "memory": step.memory,
        "plan": step.plan,
        "malformed": int(step.malformed),
        **stats_row(step.stats),
    }


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
        stats=stats_from_row(row),
        malformed=bool(row["malformed"]),
    )


def answer_row(run_id: int, answer: AnswerRecord) -> dict[str, Any]:
    return {"run_id": run_id, "text": answer.text, **stats_row(answer.stats)}


def answer_from_row(row: dict[str, Any]) -> AnswerRecord:
    return AnswerRecord(text=row["text"], stats=stats_from_row(row))


def evidence_row(answer_id: int, run_id: int, e: Evidence) -> dict[str, Any]:
    return {
        "answer_id": answer_id,
        "run_id": run_id,
        "claim": e.claim,
        "quote": e.quote,
        "step_first": e.step_first,
        "step_last_changed": e.step_last_changed,
        "char_start": e.char_start,
        "char_end": e.char_end,
        "page": e.page,
        "rects": json.dumps([[p, list(r)] for p, r in e.rects]),
        "confidence": e.confidence,
        "supported": int(e.supported),
    }


def run_from_row(
    row: dict[str, Any], steps: list[StepRecord], answer: dict[str, Any] | None
) -> RunRecord:
    return RunRecord(
        id=row["id"],
        session_id=row["session_id"],
        document_id=row["document_id"],
        question=row["question"],
        q_core=row["q_core"],
        q_inst=row["q_inst"],
        mode=Mode(row["mode"]),
        mode_reason=row["mode_reason"],
        status=RunStatus(row["status"]),
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
        answer=answer_from_row(answer) if answer else None,
        answer_id=answer["id"] if answer else None,
    )
