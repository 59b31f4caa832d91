"""The models a batch runs, loaded from what the operator names (command line or job).

`load_trap_models` is the one loader behind ``python -m traps`` and the ``traps`` job: the
detector (``SIGHTING_DETECTOR``, at its own input size when larger), a labeler (by example: a
label set folder or store catalog id; by text: prompts and the CLIP files) and a catalog of
known individuals (a folder in the data layout, or a store catalog id) with the pipeline
that matches against it.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import BadInput
from core.settings import Settings
from traps.batch import TrapModels, native_size


def load_trap_models(
    settings: Settings,
    *,
    labels: str | None = None,
    prompts: list[str] | None = None,
    clip: str | None = None,
    clip_arch: str = "ViT-B-32",
    label_embedder: str | None = None,
    catalog: str | None = None,
    kind: str = "animals",
    folders: bool = True,
    pipeline=None,
) -> TrapModels:
    """Load what a batch runs; arguments are checked before any model loads.

    ``labels`` and ``catalog`` are store catalog ids, or (when ``folders``, as on the command
    line) local folders; a job passes ``folders=False``, so a request can never name a path
    on the worker's disk. ``pipeline``: an already loaded `matching.pipeline.Pipeline` to
    match known individuals with (a job consumer's shared one); loaded here when None.

    Raises:
        BadInput: both or neither of labels/prompts where one is needed, prompts without CLIP
            files, bad prompts, a catalog indexed with other models.
        NotFound: a store catalog or label set that does not exist.
    """
    from core.runtime import configure_threads, prepare_environment

    prepare_environment()
    if prompts and labels:
        raise BadInput("give either labels by example or prompts (by text), not both")
    if prompts and not clip:
        raise BadInput("prompts need the CLIP files (--clip or SIGHTING_CLIP; docs/traps.md)")
    if prompts:
        from labels.text import check_prompts

        check_prompts(prompts)  # before any model loads
    view = None
    if catalog:
        if pipeline is None:
            from matching.engine import load_pipeline

            pipeline = load_pipeline(settings)
        detector = pipeline.detector
        view = _load_catalog(pipeline, catalog, kind, settings, folders)
    else:
        from detection import load_detector

        pipeline, detector = None, load_detector(settings)
    labeler = None
    if labels:
        from labels import DEFAULT_LABEL_EMBEDDER, load_example_labeler, load_label_embedder

        embedder = load_label_embedder(settings, label_embedder or DEFAULT_LABEL_EMBEDDER)
        if not folders:
            from catalog.repository import CatalogRepository
            from catalog.stores import open_store
            from labels import read_label_catalog

            repository = CatalogRepository(open_store(settings))
            labels = read_label_catalog(repository, labels, max_pixels=settings.max_image_pixels)
        labeler = load_example_labeler(labels, settings, embedder)
    elif prompts:
        from labels.text import load_text_labeler

        labeler = load_text_labeler(clip, prompts, settings, arch=clip_arch)
    configure_threads(settings.threads)
    return TrapModels(native_size(detector), labeler, pipeline, view)


def _load_catalog(pipeline, source: str, kind: str, settings: Settings, folders: bool):
    """A known-individual catalog: a folder in the data layout, or a store catalog id."""
    if folders and Path(source).is_dir():
        from matching.folder_catalog import load_folder_catalog

        return load_folder_catalog(pipeline, source, kind=kind)
    from catalog.cache import CatalogCache
    from catalog.repository import CatalogRepository
    from catalog.stores import open_store

    repository = CatalogRepository(open_store(settings))
    cache = CatalogCache(repository, lambda k: pipeline.embedder_for(k).dim)
    manifest, view = cache.get(source)
    want = pipeline.embedder_for(manifest.kind).fingerprint
    if manifest.indexed_with_other(want):
        raise BadInput(
            f"catalog {source} was indexed with {manifest.embedder_fingerprint}, this process "
            f"embeds {manifest.kind} with {want}: re-index it or choose the same models"
        )
    return view
