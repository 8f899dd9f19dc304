"""Headless commands: ask, resume, sessions, show. ``python -m app --help`` lists them.

This module is the parser that names every subcommand; the commands live beside it
(ask.py: ask and resume, history.py: the stored runs, documents.py: which files a
command reads, transcript.py: what a run prints)."""

from __future__ import annotations

import argparse

from app.agent.checkpoint import DB_WAIT_ENV, DB_WAIT_S

# build_parser reads the commands from this module's names when it runs, so replacing
# one here (as the tests do with cmd_sessions) replaces the command.
from app.cli.ask import cmd_ask, cmd_resume
from app.cli.history import cmd_compare, cmd_export, cmd_sessions, cmd_show
from app.llm.factory import DEMO_NOTE
from app.model_options import add_model_options
from app.records import Mode

PASSWORD_HELP = (
    "password of an encrypted PDF; may be repeated: each is tried on each protected file "
    "of a collection. '-' asks for it on the terminal (not shown, not kept in the shell's "
    "history); QWENLONG_READER_PASSWORD gives one too"
)


def add_db_wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db-wait",
        type=float,
        metavar="SECONDS",
        help="how long a finished step waits for a database another program has locked, "
        "or for space on a full disk, before the run stops, resumable (default "
        f"{DB_WAIT_S:.0f}; {DB_WAIT_ENV})",
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
    ask.add_argument("--password", action="append", help=PASSWORD_HELP)
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
    resume.add_argument("--password", action="append", help=PASSWORD_HELP)
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

    from app.cli.models import add_models_command

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
