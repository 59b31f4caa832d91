"""Every descriptor format reads to the same `Descriptors`; bad files fail clearly."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.data import Descriptors
from analytics.inputs import combine, load_descriptor_file, read_labels
from core.errors import BadInput, NotFound


def _write(kind: str, d: Descriptors, folder: Path) -> Path:
    if kind == "dict":
        path = folder / "d.pickle"
        path.write_bytes(pickle.dumps(dict(zip(d.paths, d.vectors, strict=True))))
    elif kind == "frame_vector_column":
        path = folder / "f.pkl"
        pd.DataFrame({"path": d.paths, "vector": list(d.vectors)}).to_pickle(path)
    elif kind == "frame_columns":
        path = folder / "c.pickle"
        pd.DataFrame(d.vectors, index=d.paths).to_pickle(path)
    elif kind == "npy":
        path = folder / "v.npy"
        np.save(path, d.vectors)
        (folder / "v.paths.txt").write_text("\n".join(d.paths))
    else:
        path = folder / "p.parquet"
        pd.DataFrame({"path": d.paths, "vector": list(d.vectors)}).to_parquet(path)
    return path


@pytest.mark.parametrize("kind", ["dict", "frame_vector_column", "frame_columns", "npy", "parquet"])
def test_each_format_reads_the_same_vectors(grocery: Descriptors, tmp_path: Path, kind) -> None:
    got = load_descriptor_file(_write(kind, grocery, tmp_path))
    assert got.paths == grocery.paths
    np.testing.assert_allclose(got.vectors, grocery.vectors, rtol=1e-6)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/sighting-pwned",))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"a": [1.0, 2.0], "b": [1.0, 2.0, 3.0]}, "mixed length"),  # vectors of mixed length
        ({"a": [1.0, np.nan], "b": [0.0, 1.0]}, "NaN or infinite"),
        ({"a": [1.0, np.inf], "b": [0.0, 1.0]}, "NaN or infinite"),
        ([[1.0, 2.0]], "not list"),  # a pickle of something else
        ({}, "empty"),
        (_Evil(), "posix.system"),  # code in a pickle is refused, never run
        ({"a": ["x", "y"]}, "not numbers"),
    ],
)
def test_bad_pickles(tmp_path: Path, content, message: str) -> None:
    path = tmp_path / "bad.pickle"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(BadInput, match=message):
        load_descriptor_file(path)
    assert not Path("/tmp/sighting-pwned").exists()


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_descriptor_file(tmp_path / "missing.pickle")
    (tmp_path / "x.txt").write_text("1,2")
    with pytest.raises(BadInput, match="descriptor files are"):
        load_descriptor_file(tmp_path / "x.txt")
    np.save(tmp_path / "v.npy", np.ones((3, 4), np.float32))
    with pytest.raises(NotFound, match="paths file"):
        load_descriptor_file(tmp_path / "v.npy")
    (tmp_path / "v.paths.txt").write_text("a\nb")
    with pytest.raises(BadInput, match="2 paths but 3 vectors"):
        load_descriptor_file(tmp_path / "v.npy")
    (tmp_path / "junk.pickle").write_bytes(b"not a pickle")
    with pytest.raises(BadInput, match="not a readable pickle"):
        load_descriptor_file(tmp_path / "junk.pickle")


def test_combined_sets_are_scaled_weighted_and_aligned(grocery: Descriptors) -> None:
    other = Descriptors(grocery.paths[::-1][:-2], grocery.vectors[::-1][:-2, :16].copy())
    both = combine([grocery, other], weights=[1.0, 2.0])
    assert len(both) == len(grocery) - 2 and both.dim == grocery.dim + 16
    assert both.paths == [p for p in grocery.paths if p in set(other.paths)]
    with pytest.raises(BadInput, match="no image path in common"):
        combine([grocery, Descriptors(["zzz"], np.ones((1, 3), np.float32))])
    with pytest.raises(BadInput, match="weights"):
        combine([grocery, other], weights=[1.0])


def test_labels_csv_with_crlf(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(b"path,label\r\na.jpg,cat\r\nb.jpg,dog\r\n")
    assert read_labels(path) == {"a.jpg": "cat", "b.jpg": "dog"}


def test_labels_match_absolute_relative_and_bare_paths(tmp_path: Path) -> None:
    """A labels CSV names an image by its absolute path, a path relative to the working folder,
    a path ending with the run's name, or a bare file name only one image has; rows that match
    nothing are counted, not silently dropped."""
    from analytics.inputs import match_labels

    root = tmp_path / "photos"
    paths = ["Banana/a.jpg", "Milk/b.jpg", "Milk/c.jpg", "Oat/c.jpg"]
    labels = {
        str(root / "Banana" / "a.jpg"): "fruit",  # absolute
        os.path.relpath(root / "Milk" / "b.jpg"): "dairy",  # relative to the working folder
        "data/set/Oat/c.jpg": "oat",  # ends with the run's own name
        "c.jpg": "ambiguous",  # two images have this name: no match
        "nowhere/z.jpg": "none",
    }
    m = match_labels(labels, paths, [root])
    assert m.labels == {"Banana/a.jpg": "fruit", "Milk/b.jpg": "dairy", "Oat/c.jpg": "oat"}
    assert (m.rows, m.matched) == (5, 3)
    assert m.summary() == "labels: 3 of 5 rows matched an image"
    bare = match_labels({"a.jpg": "fruit", "b.jpg": "dairy"}, paths, [])
    assert bare.labels == {"Banana/a.jpg": "fruit", "Milk/b.jpg": "dairy"}
    assert match_labels({"Milk/b.jpg": "dairy"}, paths, []).matched == 1  # the run's own form
