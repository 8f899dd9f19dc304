"""The memory-agent engine: plan a run, read chunk by chunk, answer; checkpoint every step.

``Engine.ask`` and ``Engine.resume`` are generators of frozen events (agent/events.py)
that the CLI prints and the GUI re-emits as signals. Every finished step is written to
the store in its own transaction before its StepFinished event goes out, so a crash,
a kill or a cancel never costs a finished step, and a resumed run continues at the next
chunk from exactly the stored memory and plan.
"""

from __future__ import annotations

import difflib
import logging
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass

from app.agent import prompts
from app.agent.budgets import PROMPT_OVERHEAD, Budgets, budgets_for
from app.agent.chunking import plan_chunks
from app.agent.events import (
    AnswerRecord,
    AnswerStarted,
    Chunk,
    Event,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    StepRecord,
    StepStarted,
    TokenStreamed,
)
from app.agent.parsing import parse_memory_step
from app.documents.model import Document
from app.errors import Cancelled, StoreError, UserError
from app.llm.backend import Backend, CancelToken, Completion, Piece, Sampling
from app.settings import Settings

log = logging.getLogger("app.agent")

SINGLE_PASS, MEMORY_AGENT = "single_pass", "memory_agent"


@dataclass(frozen=True)
class RunPlan:
    mode: str
    reason: str
    chunks: tuple[Chunk, ...]
    budgets: Budgets
    document_tokens: int


def memory_diff(before: str, after: str) -> str:
    """A readable line diff of two memories (no file headers, no context lines)."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return "\n".join(line for line in lines if not line.startswith(("---", "+++", "@@")))


class Engine:
    def __init__(self, backend: Backend, store, settings: Settings) -> None:  # noqa: ANN001
        self.backend = backend
        self.store = store
        self.settings = settings
        # Steps whose checkpoint write failed (disk full, database locked): kept here so a
        # retry (resume) writes them first instead of recomputing them.
        self.unsaved_steps: dict[int, list[StepRecord]] = {}
        self._prompt_overhead: int | None = None

    # -- planning ---------------------------------------------------------------------
    def prompt_overhead(self) -> int:
        """The memory-update template's size in this model's own tokens, plus chat markup.
        Measured rather than assumed: Qwen's tokenizer needs ~560, a small vocabulary
        several times that, and a fixed guess would overflow the context window."""
        if self._prompt_overhead is None:
            template = prompts.memory_update_prompt("", "", "", "")
            measured = self.backend.count_tokens(template) * 11 // 10 + 64
            self._prompt_overhead = max(PROMPT_OVERHEAD, measured)
        return self._prompt_overhead

    def plan(
        self,
        document: Document,
        q_core: str,
        q_inst: str = "",
        mode: str = "auto",
        cancel: CancelToken | None = None,
    ) -> RunPlan:
        question_tokens = self.backend.count_tokens(f"{q_core}\n{q_inst}")
        budgets = budgets_for(self.settings, question_tokens, self.prompt_overhead())
        least = budgets.prompt_overhead + question_tokens + budgets.memory_tokens + 96
        if least + budgets.chunk_tokens > budgets.n_ctx:
            raise UserError(
                f"A {budgets.n_ctx:,}-token context window is too small for this model: its "
                f"prompt, question and memory alone take about {least:,} tokens.",
                hint="Raise the context size (or lower the memory budget) in Settings.",
            )
        chunks = plan_chunks(
            document.text,
            self.backend.count_tokens,
            budgets.chunk_tokens,
            document.page_range,
            cancel=(lambda: cancel.cancelled) if cancel else None,
        )
        doc_tokens = sum(c.tokens for c in chunks)
        needed = doc_tokens + question_tokens + 120 + budgets.answer_room
        fits = needed <= budgets.n_ctx
        chosen_by = "chosen by the user"
        if mode == "auto" and self.settings.mode != "auto":
            mode, chosen_by = self.settings.mode, "the default mode set in Settings"
        if mode == "auto":
            mode = SINGLE_PASS if fits else MEMORY_AGENT
            reason = (
                f"the document ({doc_tokens:,} tokens) fits the {budgets.n_ctx:,}-token context"
                if fits
                else f"the document ({doc_tokens:,} tokens) needs {len(chunks)} chunks of "
                f"up to {budgets.chunk_tokens:,} tokens in a {budgets.n_ctx:,}-token context"
            )
        elif mode == SINGLE_PASS and not fits:
            raise UserError(
                f"The document ({doc_tokens:,} tokens) does not fit the {budgets.n_ctx:,}-token "
                "context in one pass.",
                hint="Choose the memory agent, or raise the context size in Settings.",
            )
        else:
            reason = chosen_by
        return RunPlan(mode, reason, tuple(chunks), budgets, doc_tokens)

    def sampling(self, max_tokens: int, thinking_cap: int) -> Sampling:
        s = self.settings
        return Sampling(
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=s.top_k,
            min_p=s.min_p,
            presence_penalty=s.presence_penalty,
            max_tokens=max_tokens,
            thinking_cap=thinking_cap,
            seed=s.seed,
        )

    # -- running ----------------------------------------------------------------------
    def ask(
        self,
        document: Document,
        document_id: int,
        session_id: int,
        question: str,
        q_core: str,
        q_inst: str,
        plan: RunPlan,
        cancel: CancelToken,
    ) -> Iterator[Event]:
        run_id = self.store.create_run(
            session_id,
            document_id,
            question,
            q_core,
            q_inst,
            plan.mode,
            plan.reason,
            self.backend.identity,
            {**self.settings.to_dict(), "budgets": plan.budgets.__dict__},
            plan.chunks,
        )
        yield from self.resume(run_id, document, cancel)

    def resume(self, run_id: int, document: Document, cancel: CancelToken) -> Iterator[Event]:
        run = self.store.get_run(run_id)
        steps: list[StepRecord] = list(run.steps)
        try:
            for step in self.unsaved_steps.pop(run_id, []):
                self._checkpoint(run_id, step)
                steps.append(step)
        except StoreError as error:
            yield RunFailed(run_id, str(error), len(steps))
            return
        self.store.set_run_status(run_id, "running")
        budgets = budgets_for(
            self.settings, self.backend.count_tokens(run.q_core), self.prompt_overhead()
        )
        chunks = tuple(run.chunks)
        yield RunStarted(
            run_id, run.mode, run.mode_reason, run.q_core, run.q_inst, chunks, len(steps)
        )
        try:
            if run.mode == MEMORY_AGENT:
                yield from self._read(run_id, run.q_core, document, chunks, steps, budgets, cancel)
                memory = steps[-1].memory if steps else ""
                prompt = prompts.final_answer_prompt(run.q_core, run.q_inst, memory)
            else:
                prompt = prompts.single_pass_prompt(document.text, run.q_core, run.q_inst)
            yield AnswerStarted(run_id)
            completion = yield from self._generate(
                run_id,
                -1,
                prompt,
                self.sampling(budgets.answer_room, budgets.answer_room // 2),
                cancel,
            )
            answer = AnswerRecord(
                text=completion.content,
                thinking=completion.thinking,
                raw_output=completion.raw,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                prompt_ms=completion.prompt_ms,
                generation_ms=completion.generation_ms,
                wall_ms=completion.wall_ms,
                cached_tokens=completion.cached_tokens,
                stop_reason=completion.stop_reason,
                notes=completion.notes,
            )
            answer_id = self.store.save_answer(run_id, answer)
            self._record_evidence(run_id, answer_id, run.mode, document, steps, answer.text)
            yield RunFinished(run_id, answer)
        except Cancelled:
            self.store.set_run_status(run_id, "cancelled")
            yield RunCancelled(run_id, len(steps))
        except UserError as error:
            self._mark_failed(run_id, str(error))
            yield RunFailed(run_id, str(error), len(steps))
        except Exception as error:  # a bug: log the traceback, show an id
            error_id = uuid.uuid4().hex[:8]
            log.exception("run %s failed (error id %s)", run_id, error_id)
            message = f"Internal error {error_id}: {error}. Finished steps are saved; resume."
            self._mark_failed(run_id, message)
            yield RunFailed(run_id, message, len(steps), {"error_id": error_id})

    def _record_evidence(
        self,
        run_id: int,
        answer_id: int,
        mode: str,
        document: Document,
        steps: list[StepRecord],
        answer: str,
    ) -> None:
        """Where each remembered fact (memory agent) or answer sentence (single pass)
        stands in the document; stored beside the answer for review and export."""
        from app.evidence.provenance import trace_memory, trace_text

        evidence = (
            trace_memory(document, steps) if mode == MEMORY_AGENT else trace_text(document, answer)
        )
        self.store.save_evidence(answer_id, run_id, evidence)

    def _mark_failed(self, run_id: int, message: str) -> None:
        try:
            self.store.set_run_status(run_id, "failed", message)
        except StoreError:
            log.warning("could not record failure of run %s", run_id)

    def _read(
        self,
        run_id: int,
        q_core: str,
        document: Document,
        chunks: tuple[Chunk, ...],
        steps: list[StepRecord],
        budgets: Budgets,
        cancel: CancelToken,
    ) -> Iterator[Event]:
        memory = steps[-1].memory if steps else ""
        plan = steps[-1].plan if steps else ""
        sampling = self.sampling(budgets.max_new_tokens, budgets.thinking_cap)
        started = time.perf_counter()
        for done_here, chunk in enumerate(chunks[len(steps) :], start=1):
            cancel.raise_if_cancelled()
            yield StepStarted(run_id, chunk, len(chunks))
            text = document.text[chunk.start : chunk.end]
            prompt = prompts.memory_update_prompt(q_core, memory, plan, text)
            completion = yield from self._generate(run_id, chunk.index, prompt, sampling, cancel)
            step = self._step_record(chunk, completion, memory, plan, budgets)
            self._checkpoint(run_id, step)
            steps.append(step)
            per_step = (time.perf_counter() - started) / done_here
            eta = per_step * (len(chunks) - len(steps) + 1)
            yield StepFinished(run_id, step, len(chunks), memory_diff(memory, step.memory), eta)
            memory, plan = step.memory, step.plan

    def _step_record(
        self,
        chunk: Chunk,
        completion: Completion,
        previous_memory: str,
        previous_plan: str,
        budgets: Budgets,
    ) -> StepRecord:
        parsed = parse_memory_step(completion.raw, previous_plan)
        notes = list(completion.notes) + [f"malformed: {p}" for p in parsed.problems]
        memory = parsed.memory
        if not memory.strip() and previous_memory:
            # An empty output (e.g. a server that stopped at the thinking cap) must not
            # wipe what earlier steps gathered.
            memory = previous_memory
            notes.append("the step wrote no memory; the previous memory is kept")
        memory_tokens = self.backend.count_tokens(memory)
        if memory_tokens > budgets.memory_tokens:
            memory = self._trim(memory, budgets.memory_tokens)
            notes.append(
                f"memory trimmed from {memory_tokens:,} to about {budgets.memory_tokens:,} tokens "
                "to stay inside the context window"
            )
        return StepRecord(
            index=chunk.index,
            chunk=chunk,
            memory=memory,
            plan=parsed.plan,
            thinking=parsed.thinking,
            raw_output=completion.raw,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            prompt_ms=completion.prompt_ms,
            generation_ms=completion.generation_ms,
            wall_ms=completion.wall_ms,
            malformed=parsed.malformed,
            stop_reason=completion.stop_reason,
            notes=tuple(notes),
        )

    def _trim(self, memory: str, budget: int) -> str:
        """Keep the memory's head, cut at a line, so the next prompt cannot overflow."""
        keep = memory
        while keep and self.backend.count_tokens(keep) > budget:
            cut = keep.rfind("\n", 0, int(len(keep) * 0.9))
            keep = keep[: cut if cut > 0 else int(len(keep) * 0.9)]
        return keep.rstrip()

    def _checkpoint(self, run_id: int, step: StepRecord) -> None:
        try:
            self.store.save_step(run_id, step)
        except StoreError:
            self.unsaved_steps.setdefault(run_id, []).append(step)
            raise

    def _generate(
        self, run_id: int, step: int, prompt: str, sampling: Sampling, cancel: CancelToken
    ) -> Generator[Event, None, Completion]:
        messages = [{"role": "user", "content": prompt}]
        for item in self.backend.stream(messages, sampling, cancel):
            if isinstance(item, Piece):
                yield TokenStreamed(run_id, step, item.text, item.thinking)
            else:
                return item
        raise RuntimeError("backend stream ended without a completion")


def estimate_seconds(plan: RunPlan, prompt_tps: float, gen_tps: float) -> float:
    """Rough run time from measured or assumed throughput, shown before a run starts."""
    b = plan.budgets
    if plan.mode == SINGLE_PASS:
        return plan.document_tokens / prompt_tps + b.answer_room / 2 / gen_tps
    per_step_prompt = b.chunk_tokens + b.memory_tokens + b.prompt_overhead
    per_step_gen = b.memory_tokens + b.memory_tokens // 4
    steps = len(plan.chunks)
    return steps * (per_step_prompt / prompt_tps + per_step_gen / gen_tps) + (
        b.memory_tokens / prompt_tps + b.answer_room / 2 / gen_tps
    )
