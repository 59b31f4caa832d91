"""`load_verifier(settings)`: the configured keypoint verifier, files found via `weights`."""

from __future__ import annotations

from core.runtime import resolve_device
from core.settings import Settings
from matching.verifier import Verifier, VerifierConfig
from weights.registry import model_files, resolve


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
    return Verifier.from_weights(spec.name, paths, resolve_device(settings.device), config)
