"""Print the edition tag for an installer's name from the frozen app's self-test report:
``cpu``, or ``cuda<major>`` after the CUDA runtime the bundle really carries. Fails when the
bundle is not the edition that was asked for, so no installer is ever named for the wrong
one. Used by packaging/build_linux.sh and packaging/build_windows.sh:

    python packaging/edition_tag.py cpu|cuda build/selftest-linux.json
"""

from __future__ import annotations

import json
import sys


def edition_tag(edition: str, report: dict) -> str:
    build = report.get("build") or {}
    backends = build.get("backends", [])
    if edition == "cuda":
        runtime = build.get("cuda_runtime", "")
        if "CUDA" not in backends or not runtime:
            raise SystemExit(
                f"EDITION=cuda but the frozen app reports backends {backends} and CUDA "
                f"runtime {runtime!r}: is the venv's llama-cpp-python the build_cuda.sh one?"
            )
        return f"cuda{runtime.split('.')[0]}"
    if backends != ["CPU"]:
        raise SystemExit(f"EDITION=cpu but the frozen app reports backends {backends}")
    return "cpu"


def main(argv: list[str]) -> int:
    edition, path = argv
    with open(path, encoding="utf-8-sig") as handle:  # PowerShell may write a BOM
        report = json.load(handle)
    print(f"llama.cpp in the bundle: {(report.get('build') or {}).get('message')}", file=sys.stderr)
    print(edition_tag(edition, report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
