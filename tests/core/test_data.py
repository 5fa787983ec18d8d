import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_studio.core import data
from ssl_studio.core.cancel import CancelToken, Cancelled
from ssl_studio.core.data import DataError, LoadProgress, Skipped, iter_load, load_folder, scan_folder

R = 8
RED, BLUE, GREEN, WHITE = (255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 255)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# bomb_band.png makes PIL warn before data.py skips it; the skip itself is asserted below.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


def solid(color, size=(12, 12), mode="RGB"):
    return Image.new(mode, size, color)


def png_bytes(img, fmt="PNG", **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, Image.Image):
        content.save(path)
    else:
        path.write_bytes(content)
    return path


def png_header_only(width, height):
    """A tiny PNG whose IHDR claims a huge size: what a decompression bomb looks like before decoding."""

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def two_tone(size, first, second, vertical_split=True):
    """Left/right (or top/bottom) halves in two colors: its orientation can be read back after loading."""
    a = np.zeros((size[1], size[0], 3), np.uint8)
    if vertical_split:
        a[:, : size[0] // 2], a[:, size[0] // 2 :] = first, second
    else:
        a[: size[1] // 2], a[size[1] // 2 :] = first, second
    return Image.fromarray(a)


# path -> expected RGB of the loaded (R x R) image's centre, for every file that must load.
GOOD = {
    "cats/plain.png": RED,
    "cats/upper.PNG": GREEN,
    "cats/png_named.jpg": BLUE,
    "cats/photo.jpeg": RED,
    "cats/bitmap.bmp": GREEN,
    "cats/scan.tif": BLUE,
    "cats/web.webp": RED,
    "cats/gray16.png": (128, 128, 128),
    "cats/cmyk.jpg": RED,
    "cats/palette_alpha.png": WHITE,
    "cats/rgba_half.png": (255, 128, 128),
    "cats/la.png": WHITE,
    "cats/one_pixel.png": GREEN,
    "cats/wide.png": WHITE,
    "cats/anim.gif": RED,
    "cats/exif_rotated.jpg": None,  # checked separately
    "cats/café_猫.png": BLUE,
    "cats/\udcff\udcfe.png": GREEN,  # a non-UTF-8 byte name, as os.fsdecode gives it
    "cats/nested/deeper/kitten.png": RED,
    "dogs/ok.png": BLUE,
}
SKIPPED = {
    "loose.png": "not inside a class folder",
    "dogs/empty.jpg": "empty file",
    "dogs/text.jpg": "not an image",
    "dogs/truncated.png": "truncated",
    "dogs/truncated.jpg": "truncated",
    "dogs/bomb.png": "decompression bomb",
    "dogs/bomb_band.png": "decompression bomb",
    "dogs/locked.png": "permission denied",
    "dogs/dangling.png": "broken link",
}


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    root = tmp_path_factory.mktemp("awkward")
    cats, dogs = root / "cats", root / "dogs"
    write(cats / "plain.png", solid(RED))
    write(cats / "upper.PNG", solid(GREEN))
    write(cats / "png_named.jpg", png_bytes(solid(BLUE)))
    write(cats / "photo.jpeg", solid(RED, (40, 30)))
    write(cats / "bitmap.bmp", solid(GREEN))
    write(cats / "scan.tif", solid(BLUE))
    write(cats / "web.webp", png_bytes(solid(RED), "WEBP", lossless=True))
    write(cats / "gray16.png", Image.fromarray(np.full((10, 10), 32896, np.uint16)))  # 32896 / 257 = 128
    write(cats / "cmyk.jpg", solid((0, 255, 255, 0), mode="CMYK"))
    palette = Image.new("P", (10, 10), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.info["transparency"] = 0  # index 0 (black) is transparent: must come out white, not black
    write(cats / "palette_alpha.png", png_bytes(palette, transparency=0))
    write(cats / "rgba_half.png", solid((255, 0, 0, 128), mode="RGBA"))
    write(cats / "la.png", solid((0, 0), mode="LA"))
    write(cats / "one_pixel.png", solid(GREEN, (1, 1)))
    wide = np.zeros((50, 10000, 3), np.uint8)
    wide[:, 4970:5030] = 255  # only the centre is white: the centre crop must find it
    write(cats / "wide.png", Image.fromarray(wide))
    frames = [solid(RED, mode="RGB").convert("P"), solid(BLUE, mode="RGB").convert("P")]
    frames[0].save(cats / "anim.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the red left half ends up on top
    write(cats / "exif_rotated.jpg", png_bytes(two_tone((40, 20), RED, BLUE), "JPEG", exif=exif, quality=95))
    write(cats / "café_猫.png", solid(BLUE))
    with open(os.fsencode(cats) + b"/\xff\xfe.png", "wb") as f:
        f.write(png_bytes(solid(GREEN)))
    write(cats / "nested" / "deeper" / "kitten.png", solid(RED))
    write(cats / ".hidden.png", solid(RED))
    write(cats / ".thumbs" / "t.png", solid(RED))
    write(root / "__MACOSX" / "cats" / "._plain.png", b"\x00\x05\x16\x07")
    (cats / "loop").symlink_to(root, target_is_directory=True)
    (dogs / "self").parent.mkdir()
    (dogs / "self").symlink_to(".", target_is_directory=True)

    write(dogs / "ok.png", solid(BLUE))
    write(dogs / "notes.txt", b"not an image, and not named like one: ignored")
    write(dogs / "empty.jpg", b"")
    write(dogs / "text.jpg", b"hello, I am text\n")
    full_png, full_jpg = png_bytes(solid(RED, (64, 64))), png_bytes(two_tone((64, 64), RED, BLUE), "JPEG")
    write(dogs / "truncated.png", full_png[: len(full_png) // 2])
    write(dogs / "truncated.jpg", full_jpg[: len(full_jpg) // 2])
    write(dogs / "bomb.png", png_header_only(100_000, 100_000))  # above 2x PIL's limit: PIL raises itself
    write(dogs / "bomb_band.png", png_header_only(10_000, 10_000))  # above the limit, below PIL's own error
    write(dogs / "locked.png", solid(RED))
    (dogs / "dangling.png").symlink_to(dogs / "missing.png")
    (root / "empty_class").mkdir()
    write(root / "loose.png", solid(RED))
    return root


@pytest.fixture
def locked_file_unreadable(awkward, monkeypatch):
    """chmod 000 does not stop root, so as root the permission error is simulated at the open call."""
    locked = awkward / "dogs" / "locked.png"
    if not IS_ROOT:
        locked.chmod(0)
        yield
        locked.chmod(0o644)
        return
    real_open = Image.open

    def open_(fp, *a, **kw):
        if Path(fp).name == "locked.png":
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *a, **kw)

    monkeypatch.setattr(Image, "open", open_)
    yield


def center(ds, rel):
    return tuple(ds.images[ds.paths.index(rel), :, R // 2, R // 2].tolist())


def assert_color(actual, expected, tol=12):
    assert max(abs(a - e) for a, e in zip(actual, expected)) <= tol, (actual, expected)


def test_awkward_folder_loads_exactly_the_usable_images(awkward, locked_file_unreadable):
    ds = load_folder(awkward, R)
    assert ds.paths == sorted(GOOD)
    assert ds.images.shape == (len(GOOD), 3, R, R) and ds.images.dtype == torch.uint8
    assert ds.class_names == ["cats", "dogs"]  # empty_class holds no image, so it is no class
    assert ds.labeled and ds.labels.dtype == torch.int64
    assert ds.labels.tolist() == [0 if p.startswith("cats/") else 1 for p in ds.paths]
    assert ds.class_counts() == {"cats": len(GOOD) - 1, "dogs": 1}
    assert len(ds) == len(GOOD) and ds.resolution == R and ds.root == awkward
    for rel, color in GOOD.items():
        if color is not None:
            assert_color(center(ds, rel), color)


def test_every_skipped_file_has_its_own_reason(awkward, locked_file_unreadable):
    ds = load_folder(awkward, R)
    assert [s.path for s in ds.skipped] == sorted(SKIPPED)
    for s in ds.skipped:
        assert SKIPPED[s.path] in s.reason, s


def test_exif_orientation_is_applied(awkward):
    ds = load_folder(awkward, R)
    img = ds.images[ds.paths.index("cats/exif_rotated.jpg")]
    top, bottom = img[:, 1, R // 2].tolist(), img[:, R - 2, R // 2].tolist()
    assert_color(top, RED, tol=40)
    assert_color(bottom, BLUE, tol=40)


def test_scan_finds_images_recursively_skipping_hidden_and_loops(awkward):
    files, skipped = scan_folder(awkward)
    rels = [p.relative_to(awkward).as_posix() for p in files]
    assert rels == sorted(rels)
    assert "cats/nested/deeper/kitten.png" in rels and "loose.png" in rels
    assert not any("/." in "/" + r or r.startswith("__MACOSX") for r in rels)
    assert not any("loop/" in r or "self/" in r for r in rels)  # each real folder is walked once
    assert skipped == [Skipped("dogs/dangling.png", "broken link or not a regular file")]


# Root reads folders whatever their mode, so as root the folder is loaded by a child process in a user namespace
# as user 1000: root's files are its own there, so the owner's permission bits apply, and it has no capability to
# override them. (setpriv as user nobody, as the faults tests run, would need the capability to read every file,
# which reads this folder too.)
AS_ORDINARY_USER = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]
LOAD_AND_PRINT = ("import json, sys; from ssl_studio.core.data import load_folder; ds = load_folder(sys.argv[1], "
                  "int(sys.argv[2])); print(json.dumps([ds.paths, [[s.path, s.reason] for s in ds.skipped]]))")


def load_without_root(folder: Path) -> tuple[list, list]:
    import json
    import shutil
    import subprocess
    import sys

    command = [*AS_ORDINARY_USER, sys.executable, "-c", LOAD_AND_PRINT, str(folder), str(R)]
    if shutil.which("unshare") is None or subprocess.run([*AS_ORDINARY_USER, "true"]).returncode:
        pytest.skip("running as root, which reads folders whatever their mode, and unshare cannot start a process "
                    "in a user namespace here")
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    return json.loads(done.stdout.splitlines()[-1])


def test_unreadable_folder_is_reported(tmp_path):
    write(tmp_path / "a" / "x.png", solid(RED))
    write(tmp_path / "b" / "y.png", solid(RED))
    (tmp_path / "b").chmod(0)
    try:
        if IS_ROOT:
            paths, skipped = load_without_root(tmp_path)
        else:
            ds = load_folder(tmp_path, R)
            paths, skipped = ds.paths, [[s.path, s.reason] for s in ds.skipped]
    finally:
        (tmp_path / "b").chmod(0o755)
    assert paths == ["a/x.png"]
    assert skipped[0][0] == "b/" and "cannot read folder" in skipped[0][1]


def test_flat_folder_is_unlabeled(tmp_path):
    write(tmp_path / "b.png", solid(RED))
    write(tmp_path / "a.jpg", solid(GREEN))
    ds = load_folder(tmp_path, R)
    assert ds.paths == ["a.jpg", "b.png"]
    assert ds.labels is None and ds.class_names == [] and not ds.labeled and ds.class_counts() == {}


def test_single_class_and_single_image(tmp_path):
    write(tmp_path / "only" / "one.png", solid(RED, (5, 9)))
    ds = load_folder(tmp_path, 16)
    assert ds.paths == ["only/one.png"] and ds.class_names == ["only"] and ds.labels.tolist() == [0]
    assert ds.images.shape == (1, 3, 16, 16)


def test_resize_center_crops_the_shorter_side(tmp_path):
    write(tmp_path / "tall.png", two_tone((10, 40), RED, BLUE, vertical_split=False))
    write(tmp_path / "wide.png", two_tone((40, 10), RED, BLUE))
    ds = load_folder(tmp_path, 10)
    for rel in ("tall.png", "wide.png"):
        img = ds.images[ds.paths.index(rel)]
        # The crop is the middle square, so both colors survive, split through the middle.
        assert_color(img[:, 0, 0].tolist(), RED)
        assert_color(img[:, 9, 9].tolist(), BLUE)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: write(p / "file.png", solid(RED)), "is a file"),
        (lambda p: p, "No images found"),
        (lambda p: write(p / "readme.txt", b"hi").parent, "No images found"),
        (lambda p: write(p / "c" / "bad.png", b"junk").parent.parent, "None of the 1 image files"),
    ],
    ids=["missing", "file", "empty", "no-images", "all-broken"],
)
def test_unusable_folders_raise_data_error(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        load_folder(make(tmp_path), R)


def test_a_folder_of_only_hidden_files_has_no_images(tmp_path):
    write(tmp_path / ".secret.png", solid(RED))
    with pytest.raises(DataError, match="No images found"):
        load_folder(tmp_path, R)


def many(tmp_path, n):
    img = png_bytes(solid(RED, (4, 4)))
    for i in range(n):
        write(tmp_path / f"img{i:03d}.png", img)
    return tmp_path


def test_progress_is_throttled_and_ends_at_total(tmp_path):
    gen = iter_load(many(tmp_path, 250), R, use_cache=False)
    events = []
    with pytest.raises(StopIteration) as stop:
        while True:
            events.append(next(gen))
    assert len(stop.value.value) == 250
    decoding = [e for e in events if e.stage == "decoding"]
    assert 50 <= len(decoding) <= 101  # about one per percent, not one per image
    assert [e.done for e in decoding] == sorted(e.done for e in decoding)
    assert decoding[-1] == LoadProgress(250, 250, "decoding")
    assert events[0].stage == "scanning"


def test_cancel_stops_loading(tmp_path):
    folder = many(tmp_path, 200)
    token = CancelToken()
    gen = iter_load(folder, R, use_cache=False, cancel=token)
    with pytest.raises(Cancelled):
        for event in gen:
            if event.stage == "decoding":
                token.cancel()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        load_folder(folder, R, cancel=token)


def stages(folder, **kw):
    gen = iter_load(folder, R, **kw)
    seen = set()
    try:
        while True:
            seen.add(next(gen).stage)
    except StopIteration as stop:
        return stop.value, seen


def test_second_load_comes_from_the_cache_without_decoding(awkward, monkeypatch, isolated_cache):
    first, seen = stages(awkward)
    assert "decoding" in seen and list((isolated_cache / "images").glob("*.npy"))

    def no_open(*a, **kw):
        raise AssertionError("a cached load must not open images")

    monkeypatch.setattr(Image, "open", no_open)
    second, seen = stages(awkward)
    assert "cache" in seen and "decoding" not in seen
    assert second.paths == first.paths and second.skipped == first.skipped
    assert torch.equal(second.images, first.images) and torch.equal(second.labels, first.labels)


def test_touching_a_file_invalidates_the_cache(tmp_path):
    folder = many(tmp_path / "f", 5)
    stages(folder)
    assert "cache" in stages(folder)[1]
    stat = (folder / "img002.png").stat()
    os.utime(folder / "img002.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert "decoding" in stages(folder)[1]
    write(folder / "img999.png", solid(BLUE))
    ds, seen = stages(folder)
    assert "decoding" in seen and len(ds) == 6
    assert "cache" in stages(folder)[1]


@pytest.mark.parametrize("part", ["json", "npy"])
def test_corrupt_cache_is_rebuilt(tmp_path, isolated_cache, part):
    folder = many(tmp_path / "f", 5)
    stages(folder)
    files = sorted((isolated_cache / "images").iterdir())
    (damaged,) = [f for f in files if f.suffix == f".{part}"]
    for garbage in (b"", b"\xff" * 100, damaged.read_bytes()[:200]):
        damaged.write_bytes(garbage)
        ds, seen = stages(folder)
        assert "decoding" in seen and len(ds) == 5
    assert "cache" in stages(folder)[1]  # the rebuilt files are valid again
    assert sorted(damaged.parent.iterdir()) == files  # no temp file left behind


def test_cache_is_per_resolution_and_optional(tmp_path, isolated_cache):
    folder = many(tmp_path / "f", 3)
    load_folder(folder, 8)
    _, seen = stages(folder)  # R = 8: cached
    assert "cache" in seen
    assert load_folder(folder, 16).images.shape[-1] == 16
    other = tmp_path / "elsewhere"
    ds, seen = stages(many(tmp_path / "g", 3), cache_dir=other, use_cache=False)
    assert "decoding" in seen and not other.exists()
    ds, seen = stages(folder, cache_dir=other)
    assert "decoding" in seen and list(other.glob("*.npy"))


def test_default_cache_dir_follows_the_environment(isolated_cache, monkeypatch):
    assert data.default_cache_dir() == isolated_cache / "images"
    monkeypatch.delenv("SSL_STUDIO_CACHE_DIR")
    assert data.default_cache_dir().name == "images" and "ssl-studio" in str(data.default_cache_dir())


def test_bytes_and_path_roots_are_accepted(tmp_path):
    write(tmp_path / "x.png", solid(RED))
    assert load_folder(os.fsencode(tmp_path), R).paths == ["x.png"]
    assert load_folder(str(tmp_path), R).paths == ["x.png"]


def test_an_unwritable_cache_only_costs_speed(tmp_path):
    folder = many(tmp_path / "f", 3)
    blocker = write(tmp_path / "not_a_dir", b"a file where the cache folder should be")
    for _ in range(2):
        ds, seen = stages(folder, cache_dir=blocker / "images")
        assert len(ds) == 3 and "decoding" in seen


def mapped_file(tensor: torch.Tensor) -> str | None:
    """The file a tensor's memory is mapped from, as Linux lists this process's mappings (None: anonymous)."""
    address = tensor.untyped_storage().data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        span, *_, name = line.split(maxsplit=5) if len(line.split()) == 6 else (*line.split(), None)
        low, high = (int(x, 16) for x in span.split("-"))
        if low <= address < high:
            return name
    return None


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads Linux's list of memory mappings")
def test_the_images_are_the_mapped_cache_file_not_a_copy(tmp_path, isolated_cache):
    folder = many(tmp_path / "f", 30)
    for stage in ("decoding", "cache"):  # freshly decoded, then reopened
        ds, seen = stages(folder)
        assert stage in seen
        (npy,) = (isolated_cache / "images").glob("*.npy")
        assert mapped_file(ds.images) == str(npy)
        on_disk = np.load(npy, mmap_mode="r")
        assert isinstance(on_disk, np.memmap) and np.array_equal(on_disk, ds.images.numpy())
    ds.images[0].fill_(7)  # copy-on-write: a stray in-place write stays in this process
    assert not (np.load(npy)[0] == 7).all()
    assert mapped_file(load_folder(folder, R, use_cache=False).images) != str(npy)


def test_decoded_chunks_go_straight_into_the_cache_file(tmp_path, isolated_cache):
    """No full-size array is built first: at every progress event the file holds exactly what was decoded."""
    n = 250
    folder = many(tmp_path / "f", n)
    header = len(data._npy_header((n, 3, R, R)))
    gen = iter_load(folder, R)
    written = []
    with pytest.raises(StopIteration):
        while True:
            if next(gen).stage == "decoding":
                (tmp,) = (isolated_cache / "images").glob(".*.tmp")
                written.append((tmp.stat().st_size - header) / (3 * R * R))
    assert len(written) >= 50 and written == sorted(written) and written[-1] == n
    assert written[0] < n / 10


def test_chunks_are_bounded_by_files_and_bytes():
    chunks = data._chunks([100] * 100_000)
    assert max(stop - start for start, stop in chunks) == data._CHUNK
    assert data._chunks([100] * 250)[:2] == [(0, 2), (2, 4)]  # about a percent each: smooth progress
    big = data._CHUNK_BYTES // 2
    assert data._chunks([big] * 1000)[:2] == [(0, 2), (2, 4)]  # large photos: a few at a time
    covered = [i for start, stop in chunks for i in range(start, stop)]
    assert covered == list(range(100_000))


def test_skipped_files_leave_no_rows_in_the_cache_file(awkward, isolated_cache):
    ds, _ = stages(awkward)
    (npy,) = (isolated_cache / "images").glob("*.npy")
    assert np.load(npy, mmap_mode="r").shape == (len(ds), 3, R, R) and ds.skipped
    assert npy.stat().st_size == len(data._npy_header(tuple(ds.images.shape))) + ds.images.numel()


def test_a_version_1_cache_file_is_decoded_again_and_removed(tmp_path, isolated_cache):
    folder = many(tmp_path / "f", 3)
    stages(folder)
    cache = isolated_cache / "images"
    (index,) = cache.glob("*.json")
    for leftover in cache.iterdir():
        leftover.unlink()
    old = cache / f"{index.stem}.safetensors"  # what version 1 wrote for this folder and resolution
    old.write_bytes(b"an old cache, never read")
    ds, seen = stages(folder)
    assert "decoding" in seen and len(ds) == 3 and not old.exists()


def test_a_cache_that_cannot_be_written_leaves_the_images_in_memory(tmp_path, isolated_cache, monkeypatch, caplog):
    from ssl_studio.core import atomic

    real_replace = atomic.os.replace

    def disk_full(src, dst, *a, **kw):
        if str(dst).endswith(".npy"):
            raise OSError(28, "No space left on device", str(dst))
        return real_replace(src, dst, *a, **kw)

    folder = many(tmp_path / "f", 20)
    monkeypatch.setattr(atomic.os, "replace", disk_full)
    ds, seen = stages(folder)
    assert "decoding" in seen and len(ds) == 20 and torch.equal(ds.images, load_folder(folder, R, use_cache=False).images)
    assert "decoding into memory instead" in caplog.text
    assert not list((isolated_cache / "images").iterdir())  # no temp file, no half cache


def test_decoding_processes_give_the_same_dataset(awkward, monkeypatch, tmp_path):
    import multiprocessing

    before = set(multiprocessing.active_children())
    serial = load_folder(awkward, R, use_cache=False)
    monkeypatch.setattr(data, "_decode_processes", lambda sizes: 2)
    pooled = load_folder(awkward, R, cache_dir=tmp_path / "cache")
    assert pooled.paths == serial.paths and pooled.skipped == serial.skipped
    assert torch.equal(pooled.images, serial.images)
    assert set(multiprocessing.active_children()) <= before  # the pool is shut down


def test_cancel_stops_the_decoding_processes(tmp_path, monkeypatch):
    import multiprocessing

    before = set(multiprocessing.active_children())
    monkeypatch.setattr(data, "_decode_processes", lambda sizes: 2)
    token = CancelToken()
    with pytest.raises(Cancelled):
        for event in iter_load(many(tmp_path, 300), R, use_cache=False, cancel=token):
            if event.stage == "decoding":
                token.cancel()
    assert set(multiprocessing.active_children()) <= before


def test_only_a_large_folder_on_enough_cores_is_decoded_on_several_processes(monkeypatch):
    many_files, big_files = [1_000] * data._POOL_MIN_FILES, [data._POOL_MIN_BYTES // 10] * 10
    monkeypatch.setattr(data, "usable_cores", lambda: 16)
    assert data._decode_processes([1_000] * 2_000) == 1  # the start of a pool would cost more than it saves
    assert data._decode_processes(many_files) == data._decode_processes(big_files) == data._MAX_PROCESSES
    monkeypatch.setattr(data, "usable_cores", lambda: data._POOL_MIN_CPUS)
    assert data._decode_processes(many_files) == data._POOL_MIN_CPUS
    monkeypatch.setattr(data, "usable_cores", lambda: 2)  # measured: two processes lost to one on 2 cores
    assert data._decode_processes(many_files) == 1
