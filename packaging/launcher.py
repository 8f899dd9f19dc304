"""Entry point of the frozen app (PyInstaller runs this as __main__; see the spec).

It only adapts the process to how desktops start a bundled app, then calls
``app.__main__.main`` exactly like ``python -m app`` does:

* A windowed Windows executable has no standard streams (sys.stdout is None and file
  descriptors 1 and 2 are closed). llama-cpp-python silences llama.cpp by dup()ing
  descriptors 1 and 2 while a model loads, which raises OSError on a closed descriptor, so
  they are pointed at the null device first.
* A document opened from the desktop arrives as a bare path (Explorer's "%1", a .desktop
  file's %f, Finder through PyInstaller's argv emulation); the app's command line takes
  it as ``--open FILE``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def _ensure_std_streams() -> None:
    for fd, name in ((1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "w", encoding="utf-8", closefd=False))  # noqa: SIM115


def _arguments(argv: list[str]) -> list[str]:
    # -psn_0_NNN: the process serial number old macOS versions pass to apps from Finder.
    args = [a for a in argv if not a.startswith("-psn_")]
    if len(args) == 1 and not args[0].startswith("-") and os.path.isfile(args[0]):
        name = os.path.basename(args[0])
        if "." in name:  # a document, not a subcommand such as `sessions`
            return ["--open", args[0]]
    return args


def main() -> int:
    multiprocessing.freeze_support()
    _ensure_std_streams()
    from app.__main__ import main as app_main

    return app_main(_arguments(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
