"""Crops -> L2-normalised vectors. Entry point: `load_embedder(settings)`.

>>> embedder = load_embedder(settings)          # settings.embedder, e.g. "mobilenet_v2", "products"
>>> vectors = embedder.embed([crop])            # float32 (1, embedder.dim)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedding.backbones import BACKBONES
from embedding.embedder import Embedder, EmbedderConfig

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "BACKBONES",
    "KIND_DEFAULTS",
    "MIRROR_KINDS",
    "Embedder",
    "EmbedderConfig",
    "load_embedder",
    "load_embedders",
]


#: The embedder a catalog kind uses when ``SIGHTING_EMBEDDER=auto`` (the default): the heads
#: trained for that kind (see README.md here), on the MobileNetV2 backbone.
KIND_DEFAULTS = {"products": "products", "animals": "animals"}

#: Kinds whose default embedder averages each crop with its mirror image
#: (`EmbedderConfig.mirror`): an animal seen from the other side is the same animal, a
#: package's printing is not (measured in README.md here).
MIRROR_KINDS = frozenset({"animals"})


def load_embedders(settings: Settings) -> dict[str, Embedder]:
    """One embedder per catalog kind: the kind's trained default when ``settings.embedder`` is
    ``auto``, else the named model for every kind (a setting overrides the kind)."""
    if settings.embedder != "auto":
        one = load_embedder(settings)
        return dict.fromkeys(KIND_DEFAULTS, one)
    return {
        kind: load_embedder(
            settings.model_copy(update={"embedder": name}), mirror=kind in MIRROR_KINDS
        )
        for kind, name in KIND_DEFAULTS.items()
    }


def load_embedder(
    settings: Settings, config: EmbedderConfig | None = None, mirror: bool = False
) -> Embedder:
    """Load the embedder named by ``settings.embedder`` from the weights registry
    (``mirror``: average each crop with its mirror image, when ``config`` is not given).

    Raises:
        ModelUnavailable: unknown or non-embedder model name, missing or corrupt file, or
            ``SIGHTING_DEVICE=cuda`` without a GPU.
    """
    from core.runtime import resolve_device
    from weights.registry import model_files, resolve

    spec = model_files(settings.embedder, stage="embedder")
    paths = [
        resolve(name, settings.weights_dir, allow_download=settings.allow_download)
        for name in spec.files
    ]
    device = resolve_device(settings.device)
    if spec.format == "head":  # a trained head (files[0]) on its base backbone (files[1])
        return Embedder.from_head(spec.name, paths[0], paths[1], device, config, mirror)
    return Embedder.from_weights(
        spec.name, paths[0], device, config or EmbedderConfig(mirror=mirror)
    )
