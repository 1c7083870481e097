"""The shape of the house: data flows one way (no import circle in ``src/emovox``), functions stay
short, and every ``command`` recorded in the committed ``metrics.json`` files still parses."""

from __future__ import annotations

import ast
import itertools
import json
import shlex
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "emovox"

LONG_FUNCTION_LINES = 80
ALLOWED_LONG_FUNCTIONS = 3
"""At most this many functions in ``src/`` may be longer than ``LONG_FUNCTION_LINES`` lines."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The emovox modules ``path`` imports anywhere (functions included), except under
    ``if TYPE_CHECKING:``; ``from pkg import sub`` counts as an import of ``pkg.sub``."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_block(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join([*pkg, base] if base else pkg)
            for a in node.names:
                if f"{base}.{a.name}" in known:
                    out.add(f"{base}.{a.name}")
                elif base in known:
                    out.add(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    out.discard(name)
    return out


def import_cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    mods = modules()
    known = set(mods)
    graph = {m: imports_of(p, m, known) for m, p in mods.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    return cycles


def test_no_import_circle_anywhere_in_src():
    assert import_cycles() == []


def test_the_checker_finds_a_circle(tmp_path: Path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("def f():\n    from pkg import b\n")
    b.write_text(
        "import pkg.a\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\n"
    )
    known = {"pkg.a", "pkg.b"}
    assert imports_of(a, "pkg.a", known) == {"pkg.b"}
    assert imports_of(b, "pkg.b", known) == {"pkg.a"}


def long_functions() -> list[tuple[str, int]]:
    out = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > LONG_FUNCTION_LINES:
                    out.append((f"{name}.{node.name}", length))
    return sorted(out, key=lambda x: -x[1])


def test_few_long_functions():
    found = long_functions()
    assert len(found) <= ALLOWED_LONG_FUNCTIONS, found


# -- recorded commands ---------------------------------------------------------------------------


def recorded_commands() -> list[tuple[str, list[str]]]:
    out = []
    for path in sorted((ROOT / "benchmarks" / "results").rglob("metrics.json")):
        cmd = json.loads(path.read_text()).get("command")
        if cmd:
            args = cmd if isinstance(cmd, list) else shlex.split(cmd)
            out.append((str(path.relative_to(ROOT)), args))
    return out


def test_there_are_recorded_commands():
    assert len(recorded_commands()) >= 10


@pytest.mark.parametrize(("where", "command"), recorded_commands(), ids=lambda x: str(x)[:60])
def test_every_recorded_command_parses_with_todays_cli(
    where: str, command: list[str], tmp_path: Path, monkeypatch
):
    """Each command's options are known to today's CLI and its values are accepted (parsed up
    to the point where the command would start working, which is not run). The corpus folders
    it names (``--data``, which must exist) are stood in for by empty folders."""
    from emovox.apps.cli import main

    here = tmp_path / "work" / "project"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    command = list(command)
    for i, (flag, value) in enumerate(itertools.pairwise(command)):
        if flag == "--data":
            folder = here / value if not Path(value).is_absolute() else tmp_path / f"data{i}"
            folder.mkdir(parents=True, exist_ok=True)
            command[i + 1] = str(folder)
    assert command[0] == "emovox", where
    name = command[1]
    cmd = main.get_command(click.Context(main), name)
    assert cmd is not None, f"{where}: unknown command {name!r}"
    args = command[2:]
    with cmd.make_context(name, list(args), resilient_parsing=False) as ctx:
        assert ctx.params is not None


# -- the old flat layout -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "names"),
    [
        ("emovox.recognizer", ["Recognizer", "Prediction"]),
        ("emovox.segments", ["segment_audio", "predict_segments", "VadConfig", "StreamingVad"]),
        ("emovox.longaudio", ["LongAudioConfig", "iter_file_blocks", "silero_available"]),
        ("emovox.training", ["TrainConfig", "Trainer", "predict_proba", "crop_windows"]),
        ("emovox.pipeline", ["train", "fit", "load_dataset"]),
        ("emovox.evaluation", ["evaluate", "evaluate_cross_corpus", "machine_info"]),
        ("emovox.bundle", ["load_bundle", "save_bundle", "BundleError"]),
        ("emovox.taxonomy", ["CORPUS_CODES"]),
        ("emovox.live", ["LiveSession"]),
        ("emovox.server", ["create_app"]),
        ("emovox.batch", ["score_files"]),
        ("emovox.corpora", ["scan_corpus", "CORPORA"]),
    ],
)
def test_the_old_module_paths_still_import(old: str, names: list[str]):
    import importlib

    import emovox

    assert old in emovox.MOVED_MODULES
    module = importlib.import_module(old)
    for name in names:
        assert getattr(module, name) is not None, (old, name)


def test_every_moved_module_has_a_home():
    import importlib

    import emovox

    for old, new in emovox.MOVED_MODULES.items():
        assert importlib.import_module(new), (old, new)
        assert not (PACKAGE / f"{old.split('.')[-1]}.py").exists(), f"{old} is still a file"


FORBIDDEN = {
    "emovox.data": ("emovox.features", "emovox.models", "emovox.inference", "emovox.train",
                    "emovox.evaluate", "emovox.segmentation", "emovox.apps"),
    "emovox.features": ("emovox.models", "emovox.inference", "emovox.train", "emovox.evaluate",
                        "emovox.segmentation", "emovox.apps"),
    "emovox.models": ("emovox.inference", "emovox.train", "emovox.evaluate", "emovox.apps"),
    "emovox.inference": ("emovox.train", "emovox.evaluate", "emovox.apps"),
    "emovox.segmentation": ("emovox.train", "emovox.evaluate", "emovox.apps"),
    "emovox.train": ("emovox.evaluate", "emovox.apps"),
    "emovox.evaluate": ("emovox.apps",),
}
"""Rooms a package never imports from: data flows one way (see ARCHITECTURE.md)."""


def test_data_flows_one_way():
    mods = modules()
    known = set(mods)
    wrong = []
    for name, path in mods.items():
        for room, forbidden in FORBIDDEN.items():
            if name == room or name.startswith(room + "."):
                wrong += [
                    (name, target)
                    for target in imports_of(path, name, known)
                    if target.startswith(forbidden)
                ]
    assert wrong == []


def test_prediction_imports_nothing_heavy() -> None:
    """``emovox predict`` starts fast: the CLI and the prediction path import none of the slow
    libraries (they load where used: training metrics, plots, the server, ONNX, librosa
    features)."""
    import subprocess
    import sys

    heavy = ["sklearn", "librosa", "matplotlib", "fastapi", "onnx", "onnxruntime", "scipy"]
    code = (
        "import sys, emovox.apps.cli, emovox.inference.recognizer, emovox.inference.batch; "
        "from emovox.inference.recognizer import Recognizer; Recognizer.load(); "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
