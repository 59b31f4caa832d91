"""Labels on live answers: ``labels=<label set>`` or ``prompts=<texts>`` on detect and stream
frames.

Each detection's crop gets the label set's probabilities (`labels.ExampleLabeler`, fitted on
the label set's example photos, kept per worker by `labels.cache.LabelerCache`), or the
prompts' (`labels.text.TextLabeler` over the operator's CLIP files, ``SIGHTING_CLIP``: 409
without them; `SightingState.text_labelers`). On a stream a
track is labelled once, on the frame it is first seen, and keeps its labels (as it keeps its
verified matches), so labels cost one small embedding per new object, not per frame.
"""

from __future__ import annotations

from labels.result import LabelResult
from matching.result import FrameResult
from service.access import Caller, check_owner
from service.state import SightingState

#: what labels a frame: a label set's id, or prompts (labels by text)
LabelSource = str | tuple[str, ...]


def label_source(options) -> LabelSource | None:
    """The labels a detect or stream frame asks for (``labels`` or ``prompts``; None: none)."""
    return tuple(options.prompts) if options.prompts else options.labels


def check_label_source(s: SightingState, source: LabelSource | None) -> None:
    """409 at once for prompts on a service without CLIP files, before any model runs."""
    if isinstance(source, tuple):
        s.check_clip()


def _label(
    s: SightingState, caller: Caller, label_set: LabelSource, crops: list
) -> list[LabelResult]:
    if isinstance(label_set, tuple):  # prompts
        texts = s.text_labelers  # the CLIP model loads here on first use, not under the queue
        with s.model_lock:
            labeler = texts.get(label_set)
            return labeler.label(crops) if crops else []

    def owned(manifest) -> None:
        check_owner(caller, manifest.owner, label_set)

    labelers = s.labelers  # the label embedder loads here on first use, not under the queue
    with s.model_lock:  # fitting and labelling run models
        labeler = labelers.get(label_set, check=owned)
        return labeler.label(crops) if crops else []


def frame_labels(
    s: SightingState,
    caller: Caller,
    result: FrameResult,
    label_set: LabelSource,
    by_track: dict | None = None,
) -> list[LabelResult | None]:
    """The labels of each detection of ``result``, in detection order (None: no crop).

    Args:
        result: a matched frame (its detections carry their crops).
        label_set: the label set's catalog id (404 when the caller may not use it), or a
            tuple of prompts (labels by text).
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
    fresh = dict(zip(todo, _label(s, caller, label_set, [crops[i] for i in todo]), strict=True))
    answers: list[LabelResult | None] = []
    for i, t in enumerate(tracks):
        if i in fresh:
            labels = fresh[i]
            if by_track is not None and t >= 0:
                by_track[t] = (label_set, labels)
        elif by_track is not None and t in by_track:
            labels = by_track[t][1]
        else:
            labels = None
        answers.append(labels)
    return answers
