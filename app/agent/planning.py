"""Planning a run: the mode, the chunks and the budgets, computed once and stored.

``Planner.plan`` turns a question into a ``RunPlan`` (the question itself, the mode with
its reason, the chunks and the budgets). The engine stores the plan with the run, and a
resume goes on with those stored budgets; they are computed again (by the same
``Planner.budgets``) only when the user explicitly changes one of the settings they are
made of, and then checked against the run's stored chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from app.agent import prompts
from app.agent.budgets import PROMPT_OVERHEAD, Budgets, budgets_for
from app.agent.chunking import plan_chunks
from app.documents.model import Document
from app.errors import DoesNotFit, UserError
from app.llm.backend import Backend, CancelToken, Sampling
from app.records import Chunk, Mode, Question, RunRecord
from app.settings import Settings

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
BUDGET_FIELDS = frozenset(
    {"n_ctx", "chunk_tokens", "memory_tokens", "max_new_tokens", "thinking_cap"}
)


@dataclass(frozen=True)
class RunPlan:
    """What a run will do, shown before it starts and stored with it."""

    question: Question
    mode: Mode  # SINGLE_PASS or MEMORY_AGENT, never AUTO
    reason: str
    chunks: tuple[Chunk, ...]
    budgets: Budgets
    document_tokens: int


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


def stored_budgets(settings: Mapping[str, Any]) -> Budgets | None:
    """The budgets a run was planned with (kept in its settings), if it has them."""
    stored = settings.get("budgets")
    if not stored:
        return None
    names = {f.name for f in fields(Budgets)}
    return Budgets(**{k: v for k, v in stored.items() if k in names})


def sampling_for(settings: Settings, max_tokens: int, thinking_cap: int) -> Sampling:
    return Sampling(
        temperature=settings.temperature,
        top_p=settings.top_p,
        top_k=settings.top_k,
        min_p=settings.min_p,
        presence_penalty=settings.presence_penalty,
        max_tokens=max_tokens,
        thinking_cap=thinking_cap,
        seed=settings.seed,
    )


class Planner:
    def __init__(self, backend: Backend, settings: Settings) -> None:
        self.backend = backend
        # An automatic context (0) is whatever the backend was loaded with: budgets are
        # computed from a real size, whoever plans (the engine, the window's worker).
        self.settings = settings if settings.n_ctx else settings.with_changes(n_ctx=backend.n_ctx)
        self._prompt_overhead: int | None = None
        # Called with (characters tokenized, total) while a document is cut into chunks.
        self.progress: Callable[[int, int], None] | None = None

    def prompt_overhead(self) -> int:
        """The memory-update template's size in this model's own tokens, plus chat markup.
        Measured rather than assumed: Qwen's tokenizer needs ~560, a small vocabulary
        several times that, and a fixed guess would overflow the context window."""
        if self._prompt_overhead is None:
            template = prompts.memory_update_prompt("", "", "", "")
            measured = self.backend.count_tokens(template) * 11 // 10 + 64
            self._prompt_overhead = max(PROMPT_OVERHEAD, measured)
        return self._prompt_overhead

    def question_tokens(self, question: Question) -> int:
        return self.backend.count_tokens(f"{question.q_core}\n{question.q_inst}")

    def budgets(self, question: Question, settings: Settings | None = None) -> Budgets:
        """The one place budgets are computed (planning, and a resume whose user changed
        a budget setting)."""
        return budgets_for(
            settings or self.settings, self.question_tokens(question), self.prompt_overhead()
        )

    def plan(
        self, document: Document, question: Question, cancel: CancelToken | None = None
    ) -> RunPlan:
        question_tokens = self.question_tokens(question)
        budgets = self.budgets(question)
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
            progress=self.progress,
        )
        doc_tokens = sum(c.tokens for c in chunks)
        needed = doc_tokens + question_tokens + 120 + budgets.answer_room
        fits = needed <= budgets.n_ctx
        mode, chosen_by = Mode(question.mode), "chosen by the user"
        if mode == Mode.AUTO and self.settings.mode != Mode.AUTO:
            mode, chosen_by = Mode(self.settings.mode), "the default mode set in Settings"
        if mode == Mode.AUTO:
            mode = Mode.SINGLE_PASS if fits else Mode.MEMORY_AGENT
            reason = (
                f"the document ({doc_tokens:,} tokens) fits the {budgets.n_ctx:,}-token context"
                if fits
                else f"the document ({doc_tokens:,} tokens) needs {len(chunks)} chunks of "
                f"up to {budgets.chunk_tokens:,} tokens in a {budgets.n_ctx:,}-token context"
            )
        elif mode == Mode.SINGLE_PASS and not fits:
            raise DoesNotFit(
                f"The document ({doc_tokens:,} tokens) does not fit the {budgets.n_ctx:,}-token "
                "context in one pass.",
                hint="Choose the memory agent, or raise the context size in Settings.",
            )
        else:
            reason = chosen_by
        return RunPlan(question, mode, reason, tuple(chunks), budgets, doc_tokens)

    def run_budgets(
        self, run: RunRecord, settings: Settings, changes: Mapping[str, Any]
    ) -> Budgets:
        """A resumed run's budgets: the stored ones (recomputed only when the user changed
        one of them), checked against the stored chunks and the loaded model's context."""
        budgets = stored_budgets(run.settings)
        if budgets is None or BUDGET_FIELDS & set(changes):
            budgets = self.budgets(run.asked, settings)
            if run.mode == Mode.MEMORY_AGENT and run.chunks:
                longest = max(c.tokens for c in run.chunks)
                need = (
                    budgets.prompt_overhead
                    + self.question_tokens(run.asked)
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
        # A model loaded now with less context than the run's would overflow (or silently
        # cut) its prompts.
        loaded, wanted = loaded_context(self.backend), run_context(run, budgets)
        if loaded and loaded < wanted:
            raise UserError(
                f"Run {run.id} was read with a {wanted:,}-token context, but the model is "
                f"loaded with {loaded:,} tokens.",
                hint=f"Set the context size to {wanted:,} tokens (in Settings, or --ctx "
                f"{wanted}) and resume again.",
            )
        return budgets


def run_context(run: RunRecord, budgets: Budgets | None = None) -> int:
    """The context a resumed run needs loaded: the one its prompts were sized for (its
    ``budgets``, by default the stored ones), never more than its model was loaded with
    (``run.n_ctx``); 0 when the run does not say."""
    budgets = budgets or stored_budgets(run.settings)
    sized = budgets.n_ctx if budgets is not None else int(run.settings.get("n_ctx") or 0)
    return min(sized, run.n_ctx or sized)


def loaded_context(backend: Backend) -> int:
    """The context ``backend`` is loaded with; 0 when it is only a guess (a server that
    does not say)."""
    identity = backend.identity
    return identity.n_ctx if "n_ctx" not in identity.details else 0


@dataclass(frozen=True)
class Speed:
    """The throughput an estimate assumes: a guess until this model has been measured."""

    prompt_tps: float = 200.0
    gen_tps: float = 40.0
    step_output: float = 0.0  # tokens a memory step writes, thinking included; 0: unknown

    @classmethod
    def measured(cls, steps: Sequence[tuple[int, float, int, float]]) -> Speed | None:
        """From steps' (prompt tokens, prompt ms, generated tokens, generation ms); None
        when they measured nothing."""
        prompt_ms = sum(s[1] for s in steps)
        generation_ms = sum(s[3] for s in steps)
        if prompt_ms <= 0 or generation_ms <= 0:
            return None
        generated = sum(s[2] for s in steps)
        return cls(
            prompt_tps=sum(s[0] for s in steps) / (prompt_ms / 1000),
            gen_tps=generated / (generation_ms / 1000),
            step_output=generated / len(steps),
        )


def estimate_seconds(plan: RunPlan, speed: Speed) -> float:
    """Rough run time, shown before a run starts. A step's output is what this model's
    steps wrote when measured (QwenLong's thinking makes it much more than the memory),
    else the memory budget and a quarter for the plan; never more than its output cap."""
    b = plan.budgets
    if plan.mode == Mode.SINGLE_PASS:
        return plan.document_tokens / speed.prompt_tps + b.answer_room / 2 / speed.gen_tps
    per_step_prompt = b.chunk_tokens + b.memory_tokens + b.prompt_overhead
    per_step_gen = min(speed.step_output or b.memory_tokens * 1.25, b.max_new_tokens)
    steps = len(plan.chunks)
    return steps * (per_step_prompt / speed.prompt_tps + per_step_gen / speed.gen_tps) + (
        b.memory_tokens / speed.prompt_tps + b.answer_room / 2 / speed.gen_tps
    )
