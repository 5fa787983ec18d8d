"""Open a folder of images: scan it, decode every usable image once into a uint8 tensor, cache that on disk.

Class subfolders give labels (an image nested deeper takes its top-level folder's class); a flat folder is
unlabeled. A file that cannot be used is skipped with a reason the user can act on, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from safetensors import safe_open
from safetensors.torch import save_file

from ssl_studio.core.atomic import write_atomic
from ssl_studio.core.cancel import CancelToken

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

# Bump when decoding changes, so caches written by older code are rebuilt rather than trusted.
_CACHE_VERSION = 1
# Measured on 2 cores: 2 threads decode large JPEGs ~2x faster, small PNGs no faster (PIL releases the GIL
# only inside the codec). The cap of 4 for bigger machines is a guess, not a measurement.
_WORKERS = min(4, os.cpu_count() or 1)


class DataError(Exception):
    """The folder cannot be used at all; the message is meant for the user."""


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class LoadProgress:
    done: int
    total: int
    stage: str  # "scanning" | "decoding" | "cache"


@dataclass
class ImageDataset:
    root: Path
    paths: list[str]
    images: torch.Tensor
    labels: torch.Tensor | None
    class_names: list[str]
    skipped: list[Skipped]
    resolution: int

    @property
    def labeled(self) -> bool:
        return self.labels is not None

    def class_counts(self) -> dict[str, int]:
        if self.labels is None:
            return {}
        counts = torch.bincount(self.labels, minlength=len(self.class_names)).tolist()
        return dict(zip(self.class_names, counts))

    def __len__(self) -> int:
        return len(self.paths)


def cache_root() -> Path:
    """Root of everything SSL Studio caches; SSL_STUDIO_CACHE_DIR moves it (tests, portable installs)."""
    override = os.environ.get("SSL_STUDIO_CACHE_DIR")
    return Path(override) if override else platformdirs.user_cache_path("ssl-studio")


def default_cache_dir() -> Path:
    return cache_root() / "images"


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _check_root(root) -> Path:
    root = Path(os.fsdecode(root)).expanduser()
    if not root.exists():
        raise DataError(f"The folder {root} does not exist.")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a folder. Choose the folder that contains the images.")
    return root


def _scan(root: Path, cancel: CancelToken | None) -> tuple[list[Path], list[Skipped]]:
    files: list[Path] = []
    skipped: list[Skipped] = []
    visited: set[str] = set()  # real paths of walked folders: a symlink back up the tree is walked once
    stack = [root]
    while stack:
        if cancel is not None:
            cancel.raise_if_cancelled()
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in visited:
            continue
        visited.add(real)
        try:
            with os.scandir(folder) as it:
                # Sorted, and pushed in reverse below: which symlinked path reaches a folder first (and so which
                # class it gets) must not depend on the file system's listing order.
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            skipped.append(Skipped(_rel(folder, root) + "/", f"cannot read folder: {e.strerror or e}"))
            continue
        for entry in reversed(entries):
            # Dot-files are hidden on purpose; __MACOSX holds resource forks that unzipping leaves behind.
            if entry.name.startswith(".") or entry.name == "__MACOSX":
                continue
            path = Path(entry.path)
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()
            except OSError:
                is_dir = is_file = False
            if is_dir:
                stack.append(path)
            elif path.suffix.lower() in IMAGE_EXTENSIONS:
                if is_file:
                    files.append(path)
                else:
                    skipped.append(Skipped(_rel(path, root), "broken link or not a regular file"))
    files.sort(key=lambda p: _rel(p, root))
    return files, skipped


def scan_folder(root) -> tuple[list[Path], list[Skipped]]:
    """Image files under root (recursive, sorted) and the entries that could not even be looked at."""
    root = _check_root(root)
    files, skipped = _scan(root, None)
    return files, sorted(skipped, key=lambda s: s.path)


class _Unusable(Exception):
    """A file that cannot become a training image; str(self) is the reason shown to the user."""


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        # 16/32-bit grayscale: PIL's own convert clips to 0..255, turning most photos white.
        a = np.asarray(img, dtype=np.float32)
        if img.mode == "F" and a.max(initial=0) <= 1.0:
            a = a * 255
        elif img.mode.startswith("I;16") or a.max(initial=0) > 255:
            a = a / 257
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _decode(path: Path, nbytes: int, resolution: int) -> np.ndarray:
    """One file -> (R, R, 3) uint8, or _Unusable with the reason."""
    if nbytes == 0:
        raise _Unusable("empty file")
    try:
        with Image.open(path) as img:
            # PIL raises above twice its limit but only warns above it, and warnings cannot be made errors
            # thread-safely; so the limit is checked here too, from the header, before a pixel is decoded.
            w, h, limit = *img.size, Image.MAX_IMAGE_PIXELS
            if limit and w * h > limit:
                raise _Unusable(f"decompression bomb: {w}x{h} pixels, more than the {limit:,} allowed")
            if img.format == "JPEG":
                img.draft("RGB", (resolution, resolution))  # decode at 1/2..1/8 scale directly: much faster
            img = _to_rgb(ImageOps.exif_transpose(img))
    except _Unusable:
        raise
    except Image.DecompressionBombError as e:
        raise _Unusable(f"decompression bomb: {e}") from None
    except PermissionError:
        raise _Unusable("permission denied") from None
    except UnidentifiedImageError:
        raise _Unusable("not an image (unrecognised file content)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # PIL reports damage as OSError, SyntaxError ("broken PNG file") or ValueError, depending on format.
        msg = str(e)
        if "truncated" in msg.lower():
            raise _Unusable("truncated file") from None
        raise _Unusable(f"corrupt or unsupported image: {msg}") from None
    except Exception as e:  # a decoder bug must not take the whole folder down
        raise _Unusable(f"could not decode: {type(e).__name__}: {e}") from None
    w, h = img.size
    s = min(w, h)
    box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
    img = img.resize((resolution, resolution), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
    return np.array(img)  # writable copy: torch warns on read-only arrays


def _cache_key(rels: list[str], stats: list[os.stat_result], resolution: int) -> str:
    # ctime too: chmod changes it but not mtime, and a "permission denied" skip must not outlive the fix.
    entries = [[r, s.st_size, s.st_mtime_ns, s.st_ctime_ns] for r, s in zip(rels, stats)]
    blob = json.dumps([_CACHE_VERSION, resolution, entries])
    return hashlib.sha256(blob.encode()).hexdigest()  # json.dumps escapes to ASCII, odd names included


def _cache_file(cache_dir: Path, root: Path, resolution: int) -> Path:
    # One file per folder and resolution: editing the folder overwrites its cache instead of piling up new ones.
    name = hashlib.sha256(os.fsencode(root.resolve())).hexdigest()[:24]
    return cache_dir / f"{name}-{resolution}.safetensors"


def _read_cache(file: Path, key: str, rels: list[str], resolution: int):
    """(images, ok paths, skipped) if file is a valid cache for exactly these files, else None."""
    try:
        with safe_open(str(file), framework="pt") as f:
            meta = json.loads(f.metadata()["index"])
            images = f.get_tensor("images")
        paths, skipped = meta["paths"], [Skipped(p, r) for p, r in meta["skipped"]]
        ok = (
            meta["key"] == key
            and images.dtype == torch.uint8
            and tuple(images.shape) == (len(paths), 3, resolution, resolution)
            and sorted(paths + [s.path for s in skipped]) == sorted(rels)
        )
        return (images, paths, skipped) if ok else None
    except Exception:  # missing, corrupt, truncated, foreign or old-format file: rebuild rather than crash
        return None


def _write_cache(file: Path, key: str, images: torch.Tensor, paths: list[str], skipped: list[Skipped]) -> None:
    # ensure_ascii keeps non-UTF-8 file names (lone surrogates) representable in the safetensors header.
    meta = json.dumps({"key": key, "paths": paths, "skipped": [[s.path, s.reason] for s in skipped]})
    try:
        write_atomic(file, lambda tmp: save_file({"images": images.contiguous()}, str(tmp), metadata={"index": meta}))
    except Exception as e:  # a read-only or full cache disk only costs speed next time
        log.warning("could not write the image cache %s: %s", file, e)


def _decode_all(files, sizes, resolution, cancel) -> Generator[tuple[int, np.ndarray | str], None, None]:
    """(index, array or skip reason) in order; decodes on a small thread pool (PIL releases the GIL)."""

    def one(i):
        try:
            return i, _decode(files[i], sizes[i], resolution)
        except _Unusable as e:
            return i, str(e)

    chunk = 32  # bounded look-ahead keeps memory flat and cancel prompt
    with ThreadPoolExecutor(_WORKERS) as pool:
        for start in range(0, len(files), chunk):
            if cancel is not None:
                cancel.raise_if_cancelled()
            yield from pool.map(one, range(start, min(start + chunk, len(files))))


def iter_load(
    root, resolution: int = 32, *, cache_dir=None, use_cache: bool = True, cancel: CancelToken | None = None
) -> Generator[LoadProgress, None, ImageDataset]:
    """Yield LoadProgress events; return the ImageDataset (StopIteration.value)."""
    if resolution < 1:
        raise ValueError(f"resolution must be positive, got {resolution}")
    root = _check_root(root)
    yield LoadProgress(0, 0, "scanning")
    files, skipped = _scan(root, cancel)
    rels = [_rel(p, root) for p in files]
    labeled = any("/" in r for r in rels)
    if labeled:
        loose = [r for r in rels if "/" not in r]
        skipped += [Skipped(r, "not inside a class folder (this folder has class subfolders)") for r in loose]
        keep = [i for i, r in enumerate(rels) if "/" in r]
        files, rels = [files[i] for i in keep], [rels[i] for i in keep]
    stats, keep = [], []
    for i, p in enumerate(files):
        try:
            stats.append(p.stat())
            keep.append(i)
        except OSError as e:
            skipped.append(Skipped(rels[i], f"cannot read file: {e.strerror or e}"))
    files, rels = [files[i] for i in keep], [rels[i] for i in keep]
    if not files:
        detail = f" ({len(skipped)} unusable entries, e.g. {skipped[0].path}: {skipped[0].reason})" if skipped else ""
        raise DataError(f"No images found in {root}. Supported: {', '.join(sorted(IMAGE_EXTENSIONS))}{detail}.")
    total = len(files)
    yield LoadProgress(0, total, "scanning")

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = _cache_key(rels, stats, resolution)
    cache_file = _cache_file(cache_dir, root, resolution)
    cached = _read_cache(cache_file, key, rels, resolution) if use_cache else None
    if cached is not None:
        images, paths, bad = cached
        yield LoadProgress(total, total, "cache")
    else:
        images = torch.empty((total, 3, resolution, resolution), dtype=torch.uint8)
        paths, bad = [], []
        percent = -1
        for done, (i, out) in enumerate(_decode_all(files, [s.st_size for s in stats], resolution, cancel), 1):
            if isinstance(out, str):
                bad.append(Skipped(rels[i], out))
            else:
                images[len(paths)] = torch.from_numpy(out).permute(2, 0, 1)
                paths.append(rels[i])
            if done * 100 // total != percent:  # about one event per percent, whatever the folder size
                percent = done * 100 // total
                yield LoadProgress(done, total, "decoding")
        images = images[: len(paths)].clone() if len(paths) < total else images
        if use_cache:
            _write_cache(cache_file, key, images, paths, bad)

    skipped = sorted(skipped + bad, key=lambda s: s.path)
    if not paths:
        reasons = Counter(s.reason for s in bad).most_common(1)[0][0]
        raise DataError(f"None of the {total} image files in {root} could be read (most common reason: {reasons}).")
    if labeled:
        tops = [p.split("/", 1)[0] for p in paths]
        class_names = sorted(set(tops))
        index = {c: k for k, c in enumerate(class_names)}
        labels = torch.tensor([index[t] for t in tops], dtype=torch.int64)
    else:
        class_names, labels = [], None
    return ImageDataset(root, paths, images, labels, class_names, skipped, resolution)


def load_folder(root, resolution: int = 32, **kw) -> ImageDataset:
    gen = iter_load(root, resolution, **kw)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
