"""Run the three methods on one synthetic document's questions; score each answer.

- memory_agent: the app's Engine forced into memory-agent mode (chunk by chunk, memory
  rewritten each step, answer from the final memory).
- single_pass: the Engine forced into single-pass mode when the document fits the
  context; otherwise every question is recorded as "does not fit" and skipped.
- retrieval: the document split into small chunks, ranked by BM25 against the question;
  the top-k chunks that fit the context go, in document order, into the single-pass
  template in one call.

All three use the app's backend protocol, prompts and sampling settings.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from app.agent import prompts
from app.agent.budgets import budgets_for
from app.agent.chunking import plan_chunks
from app.agent.engine import Engine
from app.agent.events import RunCancelled, RunFailed, RunFinished, StepFinished
from app.agent.planning import sampling_for
from app.documents.model import Document
from app.errors import DoesNotFit, UserError
from app.llm.backend import Backend, CancelToken, complete
from app.quality import retrieval
from app.quality.scoring import contains_match, exact_match, extract_answer
from app.quality.synth import SyntheticDocument, SynthQuestion
from app.records import Mode, Question
from app.settings import Settings

RETRIEVAL = "retrieval"
# The methods are plain strings (JSON reports): the two run modes, and retrieval.
MEMORY_AGENT, SINGLE_PASS = Mode.MEMORY_AGENT.value, Mode.SINGLE_PASS.value
METHODS = (MEMORY_AGENT, SINGLE_PASS, RETRIEVAL)
# The format instruction (q_inst): reaches only the final answer, as in the app.
Q_INST = "Answer with only the name, city or number, nothing else."


@dataclass
class Outcome:
    method: str
    question_id: str
    kind: str
    question: str
    gold: str
    predicted: str = ""  # the short answer extracted from the reply
    reply: str = ""  # the model's whole answer (thinking removed)
    em: bool | None = None  # None: not answered (skipped or failed)
    contains: bool | None = None
    status: str = "ok"  # ok | does_not_fit | failed | cancelled
    steps: int = 0  # model calls: memory steps + the answer, or 1
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens: int = 0
    seconds: float = 0.0
    note: str = ""

    def score(self, reply: str) -> None:
        self.reply = reply.strip()
        self.predicted = extract_answer(reply)
        self.em = exact_match(self.predicted, self.gold)
        self.contains = contains_match(reply, self.gold)
        self.tokens = self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Options:
    top_k: int = 4
    retrieval_chunk_tokens: int = 128


class Harness:
    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        synth: SyntheticDocument,
        options: Options = Options(),
        log: TextIO | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.synth = synth
        self.options = options
        self.log = log
        self.document: Document = synth.document()
        self.folder = tempfile.TemporaryDirectory(prefix="qwenlong-quality-")
        from app.store.database import open_database

        self.store = open_database(Path(self.folder.name) / "quality.sqlite3")
        self.engine = Engine(backend, self.store, settings)
        self.document_id = self.store.add_document(self.document)
        self.session_id = self.store.create_session(self.document_id, "quality harness")
        self._chunks: list[str] | None = None
        self._spans: list[tuple[int, int]] = []
        self.cancel = CancelToken()

    def close(self) -> None:
        self.store.close()
        self.folder.cleanup()

    def say(self, text: str) -> None:
        if self.log is not None:
            self.log.write(text + "\n")
            self.log.flush()

    def run(self, methods: Sequence[str]) -> list[Outcome]:
        outcomes = []
        # Method by method: consecutive single-pass questions reuse the document's KV prefix.
        for method in methods:
            for q in self.synth.questions:
                outcome = self.run_one(method, q)
                mark = {True: "EM", False: "--", None: "  "}[outcome.em]
                self.say(
                    f"[{method}] {q.id} {q.kind:<9} {mark} {outcome.seconds:6.1f} s  "
                    f"gold {q.answer!r}  got {outcome.predicted[:60]!r}"
                    + (
                        f"  ({outcome.status}: {outcome.note.splitlines()[0]})"
                        if outcome.status != "ok" and outcome.note
                        else ""
                    )
                )
                outcomes.append(outcome)
        return outcomes

    def run_one(self, method: str, q: SynthQuestion) -> Outcome:
        outcome = Outcome(method, q.id, q.kind, q.text, q.answer)
        started = time.perf_counter()
        try:
            if method == RETRIEVAL:
                self._retrieval(q, outcome)
            else:
                self._engine(method, q, outcome)
        except DoesNotFit as error:
            outcome.status, outcome.note = "does_not_fit", str(error)
        except UserError as error:
            outcome.status, outcome.note = "failed", str(error)
        except Exception as error:  # noqa: BLE001 - one failed question must not stop the run
            outcome.status = "failed"
            outcome.note = f"{type(error).__name__}: {error}"
        outcome.seconds = round(time.perf_counter() - started, 2)
        return outcome

    def _engine(self, mode: str, q: SynthQuestion, outcome: Outcome) -> None:
        question = Question(q.text, q.text, Q_INST, Mode(mode))
        plan = self.engine.plan(self.document, question, self.cancel)
        events = self.engine.ask(
            self.document, self.document_id, self.session_id, plan, self.cancel
        )
        for event in events:
            if isinstance(event, StepFinished):
                outcome.steps += 1
                outcome.prompt_tokens += event.step.stats.prompt_tokens
                outcome.completion_tokens += event.step.stats.completion_tokens
            elif isinstance(event, RunFinished):
                outcome.steps += 1
                stats = event.answer.stats
                outcome.prompt_tokens += stats.prompt_tokens
                outcome.completion_tokens += stats.completion_tokens
                outcome.score(event.answer.text)
                if stats.cached_tokens:
                    outcome.note = f"{stats.cached_tokens:,} prompt tokens from KV cache"
            elif isinstance(event, (RunFailed, RunCancelled)):
                outcome.status = "failed" if isinstance(event, RunFailed) else "cancelled"
                outcome.note = getattr(event, "message", "")

    def chunks(self) -> list[str]:
        if self._chunks is None:
            spans = plan_chunks(
                self.document.text, self.backend.count_tokens, self.options.retrieval_chunk_tokens
            )
            self._chunks = [self.document.text[c.start : c.end] for c in spans]
            self._spans = [(c.start, c.end) for c in spans]
        return self._chunks

    def _retrieval(self, q: SynthQuestion, outcome: Outcome) -> None:
        chunks = self.chunks()
        budgets = budgets_for(self.settings, self.backend.count_tokens(f"{q.text}\n{Q_INST}"))
        frame = self.backend.count_tokens(prompts.single_pass_prompt("", q.text, Q_INST))
        # Room for passages: the context less the answer's room, the template and a margin
        # for the chat template's own tokens.
        budget = self.settings.n_ctx - budgets.answer_room - frame - 64
        chosen = retrieval.select(
            chunks, q.text, self.options.top_k, budget, self.backend.count_tokens
        )
        passages = "\n\n".join(chunks[i] for i in chosen)
        found = sum(
            any(self._spans[i][0] <= self.synth.facts[f].start < self._spans[i][1] for i in chosen)
            for f in q.fact_ids
        )
        outcome.note = (
            f"chunks {[i + 1 for i in chosen]} of {len(chunks)}; "
            f"{found}/{len(q.fact_ids)} needed facts in the prompt"
        )
        prompt = prompts.single_pass_prompt(passages, q.text, Q_INST)
        completion = complete(
            self.backend,
            [{"role": "user", "content": prompt}],
            sampling_for(self.engine.settings, budgets.answer_room, budgets.answer_room // 2),
            self.cancel,
        )
        outcome.steps = 1
        outcome.prompt_tokens = completion.stats.prompt_tokens
        outcome.completion_tokens = completion.stats.completion_tokens
        outcome.score(completion.content)
