"""Label sets: named example photos, from a folder (``LABELSET/<label>/<image>``) or the store.

In the store a label set is a catalog like any other (``POST /v1/catalogs``, then one item per
label with its example photos): its items are the labels, their images the examples. So the
same upload, listing and deletion serve both, and a label set is read by catalog id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import BadInput, SightingError
from core.images import DEFAULT_MAX_PIXELS, decode_image, list_images

log = logging.getLogger(__name__)

#: examples per label the measurements cover (README "Camera traps"); more are allowed.
MIN_EXAMPLES, MAX_EXAMPLES = 1, 200
MAX_LABELS = 1000


@dataclass
class LabelSet:
    """Example photos per label.

    Attributes:
        name: the folder name or the catalog id.
        examples: label -> uint8 (h, w, 3) RGB example images (at least one each).
        example_ids: label -> the examples' names (file or image ids), aligned with examples.
        skipped: ``"<example>: <reason>"`` for examples that could not be read.
    """

    name: str
    examples: dict[str, list[np.ndarray]]
    example_ids: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.examples:
            raise BadInput(f"label set {self.name!r} has no labels")
        if len(self.examples) > MAX_LABELS:
            raise BadInput(
                f"label set {self.name!r} has {len(self.examples)} labels (max {MAX_LABELS})"
            )
        empty = sorted(label for label, images in self.examples.items() if not images)
        if empty:
            raise BadInput(
                f"label set {self.name!r}: label(s) {empty} have no readable example photos "
                f"(each label needs {MIN_EXAMPLES} to {MAX_EXAMPLES})"
                + (f"; skipped: {'; '.join(self.skipped[:5])}" if self.skipped else "")
            )
        for label, images in self.examples.items():
            if not label.strip():
                raise BadInput(f"label set {self.name!r}: a label name is empty")
            if len(images) > MAX_EXAMPLES:
                raise BadInput(
                    f"label set {self.name!r}: label {label!r} has {len(images)} examples "
                    f"(max {MAX_EXAMPLES})"
                )
        for label, images in self.examples.items():
            self.example_ids.setdefault(label, [f"{label}/{i}" for i in range(len(images))])

    @property
    def labels(self) -> tuple[str, ...]:
        """Label names, sorted."""
        return tuple(sorted(self.examples))

    def counts(self) -> dict[str, int]:
        """Examples per label."""
        return {label: len(self.examples[label]) for label in self.labels}


def read_label_folder(
    folder: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, limit: int | None = None
) -> LabelSet:
    """A label set from ``folder/<label>/<image>`` (``_none`` and hidden folders are skipped).

    Args:
        folder: one sub-folder per label, each with example photos.
        max_pixels: bigger examples are skipped (noted in ``skipped``).
        limit: keep at most this many examples per label (the first by file name).

    Raises:
        BadInput: no such folder, no label folders, or a label none of whose photos is readable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"label set folder {folder} does not exist")
    labels = sorted(
        p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_none"))
    )
    if not labels:
        raise BadInput(f"label set folder {folder} holds no <label>/<image> folders")
    examples: dict[str, list[np.ndarray]] = {}
    ids: dict[str, list[str]] = {}
    skipped: list[str] = []
    for label_dir in labels:
        examples[label_dir.name], ids[label_dir.name] = [], []
        for path in list_images(label_dir)[:limit]:
            try:
                image = decode_image(path.read_bytes(), max_pixels=max_pixels)
            except (SightingError, OSError) as exc:
                skipped.append(f"{label_dir.name}/{path.name}: {exc}")
                log.warning("label set %s: skipping %s: %s", folder, path, exc)
                continue
            examples[label_dir.name].append(image)
            ids[label_dir.name].append(f"{label_dir.name}/{path.name}")
    return LabelSet(folder.name, examples, ids, skipped)


def read_label_catalog(
    repository: object, catalog_id: str, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> LabelSet:
    """A label set stored as a catalog: its items are the labels, their images the examples.

    Args:
        repository: a `catalog.repository.CatalogRepository`.
        catalog_id: the catalog's id.

    Raises:
        NotFound: no such catalog. BadInput: no items, or an item without readable images.
    """
    manifest = repository.get_manifest(catalog_id)  # type: ignore[attr-defined]
    examples: dict[str, list[np.ndarray]] = {}
    ids: dict[str, list[str]] = {}
    skipped: list[str] = []
    for item_id, item in sorted(manifest.items.items()):
        examples[item_id], ids[item_id] = [], []
        for image_id in item.images:
            try:
                _, data = repository.get_image(catalog_id, image_id)  # type: ignore[attr-defined]
                examples[item_id].append(decode_image(data, max_pixels=max_pixels))
                ids[item_id].append(image_id)
            except SightingError as exc:
                skipped.append(f"{item_id}/{image_id}: {exc}")
    return LabelSet(catalog_id, examples, ids, skipped)
