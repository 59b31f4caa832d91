"""The grouping on its own: neighbours, loose clusters, verified pairs, groups; the benchmark's
pairwise figures. Vectors are drawn around one centre per individual; the verifier is a
callable giving inliers by the truth, as keypoints do for photos of one animal."""

from __future__ import annotations

import numpy as np
import pytest

from bench.discovery import pair_scores
from discovery.group import GroupConfig, clusters, group_photos
from matching.score import Calibration, conservative_default, load_calibrations

ANIMALS = load_calibrations()["animals"]


def photos(individuals: int, each: int, spread: float = 0.15, seed: int = 0):
    """Vectors of ``individuals`` x ``each`` photos around random centres, and the truth."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(individuals, 64))
    vectors, truth = [], []
    for k, c in enumerate(centres):
        c = c / np.linalg.norm(c)
        for _ in range(each):
            v = c + rng.normal(scale=spread / 8, size=64)
            vectors.append(v / np.linalg.norm(v))
            truth.append(k)
    return np.asarray(vectors, np.float32), truth


def keypoints_by(truth, same: int = 80, other: int = 2):
    calls = []

    def verify(i, others):
        calls.append((i, tuple(others)))
        return [(same if truth[i] == truth[j] else other, 0.4 if truth[i] == truth[j] else 0.0)
                for j in others]  # fmt: skip

    return verify, calls


def test_each_individual_becomes_one_group() -> None:
    vectors, truth = photos(5, 4)
    verify, calls = keypoints_by(truth)
    got = group_photos(vectors, verify, ANIMALS, GroupConfig(link_similarity=0.5))
    assert sorted(g.members for g in got.groups) == [
        tuple(i for i, t in enumerate(truth) if t == k) for k in range(5)
    ]
    assert got.threshold == ANIMALS.threshold and calls  # keypoints ran inside the clusters
    for g in got.groups:
        assert len(g.pairs) == len(g.members) - 1  # a spanning tree of verified pairs
        assert g.score >= ANIMALS.threshold
    scores = pair_scores([str(t) for t in truth], [g.members for g in got.groups])
    assert scores["pair_precision"] == scores["pair_recall"] == scores["one_group"] == 1.0


def test_keypoints_split_a_cluster_that_similarity_alone_joins() -> None:
    # two individuals so alike that they form one loose cluster; the keypoints disagree
    vectors, truth = photos(1, 6, spread=0.05)
    truth = [0, 0, 0, 1, 1, 1]
    verify, _ = keypoints_by(truth, same=120, other=0)
    loose = Calibration(weights=(4.0, 0.0, 1.5, 0.0, 0.0, 0.0), bias=-9.0, threshold=0.5)
    got = group_photos(vectors, verify, loose, GroupConfig(link_similarity=0.5))
    assert sorted(g.members for g in got.groups) == [(0, 1, 2), (3, 4, 5)]
    assert got.clusters == 1
    # without keypoints the same evidence confirms nothing
    assert group_photos(vectors, None, loose, GroupConfig(link_similarity=0.5)).groups == []


def test_a_kind_without_calibration_confirms_nothing_unless_a_score_is_asked() -> None:
    vectors, truth = photos(3, 3)
    verify, _ = keypoints_by(truth)
    never = conservative_default("vehicles")
    assert group_photos(vectors, verify, never).groups == []
    asked = group_photos(vectors, verify, never, GroupConfig(min_score=0.5))
    assert len(asked.groups) == 3 and asked.threshold == 0.5


def test_strangers_and_single_photos_are_not_proposed() -> None:
    vectors, _ = photos(6, 1)  # six individuals, one photo each
    verify, _ = keypoints_by(list(range(6)))
    got = group_photos(vectors, verify, ANIMALS)
    assert got.groups == [] and got.photos == 6
    assert group_photos(vectors[:1], verify, ANIMALS).groups == []


def test_a_chained_cluster_is_split_at_a_higher_similarity() -> None:
    # a chain: each photo close to the next, the ends far apart
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=32), rng.normal(size=32)
    chain = [a * (1 - t) + b * t for t in np.linspace(0, 1, 12)]
    vectors = np.asarray([v / np.linalg.norm(v) for v in chain], np.float32)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1)
    ids = np.argsort(-sims, axis=1)[:, :4]
    top = np.take_along_axis(sims, ids, axis=1)
    whole = clusters(top, ids, link_similarity=0.0, max_group=100)
    assert [len(c) for c in whole] == [12]
    parts = clusters(top, ids, link_similarity=0.0, max_group=4)
    assert all(len(c) <= 4 for c in parts) and sum(len(c) for c in parts) <= 12


@pytest.mark.parametrize(
    ("groups", "precision", "recall", "one"),
    [
        ([(0, 1, 2), (3, 4)], 1.0, 1.0, 1.0),
        ([(0, 1, 2, 3, 4)], 4 / 10, 1.0, 0.0),
        ([(0, 1), (3, 4)], 1.0, 2 / 4, 0.5),
        ([], 1.0, 0.0, 0.0),
    ],
)
def test_pair_scores(groups, precision, recall, one) -> None:
    got = pair_scores(["a", "a", "a", "b", "b", "c"], groups)
    assert got["pair_precision"] == pytest.approx(precision)
    assert got["pair_recall"] == pytest.approx(recall)
    assert got["one_group"] == pytest.approx(one) and got["individuals"] == 2
