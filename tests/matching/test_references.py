"""A reference's one serialiser: blobs for the store and the folder cache, read back whole."""

from __future__ import annotations

import io

import numpy as np
import pytest

from matching.catalog_view import CatalogView
from matching.features import LocalFeatures
from matching.pipeline import CROP_TAG, Reference
from matching.references import EMBEDDING, KEYPOINTS, from_blobs, read_vectors, to_blobs


def _reference(with_keypoints: bool) -> Reference:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2, 8)).astype(np.float32)
    features = LocalFeatures(
        keypoints=rng.uniform(0, 60, (5, 2)).astype(np.float32),
        descriptors=rng.normal(size=(5, 4)).astype(np.float32),
        scores=rng.uniform(size=5).astype(np.float32),
        image_size=(64, 48),
    )
    return Reference(
        vectors=vectors / np.linalg.norm(vectors, axis=1, keepdims=True),
        tags=["", CROP_TAG],
        box=np.array([3, 4, 40, 50], np.int64),
        features=features if with_keypoints else None,
    )


@pytest.mark.parametrize("with_keypoints", [True, False])
def test_blobs_round_trip(with_keypoints: bool) -> None:
    ref = _reference(with_keypoints)
    blobs = to_blobs(ref)
    assert set(blobs) == ({EMBEDDING, KEYPOINTS} if with_keypoints else {EMBEDDING})
    back = from_blobs(blobs)
    np.testing.assert_array_equal(back.vectors, ref.vectors)
    np.testing.assert_array_equal(back.box, ref.box)
    assert back.tags == ref.tags
    if with_keypoints:
        np.testing.assert_array_equal(back.features.keypoints, ref.features.keypoints)
        assert back.features.image_size == ref.features.image_size
    else:
        assert back.features is None
    vectors, tags = read_vectors(blobs[EMBEDDING])
    assert vectors.dtype == np.float32 and tags == ["", CROP_TAG]


def test_vectors_of_a_blob_stored_before_the_box_still_read() -> None:
    """Catalogs stored earlier hold vectors and tags only: the view reads them as before."""
    buf = io.BytesIO()
    np.savez(buf, vectors=np.ones((1, 8), np.float32), tags=np.array([""], dtype=str))
    vectors, tags = read_vectors(buf.getvalue())
    assert vectors.shape == (1, 8) and tags == [""]
    with pytest.raises(KeyError):
        from_blobs({EMBEDDING: buf.getvalue()})


def test_view_factory_indexes_each_image_under_its_tags() -> None:
    ref = _reference(True)
    view = CatalogView.empty("shop", "products", 8, {"a/1.jpg": ref.features}.__getitem__)
    view.add_image("a", "a/1.jpg", ref.vectors, ref.tags)
    assert (view.version, len(view.index)) == (0, 2)
    assert "a/1.jpg" in view.index and "a/1.jpg" + CROP_TAG in view.index
    assert view.features.get("a/1.jpg") is ref.features
