"""Descriptor files as the seeds keep them: pickle (dict or DataFrame), .npy + paths, parquet.

`load_descriptor_file` picks the reader by suffix. A folder of images (`analytics.folder`) and
a catalog's stored embeddings (`analytics.catalog_input`) give the same `Descriptors`;
`combine` joins several descriptor sets of the same images.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from analytics.data import Descriptors, stack_vectors
from analytics.safe_pickle import load_restricted
from core.errors import BadInput, NotFound

PICKLE_SUFFIXES = (".pickle", ".pkl")
VECTOR_COLUMNS = ("vector", "vectors", "embedding", "embeddings", "descriptor", "features")
PATH_COLUMNS = ("path", "paths", "image", "image_path", "file", "filename")


def load_descriptor_file(path: Path, paths_file: Path | None = None) -> Descriptors:
    """Read a descriptor file.

    Args:
        path: ``.pickle``/``.pkl`` (a dict ``path -> vector`` or a pandas DataFrame with a path
            column and a vector column, or one column per dimension with the paths as index),
            ``.npy`` (float (N, D)) or ``.parquet`` (as the DataFrame).
        paths_file: for ``.npy``: a text file of N paths, one a line (default: the same name
            with ``.paths.txt``, e.g. ``type.npy`` -> ``type.paths.txt``).

    Raises:
        NotFound: a file is missing.
        BadInput: an unknown suffix, a pickle of something else, mixed lengths, NaN/inf.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"no descriptor file {path}")
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        obj = load_restricted(path.read_bytes())
        return _from_object(obj, str(path))
    if suffix == ".npy":
        return _from_npy(path, paths_file)
    if suffix == ".parquet":
        import pandas as pd

        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - a broken file is bad input
            raise BadInput(f"{path}: not a readable parquet file: {exc}") from None
        return _from_frame(frame, str(path))
    raise BadInput(f"{path}: descriptor files are .pickle/.pkl, .npy or .parquet")


def _from_object(obj: object, source: str) -> Descriptors:
    import pandas as pd

    if isinstance(obj, dict):
        if not obj:
            raise BadInput(f"{source}: the dict is empty")
        paths = [str(p) for p in obj]
        return Descriptors(paths, stack_vectors(list(obj.values()), paths, source), None, source)
    if isinstance(obj, pd.DataFrame):
        return _from_frame(obj, source)
    raise BadInput(
        f"{source}: a descriptor pickle holds a dict path -> vector or a pandas DataFrame, "
        f"not {type(obj).__name__}"
    )


def _from_frame(frame, source: str) -> Descriptors:
    if len(frame) == 0:
        raise BadInput(f"{source}: the table has no rows")
    cols = {str(c).lower(): c for c in frame.columns}
    path_col = next((cols[c] for c in PATH_COLUMNS if c in cols), None)
    vec_col = next((cols[c] for c in VECTOR_COLUMNS if c in cols), None)
    paths = (
        [str(p) for p in frame[path_col]] if path_col is not None else [str(i) for i in frame.index]
    )
    label_col = cols.get("label") or cols.get("item")
    items = [str(v) for v in frame[label_col]] if label_col is not None else None
    if vec_col is not None:
        vectors = stack_vectors(list(frame[vec_col]), paths, source)
    else:  # one numeric column per dimension
        numeric = frame.drop(columns=[c for c in (path_col, label_col) if c is not None])
        numeric = numeric.select_dtypes("number")
        if numeric.shape[1] == 0:
            raise BadInput(
                f"{source}: no vector column (one of {', '.join(VECTOR_COLUMNS)}) and no "
                "numeric columns"
            )
        vectors = numeric.to_numpy(np.float32)
    return Descriptors(paths, vectors, items, source)


def _from_npy(path: Path, paths_file: Path | None) -> Descriptors:
    paths_file = paths_file or path.with_suffix(".paths.txt")
    if not Path(paths_file).is_file():
        raise NotFound(f"{path}: .npy descriptors need a paths file ({paths_file}, one a line)")
    try:
        vectors = np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as exc:
        raise BadInput(f"{path}: not a plain numeric .npy array: {exc}") from None
    if vectors.ndim != 2:
        raise BadInput(f"{path}: expected a 2-D array (N, D), got shape {vectors.shape}")
    paths = [line for line in Path(paths_file).read_text().splitlines() if line.strip()]
    return Descriptors(paths, np.asarray(vectors, np.float32), None, str(path))


def combine(
    sets: list[Descriptors], weights: list[float] | None = None, scaling: str = "standard"
) -> Descriptors:
    """Several descriptor sets of the same images -> one: each scaled, weighted, concatenated.

    Each set is scaled on its own (`analytics.steps.scale`) and divided by the square root of
    its dimension, so that a 2,560-dim set does not drown a 64-dim one; then multiplied by its
    weight. Images missing from any set are dropped (the count is in ``source``). Reduce the
    result with PCA (the pipeline does).

    Raises:
        BadInput: no image common to every set, or a weight count that does not match.
    """
    from analytics.steps.scale import scale

    if len(sets) == 1:
        return sets[0]
    weights = weights or [1.0] * len(sets)
    if len(weights) != len(sets):
        raise BadInput(f"{len(weights)} weights for {len(sets)} descriptor sets")
    common = set(sets[0].paths)
    for s in sets[1:]:
        common &= set(s.paths)
    if not common:
        raise BadInput("the descriptor sets have no image path in common")
    order = [p for p in sets[0].paths if p in common]
    parts = []
    for s, w in zip(sets, weights, strict=True):
        index = {p: i for i, p in enumerate(s.paths)}
        rows = np.fromiter((index[p] for p in order), dtype=np.int64, count=len(order))
        v = scale(s.vectors[rows], scaling)
        parts.append(v * (float(w) / np.sqrt(v.shape[1])))
    items = None
    if sets[0].items is not None:
        first = {p: it for p, it in zip(sets[0].paths, sets[0].items, strict=True)}
        items = [first[p] for p in order]
    dropped = max(len(s) for s in sets) - len(order)
    source = " + ".join(s.source for s in sets) + (f" ({dropped} unmatched dropped)")
    return Descriptors(order, np.concatenate(parts, axis=1).astype(np.float32), items, source)


def read_labels(path: Path) -> dict[str, str]:
    """A labels CSV (``path,label`` with a header; CRLF line ends are fine) -> path -> label.

    Raises:
        NotFound: no such file.
        BadInput: fewer than two columns.
    """
    import csv

    path = Path(path)
    if not path.is_file():
        raise NotFound(f"no labels file {path}")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or len(rows[0]) < 2:
        raise BadInput(f"{path}: a labels CSV has the columns path,label")
    header = [c.strip().lower() for c in rows[0]]
    start = 1 if header[0] in PATH_COLUMNS or header[1] in ("label", "class", "item") else 0
    return {r[0]: r[1] for r in rows[start:] if len(r) >= 2}


@dataclass(frozen=True)
class LabelMatch:
    """A labels CSV matched to the images of a run.

    Attributes:
        labels: image path (as the run names it) -> label, for the rows that matched.
        rows: rows of the CSV.
        matched: rows that matched an image.
    """

    labels: dict[str, str]
    rows: int
    matched: int

    def summary(self) -> str:
        """``labels: 790 of 800 rows matched an image`` (what the command prints)."""
        return f"labels: {self.matched} of {self.rows} rows matched an image"


def _norm(path: str | Path) -> str:
    return os.path.normpath(os.path.abspath(path))


def match_labels(labels: dict[str, str], paths: list[str], roots: list[Path]) -> LabelMatch:
    """Match each row of a labels CSV to one image of the run, whatever form its path takes.

    A row's path matches an image when it is the run's own name of the image, the same file
    (absolute, or relative to the working folder or to one of ``roots``, the input folders),
    ends with the run's name (``data/set/Banana/x.jpg`` for ``Banana/x.jpg``), or is a bare
    file name that only one image has.
    """
    exact = set(paths)
    by_file: dict[str, str] = {}
    for p in paths:
        for root in [Path("."), *roots]:
            by_file.setdefault(_norm(Path(root) / p), p)
    names = Counter(PurePosixPath(p).name for p in paths)
    by_name = {PurePosixPath(p).name: p for p in paths if names[PurePosixPath(p).name] == 1}
    out: dict[str, str] = {}
    matched = 0
    for key, label in labels.items():
        k = key.strip().replace("\\", "/")
        hit = k if k in exact else None
        if hit is None:
            files = (_norm(Path(r) / k) for r in [Path("."), *roots])
            hit = next((by_file[a] for a in files if a in by_file), None)
        if hit is None:
            parts = PurePosixPath(k).parts
            hit = next(
                (s for i in range(1, len(parts)) if (s := "/".join(parts[i:])) in exact), None
            )
        if hit is None and "/" not in k:
            hit = by_name.get(k)
        if hit is not None:
            out[hit] = label
            matched += 1
    return LabelMatch(out, len(labels), matched)
