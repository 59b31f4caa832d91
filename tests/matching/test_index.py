"""The catalog index on both backends (FAISS in the worker, Milvus Lite): add/search/remove,
item-level ranking, empty cases, errors; FAISS's serialisation."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core.errors import BadInput, Conflict
from matching.index import CatalogIndex, ItemHits, VectorIndex

DIM = 8


@pytest.fixture(params=["faiss", "milvus"])
def new_index(request):
    """A factory of empty indexes of one backend: FAISS, or one catalog in a Milvus Lite file."""
    if request.param == "faiss":
        return lambda: VectorIndex(DIM)
    engine = request.getfixturevalue("milvus_engine")
    from matching.milvus_index import MilvusIndex

    count = iter(range(1000))
    name = request.node.name.replace("[", "-").replace("]", "")
    return lambda: MilvusIndex(engine, f"{name}-{next(count)}", DIM, tenant="t")


def unit(*rows: list[float]) -> np.ndarray:
    """float32 (N, DIM) L2-normalised rows (short rows are zero-padded)."""
    out = np.zeros((len(rows), DIM), np.float32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def axis(i: int) -> list[float]:
    return [1.0 if j == i else 0.0 for j in range(DIM)]


def build(new_index, spec: list[tuple[str, str, list[float]]]) -> CatalogIndex:
    index = new_index()
    if spec:
        items, images, rows = zip(*spec, strict=True)
        index.add(unit(*rows), items, images)
    return index


# item "a" has three images near axis 0, "b" one near axis 1, "c" one between 0 and 1
CATALOG = [
    ("a", "a1", axis(0)),
    ("a", "a2", [0.9, 0.1]),
    ("a", "a3", [0.8, 0.2]),
    ("b", "b1", [0.05, 1.0]),
    ("c", "c1", [0.5, 0.5]),
    ("d", "d1", axis(2)),
]


@pytest.mark.parametrize(
    ("query", "k", "items", "images"),
    [
        # a's three images must not crowd out b and c: one entry per item
        (axis(0), 3, ["a", "c", "b"], ["a1", "c1", "b1"]),
        # the best image of an item is reported
        ([0.8, 0.2], 1, ["a"], ["a3"]),
        (axis(1), 2, ["b", "c"], ["b1", "c1"]),
        # k larger than the number of items: every item once, no padding ids
        (axis(2), 10, ["d", "a", "b", "c"], ["d1", None, None, None]),
    ],
)
def test_search_ranks_distinct_items_by_best_image(query, k, items, images, new_index):
    hits = build(new_index, CATALOG).search(unit(query), k)
    assert isinstance(hits, ItemHits) and len(hits) == 1
    assert hits.scores.shape == (1, k) and hits.scores.dtype == np.float32
    if len(items) == 4:  # a, b, c all score 0 against axis 2: their order is a tie
        assert hits.item_ids[0][0] == "d" and sorted(hits.item_ids[0][1:]) == ["a", "b", "c"]
    else:
        assert hits.item_ids[0] == items
        assert hits.image_ids[0] == images
    n = len(items)
    assert hits.valid[0].tolist() == [True] * n + [False] * (k - n)
    assert np.all(np.isneginf(hits.scores[0, n:]))
    assert np.all(np.diff(hits.scores[0, :n]) <= 1e-6)  # best first


def test_scores_are_best_image_inner_products(new_index):
    index = build(new_index, CATALOG)
    vectors = unit(*[row for _, _, row in CATALOG])
    query = unit([0.3, 0.7, 0.1])
    hits = index.search(query, 4)
    for item, image, score in hits.query(0):
        sims = {img: float(vectors[i] @ query[0]) for i, (it, img, _) in enumerate(CATALOG)}
        best = max((s, img) for img, s in sims.items() if img.startswith(item))
        assert image == best[1]
        assert score == pytest.approx(best[0], abs=1e-6)


def test_many_images_per_item_grow_the_probe(new_index):
    """40 images of one item closest to the query, then 3 others: k=3 must reach past them."""
    rng = np.random.default_rng(0)
    near = unit(*[[1.0, *rng.normal(0, 0.01, 3)] for _ in range(40)])
    # others: x > y > z against axis 0, each on its own axis otherwise
    far = unit([0.3, 0, 0, 0, 1], [0.2, 0, 0, 0, 0, 1], [0.1, 0, 0, 0, 0, 0, 1])
    index = new_index()
    index.add(near, ["crowd"] * 40, [f"crowd{i}" for i in range(40)])
    index.add(far, ["x", "y", "z"], ["x1", "y1", "z1"])
    hits = index.search(unit(axis(0), axis(6)), 3)
    assert hits.item_ids[0] == ["crowd", "x", "y"]
    assert hits.image_ids[0][1:] == ["x1", "y1"]
    assert hits.item_ids[1][0] == "z" and len(set(hits.item_ids[1])) == 3
    assert hits.valid.all()


@pytest.mark.parametrize(
    ("remove", "removed", "items", "length"),
    [
        (("images", ["a1"]), 1, ["a", "b", "c", "d"], 5),  # one of a's images
        (("images", ["a1", "a2", "a3"]), 3, ["b", "c", "d"], 3),  # all of a's images
        (("images", ["zz", "b1", "b1"]), 1, ["a", "c", "d"], 5),  # unknown and repeated ids
        (("item", "a"), 3, ["b", "c", "d"], 3),
        (("item", "nope"), 0, ["a", "b", "c", "d"], 6),
    ],
)
def test_remove(remove, removed, items, length, new_index):
    index = build(new_index, CATALOG)
    kind, arg = remove
    count = index.remove_images(arg) if kind == "images" else index.remove_item(arg)
    assert count == removed
    assert index.items == items and len(index) == length
    hits = index.search(unit(axis(0)), 10)
    assert sorted(hits.item_ids[0]) == items
    gone = set(arg) if kind == "images" else {img for it, img, _ in CATALOG if it == arg}
    assert not gone & set(hits.image_ids[0])


def test_removed_image_id_can_be_added_again(new_index):
    index = build(new_index, CATALOG)
    index.remove_images(["b1"])
    index.add(unit(axis(5)), ["b"], ["b1"])
    assert index.search(unit(axis(5)), 1).query(0)[0][:2] == ("b", "b1")


def test_images_of_and_contains(new_index):
    index = build(new_index, CATALOG)
    assert index.images_of("a") == ["a1", "a2", "a3"] and index.images_of("zz") == []
    assert "c1" in index and "zz" not in index


@pytest.mark.parametrize(("nq", "k"), [(1, 1), (3, 5), (0, 2)])
def test_empty_index_returns_empty_hits(nq, k, new_index):
    hits = new_index().search(np.zeros((nq, DIM), np.float32), k)
    assert hits.item_ids == [[]] * nq and hits.image_ids == [[]] * nq
    assert hits.scores.shape == (nq, k) and not hits.valid.any()


def test_zero_queries_on_full_index(new_index):
    hits = build(new_index, CATALOG).search(np.zeros((0, DIM), np.float32), 3)
    assert len(hits) == 0 and hits.scores.shape == (0, 3)


def test_add_nothing_is_a_no_op(new_index):
    index = build(new_index, CATALOG)
    index.add(np.zeros((0, DIM), np.float32), [], [])
    assert len(index) == len(CATALOG)


def test_serialisation_round_trip_is_exact():
    rng = np.random.default_rng(1)
    vectors = unit(*rng.normal(size=(50, DIM)).tolist())
    index = VectorIndex(DIM)
    index.add(vectors, [f"item{i % 7}" for i in range(50)], [f"img{i}" for i in range(50)])
    index.remove_images(["img3", "img10"])
    blob = index.to_bytes()
    copy = VectorIndex.from_bytes(blob)
    assert copy.dim == DIM and len(copy) == 48 and copy.items == index.items
    queries = rng.normal(size=(5, DIM)).astype(np.float32)
    a, b = index.search(queries, 4), copy.search(queries, 4)
    assert a.item_ids == b.item_ids and a.image_ids == b.image_ids
    np.testing.assert_array_equal(a.scores, b.scores)
    assert copy.to_bytes() == blob
    # the copy keeps working: new ids never collide with the removed ones
    copy.add(vectors[:1], ["new"], ["img3"])
    assert copy.search(vectors[:1], 1).query(0)[0][1] in {"img0", "img3"}
    assert len(copy) == 49 and len(index) == 48


def test_empty_index_round_trip():
    copy = VectorIndex.from_bytes(VectorIndex(DIM).to_bytes())
    assert len(copy) == 0 and copy.dim == DIM and copy.items == []


@pytest.mark.parametrize("blob", [b"", b"garbage", b"PK\x03\x04junk"])
def test_from_bytes_refuses_garbage(blob):
    with pytest.raises(BadInput):
        VectorIndex.from_bytes(blob)


@pytest.mark.parametrize(
    ("vectors", "items", "images"),
    [
        (np.zeros((2, DIM + 1), np.float32), ["a", "b"], ["1", "2"]),  # wrong D
        (np.zeros(DIM, np.float32), ["a"], ["1"]),  # 1-D
        (np.zeros((2, DIM), np.float32), ["a"], ["1", "2"]),  # too few item ids
        (np.zeros((2, DIM), np.float32), ["a", "b"], ["1"]),  # too few image ids
        (np.full((1, DIM), np.nan, np.float32), ["a"], ["1"]),  # NaN
        (np.zeros((1, DIM), np.float32), [""], ["1"]),  # empty item id
        (np.array([["x"] * DIM]), ["a"], ["1"]),  # not numbers
    ],
)
def test_add_bad_input(vectors, items, images, new_index):
    index = build(new_index, CATALOG)
    with pytest.raises(BadInput):
        index.add(vectors, items, images)
    assert len(index) == len(CATALOG)


def test_search_dimension_mismatch_names_shapes(new_index):
    with pytest.raises(BadInput, match=r"\(N, 8\).*\(3, 4\)"):
        build(new_index, CATALOG).search(np.zeros((3, 4), np.float32), 2)


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_search_bad_k(k, new_index):
    with pytest.raises(BadInput):
        build(new_index, CATALOG).search(unit(axis(0)), k)


@pytest.mark.parametrize(
    "images",
    [
        ["a1", "new"],  # already in the index
        ["new", "new"],  # repeated within one add
    ],
)
def test_duplicate_image_id_conflicts(images, new_index):
    index = build(new_index, CATALOG)
    with pytest.raises(Conflict):
        index.add(unit(axis(0), axis(1)), ["a", "e"], images)
    assert len(index) == len(CATALOG) and "new" not in index


def test_concurrent_searches_with_a_writer(new_index):
    rng = np.random.default_rng(2)
    index = new_index()
    index.add(
        rng.normal(size=(200, DIM)).astype(np.float32),
        [f"i{n % 20}" for n in range(200)],
        [f"m{n}" for n in range(200)],
    )
    queries = rng.normal(size=(8, DIM)).astype(np.float32)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(50):
                hits = index.search(queries, 5)
                assert all(len(set(row)) == len(row) for row in hits.item_ids)
        except BaseException as exc:  # reported below
            errors.append(exc)

    def writer() -> None:
        for n in range(200, 260):
            index.add(rng.normal(size=(1, DIM)).astype(np.float32), [f"i{n % 25}"], [f"m{n}"])
            index.remove_images([f"m{n - 200}"])

    threads = [threading.Thread(target=reader) for _ in range(3)] + [
        threading.Thread(target=writer)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(index) == 200


def test_clear_empties_the_catalog(new_index):
    index = build(new_index, CATALOG)
    index.clear()
    assert len(index) == 0 and index.items == [] and "a1" not in index
    assert index.search(unit(axis(0)), 3).item_ids == [[]]
    index.add(unit(axis(0)), ["a"], ["a1"])  # usable again, ids free
    assert index.search(unit(axis(0)), 3).item_ids == [["a"]]


def test_milvus_hnsw_finds_what_flat_finds(milvus_engine):
    """The index `catalog reindex --backend milvus` gives a large collection (HNSW), and back."""
    from matching.milvus_index import MilvusIndex

    rng = np.random.default_rng(3)
    vectors = unit(*rng.normal(size=(300, DIM)).tolist())
    index = MilvusIndex(milvus_engine, "hnsw", DIM, tenant="t", embedder="hnsw-test")
    ids = [f"v{i}" for i in range(300)]
    index.add(vectors, [f"i{i % 100}" for i in range(300)], ids)
    flat = index.search(vectors[:5], 10)
    assert milvus_engine.tune_index(index.collection, force="HNSW") == "HNSW"
    hnsw = index.search(vectors[:5], 10)
    assert [row[0] for row in hnsw.item_ids] == [f"i{i}" for i in range(5)]
    overlap = [len(set(a) & set(b)) / 10 for a, b in zip(flat.item_ids, hnsw.item_ids, strict=True)]
    assert np.mean(overlap) >= 0.9  # 300 vectors, ef 256: all but exact
    assert milvus_engine.tune_index(index.collection, force="FLAT") == "FLAT"
    again = index.search(vectors[:5], 10)
    assert again.item_ids == flat.item_ids


def _brute_force(vecs, items, images, queries, k, keep):
    """Top-k distinct items per query over the ``keep`` rows, by numpy (stable order)."""
    rows = np.flatnonzero(keep)
    sims = queries @ vecs[rows].T
    out = []
    for q in range(len(queries)):
        seen: dict[str, tuple[str, float]] = {}
        for j in np.argsort(-sims[q], kind="stable"):
            seen.setdefault(items[rows[j]], (images[rows[j]], float(sims[q, j])))
            if len(seen) == k:
                break
        out.append(seen)
    return out


@pytest.mark.parametrize("k", [1, 5, 40])
def test_search_without_images_is_the_brute_force_answer_without_them(k):
    rng = np.random.default_rng(11)
    vecs = rng.normal(size=(300, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    items = [f"i{n % 37}" for n in range(300)]  # 8 or 9 images an item: the probe grows
    images = [f"m{n}" for n in range(300)]
    index = VectorIndex(DIM)
    index.add(vecs, items, images)
    queries = rng.normal(size=(6, DIM)).astype(np.float32)
    left_out = [*index.images_of("i3"), "m0", "m200", "unknown"]
    masked = index.without(left_out)
    keep = np.array([m not in left_out for m in images])
    want = _brute_force(vecs, items, images, queries, k, keep)
    got = masked.search(queries, k)
    assert len(masked) == int(keep.sum()) == 300 - 9 - 2  # i3: 9 images
    for q, seen in enumerate(want):
        assert got.item_ids[q] == list(seen) and "i3" not in got.item_ids[q]
        assert got.image_ids[q] == [image for image, _ in seen.values()]
        np.testing.assert_allclose(
            got.scores[q, : len(seen)], [s for _, s in seen.values()], atol=1e-5
        )
        assert not np.isfinite(got.scores[q, len(seen) :]).any()
    # the index itself still answers with everything
    full = index.search(queries, k)
    want_full = _brute_force(vecs, items, images, queries, k, np.ones(300, bool))
    assert full.item_ids == [list(seen) for seen in want_full]


def test_search_without_everything_or_nothing():
    index = build(lambda: VectorIndex(DIM), CATALOG)
    everything = index.without([image for _, image, _ in CATALOG])
    assert len(everything) == 0
    hits = everything.search(unit(axis(0)), 3)
    assert hits.item_ids == [[]] and not np.isfinite(hits.scores).any()
    nothing = index.without([])
    assert nothing.search(unit(axis(0)), 3).item_ids == index.search(unit(axis(0)), 3).item_ids
    assert len(nothing) == len(index)


def test_search_without_follows_the_index_after_a_removal():
    index = build(lambda: VectorIndex(DIM), CATALOG)
    masked = index.without(["a1", "c1"])
    assert masked.search(unit(axis(0)), 3).item_ids == [["a", "b", "d"]]
    index.remove_images(["a1", "a2"])  # a1 both left out and gone: counted once
    assert len(masked) == len(index) - 1 == 3
    assert masked.search(unit(axis(0)), 3).item_ids == [["a", "b", "d"]]
    assert masked.search(unit(axis(0)), 3).image_ids[0][0] == "a3"
    with pytest.raises(BadInput):
        masked.search(unit(axis(0)), 0)


@pytest.mark.parametrize("k", [1, 5, 40])
def test_milvus_never_answers_an_image_the_store_forgot(k, milvus_engine):
    """A row whose delete never reached the engine (it was away) is never answered: a view
    that knows its catalog's live images (``live``, set by `catalog.vector_sync`) skips the
    others and still answers the exact top-k of the live ones (asking again for the rest)."""
    from matching.milvus_index import MilvusIndex

    rng = np.random.default_rng(12)
    vecs = rng.normal(size=(300, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    items = [f"i{n % 37}" for n in range(300)]
    images = [f"m{n}" for n in range(300)]
    index = MilvusIndex(milvus_engine, f"forgot-{k}", DIM, tenant="t")
    index.add(vecs, items, images, images=images)
    queries = rng.normal(size=(4, DIM)).astype(np.float32)
    forgotten = {f"m{n}" for n in range(0, 300, 3)} | {
        m for m, i in zip(images, items, strict=True) if i == "i5"
    }
    index.live = frozenset(images) - forgotten
    keep = np.array([m not in forgotten for m in images])
    want = _brute_force(vecs, items, images, queries, k, keep)
    got = index.search(queries, k)
    for q, seen in enumerate(want):
        assert got.item_ids[q] == list(seen) and "i5" not in got.item_ids[q]
        assert got.image_ids[q] == [image for image, _ in seen.values()]
        np.testing.assert_allclose(
            got.scores[q, : len(seen)], [s for _, s in seen.values()], atol=1e-5
        )
    assert len(index) == 300  # the engine still holds them: only the view hides them
