"""``python -m app doctor``: what is wrong with this installation, in plain words.

Each check returns findings (ok or a problem with what to do); nothing here repairs or
changes anything, so the doctor is safe to run on a broken or read-only setup.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from app import paths
from app.errors import UserError

# Below this, a model download or a long run's database may not fit.
LOW_DISK_BYTES = 2 * 10**9


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str  # the subject: "data folder", "database", ...
    text: str  # what was found, and for a problem what to do


def _ok(what: str, text: str) -> Finding:
    return Finding(True, what, text)


def _problem(what: str, text: str) -> Finding:
    return Finding(False, what, text)


def _shared_bits(path: Path) -> bool:
    """Readable or writable by other users (POSIX; Windows relies on the user profile)."""
    if os.name != "posix":
        return False
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def check_folders() -> list[Finding]:
    found = []
    for name, get in (
        ("data folder", paths.data_dir),
        ("cache folder", paths.cache_dir),
        ("log folder", paths.log_dir),
    ):
        try:
            folder = get()
        except OSError as error:
            found.append(_problem(name, f"cannot be created: {error}. Check the disk."))
            continue
        if not os.access(folder, os.W_OK):
            found.append(_problem(name, f"{folder} is not writable: check its permissions."))
        elif _shared_bits(folder):
            found.append(
                _problem(name, f"{folder} can be read by other users: run chmod 700 on it.")
            )
        else:
            found.append(_ok(name, str(folder)))
    free = shutil.disk_usage(paths.data_dir()).free
    if free < LOW_DISK_BYTES:
        found.append(
            _problem("disk", f"only {free / 1e9:.1f} GB free where the data lives: free space.")
        )
    else:
        found.append(_ok("disk", f"{free / 1e9:.0f} GB free"))
    return found


def check_cache() -> list[Finding]:
    """Cached documents must be readable by the user only (they hold documents' text)."""
    folder = paths.cache_dir()
    shared = [p for p in folder.rglob("*") if p.is_file() and _shared_bits(p)]
    if shared:
        return [
            _problem(
                "cache",
                f"{len(shared)} cached files can be read by other users (e.g. {shared[0].name}): "
                f"delete {folder} (it is only a cache) or run chmod 600 on them.",
            )
        ]
    count = sum(1 for p in folder.rglob("*") if p.is_file())
    return [_ok("cache", f"{count} files, readable by you only")]


def check_database() -> list[Finding]:
    from app.store.database import open_database

    path = paths.database_path()
    if not path.exists():
        return [_ok("database", f"{path} (not created yet: the first question creates it)")]
    try:
        store = open_database(path)
    except UserError as error:
        return [_problem("database", str(error))]
    try:
        runs = store.unfinished_runs()
        reason = store.read_only_reason
        where = f"{path}, open for review only ({reason})" if reason else str(path)
        found = [_ok("database", where)]
        if runs:
            found.append(
                _ok("runs", f"{len(runs)} interrupted runs can be resumed (History > Resume)")
            )
        if path.exists() and _shared_bits(path):
            found.append(
                _problem("database", f"{path} can be read by other users: run chmod 600 on it.")
            )
        return found
    finally:
        store.close()


def check_settings() -> list[Finding]:
    from app.settings import load_settings, settings_path

    file = settings_path()
    if not file.exists():
        return [_ok("settings", "defaults (no settings file yet)")]
    settings = load_settings(file)
    problems = settings.validate()
    if problems:
        return [_problem("settings", "; ".join(problems) + ": fix them in File > Settings.")]
    return [_ok("settings", str(file))]


def check_model() -> list[Finding]:
    from app.llm.factory import plan_launch
    from app.llm.gguf import read_gguf_info
    from app.settings import load_settings

    settings = load_settings()
    if settings.backend == "remote":
        return [_ok("model", f"a server: {settings.remote_url} (not contacted by the doctor)")]
    try:
        launch = plan_launch(settings)
        info = read_gguf_info(launch.path)
    except UserError as error:
        return [_problem("model", str(error))]
    found = [_ok("model", f"{launch.path} ({info.describe()})")]
    if launch.is_demo:
        found.append(
            _ok("model", "the bundled demo model: get QwenLong-L1.5 for real answers (models)")
        )
    if not info.has_chat_template:
        found.append(_problem("model", "the file has no chat template: use an instruct build."))
    plan = launch.plan
    if plan is not None:
        if plan.fits:
            found.append(_ok("placement", f"{plan.describe()}."))
        else:
            found.append(_problem("placement", plan.reason))
    return found


def check_build() -> list[Finding]:
    from app.llm.build_info import build_report

    try:
        report = build_report()
    except Exception as error:  # noqa: BLE001 - the doctor reports, it does not crash
        return [_problem("llama.cpp", f"cannot be loaded: {error}. Reinstall the app.")]
    ok = report.status in ("gpu", "cpu-only", "cpu-fallback")
    return [Finding(ok, "llama.cpp", report.message)]


CHECKS: tuple[Callable[[], list[Finding]], ...] = (
    check_folders,
    check_cache,
    check_settings,
    check_database,
    check_model,
    check_build,
)


def run_doctor(out: TextIO | None = None) -> int:
    out = out or sys.stdout
    findings: list[Finding] = []
    for check in CHECKS:
        try:
            findings += check()
        except Exception as error:  # noqa: BLE001 - one broken check must not hide the rest
            findings.append(
                _problem(check.__name__.removeprefix("check_"), f"check failed: {error}")
            )
    for f in findings:
        out.write(f"{'ok     ' if f.ok else 'PROBLEM'}  {f.what}: {f.text}\n")
    problems = sum(not f.ok for f in findings)
    out.write("\nNothing wrong found.\n" if not problems else f"\n{problems} problem(s) found.\n")
    return 0 if not problems else 1


def add_doctor_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor", help="check the data folder, database, cache, model and GPU build"
    )
    parser.set_defaults(func=lambda _args: run_doctor())
