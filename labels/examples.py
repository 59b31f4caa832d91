"""Labels by example photos: a crop's probability per label from its embedding.

Each label has a few example photos (a `LabelSet`). A crop's *score* for a label is its cosine
similarity to the label's nearest example (embeddings of the embedders Sighting already has,
`embedding.Embedder`). Scores become probabilities with a softmax at temperature ``T`` over the
labels plus one more outcome, ``unknown``, whose score is a fixed similarity ``tau``: a crop
close to no example gets most of its probability on ``unknown``.

``T`` and ``tau`` are fitted on the label set itself (`fit_calibration`):

* leave-one-out: each example is scored against all the others; its own label is the answer;
* leave-one-label-out: each example is scored against the *other* labels only; ``unknown`` is
  the answer (this is what a photo of an animal the label set does not hold looks like);

and the pair that minimises the mean negative log-likelihood of the two (each weighted 1/2)
is kept. A set with one label has no leave-one-label-out samples: ``tau`` is then the 5th
percentile of its leave-one-out scores and ``T`` puts the median at 0.9. A set with one example
per label has no leave-one-out samples: ``T`` is `DEFAULT_TEMPERATURE` and ``tau`` the 90th
percentile of the scores against the other labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import BadInput
from embedding.embedder import Embedder
from labels.labelset import LabelSet
from labels.result import LabelResult, as_rgb

DEFAULT_TEMPERATURE = 0.03
_TEMPERATURES = np.geomspace(0.004, 0.5, 48)


@dataclass(frozen=True)
class ExampleCalibration:
    """How scores become probabilities (see the module docstring).

    Attributes:
        temperature: softmax temperature ``T`` (cosine units).
        threshold: ``tau``, the score of the ``unknown`` outcome.
        method: ``"fit"`` (both sample sets), ``"one-label"`` or ``"one-example"``.
        known_samples: leave-one-out samples used.
        unknown_samples: leave-one-label-out samples used.
        nll: mean negative log-likelihood of the samples at the chosen values.
    """

    temperature: float
    threshold: float
    method: str
    known_samples: int
    unknown_samples: int
    nll: float = float("nan")


def label_scores(sims: np.ndarray, owner: np.ndarray, n_labels: int) -> np.ndarray:
    """Per label, the best similarity over its examples.

    Args:
        sims: float32 (Q, N) similarities of Q queries to N examples (``-inf``: excluded).
        owner: int (N,) label index of each example.
        n_labels: L.

    Returns:
        float32 (Q, L); ``-inf`` where a label has no (non-excluded) example.
    """
    out = np.full((sims.shape[0], n_labels), -np.inf, dtype=np.float32)
    for label in range(n_labels):
        cols = owner == label
        if cols.any():
            out[:, label] = sims[:, cols].max(axis=1)
    return out


def probabilities(
    scores: np.ndarray, calibration: ExampleCalibration
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax over the labels' scores and ``unknown``'s.

    Args:
        scores: float (Q, L) label scores (``-inf``: label absent).

    Returns:
        float32 (Q, L) label probabilities and float32 (Q,) unknown probabilities.
    """
    t = calibration.temperature
    logits = np.concatenate(
        [scores / t, np.full((len(scores), 1), calibration.threshold / t)], axis=1
    )
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return p[:, :-1].astype(np.float32), p[:, -1].astype(np.float32)


def _nll(scores: np.ndarray, targets: np.ndarray, t: float, taus: np.ndarray) -> np.ndarray:
    """Mean -log p(target) for every tau at temperature t; target L means unknown.

    Args:
        scores: (S, L); targets: (S,) in [0, L]; taus: (K,). Returns (K,).
    """
    if len(scores) == 0:
        return np.zeros(len(taus))
    s = scores[None, :, :] / t  # (1, S, L)
    u = (taus / t)[:, None, None] * np.ones((1, len(scores), 1))  # (K, S, 1)
    logits = np.concatenate([np.broadcast_to(s, (len(taus), *scores.shape)), u], axis=2)
    top = logits.max(axis=2, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(axis=2)) + top[..., 0]  # (K, S)
    picked = np.take_along_axis(logits, targets[None, :, None].repeat(len(taus), 0), 2)[..., 0]
    return (lse - picked).mean(axis=1)


def fit_calibration(vectors: np.ndarray, owner: np.ndarray, n_labels: int) -> ExampleCalibration:
    """Fit ``T`` and ``tau`` on the examples themselves (see the module docstring).

    Args:
        vectors: float32 (N, D) L2-normalised example embeddings.
        owner: int (N,) label index of each.
        n_labels: L.

    Raises:
        BadInput: a single example in all (nothing to compare it with).
    """
    n = len(vectors)
    if n < 2:
        raise BadInput("a label set needs at least 2 example photos in all to calibrate on")
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    counts = np.bincount(owner, minlength=n_labels)
    loo = label_scores(sims, owner, n_labels)  # own label over its other examples
    known = counts[owner] >= 2
    known_scores, known_targets = loo[known], owner[known]
    lolo = loo.copy()
    lolo[np.arange(n), owner] = -np.inf  # own label removed: the answer is unknown
    unknown_scores = lolo if n_labels >= 2 else lolo[:0]
    unknown_targets = np.full(len(unknown_scores), n_labels)
    if len(known_scores) and len(unknown_scores):
        finite = np.concatenate([known_scores[np.isfinite(known_scores)], [0.0]])
        taus = np.linspace(finite.min() - 0.05, finite.max() + 0.05, 161)
        best = (np.inf, DEFAULT_TEMPERATURE, 0.0)
        for t in _TEMPERATURES:
            loss = 0.5 * _nll(known_scores, known_targets, t, taus) + 0.5 * _nll(
                unknown_scores, unknown_targets, t, taus
            )
            k = int(np.argmin(loss))
            if loss[k] < best[0]:
                best = (float(loss[k]), float(t), float(taus[k]))
        return ExampleCalibration(
            best[1], best[2], "fit", len(known_scores), len(unknown_scores), best[0]
        )
    if len(known_scores):  # one label: no example of "not this label"
        own = known_scores[np.arange(len(known_scores)), known_targets]
        tau, median = float(np.quantile(own, 0.05)), float(np.median(own))
        t = max((median - tau) / np.log(9.0), 0.004)
        return ExampleCalibration(t, tau, "one-label", len(own), 0)
    other = unknown_scores.max(axis=1)  # one example per label: no leave-one-out sample
    return ExampleCalibration(
        DEFAULT_TEMPERATURE, float(np.quantile(other, 0.9)), "one-example", 0, len(other)
    )


class ExampleLabeler:
    """Labels crops by their nearest example photos. Build with `fit`.

    Attributes:
        name: the label set's name.
        labels: label names, sorted.
        embedder: the embedder of examples and crops.
        vectors: float32 (N, D) example embeddings; ``owner`` int (N,) their label index.
        calibration: the fitted `ExampleCalibration`.
    """

    def __init__(
        self,
        name: str,
        labels: Sequence[str],
        embedder: Embedder,
        vectors: np.ndarray,
        owner: np.ndarray,
        calibration: ExampleCalibration,
    ) -> None:
        self.name = name
        self.labels = tuple(labels)
        self.embedder = embedder
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.owner = np.asarray(owner, dtype=np.int64)
        self.calibration = calibration

    @classmethod
    def fit(cls, embedder: Embedder, label_set: LabelSet) -> ExampleLabeler:
        """Embed a label set's examples and calibrate on them.

        Raises:
            BadInput: a label set with a single example in all.
        """
        labels = label_set.labels
        images = [img for label in labels for img in label_set.examples[label]]
        owner = np.array(
            [i for i, label in enumerate(labels) for _ in label_set.examples[label]], np.int64
        )
        vectors = embedder.embed([as_rgb(img, i) for i, img in enumerate(images)])
        calibration = fit_calibration(vectors, owner, len(labels))
        return cls(label_set.name, labels, embedder, vectors, owner, calibration)

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """float32 (Q, D) query embeddings -> float32 (Q, L) best similarity per label."""
        return label_scores(vectors @ self.vectors.T, self.owner, len(self.labels))

    def label_vectors(self, vectors: np.ndarray) -> list[LabelResult]:
        """Label crops whose embeddings (float32 (Q, D), this labeler's embedder) are known."""
        if len(vectors) == 0:
            return []
        if vectors.shape[1] != self.vectors.shape[1]:
            raise BadInput(
                f"vectors of dimension {vectors.shape[1]}; the label set's embedder "
                f"({self.embedder.name}) gives {self.vectors.shape[1]}"
            )
        p, unknown = probabilities(self.scores(vectors), self.calibration)
        return [LabelResult(self.labels, p[i], float(unknown[i])) for i in range(len(p))]

    def label(self, images: Sequence[np.ndarray]) -> list[LabelResult]:
        """uint8 (h, w, 3) RGB crops or photos (grey accepted) -> one `LabelResult` each."""
        images = [as_rgb(img, i) for i, img in enumerate(images)]
        return self.label_vectors(self.embedder.embed(images))
