"""Crops -> L2-normalised vectors. Entry point: `load_embedder(settings)`.

>>> embedder = load_embedder(settings)          # settings.embedder, e.g. "mobilenet_v2", "products"
>>> vectors = embedder.embed([crop])            # float32 (1, embedder.dim)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ModelUnavailable
from core.kinds import KINDS
from embedding.backbones import BACKBONES
from embedding.embedder import Embedder, EmbedderConfig

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "BACKBONES",
    "KIND_DEFAULTS",
    "MIRROR_KINDS",
    "is_head_file",
    "Embedder",
    "EmbedderConfig",
    "load_embedder",
    "load_embedders",
]


#: The catalog kinds, each with the setting naming its embedder when ``SIGHTING_EMBEDDER=auto``
#: (the default): by default the heads trained for that kind (see README.md here), on the
#: MobileNetV2 backbone; a head file path there loads a head trained on your own data.
KIND_DEFAULTS = {kind: f"{kind}_embedder" for kind in KINDS}

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
            settings.model_copy(update={"embedder": getattr(settings, field)}),
            mirror=kind in MIRROR_KINDS,
        )
        for kind, field in KIND_DEFAULTS.items()
    }


def is_head_file(name: str) -> bool:
    """Whether an embedder setting names a head file (``*.head``) rather than a model."""
    return name.endswith(".head")


def load_embedder(
    settings: Settings, config: EmbedderConfig | None = None, mirror: bool = False
) -> Embedder:
    """Load the embedder named by ``settings.embedder``: a model of the weights registry, or
    a head file (``*.head``, from ``python -m embedding.train``) on its registered base
    (``mirror``: average each crop with its mirror image, when ``config`` is not given).

    Raises:
        ModelUnavailable: unknown or non-embedder model name, missing or corrupt file, a head
            trained on another base file, or ``SIGHTING_DEVICE=cuda`` without a GPU.
    """
    from core.runtime import resolve_device
    from weights.registry import model_files, resolve

    def find(name: str) -> Path:
        return resolve(name, settings.weights_dir, allow_download=settings.allow_download)

    device = resolve_device(settings.device)
    if is_head_file(settings.embedder):  # a head file of your own, on the base it names
        from embedding.head import read_head

        head = Path(settings.embedder).expanduser()
        if not head.is_file():
            raise ModelUnavailable(f"no head file {head} (an embedder setting ending in .head)")
        base = model_files(read_head(head).base, stage="embedder")
        return Embedder.from_head(head.stem, head, find(base.files[0]), device, config, mirror)
    spec = model_files(settings.embedder, stage="embedder")
    paths = [find(name) for name in spec.files]
    if spec.format == "head":  # a trained head (files[0]) on its base backbone (files[1])
        return Embedder.from_head(spec.name, paths[0], paths[1], device, config, mirror)
    return Embedder.from_weights(
        spec.name, paths[0], device, config or EmbedderConfig(mirror=mirror)
    )
