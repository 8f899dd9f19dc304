"""The CUDA edition's packaging: installer names that say which build they hold, the
release workflow's CUDA job, and packaging/build_cuda.sh's recipe (the compile itself is
hours on two cores: it runs in the release workflow, not here)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest

from app.llm.build_info import artifact_name
from tests.packaging.conftest import PACKAGING, ROOT


def _edition_tag():
    spec = importlib.util.spec_from_file_location("edition_tag", PACKAGING / "edition_tag.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.edition_tag


CUDA_REPORT = {"build": {"backends": ["CUDA", "CPU"], "cuda_runtime": "13.5", "message": "m"}}
CPU_REPORT = {"build": {"backends": ["CPU"], "cuda_runtime": "", "message": "m"}}


def test_edition_tag_comes_from_the_bundled_runtime():
    edition_tag = _edition_tag()
    assert edition_tag("cuda", CUDA_REPORT) == "cuda13"
    assert edition_tag("cpu", CPU_REPORT) == "cpu"


@pytest.mark.parametrize(
    ("edition", "report", "match"),
    [
        ("cuda", CPU_REPORT, "EDITION=cuda"),
        ("cpu", CUDA_REPORT, "EDITION=cpu"),
        ("cuda", {}, "CUDA runtime"),
    ],
)
def test_edition_tag_refuses_the_wrong_build(edition, report, match):
    with pytest.raises(SystemExit, match=match):
        _edition_tag()(edition, report)


def test_edition_tag_cli(tmp_path):
    report = tmp_path / "selftest.json"
    report.write_text('\ufeff{"build": {"backends": ["CPU"], "message": "CPU only"}}', "utf-8")
    done = subprocess.run(
        [sys.executable, str(PACKAGING / "edition_tag.py"), "cpu", str(report)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "cpu" and "CPU only" in done.stderr


def test_build_scripts_name_installers_as_the_app_says(version):
    """The names build_info's messages give are those the build scripts write."""
    linux = (PACKAGING / "build_linux.sh").read_text(encoding="utf-8")
    assert 'stage="QwenLongReader-$version-linux-$arch-$tag"' in linux
    assert artifact_name(version, "cuda13", "linux", "x86_64") == (
        f"QwenLongReader-{version}-linux-x86_64-cuda13.tar.gz"
    )
    windows = (PACKAGING / "build_windows.sh").read_text(encoding="utf-8")
    assert 'OUTFILE="dist/QwenLongReader-$version-windows-x64-$tag-setup.exe"' in windows
    assert artifact_name(version, "cpu", "win32") == (
        f"QwenLongReader-{version}-windows-x64-cpu-setup.exe"
    )


def test_build_cuda_script_recipe():
    script = (PACKAGING / "build_cuda.sh").read_text(encoding="utf-8")
    subprocess.run(["bash", "-n", str(PACKAGING / "build_cuda.sh")], check=True, timeout=30)
    # Turing to Blackwell by default; Blackwell consumer as 120a (FP4 tensor cores).
    default = re.search(r'archs="\$\{CUDA_ARCHS:-([^}]+)\}"', script)
    assert default, "no default CUDA_ARCHS"
    archs = [a.split("-")[0] for a in default.group(1).split(";")]
    assert archs == ["75", "80", "86", "89", "90", "100", "120a"]
    assert "-DGGML_CUDA=on" in script and "-DGGML_NATIVE=OFF" in script
    assert "--no-cache-dir" in script  # pip's wheel cache would return a CPU build
    for wheel in (
        "nvidia-cuda-nvcc==",
        "nvidia-nvvm==",
        "nvidia-cuda-runtime==",
        "nvidia-cublas==",
    ):
        assert wheel in script
    # The runtime is copied beside libggml-cuda, the driver stub only ever linked against.
    assert "libcudart.so.13" in script and "cublasLt64_13.dll" in script
    assert "libcuda.so.1" in script and "lib/stubs" in script


def test_release_workflow_builds_the_cuda_editions():
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text(encoding="utf-8"))
    cuda = workflow["jobs"]["cuda"]
    names = {m["name"] for m in cuda["strategy"]["matrix"]["include"]}
    assert names == {"linux-x86_64-cuda13", "windows-x64-cuda13"}
    runs = "\n".join(step.get("run", "") for step in cuda["steps"])
    assert "packaging/build_cuda.sh venv" in runs
    assert "EDITION=cuda" in runs and "packaging/build_linux.sh" in runs
    assert "packaging/build_windows.sh" in runs
    assert "CUDA_ARCHS" not in runs  # the release builds the script's full list
    assert set(workflow["jobs"]["publish"]["needs"]) == {"build", "cuda"}
    assert cuda["timeout-minutes"] <= 360  # GitHub's limit for a hosted job
