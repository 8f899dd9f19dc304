"""Run the three methods on one synthetic document's questions; score, save, plot.

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

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from app.agent import prompts
from app.agent.budgets import budgets_for
from app.agent.chunking import plan_chunks
from app.agent.engine import Engine
from app.agent.events import RunCancelled, RunFailed, RunFinished, StepFinished
from app.agent.planning import sampling_for
from app.documents.model import Document
from app.errors import DoesNotFit, UserError
from app.gui.quality_plot import Bar, HistoryPoint, draw
from app.llm.backend import Backend, CancelToken, complete
from app.model_options import add_model_options
from app.quality import retrieval
from app.quality.scoring import contains_match, exact_match, extract_answer
from app.quality.synth import SyntheticDocument, SynthQuestion, generate
from app.records import Mode, Question
from app.settings import Settings

RETRIEVAL = "retrieval"
# The methods are plain strings (JSON reports): the two run modes, and retrieval.
MEMORY_AGENT, SINGLE_PASS = Mode.MEMORY_AGENT.value, Mode.SINGLE_PASS.value
METHODS = (MEMORY_AGENT, SINGLE_PASS, RETRIEVAL)
ALIASES = {
    "agent": MEMORY_AGENT,
    "memory": MEMORY_AGENT,
    "single": SINGLE_PASS,
    "rag": RETRIEVAL,
    "bm25": RETRIEVAL,
}
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


def summarise(outcomes: Sequence[Outcome], methods: Sequence[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for method in methods:
        mine = [o for o in outcomes if o.method == method]
        done = [o for o in mine if o.em is not None]
        entry: dict[str, Any] = {
            "questions": len(mine),
            "answered": len(done),
            "skipped": sum(o.status == "does_not_fit" for o in mine),
            "failed": sum(o.status in ("failed", "cancelled") for o in mine),
            "em": None,
            "contains": None,
        }
        if done:
            n = len(done)
            entry.update(
                em=round(sum(bool(o.em) for o in done) / n, 3),
                contains=round(sum(bool(o.contains) for o in done) / n, 3),
                mean_seconds=round(sum(o.seconds for o in done) / n, 2),
                mean_tokens=round(sum(o.tokens for o in done) / n),
                mean_steps=round(sum(o.steps for o in done) / n, 2),
                em_by_kind={
                    kind: round(
                        sum(bool(o.em) for o in done if o.kind == kind)
                        / sum(o.kind == kind for o in done),
                        3,
                    )
                    for kind in dict.fromkeys(o.kind for o in done)
                },
            )
        summary[method] = entry
    return summary


def table(summary: dict[str, Any], outcomes: Sequence[Outcome]) -> str:
    lines = [
        f"{'method':<14}{'answered':>9}{'EM':>7}{'contains':>10}{'s/question':>12}"
        f"{'tokens/q':>10}{'calls/q':>9}"
    ]
    for method, s in summary.items():
        if s["em"] is None:
            why = "does not fit the context" if s["skipped"] else "no answers"
            lines.append(f"{method:<14}{s['answered']:>5}/{s['questions']:<3}  {why}")
            continue
        lines.append(
            f"{method:<14}{s['answered']:>5}/{s['questions']:<3}{s['em']:>7.2f}"
            f"{s['contains']:>10.2f}{s['mean_seconds']:>12.1f}{s['mean_tokens']:>10,}"
            f"{s['mean_steps']:>9.1f}"
        )
    lines.append("")
    methods = list(summary)
    lines.append(f"{'question':<14}{'gold':<18}" + "".join(f"{m:<22}" for m in methods))
    for qid in dict.fromkeys(o.question_id for o in outcomes):
        row = [o for o in outcomes if o.question_id == qid]
        cells = []
        for m in methods:
            o = next((o for o in row if o.method == m), None)
            if o is None or o.em is None:
                cells.append(f"{'(' + (o.status if o else '-') + ')':<22}")
            else:
                mark = "=" if o.em else ("~" if o.contains else "x")
                cells.append(f"{mark} {o.predicted[:19]:<20}")
        lines.append(f"{qid + ' ' + row[0].kind:<14}{row[0].gold[:17]:<18}" + "".join(cells))
    lines.append("(= exact match, ~ gold contained in the reply, x wrong)")
    return "\n".join(lines)


def history(folder: Path) -> list[HistoryPoint]:
    """EM per method of every quality-*.json in ``folder``, oldest first."""
    runs = []
    for path in folder.glob("quality-*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            em = {m: s["em"] for m, s in data["summary"].items() if s.get("em") is not None}
            when = str(data.get("when", ""))
            order = (when, path.stat().st_mtime_ns)
        except (OSError, ValueError, KeyError, AttributeError):
            continue
        runs.append((order, HistoryPoint(when[5:16].replace("T", " ") or path.stem, em)))
    return [point for _, point in sorted(runs, key=lambda run: run[0])]


def plot_results(results: dict[str, Any], png: Path, folder: Path) -> Path:
    bars = []
    for method, s in results["summary"].items():
        note = "does not fit" if s["em"] is None and s["skipped"] else "no answers"
        bars.append(Bar(method, s["em"], s["contains"], note))
    c = results["config"]
    subtitle = (
        f"{results['model']['name']} · {results['document']['tokens']:,}-token document · "
        f"{c['questions']} questions · seed {c['seed']} · {results['when']}"
    )
    return draw(
        png, bars, history(folder), "Exact match per method (synthetic multi-hop QA)", subtitle
    )


def resolve_methods(names: Sequence[str]) -> list[str]:
    methods = []
    for item in names:
        for name in item.replace(",", " ").split():
            method = ALIASES.get(name, name)
            if method not in METHODS:
                raise SystemExit(f"unknown method {name!r}: choose from {', '.join(METHODS)}")
            if method not in methods:
                methods.append(method)
    return methods or list(METHODS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app quality",
        description="Answer quality on a synthetic long document with known answers: memory "
        "agent vs single pass vs BM25 chunk retrieval (see docs/quality.md). Without --model "
        "or --server the demo model runs with a 4,096-token context, 512-token chunks and 96 "
        "new tokens per call; otherwise the context is 32,768 tokens.",
    )
    parser.add_argument("--doc-tokens", type=int, default=1200, help="document size (about)")
    parser.add_argument("--questions", type=int, default=5, help="number of questions")
    parser.add_argument("--seed", type=int, default=0, help="document and question seed")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["memory_agent,single_pass,retrieval"],
        help="memory_agent single_pass retrieval (or agent, single, rag)",
    )
    add_model_options(parser)  # the same model options as `ask`
    parser.add_argument(
        "--kv-cache", default="f16", choices=["f16", "q8_0", "q4_0"], help="KV cache type"
    )
    parser.add_argument("--top-k", type=int, default=4, help="retrieval: chunks per prompt")
    parser.add_argument(
        "--retrieval-chunk-tokens", type=int, default=128, help="retrieval: tokens per chunk"
    )
    parser.add_argument("--out", default="bench-results", help="folder for JSON and PNG")
    parser.add_argument("--no-plot", action="store_true", help="write no PNG")
    parser.add_argument("--quiet", action="store_true", help="no per-question progress")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    demo = not args.model and not args.server
    settings = Settings(
        backend="remote" if args.server else "local",
        model_path=args.model or "",
        remote_url=args.server or "",
        remote_model=args.server_model or "",
        n_ctx=args.ctx or (4096 if demo else 32768),
        chunk_tokens=args.chunk_tokens if args.chunk_tokens is not None else (512 if demo else 0),
        memory_tokens=args.memory_tokens or 0,
        max_new_tokens=(
            args.max_new_tokens if args.max_new_tokens is not None else (96 if demo else 0)
        ),
        n_gpu_layers=args.gpu_layers if args.gpu_layers is not None else 0,
        flash_attn=bool(args.flash_attn),
        kv_cache_type=args.kv_type or args.kv_cache,
        n_cpu_moe=args.n_cpu_moe or 0,
        cpu_moe=bool(args.cpu_moe),
        max_ctx=args.max_ctx or Settings.max_ctx,
    )
    # As `ask`: a placement value given by hand is used as given, else the plan decides.
    placed = ("gpu_layers", "n_cpu_moe", "cpu_moe", "kv_type", "flash_attn")
    manual = any(getattr(args, name) not in (None, False) for name in placed)
    settings = settings.with_changes(placement=args.placement or ("manual" if manual else "auto"))
    return settings.checked()


def main(argv: Sequence[str] | None = None, backend: Backend | None = None) -> int:
    """``python -m app quality [options]``; ``backend`` replaces the model (tests)."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    methods = resolve_methods(args.methods)
    settings = settings_from(args)
    started = time.perf_counter()
    synth = generate(args.seed, args.doc_tokens, args.questions)
    own_backend = backend is None
    if backend is None:
        from app.llm.factory import open_backend

        backend = open_backend(settings)
    log = None if args.quiet else sys.stderr
    harness = Harness(
        backend, settings, synth, Options(args.top_k, args.retrieval_chunk_tokens), log
    )
    try:
        doc_tokens = backend.count_tokens(synth.text)
        if log:
            log.write(
                f"Model {backend.identity.name}; document {doc_tokens:,} tokens "
                f"({len(synth.text):,} chars, {len(synth.facts)} facts), "
                f"questions: {len(synth.questions)}, methods: {', '.join(methods)}\n"
            )
        outcomes = harness.run(methods)
    finally:
        harness.close()
        if own_backend:
            backend.close()
    summary = summarise(outcomes, methods)
    when = time.strftime("%Y-%m-%dT%H:%M:%S")
    results: dict[str, Any] = {
        "kind": "quality",
        "when": when,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "model": {
            "backend": backend.identity.backend,
            "name": backend.identity.name,
            "path": backend.identity.path,
            "n_ctx": backend.identity.n_ctx,
        },
        "settings": {
            k: v
            for k, v in settings.to_dict().items()
            if k not in ("recent_files", "remote_url", "model_path")
        },
        "config": {
            "doc_tokens": args.doc_tokens,
            "questions": args.questions,
            "seed": args.seed,
            "methods": methods,
            "top_k": args.top_k,
            "retrieval_chunk_tokens": args.retrieval_chunk_tokens,
            "q_inst": Q_INST,
        },
        "document": {
            "chars": len(synth.text),
            "tokens": doc_tokens,
            "facts": len(synth.facts),
        },
        "questions": [
            {
                "id": q.id,
                "kind": q.kind,
                "text": q.text,
                "answer": q.answer,
                "facts": [
                    {
                        "id": f,
                        "text": synth.facts[f].text,
                        "position": round(synth.facts[f].position, 3),
                    }
                    for f in q.fact_ids
                ],
            }
            for q in synth.questions
        ],
        "summary": summary,
        "results": [asdict(o) for o in outcomes],
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = out / f"quality-{stamp}.json", 1
    while target.exists():  # two runs in one second
        n += 1
        target = out / f"quality-{stamp}-{n}.json"
    target.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(table(summary, outcomes))
    print(f"written {target}")
    if not args.no_plot:
        png = plot_results(results, target.with_suffix(".png"), out)
        print(f"written {png}")
    return 0
