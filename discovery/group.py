"""Group photos of unknown individuals: neighbours, loose clusters, keypoint-verified groups.

The photos (crops) are embedded by the catalog kind's embedder; then:

1. **Neighbours** (`analytics.steps.pairs.neighbours`): each photo's ``k`` most similar others.
2. **Clusters**: photos linked when one is among the other's neighbours with a cosine
   similarity of at least ``link_similarity``; a cluster is a connected component of those
   links. A component above ``max_group`` photos is split again at a higher similarity
   (chaining), in steps of 0.02.
3. **Verification inside each cluster**: every pair of a cluster is matched with the
   pipeline's keypoint verifier (`matching.verifier.Verifier.match_many`) and scored with the
   kind's calibration (`matching.score.Calibration`) the way a search scores a candidate: the
   pair's similarity and inliers, and the margins over the best photo *outside* the cluster
   (the nearest other individual, also verified; when every neighbour is in the cluster, its
   last neighbour's similarity bounds the best other). A pair is confirmed when that score
   reaches ``min_score`` (default: the calibration's ``verified`` threshold, so a kind
   without a fitted calibration confirms nothing unless a score is asked for), scored from
   either photo's side (its own nearest outsider), or from both (``both_sides``).
4. **Groups**: connected components of the confirmed pairs with at least ``min_size``
   photos; photos left alone are not proposed.

Pure function of arrays and callables (`group_photos`): the job, the service and
``bench.discovery`` share it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from analytics.steps.pairs import neighbours
from matching.score import Calibration, candidate_features

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupConfig:
    """Knobs of `group_photos` (settings ``SIGHTING_DISCOVERY_*``)."""

    neighbours: int = 10  # k of the neighbour search
    link_similarity: float = 0.5  # cosine similarity that links two photos into a cluster
    max_group: int = 30  # a cluster above this is split at a higher similarity
    min_size: int = 2  # photos of a proposed group
    min_score: float | None = None  # pair score that confirms; None: the calibration's
    both_sides: bool = False  # confirm only when the score holds from both photos' sides


@dataclass(frozen=True)
class PairEvidence:
    """One verified pair of a group: indices, similarity, inliers, calibrated score."""

    a: int
    b: int
    similarity: float
    inliers: int
    score: float


@dataclass(frozen=True)
class Group:
    """Photos proposed as one individual.

    Attributes:
        members: indices into the photos, ascending.
        pairs: the confirmed pairs that join them (a spanning set, best score first).
        score: the lowest score on the group's best spanning tree (how weak its weakest
            link is).
    """

    members: tuple[int, ...]
    pairs: tuple[PairEvidence, ...] = field(default_factory=tuple)
    score: float = 0.0


@dataclass(frozen=True)
class Grouping:
    """What `group_photos` found: groups (largest first) and counts."""

    groups: list[Group]
    photos: int
    clusters: int  # loose clusters of 2+ photos before verification
    pairs_checked: int
    pairs_confirmed: int
    threshold: float


def _components(n: int, edges: list[tuple[int, int]]) -> list[list[int]]:
    """Connected components (union-find), each sorted, of ``n`` nodes."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    out: dict[int, list[int]] = {}
    for x in range(n):
        out.setdefault(find(x), []).append(x)
    return list(out.values())


def clusters(
    sims: np.ndarray, ids: np.ndarray, link_similarity: float, max_group: int
) -> list[list[int]]:
    """Loose clusters (step 2): components of neighbour links at ``link_similarity``; one
    larger than ``max_group`` is split again 0.02 higher, until it fits (or similarity 1)."""
    n = len(sims)

    def split(nodes: list[int], floor: float) -> list[list[int]]:
        inside = set(nodes)
        edges = [
            (i, int(j))
            for i in nodes
            for s, j in zip(sims[i].tolist(), ids[i].tolist(), strict=True)
            if j >= 0 and j in inside and s >= floor
        ]
        local = {v: k for k, v in enumerate(nodes)}
        comps = _components(len(nodes), [(local[a], local[b]) for a, b in edges])
        out = []
        for comp in comps:
            members = [nodes[k] for k in comp]
            if len(members) > max_group and floor < 1.0:
                out.extend(split(members, round(floor + 0.02, 4)))
            else:
                out.append(members)
        return out

    return [c for c in split(list(range(n)), link_similarity) if len(c) >= 2]


#: Verifies one photo against others: index, other indices -> (inliers, spread) per other.
VerifyFn = Callable[[int, Sequence[int]], list[tuple[int, float]]]


def group_photos(
    vectors: np.ndarray,
    verify: VerifyFn | None,
    calibration: Calibration,
    config: GroupConfig = GroupConfig(),
    progress: Callable[[int, int], None] = lambda d, t: None,
) -> Grouping:
    """Propose groups of photos that show one individual (module docstring).

    Args:
        vectors: float32 (N, D) embeddings of the photos.
        verify: keypoint verification (None: no verifier; pairs are scored unchecked).
        calibration: scores a pair's evidence; its ``threshold`` confirms unless
            ``config.min_score`` is given.
    """
    n = len(vectors)
    threshold = calibration.threshold if config.min_score is None else config.min_score
    if n < 2:
        return Grouping([], n, 0, 0, 0, threshold)
    sims, ids = neighbours(vectors, k=min(config.neighbours, n - 1))
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    loose = clusters(sims, ids, config.link_similarity, config.max_group)
    groups: list[Group] = []
    checked = confirmed = 0
    total = sum(len(c) for c in loose)
    done = 0
    for cluster in loose:
        inside = set(cluster)
        # each member's nearest photo outside the cluster: the best "other individual"
        outsider: dict[int, tuple[int, float] | None] = {}
        for i in cluster:
            row = [
                (int(j), float(s))
                for s, j in zip(sims[i].tolist(), ids[i].tolist(), strict=True)
                if j >= 0 and j not in inside
            ]
            outsider[i] = row[0] if row else None
        inliers: dict[tuple[int, int], tuple[int, float]] = {}
        for i in cluster:
            others = [j for j in cluster if j > i]
            out = outsider[i]
            targets = others + ([out[0]] if out is not None else [])
            if verify is not None and targets:
                found = verify(i, targets)
                checked += len(others)
            else:
                found = [(0, 0.0)] * len(targets)
            for j, ev in zip(targets, found, strict=True):
                inliers[(i, j)] = ev
            done += 1
            progress(done, total)
        # outsiders of members with larger index were matched from the member's side
        edges: list[PairEvidence] = []
        for a, b in itertools.combinations(cluster, 2):
            sim_ab = float(unit[a] @ unit[b])
            inl, spread = inliers.get((a, b), inliers.get((b, a), (0, 0.0)))
            sides = []
            for side in (a, b):
                out = outsider[side]
                if out is None:  # every neighbour is in the cluster: the last bounds the rest
                    o_sim, o_inl, o_spread = float(sims[side][-1]), 0, 0.0
                else:
                    o_sim = out[1]
                    o_inl, o_spread = inliers.get((side, out[0]), (0, 0.0))
                feats = candidate_features(
                    np.array([sim_ab, o_sim]),
                    np.array([inl, o_inl]),
                    np.array([spread, o_spread]),
                    np.array([verify is not None] * 2),
                )
                sides.append(float(calibration.score(feats)[0]))
            best = min(sides) if config.both_sides else max(sides)
            if best >= threshold:
                edges.append(PairEvidence(a, b, round(sim_ab, 4), int(inl), round(best, 4)))
        confirmed += len(edges)
        local = {v: k for k, v in enumerate(cluster)}
        for comp in _components(len(cluster), [(local[e.a], local[e.b]) for e in edges]):
            if len(comp) < config.min_size:
                continue
            members = tuple(sorted(cluster[k] for k in comp))
            groups.append(_group(members, edges))
    groups.sort(key=lambda g: (-len(g.members), g.members))
    return Grouping(groups, n, len(loose), checked, confirmed, threshold)


def _group(members: tuple[int, ...], edges: list[PairEvidence]) -> Group:
    """The group with its best spanning tree of confirmed pairs (maximum score, Kruskal)."""
    inside = set(members)
    mine = sorted(
        (e for e in edges if e.a in inside and e.b in inside), key=lambda e: (-e.score, e.a, e.b)
    )
    parent = {m: m for m in members}

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    tree = []
    for e in mine:
        ra, rb = find(e.a), find(e.b)
        if ra != rb:
            parent[ra] = rb
            tree.append(e)
    return Group(members, tuple(tree), min((e.score for e in tree), default=0.0))
