"""Generated awkward input (nothing binary is committed): every file a user's folder might throw at the app.

``build_mixed`` writes a labeled folder where each awkward file either must load (GOOD) or must be skipped with
its own reason (SKIPPED: a substring of that reason). Subprocess tests import this module too (via PYTHONPATH),
which is why it is a plain module and not part of conftest.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
UNREADABLE = "locked.png"
NON_UTF8 = b"\xff\xfe-raw.png"  # not valid UTF-8: Python sees it as "\udcff\udcfe-raw.png"
NON_UTF8_TEXT = b"\xe9t\xe9.jpg"  # Latin-1 "été", a text file: skipped, so its name is printed
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FAST = ["--epochs", "1", "--batch-size", "8", "--resolution", "16", "--no-umap", "--device", "cpu", "--no-transfer"]
PER_CLASS = 6  # plain images per class, so training always has enough to batch

GOOD = [
    "ants/png_named.jpg", "ants/gray16.png", "ants/cmyk.jpg", "ants/palette_alpha.png", "ants/rgba.png",
    "ants/exif_rotated.jpg", "ants/one_pixel.png", "ants/wide_10000x50.png", "ants/anim.gif", "ants/café_蟻.png",
    "ants/" + os.fsdecode(NON_UTF8), "ants/nested/deeper/kid.png",
    *(f"{c}/plain_{i}.png" for c in ("ants", "bees") for i in range(PER_CLASS)),
]
SKIPPED = {
    "loose.png": "not inside a class folder",
    "bees/truncated.png": "truncated",
    "bees/truncated.jpg": "truncated",
    "bees/empty.jpg": "empty file",
    "bees/text.jpg": "not an image",
    "bees/" + os.fsdecode(NON_UTF8_TEXT): "not an image",
    "bees/bomb.png": "decompression bomb",
    f"bees/{UNREADABLE}": "permission denied",
    "bees/dangling.png": "broken link",
    "bees/fifo.png": "not a regular file",  # opening a FIFO would block forever: it must never be opened
}


def image(color, size=(12, 12), mode="RGB") -> Image.Image:
    return Image.new(mode, size, color)


def encode(img: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def noise(seed: int, size=12) -> bytes:
    """A distinct little image, so SSL has something to tell apart."""
    a = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return encode(Image.fromarray(a))


def write(path: Path | bytes, content) -> None:
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(encode(content) if isinstance(content, Image.Image) else content)


def bomb_png(width: int, height: int) -> bytes:
    """A few bytes whose header claims width x height pixels."""

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def build_mixed(root: Path) -> Path:
    ants, bees = root / "ants", root / "bees"
    for c, folder in enumerate((ants, bees)):
        for i in range(PER_CLASS):
            write(folder / f"plain_{i}.png", noise(100 * c + i))
    write(ants / "png_named.jpg", encode(image((0, 0, 255))))
    write(ants / "gray16.png", encode(Image.fromarray(np.full((10, 10), 32896, np.uint16))))
    write(ants / "cmyk.jpg", encode(image((0, 255, 255, 0), mode="CMYK"), "JPEG"))
    palette = Image.new("P", (10, 10), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    write(ants / "palette_alpha.png", encode(palette, transparency=0))
    write(ants / "rgba.png", image((255, 0, 0, 128), mode="RGBA"))
    exif = Image.Exif()
    exif[0x0112] = 6
    write(ants / "exif_rotated.jpg", encode(image((200, 10, 10), (30, 16)), "JPEG", exif=exif))
    write(ants / "one_pixel.png", image((0, 255, 0), (1, 1)))
    write(ants / "wide_10000x50.png", Image.fromarray(np.full((50, 10000, 3), 90, np.uint8)))
    frames = [image((255, 0, 0)).convert("P"), image((0, 0, 255)).convert("P")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)
    write(ants / "anim.gif", buf.getvalue())
    write(ants / "café_蟻.png", noise(7))
    write(os.fsencode(ants) + b"/" + NON_UTF8, noise(8))
    write(ants / "nested" / "deeper" / "kid.png", noise(9))
    write(ants / ".hidden.png", noise(10))
    write(ants / ".thumbnails" / "t.png", noise(11))
    (ants / "loop").symlink_to(root, target_is_directory=True)
    (ants / "nested" / "up").symlink_to("..", target_is_directory=True)

    full_png, full_jpg = encode(image((255, 0, 0), (64, 64))), encode(image((0, 99, 0), (64, 64)), "JPEG")
    write(bees / "truncated.png", full_png[: len(full_png) // 2])
    write(bees / "truncated.jpg", full_jpg[: len(full_jpg) // 2])
    write(bees / "empty.jpg", b"")
    write(bees / "text.jpg", b"I am text with an image's name\n")
    write(os.fsencode(bees) + b"/" + NON_UTF8_TEXT, b"\xe9t\xe9: Latin-1 text\n")
    write(bees / "bomb.png", bomb_png(100_000, 100_000))
    write(bees / UNREADABLE, noise(12))
    (bees / "dangling.png").symlink_to(bees / "missing.png")
    os.mkfifo(bees / "fifo.png")
    write(bees / "notes.txt", b"not named like an image: ignored, not skipped")
    (root / "empty_class").mkdir()
    write(root / "loose.png", noise(13))
    return root


def build_one_class(root: Path) -> Path:
    for i in range(8):
        write(root / "only" / f"{i}.png", noise(200 + i))
    return root


def build_one_image(root: Path) -> Path:
    write(root / "single.png", noise(300))
    return root


def build_labeled(root: Path, classes=("a", "b"), per_class=8) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            write(root / name / f"{i}.png", noise(1000 * (c + 1) + i, size=16))
    return root


def denying_open(real_open, name: str = UNREADABLE):
    """Image.open that fails on ``name`` with the PermissionError the kernel gives a non-root user."""

    def open_(fp, *a, **kw):
        if isinstance(fp, (str, bytes, os.PathLike)) and Path(os.fsdecode(fp)).name == name:
            raise PermissionError(13, "Permission denied", os.fsdecode(fp))
        return real_open(fp, *a, **kw)

    return open_


def deny_reading(folder: Path) -> None:
    """Make the corpus's unreadable file unreadable in this process. chmod 000 does not stop root, so as root
    Image.open is made to fail the way the kernel would for anyone else; otherwise the file mode does it."""
    if IS_ROOT:
        Image.open = denying_open(Image.open)
    else:
        (folder / "bees" / UNREADABLE).chmod(0)


# A command line process with the unreadable file denied: `python -c CLI_WITH_DENIAL FOLDER ARGS...`.
CLI_WITH_DENIAL = ("import sys, pathlib, reliability_corpus as c; c.deny_reading(pathlib.Path(sys.argv[1])); "
                   "from ssl_studio.cli import main; sys.exit(main(sys.argv[2:]))")


def cli_env() -> dict:
    """PYTHONIOENCODING=utf-8 gives strict UTF-8 standard streams, as in an en_US.UTF-8 terminal (this
    container's C.UTF-8 locale would quietly use surrogateescape)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]), "PYTHONIOENCODING": "utf-8"}


def cli_command(*args: str, deny_in: Path | None = None) -> list[str]:
    """`ssl-studio ARGS` as a child process; with ``deny_in``, that corpus's unreadable file is unreadable."""
    if deny_in is not None:
        return [sys.executable, "-c", CLI_WITH_DENIAL, str(deny_in), *args]
    return [sys.executable, "-m", "ssl_studio", *args]


def cli(*args: str, deny_in: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(*args, deny_in=deny_in), capture_output=True, text=True,
                          errors="backslashreplace", env=cli_env(), cwd=ROOT, timeout=timeout)
