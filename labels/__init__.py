"""Labels: what is in a photo or a crop, as a probability per label.

One interface (`Labeler.label(images) -> [LabelResult]`), two labelers, one answer shape
(`result_to_dict`: ``{"labels": [{"label", "probability"}], "top", "unknown"}``):

* by example photos (`ExampleLabeler`, works offline): ``load_example_labeler(source, settings)``
  with a folder ``LABELSET/<label>/<image>`` or the id of a catalog in the store;
* by text (`TextLabeler`, zero-shot CLIP): ``load_text_labeler(path, prompts)`` with the
  operator's CLIP files (a transformers folder or an open_clip file); see `labels.text`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from labels.examples import ExampleCalibration, ExampleLabeler, fit_calibration
from labels.labelset import LabelSet, read_label_catalog, read_label_folder
from labels.result import Labeler, LabelResult, result_to_dict

if TYPE_CHECKING:
    from core.settings import Settings
    from embedding.embedder import Embedder

__all__ = [
    "DEFAULT_LABEL_EMBEDDER",
    "ExampleCalibration",
    "ExampleLabeler",
    "LabelResult",
    "LabelSet",
    "Labeler",
    "fit_calibration",
    "load_example_labeler",
    "load_label_embedder",
    "read_label_catalog",
    "read_label_folder",
    "result_to_dict",
]

#: The embedder of labels by example: the ImageNet backbone, whose features tell kinds of
#: things apart (the per-kind heads are trained to tell *individuals* apart); README figures.
DEFAULT_LABEL_EMBEDDER = "mobilenet_v2"


def load_label_embedder(settings: Settings, name: str = DEFAULT_LABEL_EMBEDDER) -> Embedder:
    """The embedder named ``name`` (a registry name or a ``.head`` file), on the settings'
    weights folder and device. Raises `ModelUnavailable` as `embedding.load_embedder` does."""
    from embedding import load_embedder

    return load_embedder(settings.model_copy(update={"embedder": name}))


def load_label_set(source: str | Path, settings: Settings) -> LabelSet:
    """A label set from a folder (``<label>/<image>``) or, if no such folder exists, from the
    store catalog of that id. Raises `BadInput` / `NotFound` naming what was looked for."""
    path = Path(source)
    if path.is_dir():
        return read_label_folder(path, max_pixels=settings.max_image_pixels)
    from catalog.repository import CatalogRepository
    from catalog.stores import open_store
    from core.errors import BadInput, NotFound

    if "/" in str(source) or "\\" in str(source):
        raise BadInput(f"label set folder {source} does not exist")
    try:
        repository = CatalogRepository(open_store(settings))
        return read_label_catalog(repository, str(source), max_pixels=settings.max_image_pixels)
    except NotFound:
        raise NotFound(
            f"no label set {source!r}: neither a folder <label>/<image> nor a catalog id in "
            f"the store ({settings.storage})"
        ) from None


def load_example_labeler(
    source: str | Path | LabelSet, settings: Settings, embedder: Embedder | None = None
) -> ExampleLabeler:
    """Read a label set (see `load_label_set`) and fit an `ExampleLabeler` on it."""
    label_set = source if isinstance(source, LabelSet) else load_label_set(source, settings)
    return ExampleLabeler.fit(embedder or load_label_embedder(settings), label_set)
