"""Entry point: ``python -m app`` opens the window; subcommands run headless."""

from __future__ import annotations

import os
import sys

from app.errors import UserError, describe_error, environment_error


def main(argv: list[str] | None = None) -> int:
    from app.cli import build_parser
    from app.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        if args.self_test:
            from app.selftest import run_self_test

            return run_self_test()
        if args.command:
            try:
                return int(args.func(args))
            finally:
                from app.settings import take_notices

                for notice in take_notices():  # e.g. a damaged settings file set aside
                    print(f"Note: {notice}", file=sys.stderr)
        from app.gui.main import run_gui

        return run_gui(open_file=args.open, sample=args.sample)
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:
        # Whoever read the output has gone (`python -m app text F | head`): stop quietly,
        # as Unix tools do; stdout goes nowhere so that exiting does not fail on it again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE
    except Exception as error:  # noqa: BLE001 - a bug: its traceback goes to the log
        what = f"python -m app {args.command}" if args.command else "python -m app"
        print(f"Error: {describe_error(error, what)}", file=sys.stderr)
        environment = environment_error(error)  # a full or read-only disk: not a bug
        return environment.exit_code if environment is not None else 1
    except KeyboardInterrupt:
        # Ctrl-C before a command installed its own handler (opening the document or the
        # database): nothing was started, so a quiet cancel, not a traceback.
        print("\nCancelled.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
