"""The audit of a space: near-duplicates (and leaks across the split), outliers, likely wrong labels."""

import numpy as np
import pytest

from ssl_studio.core.audit import audit_space, as_json, nearest, no_label_audit


def ring(count=8):
    """``count`` unit vectors evenly spaced on a circle: each one's nearest neighbour at 1 - cos(360/count)."""
    angles = np.arange(count) * 2 * np.pi / count
    return np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)


def blobs(rng, centers, per_class, noise=0.05):
    x = np.concatenate([c + noise * rng.normal(size=(per_class, len(c))) for c in centers]).astype(np.float32)
    return x, np.repeat(np.arange(len(centers)), per_class)


def test_nearest_leaves_the_image_out_and_gives_cosine_distances():
    index, distance = nearest(ring(), k=2)
    assert sorted(index[0]) == [1, 7]
    assert np.allclose(distance, 1 - np.cos(np.pi / 4), atol=1e-6)


def test_nearest_gives_the_same_answer_a_few_rows_at_a_time(monkeypatch):
    from ssl_studio.core import audit

    x = np.random.default_rng(5).normal(size=(11, 4)).astype(np.float32)
    whole = nearest(x, k=3)
    monkeypatch.setattr(audit, "_CHUNK", 4)  # blocks of 4, 4 and 3 rows
    index, distance = nearest(x, k=3)
    assert np.array_equal(index, whole[0]) and np.allclose(distance, whole[1])
    assert not (index == np.arange(11)[:, None]).any()


def turned(vector, towards, angle):
    """``vector`` turned by ``angle`` radians towards the (orthogonal, unit) ``towards``: a near-copy of it."""
    return np.cos(angle) * vector + np.sin(angle) * towards


def test_a_pair_far_closer_than_nearest_neighbours_usually_are_is_a_duplicate_and_a_leak_across_the_split():
    # Evenly spaced in 8 dimensions (every pair at distance 1) and image 8, image 0 turned 0.01 rad: 1 - cos 0.01 =
    # 5e-5 from it, and 1 (or 1 - sin 0.01) from the rest: ratio 5e-5.
    eye = np.eye(8, dtype=np.float32)
    x = np.concatenate([eye, [turned(eye[0], eye[1], 0.01)]]).astype(np.float32)
    assert audit_space(x).duplicates == [(0, 8)]
    assert audit_space(x, held_out=np.array([8, 3])).leaks == [(0, 8)]
    assert audit_space(x, held_out=np.array([0, 8])).leaks == []  # both held out: no leak
    assert audit_space(eye).duplicates == []  # evenly spaced: nothing is closer than usual


def test_a_pair_counts_against_its_own_neighbourhood_not_one_threshold_for_the_whole_space():
    # A dense group of 40 images (dimension 0 plus 0.062 of one of dimensions 1-40: every pair s^2 / (1 + s^2) =
    # 0.0038 apart) and a sparse one in other dimensions (8 images at distance 1) with image 40 copied 4 degrees off
    # (40 + 8 = 48). The copy is 1 - cos 4 = 0.0024 from it, and at least 1 - sin 4 = 0.93 from anything else: ratio
    # about 0.0025. Each dense image is as close to its 3rd nearest as to its nearest (ratio 1), although 0.0038
    # is closer than most pairs of the whole space.
    eye = np.eye(49)
    dense = eye[0] + 0.062 * eye[1:41]
    sparse = np.concatenate([eye[41:49], [turned(eye[41], eye[42], np.radians(4))]])
    x = np.concatenate([dense, sparse]).astype(np.float32)
    assert audit_space(x).duplicates == [(40, 48)]


def test_an_image_with_two_near_copies_is_listed_with_both_and_the_copies_with_each_other():
    # Image 0 of 30 evenly spaced ones, turned 0.01 rad towards 1 (image 30) and towards 2 (image 31): both 5e-5
    # from it, 1 - cos^2 0.01 = 1e-4 from each other. Each one's next nearest is the other copy, as close as the
    # pair; the 3rd nearest (at distance about 1) is no copy: ratios 5e-5, 5e-5 and 1e-4.
    eye = np.eye(30, dtype=np.float32)
    x = np.concatenate([eye, [turned(eye[0], eye[1], 0.01), turned(eye[0], eye[2], 0.01)]]).astype(np.float32)
    assert audit_space(x).duplicates == [(0, 30), (0, 31), (30, 31)]


def test_the_pair_distance_is_scored_against_the_geometric_mean_of_both_images_3rd_nearest(monkeypatch):
    from ssl_studio.core import audit

    monkeypatch.setattr(audit, "MAX_SHARE", 1.0)  # six images: list every pair the ratio lets through
    index = np.array([[1, 2, 3], [0, 2, 3], [3, 0, 1], [2, 0, 1], [5, 2, 3], [4, 2, 3]])
    distance = np.array([[0.01, 0.04, 0.04], [0.01, 0.09, 0.09],  # 0.01 / sqrt(0.04 x 0.09) = 0.167
                         [0.05, 0.06, 0.06], [0.05, 0.06, 0.06],  # 0.05 / 0.06 = 0.83: over 0.8
                         [0.045, 0.05, 0.05], [0.045, 0.07, 0.07]])  # 0.045 / sqrt(0.05 x 0.07) = 0.76 (/ 0.05: 0.9)
    # The pairs across (0 and 2 at 0.04: 0.04 / sqrt(0.04 x 0.06) = 0.82) are no closer than their neighbourhoods.
    assert audit.near_duplicates((index, distance)) == [(0, 1), (4, 5)]


def test_whitening_scales_every_direction_to_unit_spread():
    from ssl_studio.core.audit import whitened

    rng = np.random.default_rng(8)
    mixing = np.array([[4.0, 0, 0], [3, 2, 0], [0, 1, 1]])  # correlated dimensions, spreads 5, 2.2 and 1
    x = 5 + rng.normal(size=(5000, 3)) @ mixing
    assert np.allclose(np.cov(whitened(x), rowvar=False), np.eye(3), atol=0.02)  # 5,000 images: hardly shrunk


def test_a_copy_behind_nearer_distinct_images_is_found_once_each_direction_counts_by_its_spread():
    # 400 images spread along dimensions 0-19 (spread 1) and hardly along 20 (spread 0.01), all at 10 on 21 (the
    # share that every non-negative embedding has). Image 400 sits at 3 on dimension 0; 401 is its copy, 0.05
    # further along it (a twentieth of the images' spread there); 402-404 are other images, 0.02 to 0.03 off along
    # dimension 20 (two to three times the spread there). As cosines 402-404 are 400's three nearest (2e-6 to 4e-6)
    # and its copy only the 4th (1e-5); whitened, the copy is 4e-7 from it and 402 7e-5: ratio 0.006.
    from ssl_studio.core.audit import near_duplicates

    rng = np.random.default_rng(0)
    filler = np.concatenate([rng.normal(size=(400, 20)), 0.01 * rng.normal(size=(400, 1)), np.full((400, 1), 10.0)],
                            axis=1)
    image = np.zeros(22)
    image[[0, 21]] = 3, 10
    others = [image + by * np.eye(22)[dim] for dim, by in [(0, 0.05), (20, 0.02), (20, -0.025), (20, 0.03)]]
    x = np.concatenate([filler, [image], others]).astype(np.float32)
    assert (400, 401) not in near_duplicates(nearest(x))
    assert audit_space(x).duplicates[0] == (400, 401)


def test_a_tight_far_group_ranks_first_although_each_has_four_close_neighbours():
    rng = np.random.default_rng(2)
    eye = np.eye(3)
    x, labels = blobs(rng, eye[:2], 50)  # 105 images: lists of 10
    group = (eye[2] + 0.002 * rng.normal(size=(5, 3))).astype(np.float32)  # each about 1e-5 from the other 4
    x, labels = np.concatenate([x, group]), np.concatenate([labels, [0, 1, 0, 1, 0]])
    # About 1 from both class centroids, where class members sit about 0.002 from theirs: 500 times the spread.
    assert sorted(audit_space(x, labels, 2).outliers[:5]) == [100, 101, 102, 103, 104]
    assert sorted(audit_space(x).outliers[:5]) == [100, 101, 102, 103, 104]  # unlabeled, against the whole folder
    _, distance = nearest(x, k=4)
    assert set(np.argsort(distance[:, 3])[:5]) == {100, 101, 102, 103, 104}  # the 4th neighbour's distance: the least


def test_an_image_whose_neighbours_agree_on_no_label_ranks_above_one_as_remote_whose_neighbours_do():
    from ssl_studio.core.audit import outliers

    rng = np.random.default_rng(6)
    class0 = np.zeros((10, 5))
    class0[:, 0], class0[:, 4] = 1, 0.1 * rng.normal(size=10)
    class1 = class0[:, [1, 0, 2, 3, 4]]  # the mirror image: both centroids orthogonal to dimensions 2 and 3
    x = np.concatenate([class0, class1, np.eye(5)[[2, 3]]])  # images 20 and 21: both at distance 1 from both
    groups = np.repeat([0, 1, 0], [10, 10, 2])
    same, mixed = [0] * 10, [0, 1] * 5  # 20's neighbours all say 0; 21's half 0, half 1
    assert outliers(x, groups, np.array([[0] * 10] * 20 + [same, mixed]))[:2] == [21, 20]
    assert outliers(x, groups)[:2] == [20, 21]  # without labels the tie keeps image order


def test_a_group_of_odd_images_that_are_each_others_neighbours_is_found_as_outliers():
    rng = np.random.default_rng(0)
    eye = np.eye(3)
    x, labels = blobs(rng, eye[:2], 20)
    group = (eye[2] + 0.05 * rng.normal(size=(3, 3))).astype(np.float32)  # three of a third kind, close together
    x, labels = np.concatenate([x, group]), np.concatenate([labels, [0, 1, 0]])
    # Each sits about 1 from both class centroids, where the classes' members sit about 0.002 (noise 0.05):
    # they rank first, whatever the noise puts after them.
    assert sorted(audit_space(x, labels, 2).outliers[:3]) == [40, 41, 42]
    clusters = np.repeat([0, 1, 2], [20, 20, 3])  # unlabeled: k-means gave the group its own small cluster
    assert sorted(audit_space(x, groups=clusters).outliers[:3]) == [40, 41, 42]


def test_labels_the_neighbours_contradict_are_suspects_with_the_label_they_suggest():
    rng = np.random.default_rng(1)
    x, labels = blobs(rng, np.eye(2), 10)
    labels[3], labels[15] = 1, 0
    found = audit_space(x, labels, 2)
    assert sorted(found.mislabeled) == [3, 15]
    assert found.suggested == {3: 0, 15: 1}


def test_the_least_supported_label_ranks_first():
    # Class 0 at 0-6 degrees, class 1 at 84-90. Image 1 (3.5 degrees) is labeled 1 among class 0: of its 10
    # neighbours only image 0 and two far ones vote 1 (self-confidence about 0.14). Image 0 (40 degrees, labeled 1)
    # has class 0 nearer but more of class 1 close by (about 0.28): it ranks second. Both are rather class 0.
    angles = np.radians([40, 3.5, *range(0, 7), *range(84, 91)])
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = np.array([1, 1] + [0] * 7 + [1] * 7)
    found = audit_space(x, labels, 2)
    assert found.mislabeled == [1, 0] and found.suggested == {1: 0, 0: 0}


def test_an_unlabeled_or_one_class_run_has_no_label_audit_and_says_why():
    x, _ = blobs(np.random.default_rng(3), np.eye(2), 5)
    assert audit_space(x).mislabeled == [] and audit_space(x, np.zeros(10, int), 1).mislabeled == []
    assert "no labels" in no_label_audit(None, [])
    assert "single class" in no_label_audit(np.zeros(10, int), ["cats"])
    assert no_label_audit(np.zeros(10, int), ["cats", "dogs"]) is None


def test_too_few_images_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2"):
        audit_space(np.zeros((1, 4)))


def test_planted_duplicates_flipped_labels_and_a_group_of_outliers_are_found():
    rng = np.random.default_rng(4)
    centers = 3 * np.eye(32)[:5]
    x, labels = blobs(rng, centers, 60, noise=0.4)
    n = len(x)
    copies = rng.choice(n, 6, replace=False)
    x = np.concatenate([x, x[copies] + 0.005 * rng.normal(size=(6, 32))]).astype(np.float32)
    labels = np.concatenate([labels, labels[copies]])
    duplicates = {(int(a), n + k) for k, a in enumerate(copies)}
    flipped = rng.choice(n, 15, replace=False)  # 5 % of the labels
    truth = labels.copy()
    labels[flipped] = (labels[flipped] + 1 + rng.integers(0, 4, 15)) % 5
    odd = (3 * np.eye(32)[10] + 0.4 * rng.normal(size=(8, 32))).astype(np.float32)  # a group of another kind
    start = len(x)
    x, labels = np.concatenate([x, odd]), np.concatenate([labels, rng.integers(0, 5, 8)])
    found = audit_space(x, labels, 5)
    assert duplicates <= set(found.duplicates) and len(found.duplicates) <= len(x) // 10
    assert set(flipped.tolist()) <= set(found.mislabeled[:30])
    assert {int(i): int(truth[i]) for i in flipped} == {int(i): found.suggested[int(i)] for i in flipped}
    assert set(range(start, start + 8)) <= set(found.outliers[:16])


def test_the_json_names_images_by_path_and_classes_by_name():
    x = np.concatenate([ring(), [[np.cos(0.01), np.sin(0.01)]]]).astype(np.float32)
    labels = np.array([0, 0, 1, 1, 1, 1, 1, 0, 1])
    found = audit_space(x, labels, 2, held_out=np.array([8]))
    paths = [f"c/{i}.png" for i in range(9)]
    data = as_json({"ssl": found}, paths, ["a", "b"], None)["spaces"]["ssl"]
    assert data["duplicates"] == [["c/0.png", "c/8.png"]] and data["leaks"] == [["c/0.png", "c/8.png"]]
    assert data["mislabeled"] == [paths[i] for i in found.mislabeled]
    assert all(v in ("a", "b") for v in data["suggested"].values())


@pytest.fixture
def run_copy(finished_runs, tmp_path):
    import shutil

    def copy(name):
        return shutil.copytree(finished_runs[0][name][1], tmp_path / name)
    return copy


def test_a_run_is_audited_in_every_space_and_audit_json_reads_back(run_copy):
    from ssl_studio.core.audit import audit_run
    from ssl_studio.core.runs import RunFolder

    path = run_copy("labeled")
    written = audit_run(path)
    run = RunFolder.open(path)
    paths = run.read_dataset().paths
    assert run.read_audit(paths) == written
    assert set(written["spaces"]) == {"ssl", "supervised", "untrained", "pixels"}
    assert written["no_label_audit"] is None
    assert audit_run(path, ["pixels"])["spaces"].keys() == {"pixels"}
    with pytest.raises(ValueError, match="no 'nope' space"):
        audit_run(path, ["nope"])


def test_an_unlabeled_run_is_audited_without_labels_and_says_so(run_copy):
    from ssl_studio.core.audit import audit_run

    written = audit_run(run_copy("unlabeled"))
    assert "no labels" in written["no_label_audit"]
    assert all(found["mislabeled"] == [] and found["suggested"] == {} for found in written["spaces"].values())


def test_an_audit_json_naming_an_image_the_run_lacks_is_refused(run_copy):
    from ssl_studio.core.runs import RunError, RunFolder

    run = RunFolder.open(run_copy("labeled"))
    paths = run.read_dataset().paths
    run.write_audit({"spaces": {"ssl": {"duplicates": [[paths[0], "gone.png"]], "outliers": [], "mislabeled": [],
                                        "suggested": {}}}, "no_label_audit": None})
    with pytest.raises(RunError, match="gone.png"):
        run.read_audit(paths)


@pytest.mark.parametrize("name", ["labeled", "unlabeled"])
def test_the_pipeline_writes_the_audit_of_every_space_as_audit_run_finds_it(finished_runs, run_copy, name):
    import json

    from ssl_studio.core.audit import audit_run
    from ssl_studio.core.runs import AUDIT

    runs, events = finished_runs
    written = json.loads((runs[name][1] / AUDIT).read_text())
    assert set(written["spaces"]) == ({"ssl", "supervised", "untrained", "pixels"} if name == "labeled"
                                      else {"ssl", "untrained", "pixels"})
    assert written == audit_run(run_copy(name))  # the same rules on the saved embeddings (and clusters)
    assert ("audit" in [e.name for e in events[name] if type(e).__name__ == "StageStarted"])
    metrics = json.loads((runs[name][1] / "metrics.json").read_text())
    assert metrics["audit_seconds"] >= 0
