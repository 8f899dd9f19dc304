"""The memory-agent engine: plan a run, read chunk by chunk, answer; checkpoint every step.

``Engine.ask`` and ``Engine.resume`` are generators of frozen events (agent/events.py)
that the CLI prints and the GUI re-emits as signals. Every finished step is written to
the store in its own transaction before its StepFinished event goes out, so a crash,
a kill or a cancel never costs a finished step, and a resumed run continues at the next
chunk from exactly the stored memory and plan, with the run's own budgets and sampling.

A write that finds the database locked by another program waits and retries (sending
DatabaseWaiting) for minutes, not the 5 s busy timeout; a computed step or answer whose
write fails is kept in memory for this process's life and written first on resume.
While a run is being read, its process holds the run's lock (Store.hold_run): that, not
elapsed time, is what tells another instance the run is live.
"""

from __future__ import annotations

import difflib
import errno
import logging
import os
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from app.agent import prompts
from app.agent.budgets import PROMPT_OVERHEAD, Budgets, budgets_for
from app.agent.chunking import plan_chunks
from app.agent.events import (
    AnswerRecord,
    AnswerStarted,
    Chunk,
    DatabaseWaiting,
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

# How long a checkpoint waits for a database another program has locked before the run
# stops (resumable, with the step kept in memory). QWENLONG_READER_DB_WAIT overrides it.
DB_WAIT_S = 300.0
DB_WAIT_ENV = "QWENLONG_READER_DB_WAIT"
_NOTICE_EVERY_S = 10.0

# What a run is made of: a resumed run keeps these from the run's stored settings unless
# the user explicitly changes them (the change is then noted on the next step).
RUN_FIELDS = (
    "n_ctx",
    "chunk_tokens",
    "memory_tokens",
    "max_new_tokens",
    "thinking_cap",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "presence_penalty",
    "seed",
    "backend",
    "model_path",
    "remote_url",
    "remote_model",
)
_BUDGET_FIELDS = {"n_ctx", "chunk_tokens", "memory_tokens", "max_new_tokens", "thinking_cap"}

# Computed but not yet written (database locked, disk full): per database file and run,
# for the whole life of the process, so a retry by a new Engine (the window makes one per
# run) writes them instead of asking the model again.
_UNSAVED_STEPS: dict[str, dict[int, list[StepRecord]]] = {}
_UNSAVED_ANSWERS: dict[str, dict[int, AnswerRecord]] = {}

T = TypeVar("T")


def default_db_wait() -> float:
    try:
        return max(0.0, float(os.environ.get(DB_WAIT_ENV, "")))
    except ValueError:
        return DB_WAIT_S


def resume_settings(
    stored: Mapping[str, Any], current: Settings, changes: Mapping[str, Any] | None = None
) -> Settings:
    """The settings a resumed run goes on with: ``current`` for how this machine runs the
    model (threads, GPU layers...), the run's own stored RUN_FIELDS, then ``changes``
    (what the user explicitly set for this resume)."""
    changes = changes or {}
    known = {f.name for f in fields(Settings)}
    keep = {k: stored[k] for k in RUN_FIELDS if k in stored and k in known}
    keep.update({k: v for k, v in changes.items() if k in known})
    return current.with_changes(**keep)


def describe_changes(stored: Mapping[str, Any], changes: Mapping[str, Any]) -> list[str]:
    return [
        f"{key} {stored.get(key)!r} -> {value!r}"
        for key, value in changes.items()
        if key in RUN_FIELDS and stored.get(key) != value
    ]


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
    def __init__(
        self,
        backend: Backend,
        store,  # noqa: ANN001
        settings: Settings,
        *,
        db_wait_s: float | None = None,
    ) -> None:
        self.backend = backend
        self.store = store
        # An automatic context (0) is whatever the backend was loaded with.
        self.settings = settings if settings.n_ctx else settings.with_changes(n_ctx=backend.n_ctx)
        self.db_wait_s = default_db_wait() if db_wait_s is None else db_wait_s
        # Steps and answers whose checkpoint write failed (disk full, database locked):
        # kept so a retry (resume) writes them first instead of recomputing them.
        where = str(getattr(store, "path", id(store)))
        self.unsaved_steps = _UNSAVED_STEPS.setdefault(where, {})
        self.unsaved_answers = _UNSAVED_ANSWERS.setdefault(where, {})
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

    def sampling(
        self, max_tokens: int, thinking_cap: int, settings: Settings | None = None
    ) -> Sampling:
        s = settings or self.settings
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
        try:
            run_id = yield from self._persist(
                0,
                "the new run",
                lambda: self.store.create_run(
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
                ),
                cancel,
            )
        except Cancelled:
            yield RunCancelled(0, 0)
            return
        except StoreError as error:
            yield self._failure(0, error, 0, record=False)
            return
        yield from self.resume(run_id, document, cancel)

    def resume(
        self,
        run_id: int,
        document: Document,
        cancel: CancelToken,
        changes: Mapping[str, Any] | None = None,
    ) -> Iterator[Event]:
        """Continue ``run_id`` at its next chunk with the run's own stored budgets and
        sampling; ``changes`` are settings the user explicitly changed for this resume."""
        try:
            lock = self.store.hold_run(run_id)
        except StoreError as error:
            yield RunFailed(run_id, str(error), 0, exit_code=error.exit_code)
            return
        if lock is None:
            yield RunFailed(
                run_id,
                f"Run {run_id} is being read right now by another window or process.",
                0,
                exit_code=StoreError.exit_code,
            )
            return
        try:
            yield from self._resume(run_id, document, cancel, dict(changes or {}))
        finally:
            lock.release()

    def _resume(
        self, run_id: int, document: Document, cancel: CancelToken, changes: dict[str, Any]
    ) -> Iterator[Event]:
        steps: list[StepRecord] = []
        try:
            run = self.store.get_run(run_id)
            steps = list(run.steps)
            for step in list(self.unsaved_steps.get(run_id, [])):
                if step.index == len(steps):  # computed before, never written: write it now
                    yield from self._save_step(run_id, step, cancel)
                    steps.append(step)
                else:
                    self._forget_step(run_id, step)
            # only what really differs from the run's own settings counts as a change
            changes = {k: v for k, v in changes.items() if run.settings.get(k) != v}
            settings = resume_settings(run.settings, self.settings, changes)
            budgets = self._run_budgets(run, settings, changes)
            notes = describe_changes(run.settings, changes)
            if notes:
                notes = ["resumed with changed settings: " + ", ".join(notes)]
            yield from self._persist(
                run_id,
                "the run's status",
                lambda: self.store.set_run_status(run_id, "running"),
                cancel,
            )
        except Cancelled:
            yield RunCancelled(run_id, len(steps))
            return
        except Exception as error:  # noqa: BLE001 - refused before it started: status as it was
            yield self._failure(run_id, error, len(steps), record=False)
            return
        chunks = tuple(run.chunks)
        yield RunStarted(
            run_id, run.mode, run.mode_reason, run.q_core, run.q_inst, chunks, len(steps)
        )
        try:
            answer = self.unsaved_answers.get(run_id)
            # a resume's changed settings are noted on its first step, else on the answer
            read_nothing = run.mode != MEMORY_AGENT or len(steps) == len(chunks)
            if answer is None:
                if run.mode == MEMORY_AGENT:
                    yield from self._read(
                        run_id,
                        run.q_core,
                        document,
                        chunks,
                        steps,
                        budgets,
                        settings,
                        notes,
                        cancel,
                    )
                    memory = steps[-1].memory if steps else ""
                    prompt = prompts.final_answer_prompt(run.q_core, run.q_inst, memory)
                else:
                    prompt = prompts.single_pass_prompt(document.text, run.q_core, run.q_inst)
                yield AnswerStarted(run_id)
                sampling = self.sampling(budgets.answer_room, budgets.answer_room // 2, settings)
                completion = yield from self._generate(run_id, -1, prompt, sampling, cancel)
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
                    notes=completion.notes + tuple(notes if read_nothing else ()),
                )
                self.unsaved_answers[run_id] = answer  # until it is written
            answer_id = yield from self._persist(
                run_id, "the answer", lambda: self.store.save_answer(run_id, answer), cancel
            )
            self.unsaved_answers.pop(run_id, None)
            yield from self._record_evidence(
                run_id, answer_id, run.mode, document, steps, answer.text, cancel
            )
            yield RunFinished(run_id, answer)
        except Cancelled:
            self._set_status_quietly(run_id, "cancelled")
            yield RunCancelled(run_id, len(steps))
        except Exception as error:  # noqa: BLE001 - every failure ends the run with an event
            yield self._failure(run_id, error, len(steps), record=True)

    def _failure(
        self, run_id: int, error: Exception, steps_done: int, *, record: bool
    ) -> RunFailed:
        """The run's end for ``error``, with the CLI's exit code. With ``record``, its
        status is written where the database allows: interrupted after a database
        problem (a lock or a full disk often prevents even that; the run then reads as
        interrupted once this process lets go of it), failed otherwise."""
        pending = len(self.unsaved_steps.get(run_id, [])) + (run_id in self.unsaved_answers)
        kept = (
            f" {'One computed result is' if pending == 1 else f'{pending} computed results are'} "
            "kept in memory and will be written first when the run is resumed by this "
            "process (in the window: press Resume)."
            if pending
            else ""
        )
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            error = StoreError(
                f"The disk is full ({error}).",
                hint="Free some space and press Resume: nothing finished is lost.",
            )
        if isinstance(error, StoreError):
            if record:
                self._set_status_quietly(run_id, "interrupted", error.message)
            message = error.message + kept + (f"\n{error.hint}" if error.hint else "")
            return RunFailed(run_id, message, steps_done, exit_code=error.exit_code)
        if isinstance(error, UserError):
            if record:
                self._set_status_quietly(run_id, "failed", str(error))
            return RunFailed(run_id, str(error) + kept, steps_done, exit_code=error.exit_code)
        error_id = uuid.uuid4().hex[:8]  # a bug: log the traceback, show an id
        log.error("run %s failed (error id %s)", run_id, error_id, exc_info=error)
        message = f"Internal error {error_id}: {error}. Finished steps are saved; resume."
        if record:
            self._set_status_quietly(run_id, "failed", message)
        return RunFailed(run_id, message + kept, steps_done, {"error_id": error_id})

    def _set_status_quietly(self, run_id: int, status: str, error: str | None = None) -> None:
        """One try, no waiting: the run is ending anyway."""
        if not run_id:
            return
        try:
            self.store.set_run_status(run_id, status, error)
        except StoreError as failure:
            log.warning("could not record status %s of run %s: %s", status, run_id, failure)

    def _run_budgets(self, run: Any, settings: Settings, changes: Mapping[str, Any]) -> Budgets:
        """The run's stored budgets (recomputed only when the user changed one of them),
        checked against the stored chunks and the loaded model's context."""
        stored = run.settings.get("budgets")
        names = {f.name for f in fields(Budgets)}
        if stored and not (_BUDGET_FIELDS & set(changes)):
            budgets = Budgets(**{k: v for k, v in stored.items() if k in names})
        else:
            question_tokens = self.backend.count_tokens(f"{run.q_core}\n{run.q_inst}")
            budgets = budgets_for(settings, question_tokens, self.prompt_overhead())
            if run.mode == MEMORY_AGENT and run.chunks:
                longest = max(c.tokens for c in run.chunks)
                need = (
                    budgets.prompt_overhead
                    + question_tokens
                    + budgets.memory_tokens
                    + longest
                    + budgets.max_new_tokens
                )
                if need > budgets.n_ctx:
                    raise UserError(
                        f"Run {run.id}'s chunks (up to {longest:,} tokens) do not fit a "
                        f"{budgets.n_ctx:,}-token context with its memory and output.",
                        hint=f"Resume with the run's own context ({run.n_ctx:,} tokens): "
                        "leave the context size and budgets as they were.",
                    )
        # The run's prompts were sized for budgets.n_ctx on a model loaded with run.n_ctx:
        # a model loaded now with less would overflow (or silently cut) them.
        identity = self.backend.identity
        loaded = identity.n_ctx if "n_ctx" not in identity.details else 0  # 0: a guess
        wanted = min(budgets.n_ctx, run.n_ctx or budgets.n_ctx)
        if loaded and loaded < wanted:
            raise UserError(
                f"Run {run.id} was read with a {wanted:,}-token context, but the model is "
                f"loaded with {loaded:,} tokens.",
                hint=f"Set the context size to {wanted:,} tokens (--ctx {wanted}) and "
                "resume again.",
            )
        return budgets

    def _persist(
        self, run_id: int, what: str, write: Callable[[], T], cancel: CancelToken
    ) -> Generator[Event, None, T]:
        """``write()``, retried while another program holds the database's lock (each try
        itself waits the 5 s busy timeout), for up to ``db_wait_s``; DatabaseWaiting goes
        out every few seconds meanwhile. Other store errors (a full disk) end it at once."""
        from app.store.database import DatabaseBusy

        began = time.monotonic()
        notice = -_NOTICE_EVERY_S
        while True:
            try:
                return write()
            except DatabaseBusy as error:
                now = time.monotonic()
                waited = now - began
                if waited >= self.db_wait_s:
                    raise DatabaseBusy(
                        f"The database stayed locked by another program for {waited:.0f} s "
                        f"while {what} waited to be saved; the run stopped.",
                        hint="Close the program that holds it (another app with the file "
                        "open), then press Resume.",
                    ) from error
                if now - notice >= _NOTICE_EVERY_S:
                    notice = now
                    yield DatabaseWaiting(run_id, what, waited, self.db_wait_s, error.message)
                pause = now + min(1.0, self.db_wait_s - waited)
                while time.monotonic() < pause:
                    cancel.raise_if_cancelled()
                    time.sleep(0.05)
                cancel.raise_if_cancelled()

    def _save_step(
        self, run_id: int, step: StepRecord, cancel: CancelToken
    ) -> Generator[Event, None, None]:
        """The checkpoint: the step is held in memory until the store has it."""
        pending = self.unsaved_steps.setdefault(run_id, [])
        if step not in pending:
            pending.append(step)
        yield from self._persist(
            run_id, f"step {step.index + 1}", lambda: self.store.save_step(run_id, step), cancel
        )
        self._forget_step(run_id, step)

    def _forget_step(self, run_id: int, step: StepRecord) -> None:
        pending = self.unsaved_steps.get(run_id, [])
        if step in pending:
            pending.remove(step)
        if not pending:
            self.unsaved_steps.pop(run_id, None)

    def _record_evidence(
        self,
        run_id: int,
        answer_id: int,
        mode: str,
        document: Document,
        steps: list[StepRecord],
        answer: str,
        cancel: CancelToken,
    ) -> Generator[Event, None, None]:
        """Where each remembered fact (memory agent) or answer sentence (single pass)
        stands in the document; stored beside the answer for review and export."""
        from app.evidence.provenance import trace_memory, trace_text

        evidence = (
            trace_memory(document, steps) if mode == MEMORY_AGENT else trace_text(document, answer)
        )
        yield from self._persist(
            run_id,
            "the answer's evidence",
            lambda: self.store.save_evidence(answer_id, run_id, evidence),
            cancel,
        )

    def _read(
        self,
        run_id: int,
        q_core: str,
        document: Document,
        chunks: tuple[Chunk, ...],
        steps: list[StepRecord],
        budgets: Budgets,
        settings: Settings,
        notes: list[str],
        cancel: CancelToken,
    ) -> Iterator[Event]:
        memory = steps[-1].memory if steps else ""
        plan = steps[-1].plan if steps else ""
        sampling = self.sampling(budgets.max_new_tokens, budgets.thinking_cap, settings)
        started = time.perf_counter()
        for done_here, chunk in enumerate(chunks[len(steps) :], start=1):
            cancel.raise_if_cancelled()
            yield StepStarted(run_id, chunk, len(chunks))
            text = document.text[chunk.start : chunk.end]
            prompt = prompts.memory_update_prompt(q_core, memory, plan, text)
            completion = yield from self._generate(run_id, chunk.index, prompt, sampling, cancel)
            step = self._step_record(chunk, completion, memory, plan, budgets, notes)
            notes = []  # a resume's changed settings are noted once, on its first step
            yield from self._save_step(run_id, step, cancel)
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
        extra_notes: list[str] | None = None,
    ) -> StepRecord:
        parsed = parse_memory_step(completion.raw, previous_plan)
        notes = list(extra_notes or []) + list(completion.notes)
        notes += [f"malformed: {p}" for p in parsed.problems]
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
