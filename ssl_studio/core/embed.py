"""Batched feature extraction: a frozen backbone's embeddings, or downsampled raw pixels as a baseline."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .threads import ThreadTuner


def _module_device(module: nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def embed(
    backbone: nn.Module,
    images_uint8: torch.Tensor,
    *,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Embed uint8 images (N, 3, H, W) with ``backbone``; returns float32 (N, D).

    Batches travel to the device as uint8 (4x less transfer than float) and are scaled to [0, 1]
    there; the backbone normalizes internally. Only a batch of images is ever in float, so ``images_uint8``
    can be the memory-mapped image cache of a large folder, read as it is embedded. The module's train/eval
    mode is restored afterwards so a caller that embeds mid-training does not silently freeze its BatchNorm
    statistics.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if len(images_uint8) == 0:
        raise ValueError("cannot embed an empty set of images")
    device = torch.device(device) if device is not None else _module_device(backbone)
    was_training = backbone.training
    backbone.eval()
    out = None
    try:
        with torch.inference_mode(), ThreadTuner.for_device(device) as threads:
            for start in range(0, len(images_uint8), batch_size):
                batch = images_uint8[start : start + batch_size].to(device, non_blocking=True)
                features = backbone(batch.float().div_(255.0)).float().cpu().numpy()
                if out is None:  # the feature size is known once the first batch is through
                    out = np.empty((len(images_uint8), features.shape[1]), dtype=np.float32)
                out[start : start + len(features)] = features
                threads.step_done()
    finally:
        backbone.train(was_training)
    return out


def pixel_features(images_uint8: torch.Tensor, size: int = 16, *, batch_size: int = 2048) -> np.ndarray:
    """Raw-pixel baseline: antialiased downsample to size x size, flattened, float32 in [0, 1].

    Converted in batches: a float copy of 20k images at 64 px would be about 1 GB at once, and the images may be
    the memory-mapped cache, read batch by batch.
    """
    out = np.empty((len(images_uint8), 3 * size * size), dtype=np.float32)
    for start in range(0, len(images_uint8), batch_size):
        batch = images_uint8[start : start + batch_size].float().div_(255.0)
        small = F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        # Float rounding of the filter weights can land a hair outside [0, 1]; keep the range exact.
        out[start : start + batch_size] = small.clamp_(0.0, 1.0).flatten(1).numpy()
    return out
