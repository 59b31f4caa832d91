"""The typed options of each use case, as the API's options loader validates them.

Every default and range comes from the settings table (`core.settings.Settings`, through the
schemas of ``api.schemas``); a service function receives one of these objects and never reads
a request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.settings import Settings
from matching.pipeline import PipelineConfig


@dataclass
class UploadedImage:
    """One decoded upload: the original bytes (stored as they came) and its pixels."""

    data: bytes
    content_type: str
    pixels: np.ndarray  # uint8 (H, W, 3) RGB


@dataclass(frozen=True)
class MatchOptions:
    """What every matching call takes: candidates per object, verification, a class filter."""

    top_k: int
    verify: bool = True
    classes: tuple[str, ...] | None = None  # detector class names to keep; None: all
    keep: bool = False  # keep the matched objects as sightings (issue 23)

    def pipeline_config(self, settings: Settings, **more) -> PipelineConfig:
        """The pipeline's configuration for these options."""
        return PipelineConfig.from_settings(
            settings, top_k=self.top_k, verify=self.verify, classes=self.classes, **more
        )


def _ranking(rank: str | None, shortlist: int | None) -> dict:
    """`PipelineConfig` fields of the ranking options (docs/local-ranking.md): ``rank`` None
    is the catalog kind's default, ``shortlist`` None the setting."""
    more: dict = {"rank": rank}
    if shortlist is not None:
        more["local_shortlist"] = shortlist
    return more


@dataclass(frozen=True)
class DetectOptions(MatchOptions):
    min_score: float = 0.0  # hide matches scored below (0: every candidate)
    whole_frame: bool = False
    labels: str | None = None  # a label set's id: label each detection
    prompts: tuple[str, ...] | None = None  # labels by text (CLIP): one probability per prompt
    rank: str | None = None  # embedding or local; None: the catalog kind's default
    shortlist: int | None = None  # rank=local: candidates keypoints rank; None: the setting

    def config(self, settings: Settings) -> PipelineConfig:
        return self.pipeline_config(
            settings,
            min_score=self.min_score,
            whole_frame=self.whole_frame,
            **_ranking(self.rank, self.shortlist),
        )


@dataclass(frozen=True)
class SearchOptions(MatchOptions):
    min_score: float = 0.0
    rank: str | None = None  # as in `DetectOptions`
    shortlist: int | None = None

    def config(self, settings: Settings) -> PipelineConfig:
        return self.pipeline_config(
            settings,
            min_score=self.min_score,
            whole_frame=True,
            **_ranking(self.rank, self.shortlist),
        )


@dataclass(frozen=True)
class StreamOptions(MatchOptions):
    frame_index: int | None = None  # None: the stream's last + 1
    labels: str | None = None
    prompts: tuple[str, ...] | None = None

    def config(self, settings: Settings) -> PipelineConfig:
        return self.pipeline_config(settings, whole_frame=False)


@dataclass(frozen=True)
class VideoOptions(MatchOptions):
    stride: int = 1  # every n-th frame
    annotate: bool = False  # also draw the answer on the video: a job's annotated.webm

    def config(self, settings: Settings) -> PipelineConfig:
        return self.pipeline_config(settings, whole_frame=False)


@dataclass(frozen=True)
class ExplainOptions:
    item_id: str
    box: np.ndarray | None = None  # float64 (4,) xyxy pixels; None: the best detection
    format: str = "png"  # png or json
    classes: tuple[str, ...] | None = None

    def config(self, settings: Settings) -> PipelineConfig:
        return PipelineConfig.from_settings(settings, classes=self.classes)


@dataclass(frozen=True)
class UploadOptions:
    """An upload of reference images (a new item, or more images of one)."""

    refuse: frozenset[str] = frozenset()  # warning codes that refuse the upload
    item_id: str | None = None  # a new item's id; None: a new random id
    metadata: dict = field(default_factory=dict)  # a new item's free metadata


@dataclass(frozen=True)
class BatchOptions:
    """A camera-trap batch."""

    kind: str
    threshold: float
    top_k: int
    verify: bool = True
    draw: bool = True
    catalog: str | None = None  # known individuals
    labels: str | None = None  # a label set
    prompts: tuple[str, ...] | None = None  # labels by text (CLIP), instead of a label set
    keep: bool = False  # keep the matched animals as sightings of ``catalog`` (issue 23)

    def params(self) -> dict:
        """The job's parameters (kind ``traps``): the given catalogs and every option."""
        named = {n: v for n, v in (("catalog", self.catalog), ("labels", self.labels)) if v}
        if self.prompts:
            named["prompts"] = list(self.prompts)
        return named | {
            "kind": self.kind,
            "threshold": self.threshold,
            "top_k": self.top_k,
            "verify": self.verify,
            "draw": self.draw,
            "keep": self.keep,
        }


@dataclass(frozen=True)
class SightingListOptions:
    """Filters and page of a sightings listing."""

    offset: int = 0
    limit: int = 50
    state: str | None = None
    item_id: str | None = None
    source: str | None = None
    since: str | None = None
    until: str | None = None
