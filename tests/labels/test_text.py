"""Labels by text: small random CLIPs built with transformers and open_clip, saved in the real
layouts, loaded through the real path (`labels.text`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import BadInput, ModelUnavailable
from labels import result_to_dict
from labels.text import TIGER_PROMPTS, TextLabeler, check_prompts, load_text_labeler, open_backend
from tests.conftest import offline_settings
from tests.labels.tiny_clip import save_open_clip, save_transformers_clip

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def clip_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clip")
    return {
        "transformers": save_transformers_clip(root / "clip-vit-base-patch32"),
        "open_clip": save_open_clip(root / "CLIP-ViT-B-32-laion2B-s34B-b79K"),
    }


@pytest.fixture(scope="module")
def photos(data_dir: Path) -> list[np.ndarray]:
    from core.images import list_images, read_image

    return [read_image(p) for p in list_images(data_dir / "dogs" / "queries" / "_none")[:3]]


@pytest.mark.parametrize("kind", ["transformers", "open_clip"])
def test_probabilities_per_prompt(kind: str, clip_dirs, photos, tmp_path: Path) -> None:
    settings = offline_settings(tmp_path)
    labeler = load_text_labeler(clip_dirs[kind], TIGER_PROMPTS, settings)
    results = labeler.label(photos)
    assert len(results) == 3
    for r in results:
        assert r.labels == TIGER_PROMPTS  # the prompts' order
        assert r.probabilities.shape == (6,) and r.unknown == 0.0
        assert abs(float(r.probabilities.sum()) - 1.0) < 1e-5
    # reversed prompts: the same probabilities, reversed (order kept, nothing re-sorted)
    flipped = TextLabeler(labeler.backend, TIGER_PROMPTS[::-1]).label(photos)
    for a, b in zip(results, flipped, strict=True):
        assert np.allclose(a.probabilities, b.probabilities[::-1], atol=1e-5)
    out = result_to_dict(results[0])
    assert out["top"] == TIGER_PROMPTS[int(np.argmax(results[0].probabilities))]


def test_transformers_matches_the_models_own_logits(clip_dirs, photos) -> None:
    """Our softmax equals CLIPModel's own ``logits_per_image`` softmax (its logit scale)."""
    labeler = TextLabeler(open_backend(clip_dirs["transformers"], CPU), TIGER_PROMPTS)
    backend = labeler.backend
    inputs = backend.processor(
        text=list(TIGER_PROMPTS), images=photos, return_tensors="pt", padding=True
    )
    with torch.inference_mode():
        logits = backend.model(**inputs).logits_per_image
    expected = logits.softmax(-1).numpy()
    got = np.stack([r.probabilities for r in labeler.label(photos)])
    assert np.allclose(got, expected, atol=1e-4)
    assert backend.logit_scale == pytest.approx(float(backend.model.logit_scale.exp()))


@pytest.mark.parametrize("kind", ["transformers", "open_clip"])
def test_grey_frames(kind: str, clip_dirs, photos) -> None:
    labeler = TextLabeler(open_backend(clip_dirs[kind], CPU), ["a tiger", "no tiger"])
    grey = photos[0].mean(axis=2).round().astype(np.uint8)  # (H, W) infrared frame
    a, b = labeler.label([grey, np.repeat(grey[..., None], 3, axis=2)])
    assert np.allclose(a.probabilities, b.probabilities, atol=1e-6)


@pytest.mark.parametrize(
    ("prompts", "match"),
    [
        ([], "at least one"),
        (["a tiger", "  "], "prompt 1 is empty"),
        (["x" * 10_000], "10000 characters"),
        (["a tiger", "a tiger"], "duplicate"),
        ([f"p{i}" for i in range(300)], "at most 256"),
    ],
)
def test_bad_prompts(prompts, match: str, clip_dirs, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=match):
        load_text_labeler(clip_dirs["open_clip"], prompts, offline_settings(tmp_path))
    assert check_prompts(["a tiger "]) == ("a tiger",)


def test_missing_files_are_the_registrys_clear_error(tmp_path: Path) -> None:
    settings = offline_settings(tmp_path, weights_dir=tmp_path / "weights")
    with pytest.raises(ModelUnavailable) as err:
        load_text_labeler("clip-vit-base-patch32", TIGER_PROMPTS, settings)
    message = str(err.value)
    assert "clip-vit-base-patch32/config.json" in message
    assert "huggingface.co/openai/clip-vit-base-patch32" in message
    with pytest.raises(ModelUnavailable, match="no CLIP files"):
        load_text_labeler(tmp_path / "nothing", TIGER_PROMPTS, settings)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match="no CLIP files"):
        load_text_labeler(tmp_path / "empty", TIGER_PROMPTS, settings)
