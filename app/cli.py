"""Headless commands: ask, resume, sessions, show. ``python -m app --help`` lists them."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from app.agent.checkpoint import DB_WAIT_ENV, DB_WAIT_S
from app.agent.decompose import decompose
from app.agent.engine import Engine
from app.agent.events import (
    AnswerStarted,
    DatabaseWaiting,
    Event,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    TokenStreamed,
)
from app.agent.planning import RUN_FIELDS, resume_settings
from app.agent.queue import ask_many
from app.documents.ingest import load_document
from app.documents.model import Document
from app.errors import Cancelled, UserError
from app.llm.backend import Backend, CancelToken
from app.llm.factory import DEMO_NOTE, open_backend
from app.model_options import add_model_options, settings_from_args
from app.records import Mode, Question
from app.settings import Settings, load_settings
from app.store import collections
from app.store.database import Store, open_database

EXIT_CANCELLED = 130


class Printer:
    """Prints events as a readable transcript: each chunk's memory and plan, the answer."""

    def __init__(
        self, out: TextIO, stream_tokens: bool, several: bool = False, kept: bool = True
    ) -> None:
        self.out = out
        self.stream_tokens = stream_tokens
        self.several = several  # several runs interleave: tag lines with the run id
        self.kept = kept  # False: an unsaved run (protected document), nothing to resume

    def __call__(self, event: Event) -> None:
        tag = f"[run {getattr(event, 'run_id', '?')}] " if self.several else ""

        def w(text: str) -> None:
            self.out.write(text.replace("== ", f"== {tag}", 1) if tag else text)

        if isinstance(event, RunStarted):
            w(f"Run {event.run_id}: {event.mode.value.replace('_', ' ')} ({event.mode_reason}).\n")
            w(f"Question: {event.q_core}\n")
            if event.q_inst:
                w(f"Format: {event.q_inst}\n")
            if event.resumed_from:
                w(f"Resuming after step {event.resumed_from} of {len(event.chunks)}.\n")
        elif isinstance(event, StepStarted):
            c = event.chunk
            w(
                f"\n== Step {c.index + 1}/{event.total}: pages {c.page_first}-{c.page_last}, "
                f"{c.tokens:,} tokens ==\n"
            )
        elif isinstance(event, TokenStreamed) and self.stream_tokens:
            w(event.text)
        elif isinstance(event, StepFinished):
            step, s = event.step, event.step.stats
            if self.stream_tokens:
                w("\n")
            w(f"Memory:\n{step.memory}\nPlan:\n{step.plan}\n")
            eta = f", about {event.eta_s:.0f} s left" if event.eta_s is not None else ""
            w(
                f"({s.prompt_tokens:,} prompt + {s.completion_tokens:,} generated tokens, "
                f"{s.wall_ms / 1000:.1f} s{eta})\n"
            )
            for note in s.notes:
                w(f"Note: {note}\n")
        elif isinstance(event, AnswerStarted):
            w("\n== Answer ==\n")
        elif isinstance(event, RunFinished):
            if not self.stream_tokens:
                w(event.answer.text + "\n")
            else:
                w("\n")
        elif isinstance(event, DatabaseWaiting):
            w(
                f"Waiting for the database: {event.reason} {event.what.capitalize()} is kept "
                f"in memory; retrying ({event.waited_s:.0f} s of up to "
                f"{event.limit_s:.0f} s)...\n"
            )
        elif isinstance(event, RunCancelled) and not event.run_id:
            w("\nCancelled before the run started; nothing was stored.\n")
        elif isinstance(event, RunCancelled) and not self.kept:
            w(f"\nCancelled after {event.steps_done} finished steps (not saved).\n")
        elif isinstance(event, RunCancelled):
            w(
                f"\nCancelled after {event.steps_done} finished steps; they are saved. "
                f"Resume with: python -m app resume {event.run_id}\n"
            )
        elif isinstance(event, RunFailed) and not event.run_id:
            w(f"\nFailed: {event.message}\n")
        elif isinstance(event, RunFailed):
            w(f"\nRun {event.run_id} failed: {event.message}\n")
        self.out.flush()


def drive(events: Iterator[Event], printer: Printer) -> int:
    """Print every event; the exit code: 130 after a cancel, else the first failure's own
    code (database 5, server 6... see app/errors.py; 1 for a bug), else 0."""
    code = 0
    for event in events:
        printer(event)
        if isinstance(event, RunCancelled):
            code = EXIT_CANCELLED
        elif isinstance(event, RunFailed) and code == 0:
            code = event.exit_code or 1
    return code


# Below this, cutting a document into chunks takes under a second: nothing to show.
PLANNING_PROGRESS_CHARS = 2_000_000


class PlanningProgress:
    """Tokenizing a long document into chunks (a 50 MB text takes a minute): one stderr
    line, rewritten in place."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = done * 100 // max(total, 1)
        if percent != self.shown:
            self.shown = percent
            end = "\n" if done >= total else ""
            self.out.write(f"\rPlanning chunks: {percent}% of {total / 1e6:.1f} M characters{end}")
            self.out.flush()


class LoadProgress:
    """llama.cpp's load progress as one stderr line, rewritten in place."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.shown = -1

    def __call__(self, fraction: float) -> None:
        percent = int(fraction * 100)
        if percent != self.shown and (percent - self.shown >= 5 or percent == 100):
            self.shown = percent
            self.out.write(f"\rLoading the model: {percent}%" + ("\n" if percent == 100 else ""))
            self.out.flush()


def load_backend(settings: Settings, cancel: CancelToken) -> Backend:
    """open_backend with the placement plan printed and load progress on stderr; Ctrl-C
    (which sets ``cancel``) stops a load at its next progress report."""
    try:
        backend = open_backend(settings, progress=LoadProgress(sys.stderr), cancel=cancel)
    except Cancelled:
        sys.stderr.write("\nCancelled while loading the model.\n")
        raise SystemExit(EXIT_CANCELLED) from None
    plan = getattr(backend, "plan", None)
    if plan is not None:
        sys.stderr.write(f"Placement (automatic): {plan.describe()}. {plan.reason}\n")
    return backend


def install_interrupt(cancel: CancelToken) -> None:
    def handler(signum: int, frame: object) -> None:
        sys.stderr.write("\nCancelling: finishing nothing new, keeping every saved step...\n")
        cancel.cancel()

    signal.signal(signal.SIGINT, handler)


def split_documents(values: list[str]) -> tuple[list[str], list[str]]:
    """``ask``'s positionals: the leading ones that exist on disk are documents, the rest
    questions (the first is always a document, so a missing file says so)."""
    count = 1
    while count < len(values) - 1 and Path(values[count]).expanduser().exists():
        count += 1
    files, questions = values[:count], values[count:]
    if not questions:
        raise UserError(
            "No question given.", hint='Usage: python -m app ask FILE... "your question"'
        )
    return files, questions


def load_documents(args: argparse.Namespace, files: list[str]) -> Document:
    """One document, or several files / a folder as one collection."""

    def one(path: Path) -> Document:
        return load_document(path, password=args.password, accept_damaged=args.accept_damaged)

    if len(files) == 1 and not Path(files[0]).expanduser().is_dir():
        return one(Path(files[0]))
    from app.documents.collection import load_collection

    return load_collection(files, name=args.collection or "", load=one)


def stored_collection(args: argparse.Namespace) -> Document:
    store = open_database()
    try:
        document_id = collections.find_collection(store, args.collection)
        if document_id is None:
            known = ", ".join(name for name, _ in collections.list_collections(store))
            raise UserError(
                f"There is no collection named {args.collection!r}.",
                hint=(f"Known collections: {known}. " if known else "")
                + 'Create one: python -m app ask FILES... --collection NAME "question"',
            )
        row = store.get_document_row(document_id)
        return reload_document(store, args, document_id, row, f"collection {args.collection}")
    finally:
        store.close()


def cmd_ask(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    values = args.file_and_question
    if args.collection and not Path(values[0]).expanduser().exists():
        # `ask --collection NAME "question"`: the stored collection, read again from disk
        args.question = values
        document = stored_collection(args)
    else:
        files, args.question = split_documents(values)
        args.file = files[0]
        document = load_documents(args, files)
    if document.members:
        print(
            f"Collection {document.title}: {len(document.members)} documents, "
            f"{document.page_count:,} pages.",
            file=sys.stderr,
        )
    for warning in document.warnings:
        print(f"Warning: {warning}", file=sys.stderr)
    # A password-protected document's run (memory, plan, answer, quoted passages) is
    # kept only with the user's consent; otherwise it lives in an in-memory database
    # and is gone when the command ends, even after a crash (README, "Protected
    # documents").
    keep = not document.protected or args.keep_protected_runs
    if not keep and args.session:
        raise UserError(
            f"{document.title} is password-protected, so its runs are not kept and cannot "
            "join a stored session.",
            hint="Add --keep-protected-runs to keep them, or leave out --session.",
        )
    store = open_database() if keep else Store(Path(":memory:"))
    store.mark_stale_running_as_interrupted()
    document_id = store.add_document(document)
    if args.collection and document.members:
        collections.name_collection(store, args.collection, document_id)
    cancel = CancelToken()
    install_interrupt(cancel)
    backend = load_backend(settings, cancel)
    if backend.identity.backend == "local" and "demo" in backend.identity.name:
        print(DEMO_NOTE, file=sys.stderr)
    questions = []
    for text in args.question:
        query = decompose(text)
        questions.append(Question(text, query.q_core, query.q_inst, Mode(args.mode)))
    session_id = args.session or store.create_session(document_id, args.question[0][:120])
    parallel = 1
    # (an in-memory database is one connection: its questions run one after another)
    if backend.identity.backend == "remote" and keep:  # a local Llama is never shared
        slots = settings.remote_parallel
        if slots <= 1 and hasattr(backend, "supports_parallel"):
            slots = backend.supports_parallel()
        parallel = max(1, min(slots, len(questions)))

    def make_engine() -> Engine:
        # Each thread writes through its own connection; the first reuses this one.
        own = store if threading.current_thread() is threading.main_thread() else None
        engine = Engine(backend, own or open_database(), settings, db_wait_s=args.db_wait)
        if len(document.text) > PLANNING_PROGRESS_CHARS:
            engine.planner.progress = PlanningProgress(sys.stderr)
        return engine

    events = ask_many(make_engine, document, document_id, session_id, questions, cancel, parallel)
    printer = Printer(sys.stdout, args.stream and parallel == 1, len(questions) > 1, kept=keep)
    code = drive(events, printer)
    if not keep:
        print(
            f"Not kept: {document.title} is password-protected, so this run was not saved "
            "to the history. Add --keep-protected-runs to keep runs of protected documents.",
            file=sys.stderr,
        )
    return code


def reload_document(
    store: Store, args: argparse.Namespace, document_id: int, row: dict, what: str
) -> Document:
    """A stored document read again from disk: a collection from its members' files, in
    their order, refused when one is gone or has changed (never silently mixed in)."""
    members = collections.members_of(store, document_id)
    if not members:
        return load_document(
            Path(row["path"]), password=args.password, accept_damaged=args.accept_damaged
        )
    changes = collections.changed_members(members)
    if changes:
        raise UserError(
            f"Collection {row['title']}: " + "; ".join(c.describe() for c in changes) + ".",
            hint=f"Reading on would mix other versions into {what}; ask the question again "
            "on the collection as it is now.",
        )
    from app.documents.collection import build_collection

    def one(path: str) -> Document:
        return load_document(Path(path), password=args.password, accept_damaged=args.accept_damaged)

    return build_collection([one(m.path) for m in members], row["title"])


def cmd_resume(args: argparse.Namespace) -> int:
    given = settings_from_args(args)
    # What the user set on this command line (it differs from the saved settings): only
    # that overrides the run's own budgets, sampling, context and model.
    saved = load_settings().to_dict()
    explicit = {k: v for k, v in given.to_dict().items() if saved.get(k) != v}
    store = open_database()
    store.mark_stale_running_as_interrupted()
    run = store.get_run(args.run_id)
    doc_row = store.get_document_row(run.document_id)
    document = reload_document(store, args, run.document_id, doc_row, f"run {args.run_id}")
    if document.sha256 != doc_row["sha256"]:
        raise UserError(
            f"{doc_row['path']} has changed since run {args.run_id} started.",
            hint="Resuming would mix two versions of the document; ask the question again.",
        )
    settings = resume_settings(run.settings, given, explicit)
    changes = {k: v for k, v in explicit.items() if k in RUN_FIELDS}
    cancel = CancelToken()
    install_interrupt(cancel)
    backend = load_backend(settings, cancel)
    engine = Engine(backend, store, settings, db_wait_s=args.db_wait)
    events = engine.resume(args.run_id, document, cancel, changes)
    return drive(events, Printer(sys.stdout, args.stream))


def cmd_sessions(args: argparse.Namespace) -> int:
    store = open_database()
    for row in store.list_sessions(search=args.search):
        print(f"{row['id']:>5}  {row.get('updated_at', '')}  {row.get('title', '')}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = open_database()
    run = store.get_run(args.run_id)
    printer = Printer(sys.stdout, stream_tokens=False)
    printer(
        RunStarted(run.id, run.mode, run.mode_reason, run.q_core, run.q_inst, tuple(run.chunks))
    )
    for step in run.steps:
        printer(StepStarted(run.id, step.chunk, len(run.chunks)))
        printer(StepFinished(run.id, step, len(run.chunks), ""))
    if run.answer is not None:
        printer(AnswerStarted(run.id))
        printer(RunFinished(run.id, run.answer))
    else:
        print(f"\n(no answer: run is {run.status}; {len(run.steps)}/{len(run.chunks)} steps)")
    members = collections.members_of(store, run.document_id)
    if members:  # a collection: which files it read, and any that changed since
        changed = {c.member.index: c for c in collections.changed_members(members)}
        print(f"\nDocuments ({len(members)}):")
        for m in members:
            flag = (
                f"  ** {changed[m.index].what} on disk since the run **"
                if m.index in changed
                else ""
            )
            print(f"  {m.number}. {m.title}  {m.page_count} pages  sha256 {m.sha256[:16]}…{flag}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from app.evidence.provenance import evidence_from_row
    from app.evidence.report import bundle, write_reports

    store = open_database()
    run = store.get_run(args.run_id)
    document_row = store.get_document_row(run.document_id)
    rows = store.list_evidence(run.answer_id) if run.answer_id is not None else []
    evidence = [evidence_from_row(row) for row in rows]
    members = collections.members_of(store, run.document_id)
    changed = {c.member.index: c.what for c in collections.changed_members(members)}
    data = bundle(run, document_row, evidence, members, changed)
    paths = write_reports(data, Path(args.out), f"run-{run.id}")
    for path in paths.values():
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from app.evidence.compare import compare_runs, to_markdown

    markdown = to_markdown(compare_runs(open_database(), args.run_a, args.run_b))
    if args.out:
        Path(args.out).write_text(markdown, encoding="utf-8")
        print(args.out)
    else:
        sys.stdout.write(markdown)
    return 0


def add_db_wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db-wait",
        type=float,
        metavar="SECONDS",
        help="how long a finished step waits for a database another program has locked "
        f"before the run stops, resumable (default {DB_WAIT_S:.0f}; {DB_WAIT_ENV})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qwenlong-reader",
        description="Read long documents with a local QwenLong-L1.5 model. With no command, "
        "opens the window.",
        epilog=DEMO_NOTE,
    )
    parser.add_argument("--self-test", action="store_true", help="run the packaged self-test")
    parser.add_argument("--open", metavar="FILE", help="open this document in the window")
    parser.add_argument(
        "--sample", action="store_true", help="open the bundled sample document in the window"
    )
    sub = parser.add_subparsers(dest="command")

    ask = sub.add_parser(
        "ask",
        help="answer a question about a document or a collection",
        description="ask FILE... QUESTION...: the leading arguments that are files or "
        "folders are the documents (several, or a folder: one collection read in that "
        "order, a folder's files sorted by name); the rest are questions.",
    )
    ask.add_argument(
        "file_and_question",
        nargs="+",
        metavar="FILE_OR_QUESTION",
        help="documents, then one or more questions; several questions run as a queue (in "
        "parallel on a server with parallel slots)",
    )
    ask.add_argument("--collection", metavar="NAME", help="the collection's name")
    ask.add_argument("--mode", default="auto", choices=[m.value for m in Mode])
    ask.add_argument("--password", help="password of an encrypted PDF")
    ask.add_argument(
        "--keep-protected-runs",
        action="store_true",
        help="keep this run in the history even though the document is password-protected "
        "(by default such runs are not saved: their memory and answers quote the document)",
    )
    ask.add_argument(
        "--accept-damaged",
        action="store_true",
        help="read a damaged file anyway, answering from the pages that survived",
    )
    ask.add_argument("--session", type=int, help="add to this session instead of a new one")
    ask.add_argument("--stream", action="store_true", help="print tokens as they arrive")
    add_db_wait_option(ask)
    add_model_options(ask)
    ask.set_defaults(func=cmd_ask)

    resume = sub.add_parser("resume", help="continue an interrupted run at its next chunk")
    resume.add_argument("run_id", type=int)
    resume.add_argument("--password")
    resume.add_argument("--accept-damaged", action="store_true")
    resume.add_argument("--stream", action="store_true")
    add_db_wait_option(resume)
    add_model_options(resume)
    resume.set_defaults(func=cmd_resume)

    sessions = sub.add_parser("sessions", help="list stored sessions")
    sessions.add_argument("--search", help="only sessions whose questions or answers match")
    sessions.set_defaults(func=cmd_sessions)

    show = sub.add_parser("show", help="print a stored run's timeline and answer")
    show.add_argument("run_id", type=int)
    show.set_defaults(func=cmd_show)

    export = sub.add_parser("export", help="write a run's report: Markdown, PDF and JSON")
    export.add_argument("run_id", type=int)
    export.add_argument("--out", default=".", help="folder for the report files")
    export.set_defaults(func=cmd_export)
    compare = sub.add_parser(
        "compare", help="two runs of a question side by side: differences, answers, timelines"
    )
    compare.add_argument("run_a", type=int)
    compare.add_argument("run_b", type=int)
    compare.add_argument("--out", help="write the Markdown comparison to this file")
    compare.set_defaults(func=cmd_compare)

    from app.llm.models_cli import add_models_command

    add_models_command(sub)

    from app.text_cli import add_text_command

    add_text_command(sub)

    from app.doctor import add_doctor_command

    add_doctor_command(sub)

    # prefix_chars="+": every option, --help included, passes through to the module's parser.
    bench = sub.add_parser(
        "bench",
        help="run the benchmarks (see docs/benchmarks.md)",
        add_help=False,
        prefix_chars="+",
    )
    bench.add_argument("bench_args", nargs="*")
    bench.set_defaults(func=cmd_bench)
    quality = sub.add_parser(
        "quality",
        help="answer quality on a synthetic long document: memory agent vs single pass vs "
        "retrieval (see docs/quality.md)",
        add_help=False,
        prefix_chars="+",
    )
    quality.add_argument("quality_args", nargs="*")
    quality.set_defaults(func=cmd_quality)
    return parser


def cmd_quality(args: argparse.Namespace) -> int:
    from app.quality import main

    return main(args.quality_args)


def cmd_bench(args: argparse.Namespace) -> int:
    from app.bench import main

    return main(args.bench_args)
