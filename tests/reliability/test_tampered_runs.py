"""A run folder is untrusted input: a tampered one is refused with a clear message, by core.pipeline.open_run (what
the app's File > Open run... calls) and by `ssl-studio run --resume`, and nothing in it is ever executed."""

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_studio.cli import main
from ssl_studio.core.checkpoint import load_checkpoint, save_checkpoint
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.events import TransferFinished
from ssl_studio.core.pipeline import open_run, run_pipeline
from ssl_studio.core.runs import RunError
from ssl_studio.core.transfer import TransferConfig

CONFIG = TrainConfig(epochs=1, time_budget=None, batch_size=8, resolution=16, device="cpu")
TRANSFER = TransferConfig(fractions=(0.5, 1.0), finetune_fractions=(0.5,), finetune_epochs=(1,))
N = 16  # images in the `labeled` fixture


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    import reliability_corpus

    base = tmp_path_factory.mktemp("finished")
    data = reliability_corpus.build_labeled(base / "data")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as conftest's one_torch_thread, which a module fixture runs before
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSL_STUDIO_CACHE_DIR", str(base / "cache"))
        events = list(run_pipeline(data, base / "run", CONFIG, use_umap=False, transfer=TRANSFER))
    torch.set_num_threads(threads)
    assert isinstance(events[-1], TransferFinished)
    return base / "run"


@pytest.fixture
def run(finished_run, tmp_path):
    """A private copy of a finished run, to tamper with; `outside` is a folder beside it."""
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy, symlinks=True)
    (tmp_path / "outside").mkdir()
    return copy


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def rewrite_checkpoint(path: Path, tensors=None, meta=None) -> None:
    old_tensors, old_meta = load_checkpoint(path)
    save_checkpoint(path, tensors if tensors is not None else old_tensors, meta if meta is not None else old_meta)


def symlink_outside(run: Path, name: str, content_from: Path | None = None) -> None:
    """Replace run/name by a link to a copy outside the run folder (a copy of the genuine file, so only the
    link itself is wrong)."""
    target = run.parent / "outside" / Path(name).name
    if content_from is not None and content_from.is_dir():
        shutil.copytree(content_from, target)
        shutil.rmtree(run / name)
    else:
        shutil.copy(run / name, target)
        (run / name).unlink()
    (run / name).symlink_to(target)


def imported_as(run: Path, name, title="Mine") -> None:
    """spaces.json listing one imported space, its embeddings beside the others as a genuine import leaves them."""
    (run / "spaces.json").write_text(json.dumps({"imported": [{"name": name, "title": title}]}))
    shutil.copy(run / "embeddings" / "pixels.npy", run / "embeddings" / "mine.npy")


def _npy(run, name, array, **kw):
    np.save(run / name, array, **kw)


TAMPERINGS = {
    "config.json invalid JSON": (lambda r: (r / "config.json").write_text("{not json"), "config.json"),
    "config.json a list": (lambda r: (r / "config.json").write_text("[]"), "config.json"),
    "config.json unknown method": (lambda r: edit_json(r / "config.json",
                                                       lambda d: d["train"].update(method="evil")), "config.json"),
    "config.json no recipe": (lambda r: edit_json(r / "config.json", lambda d: d.pop("recipe")), "config.json"),
    "config.json foreign format": (lambda r: edit_json(r / "config.json", lambda d: d.update(format="x")),
                                   "not an SSL Studio run"),
    "config.json not UTF-8": (lambda r: (r / "config.json").write_bytes(b'{"a": "\xff"}'), "config.json"),
    "dataset.json missing": (lambda r: (r / "dataset.json").unlink(), "dataset.json"),
    "dataset.json label out of range": (lambda r: edit_json(r / "dataset.json",
                                                            lambda d: d["labels"].__setitem__(0, 7)), "dataset.json"),
    "dataset.json paths not a list": (lambda r: edit_json(r / "dataset.json", lambda d: d.update(paths="x")),
                                      "dataset.json"),
    "embedding with too few rows": (lambda r: _npy(r, "embeddings/ssl.npy", np.zeros((N - 1, 4), np.float32)),
                                    "ssl.npy"),
    "embedding of objects": (lambda r: _npy(r, "embeddings/ssl.npy", np.array([[Payload(r / "pwned")]] * N,
                                                                              dtype=object), allow_pickle=True),
                             "ssl.npy"),
    "embedding with NaN": (lambda r: _npy(r, "embeddings/ssl.npy", np.full((N, 4), np.nan, np.float32)), "ssl.npy"),
    "embedding of strings": (lambda r: _npy(r, "embeddings/ssl.npy", np.full((N, 4), "a")), "ssl.npy"),
    "projection with 3 columns": (lambda r: _npy(r, "projections/ssl_pca.npy", np.zeros((N, 3), np.float32)),
                                  "ssl_pca.npy"),
    "embedding not an npy file": (lambda r: (r / "embeddings/ssl.npy").write_bytes(b"\x93NUMPY garbage"),
                                  "ssl.npy"),
    "embedding linked outside": (lambda r: symlink_outside(r, "embeddings/ssl.npy"), "outside the run folder"),
    "embeddings folder linked outside": (lambda r: symlink_outside(r, "embeddings", r / "embeddings"),
                                         "outside the run folder"),
    "config.json linked outside": (lambda r: symlink_outside(r, "config.json"), "outside the run folder"),
    "checkpoint linked outside": (lambda r: symlink_outside(r, "ssl.safetensors"), "outside the run folder"),
    "checkpoint is a pickle": (lambda r: (r / "ssl.safetensors").write_bytes(pickle.dumps(Payload(r / "pwned"))),
                               "ssl.safetensors"),
    "checkpoint truncated": (lambda r: (r / "ssl.safetensors").write_bytes((r / "ssl.safetensors").read_bytes()[:999]),
                             "ssl.safetensors"),
    "checkpoint history not a curve": (lambda r: rewrite_checkpoint(
        r / "ssl.safetensors", meta={**load_checkpoint(r / "ssl.safetensors")[1], "history": "rm -rf"}),
        "ssl.safetensors"),
    "metrics.json invalid": (lambda r: (r / "metrics.json").write_text("{"), "metrics.json"),
    "transfer.json invalid": (lambda r: (r / "transfer.json").write_text("[1, 2"), "transfer.json"),
    "transfer.json accuracy above 1": (lambda r: edit_json(r / "transfer.json", lambda d: d["probe"]["ssl"]["knn"][0]
                                                           .update(top1=7)), "transfer.json"),
    "transfer.json unknown space": (lambda r: edit_json(r / "transfer.json", lambda d: d["probe"].update(evil={})),
                                    "transfer.json"),
    "spaces.json invalid": (lambda r: (r / "spaces.json").write_text('{"imported": ['), "spaces.json"),
    "spaces.json not a list": (lambda r: (r / "spaces.json").write_text('{"imported": "mine"}'), "spaces.json"),
    "spaces.json a built-in space's name": (lambda r: imported_as(r, "ssl"), "spaces.json"),
    "spaces.json a name that leaves the run": (lambda r: imported_as(r, "../../outside/mine"), "spaces.json"),
    "spaces.json a title that is not text": (lambda r: imported_as(r, "mine", title=["x"]), "spaces.json"),
}


@pytest.mark.parametrize("tamper", TAMPERINGS)
def test_open_run_refuses_a_tampered_folder_with_a_clear_message(run, tamper):
    change, message = TAMPERINGS[tamper]
    open_run(run)  # the genuine copy opens
    change(run)
    with pytest.raises(RunError, match=message.replace(".", r"\.")):
        open_run(run)
    assert not (run / "pwned").exists()


def unfinished(run: Path, which: str = "ssl") -> None:
    """Mark a checkpoint unfinished, so --resume has to load it and continue training."""
    path = run / f"{which}.safetensors"
    rewrite_checkpoint(path, meta={**load_checkpoint(path)[1], "finished": False})
    (run / "metrics.json").unlink()


def wrong_shapes(run: Path) -> None:
    unfinished(run)
    tensors, meta = load_checkpoint(run / "ssl.safetensors")
    key = next(k for k in tensors if k.startswith("model.") and tensors[k].ndim == 4)
    tensors[key] = torch.zeros(3, 3, 3, 3)
    rewrite_checkpoint(run / "ssl.safetensors", tensors=tensors)


def without(key: str):
    def change(run: Path) -> None:
        unfinished(run)
        meta = load_checkpoint(run / "ssl.safetensors")[1]
        meta.pop(key)
        rewrite_checkpoint(run / "ssl.safetensors", meta=meta)

    return change


def bad_rng(run: Path) -> None:
    unfinished(run)
    tensors = load_checkpoint(run / "ssl.safetensors")[0]
    rewrite_checkpoint(run / "ssl.safetensors", tensors={**tensors, "rng": torch.zeros(3)})


# Each with what the refusal must say: the file's name, and for a file inside the run folder, the folder too
# (RUN stands for it).
RESUME_TAMPERINGS = {
    "config.json without train settings": (lambda r: (unfinished(r),
                                                      edit_json(r / "config.json", lambda d: d.pop("train"))),
                                           "config.json in RUN is not valid"),
    "config.json with a bad recipe": (lambda r: (unfinished(r),
                                                 edit_json(r / "config.json", lambda d: d.update(recipe=[]))),
                                      "config.json in RUN is not valid"),
    "split.json not indices": (lambda r: (unfinished(r), edit_json(r / "split.json", lambda d: d.update(train="x"))),
                               "split.json in RUN is not valid"),
    "split.json index out of range": (lambda r: (unfinished(r), edit_json(r / "split.json",
                                                                          lambda d: d["train"].append(10**6))),
                                      "split.json in RUN is not valid"),
    "checkpoint with wrong tensor shapes": (wrong_shapes, "weights in RUN/ssl.safetensors do not fit this network"),
    "checkpoint without optimizer settings": (without("optimizer_param_groups"), "ssl.safetensors cannot be resumed"),
    "checkpoint without its step": (without("step"), "ssl.safetensors cannot be resumed"),
    "checkpoint with a broken random state": (bad_rng, "ssl.safetensors cannot be resumed"),
    "checkpoint is a pickle": (lambda r: (unfinished(r),
                                          (r / "ssl.safetensors").write_bytes(pickle.dumps(Payload(r / "pwned")))),
                               "ssl.safetensors is not a readable safetensors checkpoint"),
    "checkpoint linked outside": (lambda r: (unfinished(r), symlink_outside(r, "ssl.safetensors")),
                                  "ssl.safetensors points outside the run folder RUN"),
    "embeddings folder linked outside": (lambda r: ((r / "metrics.json").unlink(),
                                                    symlink_outside(r, "embeddings", r / "embeddings")),
                                         "embeddings/ssl.npy points outside the run folder RUN"),
}


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("tamper", RESUME_TAMPERINGS)
def test_resume_refuses_a_tampered_folder_with_a_clear_message(run, tamper, capsys):
    data = json.loads((run / "config.json").read_text())["data"]["root"]
    change, message = RESUME_TAMPERINGS[tamper]
    change(run)
    outside = snapshot(run.parent / "outside")
    assert main(["run", data, "--out", str(run), "--resume", "--no-umap"]) == 2
    err = capsys.readouterr().err
    assert "ssl-studio: error: " in err and "Traceback" not in err
    assert message.replace("RUN", str(run)) in err
    assert not (run / "pwned").exists() and not (run / "metrics.json").exists()
    assert snapshot(run.parent / "outside") == outside  # nothing outside the run folder was written
