"""``ask`` and ``resume``: load the documents and the model, run the questions (or the
interrupted run) through the engine, print the transcript; Ctrl-C cancels."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

from app.agent.checkpoint import Checkpoints
from app.agent.decompose import decompose
from app.agent.engine import Engine
from app.agent.planning import RUN_FIELDS, resume_settings
from app.agent.queue import ask_many
from app.cli.documents import load_documents, reload_document, split_documents, stored_collection
from app.cli.transcript import (
    EXIT_CANCELLED,
    PLANNING_PROGRESS_CHARS,
    LoadProgress,
    PlanningProgress,
    Printer,
    drive,
)
from app.errors import Cancelled, UserError
from app.llm.backend import Backend, CancelToken
from app.llm.factory import DEMO_NOTE, open_backend
from app.model_options import settings_from_args
from app.records import Mode, Question
from app.settings import Settings, load_settings
from app.store import collections
from app.store.database import Store, open_database

T = TypeVar("T")


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


def waited(
    store: Store, args: argparse.Namespace, cancel: CancelToken, what: str, write: Callable[[], T]
) -> T:
    """``write()`` retried as a checkpoint is, while another program holds the database's
    lock or its disk is full, for up to --db-wait; the waits are said on stderr."""
    printer = Printer(sys.stderr, False)
    steps = Checkpoints(store, args.db_wait).persist(0, what, write, cancel)
    try:
        while True:
            printer(next(steps))
    except StopIteration as done:
        return cast(T, done.value)
    except Cancelled:
        sys.stderr.write("\nCancelled before the run started; nothing new was stored.\n")
        raise SystemExit(EXIT_CANCELLED) from None


def cli_resume(run_id: int) -> str:
    """How the CLI resumes a run, for the engine's messages."""
    return f"run python -m app resume {run_id}"


def install_interrupt(cancel: CancelToken) -> None:
    """Ctrl-C, and a SIGTERM (`kill`, a service manager stopping the job), cancel the run
    as the window's Cancel does: the saved steps kept, the run marked cancelled, a resume
    hint, exit 130."""

    def handler(signum: int, frame: object) -> None:
        sys.stderr.write("\nCancelling: finishing nothing new, keeping every saved step...\n")
        cancel.cancel()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


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
    cancel = CancelToken()
    install_interrupt(cancel)
    # Waited for like a step: another program's lock or a full disk, up to --db-wait.
    document_id = waited(store, args, cancel, "the document", lambda: store.add_document(document))
    if args.collection and document.members:
        waited(
            store,
            args,
            cancel,
            "the collection's name",
            lambda: collections.name_collection(store, args.collection, document_id),
        )
    store.mark_stale_running_as_interrupted()  # housekeeping, once the lock is had
    backend = load_backend(settings, cancel)
    if backend.identity.backend == "local" and "demo" in backend.identity.name:
        print(DEMO_NOTE, file=sys.stderr)
    questions = []
    for text in args.question:
        query = decompose(text)
        questions.append(Question(text, query.q_core, query.q_inst, Mode(args.mode)))
    session_id = args.session or waited(
        store,
        args,
        cancel,
        "the new session",
        lambda: store.create_session(document_id, args.question[0][:120]),
    )
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
        engine = Engine(
            backend,
            own or open_database(),
            settings,
            db_wait_s=args.db_wait,
            resume_how=cli_resume,
            outlives_run=False,
        )
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
    engine = Engine(
        backend, store, settings, db_wait_s=args.db_wait, resume_how=cli_resume, outlives_run=False
    )
    events = engine.resume(args.run_id, document, cancel, changes)
    return drive(events, Printer(sys.stdout, args.stream))
