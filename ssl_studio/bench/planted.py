"""Plant problems in a labeled folder, then score how many of them a run's audit finds.

    python -m ssl_studio.bench.planted plant SOURCE OUT --outliers-from OTHER [--per-class 300] [--seed 0]
    ssl-studio run OUT --out RUN ...
    python -m ssl_studio.bench.planted score RUN [--json]

``plant`` copies ``--per-class`` images of each class of SOURCE (a folder of class subfolders) into OUT, then
plants the three problems the audit looks for, and lists them in OUT/planted.json (not an image, so a run ignores
it):

- *flipped labels*: ``--flip`` of the copied images move into another class's folder;
- *near-duplicates*: ``--duplicates`` images get a copy beside them, re-encoded as JPEG and shifted by one pixel;
  half of the copies go into another class's folder (where the evaluation split puts them is the run's choice);
- *outliers*: ``--outliers`` images of another kind (from OTHER, any image folder) are spread over the classes.

No image is planted twice: flips, originals of duplicates and their copies, and outliers are different images.
``score`` reads the run's audit.json (auditing the run first if it has none) and, for each space, reports the share
of planted pairs in the duplicate list and the list's length against a tenth of the images, the share of flips among
the first twice-as-many label suspects, and the share of planted outliers among the first twice-as-many outliers:
the targets of the audit (README, "Audit").
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ssl_studio.core.atomic import write_json_atomic
from ssl_studio.core.audit import audit_run
from ssl_studio.core.data import IMAGE_EXTENSIONS
from ssl_studio.core.runs import AUDIT, RunError, RunFolder

MANIFEST = "planted.json"
JPEG_QUALITY = 75


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _near_copy(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The image shifted by one pixel (edge pixels repeated) and re-encoded as JPEG."""
    pixels = np.asarray(image)
    dy, dx = [(0, 1), (0, -1), (1, 0), (-1, 0)][rng.integers(4)]
    pad = [(1, 1), (1, 1)] + [(0, 0)] * (pixels.ndim - 2)
    shifted = np.pad(pixels, pad, mode="edge")[1 - dy:1 - dy + pixels.shape[0], 1 - dx:1 - dx + pixels.shape[1]]
    buffer = io.BytesIO()
    Image.fromarray(shifted).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return Image.open(io.BytesIO(buffer.getvalue()))


def plant(source: Path, out: Path, outliers_from: Path, per_class: int = 300, flip: float = 0.05,
          duplicates: int = 60, outliers: int = 40, seed: int = 0) -> dict:
    """Write the planted folder ``out`` and its manifest; return the manifest."""
    classes = sorted(d.name for d in source.iterdir() if d.is_dir())
    if len(classes) < 2:
        raise ValueError(f"{source} needs at least 2 class subfolders to plant flipped labels, found {len(classes)}")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty: plant into a new folder")
    rng = np.random.default_rng(seed)
    chosen = []  # (class, source file)
    for name in classes:
        files = _images(source / name)
        if len(files) < per_class:
            raise ValueError(f"{source / name} has {len(files)} images, fewer than --per-class {per_class}")
        chosen += [(name, files[i]) for i in sorted(rng.choice(len(files), per_class, replace=False))]
    n_flips = round(flip * len(chosen))
    if n_flips + duplicates > len(chosen):
        raise ValueError(f"{len(chosen)} images cannot give {n_flips} flips and {duplicates} duplicates")
    order = rng.permutation(len(chosen))
    flipped, duplicated = set(order[:n_flips].tolist()), order[n_flips:n_flips + duplicates].tolist()

    def other_class(name: str) -> str:
        return classes[(classes.index(name) + 1 + rng.integers(len(classes) - 1)) % len(classes)]

    manifest = {"source": str(source), "seed": seed, "flipped": {}, "duplicates": [], "outliers": []}
    paths = {}
    for i, (name, file) in enumerate(chosen):
        label = other_class(name) if i in flipped else name
        paths[i] = f"{label}/{name}-{file.stem}.png"
        (out / label).mkdir(parents=True, exist_ok=True)
        Image.open(file).save(out / paths[i])
        if i in flipped:
            manifest["flipped"][paths[i]] = name
    for n, i in enumerate(duplicated):
        name = chosen[i][0]
        label = other_class(name) if n % 2 else name
        copy = f"{label}/{name}-{chosen[i][1].stem}-copy.jpg"
        _near_copy(Image.open(out / paths[i]), rng).save(out / copy, quality=95)
        manifest["duplicates"].append([paths[i], copy])
    others = _images(outliers_from)
    if len(others) < outliers:
        raise ValueError(f"{outliers_from} has {len(others)} images, fewer than the {outliers} outliers asked for")
    for n, j in enumerate(sorted(rng.choice(len(others), outliers, replace=False))):
        path = f"{classes[n % len(classes)]}/outlier-{n:03d}{others[j].suffix.lower()}"
        Image.open(others[j]).save(out / path)
        manifest["outliers"].append(path)
    write_json_atomic(out / MANIFEST, manifest)
    return manifest


def _found(ranked: list, planted: set, top: int) -> int:
    return len(planted & {tuple(sorted(x)) if isinstance(x, list) else x for x in ranked[:top]})


def score(run_dir: Path) -> dict:
    """Each space's share of the planted problems its audit finds (see the module's doc)."""
    run = RunFolder.open(run_dir)
    manifest = json.loads((run.read_settings().data_root / MANIFEST).read_text())
    n = len(run.read_dataset().paths)
    audit = run.read_json(AUDIT) if run.exists(AUDIT) else audit_run(run_dir)
    pairs = {tuple(sorted(p)) for p in manifest["duplicates"]}
    flips, odd = set(manifest["flipped"]), set(manifest["outliers"])
    result = {"images": n, "planted": {"duplicates": len(pairs), "flipped": len(flips), "outliers": len(odd)},
              "spaces": {}}
    for space, found in audit["spaces"].items():
        result["spaces"][space] = {
            "duplicates_found": _found(found["duplicates"], pairs, len(found["duplicates"])) / len(pairs),
            "duplicate_list_share": len(found["duplicates"]) / n,
            "flips_found": _found(found["mislabeled"], flips, 2 * len(flips)) / len(flips) if flips else None,
            "outliers_found": _found(found["outliers"], odd, 2 * len(odd)) / len(odd) if odd else None,
            "suggested_right": (sum(found["suggested"].get(p) == c for p, c in manifest["flipped"].items())
                                / len(flips) if flips else None),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssl_studio.bench.planted", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plant", help="copy a labeled folder and plant flipped labels, near-duplicates and outliers")
    p.add_argument("source", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--outliers-from", type=Path, required=True, help="a folder of images of another kind")
    p.add_argument("--per-class", type=int, default=300)
    p.add_argument("--flip", type=float, default=0.05, help="share of the images whose label is flipped")
    p.add_argument("--duplicates", type=int, default=60)
    p.add_argument("--outliers", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("score", help="how many of the planted problems a run's audit finds, per space")
    s.add_argument("run", type=Path)
    s.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "plant":
            found = plant(args.source, args.out, args.outliers_from, args.per_class, args.flip, args.duplicates,
                          args.outliers, args.seed)
            print(f"planted {len(found['flipped'])} flipped labels, {len(found['duplicates'])} near-duplicates and "
                  f"{len(found['outliers'])} outliers in {args.out} (listed in {args.out / MANIFEST})")
            return 0
        result = score(args.run)
    except (OSError, ValueError, KeyError, RunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    n = result["images"]
    print(f"{n} images; planted {result['planted']}")
    print(f"{'space':<12}{'pairs found':>12}{'list/n':>8}{'flips in top 2x':>17}{'outliers in top 2x':>20}"
          f"{'suggested right':>17}")
    for space, r in result["spaces"].items():
        cells = [r["flips_found"], r["outliers_found"], r["suggested_right"]]
        print(f"{space:<12}{r['duplicates_found']:>12.1%}{r['duplicate_list_share']:>8.1%}"
              + "".join(f"{'-' if c is None else f'{c:.1%}':>{w}}" for c, w in zip(cells, (17, 20, 17))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
