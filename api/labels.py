"""Labels on live answers: ``labels=<label set>`` on detect and stream frames.

Each detection's crop gets the label set's probabilities (`labels.ExampleLabeler`, fitted
on the label set's example photos, kept per worker by `labels.cache.LabelerCache`) in the one
label shape, ``{"labels": [{"label", "probability"}], "top", "unknown"}``, under the
detection's ``labels`` key. On a stream a track is labelled once, on the frame it is first
seen, and keeps its labels (as it keeps its verified matches), so labels cost one small
embedding per new object, not per frame.
"""

from __future__ import annotations

import re

from flask import current_app

from api.auth import check_owner
from api.inputs import option
from api.schemas import CATALOG_ID_PATTERN
from api.state import state
from core.errors import BadInput
from labels.cache import LabelerCache
from labels.result import LabelResult, result_to_dict
from matching.result import FrameResult

_ID = re.compile(CATALOG_ID_PATTERN)


def labels_option() -> str | None:
    """The ``labels`` option (a label set's catalog id), or None when not asked for."""
    value = option("labels", str, None)
    if value in (None, ""):
        return None
    if not _ID.fullmatch(value):
        raise BadInput(f"labels {value!r} is not a label set id")
    return value


def labelers() -> LabelerCache:
    """This worker's fitted label sets (the label embedder loads on first use)."""
    cache = current_app.extensions.get("labelers")
    if cache is None:
        from labels import load_label_embedder

        s = state()
        embedder = load_label_embedder(s.settings)
        cache = LabelerCache(s.repository, embedder, sync_interval_s=s.settings.sync_interval_s)
        current_app.extensions["labelers"] = cache
    return cache


def _label(label_set: str, crops: list) -> list[LabelResult]:
    def owned(manifest) -> None:
        check_owner(manifest.owner, label_set)

    with state().model_lock:  # fitting and labelling run models
        labeler = labelers().get(label_set, check=owned)
        return labeler.label(crops) if crops else []


def frame_labels(
    result: FrameResult, label_set: str, by_track: dict | None = None
) -> list[dict | None]:
    """The labels of each detection of ``result`` (JSON shape), in detection order.

    Args:
        result: a matched frame (its detections carry their crops).
        label_set: the label set's catalog id (404 when the caller may not use it).
        by_track: a stream's labels so far, track id -> (label set, labels); tracks in it are
            not labelled again, new ones are added. None: label every detection.
    """
    det = result.detections
    crops = list(det.data.get("crop", [None] * len(det)))
    tracks = [int(t) for t in result.track_ids]  # -1: not tracked

    def needs(i: int) -> bool:
        if crops[i] is None:
            return False
        if by_track is None or tracks[i] < 0:
            return True
        hit = by_track.get(tracks[i])
        return hit is None or hit[0] != label_set

    todo = [i for i in range(len(det)) if needs(i)]
    fresh = dict(zip(todo, _label(label_set, [crops[i] for i in todo]), strict=True))
    answers: list[dict | None] = []
    for i, t in enumerate(tracks):
        if i in fresh:
            labels = result_to_dict(fresh[i])
            if by_track is not None and t >= 0:
                by_track[t] = (label_set, labels)
        elif by_track is not None and t in by_track:
            labels = by_track[t][1]
        else:
            labels = None
        answers.append(labels)
    return answers


def add_labels(body: dict, labels: list[dict | None]) -> dict:
    """Put each detection's labels into an answer body (``body["detections"][i]["labels"]``)."""
    for det, lab in zip(body["detections"], labels, strict=True):
        det["labels"] = lab
    return body
