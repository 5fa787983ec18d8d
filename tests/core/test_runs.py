"""The run folder has one owner (core/runs.py): its list of files is complete, no other module spells one of their
names, and a run's summary reads its settings and metrics without any array."""

import ast
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import ssl_studio
from ssl_studio.core import runs
from ssl_studio.core.pipeline import compare_imported, open_run, run_transfer
from ssl_studio.core.runs import FILES, RunError, RunFolder, read_summary
from ssl_studio.core.spaces import import_space
from ssl_studio.core.transfer import TransferConfig

PACKAGE = Path(ssl_studio.__file__).parent


def _pattern(name: str) -> re.Pattern:
    """A FILES entry as a regular expression: each {placeholder} stands for any text."""
    return re.compile(".+".join(re.escape(part) for part in re.split(r"\{[^}]*\}", name)))


def _strings(tree: ast.AST):
    """Every string the code spells, f-strings with their {fields} as "{}", docstrings left out (they document)."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    inside_fstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inside_fstrings.update(id(part) for part in node.values)
            yield node.lineno, "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings | \
                inside_fstrings:
            yield node.lineno, node.value


# A model's checkpoint is named by the model ("ssl", a fine-tuning run's finetune_name), so its pattern alone,
# "{which}.safetensors", names no file: the names that are the folder's own are those with fixed text before a field.
NAMES = {name: _pattern(name) for name in [*FILES, runs.FINETUNE] if not name.startswith("{")}


def literal_file_names(source: str) -> list[tuple[int, str]]:
    return [(line, text) for line, text in _strings(ast.parse(source))
            if any(pattern.search(text) for pattern in NAMES.values())]


def test_no_module_but_the_owner_spells_a_run_folder_file_name():
    found = {f"{path.relative_to(PACKAGE)}:{line}": text for path in sorted(PACKAGE.rglob("*.py"))
             if path != Path(runs.__file__) for line, text in literal_file_names(path.read_text(encoding="utf-8"))}
    assert not found, f"use core/runs.py's names instead: {found}"


def test_the_check_finds_a_file_name_in_a_string_or_an_f_string_but_not_in_a_docstring():
    code = '"""Writes metrics.json."""\nx = "metrics.json"\ny = f"embeddings/{space}.npy"\nz = f"{run}/report.png"\n' \
           'w = "finetune_fractions"\n'
    assert literal_file_names(code) == [(2, "metrics.json"), (3, "embeddings/{}.npy"), (4, "{}/report.png")]


@pytest.fixture(scope="module")
def full_run(finished_runs, tmp_path_factory):
    """A labeled run with everything a run folder can hold but clusters: transfer curves and an imported space."""
    run_dir = tmp_path_factory.mktemp("full") / "run"
    shutil.copytree(finished_runs[0]["labeled"][1], run_dir)
    transfer = TransferConfig(fractions=(0.5, 1.0), repeats=1, finetune_fractions=(0.5,), finetune_steps=(1,))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_STUDIO_CACHE_DIR", str(run_dir.parent / "cache"))
        list(run_transfer(run_dir, transfer))
    run = RunFolder.open(run_dir)
    paths = run.read_dataset().paths
    space = import_space(run, "Mine", np.random.default_rng(0).normal(size=(len(paths), 3)), paths)
    list(compare_imported(run, space.name, use_umap=False))
    return run_dir


def test_every_file_a_run_holds_is_in_the_list(full_run, finished_runs):
    unlabeled = finished_runs[0]["unlabeled"][1]
    patterns = [re.compile(p.pattern + "$") for p in map(_pattern, FILES)]
    held = {f.relative_to(folder).as_posix() for folder in (full_run, unlabeled) for f in folder.rglob("*")
            if f.is_file()}
    sidecars = {name for name in held if name.endswith(".json") and name[:-5] + ".safetensors" in held}
    assert {runs.TRANSFER, runs.IMPORTED, runs.CLUSTERS, runs.MAP_HISTORY, "finetune_ssl_50pct.safetensors",
            "imported/mine.npy", "projections/mine_pca.npy"} <= held
    assert [name for name in sorted(held - sidecars) if not any(p.fullmatch(name) for p in patterns)] == []


def test_the_summary_reads_settings_and_metrics_without_arrays(full_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(full_run, copy)
    for folder in ("embeddings", "projections", "imported"):
        shutil.rmtree(copy / folder)
    for array in copy.glob("*.npy"):
        array.unlink()
    loaded = open_run(full_run)
    summary = read_summary(copy)
    assert summary.path == copy and summary.settings.config == loaded.config
    assert summary.settings.recipe == loaded.recipe and summary.settings.data_root == loaded.data_root
    assert summary.metrics == loaded.metrics and set(summary.metrics["embeddings"]) == {
        "ssl", "supervised", "untrained", "pixels", "mine"}
    with pytest.raises(RunError, match=r"has no .*\.npy"):  # the arrays the summary never read, opening needs
        open_run(copy)
    (copy / runs.METRICS).write_text(json.dumps({"embeddings": [1]}))
    with pytest.raises(RunError, match=re.escape(runs.METRICS)):
        read_summary(copy)
    (copy / runs.METRICS).unlink()
    assert read_summary(copy).metrics == {}  # a run stopped before its comparison
