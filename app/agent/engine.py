"""The memory-agent loop: read chunk by chunk, answer; checkpoint every step.

``Engine.ask`` and ``Engine.resume`` are generators of frozen events (agent/events.py)
that the CLI prints and the GUI re-emits as signals. Every finished step is written to
the store in its own transaction before its StepFinished event goes out
(agent/checkpoint.py), so a crash, a kill or a cancel never costs a finished step, and a
resumed run continues at the next chunk from exactly the stored memory and plan, with
the run's own budgets and sampling (agent/planning.py plans a run once and stores it).

While a run is being read, its process holds the run's lock (RunStore.hold_run): that,
not elapsed time, is what tells another instance the run is live.
"""

from __future__ import annotations

import difflib
import errno
import logging
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import asdict, replace
from typing import Any

from app.agent import prompts
from app.agent.budgets import Budgets
from app.agent.checkpoint import Checkpoints
from app.agent.events import (
    AnswerStarted,
    Event,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    TokenStreamed,
)
from app.agent.parsing import parse_memory_step
from app.agent.planning import (
    Planner,
    RunPlan,
    describe_changes,
    resume_settings,
    sampling_for,
)
from app.agent.run_store import RunStore
from app.documents.model import Document
from app.errors import (
    Cancelled,
    DatabaseBusy,
    DatabaseFull,
    StoreError,
    UserError,
    log_bug,
)
from app.llm.backend import Backend, CancelToken, Completion, Piece, Sampling
from app.records import AnswerRecord, Chunk, Mode, Question, RunStatus, StepRecord
from app.settings import Settings
from app.version import software

log = logging.getLogger("app.agent")


def memory_diff(before: str, after: str) -> str:
    """A readable line diff of two memories (no file headers, no context lines)."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return "\n".join(line for line in lines if not line.startswith(("---", "+++", "@@")))


class Engine:
    def __init__(
        self,
        backend: Backend,
        store: RunStore,
        settings: Settings,
        *,
        db_wait_s: float | None = None,
        resume_how: Callable[[int], str] | None = None,
        outlives_run: bool = True,
    ) -> None:
        """``resume_how(run_id)`` says how this front end resumes a run ("press Resume",
        the window's, by default; the CLI's own command); ``outlives_run``: whether this process
        stays up after a run ends (the window), so a result kept in memory can still be
        written by a resume in it (not the CLI: it exits)."""
        self.backend = backend
        self.resume_how = resume_how or (lambda run_id: "press Resume")
        self.outlives_run = outlives_run
        self.store = store
        self.planner = Planner(backend, settings)
        self.settings = self.planner.settings  # an automatic context (0) resolved there
        self.checkpoints = Checkpoints(store, db_wait_s)

    def plan(
        self, document: Document, question: Question, cancel: CancelToken | None = None
    ) -> RunPlan:
        return self.planner.plan(document, question, cancel)

    # -- running ----------------------------------------------------------------------
    def ask(
        self,
        document: Document,
        document_id: int,
        session_id: int,
        plan: RunPlan,
        cancel: CancelToken,
    ) -> Iterator[Event]:
        """Store ``plan`` as a new run of ``document`` in ``session_id``, then read it."""
        # What a review months later needs besides the model file: the budgets, how the
        # model was loaded (GPU layers, KV cache...), and which software answered.
        settings = {
            **self.settings.for_record(),  # not the recent files, not a URL's password
            "budgets": asdict(plan.budgets),
            "model_details": dict(self.backend.identity.details),
            "software": software(),
        }
        try:
            run_id = yield from self.checkpoints.persist(
                0,
                "the new run",
                lambda: self.store.create_run(
                    session_id,
                    document_id,
                    plan.question,
                    plan.mode,
                    plan.reason,
                    self.backend.identity,
                    settings,
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
        saved = self.checkpoints
        try:
            run = self.store.get_run(run_id)
            steps = list(run.steps)
            for step in list(saved.unsaved_steps.get(run_id, [])):
                if step.index == len(steps):  # computed before, never written: write it now
                    yield from saved.save_step(run_id, step, cancel)
                    steps.append(step)
                else:
                    saved.forget_step(run_id, step)
            # only what really differs from the run's own settings counts as a change
            changes = {k: v for k, v in changes.items() if run.settings.get(k) != v}
            settings = resume_settings(run.settings, self.settings, changes)
            budgets = self.planner.run_budgets(run, settings, changes)
            notes = describe_changes(run.settings, changes)
            if notes:
                notes = ["resumed with changed settings: " + ", ".join(notes)]
            yield from saved.persist(
                run_id,
                "the run's status",
                lambda: self.store.set_run_status(run_id, RunStatus.RUNNING),
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
            answer = saved.unsaved_answers.get(run_id)
            read_nothing = len(steps) == len(chunks)
            if answer is None:
                if run.mode == Mode.MEMORY_AGENT:
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
                sampling = sampling_for(settings, budgets.answer_room, budgets.answer_room // 2)
                completion = yield from self._generate(run_id, -1, prompt, sampling, cancel)
                extra = tuple(notes) if read_nothing else ()  # a resume that read nothing
                stats = replace(completion.stats, notes=completion.stats.notes + extra)
                answer = AnswerRecord(completion.content, stats)
            answer_id = yield from saved.save_answer(run_id, answer, cancel)
            yield from self._record_evidence(
                run_id, answer_id, run.mode, document, steps, answer.text, cancel
            )
            yield RunFinished(run_id, answer)
        except Cancelled:
            saved.set_status_quietly(run_id, RunStatus.CANCELLED)
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
        pending = self.checkpoints.pending(run_id)
        resume = self.resume_how(run_id)
        kept = ""
        if pending:
            what = "One computed result is" if pending == 1 else f"{pending} computed results are"
            side_file = self.checkpoints.spilled.get(run_id)
            if side_file:
                kept = (
                    f" {what} kept in {side_file} and will be written first when the run "
                    "is resumed."
                )
            elif self.outlives_run:
                kept = (
                    f" {what} kept in memory, by this program, and will be written first "
                    "when the run is resumed before it closes; it could not be kept in a "
                    "file."
                )
            else:
                what = "One computed result" if pending == 1 else f"{pending} computed results"
                kept = (
                    f" {what} could be kept neither in the database nor in a file, and "
                    "will be computed again when the run is resumed."
                )
        quietly = self.checkpoints.set_status_quietly
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            error = DatabaseFull(f"The disk is full ({error}).", hint="Free some space.")
        if isinstance(error, (DatabaseBusy, DatabaseFull)) and run_id and error.hint:
            hint = error.hint.rstrip(".")
            error = type(error)(error.message, hint=f"{hint}, then {resume}.")
        elif pending:
            kept += f" To resume, {resume}."
        if isinstance(error, StoreError):
            if record:
                quietly(run_id, RunStatus.INTERRUPTED, error.message)
            message = error.message + kept + (f"\n{error.hint}" if error.hint else "")
            return RunFailed(run_id, message, steps_done, exit_code=error.exit_code)
        if isinstance(error, UserError):
            if record:
                quietly(run_id, RunStatus.FAILED, str(error))
            return RunFailed(run_id, str(error) + kept, steps_done, exit_code=error.exit_code)
        error_id = log_bug(error, f"run {run_id}", log)
        message = f"Internal error {error_id}: {error}. Finished steps are saved; resume."
        if record:
            quietly(run_id, RunStatus.FAILED, message)
        return RunFailed(run_id, message + kept, steps_done, {"error_id": error_id})

    def _record_evidence(
        self,
        run_id: int,
        answer_id: int,
        mode: Mode,
        document: Document,
        steps: list[StepRecord],
        answer: str,
        cancel: CancelToken,
    ) -> Generator[Event, None, None]:
        """Where each remembered fact (memory agent) or answer sentence (single pass)
        stands in the document; stored beside the answer for review and export."""
        from app.evidence.provenance import trace_memory, trace_text

        evidence = (
            trace_memory(document, steps)
            if mode == Mode.MEMORY_AGENT
            else trace_text(document, answer)
        )
        yield from self.checkpoints.persist(
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
        sampling = sampling_for(settings, budgets.max_new_tokens, budgets.thinking_cap)
        started = time.perf_counter()
        for done_here, chunk in enumerate(chunks[len(steps) :], start=1):
            cancel.raise_if_cancelled()
            yield StepStarted(run_id, chunk, len(chunks))
            text = document.text[chunk.start : chunk.end]
            prompt = prompts.memory_update_prompt(q_core, memory, plan, text)
            completion = yield from self._generate(run_id, chunk.index, prompt, sampling, cancel)
            step = self._step_record(chunk, completion, memory, plan, budgets, notes)
            notes = []  # a resume's changed settings are noted once, on its first step
            yield from self.checkpoints.save_step(run_id, step, cancel)
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
        parsed = parse_memory_step(completion.stats.raw_output, previous_plan)
        notes = list(extra_notes or []) + list(completion.stats.notes)
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
        stats = replace(completion.stats, thinking=parsed.thinking, notes=tuple(notes))
        return StepRecord(chunk.index, chunk, memory, parsed.plan, stats, parsed.malformed)

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
