"""Labels by example, measured: accuracy, calibration error (ECE) and the ``unknown`` rate.

    SIGHTING_THREADS=1 python -m bench.labels_examples [--shots 1 3 5 10] [--per-label 8]

* grocery (`../shared/data/grocery`): labels = the coarse classes of classes.csv (read with the
  csv module: CRLF) that none of the ``_none`` products belongs to, so every ``_none`` photo is
  truly none of the labels. Per label the photos are shuffled once (seed 0); the examples are
  the first K, the scored photos always the ones after the first 10 (never an example, the
  same for every K). Also scored as grey (infrared-like) copies.
* dogs: "is it a dog" - one label ``dog`` with K dog photos (one each of K catalog dogs),
  scored on other dogs' photos (answer dog) and grocery photos (answer unknown).

Accuracy: the answer (top label, or unknown) is right. ECE: of the answer's probability, 10
bins (`bench.metrics.expected_calibration_error`). Prints one JSON line per (set, K).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from pathlib import Path

import numpy as np

from bench.metrics import expected_calibration_error
from core import cli
from core.images import list_images, read_image
from core.settings import REPO_ROOT, Settings
from labels import DEFAULT_LABEL_EMBEDDER, ExampleLabeler, fit_calibration, load_label_embedder

DATA = REPO_ROOT.parent / "shared" / "data"


def _grey(image: np.ndarray) -> np.ndarray:
    g = np.round(image @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def _embed(embedder, paths: list[Path], grey: bool = False) -> np.ndarray:
    images = [read_image(p) for p in paths]
    return embedder.embed([_grey(i) if grey else i for i in images])


def _score(labeler: ExampleLabeler, vectors: np.ndarray, truth: list[str | None]) -> dict:
    results = labeler.label_vectors(vectors)
    answers = [r.top for r in results]
    conf = np.array([r.top_probability for r in results])
    right = np.array([a == t for a, t in zip(answers, truth, strict=True)])
    known = np.array([t is not None for t in truth])
    out = {
        "photos": len(truth),
        "accuracy": round(float(right.mean()), 4),
        "ece": round(expected_calibration_error(conf, right), 4),
    }
    if known.any():
        out["accuracy_known"] = round(float(right[known].mean()), 4)
        out["unknown_rate_on_known"] = round(
            float(np.mean([a is None for a in np.array(answers, dtype=object)[known]])), 4
        )
    if (~known).any():
        out["unknown_rate_on_none"] = round(float(right[~known].mean()), 4)
    return out


def _labeler(embedder, labels: list[str], vectors: np.ndarray, owner: np.ndarray):
    cal = fit_calibration(vectors, owner, len(labels))
    return ExampleLabeler("bench", labels, embedder, vectors, owner, cal)


def grocery(embedder, shots: list[int], per_label: int, n_none: int) -> list[dict]:
    root = DATA / "grocery"
    with open(root / "classes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    none_items = {p.name.split("__")[0] for p in list_images(root / "queries" / "_none")}
    coarse = {r["item_id"]: r["coarse_class"] for r in rows}
    excluded = {coarse[i] for i in none_items}
    by_class: dict[str, list[Path]] = {}
    for item, cls in coarse.items():
        if cls not in excluded and (root / "queries" / item).is_dir():
            by_class.setdefault(cls, []).extend(list_images(root / "queries" / item))
    rng = random.Random(0)
    labels = sorted(c for c, ps in by_class.items() if len(ps) >= 10 + per_label)
    for c in labels:
        rng.shuffle(by_class[c])
    k_max = max(shots)
    ex_paths = [p for c in labels for p in by_class[c][:k_max]]
    ex_vec = _embed(embedder, ex_paths).reshape(len(labels), k_max, -1)
    scored = [(p, c) for c in labels for p in by_class[c][10 : 10 + per_label]]
    none = list_images(root / "queries" / "_none")
    rng.shuffle(none)
    none = none[:n_none]
    q_paths = [p for p, _ in scored] + none
    truth = [c for _, c in scored] + [None] * len(none)
    q_vec = _embed(embedder, q_paths)
    q_grey = _embed(embedder, q_paths, grey=True)
    out = []
    for k in shots:
        vectors = ex_vec[:, :k].reshape(len(labels) * k, -1)
        owner = np.repeat(np.arange(len(labels)), k)
        labeler = _labeler(embedder, labels, vectors, owner)
        for mode, q in (("colour", q_vec), ("grey", q_grey)):
            out.append(
                {"set": "grocery-coarse", "labels": len(labels), "shots": k, "photos_as": mode}
                | _score(labeler, q, truth)
                | {
                    "calibration": labeler.calibration.method,
                    "T": round(labeler.calibration.temperature, 4),
                    "tau": round(labeler.calibration.threshold, 4),
                }
            )
    return out


def dogs(embedder, shots: list[int], n_scored: int) -> list[dict]:
    root = DATA / "dogs"
    rng = random.Random(0)
    dogs_ = sorted(p for p in (root / "catalog").iterdir() if p.is_dir())
    rng.shuffle(dogs_)
    k_max = max(shots)
    ex_paths = [list_images(d)[0] for d in dogs_[:k_max]]
    scored_dogs = [
        list_images(d)[0]
        for d in (root / "queries").iterdir()
        if d.is_dir() and d.name not in {x.name for x in dogs_[:k_max]} and d.name != "_none"
    ]
    rng.shuffle(scored_dogs)
    groc = [p for d in sorted((DATA / "grocery" / "queries").iterdir()) for p in list_images(d)]
    rng.shuffle(groc)
    q_paths = scored_dogs[:n_scored] + groc[:n_scored]
    truth = ["dog"] * n_scored + [None] * n_scored
    ex_vec = _embed(embedder, ex_paths)
    q_vec = _embed(embedder, q_paths)
    out = []
    for k in shots:
        if k < 2:
            continue  # one example of one label: nothing to calibrate on
        labeler = _labeler(embedder, ["dog"], ex_vec[:k], np.zeros(k, np.int64))
        out.append(
            {"set": "dogs-vs-grocery", "labels": 1, "shots": k, "photos_as": "colour"}
            | _score(labeler, q_vec, truth)
            | {"calibration": labeler.calibration.method}
        )
    return out


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        epilog=cli.EXIT_STATUS,
        prog="python -m bench.labels_examples",
        description="Labels by example: accuracy, ECE, unknown rate (grocery coarse classes, "
        "dogs vs grocery), with 1/3/5/10 examples per label.",
    )
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5, 10])
    parser.add_argument("--per-label", type=int, default=8, help="scored photos per label")
    parser.add_argument("--none", type=int, default=120, help="_none photos scored")
    parser.add_argument("--dogs", type=int, default=100, help="dog and grocery photos scored")
    parser.add_argument("--embedder", default=DEFAULT_LABEL_EMBEDDER)
    args = parser.parse_args(argv)
    settings = Settings(weights_dir=REPO_ROOT.parent / "shared" / "weights", device="cpu")
    from core.runtime import configure_threads

    embedder = load_label_embedder(settings, args.embedder)
    configure_threads(settings.threads)
    start = time.perf_counter()
    for row in grocery(embedder, args.shots, args.per_label, args.none) + dogs(
        embedder, args.shots, args.dogs
    ):
        print(json.dumps({"embedder": args.embedder} | row), flush=True)
    print(json.dumps({"seconds": round(time.perf_counter() - start, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
