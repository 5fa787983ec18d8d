"""No pickle from disk, anywhere in the package: checked on the source itself, and against a crafted payload."""

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


def test_the_package_never_unpickles():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    problems = {str(f.relative_to(PACKAGE.parent)): u for f in files if (u := unsafe_uses(f.read_text("utf-8")))}
    assert problems == {}


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
