"""Where verifiers are built and loaded: the backend of each name, its files, its fingerprint.

- `build_verifier(name)`: randomly initialised (no disk, no network);
- `verifier_from_weights(name, paths, device)`: built, then its files loaded;
- `load_verifier(settings)`: the configured one, files found via `weights`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from core.errors import ModelUnavailable
from core.runtime import resolve_device
from core.settings import Settings
from matching.backends.lightglue import LightGlueBackend
from matching.backends.loftr import LoftrBackend
from matching.verifier import Verifier, VerifierBackend, VerifierConfig
from weights.registry import MODELS, model_files, resolve, sha256_of

#: The backend of each verifier name: ``build(name, config)`` makes it without weights.
BACKENDS: dict[str, Callable[[str, VerifierConfig], VerifierBackend]] = {
    "aliked_lightglue": LightGlueBackend.build,
    "disk_lightglue": LightGlueBackend.build,
    "loftr": LoftrBackend.build,
}
VERIFIERS = tuple(BACKENDS)


def _unknown(name: str) -> ModelUnavailable:
    return ModelUnavailable(f"unknown verifier {name!r}; known: {', '.join(VERIFIERS)}")


def build_verifier(
    name: str, config: VerifierConfig | None = None, device: str | torch.device = "cpu"
) -> Verifier:
    """A verifier with randomly initialised modules; touches no disk or network.

    Raises:
        ModelUnavailable: unknown verifier name.
    """
    config = config or VerifierConfig()
    build = BACKENDS.get(name)
    if build is None:
        raise _unknown(name)
    return Verifier(name, build(name, config), device=device)


def _ordered_paths(name: str, paths: Mapping[str, Path] | Sequence[Path]) -> list[Path]:
    """The files of a verifier in registry order (extractor first, then matcher)."""
    spec = MODELS.get(name)
    if spec is None or spec.stage != "verifier" or name not in BACKENDS:
        raise _unknown(name)
    if isinstance(paths, Mapping):
        missing = [f for f in spec.files if f not in paths]
        if missing:
            raise ModelUnavailable(f"verifier {name} needs files {missing}; got {list(paths)}")
        return [Path(paths[f]) for f in spec.files]
    if len(paths) != len(spec.files):
        raise ModelUnavailable(f"verifier {name} needs {len(spec.files)} files {spec.files}")
    return [Path(p) for p in paths]


def _fingerprint(name: str, files: Sequence[Path], config: VerifierConfig) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(sha256_of(path).encode())
    return f"{name}-{digest.hexdigest()[:12]}-{config.extraction_key()}"


def verifier_from_weights(
    name: str,
    paths: Mapping[str, Path] | Sequence[Path],
    device: str | torch.device = "cpu",
    config: VerifierConfig | None = None,
) -> Verifier:
    """Build a verifier and load its weight files.

    Args:
        name: ``aliked_lightglue``, ``disk_lightglue`` or ``loftr``.
        paths: the files, keyed by registry file name (``{"aliked-n16.pth": ...}``) or in
            registry order (extractor, then matcher; LoFTR: one checkpoint whose state dict
            may be wrapped in ``{"state_dict": ...}`` as kornia's files are).
        device: ``cpu`` or ``cuda``.
        config: knobs; defaults to `VerifierConfig()`.

    Returns:
        The `Verifier`, in eval mode on ``device``.

    Raises:
        ModelUnavailable: unknown name, missing, unreadable or mismatching file.
    """
    config = config or VerifierConfig()
    files = _ordered_paths(name, paths)
    backend = BACKENDS[name](name, config)
    backend.load_weights(files)
    return Verifier(name, backend, device=device, fingerprint=_fingerprint(name, files, config))


def load_verifier(settings: Settings, config: VerifierConfig | None = None) -> Verifier | None:
    """Load the verifier named by ``settings.verifier``.

    Args:
        settings: uses ``verifier`` (``"none"`` disables verification), ``weights_dir``,
            ``allow_download`` and ``device``.
        config: verifier knobs; `VerifierConfig()` by default.

    Returns:
        The loaded `Verifier`, or None for ``verifier="none"``.

    Raises:
        ModelUnavailable: unknown verifier, or a file missing (and not downloadable) or corrupt.
    """
    if settings.verifier.lower() == "none":
        return None
    spec = model_files(settings.verifier, "verifier")
    paths = {
        name: resolve(name, settings.weights_dir, allow_download=settings.allow_download)
        for name in spec.files
    }
    return verifier_from_weights(spec.name, paths, resolve_device(settings.device), config)
