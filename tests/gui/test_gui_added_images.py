"""File ▸ Add images to the maps…: a folder placed on every map of the open run as stars, then removed."""

import shutil

import numpy as np

from ssl_studio.core.pipeline import open_run
from ssl_studio.core.placement import place


def test_added_images_land_on_every_map_and_leave_the_run_as_it_was(window, drive, qtbot, tiny_run, tiny_folder,
                                                                    tmp_path):
    compare = drive.open_run(window, tiny_run)
    before = {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*")}
    new = tmp_path / "new"
    shutil.copytree(tiny_folder, new)
    broken = f"{sorted(p.name for p in tiny_folder.iterdir() if p.is_dir())[0]}/broken.png"
    (new / broken).write_bytes(b"not a png")
    layer = compare.added_images
    assert layer.can_add()
    changed = qtbot.waitSignal(layer.changed, timeout=60_000)
    with changed:
        job = layer.add_folder(new)
    assert job is not None and layer.added is not None
    loaded = open_run(tiny_run)
    n = len(loaded.paths)  # the run's own images again: each lands where the run put it (PCA: the same fit)
    skipped = [s.path for s in layer.added.skipped]
    assert layer.added.paths == loaded.paths and broken in skipped
    for space in ("ssl", "supervised", "untrained", "pixels"):
        np.testing.assert_allclose(layer.positions(space), loaded.projections[(space, "pca")], atol=1e-3)
        assert layer.positions(space).shape == (n, 2)
    expected = place(loaded, "ssl", loaded.embeddings["ssl"])
    text = compare.banner.text()
    first = loaded.paths[0]
    assert f"{n} images of" in text and "the run and its scores are unchanged" in text
    assert f"{first}: the kNN says {loaded.class_names[expected.predicted[0]]}; nearest {first}" in text
    assert f"{len(skipped)} file(s) skipped, e.g. {skipped[0]}" in text
    assert {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*")} == before

    with qtbot.waitSignal(layer.changed):
        window.remove_images_action.trigger()
    assert layer.added is None and all(layer.positions(s) is None for s in compare.grid.maps)
    assert not any(item.opts.get("symbol") == "star" for m in compare.grid.maps.values()
                   for item in m.plot.listDataItems())
