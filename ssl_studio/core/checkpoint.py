"""Checkpoints as safetensors (no pickle), written atomically, with their metadata inside the same file.

The metadata rides in the safetensors header so weights and metadata can never disagree after a crash; a JSON
sidecar beside it repeats the metadata for people and other tools.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from .atomic import write_bytes_atomic, write_json_atomic
from .errors import UserError
from .models import arrange_for

FORMAT = "ssl_studio.checkpoint/1"


class CheckpointError(UserError):
    """A checkpoint is missing, malformed, or does not fit what it is loaded into."""


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    path = Path(path)
    meta = {**meta, "format": FORMAT}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    # Serialized in memory and written by Python: safetensors' own file writer reports a full disk as a
    # SafetensorError with no errno, which no caller would recognise as an I/O failure.
    data = save(tensors, metadata={"ssl_studio": json.dumps(meta)})
    try:
        write_bytes_atomic(path, data)
        write_json_atomic(path.with_suffix(".json"), meta)
    except OSError as exc:
        raise CheckpointError(f"cannot write the checkpoint {path}: {exc.strerror or exc}"
                              + (" (disk full)" if exc.errno == errno.ENOSPC else "")) from exc
    return path


def load_checkpoint(path: str | Path, *, with_tensors: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata; ``with_tensors=False`` reads only the (validated) metadata from the header."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        tensors = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = (f.metadata() or {}).get("ssl_studio")
            for key in f.keys() if with_tensors else ():
                tensors[key] = f.get_tensor(key)
        meta = json.loads(header) if header else None
    except Exception as exc:  # safetensors and json raise several types for a corrupt or foreign file
        raise CheckpointError(f"{path.name} is not a readable safetensors checkpoint ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not an SSL Studio checkpoint (no {FORMAT} metadata)")
    return tensors, meta


def load_state_into(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, source: Path) -> None:
    """Load weights strictly, turning shape or key mismatches into a CheckpointError that names ``source``."""
    arrange_for(module, state)  # weights saved in an older layer order load into that order
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(part for part in (
            f"missing {', '.join(missing[:3])}" if missing else "",
            f"unexpected {', '.join(unexpected[:3])}" if unexpected else "",
            f"wrong shape for {', '.join(sorted(wrong)[:3])}" if wrong else "") if part)
        raise CheckpointError(f"the {what} weights in {source} do not fit this network ({detail})")
    module.load_state_dict(state)
