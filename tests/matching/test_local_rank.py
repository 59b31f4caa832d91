"""Local ranking (issue 28): the widened shortlist, background weighting, the time budget and
the partial answer, the per-kind default, bad input."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.errors import BadInput
from core.images import read_image
from core.settings import Settings
from matching.features import LocalFeatures
from matching.folder_catalog import load_folder_catalog
from matching.local_rank import (
    Deadline,
    LocalJob,
    LocalOptions,
    foreground_weights,
    mutual_matches,
    object_coverage,
    rank_locally,
)
from matching.pipeline import PipelineConfig
from matching.verifier import MatchResult

ITEMS = (
    "Arla-Standard-Milk",
    "Oatly-Natural-Oatghurt",
    "Tropicana-Apple-Juice",
    "Yoggi-Vanilla-Yoghurt",
    "Alpro-Blueberry-Soyghurt",
    "God-Morgon-Orange-Juice",
    "Arla-Sour-Cream",
    "Garant-Ecological-Standard-Milk",
)


# --------------------------------------------------------------------------- the module alone
def features(desc: np.ndarray, size=(100, 100), points: np.ndarray | None = None) -> LocalFeatures:
    desc = desc / np.linalg.norm(desc, axis=1, keepdims=True)
    k = len(desc)
    if points is None:
        points = np.stack([np.arange(k) % 100, np.arange(k) // 100], axis=1).astype(np.float32)
    return LocalFeatures(points, desc, np.ones(k), size)


def test_foreground_weights_count_the_background_for_less() -> None:
    points = np.array([[5, 5], [50, 50], [95, 95]], np.float32)
    w = foreground_weights(points, np.array([[40, 40, 60, 60]]), 0.25)
    np.testing.assert_allclose(w, [0.25, 1.0, 0.25])
    np.testing.assert_allclose(foreground_weights(points, None, 0.25), 1.0)  # whole crop
    np.testing.assert_allclose(foreground_weights(points, np.zeros((0, 4)), 0.25), 1.0)
    # coverage of the object, not of the image
    square = np.array([[40, 40], [60, 40], [60, 60], [40, 60]], np.float32)
    assert object_coverage(square, np.array([40, 40, 60, 60]), (100, 100)) == pytest.approx(1.0)
    assert object_coverage(square, None, (100, 100)) == pytest.approx(0.04)


def test_mutual_matches_find_shared_descriptors_only() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 16))
    query = features(base)
    same = features(base[::-1].copy())  # the same descriptors, in another order
    other = features(rng.normal(size=(40, 16)))
    empty = LocalFeatures.empty(16)
    found = mutual_matches(query, [same, other, empty], min_similarity=0.9, chunk=2)
    qi, ri = found[0]
    assert len(qi) == 40 and np.all(ri == 39 - qi)
    assert len(found[1][0]) == 0 and len(found[2][0]) == 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_deadline_stops_the_work_and_says_it_is_partial() -> None:
    """Each LightGlue batch takes 1 s on the fake clock; a 2.5 s budget checks 3 batches of
    2 candidates, the others stay unchecked and the evidence is marked partial."""
    rng = np.random.default_rng(1)
    base = rng.normal(size=(30, 16))
    query = features(base)
    refs = [features(base + 0.01 * rng.normal(size=base.shape)) for _ in range(12)]
    clock = FakeClock()
    calls = []

    def match_many(q, rs):
        calls.append(len(rs))
        clock.now += 1.0
        return [MatchResult.empty() for _ in rs]

    job = LocalJob(query, None, np.linspace(0.9, 0.5, 12), refs, [None] * 12)
    options = LocalOptions(verify=12, batch=2)
    scorer = lambda sim, inl, spread, checked: sim + inl  # noqa: E731
    (ev,) = rank_locally([job], match_many, scorer, options, Deadline(2.5, clock))
    assert calls == [2, 2, 2] and ev.checked.sum() == 6 and ev.partial
    assert ev.compared.all()  # the descriptor pass reached every candidate
    (ev,) = rank_locally([job], match_many, scorer, options, Deadline(0, clock))  # no limit
    assert ev.checked.all() and not ev.partial


def test_stage_two_takes_the_best_of_the_descriptor_pass() -> None:
    """The one candidate that shares the query's descriptors is verified even though the
    embedding ranks it last; ``verify`` bounds how many candidates LightGlue sees."""
    rng = np.random.default_rng(2)
    base = rng.normal(size=(30, 64))  # (ALIKED's are 128-d: unrelated ones rarely agree)
    refs = [features(rng.normal(size=(30, 64))) for _ in range(9)] + [features(base.copy())]
    seen = []

    def match_many(q, rs):
        seen.extend(id(r) for r in rs)
        return [MatchResult.empty() for _ in rs]

    job = LocalJob(features(base), None, np.linspace(0.9, 0.5, 10), refs, [None] * 10)
    scorer = lambda sim, inl, spread, checked: sim + inl  # noqa: E731
    (ev,) = rank_locally([job], match_many, scorer, LocalOptions(verify=2), Deadline(0))
    assert ev.mutual[9] == 30 and ev.mutual[:9].max() < 5
    assert seen[0] == id(refs[9]) and len(seen) == 2 and ev.checked.sum() == 2


def test_stage_one_keeps_the_geometrically_consistent_matches_of_every_candidate() -> None:
    """RANSAC on the descriptor pass's matches (the verifier's own, no LightGlue): the
    candidate whose matches agree with one homography gets them all as evidence, the one
    with the same descriptors at scattered places (a random texture) gets next to none;
    both were checked geometrically, neither refined by LightGlue (``verify`` 0)."""
    from types import SimpleNamespace

    from matching.verifier import Verifier, VerifierConfig

    rng = np.random.default_rng(3)
    desc = rng.normal(size=(40, 64))
    pts = rng.uniform(10, 190, size=(40, 2)).astype(np.float32)
    moved = pts * 0.8 + np.float32([15, 5])  # a scale and a shift: one homography
    scattered = rng.permutation(pts)  # the same descriptors, their places shuffled
    query = features(desc, (200, 200), pts)
    refs = [features(desc, (200, 200), scattered), features(desc, (200, 200), moved)]
    backend = SimpleNamespace(config=VerifierConfig(), to=lambda device, dtype: None)
    verifier = Verifier("ransac-only", backend)
    job = LocalJob(query, None, np.array([0.9, 0.5]), refs, [None, None])
    scorer = lambda sim, inl, spread, checked: sim + inl  # noqa: E731

    def no_lightglue(q, rs):
        raise AssertionError("verify=0: LightGlue must not run")

    (ev,) = rank_locally(
        [job], no_lightglue, scorer, LocalOptions(verify=0), Deadline(0), verifier.verify_matches
    )
    assert ev.mutual.tolist() == [40, 40]
    assert ev.raw_inliers[1] >= 38 and ev.raw_inliers[0] < 10
    assert ev.inliers[1] > 30 and ev.coverage[1] > 0.3
    assert ev.inliers[0] == 0  # chance inliers that make no accepted homography count nothing
    assert ev.checked.all() and not ev.refined.any() and not ev.partial

    # LightGlue on the leader finding nothing does not take its stage-1 evidence away
    before = ev.inliers[1]
    (ev,) = rank_locally(
        [job],
        lambda q, rs: [MatchResult.empty() for _ in rs],
        scorer,
        LocalOptions(verify=1),
        Deadline(0),
        verifier.verify_matches,
    )
    assert ev.refined.tolist() == [False, True] and ev.inliers[1] == before


def test_background_matches_count_for_less() -> None:
    """One RANSAC result, 4 inliers: 2 inside the catalog object's box, 2 outside; with
    background weight 0.25 the evidence is 2 + 2 * 0.25 (match confidence 1)."""
    pts = np.array([[10, 10], [20, 20], [80, 80], [90, 90]], np.float32)
    result = MatchResult(4, 4, 1.0, 0.5, np.eye(3), pts, pts, np.ones(4, bool), np.ones(4))
    query = features(np.eye(4, 16), points=pts)
    ref = features(np.eye(4, 16), points=pts)
    job = LocalJob(query, None, np.array([0.5]), [ref], [np.array([0, 0, 50, 50])])
    scorer = lambda sim, inl, spread, checked: sim + inl  # noqa: E731
    for weight, expected in ((0.25, 2.5), (1.0, 4.0)):
        options = LocalOptions(background_weight=weight, min_similarity=0.5)
        (ev,) = rank_locally([job], lambda q, rs: [result], scorer, options, Deadline(0))
        assert ev.inliers[0] == pytest.approx(expected) and ev.raw_inliers[0] == 4
    # the same inliers without a homography the verifier accepts: no evidence
    chance = MatchResult(4, 4, 1.0, 0.5, None, pts, pts, np.ones(4, bool), np.ones(4))
    (ev,) = rank_locally([job], lambda q, rs: [chance], scorer, options, Deadline(0))
    assert ev.checked[0] and ev.inliers[0] == 0 and ev.raw_inliers[0] == 0


# ------------------------------------------------------------------- options and their checks
def test_rank_defaults_by_kind_and_bad_options_are_refused() -> None:
    config = PipelineConfig()
    assert config.rank_for("other") == "local" and config.rank_for("wildlife") == "local"
    assert config.rank_for("products") == "embedding"
    assert config.rank_for("animals") == "embedding"
    assert replace(config, rank="embedding").rank_for("other") == "embedding"
    assert replace(config, rank="local").rank_for("products") == "local"
    configured = PipelineConfig.from_settings(Settings(local_rank_kinds="other", _env_file=None))
    assert configured.rank_for("wildlife") == "embedding"
    assert configured.rank_for("other") == "local"
    with pytest.raises(BadInput, match="rank"):
        PipelineConfig(rank="keypoints")
    for bad in (0, 5001):
        with pytest.raises(BadInput, match="shortlist"):
            PipelineConfig(local_shortlist=bad)
    with pytest.raises(BadInput, match="budget"):
        PipelineConfig(local_budget_s=-1)
    with pytest.raises(ValueError, match="unknown kinds"):
        Settings(local_rank_kinds="cars", _env_file=None)


# ------------------------------------------------------------------ the engine on real photos
@pytest.fixture(scope="module")
def small_set(data_dir: Path, tmp_path_factory) -> Path:
    """8 grocery items, one query photo each."""
    root = tmp_path_factory.mktemp("set")
    src = data_dir / "grocery"
    for item in ITEMS:
        shutil.copytree(src / "catalog" / item, root / "catalog" / item)
        (root / "queries" / item).mkdir(parents=True)
        first = sorted((src / "queries" / item).iterdir())[0]
        shutil.copy(first, root / "queries" / item / first.name)
    return root


@pytest.fixture(scope="module")
def other_view(pipeline, small_set: Path):
    """The 8 items as a catalog of kind ``other`` (ImageNet features, local by default)."""
    return load_folder_catalog(
        pipeline, small_set / "catalog", kind="other", cache=False, progress=False
    )


def photo(small_set: Path, item: str) -> np.ndarray:
    return read_image(next((small_set / "queries" / item).iterdir()))


def test_local_ranking_checks_the_whole_small_catalog(pipeline, other_view, small_set) -> None:
    """A catalog smaller than the shortlist is ranked whole: every item of every verified
    crop compared, the answer says ``local`` and is not partial; lists are never cut."""
    config = PipelineConfig(top_k=8, local_budget_s=0)
    result = pipeline.match_frames([photo(small_set, ITEMS[0])], other_view, config)[0]
    ranking = result.ranking
    assert ranking.method == "local" and not ranking.partial
    ranked_crops = min(config.verify_crops, len(result.detections))
    assert ranking.candidates == ranking.checked == len(ITEMS) * ranked_crops
    assert all(len(m) == len(ITEMS) for m in result.matches)
    best = result.ranked_items(1)[0]
    assert best.item_id == ITEMS[0] and best.checked and best.inliers >= 8
    assert best.evidence is not None and 0 < best.evidence <= best.inliers
    # the same photo by embedding: five verified, and it says so
    by_embedding = replace(config, rank="embedding")
    result = pipeline.match_frames([photo(small_set, ITEMS[0])], other_view, by_embedding)[0]
    assert result.ranking.method == "embedding"
    assert all(m.evidence is None for ms in result.matches for m in ms)


def test_a_zero_budget_is_no_limit_and_a_tiny_one_gives_a_partial_answer(
    pipeline, other_view, small_set
) -> None:
    tiny = PipelineConfig(top_k=8, local_budget_s=1e-9)
    result = pipeline.match_frames([photo(small_set, ITEMS[1])], other_view, tiny)[0]
    assert result.ranking.partial and result.ranking.checked < result.ranking.candidates
    # nothing checked: every list keeps its embedding order, uncut
    for matches in result.matches:
        assert len(matches) == len(ITEMS) and not any(m.checked for m in matches)
        sims = [m.similarity for m in matches]
        assert sims == sorted(sims, reverse=True)


def test_the_shortlist_widens_to_n_by_embedding(pipeline, other_view, small_set) -> None:
    """With a shortlist of 3, only each crop's 3 most similar items are compared."""
    config = PipelineConfig(top_k=8, local_shortlist=3, local_budget_s=0)
    result = pipeline.match_frames([photo(small_set, ITEMS[2])], other_view, config)[0]
    ranked_crops = min(config.verify_crops, len(result.detections))
    assert result.ranking.candidates == 3 * ranked_crops
    for matches in result.matches:
        assert len(matches) == len(ITEMS)
        by_sim = sorted(matches, key=lambda m: -m.similarity)
        assert not any(m.checked for m in by_sim[3:])


def test_textureless_and_undetected_queries_are_answered(pipeline, other_view) -> None:
    """A flat grey photo (no keypoints, no detection: the whole photo is the query) is
    answered with the full ranked list in embedding order, nothing confirmed."""
    flat = np.full((120, 160, 3), 128, np.uint8)
    config = PipelineConfig(top_k=8, local_budget_s=0)
    result = pipeline.match_frames([flat], other_view, config)[0]
    assert len(result.detections) == 1  # the whole frame
    (matches,) = result.matches
    assert len(matches) == len(ITEMS)
    assert not any(m.verified for m in matches) and all(m.inliers == 0 for m in matches)
    assert result.ranking.method == "local" and not result.ranking.partial


@pytest.mark.parametrize(
    "option", [["--shortlist", "0"], ["--shortlist", "5001"], ["--budget", "-1"], ["--rank", "x"]]
)
def test_the_benchmark_refuses_options_out_of_range(option, tmp_path: Path, capsys) -> None:
    from bench.accuracy import main as accuracy_main

    with pytest.raises(SystemExit) as exc:
        accuracy_main([str(tmp_path), *option])
    assert exc.value.code == 2 and option[0] in capsys.readouterr().err
