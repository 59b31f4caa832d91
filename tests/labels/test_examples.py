"""Labels by example: real photos, the real embedder, the calibration on the label set."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from catalog.local_store import LocalStore
from catalog.repository import CatalogRepository
from core.errors import BadInput, NotFound
from core.images import list_images, read_image
from labels import (
    ExampleLabeler,
    LabelSet,
    fit_calibration,
    load_example_labeler,
    read_label_catalog,
    read_label_folder,
    result_to_dict,
)
from labels.examples import probabilities
from tests.conftest import offline_settings


@pytest.fixture(scope="module")
def labeler(label_embedder, grocery_label_folder: Path) -> ExampleLabeler:
    return ExampleLabeler.fit(label_embedder, read_label_folder(grocery_label_folder))


def test_held_out_photos_get_their_label(labeler: ExampleLabeler, grocery_held_out) -> None:
    results = labeler.label([read_image(p) for p, _ in grocery_held_out])
    assert labeler.labels == ("Banana", "Milk", "Tomato")
    for r in results:
        assert r.probabilities.shape == (3,)
        assert abs(float(r.probabilities.sum()) + r.unknown - 1.0) < 1e-5
    correct = [r.top == label for r, (_, label) in zip(results, grocery_held_out, strict=True)]
    assert np.mean(correct) >= 0.75  # chance is 1/3 (and unknown takes some)


def test_a_dog_is_unknown_to_a_grocery_label_set(labeler: ExampleLabeler, data_dir: Path) -> None:
    dogs = list_images(data_dir / "dogs" / "queries" / "_none")[:6]
    results = labeler.label([read_image(p) for p in dogs])
    assert sum(r.top is None for r in results) >= 5
    assert all(r.unknown > 0.5 for r in results if r.top is None)


def test_grey_and_rgb_of_one_photo_answer_alike(labeler: ExampleLabeler, grocery_held_out) -> None:
    rgb = read_image(grocery_held_out[0][0])
    grey = np.round(rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)  # (H, W)
    a, b = labeler.label([np.repeat(grey[..., None], 3, axis=2), grey])
    assert np.allclose(a.probabilities, b.probabilities, atol=1e-5)


def test_answer_shape(labeler: ExampleLabeler, grocery_held_out) -> None:
    out = result_to_dict(labeler.label([read_image(grocery_held_out[0][0])])[0])
    assert set(out) == {"labels", "top", "unknown"}
    assert [x["label"] for x in out["labels"]] == ["Banana", "Milk", "Tomato"]
    assert out["top"] in (None, "Banana", "Milk", "Tomato")


def test_empty_batch_and_bad_images(labeler: ExampleLabeler) -> None:
    assert labeler.label([]) == []
    with pytest.raises(BadInput, match="uint8"):
        labeler.label([np.zeros((4, 4, 3), np.float32)])
    with pytest.raises(BadInput, match="shape"):
        labeler.label([np.zeros((4, 4, 4), np.uint8)])


# --- the calibration, on vectors whose answer is known ----------------------------------
def _clusters(n_labels: int, per_label: int, spread: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_labels, 32))
    vecs = np.repeat(centres, per_label, 0) + spread * rng.normal(size=(n_labels * per_label, 32))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs.astype(np.float32), np.repeat(np.arange(n_labels), per_label)


def test_fit_separates_known_from_unknown() -> None:
    vecs, owner = _clusters(4, 6, 0.3)
    cal = fit_calibration(vecs, owner, 4)
    assert cal.method == "fit" and cal.known_samples == 24 and cal.unknown_samples == 24
    own = vecs[owner == 0][:1] @ vecs[owner == 0][1:].T  # near its own label
    scores = np.full((1, 4), -1.0)
    scores[0, 0] = own.max()
    p, unknown = probabilities(scores, cal)
    assert p[0, 0] > 0.5 and unknown[0] < 0.5
    p, unknown = probabilities(np.full((1, 4), -0.2), cal)  # near nothing
    assert unknown[0] > 0.9


@pytest.mark.parametrize(
    ("n_labels", "per_label", "method"),
    [
        (1, 5, "one-label"),  # no "other label" to stand for unknown
        (3, 1, "one-example"),  # nothing to leave one out of
    ],
)
def test_fallbacks(n_labels: int, per_label: int, method: str) -> None:
    vecs, owner = _clusters(n_labels, per_label, 0.3)
    cal = fit_calibration(vecs, owner, n_labels)
    assert cal.method == method and cal.temperature > 0 and -1.0 <= cal.threshold <= 1.0


def test_a_single_example_cannot_be_calibrated() -> None:
    vecs, owner = _clusters(1, 1, 0.1)
    with pytest.raises(BadInput, match="at least 2"):
        fit_calibration(vecs, owner, 1)


# --- label sets: folders and the store ----------------------------------------------------
def test_a_label_with_no_examples_is_named(tmp_path: Path, grocery_label_folder: Path) -> None:
    root = tmp_path / "set"
    shutil.copytree(grocery_label_folder, root)
    (root / "Leopard").mkdir()
    (root / "Leopard" / "notes.jpg").write_text("not a photo")
    with pytest.raises(BadInput, match=r"'Leopard'.*no readable example") as info:
        read_label_folder(root)
    assert "notes.jpg" in str(info.value)


def test_unreadable_examples_are_skipped_and_noted(tmp_path: Path, grocery_label_folder) -> None:
    root = tmp_path / "set"
    shutil.copytree(grocery_label_folder, root)
    (root / "Milk" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (root / "Milk" / "zero.png").write_bytes(b"")
    label_set = read_label_folder(root)
    assert label_set.counts() == {"Banana": 5, "Milk": 5, "Tomato": 5}
    assert sorted(s.split(":")[0] for s in label_set.skipped) == [
        "Milk/broken.jpg",
        "Milk/zero.png",
    ]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: p, "no <label>/<image>"),
    ],
)
def test_bad_label_folders(tmp_path: Path, make, match: str) -> None:
    with pytest.raises(BadInput, match=match):
        read_label_folder(make(tmp_path))


def test_label_set_checks() -> None:
    with pytest.raises(BadInput, match="no labels"):
        LabelSet("x", {})
    with pytest.raises(BadInput, match="empty"):
        LabelSet("x", {" ": [np.zeros((8, 8, 3), np.uint8)]})


def test_label_set_stored_as_a_catalog(tmp_path: Path, grocery_label_folder: Path, label_embedder):
    repo = CatalogRepository(LocalStore(tmp_path / "store"))
    manifest = repo.create_catalog("labels", "products", owner="me")
    for label_dir in sorted(grocery_label_folder.iterdir()):
        images = []
        for path in list_images(label_dir):
            h, w = read_image(path).shape[:2]
            images.append((path.read_bytes(), "image/jpeg", w, h, {}))
        repo.add_images(manifest.catalog_id, label_dir.name, None, images)
    stored = read_label_catalog(repo, manifest.catalog_id)
    assert stored.counts() == {"Banana": 5, "Milk": 5, "Tomato": 5}
    settings = offline_settings(tmp_path / "store")
    from_store = load_example_labeler(manifest.catalog_id, settings, label_embedder)
    from_folder = load_example_labeler(grocery_label_folder, settings, label_embedder)
    assert from_store.calibration == from_folder.calibration
    with pytest.raises(NotFound, match="no label set 'nosuchid'"):
        load_example_labeler("nosuchid", settings, label_embedder)


def test_labeler_cache_refits_on_a_new_version(
    tmp_path: Path, grocery_label_folder, label_embedder
):
    from labels.cache import LabelerCache

    repo = CatalogRepository(LocalStore(tmp_path / "store"))
    cid = repo.create_catalog("labels", "products", owner="me").catalog_id
    paths = {d.name: list_images(d) for d in sorted(grocery_label_folder.iterdir())}

    def add(label: str, path: Path) -> None:
        h, w = read_image(path).shape[:2]
        repo.add_images(cid, label, None, [(path.read_bytes(), "image/jpeg", w, h, {})])

    for label in ("Banana", "Milk"):
        for path in paths[label][:2]:
            add(label, path)
    cache = LabelerCache(repo, label_embedder, max_sets=1)
    first = cache.get(cid)
    assert cache.get(cid) is first and first.labels == ("Banana", "Milk")
    add("Tomato", paths["Tomato"][0])
    second = cache.get(cid)
    assert second is not first and second.labels == ("Banana", "Milk", "Tomato")
