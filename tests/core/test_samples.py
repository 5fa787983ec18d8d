import numpy as np
import pytest
from PIL import Image

from ssl_studio.core import samples
from ssl_studio.core.data import load_folder
from ssl_studio.core.samples import SAMPLES, SHAPES, make_shapes, sample_folder


def pixels(folder):
    return {p.relative_to(folder).as_posix(): np.asarray(Image.open(p)) for p in sorted(folder.rglob("*.png"))}


def test_make_shapes_writes_class_folders_deterministically(tmp_path):
    out = make_shapes(tmp_path / "a", per_class=3, size=24, seed=7)
    assert out == tmp_path / "a"
    first = pixels(out)
    assert sorted({k.split("/")[0] for k in first}) == sorted(SHAPES) and len(SHAPES) == 8
    assert len(first) == 8 * 3
    assert all(a.shape == (24, 24, 3) and a.dtype == np.uint8 for a in first.values())
    again = pixels(make_shapes(tmp_path / "b", per_class=3, size=24, seed=7))
    assert first.keys() == again.keys() and all(np.array_equal(first[k], again[k]) for k in first)
    other = pixels(make_shapes(tmp_path / "c", per_class=3, size=24, seed=8))
    assert not all(np.array_equal(first[k], other[k]) for k in first)


def test_shape_colors_do_not_give_the_class_away(tmp_path):
    ds = load_folder(make_shapes(tmp_path, per_class=20, size=32, seed=0), 32)
    assert ds.class_names == sorted(SHAPES) and set(ds.class_counts().values()) == {20}
    mean_color = ds.images.float().mean(dim=(2, 3))  # (N, 3)
    per_class = [mean_color[ds.labels == k] for k in range(len(ds.class_names))]
    # Color varies about as much inside a class as across the whole set: pixels alone cannot sort by shape.
    assert all(c.std(dim=0).mean() > 0.5 * mean_color.std(dim=0).mean() for c in per_class)
    # Antialiased edges: more distinct colors than just a background and a foreground.
    assert all(len(np.unique(np.asarray(img).reshape(-1, 3), axis=0)) > 4 for img in ds.images.permute(0, 2, 3, 1))


def test_digits_sample_is_sklearn_digits_as_pngs(tmp_path):
    out = sample_folder("digits", cache_dir=tmp_path)  # runs make_digits, the slow part, once for both checks
    assert out == tmp_path / "digits-v1"
    ds = load_folder(out, 32)
    assert ds.class_names == [str(d) for d in range(10)]
    assert len(ds) == 1797 and not ds.skipped
    with Image.open(next((out / "3").iterdir())) as img:
        assert img.size == (32, 32) and img.mode == "RGB"
        r, g, b = np.asarray(img).transpose(2, 0, 1)
        assert np.array_equal(r, g) and np.array_equal(g, b) and r.max() > 200 and r.min() < 30


def test_sample_folder_is_generated_once_into_the_cache(isolated_cache, monkeypatch):
    calls = []

    def fake(out):
        calls.append(out)
        Image.new("RGB", (4, 4)).save(out / "x.png")

    monkeypatch.setitem(samples._BUILDERS, "shapes", fake)
    folder = sample_folder("shapes")
    assert folder == isolated_cache / "samples" / "shapes-v1" and (folder / "x.png").is_file()
    assert sample_folder("shapes") == folder and len(calls) == 1
    assert [p.name for p in folder.parent.iterdir()] == ["shapes-v1"]  # no temp folder left beside it


def test_a_failed_build_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(out):
        (out / "half.png").write_bytes(b"")
        raise OSError("disk full")

    monkeypatch.setitem(samples._BUILDERS, "digits", broken)
    with pytest.raises(OSError, match="disk full"):
        sample_folder("digits", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unknown_sample_is_rejected(tmp_path):
    assert SAMPLES == ("shapes", "digits")
    with pytest.raises(ValueError, match="Unknown sample"):
        sample_folder("cifar", cache_dir=tmp_path)
