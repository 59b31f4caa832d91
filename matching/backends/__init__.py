"""Verifier backends: one adapter per kind of local-feature matcher, next to that matcher.

Each implements `matching.verifier.VerifierBackend` (extract features of checked images, match
one query against references, in original-image pixels) and builds its modules without
touching the disk; `matching.verification` picks one by name and loads its files.

- `matching.backends.lightglue`: ALIKED or DISK keypoints + LightGlue;
- `matching.backends.loftr`: detector-free LoFTR.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def images_to_tensor(
    images: Sequence[np.ndarray], device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """uint8 (h, w, C) or (h, w) images of one size -> ``dtype`` (B, C, h, w) in [0, 1]."""
    arr = np.stack(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    t = torch.from_numpy(arr).to(device).permute(0, 3, 1, 2)
    return t.to(dtype).div_(255.0)
