"""Augmentation: the project's batched per-sample pipeline against torchvision's per-image one, same recipe.

torchvision runs the way a training script feeds a model: per PIL image, in one process, and through a DataLoader
with one worker per core. The headline ratio gives each side one core (one torch thread against one process): the
same work on the same resources, and the figure that survives a busy machine. With every core, the ratio also
measures how torch's threads scale against worker processes, which on a loaded machine is mostly noise.
"""

from __future__ import annotations

import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, RandomSampler
from torchvision.transforms import v2

from ssl_studio.core.augment import augment
from ssl_studio.core.methods import default_recipe

from .common import Table, fastest_rounds, torch_threads

VIEW_PX = 32


def torchvision_simclr(size: int = VIEW_PX) -> v2.Compose:
    """torchvision's spelling of SimCLR's recipe (blur off, as in the recipe)."""
    r = default_recipe("simclr")
    return v2.Compose([
        v2.RandomResizedCrop(size, scale=r.crop_scale, ratio=r.crop_ratio, antialias=True),
        v2.RandomHorizontalFlip(r.flip_p),
        v2.RandomApply([v2.ColorJitter(r.brightness, r.contrast, r.saturation, r.hue)], p=r.jitter_p),
        v2.RandomGrayscale(r.grayscale_p),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
    ])


class PilImages(Dataset):
    """uint8 HWC arrays turned into PIL images per item, as torchvision's CIFAR10 dataset does."""

    def __init__(self, images_uint8: torch.Tensor, transform) -> None:
        self.arrays = images_uint8.permute(0, 2, 3, 1).contiguous().numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(Image.fromarray(self.arrays[i]))


def _loader_views_per_second(images: torch.Tensor, batch: int, batches: int, workers: int) -> float:
    """Steady-state views/s of a DataLoader: timed after its first batch, which pays for starting the workers."""
    dataset = PilImages(images, torchvision_simclr())
    sampler = RandomSampler(dataset, replacement=True, num_samples=batch * (batches + 1))
    it = iter(DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers))
    next(it)
    start = time.perf_counter()
    done = sum(len(views) for views in it)
    return done / (time.perf_counter() - start)


def measure_augment(table: Table, images: torch.Tensor, batch: int, rounds: int, loader_batches: int) -> dict:
    """images: uint8 (N, 3, 64, 64) sources; views are VIEW_PX px."""
    recipe, tv = default_recipe("simclr"), torchvision_simclr()
    gen = torch.Generator().manual_seed(0)
    sources = images[torch.randperm(len(images), generator=gen)[:batch]]
    pils = [Image.fromarray(a) for a in sources.permute(0, 2, 3, 1).contiguous().numpy()]
    cores = torch.get_num_threads()

    def core_batch():
        return augment(sources, recipe, gen, out_size=VIEW_PX)

    def core_one_thread():
        with torch_threads(1):
            return core_batch()

    def torchvision_per_image():
        with torch_threads(1):  # what a DataLoader worker does
            return torch.stack([tv(p) for p in pils])

    best = fastest_rounds({"core": core_batch, "core_1": core_one_thread, "tv_1": torchvision_per_image}, rounds)
    rate = {name: len(sources) / seconds for name, seconds in best.items()}
    workers = cores
    rate["tv_loader"] = _loader_views_per_second(images, batch, loader_batches, workers)

    speedup = rate["core"] / rate["tv_loader"]
    per_core = rate["core_1"] / rate["tv_1"]
    note = f"batch {len(sources)}, {images.shape[-1]}->{VIEW_PX} px, best of {rounds}"
    table.row(f"core.augment, batched ({cores} threads)", rate["core"], "views/s", note)
    table.row("core.augment, batched (1 thread)", rate["core_1"], "views/s")
    table.row("torchvision v2 per PIL image (1 process)", rate["tv_1"], "views/s")
    table.row(f"torchvision v2 DataLoader ({workers} workers)", rate["tv_loader"], "views/s",
              f"steady state, {loader_batches} batches")
    table.row("speedup vs torchvision (one core each)", per_core, "x", "goal >= 4; the headline figure")
    table.row("speedup vs torchvision (all cores each)", speedup, "x", "threads vs worker processes")
    return {"views_per_second": {"core": rate["core"], "core_1_thread": rate["core_1"],
                                 "torchvision_1_process": rate["tv_1"], "torchvision_dataloader": rate["tv_loader"]},
            "batch": len(sources), "source_px": images.shape[-1], "view_px": VIEW_PX, "threads": cores,
            "dataloader_workers": workers, "speedup_per_core": per_core, "speedup_all_cores": speedup}
