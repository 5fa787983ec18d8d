"""Open a folder of images: scan it, decode every usable image once into a uint8 cache on disk, map that cache.

Class subfolders give labels (an image nested deeper takes its top-level folder's class); a flat folder is
unlabeled. A file that cannot be used is skipped with a reason the user can act on, never a crash. The dataset's
images are the cache file mapped into memory, so a folder of 100k images costs memory only for what is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import multiprocessing
import os
import shutil
from collections import Counter, deque
from collections.abc import Generator, Iterator
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
import torch

from ssl_studio.core.atomic import atomic_path, write_json_atomic
from ssl_studio.core.cancel import CancelToken, drain
from ssl_studio.core.decode import decode_chunk, shorter_side
from ssl_studio.core.errors import UserError
from ssl_studio.core.folder_defaults import RESOLUTION
from ssl_studio.core.threads import usable_cores

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

# Bump when decoding or the cache's layout changes, so caches written by older code are rebuilt rather than
# trusted. 2: a memory-mapped .npy and a JSON index (1 was one safetensors file, read whole into memory).
_CACHE_VERSION = 2
# Files decoded and written together: large enough that a pool's messages cost little, small enough that memory
# stays flat and cancel is prompt.
_CHUNK = 256
_CHUNK_BYTES = 32 << 20
# A pool of decoding processes pays for its start (each process imports the app's main module: torch, a second or
# two) only on a folder that takes seconds to decode: about 20k small files or 200 MB of photos on one core. On 2
# cores it did not pay even then: 100k PNGs decoded at 2,263 images/s on one process, 1,753 on two (BENCHMARKS.md,
# scale, a busy machine); so it needs 4 usable CPUs (a threshold not measured here: no such machine).
_POOL_MIN_FILES = 20_000
_POOL_MIN_BYTES = 200 << 20
_POOL_MIN_CPUS = 4
_MAX_PROCESSES = 8
_FREE_MARGIN = 256 << 20  # what the cache leaves free on its disk


class DataError(UserError):
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
    side: int | None = None  # the files' shorter side before decoding (median of a sample), None when unknown
    folder: ImageDataset | None = None  # a curated set's whole folder, as read (None: this is the whole folder)

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

    def subset(self, rows, labels=None) -> ImageDataset:
        """These images (row numbers, in order), with ``labels`` in place of their own when given (a curated set:
        some images left out, some relabelled); the classes stay the folder's."""
        rows = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        kept = self.labels[rows] if labels is None and self.labeled else (
            torch.as_tensor(np.asarray(labels, dtype=np.int64)) if self.labeled else None)
        folder = self.folder if self.folder is not None else self
        return ImageDataset(self.root, [self.paths[i] for i in rows.tolist()], self.images[rows], kept,
                            self.class_names, self.skipped, self.resolution, side=self.side, folder=folder)


def cache_root() -> Path:
    """Root of everything SSL Studio caches; SSL_STUDIO_CACHE_DIR moves it (tests, portable installs)."""
    override = os.environ.get("SSL_STUDIO_CACHE_DIR")
    return Path(override) if override else platformdirs.user_cache_path("ssl-studio")


def default_cache_dir() -> Path:
    return cache_root() / "images"


def _check_root(root) -> Path:
    root = Path(os.fsdecode(root)).expanduser()
    if not root.exists():
        raise DataError(f"The folder {root} does not exist.")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a folder. Choose the folder that contains the images.")
    return root


def _scan(root: Path, cancel: CancelToken | None) -> tuple[list[tuple[str, str]], list[Skipped]]:
    """(path relative to root, path) of each image file under root, sorted, and the entries that were skipped.

    Relative paths are built as strings while walking: pathlib's relative_to was most of a 100k-file reopen.
    """
    files: list[tuple[str, str]] = []
    skipped: list[Skipped] = []
    visited: set[str] = set()  # real paths of walked folders: a symlink back up the tree is walked once
    stack = [(str(root), "")]
    while stack:
        if cancel is not None:
            cancel.raise_if_cancelled()
        folder, prefix = stack.pop()
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
            skipped.append(Skipped(prefix or "./", f"cannot read folder: {e.strerror or e}"))
            continue
        for entry in reversed(entries):
            # Dot-files are hidden on purpose; __MACOSX holds resource forks that unzipping leaves behind.
            if entry.name.startswith(".") or entry.name == "__MACOSX":
                continue
            rel = prefix + entry.name
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()
            except OSError:
                is_dir = is_file = False
            if is_dir:
                stack.append((entry.path, rel + "/"))
            elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                if is_file:
                    files.append((rel, entry.path))
                else:
                    skipped.append(Skipped(rel, "broken link or not a regular file"))
    files.sort()
    return files, skipped


def scan_folder(root) -> tuple[list[Path], list[Skipped]]:
    """Image files under root (recursive, sorted) and the entries that could not even be looked at."""
    root = _check_root(root)
    files, skipped = _scan(root, None)
    return [Path(path) for _, path in files], sorted(skipped, key=lambda s: s.path)


def _cache_key(rels: list[str], stats: list[os.stat_result], resolution: int) -> str:
    # ctime too: chmod changes it but not mtime, and a "permission denied" skip must not outlive the fix.
    entries = [[r, s.st_size, s.st_mtime_ns, s.st_ctime_ns] for r, s in zip(rels, stats)]
    blob = json.dumps([_CACHE_VERSION, resolution, entries])
    return hashlib.sha256(blob.encode()).hexdigest()  # json.dumps escapes to ASCII, odd names included


@dataclass(frozen=True)
class _CacheFiles:
    """Where one folder's cache at one resolution lives: an index (JSON) naming the images file it goes with.

    The images file's name carries the key, so the index is the one file that commits a cache: written last, it
    never points at images decoded from other files, whatever a crash in between left behind.
    """

    folder: Path
    stem: str
    key: str

    @classmethod
    def of(cls, cache_dir: Path, root: Path, resolution: int, key: str) -> _CacheFiles:
        # One index per folder and resolution: editing the folder replaces its cache instead of piling up new ones.
        return cls(cache_dir, f"{hashlib.sha256(os.fsencode(root.resolve())).hexdigest()[:24]}-{resolution}", key)

    @property
    def index(self) -> Path:
        return self.folder / f"{self.stem}.json"

    @property
    def images(self) -> Path:
        return self.folder / f"{self.stem}-{self.key[:16]}.npy"

    def stale(self) -> list[Path]:
        """This folder's images files of other keys, and the single-file cache that version 1 wrote."""
        return [f for f in self.folder.glob(f"{self.stem}-*.npy") if f != self.images] + \
            [f for f in [self.folder / f"{self.stem}.safetensors"] if f.exists()]


def _open_mapped(file: Path) -> torch.Tensor:
    # Copy-on-write mapping: pages are read from the file as they are touched, so memory follows what is used,
    # not the folder's size; a stray in-place write would change this process's copy, never the cache file.
    return torch.from_numpy(np.load(file, mmap_mode="c", allow_pickle=False))


def _read_cache(files: _CacheFiles, rels: list[str], resolution: int):
    """(images, ok paths, skipped) if there is a valid cache for exactly these files, else None."""
    try:
        meta = json.loads(files.index.read_text(encoding="ascii"))
        if meta["key"] != files.key:
            return None
        paths, skipped = meta["paths"], [Skipped(p, r) for p, r in meta["skipped"]]
        if sorted(paths + [s.path for s in skipped]) != sorted(rels):
            return None
        images = _open_mapped(files.images)
        ok = images.dtype == torch.uint8 and tuple(images.shape) == (len(paths), 3, resolution, resolution)
        return (images, paths, skipped) if ok else None
    except Exception:  # missing, corrupt, truncated, foreign or old-format files: rebuild rather than crash
        return None


def _write_index(files: _CacheFiles, paths: list[str], skipped: list[Skipped]) -> None:
    try:
        write_json_atomic(files.index, {"key": files.key, "paths": paths,
                                        "skipped": [[s.path, s.reason] for s in skipped]})
    except OSError as e:  # a read-only or full cache disk only costs speed next time
        log.warning("could not write the image cache index %s: %s", files.index, e)
        return
    for old in files.stale():
        try:
            old.unlink()
        except OSError:  # e.g. still mapped by another process on Windows: removed next time
            pass


def _cache_target(files: _CacheFiles, nbytes: int) -> Path | None:
    """The images file to decode into, or None (decode into memory) where the cache folder cannot take it."""
    try:
        files.folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(files.folder).free
    except OSError as e:
        log.warning("cannot use the image cache folder %s (%s): the images stay in memory", files.folder, e)
        return None
    if free < nbytes + _FREE_MARGIN:
        log.warning("no room for a %d MB image cache in %s: the images stay in memory", nbytes >> 20, files.folder)
        return None
    return files.images


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _chunks(sizes: list[int]) -> list[tuple[int, int]]:
    """(start, stop) of the files decoded and written together: about a percent of the folder at a time, and
    never more than _CHUNK files or _CHUNK_BYTES of them (a chunk of large photos must not hold up cancel)."""
    most = max(1, min(_CHUNK, len(sizes) // 100))
    bounds, start, nbytes = [], 0, 0
    for i, size in enumerate(sizes):
        nbytes += size
        if i + 1 - start >= most or nbytes >= _CHUNK_BYTES:
            bounds.append((start, i + 1))
            start, nbytes = i + 1, 0
    if start < len(sizes):
        bounds.append((start, len(sizes)))
    return bounds


def _decode_processes(sizes: list[int]) -> int:
    """How many processes decode a folder of files of these sizes (1: this one)."""
    cpus = usable_cores()
    if cpus < _POOL_MIN_CPUS or (len(sizes) < _POOL_MIN_FILES and sum(sizes) < _POOL_MIN_BYTES):
        return 1
    return min(cpus, _MAX_PROCESSES)


def _decoded_chunks(files: list[str], sizes: list[int], resolution: int) -> Iterator[tuple[np.ndarray, list]]:
    """decode_chunk's results in order, chunk by chunk; on a pool of processes when the folder is large."""
    chunks = _chunks(sizes)
    processes = _decode_processes(sizes)
    if processes == 1:
        for start, stop in chunks:
            yield decode_chunk(files[start:stop], sizes[start:stop], resolution)
        return
    # Processes, not threads: PIL holds the GIL outside its codecs, and small PNGs are mostly that (threads
    # measured slower than one). spawn, not fork: forking a process that holds torch's and Qt's threads is unsafe.
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
    try:
        pending: deque = deque()
        for start, stop in chunks:
            pending.append(pool.submit(decode_chunk, files[start:stop], sizes[start:stop], resolution))
            if len(pending) > 2 * processes:  # bounded look-ahead: memory stays flat
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenExecutor as e:  # a decoding process died (a crash in a codec)
        raise DataError(f"a decoding process stopped unexpectedly ({e}); try opening the folder again") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _decode_folder(target: Path | None, root: Path, files: list[str], rels: list[str], sizes: list[int],
                   resolution: int, cancel: CancelToken | None):
    """Decode every file, writing each chunk straight into the .npy file ``target`` (None: into memory).

    Yields LoadProgress; returns (images, ok paths, skipped). The file is written with plain writes, not through a
    mapping, so what was decoded sits in the OS's page cache rather than in this process; it is mapped at the end.
    """
    total = len(files)
    shape = (total, 3, resolution, resolution)
    row_bytes = 3 * resolution * resolution
    paths: list[str] = []
    bad: list[Skipped] = []
    with contextlib.ExitStack() as stack:
        if target is None:
            memory = torch.empty(shape, dtype=torch.uint8)
        else:
            out = stack.enter_context(open(stack.enter_context(atomic_path(target)), "wb"))
            header = _npy_header(shape)
            out.write(header)
        # Closed first on the way out (the stack unwinds in reverse): a cancelled load stops its processes.
        chunks = stack.enter_context(contextlib.closing(_decoded_chunks(files, sizes, resolution)))
        done, percent = 0, -1
        for rows, reasons in chunks:
            if cancel is not None:
                cancel.raise_if_cancelled()
            if target is None:
                memory[len(paths):len(paths) + len(rows)] = torch.from_numpy(rows)
            else:
                out.write(rows.data)  # C-contiguous: written without a copy
                out.flush()
            for reason in reasons:
                if reason is None:
                    paths.append(rels[done])
                else:
                    bad.append(Skipped(rels[done], reason))
                done += 1
            if done * 100 // total != percent:  # about one event per percent, whatever the folder size
                percent = done * 100 // total
                yield LoadProgress(done, total, "decoding")
        if not paths:  # raised inside the with: the temp file is removed, no empty cache is kept
            reason = Counter(s.reason for s in bad).most_common(1)[0][0]
            raise DataError(f"None of the {total} image files in {root} could be read (most common reason: {reason}).")
        if target is None:
            return memory[:len(paths)], paths, bad
        if len(paths) < total:
            # numpy pads the header so that the first dimension can change in place (np.lib.format's design).
            out.truncate(len(header) + len(paths) * row_bytes)
            out.seek(0)
            out.write(_npy_header((len(paths), *shape[1:])))
    return _open_mapped(target), paths, bad


SIDE_SAMPLE = 64  # files whose header tells the folder's image size


def folder_side(files: list[str]) -> int | None:
    """The median shorter side of up to SIDE_SAMPLE files spread evenly over ``files`` (headers only: milliseconds)."""
    step = max(1, len(files) // SIDE_SAMPLE)
    sides = [s for s in (shorter_side(path) for path in files[::step][:SIDE_SAMPLE]) if s is not None]
    return int(np.median(sides)) if sides else None


def iter_load(
    root, resolution: int | None = 32, *, cache_dir=None, use_cache: bool = True, cancel: CancelToken | None = None
) -> Generator[LoadProgress, None, ImageDataset]:
    """Yield LoadProgress events; return the ImageDataset (StopIteration.value). ``resolution`` None: the folder's
    choice (folder_defaults.RESOLUTION)."""
    if resolution is not None and resolution < 1:
        raise ValueError(f"resolution must be positive, got {resolution}")
    root = _check_root(root)
    yield LoadProgress(0, 0, "scanning")
    found, skipped = _scan(root, cancel)
    rels, files = [rel for rel, _ in found], [path for _, path in found]
    labeled = any("/" in r for r in rels)
    if labeled:
        loose = [r for r in rels if "/" not in r]
        skipped += [Skipped(r, "not inside a class folder (this folder has class subfolders)") for r in loose]
        keep = [i for i, r in enumerate(rels) if "/" in r]
        files, rels = [files[i] for i in keep], [rels[i] for i in keep]
    stats, keep = [], []
    for i, p in enumerate(files):
        try:
            stats.append(os.stat(p))
            keep.append(i)
        except OSError as e:
            skipped.append(Skipped(rels[i], f"cannot read file: {e.strerror or e}"))
    files, rels = [files[i] for i in keep], [rels[i] for i in keep]
    if not files:
        detail = f" ({len(skipped)} unusable entries, e.g. {skipped[0].path}: {skipped[0].reason})" if skipped else ""
        raise DataError(f"No images found in {root}. Supported: {', '.join(sorted(IMAGE_EXTENSIONS))}{detail}.")
    total = len(files)
    yield LoadProgress(0, total, "scanning")
    side = folder_side(files)
    resolution = resolution or RESOLUTION

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = _CacheFiles.of(cache_dir, root, resolution, _cache_key(rels, stats, resolution))
    cached = _read_cache(cache, rels, resolution) if use_cache else None
    if cached is not None:
        images, paths, bad = cached
        yield LoadProgress(total, total, "cache")
    else:
        sizes = [s.st_size for s in stats]
        target = _cache_target(cache, total * 3 * resolution * resolution) if use_cache else None
        try:
            images, paths, bad = yield from _decode_folder(target, root, files, rels, sizes, resolution, cancel)
        except OSError as e:
            if target is None:
                raise
            # Decoding turns file errors into skip reasons, so this is the cache file failing (disk full...).
            log.warning("could not write the image cache %s (%s): decoding into memory instead", target, e)
            target = None
            images, paths, bad = yield from _decode_folder(None, root, files, rels, sizes, resolution, cancel)
        if target is not None:
            _write_index(cache, paths, bad)

    skipped = sorted(skipped + bad, key=lambda s: s.path)
    if labeled:
        tops = [p.split("/", 1)[0] for p in paths]
        class_names = sorted(set(tops))
        index = {c: k for k, c in enumerate(class_names)}
        labels = torch.tensor([index[t] for t in tops], dtype=torch.int64)
    else:
        class_names, labels = [], None
    return ImageDataset(root, paths, images, labels, class_names, skipped, resolution, side)


def load_folder(root, resolution: int | None = 32, **kw) -> ImageDataset:
    return drain(iter_load(root, resolution, **kw))
