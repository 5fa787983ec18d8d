"""No pickle from disk, anywhere in the package: checked on the source itself, and against a crafted payload.

Pickle between the app's own processes is another matter: data sent to a child process and back through a pipe
never touched disk. Those uses are allowed only where listed, with the reason, and any other fails the check.
"""

import ast
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_studio.core.checkpoint import CheckpointError, load_checkpoint
from ssl_studio.core.runs import RunError, RunFolder

PACKAGE = Path(__file__).resolve().parents[2] / "ssl_studio"
PICKLING_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
# Standard and torch modules that pickle what they send to another process and unpickle what comes back.
PROCESS_PICKLING = {"multiprocessing", "torch.multiprocessing", "concurrent.futures.ProcessPoolExecutor",
                    "concurrent.futures.InterpreterPoolExecutor", "concurrent.futures.process"}
# torch.distributed's object collectives unpickle what other processes (other machines, even) sent.
OBJECT_COLLECTIVES = {"all_gather_object", "gather_object", "broadcast_object_list", "scatter_object_list",
                      "send_object_list", "recv_object_list"}
ALLOWED_PROCESS_PICKLING = {
    ("ssl_studio/core/umap_process.py", "multiprocessing"):
        "the UMAP worker is a child process of the app: its features go there and its maps come back through a "
        "pipe, never through a file",
    ("ssl_studio/core/umap_process.py", "concurrent.futures.ProcessPoolExecutor"):
        "the same UMAP worker, run as a pool of one process",
    ("ssl_studio/core/data.py", "multiprocessing"):
        "the decoding processes of a large folder: file paths go there and decoded pixels come back through a "
        "pipe; the image cache on disk is a .npy read with allow_pickle=False",
    ("ssl_studio/core/data.py", "concurrent.futures.ProcessPoolExecutor"):
        "the same decoding processes, as a pool",
    ("ssl_studio/bench/scale_folder.py", "multiprocessing"):
        "the bench's image generators: a folder path and counts go there, the same path comes back",
    ("ssl_studio/bench/scale_folder.py", "concurrent.futures.ProcessPoolExecutor"):
        "the same generators, as a pool",
}


def process_pickling_uses(source: str) -> set[str]:
    """What ``source`` imports or reaches of PROCESS_PICKLING, spelled as there, and the torch.distributed object
    collectives it calls (as torch.distributed.NAME)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Attribute):  # e.g. torch.multiprocessing.spawn after a plain `import torch`
            names = [ast.unparse(node)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "\n" in node.value:
            try:  # code kept in a string for `python -c`, as unsafe_uses reads it
                found |= process_pickling_uses(node.value)
            except SyntaxError:
                pass
            continue
        else:
            continue
        for name in names:
            if name == "concurrent.futures":  # the whole module: its ProcessPoolExecutor is one attribute away
                name += ".ProcessPoolExecutor"
            found |= {m for m in PROCESS_PICKLING if name == m or name.startswith(m + ".")}
            if name.rsplit(".", 1)[-1] in OBJECT_COLLECTIVES:
                found.add(f"torch.distributed.{name.rsplit('.', 1)[-1]}")
    return found


def unsafe_uses(source: str) -> list[str]:
    """Lines that could run code out of a file: pickle-family imports, torch.load without weights_only=True,
    numpy.load without an explicit allow_pickle=False, pandas.read_pickle, yaml.load, eval and exec."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{node.lineno}: import {n}" for n in names if n.split(".")[0] in PICKLING_MODULES]
            if isinstance(node, ast.ImportFrom) and node.module == "torch" and "load" in [a.name for a in node.names]:
                found.append(f"{node.lineno}: from torch import load (hides torch.load from this check)")
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
            short = name.rsplit(".", 1)[-1]
            if name.endswith("torch.load") and kw.get("weights_only") != "True":
                found.append(f"{node.lineno}: {name} without weights_only=True")
            elif name in ("np.load", "numpy.load") and kw.get("allow_pickle") != "False":
                found.append(f"{node.lineno}: {name} without allow_pickle=False")
            elif short == "read_pickle" or name in ("yaml.load", "yaml.unsafe_load") and "SafeLoader" not in \
                    kw.get("Loader", ""):
                found.append(f"{node.lineno}: {name}")
            elif name in ("eval", "exec"):
                found.append(f"{node.lineno}: {name}()")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "\n" in node.value:
            # Code kept in a string for `python -c` (benchmarks, helpers) runs just the same.
            try:
                found += [f"{node.lineno} (code in a string), line {u}" for u in unsafe_uses(node.value)]
            except SyntaxError:
                pass
    return found


def test_the_checker_catches_what_it_looks_for():
    bad = """
import pickle
from joblib import load
from torch import load
import torch, numpy as np
torch.load("w.pt")
torch.load("w.pt", weights_only=False)
np.load("x.npy")
np.load("x.npy", allow_pickle=True)
eval("1")
CHILD = '''
import numpy as np
np.load(path)
'''
"""
    assert len(unsafe_uses(bad)) == 9
    assert unsafe_uses('import torch, numpy as np\ntorch.load("w", weights_only=True)\n'
                       'np.load("x", allow_pickle=False)\n') == []


def test_the_checker_knows_which_standard_modules_pickle_between_processes():
    source = """
import multiprocessing.connection
from multiprocessing import get_context
import torch.multiprocessing as mp
import concurrent.futures
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, TimeoutError
from concurrent import futures
import torch.distributed as dist
dist.all_reduce(t)
dist.all_gather_object(out, obj)
torch.multiprocessing.spawn(f)
"""
    assert process_pickling_uses(source) == {"multiprocessing", "torch.multiprocessing",
                                             "concurrent.futures.ProcessPoolExecutor",
                                             "torch.distributed.all_gather_object"}
    assert process_pickling_uses("from concurrent.futures import ThreadPoolExecutor\nimport threading\n") == set()
    assert process_pickling_uses('CHILD = """\nimport multiprocessing\n"""\n') == {"multiprocessing"}


def package_sources() -> dict[str, str]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    return {f.relative_to(PACKAGE.parent).as_posix(): f.read_text("utf-8") for f in files}


def test_the_package_never_unpickles_from_disk():
    problems = {name: u for name, source in package_sources().items() if (u := unsafe_uses(source))}
    assert problems == {}


def test_pickle_between_processes_only_where_the_data_never_touches_disk():
    uses = {(name, use) for name, source in package_sources().items() for use in process_pickling_uses(source)}
    assert uses - ALLOWED_PROCESS_PICKLING.keys() == set(), "a new use: allow it here only if no file is involved"
    assert ALLOWED_PROCESS_PICKLING.keys() - uses == set(), "an allowed use is gone: remove it from the list"


class Payload:
    """Unpickling this creates a marker file: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def payload_files(folder: Path, marker: Path) -> dict[str, Path]:
    raw = folder / "raw.safetensors"
    raw.write_bytes(pickle.dumps({"model.weight": Payload(marker)}))
    zipped = folder / "zipped.safetensors"
    torch.save({"model.weight": Payload(marker)}, zipped)  # what torch.save writes: a zip holding a pickle
    return {"raw pickle": raw, "torch.save zip": zipped}


def test_a_pickle_where_weights_belong_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    for kind, path in payload_files(tmp_path, marker).items():
        with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
            load_checkpoint(path)
        assert not marker.exists(), kind


def test_the_payload_is_real(tmp_path):
    """Guards the test above: loading the same file the unsafe way does run the payload."""
    marker = tmp_path / "pwned"
    with open(payload_files(tmp_path, marker)["raw pickle"], "rb") as f:
        pickle.load(f)  # noqa: S301 (the point of this test)
    assert marker.exists()


def test_an_object_array_in_a_run_folder_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    run = RunFolder(tmp_path)
    (tmp_path / "embeddings").mkdir()
    np.save(tmp_path / run.embedding_name("ssl"), np.array([[Payload(marker)]], dtype=object), allow_pickle=True)
    with pytest.raises(RunError, match="not a valid array file"):
        run.load_array(run.embedding_name("ssl"))
    assert not marker.exists()
