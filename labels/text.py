"""Labels by text (zero-shot CLIP): prompts -> a probability per prompt for each image.

``p = softmax(logit_scale * normalize(image_features) @ normalize(text_features).T)`` with the
model's own learned ``logit_scale``, as CLIP's zero-shot classification does. Two backends
read the files an operator supplies; nothing is downloaded (``HF_HUB_OFFLINE=1``,
``local_files_only=True``):

* transformers: a folder in the Hugging Face layout of ``openai/clip-vit-base-patch32``
  (``config.json``, ``model.safetensors`` or ``pytorch_model.bin``, ``preprocessor_config.json``
  and the tokenizer files);
* open_clip: a folder in the layout of the LAION repositories (``open_clip_config.json`` and
  ``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``), or one checkpoint file
  of a built-in architecture (``arch="ViT-B-32"``).

The registry (`weights.registry`, stage ``labeler``) names the official files of one model of
each; ``python -m weights list`` shows where they are looked for.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import BadInput, ModelUnavailable
from labels.result import LabelResult, as_rgb

if TYPE_CHECKING:
    from core.settings import Settings

MAX_PROMPTS = 256
MAX_PROMPT_CHARS = 300  # CLIP reads 77 tokens; a longer prompt is a mistake, not a label

#: The seed's prompts (README, Camera traps).
TIGER_PROMPTS = (
    "a photo of an Amur tiger",
    "a photo of a Bengal tiger",
    "a photo of a lion",
    "a photo of a leopard",
    "a photo of a domestic cat",
    "a photo without a tiger",
)


def check_prompts(prompts: Sequence[str]) -> tuple[str, ...]:
    """1 to `MAX_PROMPTS` distinct, non-empty prompts of at most `MAX_PROMPT_CHARS` each.

    Raises:
        BadInput: naming the first prompt that breaks a rule.
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = [p.strip() if isinstance(p, str) else p for p in prompts]
    if not prompts:
        raise BadInput("give at least one prompt (e.g. 'a photo of a tiger')")
    if len(prompts) > MAX_PROMPTS:
        raise BadInput(f"{len(prompts)} prompts; at most {MAX_PROMPTS}")
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p:
            raise BadInput(f"prompt {i} is empty")
        if len(p) > MAX_PROMPT_CHARS:
            raise BadInput(
                f"prompt {i} has {len(p)} characters; at most {MAX_PROMPT_CHARS} "
                "(CLIP reads only the first 77 tokens)"
            )
    dupes = sorted({p for p in prompts if prompts.count(p) > 1})
    if dupes:
        raise BadInput(f"duplicate prompts: {dupes}")
    return tuple(prompts)


class ClipBackend(Protocol):
    """An image-text model: normalised embeddings of both sides and its logit scale."""

    logit_scale: float

    def encode_images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 (h, w, 3) RGB each -> float (B, E), L2-normalised."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """T strings -> float (T, E), L2-normalised."""
        ...


class TransformersClip:
    """``transformers.CLIPModel`` + its processor, from a local folder. Build with `from_folder`."""

    def __init__(self, model: torch.nn.Module, processor: object, device: torch.device) -> None:
        self.model = model
        self.processor = processor
        self.device = device
        self.logit_scale = float(model.logit_scale.exp().item())

    @classmethod
    def from_folder(cls, folder: Path, device: torch.device) -> TransformersClip:
        """Load ``folder`` (Hugging Face layout) with ``local_files_only=True``.

        Raises:
            ModelUnavailable: files missing or unreadable (the message names the folder).
        """
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import CLIPModel, CLIPProcessor

        try:
            model = CLIPModel.from_pretrained(str(folder), local_files_only=True)
            processor = CLIPProcessor.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelUnavailable(
                f"CLIP folder {folder} cannot be loaded with transformers: {exc}"
            ) from None
        return cls(model.to(device).eval().requires_grad_(False), processor, device)

    @torch.inference_mode()
    def encode_images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        pixels = self.processor(images=[np.array(i) for i in images], return_tensors="pt")[
            "pixel_values"
        ]
        feats = self.model.get_image_features(pixel_values=pixels.to(self.device))
        return F.normalize(_tensor(feats), dim=-1)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.processor(
            text=list(texts), return_tensors="pt", padding=True, truncation=True
        )
        feats = self.model.get_text_features(
            input_ids=tokens["input_ids"].to(self.device),
            attention_mask=tokens["attention_mask"].to(self.device),
        )
        return F.normalize(_tensor(feats), dim=-1)


def _tensor(out: object) -> torch.Tensor:
    """transformers 5 may return a model output object where 4 returned the tensor."""
    if isinstance(out, torch.Tensor):
        return out.float()
    return getattr(out, "pooler_output", None).float()  # type: ignore[union-attr]


class OpenClip:
    """An ``open_clip`` model, its preprocessing and tokenizer. Build with `from_path`."""

    def __init__(self, model, preprocess, tokenizer, device: torch.device) -> None:
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.logit_scale = float(model.logit_scale.exp().item())

    @classmethod
    def from_path(cls, path: Path, device: torch.device, arch: str = "ViT-B-32") -> OpenClip:
        """A LAION-layout folder (``open_clip_config.json`` + weights) or one checkpoint file
        of the built-in architecture ``arch``.

        Raises:
            ModelUnavailable: unknown architecture, missing or unreadable files.
        """
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import open_clip

        path = Path(path)
        try:
            if path.is_dir():
                name = f"local-dir:{path}"
                model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
                tokenizer = open_clip.get_tokenizer(name)
            else:
                if arch not in open_clip.list_models():
                    raise ModelUnavailable(f"unknown open_clip architecture {arch!r}")
                model, _, preprocess = open_clip.create_model_and_transforms(
                    arch, pretrained=str(path), device=device
                )
                tokenizer = open_clip.get_tokenizer(arch)
        except ModelUnavailable:
            raise
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            raise ModelUnavailable(f"open_clip cannot load {path}: {exc}") from None
        return cls(model.eval().requires_grad_(False), preprocess, tokenizer, device)

    @torch.inference_mode()
    def encode_images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        from PIL import Image

        batch = torch.stack([self.preprocess(Image.fromarray(img)) for img in images])
        return F.normalize(self.model.encode_image(batch.to(self.device)).float(), dim=-1)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts)).to(self.device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)


class TextLabeler:
    """Zero-shot labels: one probability per prompt (the labels are the prompts).

    The prompts' embeddings are computed once, when the labeler is built.
    """

    def __init__(self, backend: ClipBackend, prompts: Sequence[str], batch_size: int = 16):
        self.backend = backend
        self.labels = check_prompts(prompts)
        self.batch_size = batch_size
        self.text = backend.encode_texts(self.labels)  # (T, E)

    def similarities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """float32 (B, T) cosine similarities of images to prompts."""
        images = [as_rgb(img, i) for i, img in enumerate(images)]
        out = []
        for start in range(0, len(images), self.batch_size):
            feats = self.backend.encode_images(images[start : start + self.batch_size])
            out.append((feats @ self.text.T).cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, len(self.labels)))

    def label(self, images: Sequence[np.ndarray]) -> list[LabelResult]:
        """uint8 (h, w, 3) RGB photos or crops (grey accepted) -> one `LabelResult` each:
        ``softmax(logit_scale * similarities)`` over the prompts, in the prompts' order."""
        sims = self.similarities(images)
        if len(sims) == 0:
            return []
        p = torch.softmax(torch.from_numpy(sims) * self.backend.logit_scale, dim=1).numpy()
        return [LabelResult(self.labels, row, 0.0) for row in p]


def open_backend(path: str | Path, device: torch.device, arch: str = "ViT-B-32") -> ClipBackend:
    """The backend that reads ``path``: a folder with ``config.json`` (transformers), a folder
    with ``open_clip_config.json`` or a file (open_clip).

    Raises:
        ModelUnavailable: the path does not exist or holds neither layout.
    """
    path = Path(path)
    if path.is_dir() and (path / "config.json").is_file():
        return TransformersClip.from_folder(path, device)
    if (path.is_dir() and (path / "open_clip_config.json").is_file()) or path.is_file():
        return OpenClip.from_path(path, device, arch)
    raise ModelUnavailable(
        f"no CLIP files at {path}: expected a transformers folder (config.json, "
        "model.safetensors, tokenizer and preprocessor files), an open_clip folder "
        "(open_clip_config.json + weights) or an open_clip checkpoint file"
    )


def load_clip_backend(
    source: str | Path, settings: Settings, *, arch: str = "ViT-B-32"
) -> ClipBackend:
    """The CLIP model of a path (see `open_backend`) or of a registry model of stage
    ``labeler`` (its files are found in the weights folder; a missing one is the registry's
    `ModelUnavailable`, naming the file and its source).

    Raises:
        ModelUnavailable: files missing or unreadable.
    """
    from core.runtime import resolve_device

    device = resolve_device(settings.device)
    path = Path(source)
    if not path.exists():
        from weights.registry import MODELS, model_files, resolve

        if str(source) not in MODELS:
            raise ModelUnavailable(
                f"no CLIP files at {source}, and no registry labeler of that name"
            )
        spec = model_files(str(source), stage="labeler")
        paths = [
            resolve(f, settings.weights_dir, allow_download=settings.allow_download)
            for f in spec.files
        ]
        path = paths[0].parent  # both formats are folders: "transformers-clip", "open_clip"
    return open_backend(path, device, arch)


def load_text_labeler(
    source: str | Path, prompts: Sequence[str], settings: Settings, *, arch: str = "ViT-B-32"
) -> TextLabeler:
    """A `TextLabeler` over the CLIP model of ``source`` (see `load_clip_backend`).

    Raises:
        BadInput: bad prompts. ModelUnavailable: files missing or unreadable.
    """
    prompts = check_prompts(prompts)  # before the (slow) model load
    return TextLabeler(load_clip_backend(source, settings, arch=arch), prompts)


class TextLabelerCache:
    """The operator's CLIP model, loaded once per worker, and a `TextLabeler` per prompt list
    (the prompts' embeddings), the least recently used dropped beyond ``max_sets``: the live
    ``prompts=`` option of detect and stream frames."""

    def __init__(self, backend: ClipBackend, max_sets: int = 16) -> None:
        from cachetools import LRUCache

        self.backend = backend
        self._labelers: LRUCache[tuple[str, ...], TextLabeler] = LRUCache(maxsize=max_sets)
        self._lock = threading.Lock()

    def get(self, prompts: Sequence[str]) -> TextLabeler:
        """The labeler of ``prompts`` (checked: `BadInput` for bad ones)."""
        key = check_prompts(prompts)
        with self._lock:
            hit = self._labelers.get(key)
        if hit is not None:
            return hit
        labeler = TextLabeler(self.backend, key)
        with self._lock:
            self._labelers[key] = labeler
        return labeler
