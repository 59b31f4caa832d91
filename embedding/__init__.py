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
    "GENERIC_EMBEDDER",
    "KIND_DEFAULTS",
    "KIND_MODELS",
    "MIRROR_KINDS",
    "is_head_file",
    "Embedder",
    "EmbedderConfig",
    "load_embedder",
    "load_embedders",
]


#: The model of each catalog kind when ``SIGHTING_EMBEDDER=auto`` (the default): the name of the
#: setting naming it (by default the head trained for that kind, see README.md here, on the
#: MobileNetV2 backbone; a head file path there loads a head trained on your own data), or
#: `GENERIC_EMBEDDER` for the kinds no model was trained for: a head trained on dog faces or
#: grocery packages knows nothing of cars or zebras, the ImageNet features at least saw them.
#: Those kinds' scores rest on each catalog's own calibration (`matching.calibration`).
KIND_MODELS: dict[str, str | None] = {
    kind: {"products": "products_embedder", "animals": "animals_embedder"}.get(kind)
    for kind in KINDS
}
#: The registry model of the kinds whose `KIND_MODELS` entry is None.
GENERIC_EMBEDDER = "mobilenet_v2"
#: The trained kinds' settings (kept for callers of the old name).
KIND_DEFAULTS = {kind: field for kind, field in KIND_MODELS.items() if field is not None}

#: Kinds whose default embedder averages each crop with its mirror image
#: (`EmbedderConfig.mirror`): an animal seen from the other side is the same animal, a
#: package's printing is not (measured in README.md here). Not ``wildlife``: a flank's
#: stripes or spots are not symmetric, the left flank is not the right one mirrored.
MIRROR_KINDS = frozenset({"animals"})


def load_embedders(settings: Settings) -> dict[str, Embedder]:
    """One embedder per catalog kind (`KIND_MODELS`): the kind's trained default when
    ``settings.embedder`` is ``auto`` (`GENERIC_EMBEDDER`, loaded once, for the kinds without
    one), else the named model for every kind (a setting overrides the kind)."""
    if settings.embedder != "auto":
        one = load_embedder(settings)
        return dict.fromkeys(KIND_MODELS, one)
    loaded: dict[tuple[str, bool], Embedder] = {}
    out = {}
    for kind, field in KIND_MODELS.items():
        name = GENERIC_EMBEDDER if field is None else getattr(settings, field)
        key = (name, kind in MIRROR_KINDS)
        if key not in loaded:
            loaded[key] = load_embedder(
                settings.model_copy(update={"embedder": name}), mirror=key[1]
            )
        out[kind] = loaded[key]
    return out


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
    from runtimes import request_for

    embedder = _load_torch(settings, config, mirror)
    embedder.accelerate(request_for(settings, "embedder"))
    return embedder


def _load_torch(settings: Settings, config: EmbedderConfig | None, mirror: bool) -> Embedder:
    """`load_embedder`'s model on torch."""
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
